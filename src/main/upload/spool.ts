/**
 * The durable upload queue. Every file to deliver is one JSON record under `<home>/spool/<session>/<id>.json`
 * holding its tus upload URL (persisted before the first byte is sent) and the last offset the server
 * acknowledged; after a crash or reboot `resume()` picks every unfinished record up again and continues from the
 * server's offset (HEAD). Network failures are retried without limit with exponential backoff and jitter;
 * a refusal the server explains (revoked device, oversize file, unsafe name …) stops that file with the reason.
 *
 * The queue never deletes evidence. Records are removed only by `forgetSession`, which `uploadBundle` calls after
 * it holds a valid signed receipt.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KuzetError } from '../core/errors.js';
import type { HomeLayout } from '../core/home.js';
import { isSafeSessionId, uploadIdFor } from '../server/protocol.js';
import { ServerRefusal, isTransient, type ServerClient } from './client.js';
import { NetworkError } from './http.js';

export interface SpoolItem {
  v: 1;
  id: string;
  server: string;
  session: string;
  path: string;
  /** Absolute path of the local file when it was queued. */
  file: string;
  sha256: string;
  size: number;
  uploadUrl: string | null;
  offset: number;
  state: 'pending' | 'stored' | 'rejected';
  attempts: number;
  checksumRetries: number;
  lastError: string | null;
  createdAt: number;
  storedAt: number | null;
}

export interface UploadProgress {
  session?: string;
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
  filesRejected: number;
  /** Bytes per second over the last few seconds. */
  rateBps: number;
  /** Seconds until done at the current rate; null while unknown. */
  etaSeconds: number | null;
  /** Files being sent right now. */
  active: string[];
  /** The last transient problem (a retry is scheduled), for the UI to show. */
  retrying: string | null;
}

export interface QueueEvents {
  progress: [UploadProgress];
  stored: [SpoolItem];
  rejected: [SpoolItem, string];
  retry: [SpoolItem, string, number];
}

export interface QueueOptions {
  home: HomeLayout;
  client: ServerClient;
  concurrency?: number;
  chunkBytes?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Finds a queued file that moved (a session folder moves to bundles/ when sealed). */
  locate?: (item: SpoolItem) => string | null;
}

export interface EnqueueFile {
  session: string;
  path: string;
  file: string;
  sha256: string;
  size: number;
}

/** `fresh`: the record did not exist before this process queued it, so the server cannot hold any of it yet. */
interface Slot { item: SpoolItem; nextAt: number; busy: boolean; sent: number; fresh: boolean }

export function spoolItemId(server: string, session: string, path: string, sha256: string): string {
  return createHash('sha256').update(`${server}\0${uploadIdFor(session, path, sha256)}`).digest('hex').slice(0, 32);
}

/** Where a session's files may be: where they were queued, its folder under sessions/, or its sealed bundle. */
export function defaultLocate(home: HomeLayout): (item: SpoolItem) => string | null {
  return (item) => {
    for (const p of [item.file, join(home.bundles, item.session, item.path), join(home.sessions, item.session, item.path)]) {
      if (existsSync(p)) return p;
    }
    return null;
  };
}

export class UploadQueue extends EventEmitter<QueueEvents> {
  readonly client: ServerClient;
  readonly home: HomeLayout;
  private readonly slots = new Map<string, Slot>();
  private readonly concurrency: number;
  private readonly chunkBytes: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly locate: (item: SpoolItem) => string | null;
  private running = false;
  private abort = new AbortController();
  private busy = 0;
  private timer: NodeJS.Timeout | null = null;
  private workers = new Set<Promise<void>>();
  private lastRetry: string | null = null;
  private rate = { t: Date.now(), bytes: 0, bps: 0 };
  private lastEmit = 0;
  private readonly writes = new Map<string, { next: { text: string; flush: boolean } | null; done: Promise<void> }>();
  /** Spool folders known to exist (saves a mkdir per record write). */
  private readonly dirs = new Set<string>();

