import { crc32, deflateSync } from 'node:zlib';

/**
 * A small PNG encoder for preview frames (rgb24 → truecolour PNG). Rows use the "Up" filter, which compresses
 * camera frames well, and a fast deflate level: a 320×240 preview encodes in a few milliseconds.
 */
export function encodePng(width: number, height: number, rgb: Uint8Array, level = 3): Buffer {
  const stride = width * 3;
  if (rgb.length < stride * height) throw new RangeError(`encodePng: ${rgb.length} bytes is less than ${width}x${height}x3`);
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    const row = y * stride;
    if (y === 0) {
      raw[o] = 0;
      raw.set(rgb.subarray(row, row + stride), o + 1);
    } else {
      raw[o] = 2;
      const prev = row - stride;
      for (let x = 0; x < stride; x++) raw[o + 1 + x] = (rgb[row + x]! - rgb[prev + x]!) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

export function pngDataUrl(width: number, height: number, rgb: Uint8Array): string {
  return `data:image/png;base64,${encodePng(width, height, rgb).toString('base64')}`;
}

/** Mean and standard deviation of luma (0–255) over a sample of pixels: a covered or dead camera is dark or flat. */
export function lumaStats(width: number, height: number, rgb: Uint8Array, step = 4): { mean: number; std: number } {
  let n = 0, sum = 0, sq = 0;
  for (let y = 0; y < height; y += step) {
    for (let x = 0; x < width; x += step) {
      const i = (y * width + x) * 3;
      const l = 0.299 * rgb[i]! + 0.587 * rgb[i + 1]! + 0.114 * rgb[i + 2]!;
      sum += l; sq += l * l; n++;
    }
  }
  if (n === 0) return { mean: 0, std: 0 };
  const mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean)) };
}
