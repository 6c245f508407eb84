/**
 * The kiosk UI in REAL Chromium (/usr/bin/chromium), driving the REAL KioskService (ExamSession, ffmpeg recording,
 * checks, sealing) through the same bridge contract the Electron preload implements. One full student flow per
 * language; every screen is saved to artifacts/ui/<lang>-<n>-<screen>.png.
 */
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lang } from '../../src/shared/bridge.js';
import { resources } from '../../src/shared/i18n/index.js';
import { verifyLogText } from '../../src/main/core/eventlog.js';
import { LOG_FILE } from '../../src/main/evidence/format.js';
import { sha256Hex } from '../../src/main/shell/policy.js';
import { shotPath, startKiosk, testExam, testMachine, webPreload, type Kiosk } from './harness.js';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';
import { focusBrowser, foreignWindow, uiDisplay } from './xdisplay.js';

// With the private X display (global-setup), Chromium runs as a real focused window on it: the monitors watch it
// with their X11 sources exactly as they watch the kiosk window in a lab.
const X = uiDisplay();
if (X) test.use({ headless: false, launchOptions: { executablePath: CHROMIUM, args: CHROMIUM_ARGS } });

let kiosk: Kiosk | null = null;
test.afterEach(async () => { await kiosk?.close(); kiosk = null; });

async function open(page: Page, k: Kiosk): Promise<void> {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.addInitScript({ content: webPreload() });
  await page.goto(k.url);
  await expect(page.getByTestId('screen-identify')).toBeVisible();
  if (X) await focusBrowser();
  expect(errors, 'no page errors (CSP violations show up here too)').toEqual([]);
}

const FLOW_LANGS: Lang[] = ['kk', 'ru', 'en'];