  constructor(opts: QueueOptions) {
    super();
    this.client = opts.client;
    this.home = opts.home;
    this.concurrency = opts.concurrency ?? 2;
    this.chunkBytes = opts.chunkBytes ?? 8 * 1024 * 1024;
    this.retryMinMs = opts.retryMinMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 30000;
    this.locate = opts.locate ?? defaultLocate(opts.home);
    mkdirSync(opts.home.spool, { recursive: true });
    for (const d of readdirSync(opts.home.spool)) if (d.startsWith('.done-')) this.removeLater(join(opts.home.spool, d));
  }

  private recordPath(item: { session: string; id: string }): string {
    return join(this.home.spool, item.session, `${item.id}.json`);
  }

  /**
   * Writes the record atomically (temp + rename). Not flushed to disk on every change: the evidence itself is
   * already on disk, upload URLs are deterministic, and a record lost to a power cut only makes the next run ask
   * the server again. Rejections are flushed, since they carry the reason a person must see.
   */
  private persist(item: SpoolItem, durable: boolean): void {
    const text = JSON.stringify(item);
    const flush = durable && item.state === 'rejected';
    // Writes of one record run in order. A flushed write (a rejection) runs off the event loop; while it is in
    // flight, later changes collapse into one pending write of the newest state (the record is a snapshot).
    const w = this.writes.get(item.id);
    if (w) { w.next = { text, flush: flush || (w.next?.flush ?? false) }; return; }
    if (!flush) {
      // The common case (queued, URL known, stored): a few hundred bytes written and renamed in place. Direct calls
      // cost far less than four trips through the thread pool, and the record is on disk when this returns.
      const dir = join(this.home.spool, item.session);
      const p = this.recordPath(item);
      try {
        if (!this.dirs.has(dir)) { mkdirSync(dir, { recursive: true }); this.dirs.add(dir); }
        const tmp = `${p}.tmp-${process.pid}`;
        writeFileSync(tmp, text);
        renameSync(tmp, p);
      } catch { this.dirs.delete(dir); /* a later change writes it again; the server is asked on resume anyway */ }
      return;
    }
    const entry: { next: { text: string; flush: boolean } | null; done: Promise<void> } = { next: { text, flush }, done: Promise.resolve() };
    const dir = join(this.home.spool, item.session);
    const p = this.recordPath(item);
    entry.done = (async () => {
      while (entry.next) {
        const job = entry.next;
        entry.next = null;
        try {
          if (!this.dirs.has(dir)) { await mkdir(dir, { recursive: true }); this.dirs.add(dir); }
          const tmp = `${p}.tmp-${process.pid}`;
          await writeFile(tmp, job.text);
          if (job.flush) { const fh = await open(tmp, 'r'); try { await fh.sync(); } finally { await fh.close(); } }
          await rename(tmp, p);
        } catch { this.dirs.delete(dir); /* a later change writes it again; the server is asked on resume anyway */ }
      }
      this.writes.delete(item.id);
    })();
    this.writes.set(item.id, entry);
  }

