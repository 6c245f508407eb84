import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyLogText } from '../../src/main/core/eventlog.js';
import { LOG_FILE, MANIFEST_FILE } from '../../src/main/evidence/format.js';
import { sha256Hex } from '../../src/main/shell/policy.js';
import type { BridgeResult, KioskState, PreviewFrame } from '../../src/shared/bridge.js';
import { startKiosk, testExam, testMachine, type Kiosk } from '../ui/harness.js';

let k: Kiosk | null = null;
afterEach(async () => { await k?.close(); k = null; });

const ok = <T>(r: BridgeResult<unknown>): T => {
  if (!r.ok) throw new Error(`bridge error: ${JSON.stringify(r.error)}`);
  return r.value as T;
};

describe('KioskService over the real session (headless)', () => {
  it('runs identify → checks → rules → exam → finish and seals a bundle whose log holds the kiosk events', async () => {
    k = await startKiosk();
    const previews: PreviewFrame[] = [];
    k.service.on('preview', (f) => previews.push(f));
    const bad = await k.service.invoke('identify', [{ studentId: 'a b', examCode: 'X1' }]);
    expect(bad).toMatchObject({ ok: false, error: { code: 'FIELD_INVALID', field: 'studentId' } });

    let s = ok<KioskState>(await k.service.invoke('identify', [{ studentId: '  S2024-001 ', examCode: 'MATH1' }]));
    expect(s.screen).toBe('checks');
    expect(s.recording).toBe(true);
    s = ok<KioskState>(await k.service.invoke('runChecks', []));
    const byId = Object.fromEntries(s.checks.map((c) => [c.id, c.status]));
    expect(byId['camera.face']).toBe('ok');
    expect(byId['camera.room']).toBe('ok');
    expect(byId['room.desk']).toBe('ok');
    expect(byId['face.visible']).toBe('warn'); // a test pattern has no face
    expect(s.checksPassed).toBe(true);
    expect(previews.some((p) => p.source === 'face' && p.dataUrl.startsWith('data:image/png;base64,iVBORw0KGgo'))).toBe(true);

    expect(await k.service.invoke('acceptRules', [])).toMatchObject({ ok: false, error: { code: 'WRONG_SCREEN' } });
    s = ok<KioskState>(await k.service.invoke('confirmChecks', []));
    expect(s.screen).toBe('rules');
    const shown: string[] = [];
    k.service.on('exam-view', (v) => shown.push(`${v.show}:${v.url}`));
    s = ok<KioskState>(await k.service.invoke('acceptRules', []));
    expect(s.screen).toBe('exam');
    expect(s.examEndsAt! - s.examStartedAt!).toBe(90 * 60_000);
    expect(shown).toEqual(['true:https://moodle.example.kz/mod/quiz/view.php?id=7']);

    k.service.noteFocusLost({ n: 1, at: Date.now() });
    k.service.note('kiosk.shortcut_blocked', { combo: 'Alt+F4' });
    s = k.service.getState();
    expect(s.focusLosses).toBe(1);
    expect(s.warnings.map((w) => w.messageKey)).toEqual(['warnings.focus_lost', 'warnings.shortcut']);
    expect(await k.service.invoke('quit', [])).toEqual({ ok: true, value: { quitting: false } });

    s = ok<KioskState>(await k.service.invoke('finish', []));
    expect(s.screen).toBe('done');
    expect(s.released).toBe(true);
    expect(s.finish).toMatchObject({ phase: 'done', localOnly: true });
    expect(existsSync(join(s.finish!.bundleDir!, MANIFEST_FILE))).toBe(true);
    const v = verifyLogText(readFileSync(join(s.finish!.bundleDir!, LOG_FILE), 'utf8'));
    expect(v.ok, JSON.stringify(v.problems)).toBe(true);
    const types = v.records.map((r) => r.type);
    for (const t of ['kiosk.identified', 'kiosk.checks', 'kiosk.rules_accepted', 'kiosk.exam_started', 'kiosk.focus_lost', 'kiosk.shortcut_blocked', 'kiosk.finish']) {
      expect(types, t).toContain(t);
    }
    expect(types.indexOf('kiosk.identified')).toBeLessThan(types.indexOf('kiosk.exam_started'));
  });

  it('keeps the student on the checks screen when the room camera is covered', async () => {
    k = await startKiosk({ machine: testMachine({ sources: { room: { kind: 'lavfi', pattern: 'color=c=black', width: 320, height: 240, fps: 10 }, face: { kind: 'lavfi', pattern: 'testsrc2', width: 320, height: 240, fps: 10 }, screen: { kind: 'lavfi', pattern: 'testsrc', width: 320, height: 240, fps: 5 } } }) });
    ok(await k.service.invoke('identify', [{ studentId: 'S1001', examCode: 'E' }]));
    const s = ok<KioskState>(await k.service.invoke('runChecks', []));
    expect(s.checks.find((c) => c.id === 'room.desk')).toMatchObject({ status: 'fail', blocking: true, fixKey: 'checks.items.room_desk.fix' });
    expect(s.checksPassed).toBe(false);
    expect(await k.service.invoke('confirmChecks', [])).toMatchObject({ ok: false, error: { code: 'CHECKS_FAILED' } });
  });

  it('lets a proctor exit with the right code only, sealing the session', async () => {
    k = await startKiosk({ exam: testExam({ exitCodeSha256: sha256Hex('open-sesame-42') }) });
    expect(k.service.getState().exam.hasExitCode).toBe(true);
    expect(await k.service.invoke('proctorExit', ['wrong'])).toMatchObject({ ok: false, error: { code: 'EXIT_CODE' } });
    ok(await k.service.invoke('identify', [{ studentId: 'S1002', examCode: 'E' }]));
    const s = ok<KioskState>(await k.service.invoke('proctorExit', ['open-sesame-42']));
    expect(s).toMatchObject({ screen: 'done', released: true, finish: { phase: 'done' } });
    const lines = readFileSync(join(s.finish!.bundleDir!, LOG_FILE), 'utf8');
    // The wrong attempt happened before the session opened: it is still in the log, before the exit.
    expect(lines.indexOf('kiosk.exit_code_rejected')).toBeGreaterThan(0);
    expect(lines.indexOf('kiosk.exit_code_rejected')).toBeLessThan(lines.indexOf('kiosk.proctor_exit'));
    expect(await k.service.invoke('quit', [])).toEqual({ ok: true, value: { quitting: true } });
  });

  it('rejects malformed bridge calls with a clear error', async () => {
    k = await startKiosk();
    expect(await k.service.invoke('rm -rf', [])).toMatchObject({ ok: false, error: { code: 'BAD_METHOD' } });
    expect(await k.service.invoke('identify', 'x')).toMatchObject({ ok: false, error: { code: 'BAD_ARGS' } });
    expect(await k.service.invoke('identify', [[1, 2]])).toMatchObject({ ok: false, error: { code: 'BAD_ARGS' } });
    expect(await k.service.invoke('setLanguage', ['de'])).toMatchObject({ ok: false, error: { code: 'BAD_ARGS' } });
    expect(await k.service.invoke('finish', [])).toMatchObject({ ok: false, error: { code: 'WRONG_SCREEN' } });
  });
});
