/**
 * The escape list against the real Electron shell (built with `npm run build`): Alt+Tab, Alt+F4, window.open,
 * off-list navigation, devtools, drag-and-drop of a file, PrintScreen, window.print(). Each attempt must leave the kiosk in place
 * and appear in the session's hash-chained log. Runs wherever an Electron binary is installed; skips otherwise.
 */
import { _electron as electron, expect, test, type ElectronApplication, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

function electronBinary(): string | null {
  try {
    const p = createRequire(join(ROOT, 'package.json'))('electron') as unknown;
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}
const binary = electronBinary();

test.describe('Electron shell: escape list', () => {
  test.skip(!binary, 'Electron binary is not installed here (ELECTRON_SKIP_BINARY_DOWNLOAD=1 and no download is possible); this spec runs wherever `node_modules/electron` has its binary');

  let app: ElectronApplication;
  let ui: Page;
  let home: string;

  test.beforeAll(async () => {
    execFileSync('npx', ['electron-vite', 'build'], { cwd: ROOT, stdio: 'inherit' });
    home = mkdtempSync(join(tmpdir(), 'kuzet-e2e-'));
    app = await electron.launch({ executablePath: binary!, args: [join(ROOT, 'out/main/index.js'), '--demo', '--lang', 'en'], env: { ...process.env, KUZET_HOME: home } });
    ui = await app.firstWindow();
    await ui.getByTestId('field-studentId').fill('E2E-001');
    await ui.getByTestId('field-examCode').fill('DEMO');
    await ui.getByTestId('identify-submit').click();
    await expect(ui.getByTestId('checks-next')).toBeEnabled({ timeout: 60_000 });
    await ui.getByTestId('checks-next').click();
    await ui.getByTestId('rules-accept').check();
    await ui.getByTestId('rules-start').click();
    await expect(ui.getByTestId('screen-exam')).toBeVisible();
  });

  test.afterAll(async () => {
    await app?.close().catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
  });

  const sessionLog = (): string => {
    const dirs = ['sessions', 'bundles'].flatMap((d) => (existsSync(join(home, d)) ? readdirSync(join(home, d)).map((x) => join(home, d, x)) : []));
    return dirs.map((d) => (existsSync(join(d, 'events.ndjson')) ? readFileSync(join(d, 'events.ndjson'), 'utf8') : '')).join('');
  };
  const examPage = async (): Promise<Page> => {
    await expect.poll(() => app.windows().find((w) => w.url().includes('/exam'))?.url() ?? '', { timeout: 20_000 }).toContain('/exam');
    return app.windows().find((w) => w.url().includes('/exam'))!;
  };
  const stillLocked = async () => {
    expect(await app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows().map((w) => ({ kiosk: w.isKiosk(), visible: w.isVisible() })))).toEqual([{ kiosk: true, visible: true }]);
  };

  test('Alt+F4, Ctrl+W, Ctrl+Q and PrintScreen are swallowed and logged', async () => {
    const page = await examPage();
    for (const k of ['Alt+F4', 'Control+W', 'Control+Q', 'PrintScreen', 'F12', 'Control+Shift+I']) await page.keyboard.press(k);
    await stillLocked();
    await expect.poll(() => (sessionLog().match(/kiosk\.shortcut_blocked/g) ?? []).length).toBeGreaterThanOrEqual(6);
  });

  test('Alt+Tab cannot be blocked by an app: the loss of focus is logged and the kiosk comes back', async () => {
    await app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows()[0]!.blur());
    await expect.poll(() => sessionLog().includes('kiosk.focus_lost')).toBe(true);
    await expect.poll(() => app.evaluate(({ BrowserWindow }) => BrowserWindow.getAllWindows()[0]!.isFocused())).toBe(true);
  });

  test('window.open is denied and off-list navigation is blocked', async () => {
    const page = await examPage();
    await page.click('#popup');
    await page.click('#off');
    await page.evaluate(() => { window.open('https://example.net/'); location.href = 'https://example.com/x'; });
    await page.waitForTimeout(500);
    expect(page.url()).toContain('/exam');
    expect(app.windows().length).toBe(2);
    const log = sessionLog();
    expect(log).toContain('kiosk.window_open_blocked');
    expect(log).toContain('kiosk.navigation_blocked');
  });

  test('window.print() from the exam page opens no dialog and is logged', async () => {
    const page = await examPage();
    await page.evaluate(() => { window.print(); document.body.appendChild(document.createElement('iframe')).contentWindow!.print(); });
    await stillLocked();
    await expect.poll(() => sessionLog().includes('kiosk.print_blocked')).toBe(true);
  });

  test('devtools cannot open and a dropped file does not navigate', async () => {
    const opened = await app.evaluate(({ webContents }) => webContents.getAllWebContents().map((w) => { w.openDevTools(); return w.isDevToolsOpened(); }));
    expect(opened.every((o) => o === false)).toBe(true);
    const page = await examPage();
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['x'], 'notes.txt', { type: 'text/plain' }));
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true }));
    });
    expect(page.url()).toContain('/exam');
    await stillLocked();
  });
});
