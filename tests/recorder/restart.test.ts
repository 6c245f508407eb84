/** kill -9 of a source's ffmpeg mid-recording: logged, restarted, numbering continues, the partial segment is kept. */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { once } from 'node:events';
import { Recorder } from '../../src/main/recorder/index.js';
import type { Frame } from '../../src/main/core/context.js';
import { probe, quickConfig, records, segEvents, sha256File, sleep, tempSession } from './helpers.js';

const only = (over: Record<string, unknown> = {}) => quickConfig({
  sources: { room: { kind: 'none' }, screen: { kind: 'none' } },
  recording: { segmentSeconds: 2, restartDelayMs: 300, ...over },
});

describe('ffmpeg killed mid-recording', () => {
  const s = tempSession();
  afterAll(() => s.log.close());

  it('logs recorder.exited + recorder.restart, restarts with continued numbering, keeps the partial segment', async () => {
    const rec = new Recorder({ dir: s.dir, log: s.log, config: only() });
    const frames: Frame[] = [];
    const reader = (async () => { for await (const f of rec.frames('face')) frames.push(f); })();
    await rec.start();
    // Let one segment close and the next one be half written.
    await once(rec, 'segment');
    await sleep(1000);
    const pid = rec.stats().face!.pid!;
    expect(pid).toBeGreaterThan(0);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const [started] = await once(rec, 'started') as [{ run: number; pid: number }];
    expect(started.run).toBe(1);
    expect(Date.now() - killedAt).toBeLessThan(8000); // back within seconds (restartDelayMs 300 + start-up under load)
    const framesBefore = frames.length;
    await sleep(4500);
    await rec.stop();
    await reader;

    const recs = records(s.log);
    const exited = recs.find((r) => r.type === 'recorder.exited')!.data as Record<string, unknown>;
    expect(exited).toMatchObject({ source: 'face', run: 0, signal: 'SIGKILL', expected: false });
    expect(typeof exited.stderrTail).toBe('string');
    expect(recs.find((r) => r.type === 'recorder.restart')!.data).toMatchObject({ source: 'face', run: 1, delayMs: 300 });
    const runs = recs.filter((r) => r.type === 'recorder.started').map((r) => r.data as { run: number; startNumber: number });
    expect(runs.map((r) => r.run)).toEqual([0, 1]);

    const segs = segEvents(s.log, 'face');
    // Every index once, no gaps, across both runs; run 1 starts right after the last file of run 0.
    expect(segs.map((x) => x.index)).toEqual(segs.map((_, i) => i));
    const run0 = segs.filter((x) => x.run === 0);
    const run1 = segs.filter((x) => x.run === 1);
    expect(run0.length).toBeGreaterThanOrEqual(2);
    expect(run1.length).toBeGreaterThanOrEqual(2);
    expect(runs[1]!.startNumber).toBe(run0.at(-1)!.index + 1);
    const partial = run0.at(-1)!;
    expect(partial.partial).toBe(true);
    expect(run0.slice(0, -1).every((x) => !x.partial)).toBe(true);
    // The half-written segment was killed ~1 s in: it still plays and holds most of that second.
    const p = probe(join(s.dir, partial.file));
    expect(p.ok, p.err).toBe(true);
    expect(partial.duration).toBeGreaterThan(0.2);
    for (const seg of segs) expect(sha256File(join(s.dir, seg.file))).toBe(seg.sha256);
    // Time moves forward across the restart: run 1 begins after run 0's partial segment ended.
    expect(run1[0]!.start!).toBeGreaterThanOrEqual(partial.end! - 0.05);
    // The tap survived the restart: the same subscriber kept getting frames from run 1.
    expect(frames.length - framesBefore).toBeGreaterThanOrEqual(6);
    expect(frames.at(-1)!.pts).toBeGreaterThan(run1[0]!.start!);
    expect(rec.stats().face!.restarts).toBe(1);
  });

  it('a frozen ffmpeg (SIGSTOP: no new data) is noticed as stalled, killed and restarted', async () => {
    const s3 = tempSession();
    const rec = new Recorder({ dir: s3.dir, log: s3.log, config: only() });
    await rec.start();
    const pid = rec.stats().face!.pid!;
    process.kill(pid, 'SIGSTOP');
    const t = Date.now();
    const [started] = await once(rec, 'started') as [{ run: number }];
    expect(started.run).toBe(1);
    expect(Date.now() - t).toBeGreaterThanOrEqual(9_000); // not before the stall window (10 s)
    await once(rec, 'segment');
    await rec.stop();
    const recs = records(s3.log);
    expect(recs.find((r) => r.type === 'recorder.stalled')!.data).toMatchObject({ source: 'face', run: 0 });
    expect(recs.find((r) => r.type === 'recorder.exited')!.data).toMatchObject({ run: 0, signal: 'SIGKILL', reason: expect.stringMatching(/no new data/) });
    expect(segEvents(s3.log, 'face').some((x) => x.run === 1)).toBe(true);
    s3.log.close();
  });

  it('gives up after maxRestarts with recorder.failed, and stop() still closes cleanly', async () => {
    const s2 = tempSession();
    const rec = new Recorder({ dir: s2.dir, log: s2.log, config: only({ maxRestarts: 0 }) });
    await rec.start();
    process.kill(rec.stats().face!.pid!, 'SIGKILL');
    const [failed] = await once(rec, 'failed') as [{ source: string; reason: string }];
    expect(failed.source).toBe('face');
    expect(failed.reason).toMatch(/gave up after 0 restarts/);
    expect(rec.stats().face!.state).toBe('failed');
    await rec.stop();
    const types = records(s2.log).map((r) => r.type);
    expect(types).toContain('recorder.failed');
    expect(types).not.toContain('recorder.restart');
    expect(types.at(-1)).toBe('recorder.stopped');
    s2.log.close();
  });
});
