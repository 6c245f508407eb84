/** Bad sources and a full disk: clear KuzetErrors naming the source, quickly; closed segments stay intact. */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { KuzetError } from '../../src/main/core/errors.js';
import { Recorder } from '../../src/main/recorder/index.js';
import { probe, quickConfig, records, segEvents, sha256File, tempSession } from './helpers.js';

const none = { kind: 'none' };

async function startError(rec: Recorder): Promise<{ err: KuzetError; ms: number }> {
  const t = Date.now();
  try {
    await rec.start();
  } catch (e) {
    return { err: e as KuzetError, ms: Date.now() - t };
  }
  await rec.stop();
  throw new Error('start() should have failed');
}

describe('sources that cannot record', () => {
  const s = tempSession();
  afterAll(() => s.log.close());

  it('a camera that does not exist: KuzetError naming the source and device, at once, nothing spawned', async () => {
    const rec = new Recorder({ dir: s.dir, log: s.log, config: quickConfig({ sources: { face: { kind: 'v4l2', device: '/dev/video9' } } }) });
    const { err, ms } = await startError(rec);
    expect(err).toBeInstanceOf(KuzetError);
    expect(err.code).toBe('SOURCE_NOT_FOUND');
    expect(err.message).toContain('face camera');
    expect(err.message).toContain('/dev/video9');
    expect(ms).toBeLessThan(1000);
    expect(records(s.log).filter((r) => r.type === 'recorder.started')).toHaveLength(0);
  });

  it('a device that is not a camera: ffmpeg fails at start-up, the error carries its reason; other sources are stopped', async () => {
    const rec = new Recorder({ dir: s.dir, log: s.log, config: quickConfig({ sources: { face: { kind: 'v4l2', device: '/dev/null' }, screen: none } }) });
    const { err, ms } = await startError(rec);
    expect(err.code).toBe('SOURCE_FAILED');
    expect(err.message).toMatch(/face camera \(v4l2 \/dev\/null\)/);
    expect(err.message).toMatch(/Inappropriate ioctl/);
    expect(err.message).toMatch(/not a camera/);
    expect(ms).toBeLessThan(10_000);
    // The room camera had started; it was stopped again and its segments are logged.
    const st = rec.stats();
    expect(st.room!.state).toBe('stopped');
    expect(st.room!.pid).toBeNull();
    const types = records(s.log).map((r) => `${r.type}:${(r.data as { source?: string }).source}`);
    expect(types).toContain('recorder.stopped:room');
    expect(types).toContain('recorder.exited:face');
  });

  it('a file source that does not exist, and one that is not a video', async () => {
    const missing = new Recorder({ dir: s.dir, log: s.log, config: quickConfig({ sources: { room: { kind: 'file', file: '/nonexistent/desk.mp4' } } }) });
    const a = await startError(missing);
    expect(a.err.code).toBe('SOURCE_NOT_FOUND');
    expect(a.err.message).toContain('/nonexistent/desk.mp4');
    expect(a.err.message).toContain('sources.room.file');

    const junk = join(s.home, 'junk.mp4');
    writeFileSync(junk, Buffer.alloc(50_000, 7));
    const bad = new Recorder({ dir: s.dir, log: s.log, config: quickConfig({ sources: { face: none, room: { kind: 'file', file: junk }, screen: none } }) });
    const b = await startError(bad);
    expect(b.err.code).toBe('SOURCE_FAILED');
    expect(b.err.message).toContain('room camera');
    expect(b.err.message).toMatch(/Invalid data found|moov atom not found/);
    expect(b.ms).toBeLessThan(10_000);
  });

  it('a source on the wrong OS, a switched-off source, and frames() without a tap are clear errors', () => {
    expect(() => new Recorder({ dir: s.dir, log: s.log, config: quickConfig(), sources: ['mic'] })).toThrow(/microphone is switched off/);
    const rec = new Recorder({ dir: s.dir, log: s.log, config: quickConfig() });
    expect(() => rec.frames('screen')).toThrow(/not in recording.tapSources/);
    const win = new Recorder({ dir: s.dir, log: s.log, config: quickConfig({ sources: { face: { kind: 'dshow', device: 'Integrated Camera' } } }) });
    return expect(win.start()).rejects.toMatchObject({ code: 'SOURCE_UNSUPPORTED', message: expect.stringContaining('only on win32') });
  });
});

