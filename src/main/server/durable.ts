/**
 * Group commit for the evidence server's disk flushes. Before a receipt is signed, every file of the bundle must be
 * on disk; an fsync per file costs a device flush each (≈ 4 ms here), so 100 bundles completing together meant
 * ~1,400 flushes in a row. On Linux one `syncfs` (coreutils `sync -f <dir>`) flushes a whole filesystem; callers
 * that need their writes durable join the next flush, so many completions share one.
 *
 * Where `sync -f` is unavailable (not Linux, no coreutils) `flush()` resolves false and callers fsync their files
 * one by one, as before. The flushes run in one long-lived `sh` (so the server does not fork itself per flush).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { statSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';

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

  private soon: NodeJS.Timeout | null = null;
  /** Whole-filesystem flushes run so far (diagnostics, tests). */
  flushes = 0;

  /**
   * Asks for a background flush within `delayMs` (many calls, one flush): stored uploads reach the disk while the
   * exam goes on, so the flush before a receipt has little left to write.
   */
  flushSoon(delayMs = 2000): void {
    if (this.soon || !this.enabled || this.available === false) return;
    this.soon = setTimeout(() => { this.soon = null; void this.flush(); }, delayMs);
    this.soon.unref();
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
    this.flushes++;
    const p = Promise.all(this.dirs.map((d) => this.syncFs(d))).then((oks) => {
      const ok = oks.every(Boolean);
      if (!ok && this.available === null) this.available = false;
      else if (ok) this.available = true;
      return ok;
    }).finally(() => { if (this.running === p) this.running = null; });
    this.running = p;
    return p;
  }

  // --- the helper: a long-lived shell that runs `sync -f` for each folder it reads on stdin -----------------------
  // (Spawning `sync` straight from the server would fork a process of a few hundred MB for every flush.)
  private helper: ChildProcessByStdio<Writable, Readable, null> | null = null;
  private waiting: ((ok: boolean) => void)[] = [];
  private out = '';

  private syncFs(dir: string): Promise<boolean> {
    if (dir.includes('\n')) return Promise.resolve(false);
    const h = this.helperProcess();
    if (!h) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.hold(h, true); // a flush in progress keeps the process alive; an idle helper does not
      h.stdin.write(`${dir}\n`);
    });
  }

  private helperProcess(): ChildProcessByStdio<Writable, Readable, null> | null {
    if (this.helper) return this.helper;
    let h: ChildProcessByStdio<Writable, Readable, null>;
    try {
      h = spawn('sh', ['-c', 'while IFS= read -r d; do if sync -f "$d" 2>/dev/null; then echo ok; else echo fail; fi; done'], { stdio: ['pipe', 'pipe', 'ignore'] });
    } catch {
      return null;
    }
    h.stdout.setEncoding('utf8');
    h.stdout.on('data', (chunk: string) => {
      this.out += chunk;
      let i: number;
      while ((i = this.out.indexOf('\n')) >= 0) {
        const line = this.out.slice(0, i);
        this.out = this.out.slice(i + 1);
        this.waiting.shift()?.(line === 'ok');
      }
      if (this.waiting.length === 0) this.hold(h, false);
    });
    const gone = () => {
      if (this.helper !== h) return;
      this.helper = null;
      this.out = '';
      for (const w of this.waiting.splice(0)) w(false);
    };
    h.on('error', gone);
    h.on('exit', gone);
    h.stdin.on('error', gone);
    this.hold(h, false);
    this.helper = h;
    return h;
  }

  private hold(h: ChildProcessByStdio<Writable, Readable, null>, on: boolean): void {
    const m = on ? 'ref' : 'unref';
    h[m]();
    for (const s of [h.stdin, h.stdout] as unknown as { ref?: () => void; unref?: () => void }[]) s[m]?.();
  }

  /** Ends the helper (the server is closing). */
  close(): void {
    if (this.soon) { clearTimeout(this.soon); this.soon = null; }
    const h = this.helper;
    this.helper = null;
    for (const w of this.waiting.splice(0)) w(false);
    if (h) { h.stdin.end(); h.kill(); }
  }
}
