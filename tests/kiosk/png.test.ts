import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodePng, lumaStats } from '../../src/main/kiosk/png.js';

const dir = mkdtempSync(join(tmpdir(), 'kuzet-png-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('preview PNG encoder', () => {
  it('encodes rgb24 that ffmpeg decodes back to the same pixels', () => {
    const w = 37, h = 23; // odd sizes catch stride mistakes
    const rgb = Buffer.alloc(w * h * 3);
    for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 7 + (i % 11) * 13) & 0xff;
    const file = join(dir, 'a.png');
    writeFileSync(file, encodePng(w, h, rgb));
    const out = join(dir, 'a.rgb');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', out]);
    expect(Buffer.compare(readFileSync(out), rgb)).toBe(0);
  });

  it('rejects a buffer that is too short', () => {
    expect(() => encodePng(4, 4, Buffer.alloc(10))).toThrow(/less than 4x4x3/);
  });

  it('tells a flat dark frame from a picture', () => {
    const w = 64, h = 48;
    const dark = Buffer.alloc(w * h * 3, 5);
    const pic = Buffer.alloc(w * h * 3);
    for (let i = 0; i < pic.length; i++) pic[i] = ((i / 3) % w) * 4;
    expect(lumaStats(w, h, dark)).toEqual({ mean: 5, std: 0 });
    const s = lumaStats(w, h, pic);
    expect(s.mean).toBeGreaterThan(60);
    expect(s.std).toBeGreaterThan(30);
  });
});