for (const lang of FLOW_LANGS) {
  test(`full student flow in ${lang}`, async ({ page }) => {
    const T = resources[lang].translation;
    // One language runs the real detection step (committed ONNX models): a test pattern has no face, so a
    // face.absent episode reaches the status bar. The others show the checklist with detection switched off.
    const detect = lang === 'ru';
    const machine = detect ? testMachine({ detection: { enabled: true, faceHz: 2, objectHz: 0.5, thresholds: { noFaceSeconds: 1 } } }) : testMachine();
    kiosk = await startKiosk({ machine, withServer: true, exam: testExam({ exitCodeSha256: sha256Hex('proctor-7') }) });
    const finishStates: NonNullable<ReturnType<Kiosk['service']['getState']>['finish']>[] = [];
    kiosk.service.on('state', (st) => { if (st.finish) finishStates.push(st.finish); });
    await open(page, kiosk);
    const shot = async (n: number, name: string) => page.screenshot({ path: shotPath(`${lang}-${n}-${name}`), fullPage: true });

    // 1. Identification, after switching the language on the first screen.
    await page.getByTestId(`lang-${lang}`).click();
    await expect(page.locator('h1')).toHaveText(T.identify.title);
    await expect(page.locator('html')).toHaveAttribute('lang', lang);
    await page.getByTestId('field-studentId').fill('bad id!');
    await page.getByTestId('field-examCode').fill('MATH-7');
    await page.getByTestId('identify-submit').click();
    await expect(page.getByRole('alert')).toHaveText(T.identify.invalid);
    await shot(1, 'identify-error');
    await page.getByTestId('field-studentId').fill(`S2024-${lang}`);
    await shot(1, 'identify');
    await page.getByTestId('identify-submit').click();

    // 2. Pre-checks: live previews from the recorder's taps, every item settled.
    await expect(page.getByTestId('screen-checks')).toBeVisible();
    await expect(page.locator('h1')).toHaveText(T.checks.title);
    await expect(page.getByTestId('preview-face').locator('img')).toHaveAttribute('src', /^data:image\/png;base64,/);
    await expect(page.getByTestId('preview-room').locator('img')).toHaveAttribute('src', /^data:image\/png;base64,/);
    await expect(page.getByTestId('checks-next')).toBeEnabled();
    await expect(page.getByTestId('check-camera.face')).toHaveAttribute('data-status', 'ok');
    await expect(page.getByTestId('check-room.desk')).toHaveAttribute('data-status', 'ok');
    await expect(page.getByTestId('check-face.visible')).toContainText(T.checks.items.face_visible.fix);
    await expect(page.getByTestId('rec')).toContainText(T.exam.recording);
    if (detect) await expect(page.getByTestId('check-detection')).toHaveAttribute('data-status', 'ok');
    else await expect(page.getByTestId('check-detection')).toContainText(T.checks.items.detection.disabled);
    if (X) {
      // The monitors' own checks, through the same X11 sources the session watches with (not "Attention").
      await expect(page.getByTestId('check-foreground')).toHaveAttribute('data-status', 'ok');
      await expect(page.getByTestId('check-clipboard')).toHaveAttribute('data-status', 'ok');
      // Xvfb's only output has no physical size: the real state is "a virtual display", noted for the proctor.
      await expect(page.getByTestId('check-displays')).toHaveAttribute('data-status', 'warn');
      await expect(page.getByTestId('check-displays')).toContainText('screen');
    }
    await shot(2, 'checks');
    await page.getByTestId('checks-next').click();

    // 3. Rules: the start button waits for the checkbox.
    await expect(page.getByTestId('screen-rules')).toBeVisible();
    await expect(page.getByTestId('rules-start')).toBeDisabled();
    await expect(page.locator('.rules li').first()).toHaveText(T.rules.items.r1);
    await page.getByTestId('rules-accept').check();
    await shot(3, 'rules');
    await page.getByTestId('rules-start').click();

    // 4. Exam: the status bar; warnings from the real monitors and detectors, and the shell's focus-loss report,
    // show as non-blocking warnings in the student's language.
    await expect(page.getByTestId('screen-exam')).toBeVisible();
    await expect(page.getByTestId('remaining')).toHaveText(/^1:(29|30):\d\d$/);
    let n = 0;
    if (detect) {
      await expect(page.getByTestId('warning')).toContainText(T.warnings.face_missing, { timeout: 30_000 });
      await shot(4, 'exam-face-warning');
      n++;
    }
    if (X) {
      const notes = await foreignWindow(`Notes-${lang}`);
      await expect(page.getByTestId('warning')).toContainText(T.warnings.window);
      await expect(page.getByTestId('warning-detail')).toHaveText(` · Notes-${lang}`);
      await shot(4, 'exam-window-warning');
      await notes.close();
      n++;
    }
    kiosk.service.noteFocusLost({ n: 1, at: Date.now(), by: 'ui-test' });
    await expect(page.getByTestId('warning')).toHaveText(T.warnings.focus_lost);
    n++;
    await expect(page.getByTestId('warning-count')).toHaveText(T.exam.warnings.replace('{{count}}', String(n)));
    await shot(4, 'exam');
    await page.getByTestId('finish').click();
    await expect(page.getByTestId('finish-no')).toBeVisible();
    await shot(4, 'exam-confirm');
    await page.getByTestId('finish-yes').click();

    // 5. Finish: sealed, uploaded to the embedded evidence server, released only with the receipt id shown.
    await expect(page.getByTestId('screen-finish')).toHaveAttribute('data-phase', 'done', { timeout: 60_000 });
    const st = kiosk.service.getState();
    expect(st).toMatchObject({ released: true, screen: 'done', lang });
    expect(st.finish?.receiptId).toMatch(/^[0-9A-F]{16}$/);
    await expect(page.getByTestId('receipt-id')).toHaveAttribute('data-value', st.finish!.receiptId!);
    await expect(page.getByTestId('receipt-id')).toHaveText(st.finish!.receiptId!.replace(/(.{4})(?=.)/g, '$1 '));
    await expect(page.getByTestId('close')).toBeVisible();
    await shot(5, 'done');
    // The finish sent only what the live upload had not: its first progress already counts the live-sent files.
    const counted = finishStates.find((f) => f.phase === 'uploading' && f.filesTotal !== undefined);
    expect(counted?.filesTotal).toBeGreaterThan(0);
    expect(counted!.sentBytes).toBeGreaterThanOrEqual(counted!.sentLiveBytes ?? 0);
    const log = readFileSync(join(st.finish!.bundleDir!, LOG_FILE), 'utf8');
    const v = verifyLogText(log);
    expect(v.ok, JSON.stringify(v.problems)).toBe(true);
    const types = v.records.map((r) => r.type);
    for (const t of ['kiosk.language', 'kiosk.identified', 'kiosk.checks', 'kiosk.rules_accepted', 'kiosk.exam_started', 'kiosk.focus_lost', 'kiosk.finish']) expect(types, t).toContain(t);
    const quit = new Promise<void>((r) => kiosk!.service.once('quit', () => r()));
    await page.getByTestId('close').click();
    await quit;
  });
}

