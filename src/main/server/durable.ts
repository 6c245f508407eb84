/**
 * Group commit for the evidence server's disk flushes. Before a receipt is signed, every file of the bundle must be
 * on disk; an fsync per file costs a device flush each (≈ 4 ms here), so 100 bundles completing together meant
 * ~1,400 flushes in a row. On Linux one `syncfs` (coreutils `sync -f <dir>`) flushes a whole filesystem; callers
 * that need their writes durable join the next flush, so many completions share one.
 *
 * Where `sync -f` is unavailable (not Linux, no coreutils) `flush()` resolves false and callers fsync their files
 * one by one, as before.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';

export class DiskFlusher {
  /** One folder per filesystem that holds server data (the data dir, the upload store). */
  private readonly dirs: string[];
  private available: boolean | null = null;
  private running: Promise<boolean> | null = null;
  private queued: Promise<boolean> | null = null;

  constructor(dirs: string[], private readonly enabled = process.platform === 'linux') {
    const byDevice = new Map<number, string>();
    for (const d of dirs) {
      try { const dev = statSync(d).dev; if (!byDevice.has(dev)) byDevice.set(dev, d); } catch { /* not there: nothing to flush */ }
    }
    this.dirs = [...byDevice.values()];
  }

  /** True once a whole-filesystem flush has worked here (before the first one: unknown, so false). */
  get isAvailable(): boolean {
    return this.available === true;
  }

  /**
   * Resolves true once everything written before this call is on disk (a flush that started after the call
   * finished), false when whole-filesystem flushes are unavailable (then the caller fsyncs its own files).
   */
  flush(): Promise<boolean> {
    if (!this.enabled || this.available === false) return Promise.resolve(false);
    if (this.queued) return this.queued;
    if (this.running) {
      const q = this.running.catch(() => false).then(() => {
        if (this.queued === q) this.queued = null;
        return this.start();
      });
      this.queued = q;
      return q;
    }
    return this.start();
  }

  private start(): Promise<boolean> {
    const p = Promise.all(this.dirs.map((d) => syncFs(d))).then((oks) => {
      const ok = oks.every(Boolean);
      if (!ok && this.available === null) this.available = false;
      else if (ok) this.available = true;
      return ok;
    }).finally(() => { if (this.running === p) this.running = null; });
    this.running = p;
    return p;
  }
}

function syncFs(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sync', ['-f', dir], { timeout: 120_000 }, (err) => resolve(!err));
  });
}
