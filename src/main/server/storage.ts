/**
 * Where upload bytes live. The tus DataStore receives them; this wrapper adds what the evidence server needs on
 * top: hash a finished upload, fsync it, read ranges for review, lay out a bundle folder for verification, and
 * move a bad upload aside (kept, never deleted).
 *
 * - `file` (default): @tus/file-store under `<data>/uploads`; bundles are laid out with hard links (no copy).
 * - `s3`: @tus/s3-store in an S3-compatible bucket; verification downloads the bundle to a temporary folder.
 */
import { createHash, type Hash } from 'node:crypto';
import { hashStream } from '../core/hash.js';
import { HashWorker } from './hashworker.js';
import { closeSync, copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writev } from 'node:fs';
import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform, finished } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { FileStore } from '@tus/file-store';
import { ERRORS, Upload, type DataStore, type KvStore } from '@tus/utils';
import type { ServerConfig } from '../core/config.js';
import { KuzetError } from '../core/errors.js';
import type { ServerDb } from './db.js';

export interface EvidenceStore {
  readonly kind: 'file' | 's3';
  readonly datastore: DataStore;
  /** True when the store keeps each upload as a local file (fast paths: links, sendfile-style reads). */
  localPath(uploadId: string): string | null;
  size(uploadId: string): Promise<number | null>;
  hash(uploadId: string): Promise<{ sha256: string; size: number }>;
  /** Makes a finished upload durable (fsync) before the server signs a receipt for it. */
  sync(uploadId: string): Promise<void>;
  /**
   * Starts making a finished upload durable in the background (one file at a time, so the disk flushes spread over
   * the exam instead of piling up at its end); a later `sync()` of it then returns at once.
   */
  syncSoon(uploadId: string): void;
  read(uploadId: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Places the upload at `dest` (a link where possible). */
  materialize(uploadId: string, dest: string): Promise<void>;
  /** Moves a bad upload to the quarantine area (so the same id can be uploaded again); returns where it is kept. */
  quarantine(uploadId: string, name: string): Promise<string>;
  /** Whether tus knows this upload (its info record exists). */
  exists(uploadId: string): Promise<boolean>;
  /** Whether materialize() makes a cheap link that lives in the data dir (else it downloads a temporary copy). */
  readonly linksInPlace: boolean;
  /** Local folders whose filesystem holds upload bytes (flushed as a whole before a receipt; see DiskFlusher). */
  readonly flushDirs: string[];
  /**
   * The sha256 of bytes [0, size) of an upload as they were received, when every byte of it arrived through this
   * process since it started (hashed on the way to the store, so a finished upload is not read back); null when
   * the server restarted mid-upload or a request failed half-way, and for file-store uploads over ARRIVAL_HASH_MAX,
   * which are not hashed on the way (then `hash()` reads the stored bytes). Consumes it.
   */
  takeReceivedHash(uploadId: string, size: number): string | null;
  /** Lets go of what the store holds open (the hash worker); the server calls it when it closes. */
  close(): Promise<void>;
}

/**
 * Hashes upload bytes on their way into a tus DataStore. Each upload keeps one running SHA-256 while its writes
 * arrive in order from offset 0; a write that fails, or starts anywhere else, drops it (the caller then hashes
 * the stored bytes). Bounded: at most `max` uploads are tracked at once (the oldest is dropped).
 */
export class ReceiveHasher {
  private readonly running = new Map<string, { hash: Hash; offset: number }>();
  constructor(private readonly max = 5000) {}

  /** The running hash for a write of `id` starting at `offset`, or null when the bytes before it were not seen. */
  begin(id: string, offset: number): Hash | null {
    const prev = this.running.get(id);
    this.running.delete(id);
    return offset === 0 ? createHash('sha256') : prev && prev.offset === offset ? prev.hash : null;
  }