test('a covered room camera keeps the student on the checks screen, with the fix in plain language (ru)', async ({ page }) => {
  const T = resources.ru.translation;
  kiosk = await startKiosk({
    lang: 'ru',
    machine: testMachine({ sources: {
      face: { kind: 'lavfi', pattern: 'testsrc2', width: 320, height: 240, fps: 10 },
      room: { kind: 'lavfi', pattern: 'color=c=black', width: 320, height: 240, fps: 10 },
      screen: { kind: 'lavfi', pattern: 'testsrc', width: 320, height: 240, fps: 5 },
    } }),
  });
  await open(page, kiosk);
  await page.getByTestId('field-studentId').fill('S2024-77');
  await page.getByTestId('field-examCode').fill('X');
  await page.getByTestId('identify-submit').click();
  await expect(page.getByTestId('check-room.desk')).toHaveAttribute('data-status', 'fail');
  await expect(page.getByTestId('check-room.desk')).toContainText(T.checks.items.room_desk.fix);
  await expect(page.getByText(T.checks.blocked)).toBeVisible();
  await expect(page.getByTestId('checks-next')).toBeDisabled();
  await page.screenshot({ path: shotPath('ru-2-checks-blocked'), fullPage: true });
  // "Check again" runs the real checks again; the camera is still covered, so the student stays.
  await page.getByTestId('checks-run').click();
  await expect(page.getByTestId('checks-run')).toBeEnabled();
  await expect(page.getByTestId('checks-next')).toBeDisabled();
  expect(kiosk.service.getState().screen).toBe('checks');
});

test('the proctor exit code releases the kiosk mid-exam; a wrong code does not (en)', async ({ page }) => {
  const T = resources.en.translation;
  kiosk = await startKiosk({ lang: 'en', exam: testExam({ exitCodeSha256: sha256Hex('proctor-7') }) });
  await open(page, kiosk);
  await page.getByTestId('field-studentId').fill('S2024-88');
  await page.getByTestId('field-examCode').fill('X');
  await page.getByTestId('identify-submit').click();
  await expect(page.getByTestId('checks-next')).toBeEnabled();
  await page.getByTestId('checks-next').click();
  await page.getByTestId('rules-accept').check();
  await page.getByTestId('rules-start').click();
  await page.getByTestId('proctor-open').click();
  await page.getByTestId('proctor-code').fill('1234');
  await page.getByTestId('proctor-submit').click();
  await expect(page.getByRole('alert')).toHaveText(T.errors.EXIT_CODE);
  expect(kiosk.service.getState()).toMatchObject({ screen: 'exam', released: false });
  await page.screenshot({ path: shotPath('en-4-exam-proctor-wrong') });
  await page.getByTestId('proctor-code').fill('proctor-7');
  await page.getByTestId('proctor-submit').click();
  await expect(page.getByTestId('screen-finish')).toHaveAttribute('data-phase', 'done');
  await expect(page.getByTestId('close')).toBeVisible();
  expect(kiosk.service.getState()).toMatchObject({ screen: 'done', released: true });
  await page.screenshot({ path: shotPath('en-5-proctor-exit') });
});
