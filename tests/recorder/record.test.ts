/**
 * A ~12-s recording of face + room (lavfi) + screen (x11grab under a private Xvfb when Xvfb exists, else lavfi),
 * with a reading and a never-reading tap subscriber. Checks every segment against ffprobe and the event log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Recorder } from '../../src/main/recorder/index.js';
import type { Frame } from '../../src/main/core/context.js';
import { probe, quickConfig, records, segEvents, sha256File, sleep, startXvfb, tempSession } from './helpers.js';

describe('recording face + room + screen', () => {
  const s = tempSession();
  let xvfb: ChildProcess | null = null;
  let screenKind = 'lavfi';
  let stopAt = 0;
  let t0 = 0;
  const faceFrames: Frame[] = [];
  let rec: Recorder;

  beforeAll(async () => {
    const x = await startXvfb();
    const sources: Record<string, unknown> = {};
    if ('display' in x) {
      xvfb = x.proc;
      screenKind = 'x11grab';
      sources.screen = { kind: 'x11grab', device: x.display, width: 640, height: 360, fps: 5 };
    } else {
      console.warn(`screen falls back to lavfi: ${x.reason}`);
    }
    rec = new Recorder({ dir: s.dir, log: s.log, config: quickConfig({ sources }) });
    t0 = rec.t0;
    // A detector that reads every frame (subscribed before start, so it sees frame 0), and one that subscribes and
    // never reads: its queue must stay bounded and ffmpeg must not wait for it.
    const reader = (async () => { for await (const f of rec.frames('face')) faceFrames.push(f); })();
    const stuck = rec.frames('room')[Symbol.asyncIterator]();
    void stuck;
    const t = Date.now();
    await rec.start();
    await sleep(Math.max(12_000 - (Date.now() - t), 9_000));
    stopAt = Date.now();
    await rec.stop();
    await reader;
  }, 90_000);

  afterAll(() => { xvfb?.kill('SIGKILL'); s.log.close(); });

  it('writes playable, contiguous segments for every source that add up to the wall time', () => {
    for (const source of ['face', 'room', 'screen'] as const) {
      const segs = segEvents(s.log, source);
      expect(segs.length, source).toBeGreaterThanOrEqual(3); // ~12 s (less ffmpeg start-up) of 3-s segments
      expect(segs.map((x) => x.index)).toEqual(segs.map((_, i) => i));
      let total = 0;
      segs.forEach((seg, i) => {
        expect(seg.file).toBe(`media/${source}/seg-${String(i).padStart(5, '0')}.ts`);
        expect(seg.run).toBe(0);
        expect(seg.partial).toBeUndefined();
        const path = join(s.dir, seg.file);
        expect(sha256File(path), `${seg.file} hash`).toBe(seg.sha256);
        const p = probe(path);
        expect(p.ok, `${seg.file} plays: ${p.err}`).toBe(true);
        expect(Math.abs(p.duration - seg.duration!), `${seg.file} ffprobe ${p.duration} vs logged ${seg.duration}`).toBeLessThan(0.35);
        if (i > 0) expect(seg.start).toBeCloseTo(segs[i - 1]!.end!, 3);
        if (i < segs.length - 1) expect(seg.duration).toBeCloseTo(3, 1);
        total += seg.duration!;
      });
      // Wall time from the moment ffmpeg's stream clock started (it says "Press [q]"; the first segment starts there)
      // to the moment it was asked to stop: the segments must cover it within 1 s.
      const wall = (stopAt - t0) / 1000 - segs[0]!.start!;
      const spawned = records(s.log).find((r) => r.type === 'recorder.started' && (r.data as { source: string }).source === source)!;
      expect(segs[0]!.start! - (spawned.wall - t0) / 1000, 'ffmpeg start-up').toBeLessThan(8);
      console.log(`${source} (${source === 'screen' ? screenKind : 'lavfi'}): ${segs.length} segments, ${total.toFixed(2)} s recorded, ${wall.toFixed(2)} s wall`);
      expect(Math.abs(wall - total), `${source} (${source === 'screen' ? screenKind : 'lavfi'}): ${total.toFixed(2)} s recorded in ${wall.toFixed(2)} s`).toBeLessThan(1);
    }
  });

  it('logs started/stopped per source and the log verifies', () => {
    const recs = records(s.log);
    const types = recs.map((r) => r.type);
    expect(types.filter((t) => t === 'recorder.started')).toHaveLength(3);
    expect(types.filter((t) => t === 'recorder.stopped')).toHaveLength(3);
    expect(types).not.toContain('recorder.restart');
    const started = recs.find((r) => r.type === 'recorder.started' && (r.data as { source: string }).source === 'screen')!.data as { args: string[] };
    expect(started.args).toContain(screenKind === 'x11grab' ? 'x11grab' : 'lavfi');
    // The last segment of each source is logged before the source says it stopped.
    for (const source of ['face', 'room', 'screen']) {
      const lastSeg = recs.findLastIndex((r) => r.type === 'segment.closed' && (r.data as { source: string }).source === source);
      const stopped = recs.findIndex((r) => r.type === 'recorder.stopped' && (r.data as { source: string }).source === source);
      expect(lastSeg).toBeLessThan(stopped);
    }
  });

  it('taps face frames at ~tapFps with the configured size, and a never-reading subscriber stalls nothing', () => {
    const faceSeconds = segEvents(s.log, 'face').reduce((a, x) => a + x.duration!, 0);
    // 2 fps over the recorded time (the fps filter may hold back the last frame or two at stop).
    expect(faceFrames.length).toBeGreaterThanOrEqual(Math.floor(faceSeconds * 2) - 2);
    expect(faceFrames.length).toBeLessThanOrEqual(Math.ceil(faceSeconds * 2) + 1);
    // Frame 0 is at the stream's start, which is where the first segment starts.
    expect(Math.abs(faceFrames[0]!.pts - segEvents(s.log, 'face')[0]!.start!)).toBeLessThan(0.01);
    for (const f of faceFrames) {
      expect(f.source).toBe('face');
      expect([f.width, f.height]).toEqual([160, 120]);
      expect(f.data.length).toBe(160 * 120 * 3);
    }
    const first = faceFrames[0]!;
    const last = faceFrames.at(-1)!;
    const rate = (faceFrames.length - 1) / ((last.wall - first.wall) / 1000);
    expect(rate).toBeGreaterThan(1.5);
    expect(rate).toBeLessThan(2.6);
    expect(last.pts - first.pts).toBeCloseTo((faceFrames.length - 1) / 2, 3);
    // testsrc2 is colourful: the frames carry picture, not zeros.
    const mid = faceFrames[Math.floor(faceFrames.length / 2)]!.data;
    expect(new Set(mid.subarray(0, 3000)).size).toBeGreaterThan(5);
    const st = rec.stats();
    expect(st.face!.tap!.dropped).toBe(0);
    expect(st.room!.tap!.produced).toBeGreaterThanOrEqual(Math.floor(faceSeconds * 2) - 2);
    expect(st.room!.tap!.dropped).toBe(st.room!.tap!.produced - 3); // keeps only the newest 3
    expect(st.screen!.tap).toBeNull();
  });
});