  /** Records that `hash` now covers [0, offset) of `id` (call only after the store accepted those bytes). */
  end(id: string, hash: Hash, offset: number): void {
    if (this.running.size >= this.max) this.running.delete(this.running.keys().next().value!);
    this.running.set(id, { hash, offset });
  }

  /** Hashes every write of any tus DataStore on its way in (used for stores that are not ours, e.g. S3). */
  wrap(ds: DataStore): void {
    const write = ds.write.bind(ds);
    ds.write = async (readable: Readable, id: string, offset: number): Promise<number> => {
      const hash = this.begin(id, offset);
      if (!hash) return write(readable, id, offset);
      let n = 0;
      const tee = new Transform({
        transform(chunk: Buffer, _enc, cb) { hash.update(chunk); n += chunk.length; cb(null, chunk); },
      });
      readable.once('error', (e) => tee.destroy(e));
      readable.pipe(tee);
      const next = await write(tee, id, offset);
      if (next === offset + n) this.end(id, hash, next);
      return next;
    };
  }

  take(id: string, size: number): string | null {
    const r = this.running.get(id);
    if (!r || r.offset !== size) return null; // not (yet) complete: keep hashing as the rest arrives
    this.running.delete(id);
    return r.hash.digest('hex');
  }
}

export function openStore(dataDir: string, cfg: ServerConfig['store'], db: ServerDb): EvidenceStore {
  if (cfg.kind === 's3') return new S3EvidenceStore(dataDir, cfg);
  return new FileEvidenceStore(dataDir, db);
}

/**
 * The tus upload records (size, metadata, creation date) without a JSON file per upload: every upload of this
 * server has a row in the index's `files` table (written before tus creates the upload), which holds the same
 * facts, so a lookup is an in-process SQLite read instead of an open/read/close on the disk for every request.
 * Records written by older versions (`uploads/<id>.json`) are still read.
 */
export class DbConfigstore implements KvStore<Upload> {
  constructor(private readonly db: ServerDb, private readonly legacyDir: string) {}

  private legacyPath(key: string): string | null {
    return /^[0-9a-f]{40}$/.test(key) ? join(this.legacyDir, `${key}.json`) : null;
  }

  async get(key: string): Promise<Upload | undefined> {
    return this.getSync(key);
  }

  /** The declared size of an indexed upload (no Upload object made). */
  sizeOf(key: string): number | undefined {
    return this.db.file(key)?.size;
  }

  getSync(key: string): Upload | undefined {
    const row = this.db.file(key);
    if (row) {
      return new Upload({
        id: key, size: row.size, offset: 0, creation_date: new Date(row.created_at).toISOString(),
        metadata: { session: row.session_id, path: row.path, sha256: row.sha256 },
      });
    }
    const legacy = this.legacyPath(key);
    if (!legacy) return undefined;
    try { return JSON.parse(readFileSync(legacy, 'utf8')) as Upload; } catch { return undefined; }
  }

  async set(key: string, value: Upload): Promise<void> {
    const row = this.db.file(key);
    if (row && row.size === value.size) return; // the index row already says it all
    // Not an upload the server indexed (should not happen): keep tus's record the way @tus/file-store does.
    const legacy = this.legacyPath(key);
    if (!legacy) throw ERRORS.FILE_NOT_FOUND;
    await writeFile(legacy, JSON.stringify(value));
  }

  async delete(key: string): Promise<void> {
    const legacy = this.legacyPath(key);
    if (legacy) rmSync(legacy, { force: true });
  }

  async list(): Promise<string[]> {
    return [];
  }
}

/**
 * @tus/file-store with fewer trips to the disk per request: upload records in the index (`DbConfigstore`), the
 * empty file made and the offset read with direct calls, small uploads hashed as they are written (bigger ones are
 * hashed by the hash worker once complete). Upload bytes still go to `uploads/<id>`, written asynchronously.
 */
export class LeanFileStore extends FileStore {
  readonly hasher = new ReceiveHasher();
  /** Called when an upload's file is (re)made empty. */
  onCreate: ((id: string) => void) | null = null;
  private readonly infos: DbConfigstore;

