/**
 * The durable upload queue. Every file to deliver has a record in its session's journal,
 * `<home>/spool/<session>/journal.ndjson` (see journal.ts: one appended line per state change, the newest line per
 * file wins), holding its tus upload URL (persisted before the first byte is sent) and the last offset the server
 * acknowledged; after a crash or reboot `resume()` picks every unfinished record up again and continues from the
 * server's offset (HEAD). Records of the earlier layout (`<session>/<id>.json`) are resumed too. Network failures
 * are retried without limit with exponential backoff and jitter; a refusal the server explains (revoked device,
 * oversize file, unsafe name …) stops that file with the reason, and that record is flushed to the disk.
 *
 * The queue never deletes evidence. Records are removed only by `forgetSession`, which `uploadBundle` calls after
 * it holds a valid signed receipt.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KuzetError } from '../core/errors.js';
import type { HomeLayout } from '../core/home.js';
import { isSafeSessionId, uploadIdFor } from '../server/protocol.js';
import { ServerRefusal, isTransient, type ServerClient } from './client.js';
import { NetworkError } from './http.js';
import { SessionJournal, readSpoolDir, type JournalReplay, type SpoolItem } from './journal.js';

export type { SpoolItem } from './journal.js';

/** Every record the spool holds for one session (journal and earlier-layout records; newest state per file). */
export function readSpool(home: HomeLayout, session: string): SpoolItem[] {
  if (!isSafeSessionId(session)) return [];
  return [...readSpoolDir(join(home.spool, session), session).items.values()];
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
  const find = locateWithSize(home);
  return (item) => find(item)?.path ?? null;
}

/** `defaultLocate` that also returns the size it found (one stat per candidate instead of an exists and a stat). */
function locateWithSize(home: HomeLayout): (item: SpoolItem) => { path: string; size: number } | null {
  return (item) => {
    for (const p of [item.file, join(home.bundles, item.session, item.path), join(home.sessions, item.session, item.path)]) {
      const st = statSync(p, { throwIfNoEntry: false });
      if (st?.isFile()) return { path: p, size: st.size };
    }
    return null;
  };
}

export class UploadQueue extends EventEmitter<QueueEvents> {
  readonly client: ServerClient;
  readonly home: HomeLayout;
  private readonly slots = new Map<string, Slot>();
  /** The slots whose file is still to be delivered (state pending), in queue order: what `pump` looks at. */
  private readonly pending = new Set<Slot>();
  private readonly concurrency: number;
  private readonly chunkBytes: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly locate: (item: SpoolItem) => { path: string; size: number } | null;
  private running = false;
  private abort = new AbortController();
  private busy = 0;
  private timer: NodeJS.Timeout | null = null;
  private workers = new Set<Promise<void>>();
  private lastRetry: string | null = null;
  private rate = { t: Date.now(), bytes: 0, bps: 0 };
  private lastEmit = 0;
  private emitTimer: NodeJS.Timeout | null = null;
  /** Open session journals (records are appended there). */
  private readonly journals = new Map<string, SessionJournal>();

  constructor(opts: QueueOptions) {
    super();
    this.client = opts.client;
    this.home = opts.home;
    this.concurrency = opts.concurrency ?? 2;
    this.chunkBytes = opts.chunkBytes ?? 8 * 1024 * 1024;
    this.retryMinMs = opts.retryMinMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 30000;
    const custom = opts.locate;
    this.locate = custom
      ? (item) => { const p = custom(item); if (!p) return null; const st = statSync(p, { throwIfNoEntry: false }); return st ? { path: p, size: st.size } : null; }
      : locateWithSize(opts.home);
    mkdirSync(opts.home.spool, { recursive: true });
    for (const d of readdirSync(opts.home.spool)) if (d.startsWith('.done-')) this.removeLater(join(opts.home.spool, d));
  }

  /** Keeps `pending` in step with a slot's state (call after every state change). */
  private track(s: Slot): void {
    if (s.item.state === 'pending') this.pending.add(s); else this.pending.delete(s);
  }