  /** Resolves when every spool record write issued so far is on disk (tests, shutdown). */
  async flushed(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes.values()].map((w) => w.done));
  }

  /** Queues a file (idempotent: the same session/path/content is one record). A rejected record is retried. */
  enqueue(f: EnqueueFile): SpoolItem {
    if (!isSafeSessionId(f.session)) throw new KuzetError('BAD_SESSION_ID', `"${f.session}" is not a valid session id.`);
    const id = spoolItemId(this.client.server, f.session, f.path, f.sha256);
    const slot = this.slots.get(id);
    if (slot) {
      if (slot.item.file !== f.file) slot.item.file = f.file;
      if (slot.item.state === 'rejected') { slot.item.state = 'pending'; slot.item.attempts = 0; slot.item.checksumRetries = 0; slot.nextAt = 0; this.persist(slot.item, true); }
      this.pump();
      return slot.item;
    }
    const onDisk = this.readRecord(f.session, id);
    const item: SpoolItem = onDisk ?? {
      v: 1, id, server: this.client.server, session: f.session, path: f.path, file: f.file, sha256: f.sha256, size: f.size,
      uploadUrl: null, offset: 0, state: 'pending', attempts: 0, checksumRetries: 0, lastError: null, createdAt: Date.now(), storedAt: null,
    };
    item.file = f.file;
    if (item.state === 'rejected') { item.state = 'pending'; item.attempts = 0; item.checksumRetries = 0; }
    this.persist(item, true);
    this.slots.set(id, { item, nextAt: 0, busy: false, sent: 0, fresh: !onDisk });
    this.pump();
    return item;
  }

  private readRecord(session: string, id: string): SpoolItem | null {
    const p = join(this.home.spool, session, `${id}.json`);
    if (!existsSync(p)) return null;
    try { return JSON.parse(readFileSync(p, 'utf8')) as SpoolItem; } catch { return null; }
  }

  /** Loads every unfinished record for this server from the spool (after a crash or reboot). Returns how many. */
  resume(session?: string): number {
    let n = 0;
    if (!existsSync(this.home.spool)) return 0;
    for (const s of readdirSync(this.home.spool)) {
      if (session && s !== session) continue;
      if (s.startsWith('.')) continue; // records of receipted sessions waiting to be removed
      const dir = join(this.home.spool, s);
      if (!statSync(dir).isDirectory()) continue;
      for (const f of readdirSync(dir)) {
        if (!f.endsWith('.json')) continue;
        let item: SpoolItem;
        try { item = JSON.parse(readFileSync(join(dir, f), 'utf8')) as SpoolItem; } catch { continue; }
        if (item.server !== this.client.server || this.slots.has(item.id)) continue;
        this.slots.set(item.id, { item, nextAt: 0, busy: false, sent: 0, fresh: false });
        if (item.state === 'pending') n++;
      }
    }
    this.pump();
    return n;
  }

  items(session?: string): SpoolItem[] {
    return [...this.slots.values()].map((s) => s.item).filter((i) => !session || i.session === session);
  }

  /** Drops a session's records: only after the server's signed receipt covers them. */
  async forgetSession(session: string): Promise<void> {
    for (const [id, s] of this.slots) if (s.item.session === session && !s.busy) this.slots.delete(id);
    await this.flushed();
    if (!isSafeSessionId(session)) return;
    const dir = join(this.home.spool, session);
    this.dirs.delete(dir);
    // One rename takes the records out of the queue at once; deleting a long exam's records (one per segment) can
    // take seconds on a slow disk, so it happens in the background (and again at the next start if cut short).
    const done = join(this.home.spool, `.done-${session}-${process.pid}-${Date.now()}`);
    try { await rename(dir, done); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      rmSync(dir, { recursive: true, force: true });
      return;
    }
    this.removeLater(done);
  }

  private removeLater(dir: string): void {
    void rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.pump();
  }

  /** Stops sending. In-flight requests get `graceMs` to finish, then are cut; the server keeps what it received. */
  async stop(graceMs = 0): Promise<void> {
    this.running = false;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.workers.size > 0 && graceMs > 0) {
      await Promise.race([Promise.allSettled([...this.workers]), new Promise((r) => setTimeout(r, graceMs).unref())]);
    }
    this.abort.abort();
    await Promise.allSettled([...this.workers]);
    await this.flushed();
  }

  get isRunning(): boolean {
    return this.running;
  }

  progress(session?: string): UploadProgress {
    let bytesDone = 0; let bytesTotal = 0; let filesDone = 0; let filesTotal = 0; let filesRejected = 0;
    const active: string[] = [];
    for (const s of this.slots.values()) {
      const i = s.item;
      if (session && i.session !== session) continue;
      filesTotal++;
      bytesTotal += i.size;
      if (i.state === 'stored') { filesDone++; bytesDone += i.size; continue; }
      if (i.state === 'rejected') filesRejected++;
      bytesDone += Math.min(i.size, Math.max(i.offset, s.busy ? s.sent : 0));
      if (s.busy) active.push(i.path);
    }
    const left = bytesTotal - bytesDone;
    const etaSeconds = left <= 0 ? 0 : this.rate.bps > 0 ? Math.round(left / this.rate.bps) : null;
    return { ...(session ? { session } : {}), bytesDone, bytesTotal, filesDone, filesTotal, filesRejected, rateBps: Math.round(this.rate.bps), etaSeconds, active, retrying: this.lastRetry };
  }

  /** Resolves when every queued file of `session` is stored; rejects on the first file the server refuses. */
  drain(session: string, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const items = this.items(session);
        const bad = items.find((i) => i.state === 'rejected');
        if (bad) { cleanup(); reject(new KuzetError('UPLOAD_REJECTED', `${bad.path}: ${bad.lastError ?? 'refused by the server'}`, { path: bad.path })); return; }
        if (items.every((i) => i.state === 'stored')) { cleanup(); resolve(); }
      };
      const onAbort = () => { cleanup(); reject(new KuzetError('UPLOAD_STOPPED', 'Upload stopped before it finished; it resumes next time.')); };
      const cleanup = () => {
        this.off('stored', check);
        this.off('rejected', check);
        signal?.removeEventListener('abort', onAbort);
      };
      this.on('stored', check);
      this.on('rejected', check);
      signal?.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  private emitProgress(force = false): void {
    const now = Date.now();
    if (!force && now - this.lastEmit < 200) return;
    this.lastEmit = now;
    this.emit('progress', this.progress());
  }

  private countRate(bytes: number): void {
    const now = Date.now();
    this.rate.bytes += bytes;
    const dt = now - this.rate.t;
    if (dt >= 500) {
      const inst = (this.rate.bytes * 1000) / dt;
      this.rate.bps = this.rate.bps === 0 ? inst : this.rate.bps * 0.7 + inst * 0.3;
      this.rate.t = now;
      this.rate.bytes = 0;
    }
  }

  private pump(): void {
    if (!this.running) return;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    const now = Date.now();
    let soonest = Infinity;
    for (const s of this.slots.values()) {
      if (this.busy >= this.concurrency) break;
      if (s.busy || s.item.state !== 'pending') continue;
      if (s.nextAt > now) { soonest = Math.min(soonest, s.nextAt); continue; }
      s.busy = true;
      this.busy++;
      const w: Promise<void> = this.run(s).finally(() => {
        s.busy = false;
        s.sent = 0;
        this.busy--;
        this.workers.delete(w);
        this.pump();
      });
      this.workers.add(w);
    }
    if (soonest !== Infinity && this.busy < this.concurrency) {
      this.timer = setTimeout(() => { this.timer = null; this.pump(); }, Math.max(10, soonest - now));
    }
  }

  private async run(s: Slot): Promise<void> {
    const item = s.item;
    const signal = this.abort.signal;
    try {
      await this.send(s, signal);
    } catch (e) {
      if (signal.aborted) return;
      const err = e as Error;
      if (e instanceof ServerRefusal && e.code === 'CHECKSUM_MISMATCH' && item.checksumRetries < 3) {
        item.checksumRetries++;
        item.uploadUrl = null;
        item.offset = 0;
        return this.scheduleRetry(s, err.message);
      }
      if (isTransient(e) || (e instanceof ServerRefusal && ['UPLOAD_NOT_FOUND', 'OFFSET_CONFLICT', 'CHECKSUM_MISMATCH_RETRY'].includes(e.code))) {
        return this.scheduleRetry(s, err.message);
      }
      item.state = 'rejected';
      item.lastError = err.message;
      this.persist(item, true);
      this.emit('rejected', item, err.message);
      this.emitProgress(true);
    }
  }

  private scheduleRetry(s: Slot, why: string): void {
    const item = s.item;
    item.attempts++;
    item.lastError = why;
    const base = Math.min(this.retryMaxMs, this.retryMinMs * 2 ** Math.min(item.attempts - 1, 20));
    const delay = Math.round(base * (0.5 + Math.random()));
    s.nextAt = Date.now() + delay;
    this.lastRetry = `${item.path}: ${why}`;
    this.persist(item, false);
    this.emit('retry', item, why, delay);
    this.emitProgress(true);
  }

  private markStored(s: Slot): void {
    const item = s.item;
    item.state = 'stored';
    item.offset = item.size;
    item.storedAt = Date.now();
    item.lastError = null;
    this.persist(item, true);
    this.lastRetry = null;
    this.emit('stored', item);
    this.emitProgress(true);
  }

  private async send(s: Slot, signal: AbortSignal): Promise<void> {
    const item = s.item;
    const file = this.locate(item);
    if (!file) throw new KuzetError('LOCAL_MISSING', `the local file ${item.file} is gone; it cannot be uploaded`);
    const st = statSync(file);
    if (st.size !== item.size) throw new KuzetError('LOCAL_CHANGED', `the local file ${file} has ${st.size} bytes, ${item.size} were recorded when it was queued`);

    let offset: number | null = null;
    if (item.uploadUrl) {
      const h = await this.client.head(item.uploadUrl, signal);
      if (h) offset = h.offset;
      else { item.uploadUrl = null; item.offset = 0; }
    }
    let storedSha: string | undefined;
    if (item.uploadUrl === null) {
      // A file queued for the first time: create the upload and send the first chunk in the same request (tus
      // creation-with-upload). A retry, or a record left by an earlier run, creates without a body: the server may
      // already hold some of it (then the upload resumes from the server's offset instead of resending it).
      const withBody = s.fresh && item.attempts === 0 && item.checksumRetries === 0;
      const firstEnd = Math.min(item.size, this.chunkBytes);
      const c = await this.client.create(item.session, item.path, item.sha256, item.size, signal, withBody ? {
        file, end: firstEnd,
        onSent: (n) => { this.countRate(n - s.sent); s.sent = n; this.emitProgress(); },
      } : undefined);
      if (c.state === 'stored') { this.markStored(s); return; }
      item.uploadUrl = c.url;
      if (c.state === 'exists') {
        this.persist(item, false);
        const h = await this.client.head(c.url, signal);
        if (!h) { item.uploadUrl = null; throw new ServerRefusal(404, 'UPLOAD_NOT_FOUND', 'the upload vanished; creating it again'); }
        offset = h.offset;
      } else {
        offset = c.offset ?? 0;
        storedSha = c.storedSha256;
        item.offset = offset;
        if (offset < item.size) this.persist(item, false);
      }
    }
    offset ??= 0;
    while (offset < item.size) {
      const end = Math.min(item.size, offset + this.chunkBytes);
      const from = offset;
      let last = 0;
      const r = await this.client.patch(item.uploadUrl!, file, from, end, signal, (n) => {
        s.sent = from + n;
        this.countRate(n - last);
        last = n;
        this.emitProgress();
      });
      if (r.offset <= from) throw new NetworkError('other', `the server did not advance the upload of ${item.path}`);
      offset = r.offset;
      item.offset = offset;
      storedSha = r.storedSha256;
      if (offset < item.size) this.persist(item, false);
      this.emitProgress();
    }
    if (storedSha === item.sha256) { this.markStored(s); return; }
    // Full length on the server but no confirmation seen (the answer was lost, or the server restarted): ask.
    const [st2] = await this.client.status(item.session, [{ path: item.path, sha256: item.sha256, size: item.size }], signal);
    if (st2?.state === 'stored') { this.markStored(s); return; }
    if (st2?.state === 'absent') {
      item.uploadUrl = null;
      item.offset = 0;
      throw new ServerRefusal(460, 'CHECKSUM_MISMATCH', `the server did not keep ${item.path} (its bytes did not match the declared hash); sending it again`);
    }
    throw new ServerRefusal(503, 'NOT_CONFIRMED', `the server has not confirmed ${item.path} yet`);
  }
}
