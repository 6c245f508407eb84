/**
 * SHA-256 of stored upload files, computed off the server's event loop.
 *
 * The evidence server hashes every upload it stores: the hash is its own proof of the bytes it keeps, and the upload
 * is refused when it differs from the declared one. Hashing on the event loop as the bytes arrived cost 10–14 % of
 * that thread while 100 devices uploaded (docs/server.md), and the event loop is what limits the server. Here one
 * worker thread reads each finished file back (from the page cache: it was just written) and hashes it, so the event
 * loop only posts one small message an upload and receives one. Handing the arriving chunks to a worker instead was
 * measured first: the copies and messages cost the event loop more than the hashing itself.
 *
 * The bytes hashed are the stored ones, read back after the store's writes completed. If the worker cannot be used
 * (it failed to start or exited), the hash is computed on the calling thread instead: slower, never lost.
 */
import { Worker } from 'node:worker_threads';
import { hashFile, type Digest } from '../core/hash.js';

/** The worker's whole program (plain JavaScript, run with `eval`: no loader or build step is involved). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ n, path }) => {
  let fd;
  try {
    fd = openSync(path, 'r');
    const h = createHash('sha256');
    let size = 0;
    for (;;) {
      const got = readSync(fd, buf, 0, buf.length, size);
      if (got === 0) break;
      h.update(buf.subarray(0, got));
      size += got;
    }
    parentPort.postMessage({ n, sha256: h.digest('hex'), size });
  } catch (e) {
    parentPort.postMessage({ n, error: String(e && e.message), code: e && e.code });
  } finally {
    if (fd !== undefined) try { closeSync(fd); } catch {}
  }
});
`;

interface Pending { path: string; resolve: (d: Digest) => void; reject: (e: Error) => void }

export class HashWorker {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  /** Set when the worker could not be used: every hash is then made on the calling thread. */
  private broken = false;
  /** Hashes made by the worker / on the calling thread (for tests and diagnostics). */
  readonly counts = { worker: 0, inline: 0 };

  /** SHA-256 and size of the file at `path` (to its end); rejects with the file error (`code` ENOENT …). */
  hash(path: string): Promise<Digest> {
    const w = this.broken ? null : this.start();
    if (!w) return this.inline(path);
    const n = ++this.next;
    return new Promise<Digest>((resolve, reject) => {
      this.pending.set(n, { path, resolve, reject });
      if (this.pending.size === 1) w.ref(); // keep the process alive while a hash is owed
      w.postMessage({ n, path });
    });
  }

  /** Stops the worker (pending hashes finish on the calling thread). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
    this.reroute();
  }

  /** Hashes still owed by a worker that is gone are made on the calling thread. */
  private reroute(): void {
    const owed = [...this.pending.values()];
    this.pending.clear();
    for (const p of owed) this.inline(p.path).then(p.resolve, p.reject);
  }

  private start(): Worker | null {
    if (this.worker) return this.worker;
    let w: Worker;
    try {
      w = new Worker(WORKER_SOURCE, { eval: true, name: 'kuzet-hash' });
    } catch {
      this.broken = true;
      return null;
    }
    w.unref();
    w.on('message', (m: { n: number; sha256?: string; size?: number; error?: string; code?: string }) => {
      const p = this.pending.get(m.n);
      if (!p) return;
      this.pending.delete(m.n);
      if (this.pending.size === 0) w.unref();
      if (m.error !== undefined) {
        p.reject(Object.assign(new Error(`Cannot hash ${p.path}: ${m.error}`), { code: m.code }));
        return;
      }
      this.counts.worker++;
      p.resolve({ sha256: m.sha256!, size: m.size! });
    });
    // A worker that failed or exited on its own is not trusted again (close() is not that: it clears `worker` first).
    const lost = () => {
      if (this.worker !== w) return;
      this.worker = null;
      this.broken = true;
      this.reroute();
    };
    w.on('error', lost);
    w.on('exit', lost);
    this.worker = w;
    return w;
  }

  private async inline(path: string): Promise<Digest> {
    try {
      const d = await hashFile(path);
      this.counts.inline++;
      return d;
    } catch (e) {
      const code = (e as { code?: string }).code === 'NOT_FOUND' ? 'ENOENT' : (e as { code?: string }).code;
      throw Object.assign(new Error((e as Error).message), { code });
    }
  }
}
