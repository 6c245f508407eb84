import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveFfmpeg } from '../../src/main/core/ffmpeg.js';
import { findOnPath } from '../../src/main/core/ffmpeg.js';
import { VoiceDetector, powerSpectrum } from '../../src/main/episodes/voice.js';
import { cleanup, tmpDir } from '../helpers/tmp.js';

const dir = tmpDir('kuzet-voice-');
afterAll(() => cleanup(dir));
const ff = resolveFfmpeg().path;

/** Decodes/creates audio with ffmpeg into mono s16 16 kHz samples. */
function pcm(args: string[]): Int16Array {
  const r = spawnSync(ff, ['-v', 'error', ...args, '-ac', '1', '-ar', '16000', '-f', 's16le', 'pipe:1'], { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(String(r.stderr));
  return new Int16Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length / 2);
}

function run(samples: Int16Array, chunkSeconds = 6) {
  const d = new VoiceDetector();
  const eps = [];
  const n = chunkSeconds * 16000;
  for (let i = 0; i < samples.length; i += n) eps.push(...d.push(samples.subarray(i, i + n), i / 16000));
  eps.push(...d.flush());
  return eps;
}

const espeak = findOnPath('espeak-ng');

describe('voice activity on the microphone track', () => {
  it('the FFT puts a 1 kHz tone in the right bin', () => {
    const x = Float64Array.from({ length: 512 }, (_, i) => Math.sin((2 * Math.PI * 1000 * i) / 16000));
    const p = powerSpectrum(x);
    expect(p.indexOf(Math.max(...p))).toBe(32);
  });

  it('silence, room noise, a hum and a whistle are not speech', () => {
    expect(run(pcm(['-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', '20']))).toEqual([]);
    expect(run(pcm(['-f', 'lavfi', '-i', 'anoisesrc=r=16000:a=0.05:c=pink', '-t', '20']))).toEqual([]);
    expect(run(pcm(['-f', 'lavfi', '-i', 'sine=f=50:r=16000', '-af', 'volume=0.5', '-t', '20']))).toEqual([]);
    expect(run(pcm(['-f', 'lavfi', '-i', 'sine=f=1000:r=16000', '-af', 'volume=0.3', '-t', '20']))).toEqual([]);
    // A beeping whistle (on/off every 0.5 s) over quiet noise: loud against the floor, but a tone, not a voice.
    expect(run(pcm(['-f', 'lavfi', '-i', 'sine=f=1500:r=16000', '-f', 'lavfi', '-i', 'anoisesrc=r=16000:a=0.005:c=pink',
      '-filter_complex', "[0]volume='0.3*lt(mod(t,1),0.5)':eval=frame[b];[b][1]amix=inputs=2:duration=first:normalize=0", '-t', '20']))).toEqual([]);
  });

  it.skipIf(!espeak)('speech over quiet room noise becomes one episode at the right time, across segment boundaries (skipped without espeak-ng)', () => {
    const wav = join(dir, 'speech.wav');
    const say = 'Tell me the answer to question seven. The capital of Kazakhstan is Astana. Write it down quickly before the proctor looks at us.';
    expect(spawnSync(espeak!, ['-w', wav, say]).status).toBe(0);
    // 8 s of room noise, the speech (about 8 s), 10 s of room noise.
    const mix = pcm(['-f', 'lavfi', '-i', 'anoisesrc=r=16000:a=0.01:c=pink:d=30', '-i', wav,
      '-filter_complex', '[1]aresample=16000,adelay=8000|8000,apad[s];[0][s]amix=inputs=2:duration=first:normalize=0', '-t', '30']);
    const speechLen = Number(spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', wav]).stdout.toString());
    const eps = run(mix, 6);
    expect(eps).toHaveLength(1);
    expect(eps[0]!.start).toBeGreaterThan(7);
    expect(eps[0]!.start).toBeLessThan(9.5);
    expect(eps[0]!.end).toBeGreaterThan(8 + speechLen - 1.5);
    expect(eps[0]!.end).toBeLessThan(8 + speechLen + 1.5);
  });
});