/** Tries a 1-MB tmpfs mount (needs root / CAP_SYS_ADMIN). */
function tmpfsReason(): string | null {
  if (process.platform !== 'linux') return 'tmpfs mounts exist only on Linux';
  const d = mkdtempSync(join(tmpdir(), 'kuzet-mnt-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', d], { encoding: 'utf8' });
  if (r.status !== 0) { rmdirSync(d); return `mount -t tmpfs is not permitted here: ${(r.stderr || r.error?.message || '').trim()}`; }
  spawnSync('umount', [d]);
  rmdirSync(d);
  return null;
}
const noMount = tmpfsReason();

describe('full disk', () => {
  it.skipIf(noMount !== null)(`ffmpeg failing to write → recorder.error DISK_FULL + problem event, closed segments intact${noMount ? ` (skipped: ${noMount})` : ''}`, async () => {
    const s = tempSession();
    const media = join(s.dir, 'media');
    mkdirSync(media);
    // 500 kB: two 2-s segments of a busy 640x480 picture fit, the third does not. The event log is outside it.
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=500k', 'tmpfs', media]).status).toBe(0);
    try {
      const config = quickConfig({
        sources: { face: { kind: 'lavfi', pattern: 'testsrc2', width: 640, height: 480, fps: 15 }, room: none, screen: none },
        recording: { segmentSeconds: 2, crf: 20, restartDelayMs: 200, maxRestarts: 1 },
      });
      const rec = new Recorder({ dir: s.dir, log: s.log, config });
      const problems: KuzetError[] = [];
      rec.on('problem', (e) => problems.push(e));
      const failed = once(rec, 'failed');
      await rec.start();
      const [f] = await Promise.race([failed, new Promise((_, rej) => setTimeout(() => rej(new Error('no recorder.failed within 40 s')), 40_000))]) as [{ reason: string }];
      expect(f.reason).toMatch(/No space left on device/);
      await rec.stop();

      const disk = problems.find((p) => p.code === 'DISK_FULL');
      expect(disk, problems.map((p) => p.message).join('\n')).toBeDefined();
      expect(disk!.message).toMatch(/face camera.*disk is full/is);
      const recs = records(s.log);
      const err = recs.find((r) => r.type === 'recorder.error')!.data as { code: string; source: string };
      expect(err).toMatchObject({ code: 'DISK_FULL', source: 'face' });
      const exited = recs.find((r) => r.type === 'recorder.exited')!.data as { reason?: string; expected: boolean };
      expect(exited.expected).toBe(false);
      expect(exited.reason).toMatch(/No space left on device/);

      // Every file on the full disk has its event; the complete ones hash right and play; the one cut short says so.
      const segs = segEvents(s.log, 'face');
      expect(segs.map((x) => x.file).sort()).toEqual(readdirSync(join(media, 'face')).filter((n) => n.startsWith('seg-')).map((n) => `media/face/${n}`).sort());
      const complete = segs.filter((x) => !x.partial);
      expect(complete.length).toBeGreaterThanOrEqual(1);
      for (const seg of complete) {
        expect(sha256File(join(s.dir, seg.file))).toBe(seg.sha256);
        const p = probe(join(s.dir, seg.file));
        expect(p.ok, `${seg.file}: ${p.err}`).toBe(true);
        expect(p.duration).toBeCloseTo(2, 0);
      }
      expect(segs.some((x) => x.partial)).toBe(true);
    } finally {
      spawnSync('umount', ['-l', media]);
      s.log.close();
    }
  });
});
