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
 */
export function cropToTensor(img: RgbImage, box: Box, spec: TensorSpec, out?: Float32Array): Float32Array {
  const { width: W, height: H, data } = img;
  const ow = spec.width;
  const oh = spec.height;
  const n = ow * oh;
  const t = out ?? new Float32Array(n * 3);
  const bgr = spec.order === 'bgr';
  const scale = [1 / spec.std[0], 1 / spec.std[1], 1 / spec.std[2]];
  const bias = [-spec.mean[0] / spec.std[0], -spec.mean[1] / spec.std[1], -spec.mean[2] / spec.std[2]];
  const sx = box.w / ow;
  const sy = box.h / oh;
  const px = new Float32Array(3);
  for (let oy = 0; oy < oh; oy++) {
    const fy = box.y + (oy + 0.5) * sy - 0.5;
    const y0 = Math.floor(fy);
    const wy = fy - y0;
    for (let ox0 = 0; ox0 < ow; ox0++) {
      const ox = spec.flip ? ow - 1 - ox0 : ox0;
      const fx = box.x + (ox + 0.5) * sx - 0.5;
      const x0 = Math.floor(fx);
      const wx = fx - x0;
      px[0] = 0; px[1] = 0; px[2] = 0;
      for (let dy = 0; dy < 2; dy++) {
        const yy = y0 + dy;
        const wyy = dy ? wy : 1 - wy;
        if (yy < 0 || yy >= H || wyy === 0) continue;
        for (let dx = 0; dx < 2; dx++) {
          const xx = x0 + dx;
          const w = wyy * (dx ? wx : 1 - wx);
          if (xx < 0 || xx >= W || w === 0) continue;
          const o = (yy * W + xx) * 3;
          px[0] += w * data[o]!;
          px[1] += w * data[o + 1]!;
          px[2] += w * data[o + 2]!;
        }
      }
      const p = oy * ow + ox0;
      for (let c = 0; c < 3; c++) {
        const v = px[bgr ? 2 - c : c]! * scale[c]! + bias[c]!;
        if (spec.layout === 'nhwc') t[p * 3 + c] = v;
        else t[c * n + p] = v;
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
