import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { fsError } from './errors.js';

export interface Digest { sha256: string; size: number }

/** SHA-256 and byte count of a stream (constant memory, whatever the size). */
export async function hashStream(s: Readable | AsyncIterable<Buffer>): Promise<Digest> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of s) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** SHA-256 and size of a file; an unreadable file is a KuzetError naming it. */
export async function hashFile(path: string): Promise<Digest> {
  try {
    return await hashStream(createReadStream(path, { highWaterMark: 1 << 20 }));
  } catch (e) {
    throw fsError(e, 'read', path);
  }
}
