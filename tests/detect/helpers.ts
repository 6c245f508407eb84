import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveFfmpeg } from '../../src/main/core/ffmpeg.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const SHARED = '/work/shared/fixtures/detection';

export function tmp(prefix = 'kuzet-detect-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Run ffmpeg (resolved like the app does) and fail loudly. */
export function ffmpeg(args: string[]): void {
  const r = spawnSync(resolveFfmpeg().path, ['-hide_banner', '-v', 'error', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${r.stderr}`);
}

/** A light desk with a tilted phone on it (dark body, lit screen), and the same desk without it. */
export function makePhoneScenes(dir: string): { phone: string; blank: string } {
  const phone = join(dir, 'phone.png');
  const blank = join(dir, 'blank.png');
  ffmpeg(['-f', 'lavfi', '-i', 'color=c=0xe8e8e8:s=640x480,noise=alls=8:allf=t', '-f', 'lavfi', '-i', 'testsrc2=s=64x120',
    '-filter_complex', '[0]drawbox=x=286:y=176:w=76:h=140:c=0x0a0a0a:t=fill[b];[b][1]overlay=292:186,rotate=0.3:c=0xe8e8e8,format=rgb24', '-frames:v', '1', phone]);
  ffmpeg(['-f', 'lavfi', '-i', 'color=c=0xe8e8e8:s=640x480,noise=alls=8:allf=t', '-vf', 'format=rgb24', '-frames:v', '1', blank]);
  return { phone, blank };
}
