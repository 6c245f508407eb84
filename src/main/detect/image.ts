/**
 * Image input: decode any image or video file into rgb24 frames with ffmpeg (resolved by core/ffmpeg: KUZET_FFMPEG
 * → ffmpeg-static → PATH), plus the bilinear crop-and-resize that turns an rgb24 region into a model tensor.
 */
import { spawn } from 'node:child_process';
import { resolveFfmpeg } from '../core/ffmpeg.js';
import { KuzetError } from '../core/errors.js';

export interface RgbImage { data: Uint8Array; width: number; height: number }
export interface VideoFrame extends RgbImage { time: number; index: number }
/** Axis-aligned box in pixels: x, y = top-left corner. */
export interface Box { x: number; y: number; w: number; h: number }

/** Parse concatenated binary PPM (P6, maxval 255) images from a byte stream. */
export class PpmParser {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): RgbImage[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: RgbImage[] = [];
    for (;;) {
      const img = this.next();
      if (!img) break;
      out.push(img);
    }
    return out;
  }
  private next(): RgbImage | null {
    const b = this.buf;
    // header: "P6" ws width ws height ws maxval single-ws
    const fields: string[] = [];
    let i = 0;
    while (fields.length < 4) {
      while (i < b.length && /\s/.test(String.fromCharCode(b[i]!))) i++;
      if (i < b.length && b[i] === 0x23) { // comment
        while (i < b.length && b[i] !== 0x0a) i++;
        continue;
      }
      const start = i;
      while (i < b.length && !/\s/.test(String.fromCharCode(b[i]!))) i++;
      if (i >= b.length) return null;
      fields.push(b.subarray(start, i).toString('latin1'));
    }
    if (fields[0] !== 'P6') throw new KuzetError('DECODE', `ffmpeg produced an unexpected image header "${fields[0]}"`);
    const width = Number(fields[1]);
    const height = Number(fields[2]);
    if (Number(fields[3]) !== 255) throw new KuzetError('DECODE', 'only 8-bit PPM is supported');
    const dataStart = i + 1;
    const len = width * height * 3;
    if (b.length < dataStart + len) return null;
    const data = new Uint8Array(len);
    data.set(b.subarray(dataStart, dataStart + len));
    this.buf = b.subarray(dataStart + len);
    return { data, width, height };
  }
}

function scaleFilter(maxSide: number): string {
  // keep aspect ratio, only shrink, even sizes not required for rgb24
  return `scale='if(gte(iw,ih),min(iw,${maxSide}),-1)':'if(gte(iw,ih),-1,min(ih,${maxSide}))'`;
}

/** Decode the first frame of an image (or video) file into rgb24, shrinking so the longer side is ≤ maxSide. */
export async function decodeImage(path: string, opts: { maxSide?: number; ffmpeg?: string } = {}): Promise<RgbImage> {
  const frames: RgbImage[] = [];
  for await (const f of decodeFrames(path, { ...opts, maxFrames: 1 })) frames.push(f);
  const f = frames[0];
  if (!f) throw new KuzetError('DECODE', `ffmpeg decoded no frame from ${path}`, { file: path });
  return f;
}

/**
 * Decode frames of a video (or a single image) as rgb24. `fps` samples the video at that rate (time = index / fps);
 * without it every frame is returned (time from the frame index at 25 fps is not guessed: it is index / fps or NaN).
 */
