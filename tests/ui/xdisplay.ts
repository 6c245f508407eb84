/**
 * The UI tests' X display: a private Xvfb + openbox (tests/monitors/xserver.ts), started once in global-setup, so
 * the kiosk's monitors use their real X11 sources (foreground window, xrandr displays, xclip clipboard) and
 * Chromium runs with a real, focused window on it — the kiosk UI is the foreground window, as in a lab.
 * Without Xvfb/openbox the UI tests still run (headless Chromium) and the monitor checks say "not checked".
 */
import { execFileSync, spawn } from 'node:child_process';
import { missingXTools, startXServer, type XServer } from '../monitors/xserver.js';

/** Set by global-setup for the workers when the display is up. */
export const UI_DISPLAY_ENV = 'KUZET_UI_DISPLAY';

export function uiDisplay(): string | null {
  return process.env[UI_DISPLAY_ENV] || null;
}

export async function startUiDisplay(): Promise<XServer | null> {
  if (missingXTools().length) return null;
  const x = await startXServer();
  process.env.DISPLAY = x.display;
  process.env[UI_DISPLAY_ENV] = x.display;
  return x;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Another program's window comes to the front (what a student switching to a notes app does). */
export async function foreignWindow(title: string): Promise<{ close(): Promise<void> }> {
  const env = { ...process.env, DISPLAY: uiDisplay() ?? '' };
  const proc = spawn('xmessage', ['-title', title, title], { env, stdio: 'ignore' });
  let id = '';
  for (let i = 0; i < 100 && !id; i++) {
    await sleep(50);
    try { id = execFileSync('xdotool', ['search', '--name', `^${title}$`], { env, encoding: 'utf8' }).trim().split('\n')[0] ?? ''; } catch { /* not mapped yet */ }
  }
  if (!id) { proc.kill(); throw new Error(`window "${title}" did not appear`); }
  execFileSync('xdotool', ['windowactivate', '--sync', id], { env });
  return {
    async close() {
      proc.kill('SIGTERM');
      await new Promise((r) => { if (proc.exitCode !== null) r(null); else proc.once('exit', r); });
    },
  };
}

/** Brings Chromium's window to the front, as the Electron shell does with the kiosk window (show + focus). */
export async function focusBrowser(): Promise<void> {
  const env = { ...process.env, DISPLAY: uiDisplay() ?? '' };
  for (let i = 0; i < 60; i++) {
    try {
      const ids = execFileSync('xdotool', ['search', '--onlyvisible', '--class', 'chromium'], { env, encoding: 'utf8' }).trim().split('\n').filter(Boolean);
      if (ids.length) { execFileSync('xdotool', ['windowactivate', '--sync', ids.at(-1)!], { env, timeout: 5000 }); return; }
    } catch { /* not mapped yet */ }
    await sleep(100);
  }
  throw new Error('the Chromium window did not appear on the test display');
}
