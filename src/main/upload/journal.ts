/**
 * The spool's on-disk record of one session: `<home>/spool/<session>/journal.ndjson`, append-only. Every change of
 * a queued file's state is one line (the file's whole record as JSON) written with one write(2) on a descriptor kept
 * open; on replay the newest line per item id wins. A torn last line (a crash mid-write) and lines that are not
 * records (garbage, another version's fields) are skipped, never fatal. Records of the earlier layout (one
 * `<id>.json` per file, written by temp + rename) are still read, with less weight than any journal line, so a
 * machine upgraded in the middle of an exam loses nothing.
 *
 * The journal is not compacted during a normal session (about two lines per file). When it grows much larger than
 * its items need (a retry storm: a line per attempt), it is rewritten from its newest lines to a temp file, flushed,
 * and renamed over the old one; lines appended meanwhile are appended again to the new file.
 * Another process that still appends to the replaced file notices within {@link STALE_CHECK_EVERY} appends and
 * writes its items again.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, writeSync } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const JOURNAL_FILE = 'journal.ndjson';

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

/** A journal is rewritten when it has at least this many lines … */
export const COMPACT_MIN_LINES = 256;
/** … and more than this many lines per item it holds. */
export const COMPACT_LINES_PER_ITEM = 4;
/** Appends between checks that the journal file is still the one at its path (another process compacted it). */
export const STALE_CHECK_EVERY = 64;

const STATES = new Set(['pending', 'stored', 'rejected']);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const isTime = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** The record in `x` if it is a well-formed spool record of `session`; null otherwise (skipped on replay). */
export function asSpoolItem(x: unknown, session: string): SpoolItem | null {
  if (!x || typeof x !== 'object' || Array.isArray(x)) return null;
  const o = x as Record<string, unknown>;
  if (o.v !== 1 || o.session !== session) return null;
  if (typeof o.id !== 'string' || !/^[0-9a-f]{32}$/.test(o.id)) return null;
  if (typeof o.server !== 'string' || typeof o.path !== 'string' || typeof o.file !== 'string') return null;
  if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) return null;
  if (!isCount(o.size) || !isCount(o.offset) || typeof o.state !== 'string' || !STATES.has(o.state)) return null;
  if (o.uploadUrl !== null && typeof o.uploadUrl !== 'string') return null;
  if (o.lastError !== null && o.lastError !== undefined && typeof o.lastError !== 'string') return null;
  return {
    v: 1, id: o.id, server: o.server, session, path: o.path, file: o.file, sha256: o.sha256, size: o.size,
    uploadUrl: o.uploadUrl, offset: Math.min(o.offset, o.size), state: o.state as SpoolItem['state'],
    attempts: isCount(o.attempts) ? o.attempts : 0, checksumRetries: isCount(o.checksumRetries) ? o.checksumRetries : 0,
    lastError: typeof o.lastError === 'string' ? o.lastError : null,
    createdAt: isTime(o.createdAt) ? o.createdAt : 0, storedAt: isTime(o.storedAt) ? o.storedAt : null,
  };
}

export interface JournalReplay {
  /** The newest record per item id. */
  items: Map<string, SpoolItem>;
  /** Complete lines in the journal (records or not). */
  lines: number;
  /** Lines that were not records of this session (garbage, a torn line completed by a later start). */
  skipped: number;
  /** The journal ended in the middle of a line (a crash mid-write); that part was ignored. */
  torn: boolean;
  /** Records read from the earlier one-file-per-record layout. */
  legacy: number;
}

/** Replays journal text into `into` (newest line per id wins). Never throws. */
export function replayJournal(text: string, session: string, into: Map<string, SpoolItem>): Pick<JournalReplay, 'lines' | 'skipped' | 'torn'> {
  let lines = 0; let skipped = 0; let at = 0;
  for (;;) {
    const nl = text.indexOf('\n', at);
    if (nl < 0) break;
    const line = text.slice(at, nl);
    at = nl + 1;
    lines++;
    let item: SpoolItem | null;
    try { item = asSpoolItem(JSON.parse(line), session); } catch { item = null; }
    if (item) into.set(item.id, item); else skipped++;
  }
  return { lines, skipped, torn: at < text.length };
}

/** Everything the spool folder of one session holds: earlier-layout records first, then the journal over them. */
export function readSpoolDir(dir: string, session: string): JournalReplay {
  const items = new Map<string, SpoolItem>();
  let names: string[];
  try { names = readdirSync(dir); } catch { return { items, lines: 0, skipped: 0, torn: false, legacy: 0 }; }
  let legacy = 0;
  for (const f of names) {
    if (!f.endsWith('.json')) continue;
    try {
      const item = asSpoolItem(JSON.parse(readFileSync(join(dir, f), 'utf8')), session);
      if (item && `${item.id}.json` === f) { items.set(item.id, item); legacy++; }
    } catch { /* unreadable or half-written record of the earlier layout: skipped */ }
  }
  let text = '';
  if (names.includes(JOURNAL_FILE)) {
    try { text = readFileSync(join(dir, JOURNAL_FILE), 'utf8'); } catch { text = ''; }
  }
  return { items, legacy, ...replayJournal(text, session, items) };
}