export async function* decodeFrames(path: string, opts: { fps?: number; maxSide?: number; maxFrames?: number; ffmpeg?: string } = {}): AsyncGenerator<VideoFrame> {
  const ffmpeg = opts.ffmpeg ?? resolveFfmpeg().path;
  const filters: string[] = [];
  if (opts.fps) filters.push(`fps=${opts.fps}`);
  if (opts.maxSide) filters.push(scaleFilter(opts.maxSide));
  const args = ['-hide_banner', '-nostdin', '-v', 'error', '-i', path];
  if (filters.length) args.push('-vf', filters.join(','));
  if (opts.maxFrames) args.push('-frames:v', String(opts.maxFrames));
  args.push('-an', '-f', 'image2pipe', '-vcodec', 'ppm', '-pix_fmt', 'rgb24', '-');
  const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number>((res) => child.on('close', (code) => res(code ?? 1)));
  const spawnErr = new Promise<never>((_, rej) => child.on('error', (e) => rej(new KuzetError('NO_FFMPEG', `cannot run ${ffmpeg}: ${e.message}`))));
  spawnErr.catch(() => {});
  const parser = new PpmParser();
  let index = 0;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      for (const img of parser.push(chunk)) {
        yield { ...img, index, time: opts.fps ? index / opts.fps : index === 0 ? 0 : Number.NaN };
        index++;
      }
    }
    const code = await Promise.race([exited, spawnErr]);
    if (code !== 0 && index === 0) {
      throw new KuzetError('DECODE', `ffmpeg could not decode ${path}: ${stderr.trim().split('\n').slice(-2).join(' ') || `exit ${code}`}`, { file: path });
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

export interface TensorSpec {
  /** output tensor size */
  width: number;
  height: number;
  /** 'nhwc' ([1,H,W,3]) or 'nchw' ([1,3,H,W]) */
  layout: 'nhwc' | 'nchw';
  /** channel order of the output */
  order?: 'rgb' | 'bgr';
  /** per-channel (in output order) value = (pixel - mean) / std; pixel in 0..255 */
  mean: [number, number, number];
  std: [number, number, number];
  /** mirror horizontally */
  flip?: boolean;
}

/**
 * Bilinear crop-and-resize of `box` (pixels; may extend past the image: outside reads as black = 0 before
 * normalisation) from an rgb24 image into a Float32 tensor.
 *
 * Separable: each source row the output needs is interpolated horizontally once (into one of two cached rows), then
 * each output row blends its two source rows. Rows wholly outside the image are filled with the normalised black.
 */
export function cropToTensor(img: RgbImage, box: Box, spec: TensorSpec, out?: Float32Array): Float32Array {
  const { width: W, height: H, data } = img;
  const ow = spec.width;
  const oh = spec.height;
  const n = ow * oh;
  const t = out ?? new Float32Array(n * 3);
  const bgr = spec.order === 'bgr';
  // per output channel: scale and bias, reading input channel ci
  const k0 = 1 / spec.std[0]; const k1 = 1 / spec.std[1]; const k2 = 1 / spec.std[2];
  const b0 = -spec.mean[0] * k0; const b1 = -spec.mean[1] * k1; const b2 = -spec.mean[2] * k2;
  const c0 = bgr ? 2 : 0; const c2 = bgr ? 0 : 2;
  // column tables: byte offsets of the two neighbours and their weights (0 outside the image)
  const xa = new Int32Array(ow); const xb = new Int32Array(ow);
  const wa = new Float32Array(ow); const wb = new Float32Array(ow);
  const sx = box.w / ow;
  for (let o = 0; o < ow; o++) {
    const ox = spec.flip ? ow - 1 - o : o;
    const fx = box.x + (ox + 0.5) * sx - 0.5;
    const x0 = Math.floor(fx);
    const w = fx - x0;
    const in0 = x0 >= 0 && x0 < W; const in1 = x0 + 1 >= 0 && x0 + 1 < W;
    xa[o] = (in0 ? x0 : 0) * 3; xb[o] = (in1 ? x0 + 1 : 0) * 3;
    wa[o] = in0 ? 1 - w : 0; wb[o] = in1 ? w : 0;
  }
  // two cached horizontally interpolated source rows (channels already in output order)
  const rowA = new Float32Array(ow * 3); const rowB = new Float32Array(ow * 3);
  let yA = -1; let yB = -1;
  const hrow = (y: number, dst: Float32Array): void => {
    const r = y * W * 3;
    for (let o = 0, q = 0; o < ow; o++, q += 3) {
      const pa = r + xa[o]!; const pb = r + xb[o]!; const u = wa[o]!; const v = wb[o]!;
      dst[q] = u * data[pa + c0]! + v * data[pb + c0]!;
      dst[q + 1] = u * data[pa + 1]! + v * data[pb + 1]!;
      dst[q + 2] = u * data[pa + c2]! + v * data[pb + c2]!;
    }
  };
  const get = (y: number): Float32Array => {
    if (y === yA) return rowA;
    if (y === yB) return rowB;
    // replace the older row (rows are requested in increasing order)
    if (yA < yB) { hrow(y, rowA); yA = y; return rowA; }
    hrow(y, rowB); yB = y; return rowB;
  };
  const sy = box.h / oh;
  const nhwc = spec.layout === 'nhwc';
  for (let oy = 0; oy < oh; oy++) {
    const fy = box.y + (oy + 0.5) * sy - 0.5;
    const y0 = Math.floor(fy);
    const w = fy - y0;
    const in0 = y0 >= 0 && y0 < H; const in1 = y0 + 1 >= 0 && y0 + 1 < H;
    const va = in0 ? 1 - w : 0; const vb = in1 ? w : 0;
    const rowOut = oy * ow;
    if (!in0 && !in1) {
      if (nhwc) {
        for (let p = rowOut * 3, e = (rowOut + ow) * 3; p < e; p += 3) { t[p] = b0; t[p + 1] = b1; t[p + 2] = b2; }
      } else {
        t.fill(b0, rowOut, rowOut + ow); t.fill(b1, n + rowOut, n + rowOut + ow); t.fill(b2, 2 * n + rowOut, 2 * n + rowOut + ow);
      }
      continue;
    }
    // rows are requested in increasing order, so fetching y0 + 1 never evicts y0
    const A = get(in0 ? y0 : y0 + 1);
    const B = in0 && in1 ? get(y0 + 1) : A;
    const ua = in0 ? va : 0; const ub = in1 ? vb : 0;
    const ka0 = ua * k0; const kb0 = ub * k0; const ka1 = ua * k1; const kb1 = ub * k1; const ka2 = ua * k2; const kb2 = ub * k2;
    if (nhwc) {
      for (let q = 0, p = rowOut * 3, e = ow * 3; q < e; q += 3, p += 3) {
        t[p] = ka0 * A[q]! + kb0 * B[q]! + b0;
        t[p + 1] = ka1 * A[q + 1]! + kb1 * B[q + 1]! + b1;
        t[p + 2] = ka2 * A[q + 2]! + kb2 * B[q + 2]! + b2;
      }
    } else {
      for (let o = 0, q = 0; o < ow; o++, q += 3) {
        const p = rowOut + o;
        t[p] = ka0 * A[q]! + kb0 * B[q]! + b0;
        t[n + p] = ka1 * A[q + 1]! + kb1 * B[q + 1]! + b1;
        t[2 * n + p] = ka2 * A[q + 2]! + kb2 * B[q + 2]! + b2;
      }
    }
  }
  return t;
}

/** Mirror an rgb24 image horizontally (tests and augmentation). */
export function mirrorImage(img: RgbImage): RgbImage {
  const { width: W, height: H, data } = img;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const s = (y * W + x) * 3;
      const d = (y * W + (W - 1 - x)) * 3;
      out[d] = data[s]!; out[d + 1] = data[s + 1]!; out[d + 2] = data[s + 2]!;
    }
  }
  return { data: out, width: W, height: H };
}

