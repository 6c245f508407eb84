/**
 * Where upload bytes live. The tus DataStore receives them; this wrapper adds what the evidence server needs on
 * top: hash a finished upload, fsync it, read ranges for review, lay out a bundle folder for verification, and
 * move a bad upload aside (kept, never deleted).
 *
 * - `file` (default): @tus/file-store under `<data>/uploads`; bundles are laid out with hard links (no copy).
 * - `s3`: @tus/s3-store in an S3-compatible bucket; verification downloads the bundle to a temporary folder.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, rmSync } from 'node:fs';
import { copyFile, link, mkdir, open, rename, unlink, writeFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { FileStore } from '@tus/file-store';
import type { DataStore } from '@tus/utils';
import type { ServerConfig } from '../core/config.js';
import { KuzetError } from '../core/errors.js';

export interface EvidenceStore {
  readonly kind: 'file' | 's3';
  readonly datastore: DataStore;
  /** True when the store keeps each upload as a local file (fast paths: links, sendfile-style reads). */
  localPath(uploadId: string): string | null;
  size(uploadId: string): Promise<number | null>;
  hash(uploadId: string): Promise<{ sha256: string; size: number }>;
  /** Makes a finished upload durable (fsync) before the server signs a receipt for it. */
  sync(uploadId: string): Promise<void>;
  read(uploadId: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Places the upload at `dest` (a link where possible). */
  materialize(uploadId: string, dest: string): Promise<void>;
  /** Moves a bad upload to the quarantine area (so the same id can be uploaded again); returns where it is kept. */
  quarantine(uploadId: string, name: string): Promise<string>;
  /** Whether tus knows this upload (its info record exists). */
  exists(uploadId: string): Promise<boolean>;
  /** Whether materialize() makes a cheap link that lives in the data dir (else it downloads a temporary copy). */
  readonly linksInPlace: boolean;
}

export function openStore(dataDir: string, cfg: ServerConfig['store']): EvidenceStore {
  if (cfg.kind === 's3') return new S3EvidenceStore(dataDir, cfg);
  return new FileEvidenceStore(dataDir);
}

async function hashStream(s: Readable): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of s) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

export class FileEvidenceStore implements EvidenceStore {
  readonly kind = 'file' as const;
  readonly datastore: FileStore;
  readonly dir: string;
  readonly quarantineDir: string;
  readonly linksInPlace = true;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'uploads');
    this.quarantineDir = join(dataDir, 'quarantine', 'uploads');
    mkdirSync(this.dir, { recursive: true });
    this.datastore = new FileStore({ directory: this.dir });
  }

  localPath(id: string): string {
    if (!/^[0-9a-f]{40}$/.test(id)) throw new KuzetError('BAD_UPLOAD_ID', `"${id}" is not an upload id`);
    return join(this.dir, id);
  }

  async size(id: string): Promise<number | null> {
    try { return (await stat(this.localPath(id))).size; } catch { return null; }
  }

  async exists(id: string): Promise<boolean> {
    return existsSync(this.localPath(id) + '.json');
  }

  hash(id: string): Promise<{ sha256: string; size: number }> {
    return hashStream(createReadStream(this.localPath(id), { highWaterMark: 1 << 20 }));
  }

  async sync(id: string): Promise<void> {
    const fh = await open(this.localPath(id), 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  }

  async read(id: string, range?: { start: number; end: number }): Promise<Readable> {
    return createReadStream(this.localPath(id), range ? { start: range.start, end: range.end } : {});
  }

  async materialize(id: string, dest: string): Promise<void> {
    await mkdir(dirname(dest), { recursive: true });
    try { await unlink(dest); } catch { /* absent */ }
    try {
      await link(this.localPath(id), dest);
    } catch (e) {
      if (!['EXDEV', 'EPERM', 'EMLINK'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
      await copyFile(this.localPath(id), dest);
    }
  }

  async quarantine(id: string, name: string): Promise<string> {
    mkdirSync(this.quarantineDir, { recursive: true });
    const dest = join(this.quarantineDir, name);
    await rename(this.localPath(id), dest);
    try { await rename(this.localPath(id) + '.json', dest + '.json'); } catch { /* info file gone already */ }
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
  private readonly client: S3Like;
  private readonly quarantineLog: string;

  constructor(dataDir: string, cfg: S3Cfg) {
    // Loaded lazily so a filesystem-only server never loads the AWS SDK.
    const { S3Store } = requireS3Store();
    const credentials = cfg.accessKeyId && cfg.secretAccessKey ? { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey } : undefined;
    const store = new S3Store({
      partSize: cfg.partSize,
      s3ClientConfig: {
        bucket: cfg.bucket, region: cfg.region, forcePathStyle: cfg.forcePathStyle,
        ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
        ...(credentials ? { credentials } : {}),
      },
    });
    this.datastore = store;
    this.bucket = cfg.bucket;
    this.client = (store as unknown as { client: S3Like }).client;
    this.quarantineLog = join(dataDir, 'quarantine', 's3-moves.ndjson');
  }

  localPath(): null {
    return null;
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

  async sync(): Promise<void> {
    // A completed S3 multipart upload is durable once CompleteMultipartUpload returned.
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
