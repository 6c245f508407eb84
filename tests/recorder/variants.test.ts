/** fMP4 segments (incl. a kill -9 mid-segment) and a microphone source (lavfi sine → AAC in TS). */
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { once } from 'node:events';
import { Recorder } from '../../src/main/recorder/index.js';
import { probe, quickConfig, segEvents, sha256File, sleep, tempSession } from './helpers.js';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

function audioSeconds(path: string): number {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=codec_name:format=duration', '-of', 'json', path], { encoding: 'utf8' });
  const j = JSON.parse(r.stdout || '{}') as { streams?: { codec_name?: string }[]; format?: { duration?: string } };
  return j.streams?.[0]?.codec_name === 'aac' ? Number(j.format?.duration) : NaN;
}

describe('fMP4 container and microphone', () => {
  const s = tempSession();
  afterAll(() => s.log.close());

  it('records playable fMP4 face segments (a killed one included) and AAC mic segments', async () => {
    const config = quickConfig({
      sources: { room: { kind: 'none' }, screen: { kind: 'none' }, mic: { kind: 'lavfi', pattern: 'sine=frequency=440:sample_rate=48000' } },
      recording: { container: 'mp4', segmentSeconds: 2, restartDelayMs: 200 },
    });
    const rec = new Recorder({ dir: s.dir, log: s.log, config });
    await rec.start();
    await once(rec, 'segment');
    // Kill once the open segment holds a fragment beyond its init section (~0.8 kB): what was fragmented must survive.
    const open = join(s.dir, 'media', 'face', 'seg-00001.mp4');
    for (let i = 0; i < 100 && !(existsSync(open) && statSync(open).size > 4000); i++) await sleep(100);
    await sleep(300);
    process.kill(rec.stats().face!.pid!, 'SIGKILL');
    await once(rec, 'started');
    await sleep(2500);
    await rec.stop();

    const face = segEvents(s.log, 'face');
    expect(face.map((x) => x.index)).toEqual(face.map((_, i) => i));
    expect(face.every((x) => x.file.endsWith('.mp4'))).toBe(true);
    expect(face.filter((x) => x.partial)).toHaveLength(1);
    for (const seg of face) {
      expect(sha256File(join(s.dir, seg.file))).toBe(seg.sha256);
      const p = probe(join(s.dir, seg.file));
      expect(p.ok, `${seg.file}${seg.partial ? ' (killed mid-segment)' : ''}: ${p.err}`).toBe(true);
    }
    const mic = segEvents(s.log, 'mic');
    expect(mic.length).toBeGreaterThanOrEqual(2);
    let total = 0;
    for (const seg of mic) {
      expect(seg.file).toMatch(/^media\/mic\/seg-\d{5}\.mp4$/);
      const d = audioSeconds(join(s.dir, seg.file));
      expect(d, seg.file).toBeGreaterThan(0);
      total += d;
    }
    expect(Math.abs(total - mic.reduce((a, x) => a + x.duration!, 0))).toBeLessThan(0.5);
    expect(rec.stats().mic!.tap).toBeNull();
  });

  it('plays a looped video file and a still image as cameras, at the configured size, with taps', async () => {
    const s2 = tempSession();
    const clip = join(s2.home, 'clip.mp4');
    const still = join(s2.home, 'desk.png');
    expect(spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-t', '1', '-pix_fmt', 'yuv420p', clip]).status).toBe(0);
    expect(spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'smptebars=size=200x150', '-frames:v', '1', still]).status).toBe(0);
    const config = quickConfig({
      sources: { face: { kind: 'file', file: clip, width: 320, height: 240, fps: 10 }, room: { kind: 'file', file: still, width: 320, height: 240, fps: 5 }, screen: { kind: 'none' } },
      recording: { segmentSeconds: 2 },
    });
    const rec = new Recorder({ dir: s2.dir, log: s2.log, config });
    const got: { face: number; room: number } = { face: 0, room: 0 };
    const readers = (['face', 'room'] as const).map((src) => (async () => { for await (const f of rec.frames(src)) { expect(f.data.length).toBe(160 * 120 * 3); got[src]++; } })());
    await rec.start();
    await sleep(4500); // the 1-s clip loops several times
    await rec.stop();
    await Promise.all(readers);
    for (const src of ['face', 'room'] as const) {
      const segs = segEvents(s2.log, src);
      expect(segs.length, src).toBeGreaterThanOrEqual(2);
      expect(segs.reduce((a, x) => a + x.duration!, 0), src).toBeGreaterThan(3.5);
      const info = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', join(s2.dir, segs[0]!.file)], { encoding: 'utf8' });
      expect(info.stdout.trim().split('\n')[0]).toBe('320,240'); // (TS lists the stream under its program too)
      expect(got[src]).toBeGreaterThanOrEqual(6);
    }
    s2.log.close();
  });
});
