import { describe, it, expect, vi, afterEach } from 'vitest';
import { join } from 'node:path';
import { detectCommand, parseDetectArgs } from '../../src/main/detect/cli.js';
import { DetectorPool, DetectionScheduler, type DetectionResult, type Frame } from '../../src/main/detect/pool.js';
import { decodeImage } from '../../src/main/detect/image.js';
import { FIXTURES, ffmpeg, makePhoneScenes, tmp } from './helpers.js';

function capture() {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { lines.push(a.join(' ')); });
  const err = vi.spyOn(console, 'error').mockImplementation(() => {});
  return { lines, restore: () => { spy.mockRestore(); err.mockRestore(); } };
}
afterEach(() => vi.restoreAllMocks());

describe('kuzet detect', () => {
  it('--json on an image prints one object with faces and objects that pass the thresholds', async () => {
    const c = capture();
    const code = await detectCommand([join(FIXTURES, 'face_frontal.jpg'), '--json']);
    c.restore();
    expect(code).toBe(0);
    expect(c.lines).toHaveLength(1);
    const o = JSON.parse(c.lines[0]!) as { faces: { box: object; score: number; yaw: number; pitch: number; roll: number }[]; objects: { label: string; score: number }[] };
    expect(Object.keys(o).sort()).toEqual(['faces', 'objects']);
    expect(o.faces).toHaveLength(1);
    expect(Object.keys(o.faces[0]!)).toEqual(expect.arrayContaining(['box', 'score', 'yaw', 'pitch', 'roll']));
    expect(o.faces[0]!.score).toBeGreaterThanOrEqual(0.5);
    for (const ob of o.objects) expect(ob.score).toBeGreaterThanOrEqual(0.3);
  });

  it('--json on a video prints one object per analysed frame with its time', async () => {
    const { phone } = makePhoneScenes(tmp());
    const v = join(tmp(), 'desk.mp4');
    ffmpeg(['-loop', '1', '-i', phone, '-t', '1.5', '-r', '10', '-pix_fmt', 'yuv420p', v]);
    const c = capture();
    const code = await detectCommand([v, '--json', '--fps', '2', '--no-faces']);
    c.restore();
    expect(code).toBe(0);
    const recs = c.lines.map((l) => JSON.parse(l) as { time: number; objects: { label: string }[] });
    expect(recs.map((r) => r.time)).toEqual([0, 0.5, 1]);
    expect(recs.every((r) => r.objects.some((o) => o.label === 'cell phone'))).toBe(true);
  });

  it('exit codes: 2 without files or with a bad option, 1 for an unreadable file', async () => {
    const c = capture();
    expect(await detectCommand([])).toBe(2);
    expect(await detectCommand(['x.jpg', '--tiles', '7'])).toBe(2);
    expect(await detectCommand([join(tmp(), 'missing.jpg')])).toBe(1);
    c.restore();
  });

  it('parses thresholds', () => {
    const a = parseDetectArgs(['a.png', '--face-score', '0.7', '--object-score', '0.4', '--face-model', 'front-128']);
    expect(a.opts).toMatchObject({ faceScore: 0.7, objectScore: 0.4, faceModel: 'front-128' });
  });
});

describe('DetectorPool (worker thread)', () => {
  it('analyses frames off the main thread and drops frames when the bounded queue is full', async () => {
    const img = await decodeImage(join(FIXTURES, 'face_frontal.jpg'));
    const pool = await DetectorPool.start({ workers: 1, maxQueue: 2 });
    try {
      const results: DetectionResult[] = [];
      pool.on('result', (r: DetectionResult) => results.push(r));
      const accepted: boolean[] = [];
      for (let i = 0; i < 6; i++) {
        const f: Frame = { source: 'face', width: img.width, height: img.height, data: img.data, pts: i * 0.2, wall: Date.now() };
        accepted.push(pool.submit(f, { objects: false }));
      }
      await pool.drain();
      const st = pool.stats();
      // 1 in flight + 1 waiting per source: each newer frame replaces the waiting one, so the freshest is analysed
      expect(accepted).toEqual([true, true, true, true, true, true]);
      expect(st).toMatchObject({ submitted: 6, processed: 2, dropped: 4, errors: 0, queued: 0, inFlight: 0 });
      expect(st.droppedBySource).toEqual({ face: 4 });
      expect(results.map((r) => r.pts)).toEqual([0, 1]);
      expect(results[0]!.faces).toHaveLength(1);
      expect(results[0]!.source).toBe('face');
    } finally {
      await pool.close();
    }
  });

  it('a busy camera cannot starve the other one: each source keeps one waiting frame', async () => {
    const img = await decodeImage(join(FIXTURES, 'face_frontal.jpg'));
    const pool = await DetectorPool.start({ workers: 1, maxQueue: 3 });
    try {
      const results: DetectionResult[] = [];
      pool.on('result', (r: DetectionResult) => results.push(r));
      const frame = (source: string, pts: number): Frame => ({ source, width: img.width, height: img.height, data: img.data, pts, wall: Date.now() });
      for (let i = 0; i < 8; i++) pool.submit(frame('face', i * 0.2), { objects: false });
      pool.submit(frame('room', 0), { objects: false });
      for (let i = 8; i < 12; i++) pool.submit(frame('face', i * 0.2), { objects: false });
      await pool.drain();
      expect(results.map((r) => `${r.source}@${r.pts}`).sort()).toEqual(['face@0', 'face@2.2', 'room@0']);
      expect(pool.stats().droppedBySource).toEqual({ face: 10 });
    } finally {
      await pool.close();
    }
  });

  it('fails to start with the model error when a model is corrupt', async () => {
    await expect(DetectorPool.start({ modelsDir: join(tmp(), 'nothing-here') })).rejects.toThrow(/manifest/i);
  });

  it('scheduler gives faces at 5 Hz and objects at 2 Hz from a 10 fps tap', () => {
    const s = new DetectionScheduler(5, 2);
    let faces = 0; let objects = 0;
    for (let i = 0; i < 100; i++) {
      const p = s.plan({ source: 'room', pts: i / 10 });
      if (p?.faces) faces++;
      if (p?.objects) objects++;
    }
    expect(faces).toBe(50);
    expect(objects).toBe(20);
  });
});
