/**
 * The kiosk with its monitors on a real (private) X display: the pre-checks come from the session's own monitor
 * sources (X11 foreground, xrandr, xclip), the kiosk window is recognised by its title as the shell passes it,
 * pastes of text copied outside the exam are refused under the "isolate" policy, print attempts are logged once per
 * burst, and kiosk events after the seal go to the sidecar the next session adopts into its chain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../src/main/core/canonical.js';
import { verifyLogText } from '../../src/main/core/eventlog.js';
import { LOG_FILE } from '../../src/main/evidence/format.js';
import { AFTER_SEAL_FILE, KioskService } from '../../src/main/kiosk/service.js';
import { kioskWindowTitle } from '../../src/main/shell/policy.js';
import type { BridgeResult, KioskState } from '../../src/shared/bridge.js';
import { missingXTools, startXServer, type XServer } from '../monitors/xserver.js';
import { startKiosk, testExam, testMachine } from '../ui/harness.js';

const missing = [...missingXTools(), ...(['xclip', 'xrandr'].filter((t) => !process.env.PATH?.split(':').some((d) => existsSync(join(d, t)))))];
const ok = (r: BridgeResult<unknown>): KioskState => {
  if (!r.ok) throw new Error(`bridge error: ${JSON.stringify(r.error)}`);
  return r.value as KioskState;
};

/** Another program puts text on the clipboard (xclip stays its owner in the background). */
async function copyOutside(text: string, env: NodeJS.ProcessEnv): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const c = spawn('xclip', ['-selection', 'clipboard', '-i'], { env, stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    c.on('error', reject);
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`xclip exited ${code}`))));
    c.stdin!.end(text);
  });
  // xclip's parent exits before its background child owns the selection: wait until the clipboard serves the text.
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const r = spawnSync('xclip', ['-selection', 'clipboard', '-o'], { env, encoding: 'utf8', timeout: 1000 });
    if (r.stdout === text) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`the clipboard never served "${text}"`);
}

describe.skipIf(missing.length > 0)(`kiosk monitors on a real X display${missing.length ? ` — skipped: ${missing.join(', ')} not installed` : ''}`, () => {
  let x: XServer;
  beforeAll(async () => {
    x = await startXServer();
    process.env.DISPLAY = x.display;
  });
  afterAll(async () => { await x?.stop(); });

  it('checks with the session\'s sources, isolates the clipboard, logs print attempts, and keeps after-seal events', async () => {
    const exam = testExam({ monitors: { clipboard: 'isolate' } });
    // The kiosk window as the shell names it; the foreground monitor knows it by that title.
    const win = await x.window(kioskWindowTitle(exam.title), false);
    x.activate(win.id);
    const k = await startKiosk({ exam, extra: { monitors: { ours: { pids: [process.pid], titles: [kioskWindowTitle(exam.title)] } } } });
    try {
      ok(await k.service.invoke('identify', [{ studentId: 'S5001', examCode: 'E' }]));
      let s = ok(await k.service.invoke('runChecks', []));
      const byId = Object.fromEntries(s.checks.map((c) => [c.id, c]));
      expect(byId.foreground).toMatchObject({ status: 'ok', text: { en: 'Window focus can be watched.' } });
      expect(byId.clipboard).toMatchObject({ status: 'ok' });
      expect(byId.displays).toMatchObject({ status: 'warn', blocking: false }); // Xvfb's output is a virtual display
      expect(byId.displays!.text!.kk).toMatch(/screen/);
      expect(byId.detection).toMatchObject({ status: 'unavailable', fixKey: 'checks.items.detection.disabled' });
      ok(await k.service.invoke('confirmChecks', []));
      ok(await k.service.invoke('acceptRules', []));

      // Isolate: text copied in another program cannot be pasted into the exam; text copied inside can.
      await copyOutside('answers from a friend', x.env);
      expect(await k.service.checkPaste()).toEqual({ allow: false, reason: 'outside-blocked' });
      await copyOutside('x = 42', x.env);
      await k.service.noteInternalCopy();
      expect(await k.service.checkPaste()).toEqual({ allow: true, reason: 'internal' });

      for (let i = 0; i < 12; i++) k.service.notePrintBlocked({ url: 'http://127.0.0.1/exam', via: 'window.print' });
      s = k.service.getState();
      expect(s.warnings.map((w) => w.messageKey)).toEqual(expect.arrayContaining(['warnings.clipboard', 'warnings.print']));
      expect(s.warnings.some((w) => w.messageKey === 'warnings.window')).toBe(false); // the kiosk window stayed in front

      s = ok(await k.service.invoke('finish', []));
      expect(s.released).toBe(true);
      const log = verifyLogText(readFileSync(join(s.finish!.bundleDir!, LOG_FILE), 'utf8'));
      expect(log.ok, JSON.stringify(log.problems)).toBe(true);
      const types = log.records.map((r) => r.type);
      expect(types.filter((t) => t === 'kiosk.print_blocked')).toHaveLength(2); // the 1st and the 10th of 12
      expect(types).toContain('monitor.clipboard.paste_blocked');
      expect(types).not.toContain('monitor.foreground.away');

      // After the seal: the chain is closed, the event goes to the sidecar …
      k.service.noteFocusLost({ n: 1, at: Date.now() });
      k.service.note('kiosk.shortcut_blocked', { combo: 'Alt+Tab' });
      const side = k.service.afterSealFile;
      const text = readFileSync(side, 'utf8');
      expect(text.trim().split('\n').map((l) => (JSON.parse(l) as { type: string; session: string }).type)).toEqual(['kiosk.focus_lost', 'kiosk.shortcut_blocked']);

      // … and the next session on this machine adopts it: hash and counts in its chain, the file kept by name.
      const next = new KioskService({ machine: testMachine(), exam: testExam(), demo: true, home: k.home });
      try {
        const s2 = ok(await next.invoke('identify', [{ studentId: 'S5002', examCode: 'E' }]));
        const rec = verifyLogText(readFileSync(join(k.home.sessions, s2.sessionId!, LOG_FILE), 'utf8')).records.find((r) => r.type === 'kiosk.after_seal_previous');
        expect(rec?.data).toMatchObject({ sha256: sha256Hex(text), records: 2, types: { 'kiosk.focus_lost': 1, 'kiosk.shortcut_blocked': 1 }, sessions: [s.sessionId] });
        expect(existsSync(side)).toBe(false);
        expect(readdirSync(join(side, '..'))).toContain(`after-seal.adopted-by-${s2.sessionId}.ndjson`);
        expect(AFTER_SEAL_FILE).toBe('after-seal.ndjson');
      } finally {
        await next.close('test-end');
      }
    } finally {
      await k.close();
    }
  });
});