/** The appending side of one session's journal. Writes are synchronous single write(2) calls; nothing here throws. */
export class SessionJournal {
  readonly session: string;
  readonly dir: string;
  readonly path: string;
  /** Records on disk when this journal was opened (what an earlier run left), by id. */
  readonly known: Map<string, SpoolItem>;
  private fd: number | null = null;
  private lines: number;
  private ids: Set<string>;
  private sinceCheck = 0;
  /** Lines appended while a compaction runs (appended again to the new file). */
  private during: { text: string[]; flush: boolean } | null = null;
  private readonly pending = new Set<Promise<void>>();
  private closed = false;
  /** The current records of this session held by the writer, written again when the file was replaced under it. */
  private readonly current: () => SpoolItem[];

  constructor(dir: string, session: string, replay: JournalReplay, current: () => SpoolItem[]) {
    this.dir = dir;
    this.session = session;
    this.path = join(dir, JOURNAL_FILE);
    this.known = replay.items;
    this.lines = replay.lines;
    this.ids = new Set(replay.items.keys());
    this.current = current;
  }

  /** Appends the record's current state; `flush` also forces it to the disk (in the background, see `flushed`). */
  append(item: SpoolItem, flush: boolean): void {
    this.write(JSON.stringify(item) + '\n', flush, 1);
    this.ids.add(item.id);
    if (++this.sinceCheck >= STALE_CHECK_EVERY) { this.sinceCheck = 0; this.checkReplaced(); }
    if (!this.during && this.lines >= COMPACT_MIN_LINES && this.lines > COMPACT_LINES_PER_ITEM * this.ids.size) this.compact();
  }

  private write(text: string, flush: boolean, nLines: number): void {
    if (this.closed) return;
    if (this.fd === null && !this.openForAppend()) return;
    try {
      const n = writeSync(this.fd!, text);
      if (n !== text.length && n !== Buffer.byteLength(text)) throw new Error('short write');
    } catch {
      // Disk full, or the folder is gone: the record is a cache of what the server holds (asked again on resume),
      // so the exam goes on. The next append reopens, which ends a partly written line first.
      this.dropFd();
      return;
    }
    this.lines += nLines;
    if (this.during) { this.during.text.push(text); this.during.flush ||= flush; }
    if (flush) this.track(this.sync());
  }

  private openForAppend(): boolean {
    try {
      try { this.fd = openSync(this.path, 'a+'); } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        mkdirSync(this.dir, { recursive: true });
        this.fd = openSync(this.path, 'a+');
      }
      // A line cut off by a crash is ended here, so the next record starts on a line of its own.
      const size = fstatSync(this.fd).size;
      if (size > 0) {
        const last = Buffer.alloc(1);
        if (readSync(this.fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a) { writeSync(this.fd, '\n'); this.lines++; }
      }
      return true;
    } catch {
      this.dropFd();
      return false;
    }
  }

  private dropFd(): void {
    if (this.fd !== null) { try { closeSync(this.fd); } catch { /* already closed */ } }
    this.fd = null;
  }

  /** Another process compacted the journal (our descriptor points to the replaced file): write our records again. */
  private checkReplaced(): void {
    if (this.fd === null || this.during) return;
    try {
      if (fstatSync(this.fd).nlink > 0) return;
    } catch { /* treat as replaced */ }
    this.dropFd();
    const items = this.current();
    if (items.length) this.write(items.map((i) => JSON.stringify(i) + '\n').join(''), false, items.length);
  }

  /** Forces what was written so far to the disk (through its own descriptor, so appends never wait for it). */
  private async sync(): Promise<void> {
    try {
      const fh = await open(this.path, 'r');
      try { await fh.datasync(); } finally { await fh.close(); }
    } catch { /* the next start asks the server again */ }
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Rewrites the journal from its newest line per item (temp file, flushed, renamed over the journal). */
  private compact(): void {
    const during = { text: [] as string[], flush: false };
    this.during = during;
    const tmp = `${this.path}.compact-${process.pid}`;
    this.track((async () => {
      try {
        const items = new Map<string, SpoolItem>();
        replayJournal(await readFile(this.path, 'utf8'), this.session, items);
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile([...items.values()].map((i) => JSON.stringify(i) + '\n').join(''));
          await fh.datasync();
        } finally { await fh.close(); }
        if (this.closed) { await rm(tmp, { force: true }); return; }
        await rename(tmp, this.path);
        // From here on (synchronously) appends go to the new file; what was appended to the old one meanwhile
        // is appended again (newer than anything the rewrite holds, so replay order stays right).
        this.dropFd();
        this.during = null;
        this.lines = items.size;
        this.ids = new Set(items.keys());
        if (during.text.length) this.write(during.text.join(''), during.flush, during.text.length);
      } catch {
        await rm(tmp, { force: true }).catch(() => undefined);
      } finally {
        if (this.during === during) this.during = null;
      }
    })());
  }

  /** Resolves when every flush and compaction started so far has finished. */
  async flushed(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** Finishes pending work and closes the descriptor; later appends are ignored (open a new journal). */
  async close(): Promise<void> {
    await this.flushed();
    this.closed = true;
    this.dropFd();
  }
}
