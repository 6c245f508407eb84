/**
 * End of the exam (or `kuzet upload`): deliver whatever of a sealed bundle the server does not hold yet (the
 * live uploader already sent the closed segments), ask the server to verify it, check the signed receipt against
 * the server key pinned at enrolment, store the receipt, and only then apply the retention policy.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, appendFileSync, writeFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { sha256Hex } from '../core/canonical.js';
import type { MachineConfig } from '../core/config.js';
import { KuzetError } from '../core/errors.js';
import { ensureHome, type HomeLayout } from '../core/home.js';
import { loadKeyPair } from '../core/keys.js';
import { writeFileDurable } from '../evidence/seal.js';
import { MANIFEST_FILE, PUBLIC_KEY_FILE, SIGNATURE_FILE, type Manifest } from '../evidence/format.js';
import { hashFile } from '../evidence/hash.js';
import { INLINE_FILE_MAX, INLINE_TOTAL_MAX, checkReceipt, checkBundlePath, type InlineFile, type Receipt, type ReceiptFile, type ReceiptPayload } from '../server/protocol.js';
import { ServerClient, ServerRefusal, isTransient, loadEnrolment, normalizeServerUrl, type Enrolment } from './client.js';
import { UploadQueue, type UploadProgress } from './spool.js';

export interface UploadBundleOptions {
  home?: HomeLayout;
  /** The machine config's upload section (chunk size, concurrency, retention …). */
  upload?: Partial<MachineConfig['upload']>;
  onProgress?: (p: UploadProgress) => void;
  onRetry?: (what: string, delayMs: number) => void;
  /** Problems worth telling the user that do not stop the upload (a file that differs from the manifest …). */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  /** Use this queue (the live uploader's) instead of a private one. */
  queue?: UploadQueue;
}

export interface UploadResult {
  sessionId: string;
  receiptPath: string;
  receipt: Receipt;
  payload: ReceiptPayload;
  /** Bundles the retention policy removed after this receipt (paths). */
  deleted: string[];
}

export function receiptsDir(home: HomeLayout): string {
  return join(home.root, 'receipts');
}

export function receiptPathFor(home: HomeLayout, sessionId: string): string {
  return join(receiptsDir(home), `${sessionId}.receipt.json`);
}

/**
 * The files of a sealed bundle: the manifest's list plus manifest.json, manifest.sig.json and device.pub; the bytes
 * of those last three as they were read and hashed here (`selfBytes`; a key or signature over 1 MiB is left out).
 */
export async function bundleFiles(dir: string): Promise<{ manifest: Manifest; manifestSha256: string; files: ReceiptFile[]; selfBytes: Map<string, Buffer> }> {
  const mPath = join(dir, MANIFEST_FILE);
  if (!existsSync(join(dir, SIGNATURE_FILE)) || !existsSync(mPath)) {
    throw new KuzetError('NOT_SEALED', `${dir} is not a sealed bundle (${MANIFEST_FILE} or ${SIGNATURE_FILE} missing). Seal it first with \`kuzet recover\`.`);
  }
  const bytes = readFileSync(mPath);
  let manifest: Manifest;
  try { manifest = JSON.parse(bytes.toString('utf8')) as Manifest; } catch (e) { throw new KuzetError('BAD_MANIFEST', `${mPath} is not valid JSON: ${(e as Error).message}`); }
  if (!manifest?.session?.id || !Array.isArray(manifest.files)) throw new KuzetError('BAD_MANIFEST', `${mPath} has no session id or file list.`);
  const files: ReceiptFile[] = [];
  for (const f of manifest.files) {
    const bad = checkBundlePath(f?.path);
    if (bad) throw new KuzetError('BAD_MANIFEST', `${mPath}: ${bad}`);
    files.push({ path: f.path, sha256: f.sha256, size: f.size });
  }
  const manifestSha256 = sha256Hex(bytes);
  files.push({ path: MANIFEST_FILE, sha256: manifestSha256, size: bytes.length });
  const selfBytes = new Map<string, Buffer>([[MANIFEST_FILE, bytes]]);
  for (const self of [SIGNATURE_FILE, PUBLIC_KEY_FILE]) {
    const h = await hashLocal(join(dir, self), true);
    if (!h) continue;
    files.push({ path: self, sha256: h.sha256, size: h.size });
    if (h.bytes) selfBytes.set(self, h.bytes);
  }
  return { manifest, manifestSha256, files, selfBytes };
}