  constructor(directory: string, configstore: DbConfigstore) {
    super({ directory, configstore });
    this.infos = configstore;
  }

  /** Upload ids are 40 hex digits (`uploadIdFor`); anything else is not an upload of this server. */
  private pathOf(id: string): string {
    if (!/^[0-9a-f]{40}$/.test(id)) throw ERRORS.FILE_NOT_FOUND;
    return join(this.directory, id);
  }

  /**
   * The descriptor `create()` opened, kept for the `write()` of the same request (creation-with-upload: the body
   * follows at once), which saves a second open of a file just made; closed on the next turn if no write takes it.
   */
  private readonly justCreated = new Map<string, number>();

  override async create(file: Upload): Promise<Upload> {
    const path = this.pathOf(file.id);
    const fd = openSync(path, 'w');
    const prev = this.justCreated.get(file.id);
    if (prev !== undefined) closeSync(prev);
    this.justCreated.set(file.id, fd);
    setImmediate(() => {
      if (this.justCreated.get(file.id) !== fd) return;
      this.justCreated.delete(file.id);
      closeSync(fd);
    });
    this.onCreate?.(file.id);
    await this.configstore.set(file.id, file);
    file.storage = { type: 'file', path };
    return file;
  }

  override async getUpload(id: string): Promise<Upload> {
    const info = this.infos.getSync(id);
    if (!info) throw ERRORS.FILE_NOT_FOUND;
    const path = this.pathOf(id);
    let size: number;
    try {
      const st = statSync(path);
      if (st.isDirectory()) throw ERRORS.FILE_NOT_FOUND;
      size = st.size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw ERRORS.FILE_NO_LONGER_EXISTS;
      throw e;
    }
    return new Upload({ id, size: info.size, offset: size, metadata: info.metadata, creation_date: info.creation_date, storage: { type: 'file', path } });
  }

  /**
   * Streams `readable` into the upload's file from `offset`; resolves with the new offset. Small uploads (up to
   * ARRIVAL_HASH_MAX bytes) are hashed on the way; bigger ones are hashed from disk by the hash worker once they are
   * complete (FileEvidenceStore.hash), which keeps that work off the event loop. The body
   * arrives in socket-sized pieces (64 KiB); they are written in batches of up to WRITE_BATCH bytes (one system call
   * and one thread-pool round trip each, instead of one per piece). Pieces are taken with 'data' events rather than
   * `for await`, which costs a promise and a microtask per piece on the server's busiest thread. While a batch is
   * being written and the next one is full, the body is paused (back-pressure reaches the client's socket).
   * A body that breaks off keeps what arrived (written, then FILE_WRITE_ERROR: the client resumes from there); a
   * failed disk write stops reading the body.
   */
  override write(readable: Readable, id: string, offset: number): Promise<number> {
    let path: string;
    try { path = this.pathOf(id); } catch (e) { return Promise.reject(e); }
    const declared = this.infos.sizeOf(id);
    const hash = declared === undefined || declared <= ARRIVAL_HASH_MAX ? this.hasher.begin(id, offset) : null;
    let fd: number;
    const made = this.justCreated.get(id);
    if (made !== undefined && offset === 0) { this.justCreated.delete(id); fd = made; }
    else try { fd = openSync(path, 'r+'); } catch { return Promise.reject(ERRORS.FILE_WRITE_ERROR); }
    return new Promise<number>((resolve, reject) => {
      let pos = offset;
      let batch: Buffer[] = [];
      let batchBytes = 0;
      let writing = false;
      let ended = false;
      let failed = false;
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        readable.off('data', onData);
        stopWatching();
        try { closeSync(fd); } catch { failed = true; }
        if (failed) { reject(ERRORS.FILE_WRITE_ERROR); return; } // the running hash is dropped: a finished upload is then read back
        if (hash) this.hasher.end(id, hash, pos);
        resolve(pos);
      };
      const pump = () => {
        if (writing || settled) return;
        if (batchBytes === 0 || (!ended && batchBytes < WRITE_BATCH)) {
          if (ended && batchBytes === 0) done();
          return;
        }
        const bufs = batch;
        const n = batchBytes;
        batch = [];
        batchBytes = 0;
        writing = true;
        writevAll(fd, bufs, n, pos).then(() => {
          pos += n;
          writing = false;
          if (!ended && readable.isPaused()) readable.resume();
          pump();
        }, () => {
          writing = false;
          failed = true;
          ended = true;
          batch = [];
          batchBytes = 0;
          readable.destroy();
          done();
        });
      };
      const onData = (b: Buffer) => {
        hash?.update(b);
        batch.push(b);
        batchBytes += b.length;
        if (batchBytes >= WRITE_BATCH) {
          if (writing) readable.pause();
          else pump();
        }
      };
      readable.on('data', onData);
      if (readable.isPaused()) readable.resume(); // paused by someone before: 'data' alone would not start it
      const stopWatching = finished(readable, (err) => {
        if (err) failed = true; // the request broke off: keep what arrived (the upload resumes from there)
        ended = true;
        pump();
      });
    });
  }
}

