/**
 * kill -9 of the whole recording process group (Node and its ffmpeg), then crash recovery: the in-progress
 * segment is hashed and logged by closeDanglingSegments, plays, and little of it is lost.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { mkdirSync, readFileSync } from 'node:fs';
import { EventLog } from '../../src/main/core/eventlog.js';
import { closeDanglingSegments, probeDuration } from '../../src/main/recorder/index.js';
import { probe, records, segEvents, sha256File, sleep, tempSession } from './helpers.js';

/** Running (a zombie waiting for init to reap it counts as dead). */
function alive(pid: number): boolean {
  try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

describe('crash of the recording process group', () => {
  const s = tempSession();
  s.log.close();
  const dir = join(s.home, 'sessions', 'crashed');
  mkdirSync(dir, { recursive: true });
  afterAll(() => {});

  it('closeDanglingSegments logs the partial segment; it plays and at most ~1 s + flush window is lost', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'child-record.ts'), dir], {
      detached: true, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env },
    });
    const lines = createInterface({ input: child.stdout! });
    let ffmpegPid = 0;
    let closedBeforeKill = 0;
    let t0 = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('child did not start recording within 60 s')), 60_000);
      lines.on('line', (l) => {
        const m = JSON.parse(l) as { ready?: boolean; pid?: number; t0?: number; segment?: unknown };
        if (m.segment) closedBeforeKill++;
        if (m.ready) { ffmpegPid = m.pid!; t0 = m.t0!; }
        // Kill 1.5 s into the second segment (3-s segments): one closed, one half written.
        if (closedBeforeKill === 1 && ffmpegPid) { clearTimeout(timer); resolve(); }
      });
      child.on('exit', (c) => reject(new Error(`child exited early (${c})`)));
    });
    child.removeAllListeners('exit');
    await sleep(1500);
    const killedAt = Date.now();
    process.kill(-child.pid!, 'SIGKILL');
    await sleep(300);
    expect(alive(ffmpegPid), 'ffmpeg died with its process group').toBe(false);

    const before = segEvents({ path: join(dir, 'events.ndjson') } as EventLog);
    expect(before.length).toBe(1);

    const log = EventLog.open(join(dir, 'events.ndjson'));
    const n = await closeDanglingSegments(dir, log);
    expect(n).toBe(1);
    const segs = segEvents(log, 'face');
    expect(segs.map((x) => x.index)).toEqual([0, 1]);
    const rec1 = segs[1]!;
    expect(rec1).toMatchObject({ file: 'media/face/seg-00001.ts', recovered: true, run: 0 });
    expect(sha256File(join(dir, rec1.file))).toBe(rec1.sha256);
    expect(rec1.start).toBeCloseTo(segs[0]!.end!, 3);
    const p = probe(join(dir, rec1.file));
    expect(p.ok, p.err).toBe(true);
    expect(rec1.duration).toBe(await probeDuration(join(dir, rec1.file)));
    // What the kill cost: from the recovered segment's end to the moment of the kill (session seconds).
    const lost = (killedAt - t0) / 1000 - rec1.end!;
    console.log(`kill -9 lost ${lost.toFixed(2)} s of the in-progress segment (kept ${rec1.duration} s)`);
    expect(lost).toBeLessThan(1.6);
    expect(lost).toBeGreaterThan(-0.3);
    // Idempotent: a second recovery finds nothing, and the log still verifies.
    expect(await closeDanglingSegments(dir, log)).toBe(0);
    expect(records(log).some((r) => r.type === 'log.opened' && (r.data as { resumedAt: number }).resumedAt > 0)).toBe(true);
    log.close();
  });
});
