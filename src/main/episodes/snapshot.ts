import { spawn } from 'node:child_process';
import { resolveFfmpeg } from '../core/ffmpeg.js';
import { KuzetError } from '../core/errors.js';

/** Encodes one rgb24 frame as a JPEG file with ffmpeg (the snapshot a proctor sees on an episode). */
export function writeJpeg(rgb: Uint8Array, width: number, height: number, outPath: string, ffmpeg = resolveFfmpeg().path): Promise<void> {
  return new Promise((resolve, reject) => {
    const bytes = Buffer.from(rgb); // copy first: nothing may throw after the child is spawned
    if (bytes.length !== width * height * 3) {
      reject(new KuzetError('SNAPSHOT_FAILED', `snapshot frame has ${bytes.length} bytes, expected ${width}x${height}x3`));
      return;
    }
    const p = spawn(ffmpeg, ['-v', 'error', '-nostdin', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-i', 'pipe:0', '-frames:v', '1', '-q:v', '4', '-y', outPath], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new KuzetError('SNAPSHOT_FAILED', `ffmpeg could not write ${outPath}: ${err.trim() || `exit ${code}`}`))));
    p.stdin.on('error', () => undefined);
    p.stdin.end(bytes);
  });
}