  /** The session's journal, opened (and what it holds read) on first use. */
  private journal(session: string, replay?: JournalReplay): SessionJournal {
    let j = this.journals.get(session);
    if (!j) {
      const dir = join(this.home.spool, session);
      j = new SessionJournal(dir, session, replay ?? readSpoolDir(dir, session), () => this.items(session));
      this.journals.set(session, j);
    }
    return j;
  }

  /**
   * Appends the record's new state to its session's journal: one write, no rename, no thread-pool trip. Not
   * flushed to disk on every change: the evidence itself is already on disk, upload URLs are deterministic, and a
   * record lost to a power cut only makes the next run ask the server again. Rejections are flushed, since they
   * carry the reason a person must see.
   */
  private persist(item: SpoolItem): void {
    this.journal(item.session).append(item, item.state === 'rejected');
  }

  /** Resolves when every spool record write issued so far is on disk (tests, shutdown). */
  async flushed(): Promise<void> {
    await Promise.all([...this.journals.values()].map((j) => j.flushed()));
  }

  /** Queues a file (idempotent: the same session/path/content is one record). A rejected record is retried. */
  enqueue(f: EnqueueFile): SpoolItem {
    if (!isSafeSessionId(f.session)) throw new KuzetError('BAD_SESSION_ID', `"${f.session}" is not a valid session id.`);
    const id = spoolItemId(this.client.server, f.session, f.path, f.sha256);
    const slot = this.slots.get(id);
    if (slot) {
      if (slot.item.file !== f.file) slot.item.file = f.file;
      if (slot.item.state === 'rejected') { slot.item.state = 'pending'; slot.item.attempts = 0; slot.item.checksumRetries = 0; slot.item.lastError = null; slot.nextAt = 0; this.track(slot); this.persist(slot.item); }
      this.pump();
      return slot.item;
    }
    const onDisk = this.journal(f.session).known.get(id) ?? null;
    const item: SpoolItem = onDisk ?? {
      v: 1, id, server: this.client.server, session: f.session, path: f.path, file: f.file, sha256: f.sha256, size: f.size,
      uploadUrl: null, offset: 0, state: 'pending', attempts: 0, checksumRetries: 0, lastError: null, createdAt: Date.now(), storedAt: null,
    };
    // A record read back unchanged (a file the live uploader already delivered) is not written again.
    const changed = !onDisk || onDisk.file !== f.file || onDisk.state === 'rejected';
    item.file = f.file;
    if (item.state === 'rejected') { item.state = 'pending'; item.attempts = 0; item.checksumRetries = 0; item.lastError = null; }
    if (changed) this.persist(item);
    const created: Slot = { item, nextAt: 0, busy: false, sent: 0, fresh: !onDisk };
    this.slots.set(id, created);
    this.track(created);
    this.pump();
    return item;
  }