const WRITE_BATCH = 256 * 1024;

/**
 * Uploads up to this size are hashed as they arrive, on the event loop. Measured here: a round trip to the hash
 * worker costs the event loop 16–20 µs (43–80 µs of wall time), about what hashing 25 KiB costs; 64 KiB takes 43 µs.
 * The limit is above that break-even so that the completion's small files (manifest, signature, key, a short event
 * log) finish without waiting behind the worker's queue of segments.
 */
export const ARRIVAL_HASH_MAX = 64 * 1024;

function writevAll(fd: number, bufs: Buffer[], total: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    writev(fd, bufs, position, (err, written) => {
      if (err) { reject(err); return; }
      if (written === total) { resolve(); return; }
      // Short write (rare): send the rest.
      const rest = Buffer.concat(bufs).subarray(written);
      writevAll(fd, [rest], rest.length, position + written).then(resolve, reject);
    });
  });
}

export class FileEvidenceStore implements EvidenceStore {
  readonly kind = 'file' as const;
  readonly datastore: LeanFileStore;
  readonly dir: string;
  readonly quarantineDir: string;
  readonly linksInPlace = true;
  readonly flushDirs: string[];
  private readonly infos: DbConfigstore;
  readonly hashWorker = new HashWorker();

  constructor(dataDir: string, db: ServerDb) {
    this.dir = join(dataDir, 'uploads');
    this.quarantineDir = join(dataDir, 'quarantine', 'uploads');
    mkdirSync(this.dir, { recursive: true });
    this.flushDirs = [this.dir];
    this.infos = new DbConfigstore(db, this.dir);
    this.datastore = new LeanFileStore(this.dir, this.infos);
    this.datastore.onCreate = (id) => this.unsynced(id);
  }

  takeReceivedHash(id: string, size: number): string | null {
    return this.datastore.hasher.take(id, size);
  }

  localPath(id: string): string {
    if (!/^[0-9a-f]{40}$/.test(id)) throw new KuzetError('BAD_UPLOAD_ID', `"${id}" is not an upload id`);
    return join(this.dir, id);
  }

  /** A direct stat (no thread-pool trip): the upload's finalize asks it before every hash. */
  async size(id: string): Promise<number | null> {
    try { return statSync(this.localPath(id)).size; } catch { return null; }
  }

  async exists(id: string): Promise<boolean> {
    return this.infos.getSync(id) !== undefined && existsSync(this.localPath(id));
  }

  /**
   * SHA-256 and size of the stored file (to its end), made by the hash worker; rejects with `code` ENOENT when the
   * file does not exist.
   */
  hash(id: string): Promise<{ sha256: string; size: number }> {
    return this.hashWorker.hash(this.localPath(id));
  }

