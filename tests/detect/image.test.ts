import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { PpmParser, cropToTensor, decodeFrames, decodeImage, mirrorImage, roiToTensor } from '../../src/main/detect/image.js';
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

describe('tensor sampling', () => {
  // a plain per-pixel bilinear reference (outside = 0), to check the separable cropToTensor against
  const reference = (img: { data: Uint8Array; width: number; height: number }, box: { x: number; y: number; w: number; h: number }, ow: number, oh: number, flip: boolean) => {
    const px = (x: number, y: number, c: number) => (x >= 0 && y >= 0 && x < img.width && y < img.height ? img.data[(y * img.width + x) * 3 + c]! : 0);
    const out: number[] = [];
    for (let oy = 0; oy < oh; oy++) {
      for (let o = 0; o < ow; o++) {
        const ox = flip ? ow - 1 - o : o;
        const fx = box.x + ((ox + 0.5) * box.w) / ow - 0.5;
        const fy = box.y + ((oy + 0.5) * box.h) / oh - 0.5;
        const x0 = Math.floor(fx); const y0 = Math.floor(fy); const wx = fx - x0; const wy = fy - y0;
        for (let c = 0; c < 3; c++) {
          out.push((1 - wy) * ((1 - wx) * px(x0, y0, c) + wx * px(x0 + 1, y0, c)) + wy * ((1 - wx) * px(x0, y0 + 1, c) + wx * px(x0 + 1, y0 + 1, c)));
        }
      }
    }
    return out;
  };
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);

  it('cropToTensor matches a plain bilinear reference (boxes partly outside, up- and downscaling, flip, BGR, NCHW)', () => {
    let worst = 0;
    for (let trial = 0; trial < 60; trial++) {
      const W = 3 + Math.floor(rnd() * 40); const H = 3 + Math.floor(rnd() * 40);
      const img = { data: Uint8Array.from({ length: W * H * 3 }, () => Math.floor(rnd() * 256)), width: W, height: H };
      const box = { x: rnd() * W * 1.4 - W * 0.4, y: rnd() * H * 1.4 - H * 0.4, w: 1 + rnd() * W * 1.4, h: 1 + rnd() * H * 1.4 };
      const ow = 1 + Math.floor(rnd() * 30); const oh = 1 + Math.floor(rnd() * 30);
      const flip = rnd() < 0.3; const bgr = rnd() < 0.5; const nchw = rnd() < 0.5;
      const t = cropToTensor(img, box, { width: ow, height: oh, layout: nchw ? 'nchw' : 'nhwc', order: bgr ? 'bgr' : 'rgb', mean: [10, 20, 30], std: [2, 4, 8], flip });
      const ref = reference(img, box, ow, oh, flip);
      const mean = [10, 20, 30]; const std = [2, 4, 8];
      for (let p = 0; p < ow * oh; p++) {
        for (let c = 0; c < 3; c++) {
          const src = bgr ? 2 - c : c;
          const want = (ref[p * 3 + src]! - mean[c]!) / std[c]!;
          const got = nchw ? t[c * ow * oh + p]! : t[p * 3 + c]!;
          worst = Math.max(worst, Math.abs(got - want));
        }
      }
    }
    expect(worst).toBeLessThan(1e-3);
  });

  it('roiToTensor: an unrotated ROI equals cropToTensor; a 90° ROI reads the image turned; grayscale is luma', () => {
    const W = 16; const H = 16;
    const img = { data: Uint8Array.from({ length: W * H * 3 }, () => Math.floor(rnd() * 256)), width: W, height: H };
    const a = roiToTensor(img, { cx: 7.3, cy: 9.1, size: 11, angle: 0 }, 8, { mean: 5, std: 3 });
    const b = cropToTensor(img, { x: 7.3 - 5.5, y: 9.1 - 5.5, w: 11, h: 11 }, { width: 8, height: 8, layout: 'nhwc', mean: [5, 5, 5], std: [3, 3, 3] });
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 4);
    // the whole image, ROI turned 90° clockwise: output (u, v) reads image (W-1-v, u)
    const r = roiToTensor(img, { cx: W / 2, cy: H / 2, size: W, angle: Math.PI / 2 }, W, { mean: 0, std: 1 });
    for (const [u, v] of [[0, 0], [3, 11], [15, 2], [8, 8]] as const) {
      for (let c = 0; c < 3; c++) expect(r[(v * W + u) * 3 + c]).toBeCloseTo(img.data[(u * W + (W - 1 - v)) * 3 + c]!, 3);
    }
    const g = roiToTensor(img, { cx: W / 2, cy: H / 2, size: W, angle: 0 }, W, { mean: 0, std: 1, gray: true });
    const i0 = (5 * W + 6) * 3;
    expect(g[i0]).toBeCloseTo(0.299 * img.data[i0]! + 0.587 * img.data[i0 + 1]! + 0.114 * img.data[i0 + 2]!, 3);
    expect(g[i0 + 1]).toBe(g[i0]); expect(g[i0 + 2]).toBe(g[i0]);
  });
});
