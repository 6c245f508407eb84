import { closeSync, existsSync, fdatasyncSync, fstatSync, openSync, readFileSync, ftruncateSync, writeSync, writeFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { canonicalize, sha256Hex } from './canonical.js';
import { KuzetError, fsError } from './errors.js';

/**
 * The session's append-only, hash-chained event log (NDJSON, one record a line).
 *
 * Each record is `{seq, prev, mono, wall, type, data, hash}`; `hash` is the SHA-256 of the RFC 8785 canonical JSON
 * of the other six fields, and `prev` is the previous record's hash (GENESIS for the first). Editing, inserting,
 * deleting or reordering a record therefore breaks the chain at that point, and the manifest pins the head.
 *
 * Durability policy (docs/bundle-format.md, "Event log"): every record is written to the file with one write(2)
 * as it happens, so a crash or kill -9 of Kuzet loses nothing (the bytes are in the kernel). fdatasync runs at once
 * for records that matter for recovery (segments, session and log events) and otherwise at most `syncEveryMs`
 * after a write, so a power loss costs at most that window of minor events — without one disk flush per
 * detector frame.
 */

export const GENESIS = '0'.repeat(64);

export interface LogRecord<T = unknown> {
  seq: number;
  prev: string;
  /** Milliseconds on the monotonic clock since this log was opened by this process (resets on reopen: see log.opened). */
  mono: number;
  /** Wall-clock time, milliseconds since the Unix epoch. */
  wall: number;
  type: string;
  data: T;
  hash: string;
}

export function recordHash(r: Omit<LogRecord, 'hash'>): string {
  return sha256Hex(canonicalize({ seq: r.seq, prev: r.prev, mono: r.mono, wall: r.wall, type: r.type, data: r.data }));
}

const SYNC_NOW = /^(segment\.|session\.|log\.|recorder\.(failed|exited|restart)|upload\.receipt)/;

export interface EventLogOptions {
  syncEveryMs?: number;
  /** Clock overrides for tests. */
  now?: () => number;
}

export class EventLog extends EventEmitter {
  readonly path: string;
  private fd: number;
  private seq: number;
  private headHash: string;
  private readonly t0 = process.hrtime.bigint();
  private readonly now: () => number;
  private readonly syncEveryMs: number;
  private syncTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Bytes of whole records in the file: a failed write is cut back to this, so the file stays a valid prefix. */
  private size: number;
  /** Records computed but not yet on disk (disk full, I/O error): written first, in order, as soon as it works. */
  private backlog: Buffer[] = [];
  private writeError: string | null = null;

  private constructor(path: string, fd: number, seq: number, head: string, opts: EventLogOptions) {
    super();
    this.path = path;
    this.fd = fd;
    this.size = fstatSync(fd).size;
    this.seq = seq;
    this.headHash = head;
    this.now = opts.now ?? Date.now;
    this.syncEveryMs = opts.syncEveryMs ?? 1000;
  }

  /**
   * Opens (creating if needed) the log at `path`. An existing log is reopened for appending: a torn last line
   * (a crash in the middle of a write) is moved aside to `<path>.torn-<n>` and a `log.torn_tail` record says so.
   */
  static open(path: string, opts: EventLogOptions = {}): EventLog {
    let seq = 0;
    let head = GENESIS;
    let torn: { file: string; bytes: number; sha256: string } | null = null;
    if (existsSync(path)) {
      const buf = readFileSync(path);
      const lastNl = buf.lastIndexOf(0x0a);
      const goodLen = lastNl + 1;
      if (goodLen < buf.length) {
        const tail = buf.subarray(goodLen);
        let n = 1;
        while (existsSync(`${path}.torn-${n}`)) n++;
        const file = `${path}.torn-${n}`;
        writeFileSync(file, tail);
        torn = { file: file.split(/[\\/]/).pop()!, bytes: tail.length, sha256: sha256Hex(tail) };
        const fdT = openSync(path, 'r+');
        try { ftruncateSync(fdT, goodLen); fdatasyncSync(fdT); } finally { closeSync(fdT); }
      }
      const lines = buf.subarray(0, goodLen).toString('utf8').split('\n').filter((l) => l.length > 0);
      for (let i = lines.length - 1; i >= 0; i--) {
        try {
          const r = JSON.parse(lines[i]!) as LogRecord;
          if (typeof r.seq === 'number' && typeof r.hash === 'string') { seq = r.seq + 1; head = r.hash; break; }
        } catch { /* an unparsable complete line is corruption, reported by verifyLog; keep looking back */ }
      }
    }
    let fd: number;
    try {
      fd = openSync(path, 'a');
    } catch (e) {
      throw fsError(e, 'open the event log', path);
    }
    const log = new EventLog(path, fd, seq, head, opts);
    log.append('log.opened', { pid: process.pid, resumedAt: seq });
    if (torn) log.append('log.torn_tail', torn);
    return log;
  }

  get head(): { seq: number; hash: string } {
    return { seq: this.seq - 1, hash: this.headHash };
  }

  get count(): number {
    return this.seq;
  }

  /**
   * Appends a record. Never throws for an I/O failure (a full disk must not crash the exam): the record keeps its
   * place in the chain, waits in memory, and is written before any later record as soon as writing works again;
   * `write_error` / `write_ok` events report the state, and `close()` throws if records are still unwritten.
   */
  append<T>(type: string, data: T = {} as T, opts: { sync?: boolean } = {}): LogRecord<T> {
    if (this.closed) throw new KuzetError('LOG_CLOSED', `Event log ${this.path} is closed; cannot append ${type}`);
    const mono = Math.round(Number(process.hrtime.bigint() - this.t0) / 1000) / 1000;
    const base = { seq: this.seq, prev: this.headHash, mono, wall: this.now(), type, data };
    const rec: LogRecord<T> = { ...base, hash: recordHash(base) };
    this.backlog.push(Buffer.from(JSON.stringify(rec) + '\n', 'utf8'));
    this.seq++;
    this.headHash = rec.hash;
    if (this.flushBacklog()) {
      if (opts.sync || SYNC_NOW.test(type)) this.sync();
      else this.scheduleSync();
    }
    this.emit('record', rec);
    return rec;
  }

  /** Records waiting for the disk (0 in normal operation). */
  get unwritten(): number {
    return this.backlog.length;
  }

  private flushBacklog(): boolean {
    while (this.backlog.length > 0) {
      const line = this.backlog[0]!;
      try {
        let off = 0;
        while (off < line.length) off += writeSync(this.fd, line, off);
      } catch (e) {
        try { ftruncateSync(this.fd, this.size); } catch { /* the next open() keeps any torn tail aside */ }
        const err = fsError(e, 'append to', this.path);
        if (this.writeError === null) {
          this.writeError = err.message;
          this.emit('write_error', err);
        }
        return false;
      }
      this.size += line.length;
      this.backlog.shift();
    }
    if (this.writeError !== null) {
      this.writeError = null;
      this.emit('write_ok');
    }
    return true;
  }

  sync(): void {
    if (this.syncTimer) { clearTimeout(this.syncTimer); this.syncTimer = null; }
    if (!this.closed) {
      try { fdatasyncSync(this.fd); } catch { /* a failed flush is retried by the next write */ }
    }
  }

  private scheduleSync(): void {
    if (this.syncTimer) return;
    this.syncTimer = setTimeout(() => { this.syncTimer = null; this.sync(); }, this.syncEveryMs);
    this.syncTimer.unref();
  }

  /** Flushes and closes. Throws (DISK_FULL, IO_ERROR) if records could not be written; the file keeps every record that was. */
  close(): void {
    if (this.closed) return;
    const ok = this.flushBacklog();
    this.sync();
    if (!ok) {
      throw new KuzetError('LOG_UNWRITTEN', `${this.backlog.length} event(s) could not be written to ${this.path}: ${this.writeError}`, { path: this.path });
    }
    this.closed = true;
    closeSync(this.fd);
  }
}

export interface LogProblem { line: number; seq?: number; problem: string }
export interface LogCheck {
  ok: boolean;
  count: number;
  head: { seq: number; hash: string };
  problems: LogProblem[];
  records: LogRecord[];
}

/** Verifies a whole log's text: every line parses, seq counts up from 0, prev links, hashes match. Never throws. */
export function verifyLogText(text: string): LogCheck {
  const problems: LogProblem[] = [];
  const records: LogRecord[] = [];
  let expectSeq = 0;
  let prev = GENESIS;
  const lines = text.split('\n');
  const tornTail = lines.pop(); // '' when the text ends with a newline
  if (tornTail) problems.push({ line: lines.length + 1, problem: 'last line is torn (no newline at the end)' });
  lines.forEach((l, i) => {
    const lineNo = i + 1;
    let r: LogRecord;
    try {
      r = JSON.parse(l) as LogRecord;
    } catch {
      problems.push({ line: lineNo, problem: 'not valid JSON' });
      return;
    }
    if (!r || typeof r !== 'object' || typeof r.seq !== 'number' || typeof r.hash !== 'string' || typeof r.prev !== 'string' || typeof r.type !== 'string') {
      problems.push({ line: lineNo, problem: 'not an event record (seq/prev/type/hash missing)' });
      return;
    }
    if (r.seq !== expectSeq) problems.push({ line: lineNo, seq: r.seq, problem: `sequence number is ${r.seq}, expected ${expectSeq} (an event was inserted, deleted or reordered)` });
    if (r.prev !== prev) problems.push({ line: lineNo, seq: r.seq, problem: 'prev does not match the previous event\'s hash (the chain is broken here)' });
    let h: string;
    try { h = recordHash(r); } catch (e) { h = `unhashable: ${(e as Error).message}`; }
    if (h !== r.hash) problems.push({ line: lineNo, seq: r.seq, problem: `hash does not match the event's content (event ${r.type} was edited)` });
    records.push(r);
    expectSeq = r.seq + 1;
    prev = r.hash;
  });
  const last = records.at(-1);
  return { ok: problems.length === 0, count: records.length, head: { seq: last ? last.seq : -1, hash: last ? last.hash : GENESIS }, problems, records };
}

export function readLogRecords(path: string): LogRecord[] {
  return verifyLogText(readFileSync(path, 'utf8')).records;
}