  async close(): Promise<void> {
    await this.hashWorker.close();
  }

  /** Uploads flushed to disk since this process started (or being flushed now). */
  private readonly synced = new Map<string, Promise<void>>();
  private readonly syncQueue: string[] = [];
  private syncing = false;

  sync(id: string): Promise<void> {
    let p = this.synced.get(id);
    if (!p) {
      p = this.fsync(id);
      this.synced.set(id, p);
      p.catch(() => this.synced.delete(id));
    }
    return p;
  }

  syncSoon(id: string): void {
    if (this.synced.has(id)) return;
    this.syncQueue.push(id);
    if (this.syncing) return;
    this.syncing = true;
    void (async () => {
      while (this.syncQueue.length > 0) {
        const next = this.syncQueue.shift()!;
        await this.sync(next).catch(() => undefined); // retried by the sync() before the receipt
      }
      this.syncing = false;
    })();
  }

  private async fsync(id: string): Promise<void> {
    const fh = await open(this.localPath(id), 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  }

  /** Forgets what was flushed (the bytes under `id` changed: moved to quarantine, or a new upload). */
  private unsynced(id: string): void {
    this.synced.delete(id);
  }

  async read(id: string, range?: { start: number; end: number }): Promise<Readable> {
    return createReadStream(this.localPath(id), range ? { start: range.start, end: range.end } : {});
  }

  /**
   * A hard link (across filesystems, a copy), made with direct calls: a few metadata calls that, through the thread
   * pool, queued behind every upload's disk writes on a busy server.
   */
  async materialize(id: string, dest: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(this.localPath(id), dest);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (attempt < 2 && code === 'ENOENT' && existsSync(this.localPath(id))) { mkdirSync(dirname(dest), { recursive: true }); continue; }
        if (attempt < 2 && code === 'EEXIST') { unlinkSync(dest); continue; }
        if (!['EXDEV', 'EPERM', 'EMLINK'].includes(code)) throw e;
        mkdirSync(dirname(dest), { recursive: true });
        copyFileSync(this.localPath(id), dest);
        return;
      }
    }
  }

  async quarantine(id: string, name: string): Promise<string> {
    mkdirSync(this.quarantineDir, { recursive: true });
    const dest = join(this.quarantineDir, name);
    await rename(this.localPath(id), dest);
    this.unsynced(id);
    // The upload record goes with the bytes (for the record), and the id is free for the file to be sent again.
    const info = this.infos.getSync(id);
    if (info) await writeFile(dest + '.json', JSON.stringify(info));
    await this.infos.delete(id);
    return dest;
  }
}

type S3Cfg = Extract<ServerConfig['store'], { kind: 's3' }>;

/** Minimal view of the AWS SDK v3 S3 client calls used here. */
interface S3Like {
  getObject(a: { Bucket: string; Key: string; Range?: string }): Promise<{ Body?: unknown; ContentLength?: number }>;
  headObject(a: { Bucket: string; Key: string }): Promise<{ ContentLength?: number }>;
  copyObject(a: { Bucket: string; Key: string; CopySource: string }): Promise<unknown>;
  deleteObject(a: { Bucket: string; Key: string }): Promise<unknown>;
}

export class S3EvidenceStore implements EvidenceStore {
  readonly kind = 's3' as const;
  readonly datastore: DataStore;
  readonly bucket: string;
  readonly linksInPlace = false;
  readonly flushDirs: string[] = [];
  private readonly client: S3Like;
  private readonly quarantineLog: string;
  private readonly hasher = new ReceiveHasher();

