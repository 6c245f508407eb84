import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyLogText, type LogRecord } from '../../src/main/core/eventlog.js';
import { verifyBundle } from '../../src/main/evidence/verify.js';
import { spawnSync } from 'node:child_process';
import { findOnPath } from '../../src/main/core/ffmpeg.js';
import { FIXTURES, ffmpeg, makePhoneScenes } from '../detect/helpers.js';
import { kuzet } from '../helpers/cli.js';
import { cleanup, tmpDir } from '../helpers/tmp.js';

/**
 * The synthetic exam clip: a face camera that shows a frontal face for 10 s, a turned head for 8 s, then frontal
 * again; a room camera that shows an empty desk for 12 s, a phone on it for 8 s, then the empty desk. Both play as
 * cameras into a real session; the bundle's episodes must say what happened and when (±1 s).
 */
const root = tmpDir('kuzet-clip-');
const espeak = findOnPath('espeak-ng');
let bundle = '';
let recs: LogRecord[] = [];
afterAll(() => cleanup(root));

function still(input: string, seconds: number): string[] {
  return ['-loop', '1', '-t', String(seconds), '-i', input];
}

beforeAll(async () => {
  const face = join(root, 'face.mp4');
  const fit = 'scale=-2:240,pad=320:240:(ow-iw)/2:0:color=gray,setsar=1,fps=10,format=yuv420p';
  ffmpeg([...still(join(FIXTURES, 'face_frontal.jpg'), 10), ...still(join(FIXTURES, 'face_turned.jpg'), 8), ...still(join(FIXTURES, 'face_frontal.jpg'), 14),
    '-filter_complex', `[0]${fit}[a];[1]${fit}[b];[2]${fit}[c];[a][b][c]concat=n=3:v=1[v]`, '-map', '[v]', '-c:v', 'libx264', '-preset', 'ultrafast', face]);
  const { phone, blank } = makePhoneScenes(root);
  const room = join(root, 'room.mp4');
  const fitR = 'scale=640:480,setsar=1,fps=10,format=yuv420p';
  ffmpeg([...still(blank, 12), ...still(phone, 8), ...still(blank, 12),
    '-filter_complex', `[0]${fitR}[a];[1]${fitR}[b];[2]${fitR}[c];[a][b][c]concat=n=3:v=1[v]`, '-map', '[v]', '-c:v', 'libx264', '-preset', 'ultrafast', room]);
  // The microphone: quiet room noise with a spoken sentence from 8 s (espeak-ng; without it, no mic).
  let mic: Record<string, unknown> = { kind: 'none' };
  if (espeak) {
    const wav = join(root, 'say.wav');
    expect(spawnSync(espeak, ['-w', wav, 'Tell me the answer to question seven, the capital of Kazakhstan is Astana.']).status).toBe(0);
    const mix = join(root, 'mic.wav');
    ffmpeg(['-f', 'lavfi', '-i', 'anoisesrc=r=16000:a=0.01:c=pink:d=32', '-i', wav,
      '-filter_complex', '[1]aresample=16000,adelay=8000|8000,apad[s];[0][s]amix=inputs=2:duration=first:normalize=0', '-t', '32', mix]);
    mic = { kind: 'file', file: mix };
  }
  const config = {
    sources: {
      mic,
      face: { kind: 'file', file: face, width: 320, height: 240, fps: 10 },
      room: { kind: 'file', file: room, width: 640, height: 480, fps: 10 },
      screen: { kind: 'lavfi', pattern: 'testsrc', width: 640, height: 360, fps: 5 },
    },
    recording: { tapFps: 5 },
    // face_turned.jpg reads about 26° of yaw: the exam's threshold is set just below it.
    detection: { thresholds: { headAwayYawDeg: 20, headAwaySeconds: 4 } },
  };
  writeFileSync(join(root, 'machine.json'), JSON.stringify(config));
  const env = { KUZET_HOME: join(root, 'home'), KUZET_MIN_FREE_BYTES: '1000', DISPLAY: '' };
  expect((await kuzet(['keygen'], env)).code).toBe(0);
  const r = await kuzet(['session', '--config', join(root, 'machine.json'), '--duration', '24', '--quiet'], env, 180_000);
  expect(r.code, r.stderr).toBe(0);
  bundle = r.stdout.trim().split('\n').pop()!;
  recs = verifyLogText(readFileSync(join(bundle, 'events.ndjson'), 'utf8')).records;
}, 240_000);

/** Clip time of a session time: the file source started playing when its first segment started. */
function clipOffset(source: string): number {
  return (recs.find((r) => r.type === 'segment.closed' && (r.data as { source: string }).source === source)!.data as { start: number }).start;
}

function episodes(type: string, camera: string) {
  return recs.filter((r) => r.type === 'episode.ended').map((r) => r.data as { type: string; camera: string; start: number; end: number; id: string })
    .filter((e) => e.type === type && e.camera === camera);
}

describe('synthetic exam clip played as cameras into a session', () => {
  it('the bundle verifies and keeps raw per-frame scores for both cameras', async () => {
    expect((await verifyBundle(bundle)).problems).toEqual([]);
    for (const cam of ['face', 'room']) {
      const lines = readFileSync(join(bundle, 'detect', `${cam}.ndjson`), 'utf8').trim().split('\n');
      expect(lines.length, cam).toBeGreaterThan(20);
    }
  });

  it('the 8-s head turn is one head.away episode from 10 s to 18 s (±1 s), with a snapshot', () => {
    const off = clipOffset('face');
    const eps = episodes('head.away', 'face');
    expect(eps, JSON.stringify(recs.filter((r) => r.type.startsWith('episode.')).map((r) => r.data))).toHaveLength(1);
    expect(eps[0]!.start - off).toBeGreaterThan(9);
    expect(eps[0]!.start - off).toBeLessThan(11);
    expect(eps[0]!.end - off).toBeGreaterThan(17);
    expect(eps[0]!.end - off).toBeLessThan(19);
    const started = recs.find((r) => r.type === 'episode.started' && (r.data as { id: string }).id === eps[0]!.id)!.data as { snapshot: string };
    expect(readFileSync(join(bundle, started.snapshot)).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  });

  it('the phone on the desk is one object.phone episode on the room camera from 12 s to 20 s (±1 s)', () => {
    const off = clipOffset('room');
    const eps = episodes('object.phone', 'room');
    expect(eps, JSON.stringify(recs.filter((r) => r.type.startsWith('episode.')).map((r) => r.data))).toHaveLength(1);
    expect(eps[0]!.start - off).toBeGreaterThan(11);
    expect(eps[0]!.start - off).toBeLessThan(13);
    expect(eps[0]!.end - off).toBeGreaterThan(19);
    expect(eps[0]!.end - off).toBeLessThan(21);
  });

  it.skipIf(!espeak)('the spoken sentence is one audio.voice episode starting at 8 s (±1.5 s) (skipped without espeak-ng)', () => {
    const off = clipOffset('mic');
    const eps = episodes('audio.voice', 'mic');
    expect(eps, JSON.stringify(eps)).toHaveLength(1);
    expect(Math.abs(eps[0]!.start - off - 8)).toBeLessThan(1.5);
    expect(eps[0]!.end - eps[0]!.start).toBeGreaterThan(2);
  });

  it('no face.absent or extra-person episode on a clip that has neither', () => {
    expect(episodes('face.absent', 'face')).toEqual([]);
    expect(episodes('person.extra', 'room')).toEqual([]);
  });
});
