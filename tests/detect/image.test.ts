import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { PpmParser, cropToTensor, decodeFrames, decodeImage, mirrorImage } from '../../src/main/detect/image.js';
import { ffmpeg, tmp } from './helpers.js';

describe('image input', () => {
  it('parses concatenated PPM frames split across chunks', () => {
    const a = Buffer.concat([Buffer.from('P6\n2 1\n255\n'), Buffer.from([1, 2, 3, 4, 5, 6])]);
    const b = Buffer.concat([Buffer.from('P6 1 1 255\n'), Buffer.from([9, 8, 7])]);
    const all = Buffer.concat([a, b]);
    const p = new PpmParser();
    const got = [...p.push(all.subarray(0, 7)), ...p.push(all.subarray(7, 20)), ...p.push(all.subarray(20))];
    expect(got.map((g) => [g.width, g.height, [...g.data]])).toEqual([[2, 1, [1, 2, 3, 4, 5, 6]], [1, 1, [9, 8, 7]]]);
  });

  it('decodes an image into rgb24 of the right size and colour', async () => {
    const f = join(tmp(), 'red.png');
    ffmpeg(['-f', 'lavfi', '-i', 'color=c=0xff0000:s=64x48', '-frames:v', '1', f]);
    const img = await decodeImage(f);
    expect([img.width, img.height, img.data.length]).toEqual([64, 48, 64 * 48 * 3]);
    // lavfi colours pass through YUV, so allow a few levels of rounding
    expect(img.data[0]).toBeGreaterThan(245);
    expect(img.data[1]).toBeLessThan(10);
    expect(img.data[2]).toBeLessThan(10);
    const small = await decodeImage(f, { maxSide: 32 });
    expect([small.width, small.height]).toEqual([32, 24]);
  });

  it('samples a video at the requested rate with times', async () => {
    const f = join(tmp(), 'clip.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=160x120:r=10:d=2', '-pix_fmt', 'yuv420p', f]);
    const frames = [];
    for await (const fr of decodeFrames(f, { fps: 2 })) frames.push(fr);
    expect(frames.length).toBe(4);
    expect(frames.map((x) => x.time)).toEqual([0, 0.5, 1, 1.5]);
    expect(frames[0]!.width).toBe(160);
  });

  it('rejects an unreadable file with a decode error naming it', async () => {
    const f = join(tmp(), 'not-an-image.jpg');
    await import('node:fs').then((fs) => fs.writeFileSync(f, 'hello'));
    await expect(decodeImage(f)).rejects.toThrow(f);
  });

  it('crop-to-tensor normalises, orders channels, lays out NCHW, and reads outside as 0', () => {
    const img = { data: Uint8Array.from([10, 20, 30, 40, 50, 60]), width: 2, height: 1 };
    const t = cropToTensor(img, { x: 0, y: 0, w: 2, h: 1 }, { width: 2, height: 1, layout: 'nchw', order: 'bgr', mean: [0, 0, 0], std: [1, 1, 1] });
    expect([...t]).toEqual([30, 60, 20, 50, 10, 40]);
    const n = cropToTensor(img, { x: -2, y: 0, w: 4, h: 1 }, { width: 4, height: 1, layout: 'nhwc', mean: [10, 10, 10], std: [2, 2, 2] });
    expect([...n.subarray(0, 3)]).toEqual([-5, -5, -5]);
    expect([...n.subarray(6, 9)]).toEqual([0, 5, 10]);
    const m = mirrorImage(img);
    expect([...m.data]).toEqual([40, 50, 60, 10, 20, 30]);
  });
});