  constructor(dataDir: string, cfg: S3Cfg) {
    // Loaded lazily so a filesystem-only server never loads the AWS SDK.
    const { S3Store } = requireS3Store();
    const credentials = cfg.accessKeyId && cfg.secretAccessKey ? { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } : undefined;
    const store = new S3Store({
      partSize: cfg.partSize,
      s3ClientConfig: {
        bucket: cfg.bucket, region: cfg.region, forcePathStyle: cfg.forcePathStyle,
        requestChecksumCalculation: cfg.checksums === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
        responseChecksumValidation: cfg.checksums === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
        ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
        ...(credentials ? { credentials } : {}),
      },
    });
    this.datastore = store;
    this.hasher.wrap(store);
    this.bucket = cfg.bucket;
    this.client = (store as unknown as { client: S3Like }).client;
    this.quarantineLog = join(dataDir, 'quarantine', 's3-moves.ndjson');
  }

  localPath(): null {
    return null;
  }

  takeReceivedHash(id: string, size: number): string | null {
    return this.hasher.take(id, size);
  }

  async size(id: string): Promise<number | null> {
    try { return (await this.client.headObject({ Bucket: this.bucket, Key: id })).ContentLength ?? null; } catch { return null; }
  }

  async exists(id: string): Promise<boolean> {
    try { await this.client.headObject({ Bucket: this.bucket, Key: `${id}.info` }); return true; } catch { return false; }
  }

  async hash(id: string): Promise<{ sha256: string; size: number }> {
    return hashStream(await this.read(id));
  }

  async close(): Promise<void> {
    // Uploads are hashed as they arrive (ReceiveHasher): no worker to stop.
  }

  async sync(): Promise<void> {
    // A completed S3 multipart upload is durable once CompleteMultipartUpload returned.
  }

  syncSoon(): void {
    // Nothing to flush: see sync().
  }

  async read(id: string, range?: { start: number; end: number }): Promise<Readable> {
    const r = await this.client.getObject({ Bucket: this.bucket, Key: id, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) });
    const body = r.Body;
    if (body instanceof Readable) return body;
    if (body && typeof (body as { transformToWebStream?: unknown }).transformToWebStream === 'function') {
      return Readable.fromWeb((body as { transformToWebStream(): import('node:stream/web').ReadableStream }).transformToWebStream());
    }
    throw new KuzetError('S3_READ', `S3 returned no body for ${id}`);
  }

  async materialize(id: string, dest: string): Promise<void> {
    await mkdir(dirname(dest), { recursive: true });
    await pipeline(await this.read(id), createWriteStream(dest));
  }

  async quarantine(id: string, name: string): Promise<string> {
    const key = `quarantine/${name}`;
    await this.client.copyObject({ Bucket: this.bucket, Key: key, CopySource: `${this.bucket}/${id}` });
    await this.client.copyObject({ Bucket: this.bucket, Key: `${key}.info`, CopySource: `${this.bucket}/${id}.info` }).catch(() => undefined);
    // The copy is verified to exist before the original key is freed for a new upload.
    await this.client.headObject({ Bucket: this.bucket, Key: key });
    await this.client.deleteObject({ Bucket: this.bucket, Key: id });
    await this.client.deleteObject({ Bucket: this.bucket, Key: `${id}.info` });
    mkdirSync(dirname(this.quarantineLog), { recursive: true });
    await writeFile(this.quarantineLog, JSON.stringify({ at: Date.now(), from: id, to: key }) + '\n', { flag: 'a' });
    return `s3://${this.bucket}/${key}`;
  }
}

function requireS3Store(): typeof import('@tus/s3-store') {
  const m = s3Module;
  if (!m) throw new KuzetError('S3_UNAVAILABLE', 'The S3 store is not loaded: call loadS3Support() first (startServer does).');
  return m;
}

let s3Module: typeof import('@tus/s3-store') | undefined;

/** Loads @tus/s3-store (and the AWS SDK) on demand. */
export async function loadS3Support(): Promise<void> {
  s3Module ??= await import('@tus/s3-store');
}

export function removeDirQuietly(dir: string): void {
  try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
}