/**
 * A square region of interest that may be rotated: centre (cx, cy) and side `size` in image pixels; `angle` (radians)
 * turns the region's axes clockwise in the image (y points down), so the region's x axis runs along (cos a, sin a).
 * A face ROI uses the eye-line angle, so the face is upright inside the crop.
 */
export interface Roi { cx: number; cy: number; size: number; angle: number }

/** Image point for a point (u, v) given in output-tensor pixels of a `size`-pixel tensor sampled from `roi`. */
export function roiToImage(roi: Roi, tensorSize: number, u: number, v: number): [number, number] {
  const k = roi.size / tensorSize;
  const a = u * k - roi.size / 2;
  const b = v * k - roi.size / 2;
  const c = Math.cos(roi.angle);
  const s = Math.sin(roi.angle);
  return [roi.cx + a * c - b * s, roi.cy + a * s + b * c];
}

/**
 * Bilinear sample of a (possibly rotated) square ROI into an NHWC RGB Float32 tensor of side `size`, value =
 * (pixel − mean) / std (one mean/std for all channels). Outside the image reads as black. `gray` puts the luma
 * (BT.601) into all three channels. An unrotated ROI gives the same result as cropToTensor with the same box.
 */
export function roiToTensor(img: RgbImage, roi: Roi, size: number, norm: { mean: number; std: number; gray?: boolean }, out?: Float32Array): Float32Array {
  const { width: W, height: H, data } = img;
  const t = out ?? new Float32Array(size * size * 3);
  const k = roi.size / size;
  const c = Math.cos(roi.angle) * k;
  const s = Math.sin(roi.angle) * k;
  const inv = 1 / norm.std;
  const bias = -norm.mean * inv;
  const gray = !!norm.gray;
  // image position of output pixel (0, 0)'s centre, minus the half-pixel of bilinear sampling
  const h = size / 2 - 0.5;
  const x00 = roi.cx - h * c + h * s - 0.5;
  const y00 = roi.cy - h * s - h * c - 0.5;
  let p = 0;
  for (let oy = 0; oy < size; oy++) {
    let fx = x00 - oy * s;
    let fy = y00 + oy * c;
    for (let ox = 0; ox < size; ox++, fx += c, fy += s, p += 3) {
      const x0 = Math.floor(fx);
      const y0 = Math.floor(fy);
      const wx = fx - x0;
      const wy = fy - y0;
      let r = 0; let g = 0; let b = 0;
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < W && y0 + 1 < H) {
        // inside: the four neighbours without bounds checks
        const i00 = (y0 * W + x0) * 3;
        const i10 = i00 + W * 3;
        const w00 = (1 - wx) * (1 - wy); const w01 = wx * (1 - wy); const w10 = (1 - wx) * wy; const w11 = wx * wy;
        r = w00 * data[i00]! + w01 * data[i00 + 3]! + w10 * data[i10]! + w11 * data[i10 + 3]!;
        g = w00 * data[i00 + 1]! + w01 * data[i00 + 4]! + w10 * data[i10 + 1]! + w11 * data[i10 + 4]!;
        b = w00 * data[i00 + 2]! + w01 * data[i00 + 5]! + w10 * data[i10 + 2]! + w11 * data[i10 + 5]!;
      } else if (x0 >= -1 && y0 >= -1 && x0 < W && y0 < H) {
        for (let dy = 0; dy < 2; dy++) {
          const yy = y0 + dy;
          if (yy < 0 || yy >= H) continue;
          const wyy = dy ? wy : 1 - wy;
          for (let dx = 0; dx < 2; dx++) {
            const xx = x0 + dx;
            if (xx < 0 || xx >= W) continue;
            const w = wyy * (dx ? wx : 1 - wx);
            const i = (yy * W + xx) * 3;
            r += w * data[i]!; g += w * data[i + 1]!; b += w * data[i + 2]!;
          }
        }
      }
      if (gray) r = g = b = 0.299 * r + 0.587 * g + 0.114 * b;
      t[p] = r * inv + bias; t[p + 1] = g * inv + bias; t[p + 2] = b * inv + bias;
    }
  }
  return t;
}