/** Files up to this size are hashed with one direct read (no stream, no 1 MiB stream buffer, no thread pool). */
const SMALL_FILE = 1 << 20;
let smallBuf: Buffer | null = null;

/** SHA-256 and size of a local file, or null when it does not exist. With `keep`, a small file's bytes come too. */
async function hashLocal(path: string, keep = false): Promise<{ sha256: string; size: number; bytes?: Buffer } | null> {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const size = fstatSync(fd).size;
    if (size > SMALL_FILE) return await hashFile(path);
    smallBuf ??= Buffer.allocUnsafeSlow(SMALL_FILE + 1);
    let got = 0;
    for (;;) {
      const n = readSync(fd, smallBuf, got, smallBuf.length - got, got);
      if (n === 0) break;
      got += n;
      if (got > SMALL_FILE) { return await hashFile(path); } // it grew while being read: hash it as a stream
    }
    const data = smallBuf.subarray(0, got);
    return { sha256: createHash('sha256').update(data).digest('hex'), size: got, ...(keep ? { bytes: Buffer.from(data) } : {}) };
  } finally {
    closeSync(fd);
  }
}

/** Uploads a sealed bundle and returns only with a receipt that verifies against the enrolled server key. */
export async function uploadBundle(dir: string, serverUrl: string, opts: UploadBundleOptions = {}): Promise<UploadResult> {
  const home = opts.home ?? ensureHome();
  const server = normalizeServerUrl(serverUrl);
  const enr = loadEnrolment(home, server);
  const key = loadKeyPair(home.keys);
  if (key.keyid !== enr.keyid) {
    throw new KuzetError('KEY_CHANGED', `The device key (${key.keyid.slice(0, 16)}…) is not the key enrolled with ${server} (${enr.keyid.slice(0, 16)}…); enrol again.`);
  }
  const absDir = resolve(dir);
  const { manifest, manifestSha256, files, selfBytes } = await bundleFiles(absDir);
  const sid = manifest.session.id;
  const cfg = opts.upload ?? {};
  const queue = opts.queue ?? new UploadQueue({
    home, client: new ServerClient(server, key, { stallMs: cfg.stallMs }),
    concurrency: cfg.concurrency, chunkBytes: cfg.chunkBytes, retryMinMs: cfg.retryMinMs, retryMaxMs: cfg.retryMaxMs,
  });
  // Progress counts the files sent inline with the completion too (done once the server answered).
  const inline: (InlineFile & { file: string })[] = [];
  let inlineBytes = 0;
  let inlineDone = false;
  const withInline = (p: UploadProgress): UploadProgress => ({
    ...p, bytesTotal: p.bytesTotal + inlineBytes, filesTotal: p.filesTotal + inline.length,
    ...(inlineDone ? { bytesDone: p.bytesDone + inlineBytes, filesDone: p.filesDone + inline.length } : {}),
  });
  const onProgress = (p: UploadProgress) => opts.onProgress?.(withInline({ ...queue.progress(sid), retrying: p.retrying }));
  const onRetry = (item: { path: string }, why: string, delay: number) => opts.onRetry?.(`${item.path}: ${why}`, delay);
  queue.on('progress', onProgress);
  queue.on('retry', onRetry);
  const own = !opts.queue;
  try {
    queue.resume(sid);
    // Files the server already confirmed (live upload) are not read again. Every other file is hashed now and sent
    // as it is: a file that no longer matches the manifest still goes to the server, which quarantines the bundle
    // with the reason, so nothing is silently dropped on either side.
    const known = queue.items(sid);
    const confirmed = new Set(known.filter((i) => i.state === 'stored').map((i) => `${i.path}\0${i.sha256}\0${i.size}`));
    const queued = new Set(known.filter((i) => i.state !== 'stored').map((i) => i.path));
    // Small files the server does not hold yet (the log, session.json, manifest, signature, key) travel inside the
    // completion request (protocol.ts: INLINE_FILE_MAX): one request at the end instead of one upload each first.
    for (const f of files) {
      const local = join(absDir, f.path);
      if (confirmed.has(`${f.path}\0${f.sha256}\0${f.size}`)) { queue.enqueue({ session: sid, path: f.path, file: local, sha256: f.sha256, size: f.size }); continue; }
      // Hashed as read now (the manifest, signature and key: as bundleFiles read them): what is sent is what was hashed.
      const small = f.size <= INLINE_FILE_MAX && !queued.has(f.path);
      const self = selfBytes.get(f.path);
      const h = self ? { sha256: f.sha256, size: f.size, ...(small ? { bytes: self } : {}) } : await hashLocal(local, small);
      if (!h) { opts.onWarning?.(`${f.path} is listed in the manifest but missing locally; the server will record it as missing`); continue; }
      if (h.sha256 !== f.sha256 || h.size !== f.size) opts.onWarning?.(`${f.path} differs from the manifest; it is uploaded as it is and the server will quarantine the bundle`);
      if (h.bytes && h.size <= INLINE_FILE_MAX && inlineBytes + h.size <= INLINE_TOTAL_MAX) {
        inline.push({ path: f.path, sha256: h.sha256, size: h.size, data: h.bytes.toString('base64'), file: local });
        inlineBytes += h.size;
        continue;
      }
      queue.enqueue({ session: sid, path: f.path, file: local, sha256: h.sha256, size: h.size });
    }
    queue.start();
    await queue.drain(sid, opts.signal);
    opts.onProgress?.(withInline(queue.progress(sid)));
    const client = queue.client;
    const completeWithRetry = async (withFiles: InlineFile[]) => {
      for (let attempt = 0; ; attempt++) {
        try { return await client.complete(sid, opts.signal, withFiles); } catch (e) {
          // Nothing received although files came along: a server that does not take inline files (see below).
          if (withFiles.length && e instanceof ServerRefusal && e.code === 'SESSION_UNKNOWN') return null;
          if (withFiles.length && e instanceof ServerRefusal && !e.transient) {
            // Refused while it stored the inline files: the same error an upload of them would have given.
            throw new KuzetError('UPLOAD_REJECTED', e.message, { code: e.code, status: e.status });
          }
          if (!isTransient(e) || opts.signal?.aborted) throw e;
          const delay = Math.min(cfg.retryMaxMs ?? 30000, (cfg.retryMinMs ?? 500) * 2 ** Math.min(attempt, 10));
          opts.onRetry?.(`completion: ${(e as Error).message}`, delay);
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    };
    let res = await completeWithRetry(inline.map(({ file: _f, ...rest }) => rest));
    if (inline.length && (res === null || res.inline === undefined)) {
      // A server that does not take inline files: upload them, then ask again.
      for (const f of inline.splice(0)) queue.enqueue({ session: sid, path: f.path, file: f.file, sha256: f.sha256, size: f.size });
      inlineBytes = 0;
      await queue.drain(sid, opts.signal);
      res = await completeWithRetry([]);
    }
    if (!res) throw new KuzetError('SESSION_UNKNOWN', `The server has received nothing for session ${sid}.`);
    inlineDone = true;
    opts.onProgress?.(withInline(queue.progress(sid)));
    if (res.status !== 'verified') {
      throw new KuzetError('QUARANTINED', `The server refused to receipt session ${sid}; it keeps the upload quarantined:\n  - ${res.reasons.join('\n  - ')}`, { reasons: res.reasons });
    }
    const chk = checkReceipt(res.receipt, enr.serverKeyPem, { sessionId: sid, manifestSha256, files });
    if (!chk.ok) throw new KuzetError('BAD_RECEIPT', `The server's receipt for ${sid} is not valid (${chk.reason}); local evidence is kept.`);
    mkdirSync(receiptsDir(home), { recursive: true });
    const receiptPath = receiptPathFor(home, sid);
    await Promise.all([
      writeDurable(receiptPath, JSON.stringify(res.receipt, null, 2) + '\n'),
      writeDurable(join(receiptsDir(home), `${sid}.local.json`), JSON.stringify({ bundleDir: absDir, server, receivedAt: Date.now() }, null, 2) + '\n'),
    ]);
    await queue.forgetSession(sid);
    let deleted: string[] = [];
    try {
      deleted = await applyRetention(home, enr, cfg.keepDaysAfterReceipt ?? 7);
    } catch (e) {
      opts.onWarning?.(`retention: ${(e as Error).message} (nothing more was deleted)`);
    }
    return { sessionId: sid, receiptPath, receipt: res.receipt, payload: chk.payload, deleted };
  } finally {
    queue.off('progress', onProgress);
    queue.off('retry', onRetry);
    if (own) await queue.stop();
  }
}

/**
 * `writeFileDurable` without blocking the event loop on the disk flush (other uploads go on meanwhile): the small
 * write, close and rename are direct calls; only the flush runs in the thread pool (one trip instead of seven).
 */
async function writeDurable(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeFileSync(fd, data);
    await new Promise<void>((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function inside(child: string, parent: string): boolean {
  const c = resolve(child);
  const p = resolve(parent);
  return c.startsWith(p + sep);
}

/**
 * Deletes local bundles whose receipt (a) verifies against the enrolled server key, (b) is older than
 * `keepDays` (0 = at once; -1 = never), and (c) matches every local file byte for byte (re-hashed now).
 * Only folders inside KUZET_HOME are ever deleted; a bundle with files the receipt does not list is kept.
 */
const retentionRuns = new Map<string, Promise<string[]>>();

export async function applyRetention(home: HomeLayout, enr: Enrolment, keepDays: number, now = Date.now()): Promise<string[]> {
  if (keepDays < 0) return [];
  // One sweep at a time per home: two uploads finishing together must not delete under each other's feet.
  const key = resolve(home.root);
  const prev = retentionRuns.get(key) ?? Promise.resolve([]);
  const run = prev.catch(() => []).then(() => sweep(home, enr, keepDays, now));
  retentionRuns.set(key, run);
  try { return await run; } finally { if (retentionRuns.get(key) === run) retentionRuns.delete(key); }
}

async function sweep(home: HomeLayout, enr: Enrolment, keepDays: number, now: number): Promise<string[]> {
  const dir = receiptsDir(home);
  if (!existsSync(dir)) return [];
  const deleted: string[] = [];
  const logLine = (o: unknown) => appendFileSync(join(dir, 'retention.log'), JSON.stringify({ at: now, ...(o as object) }) + '\n');
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.receipt.json')) continue;
    const sid = f.slice(0, -'.receipt.json'.length);
    const localFile = join(dir, `${sid}.local.json`);
    if (!existsSync(localFile)) continue;
    let local: { bundleDir: string; deletedAt?: number };
    let receipt: unknown;
    try {
      local = JSON.parse(readFileSync(localFile, 'utf8')) as { bundleDir: string; deletedAt?: number };
      receipt = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    } catch { continue; }
    if (local.deletedAt || !existsSync(local.bundleDir)) continue;
    if (!inside(local.bundleDir, home.root)) continue;
    const chk = checkReceipt(receipt, enr.serverKeyPem, { sessionId: sid });
    if (!chk.ok) { logLine({ session: sid, kept: `receipt does not verify: ${chk.reason}` }); continue; }
    if (chk.payload.verifiedAt + keepDays * 86400_000 > now) continue;
    const listed = new Map(chk.payload.files.map((x) => [x.path, x]));
    const { listFiles } = await import('../evidence/hash.js');
    const { files: onDisk, links } = await listFiles(local.bundleDir);
    let why: string | null = links.length ? `symbolic links present (${links[0]})` : null;
    for (const rel of onDisk) {
      if (why) break;
      const want = listed.get(rel);
      if (!want) { why = `${rel} is not covered by the receipt`; break; }
      const got = await hashFile(join(local.bundleDir, rel));
      if (got.sha256 !== want.sha256 || got.size !== want.size) why = `${rel} differs from what the server receipted`;
    }
    if (!why && onDisk.length !== listed.size) why = `the receipt lists ${listed.size} files, ${onDisk.length} are on disk`;
    if (why) { logLine({ session: sid, kept: why }); continue; }
    rmSync(local.bundleDir, { recursive: true, force: true });
    writeFileDurable(localFile, JSON.stringify({ ...local, deletedAt: now }, null, 2) + '\n');
    logLine({ session: sid, deleted: local.bundleDir, receipt: join(dir, f) });
    deleted.push(local.bundleDir);
  }
  return deleted;
}