  /** Loads every unfinished record for this server from the spool (after a crash or reboot). Returns how many. */
  resume(session?: string): number {
    let n = 0;
    let sessions: string[];
    if (session) sessions = [session];
    else {
      try { sessions = readdirSync(this.home.spool); } catch { sessions = []; }
    }
    for (const s of sessions) {
      // Dot folders hold records of receipted sessions waiting to be removed.
      if (s.startsWith('.') || !isSafeSessionId(s)) continue;
      // Read afresh: another queue (the live uploader, another process) may have written since this one looked.
      const replay = readSpoolDir(join(this.home.spool, s), s);
      if (replay.items.size === 0) continue;
      const j = this.journal(s, replay);
      for (const item of replay.items.values()) {
        if (this.slots.has(item.id)) continue;
        j.known.set(item.id, item);
        if (item.server !== this.client.server) continue;
        const resumed: Slot = { item, nextAt: 0, busy: false, sent: 0, fresh: false };
        this.slots.set(item.id, resumed);
        this.track(resumed);
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
    for (const [id, s] of this.slots) if (s.item.session === session && !s.busy) { this.slots.delete(id); this.pending.delete(s); }
    const j = this.journals.get(session);
    this.journals.delete(session);
    await j?.close();
    await this.flushed();
    if (!isSafeSessionId(session)) return;
    const dir = join(this.home.spool, session);
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
    if (this.emitTimer) { clearTimeout(this.emitTimer); this.emitTimer = null; }
    // Journals are closed (a stopped queue holds no descriptors); a later change opens them again.
    const open = [...this.journals.values()];
    this.journals.clear();
    await Promise.all(open.map((j) => j.close()));
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
      const check = (changed?: SpoolItem) => {
        if (changed) {
          // A file of this session was stored or refused: only the files still pending need a look (this runs for
          // every file stored, and a long exam has hundreds).
          if (changed.session !== session) return;
          if (changed.state === 'rejected') { cleanup(); reject(new KuzetError('UPLOAD_REJECTED', `${changed.path}: ${changed.lastError ?? 'refused by the server'}`, { path: changed.path })); return; }
          for (const s of this.pending) if (s.item.session === session) return;
        }
        let bad: SpoolItem | null = null;
        let done = true;
        for (const s of this.slots.values()) {
          const i = s.item;
          if (i.session !== session) continue;
          if (i.state === 'rejected') { bad = i; break; }
          if (i.state !== 'stored') done = false;
        }
        if (bad) { cleanup(); reject(new KuzetError('UPLOAD_REJECTED', `${bad.path}: ${bad.lastError ?? 'refused by the server'}`, { path: bad.path })); return; }
        if (done) { cleanup(); resolve(); }
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

  /**
   * At most one progress event per 200 ms, and none when nobody listens. `force` (a file finished, failed or
   * is retried) makes sure an event follows: at once, or at the end of the current 200 ms.
   */
  private emitProgress(force = false): void {
    if (this.emitTimer || this.listenerCount('progress') === 0) return;
    const now = Date.now();
    const wait = this.lastEmit + 200 - now;
    if (wait <= 0) { this.lastEmit = now; this.emit('progress', this.progress()); return; }
    if (!force) return;
    this.emitTimer = setTimeout(() => {
      this.emitTimer = null;
      this.lastEmit = Date.now();
      this.emit('progress', this.progress());
    }, wait);
    this.emitTimer.unref();
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
    for (const s of this.pending) {
      if (this.busy >= this.concurrency) break;
      if (s.busy) continue;
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
      this.track(s);
      this.persist(item);
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
    this.persist(item);
    this.emit('retry', item, why, delay);
    this.emitProgress(true);
  }

  private markStored(s: Slot): void {
    const item = s.item;
    item.state = 'stored';
    this.track(s);
    item.offset = item.size;
    item.storedAt = Date.now();
    item.lastError = null;
    this.persist(item);
    this.lastRetry = null;
    this.emit('stored', item);
    this.emitProgress(true);
  }

  private async send(s: Slot, signal: AbortSignal): Promise<void> {
    const item = s.item;
    const found = this.locate(item);
    if (!found) throw new KuzetError('LOCAL_MISSING', `the local file ${item.file} is gone; it cannot be uploaded`);
    const file = found.path;
    if (found.size !== item.size) throw new KuzetError('LOCAL_CHANGED', `the local file ${file} has ${found.size} bytes, ${item.size} were recorded when it was queued`);

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
        this.persist(item);
        const h = await this.client.head(c.url, signal);
        if (!h) { item.uploadUrl = null; throw new ServerRefusal(404, 'UPLOAD_NOT_FOUND', 'the upload vanished; creating it again'); }
        offset = h.offset;
      } else {
        offset = c.offset ?? 0;
        storedSha = c.storedSha256;
        item.offset = offset;
        if (offset < item.size) this.persist(item);
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
      if (offset < item.size) this.persist(item);
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
