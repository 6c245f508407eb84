/**
 * The evidence server (`kuzet serve`): tus uploads from enrolled devices, per-upload hash checks, bundle
 * verification with the evidence module's `verifyBundle`, signed receipts, a JSON API for review, an audit log.
 * Plain Node (no Electron); everything it keeps lives under one data dir.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Upload } from '@tus/utils';
import { canonicalize, sha256Hex } from '../core/canonical.js';
import { parseServerConfig, type ServerConfig } from '../core/config.js';
import { KuzetError } from '../core/errors.js';
import { loadOrCreateKeyPair, publicKeyFromPem, keyIdOf, signEnvelope, verifyEnvelope, type KeyPair } from '../core/keys.js';
import { APP_VERSION } from '../core/version.js';
import { verifyBundle } from '../evidence/verify.js';
import { MANIFEST_FILE, MANIFEST_PAYLOAD_TYPE, PUBLIC_KEY_FILE, SIGNATURE_FILE, type Manifest } from '../evidence/format.js';
import { ServerDb, type DeviceRow, type FileRow, type SessionRow } from './db.js';
import { ApiError, bearerOf, clientIp, contentTypeOf, parseRange, readJsonBody, sendJson } from './http.js';
import {
  API_PREFIX, AUTH_PAYLOAD_TYPE, COMPLETE_BODY_MAX, ENROL_PAYLOAD_TYPE, INLINE_FILE_MAX, INLINE_TOTAL_MAX, PROTOCOL_VERSION, RECEIPT_PAYLOAD_TYPE,
  TUS_PATH, checkBundlePath, isSafeSessionId, isSha256Hex, uploadIdFor, type AuthStatement, type EnrolStatement, type InlineFile, type Receipt,
  type ReceiptPayload,
} from './protocol.js';
import { DUMMY_PASSWORD_HASH, hashPassword, newSecret, secretHash, verifyPassword } from './secrets.js';
import { loadS3Support, openStore, removeDirQuietly, type EvidenceStore } from './storage.js';
import { DiskFlusher } from './durable.js';
import { TusProtocol } from './tus.js';

export interface StartServerOptions {
  dataDir: string;
  /** Raw or parsed server config; default: `<data>/server.json` if present, else defaults. */
  config?: unknown;
  port?: number;
  host?: string;
  /** Diagnostic lines (one request outcome, a verdict …). */
  onLog?: (line: string) => void;
  /**
   * How stored bytes are made durable before a receipt: `group` (default on Linux: one syncfs shared by every
   * completion waiting for it) or `per-file` (fsync each file, and the receipt and verdict, one by one).
   */
  diskFlush?: 'group' | 'per-file';
}

export interface EvidenceServer {
  url: string;
  port: number;
  dataDir: string;
  db: ServerDb;
  key: KeyPair;
  config: ServerConfig;
  store: EvidenceStore;
  /** Stops accepting, drops open connections (clients resume later), closes the index. */
  close(): Promise<void>;
}

export function serverPaths(dataDir: string) {
  return {
    db: join(dataDir, 'server.db'),
    keys: join(dataDir, 'keys'),
    bundles: join(dataDir, 'bundles'),
    receipts: join(dataDir, 'receipts'),
    verdicts: join(dataDir, 'verdicts'),
    tmp: join(dataDir, 'tmp'),
    config: join(dataDir, 'server.json'),
  };
}

export function loadServerConfig(dataDir: string, raw?: unknown): ServerConfig {
  if (raw !== undefined) return parseServerConfig(raw);
  const p = serverPaths(dataDir).config;
  if (!existsSync(p)) return parseServerConfig({});
  let parsed: unknown;
  try { parsed = JSON.parse(readFileSync(p, 'utf8')); } catch (e) { throw new KuzetError('CONFIG_INVALID', `The server config ${p} is not valid JSON: ${(e as Error).message}`); }
  return parseServerConfig(parsed, p);
}

/** Opens the data dir's index and key without starting HTTP (admin commands use this too). */
export function openDataDir(dataDir: string): { db: ServerDb; key: KeyPair } {
  mkdirSync(dataDir, { recursive: true });
  const p = serverPaths(dataDir);
  const key = loadOrCreateKeyPair(p.keys, 'server');
  return { db: new ServerDb(p.db), key };
}

interface AuthedAccount { username: string; role: 'admin' | 'proctor' }

export async function startServer(opts: StartServerOptions): Promise<EvidenceServer> {
  const config = loadServerConfig(opts.dataDir, opts.config);
  const paths = serverPaths(opts.dataDir);
  for (const d of [paths.bundles, paths.receipts, paths.verdicts, paths.tmp]) mkdirSync(d, { recursive: true });
  const { db, key } = openDataDir(opts.dataDir);
  if (config.store.kind === 's3') await loadS3Support();
  const store = openStore(opts.dataDir, config.store, db);
  // Group commit of disk flushes (one syncfs for every receipt waiting on it); probed once at start.
  const disk = new DiskFlusher([opts.dataDir, ...store.flushDirs], opts.diskFlush === 'per-file' ? false : undefined);
  void disk.flush();
  const log = opts.onLog ?? (() => undefined);
  const nowMs = () => Date.now();

  const deviceOfReq = new WeakMap<IncomingMessage, DeviceRow>();
  const challenges = new Map<string, { keyid: string; expires: number }>();
  const loginFailures = new Map<string, { n: number; until: number }>();
  const finalizing = new Map<string, Promise<FinalizeResult>>();
  const completing = new Map<string, Promise<CompleteResult>>();

  // --- authentication ------------------------------------------------------------------------------------------
  /**
   * Device tokens already checked, by token hash: an upload request then costs no index lookups for its
   * authentication. An entry is used only while the token is unexpired and nothing changed who may upload
   * (`db.authGeneration()`: a revocation here or by `kuzet admin` on the same index empties it at once).
   */
  const deviceAuthCache = new Map<string, { device: DeviceRow; expiresAt: number }>();
  let deviceAuthGen = db.authGeneration();

  function authDevice(req: IncomingMessage): DeviceRow {
    const tok = bearerOf(req);
    if (!tok) throw new ApiError(401, 'AUTH_REQUIRED', 'This request needs a device token: enrol the machine (`kuzet enroll`) and sign a challenge.');
    const h = secretHash(tok);
    const gen = db.authGeneration();
    if (gen !== deviceAuthGen) { deviceAuthCache.clear(); deviceAuthGen = gen; }
    const hit = deviceAuthCache.get(h);
    if (hit && hit.expiresAt >= nowMs()) return hit.device;
    deviceAuthCache.delete(h);
    const b = db.bearer(h);
    if (!b || b.expires_at < nowMs()) throw new ApiError(401, 'TOKEN_EXPIRED', 'The device token is unknown or expired; sign a new challenge.');
    if (b.kind !== 'device') throw new ApiError(403, 'NOT_A_DEVICE', 'Only enrolled devices can upload evidence.');
    const d = db.device(b.subject);
    if (!d) throw new ApiError(401, 'DEVICE_UNENROLLED', `Device key ${b.subject.slice(0, 16)}… is not enrolled on this server.`);
    if (d.status === 'revoked') throw new ApiError(403, 'DEVICE_REVOKED', `Device key ${d.keyid.slice(0, 16)}… (machine ${d.machine_id}) was revoked${d.revoked_reason ? `: ${d.revoked_reason}` : ''}.`);
    if (deviceAuthCache.size >= 20000) deviceAuthCache.delete(deviceAuthCache.keys().next().value!);
    deviceAuthCache.set(h, { device: d, expiresAt: b.expires_at });
    return d;
  }

  function authAccount(req: IncomingMessage, roles: ('admin' | 'proctor')[] = ['admin', 'proctor']): AuthedAccount {
    const tok = bearerOf(req);
    if (!tok) throw new ApiError(401, 'AUTH_REQUIRED', 'Log in first (POST /api/v1/login).');
    const b = db.bearer(secretHash(tok));
    if (!b || b.expires_at < nowMs()) throw new ApiError(401, 'TOKEN_EXPIRED', 'The session token is unknown or expired; log in again.');
    if (b.kind !== 'account') throw new ApiError(403, 'DEVICE_CANNOT_READ', 'Devices and students cannot read evidence.');
    const a = db.account(b.subject);
    if (!a || a.disabled) throw new ApiError(401, 'ACCOUNT_DISABLED', `Account ${b.subject} no longer exists or is disabled.`);
    if (!roles.includes(a.role)) throw new ApiError(403, 'FORBIDDEN', `This needs the ${roles.join(' or ')} role; ${a.username} is ${a.role}.`);
    return { username: a.username, role: a.role };
  }

  function audit(acct: AuthedAccount, req: IncomingMessage, action: string, sessionId: string | null, path: string | null, detail?: unknown): void {
    db.audit({ at: nowMs(), actor: acct.username, role: acct.role, action, session_id: sessionId, path, detail: detail === undefined ? null : JSON.stringify(detail), ip: clientIp(req) });
  }

  // --- per-upload finalisation ---------------------------------------------------------------------------------
  type FinalizeResult = { state: 'stored'; sha256: string } | { state: 'incomplete'; offset: number } | { state: 'mismatch'; actual: string; keptAs: string } | { state: 'absent' };

  function finalize(uploadId: string): Promise<FinalizeResult> {
    const running = finalizing.get(uploadId);
    if (running) return running;
    const p = (async (): Promise<FinalizeResult> => {
      const row = db.file(uploadId);
      if (!row) return { state: 'absent' };
      if (row.state === 'stored') return { state: 'stored', sha256: row.sha256 };
      // A small upload was hashed while it arrived: no need to read it back. A bigger one on the file store is read
      // back and hashed by the hash worker (off the event loop), once a direct stat shows all of it is there (a
      // partial file is not hashed: the client resumes it).
      const received = store.takeReceivedHash(uploadId, row.size);
      let h: { sha256: string; size: number };
      if (received) h = { sha256: received, size: row.size };
      else {
        const size = await store.size(uploadId);
        if (size === null) return { state: 'absent' };
        if (size < row.size) return { state: 'incomplete', offset: size };
        try { h = await store.hash(uploadId); } catch (e) {
          if ((e as { code?: string }).code === 'ENOENT') return { state: 'absent' }; // removed since the size was read
          throw e;
        }
        if (h.size < row.size) return { state: 'incomplete', offset: h.size };
      }
      if (h.sha256 !== row.sha256 || h.size !== row.size) {
        const name = `${uploadId}-${nowMs()}`;
        const keptAs = await store.quarantine(uploadId, name);
        db.tx(() => {
          db.addRejectedUpload({ upload_id: uploadId, session_id: row.session_id, path: row.path, declared_sha256: row.sha256, actual_sha256: h.sha256, size: h.size, kept_as: keptAs, at: nowMs() });
          db.dropFile(uploadId);
        });
        log(`upload ${row.session_id}/${row.path}: bytes do not match the declared sha256; kept as ${keptAs}`);
        return { state: 'mismatch', actual: h.sha256, keptAs };
      }
      await db.inBatch(() => db.markStored(uploadId, nowMs())); // group commit, as the row's insert
      if (disk.isAvailable) disk.flushSoon();
      else store.syncSoon(uploadId);
      return { state: 'stored', sha256: h.sha256 };
    })().finally(() => finalizing.delete(uploadId));
    finalizing.set(uploadId, p);
    return p;
  }

  // --- tus -----------------------------------------------------------------------------------------------------
  const tus = new TusProtocol({
    path: TUS_PATH,
    store: store.datastore,
    maxSize: config.limits.maxFileBytes,
    publicUrl: config.publicUrl,
    storeTakesRawRequest: store.kind === 'file',
    hooks: {
      name: (_req, m, length) => {
        const session = m.session ?? undefined;
        const path = m.path ?? undefined;
        const sha = m.sha256 ?? undefined;
        if (!isSafeSessionId(session)) throw new ApiError(400, 'BAD_SESSION_ID', `Upload-Metadata "session" ${JSON.stringify(session ?? null)} is not a valid session id.`);
        const bad = checkBundlePath(path);
        if (bad) throw new ApiError(400, 'BAD_PATH', `Rejected upload for session ${session}: ${bad}.`);
        if (!isSha256Hex(sha)) throw new ApiError(400, 'BAD_SHA256', `Upload-Metadata "sha256" for ${path} must be 64 lowercase hex digits.`);
        if (length > config.limits.maxFileBytes) {
          throw new ApiError(413, 'FILE_TOO_LARGE', `${path} is ${length} bytes; this server accepts at most ${config.limits.maxFileBytes} bytes a file (limits.maxFileBytes).`);
        }
        return uploadIdFor(session, path!, sha);
      },
      beforeCreate: async (req, upload: Upload) => {
        const device = deviceOfReq.get(req);
        if (!device) throw new ApiError(401, 'AUTH_REQUIRED', 'Device token missing.');
        const meta = upload.metadata ?? {};
        const sid = meta.session!;
        const path = meta.path!;
        const sha = meta.sha256!;
        const size = upload.size ?? 0;
        const owned = () => {
          const sess = db.session(sid);
          if (sess && sess.device_keyid !== device.keyid) {
            throw new ApiError(403, 'SESSION_OWNED', `Session ${sid} was uploaded by another device (${sess.machine_id}); a device can only upload its own sessions.`);
          }
          return sess;
        };
        owned();
        const existing = db.file(upload.id);
        if (existing) {
          if (existing.state === 'stored') throw new ApiError(409, 'ALREADY_STORED', `${path} of session ${sid} is already stored (same content); nothing to upload.`, { uploadId: upload.id, state: 'stored' });
          if (await store.exists(upload.id)) {
            throw new ApiError(409, 'UPLOAD_EXISTS', `${path} of session ${sid} is already being uploaded; resume it.`, { uploadId: upload.id, state: 'receiving', offset: await store.size(upload.id) });
          }
          db.dropFile(upload.id); // the index row outlived a failed create: start over
        }
        /** The session may take this file: ownership, not yet receipted, limits. Returns whether it exists. */
        const mayAdd = () => {
          const sess = owned();
          if (sess?.status === 'verified') {
            throw new ApiError(409, 'SESSION_VERIFIED', `Session ${sid} is already verified and receipted; its evidence cannot change (${path} with different content refused).`);
          }
          const used = db.sessionBytes(sid);
          if (used.count >= config.limits.maxFilesPerSession) {
            throw new ApiError(413, 'TOO_MANY_FILES', `Session ${sid} already has ${used.count} files; the limit is ${config.limits.maxFilesPerSession} (limits.maxFilesPerSession).`);
          }
          if (used.bytes + size > config.limits.maxSessionBytes) {
            throw new ApiError(413, 'SESSION_TOO_LARGE', `Session ${sid} would hold ${used.bytes + size} bytes; the limit is ${config.limits.maxSessionBytes} (limits.maxSessionBytes).`);
          }
          return sess !== undefined;
        };
        mayAdd();
        try {
          // Group commit: the row is committed with the other uploads created in this turn of the event loop. The
          // checks run again in the same transaction, so nothing that happened in between (another upload of the
          // session, its completion) can let this one past them.
          await db.inBatch(() => {
            if (!mayAdd()) db.createSession(sid, device.keyid, device.machine_id, device.lab, nowMs());
            db.addFile({ upload_id: upload.id, session_id: sid, path, sha256: sha, size, state: 'receiving', created_at: nowMs(), stored_at: null });
          });
        } catch (e) {
          if (e instanceof ApiError) throw e;
          throw new ApiError(409, 'UPLOAD_EXISTS', `${path} of session ${sid} is already being uploaded; resume it.`, { uploadId: upload.id, state: 'receiving' });
        }
      },
      finished: async (_req, upload: Upload) => {
        const r = await finalize(upload.id);
        if (r.state === 'stored') return { 'Kuzet-Stored-Sha256': r.sha256 };
        if (r.state === 'mismatch') {
          throw new ApiError(460, 'CHECKSUM_MISMATCH', `The received bytes hash to ${r.actual.slice(0, 16)}…, not the declared sha256; they are kept aside and the file must be uploaded again.`);
        }
        throw new ApiError(500, 'FINALIZE_FAILED', `Upload ${upload.id} could not be finalised (${r.state}).`);
      },
    },
  });

  async function tusRoute(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    if (method === 'GET') throw new ApiError(405, 'EVIDENCE_READ_DENIED', 'Uploads cannot be read back through the upload endpoint; proctors use /api/v1/sessions/<id>/files/<path>.');
    if (method === 'DELETE') throw new ApiError(403, 'EVIDENCE_DELETE_DENIED', 'Evidence cannot be deleted through the upload endpoint.');
    if (method === 'OPTIONS') { tus.options(res); return; }
    const device = authDevice(req);
    deviceOfReq.set(req, device);
    const id = url.pathname.slice(TUS_PATH.length + 1);
    if (method !== 'POST' || id) {
      const row = /^[0-9a-f]{40}$/.test(id) ? db.fileWithOwner(id) : undefined;
      if (!row || row.device_keyid !== device.keyid) {
        throw new ApiError(404, 'UPLOAD_NOT_FOUND', `No upload ${id.slice(0, 40)} for this device; create it again.`);
      }
    }
    await tus.handle(req, res, id);
  }

  // --- enrolment and device tokens -----------------------------------------------------------------------------
  async function enroll(body: unknown): Promise<unknown> {
    const b = body as { token?: unknown; envelope?: unknown };
    if (typeof b.token !== 'string' || !b.envelope) throw new ApiError(400, 'BAD_REQUEST', 'Send {token, envelope}: the one-time token and the enrolment statement signed by the device key.');
    const tok = db.enrolTokenByHash(secretHash(b.token));
    if (!tok) throw new ApiError(403, 'TOKEN_INVALID', 'This enrolment token is not known to the server (mistyped, or made on another server).');
    if (tok.used_at) throw new ApiError(403, 'TOKEN_USED', `This enrolment token was already used on ${new Date(tok.used_at).toISOString()}; ask the administrator for a new one.`);
    if (tok.expires_at < nowMs()) throw new ApiError(403, 'TOKEN_EXPIRED', `This enrolment token expired on ${new Date(tok.expires_at).toISOString()}; ask the administrator for a new one.`);
    let st: EnrolStatement;
    try {
      const env = b.envelope as { payload?: string };
      st = JSON.parse(Buffer.from(String(env.payload), 'base64').toString('utf8')) as EnrolStatement;
    } catch { throw new ApiError(400, 'BAD_STATEMENT', 'The enrolment statement is not readable.'); }
    if (st.type !== 'kuzet.enrolment' || st.tokenSha256 !== secretHash(b.token)) throw new ApiError(400, 'BAD_STATEMENT', 'The enrolment statement does not name this token.');
    let pub;
    try { pub = publicKeyFromPem(st.publicKeyPem); } catch (e) { throw new ApiError(400, 'BAD_KEY', (e as Error).message); }
    const chk = verifyEnvelope(b.envelope, ENROL_PAYLOAD_TYPE, pub);
    if (!chk.ok) throw new ApiError(400, 'BAD_SIGNATURE', `The enrolment statement is not signed by the key it presents: ${chk.reason}`);
    const keyid = keyIdOf(pub);
    const prior = db.device(keyid);
    if (prior?.status === 'revoked') throw new ApiError(403, 'DEVICE_REVOKED', `Key ${keyid.slice(0, 16)}… was revoked and cannot be enrolled again; make a new key (kuzet keygen --force).`);
    const machineId = tok.machine_id ?? (typeof st.machineId === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(st.machineId) ? st.machineId : `m-${keyid.slice(0, 12)}`);
    const now = nowMs();
    db.tx(() => {
      if (!db.useEnrolToken(tok.id, keyid, now)) throw new ApiError(403, 'TOKEN_USED', 'This enrolment token was used at the same moment by another request.');
      db.upsertDevice({ keyid, machine_id: machineId, lab: tok.lab, hostname: String(st.hostname ?? '').slice(0, 200) || null, public_key_pem: pub.export({ type: 'spki', format: 'pem' }).toString(), status: 'active', enrolled_at: now, enrol_token_id: tok.id, revoked_at: null, revoked_reason: null });
    });
    log(`enrolled ${machineId} (${tok.lab ?? 'no lab'}) key ${keyid.slice(0, 16)}…`);
    return { machineId, lab: tok.lab, keyid, server: { keyid: key.keyid, publicKeyPem: key.publicKeyPem, name: hostname() } };
  }

  function challenge(body: unknown): unknown {
    const keyid = (body as { keyid?: unknown }).keyid;
    if (typeof keyid !== 'string' || !/^[0-9a-f]{64}$/.test(keyid)) throw new ApiError(400, 'BAD_REQUEST', 'Send {keyid}: the sha256 of the device public key.');
    const now = nowMs();
    if (challenges.size > 10000) for (const [k, v] of challenges) if (v.expires < now) challenges.delete(k);
    const nonce = randomBytes(24).toString('base64url');
    challenges.set(nonce, { keyid, expires: now + 60_000 });
    return { nonce, audience: key.keyid, expiresAt: now + 60_000 };
  }

  function deviceToken(body: unknown): unknown {
    const env = (body as { envelope?: { payload?: unknown } }).envelope;
    let st: AuthStatement;
    try { st = JSON.parse(Buffer.from(String(env?.payload), 'base64').toString('utf8')) as AuthStatement; } catch { throw new ApiError(400, 'BAD_STATEMENT', 'The signed challenge is not readable.'); }
    if (st?.type !== 'kuzet.device-auth' || typeof st.keyid !== 'string') throw new ApiError(400, 'BAD_STATEMENT', 'The signed challenge is not a device-auth statement.');
    const d = db.device(st.keyid);
    if (!d) throw new ApiError(401, 'DEVICE_UNENROLLED', `Device key ${st.keyid.slice(0, 16)}… is not enrolled on this server; run \`kuzet enroll --server <url> --token <t>\` with a token from the administrator.`);
    if (d.status === 'revoked') throw new ApiError(403, 'DEVICE_REVOKED', `Device key ${d.keyid.slice(0, 16)}… (machine ${d.machine_id}) was revoked${d.revoked_reason ? `: ${d.revoked_reason}` : ''}; it cannot upload.`);
    const chk = verifyEnvelope(env, AUTH_PAYLOAD_TYPE, publicKeyFromPem(d.public_key_pem));
    if (!chk.ok) throw new ApiError(401, 'BAD_SIGNATURE', `The challenge is not signed by the enrolled key of ${d.machine_id}: ${chk.reason}`);
    const c = challenges.get(st.nonce);
    challenges.delete(st.nonce);
    if (!c || c.keyid !== st.keyid || c.expires < nowMs()) throw new ApiError(401, 'CHALLENGE_EXPIRED', 'The challenge is unknown, used or expired; ask for a new one.');
    if (st.audience !== key.keyid) throw new ApiError(401, 'WRONG_AUDIENCE', 'The challenge was signed for another server.');
    const token = newSecret('kzd');
    const expiresAt = nowMs() + config.deviceTokenMinutes * 60_000;
    db.addBearer(secretHash(token), 'device', d.keyid, nowMs(), expiresAt);
    return { token, expiresAt, machineId: d.machine_id, lab: d.lab };
  }

  // --- status and completion -----------------------------------------------------------------------------------
  function ownSession(sid: string, device: DeviceRow): SessionRow | undefined {
    if (!isSafeSessionId(sid)) throw new ApiError(400, 'BAD_SESSION_ID', `"${sid}" is not a valid session id.`);
    const s = db.session(sid);
    if (s && s.device_keyid !== device.keyid) throw new ApiError(403, 'SESSION_OWNED', `Session ${sid} belongs to another device.`);
    return s;
  }

  async function fileStatus(sid: string, device: DeviceRow, body: unknown): Promise<unknown> {
    const sess = ownSession(sid, device);
    const files = (body as { files?: unknown }).files;
    if (!Array.isArray(files) || files.length > 100000) throw new ApiError(400, 'BAD_REQUEST', 'Send {files: [{path, sha256, size}]}.');
    const out = [];
    for (const f of files as { path: string; sha256: string; size: number }[]) {
      if (checkBundlePath(f?.path) || !isSha256Hex(f?.sha256)) { out.push({ path: f?.path, sha256: f?.sha256, state: 'invalid' }); continue; }
      const id = uploadIdFor(sid, f.path, f.sha256);
      let r = db.file(id);
      if (r && r.state === 'receiving') {
        const fin = await finalize(id);
        r = db.file(id);
        if (fin.state === 'incomplete') { out.push({ path: f.path, sha256: f.sha256, state: 'receiving', offset: fin.offset, uploadId: id }); continue; }
      }
      out.push({ path: f.path, sha256: f.sha256, state: r?.state === 'stored' ? 'stored' : 'absent', uploadId: id });
    }
    return { session: sid, status: sess?.status ?? 'unknown', files: out };
  }

  /**
   * The small files a completion carries (protocol.ts, INLINE_FILE_MAX): each is stored exactly as a tus upload of
   * the same bytes would be, before the completion looks at the session. Returns how many were taken.
   */
  async function ingestInline(req: IncomingMessage, sid: string, device: DeviceRow, body: unknown): Promise<number> {
    const files = (body as { files?: unknown } | null)?.files;
    if (files === undefined) return 0;
    if (!Array.isArray(files) || files.length > 64) throw new ApiError(400, 'BAD_REQUEST', 'files must be a list of at most 64 {path, sha256, size, data} (data in base64).');
    if (!isSafeSessionId(sid)) throw new ApiError(400, 'BAD_SESSION_ID', `"${sid}" is not a valid session id.`);
    const decoded: { path: string; sha256: string; bytes: Buffer }[] = [];
    let total = 0;
    for (const f of files as Partial<InlineFile>[]) {
      const path = typeof f?.path === 'string' ? f.path : '';
      if (typeof f?.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(f.data)) throw new ApiError(400, 'BAD_INLINE_FILE', `Inline file ${JSON.stringify(path).slice(0, 120)}: data must be base64.`);
      const bytes = Buffer.from(f.data, 'base64');
      if (bytes.length !== f.size) throw new ApiError(400, 'BAD_INLINE_FILE', `Inline file ${JSON.stringify(path).slice(0, 120)}: ${bytes.length} bytes arrived, ${String(f.size)} declared.`);
      if (bytes.length > INLINE_FILE_MAX) throw new ApiError(413, 'INLINE_TOO_LARGE', `Inline file ${JSON.stringify(path).slice(0, 120)} is ${bytes.length} bytes; files over ${INLINE_FILE_MAX} bytes go through the upload endpoint.`);
      total += bytes.length;
      if (total > INLINE_TOTAL_MAX) throw new ApiError(413, 'INLINE_TOO_LARGE', `The inline files add up to more than ${INLINE_TOTAL_MAX} bytes; send the bigger ones through the upload endpoint.`);
      decoded.push({ path, sha256: String(f.sha256), bytes });
    }
    deviceOfReq.set(req, device);
    for (const f of decoded) await tus.ingest(req, { session: sid, path: f.path, sha256: f.sha256 }, f.bytes);
    return decoded.length;
  }

  type CompleteResult = { status: 'verified'; receipt: Receipt } | { status: 'quarantined'; reasons: string[]; warnings: string[] };

  async function readUpload(id: string): Promise<Buffer> {
    const local = store.localPath(id);
    if (local) return readFileSync(local); // a small file (the signature): one direct read, no stream
    const chunks: Buffer[] = [];
    for await (const c of await store.read(id)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  function complete(sid: string, device: DeviceRow): Promise<CompleteResult> {
    const running = completing.get(sid);
    if (running) return running;
    const p = completeNow(sid, device).finally(() => completing.delete(sid));
    completing.set(sid, p);
    return p;
  }

  async function completeNow(sid: string, device: DeviceRow): Promise<CompleteResult> {
    const sess = ownSession(sid, device);
    if (!sess) throw new ApiError(404, 'SESSION_UNKNOWN', `The server has received nothing for session ${sid}; upload its files first.`);
    if (sess.status === 'verified' && sess.receipt) return { status: 'verified', receipt: JSON.parse(sess.receipt) as Receipt };
    const reasons: string[] = [];
    const warnings: string[] = [];
    const t0 = performance.now();
    const took: Record<string, number> = {};
    let mark = t0;
    const lap = (what: string) => { const t = performance.now(); took[what] = Math.round(t - mark); mark = t; };
    for (const r of db.filesOf(sid)) if (r.state === 'receiving') await finalize(r.upload_id);
    const rows = db.filesOf(sid);
    const stored = rows.filter((r) => r.state === 'stored');
    const latest = (path: string) => stored.filter((r) => r.path === path).sort((a, b) => (b.stored_at ?? 0) - (a.stored_at ?? 0))[0];

    // The signed manifest, checked against the ENROLLED key of the uploading device (never the bundle's own copy).
    const sigRow = latest(SIGNATURE_FILE);
    let manifest: Manifest | undefined;
    let manifestBytes: Buffer | undefined;
    if (!sigRow) reasons.push(`${SIGNATURE_FILE} was never uploaded: the bundle is unsigned or incomplete`);
    else {
      let env: unknown;
      try { env = JSON.parse((await readUpload(sigRow.upload_id)).toString('utf8')); } catch { reasons.push(`${SIGNATURE_FILE} is not valid JSON`); }
      if (env) {
        const chk = verifyEnvelope(env, MANIFEST_PAYLOAD_TYPE, publicKeyFromPem(device.public_key_pem));
        if (!chk.ok) reasons.push(`bad signature: the manifest is not signed by the enrolled key of ${device.machine_id} (${chk.reason})`);
        else {
          manifestBytes = chk.payload;
          try { manifest = JSON.parse(chk.payload.toString('utf8')) as Manifest; } catch { reasons.push('the signed manifest is not JSON'); }
        }
      }
    }
    const chosen = new Map<string, FileRow>();
    /** Paths whose stored upload is the one the manifest (or, for the signature and key, the completion) uses. */
    const matched = new Set<string>();
    if (manifest && manifestBytes) {
      if (manifest.session?.id !== sid) reasons.push(`the manifest is for session ${String(manifest.session?.id)}, but was uploaded as ${sid}`);
      if (manifest.session?.machineId && manifest.session.machineId !== device.machine_id) {
        warnings.push(`the manifest names machine ${manifest.session.machineId}; the uploading device is enrolled as ${device.machine_id}`);
      }
      const want: { path: string; sha256: string; size: number }[] = [...(Array.isArray(manifest.files) ? manifest.files : [])];
      want.push({ path: MANIFEST_FILE, sha256: sha256Hex(manifestBytes), size: manifestBytes.length });
      const missing: string[] = [];
      const storedBy = new Map<string, FileRow>();
      for (const r of stored) if (!storedBy.has(`${r.path}\0${r.sha256}`)) storedBy.set(`${r.path}\0${r.sha256}`, r);
      const rowsByPath = new Map<string, FileRow[]>();
      for (const r of rows) { const l = rowsByPath.get(r.path); if (l) l.push(r); else rowsByPath.set(r.path, [r]); }
      for (const f of want) {
        if (!f || typeof f.path !== 'string' || checkBundlePath(f.path)) { reasons.push(`the manifest lists an unsafe file name ${JSON.stringify(String(f?.path)).slice(0, 120)} (path traversal refused)`); continue; }
        const hit = storedBy.get(`${f.path}\0${f.sha256}`);
        if (hit) { chosen.set(f.path, hit); matched.add(f.path); continue; }
        const other = rowsByPath.get(f.path) ?? [];
        if (other.some((r) => r.state === 'receiving' && r.sha256 === f.sha256)) reasons.push(`${f.path}: its upload is not finished`);
        else if (other.length > 0) {
          reasons.push(`${f.path}: the server holds different content (sha256 ${other[0]!.sha256.slice(0, 16)}…) than the manifest lists (${String(f.sha256).slice(0, 16)}…)`);
          chosen.set(f.path, other.find((r) => r.state === 'stored') ?? other[0]!);
        } else missing.push(f.path);
      }
      if (missing.length) reasons.push(`the manifest lists ${missing.length} file(s) the server never received: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`);
    }
    if (sigRow) { chosen.set(SIGNATURE_FILE, sigRow); matched.add(SIGNATURE_FILE); }
    const pubRow = latest(PUBLIC_KEY_FILE);
    if (pubRow) { chosen.set(PUBLIC_KEY_FILE, pubRow); matched.add(PUBLIC_KEY_FILE); }
    // Bytes that did not match their declared hash were kept aside when they arrived. If the file was sent again and
    // the stored copy is the one the bundle uses, that is a transfer that went wrong once: a warning, and the bad copy
    // stays where it was kept. Otherwise it is a reason to quarantine.
    if (manifest) {
      for (const r of rejectedOf(sid)) {
        const what = `an upload of ${r.path} arrived with bytes that differ from its declared hash (kept as ${r.kept_as})`;
        if (matched.has(r.path)) warnings.push(`${what}; it was sent again and the copy stored since is the one the bundle lists`);
        else reasons.push(what);
      }
    }
    const listedPaths = new Set(chosen.keys());
    const extra = [...new Set(stored.map((r) => r.path))].filter((p) => !listedPaths.has(p));
    if (extra.length && manifest) warnings.push(`${extra.length} uploaded file(s) are not in the manifest and are kept apart: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`);

    // Lay the bundle out and let the evidence module verify it (signature with the pinned key, hashes, log chain).
    let reportOk = false;
    let viewDir = join(paths.bundles, sid);
    let tempDir: string | null = null;
    if (!store.linksInPlace) { tempDir = await mkdtemp(join(paths.tmp, `${sid}-`)); viewDir = tempDir; }
    else if (existsSync(viewDir)) { await rm(viewDir, { recursive: true, force: true }); }
    // A fresh folder of hard links: a few small metadata calls, made directly (through the thread pool they queued
    // behind every upload's disk writes: 0.2 s a bundle with 100 devices uploading).
    mkdirSync(viewDir, { recursive: true });
    let records: { seq: number; wall: number; type: string; data: unknown }[] = [];
    try {
      await inParallel([...chosen].filter(([, r]) => r.state === 'stored'), 8, ([path, r]) => store.materialize(r.upload_id, join(viewDir, path)));
      lap('layout');
      if (manifest) {
        // Every stored row's sha256 was computed by this server from the bytes it stored (small files on arrival,
        // bigger ones read back by the hash worker): unless configured otherwise, verifyBundle checks sizes instead.
        const knownHashes = config.rehashOnComplete ? undefined
          : new Map([...chosen].filter(([, r]) => r.state === 'stored').map(([path, r]) => [path, { sha256: r.sha256, size: r.size }]));
        const rep = await verifyBundle(viewDir, { publicKeyPem: device.public_key_pem, knownHashes });
        lap('verify');
        reportOk = rep.ok;
        for (const pr of rep.problems) {
          const msg = `[${pr.kind}] ${pr.message}`;
          if (!reasons.some((x) => pr.path && x.startsWith(`${pr.path}:`)) && !(pr.kind === 'file' && /is missing/.test(pr.message) && reasons.some((x) => x.includes('never received')))) reasons.push(msg);
        }
        warnings.push(...rep.warnings.filter((w) => !/taken from the bundle itself/.test(w)));
        records = rep.records.map((r) => ({ seq: r.seq, wall: r.wall, type: r.type, data: r.data }));
      }
    } finally {
      if (tempDir) removeDirQuietly(tempDir);
    }
    const ok = reasons.length === 0 && reportOk && !!manifest && !!manifestBytes;
    const now = nowMs();
    db.replaceEvents(sid, records);
    const common = {
      exam_id: manifest?.session?.examId ?? null, student_id: manifest?.session?.studentId ?? null,
      started_at: manifest?.time?.start ?? null, ended_at: manifest?.time?.end ?? null, updated_at: now,
      events: records.length, episodes: records.filter((r) => r.type.startsWith('episode.')).length,
      warnings: JSON.stringify(warnings),
    };
    if (!ok) {
      if (reasons.length === 0) reasons.push('the bundle did not verify');
      db.durably(() => {
        db.updateSession(sid, { ...common, status: 'quarantined', reasons: JSON.stringify(reasons), manifest_sha256: manifestBytes ? sha256Hex(manifestBytes) : null });
        db.addVerdict(sid, now, 'quarantined', manifestBytes ? sha256Hex(manifestBytes) : null, reasons, warnings);
      });
      await writeFileDurableAsync(join(paths.verdicts, `${sid}.json`), JSON.stringify({ session: sid, status: 'quarantined', at: now, reasons, warnings }, null, 2) + '\n');
      log(`session ${sid}: QUARANTINED — ${reasons[0]}`);
      return { status: 'quarantined', reasons, warnings };
    }
    // Durable before signed: every file and the index are on disk before the receipt exists. One filesystem flush
    // shared with every other completion waiting for it; else each file (most of them were flushed in the background
    // as they arrived) several at a time.
    if (!(await disk.flush())) await inParallel([...chosen.values()], 8, (r) => store.sync(r.upload_id));
    lap('flush');
    const files = [...chosen.entries()].map(([path, r]) => ({ path, sha256: r.sha256, size: r.size })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const payload: ReceiptPayload = {
      type: 'kuzet.receipt', version: 1, sessionId: sid, machineId: device.machine_id, lab: device.lab, deviceKeyId: device.keyid,
      manifestSha256: sha256Hex(manifestBytes!), files, totalBytes: files.reduce((a, f) => a + f.size, 0), verdict: 'verified', verifiedAt: now,
      server: { keyid: key.keyid, name: hostname() },
    };
    const receipt = signEnvelope(RECEIPT_PAYLOAD_TYPE, Buffer.from(canonicalize(payload), 'utf8'), key) as Receipt;
    // The receipt file and the verdict are on disk before the device gets the receipt (grouped flush, or each alone).
    const grouped = disk.isAvailable;
    const receiptPath = join(paths.receipts, `${sid}.json`);
    await (grouped ? writeFileAtomic : writeFileDurableAsync)(receiptPath, JSON.stringify(receipt, null, 2) + '\n');
    (grouped ? db.tx.bind(db) : db.durably.bind(db))(() => {
      db.updateSession(sid, { ...common, status: 'verified', reasons: null, manifest_sha256: payload.manifestSha256, receipt: JSON.stringify(receipt), verified_at: now });
      db.addVerdict(sid, now, 'verified', payload.manifestSha256, [], warnings);
    });
    if (grouped && !(await disk.flush())) {
      const fh = await open(receiptPath, 'r');
      try { await fh.sync(); } finally { await fh.close(); }
      db.flushWal();
    }
    lap('receipt');
    log(`session ${sid}: verified, ${files.length} files, receipt signed in ${Math.round(performance.now() - t0)} ms (${Object.entries(took).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    return { status: 'verified', receipt };
  }

  function rejectedOf(sid: string): { path: string; kept_as: string }[] {
    return db.rejectedUploads(sid) as { path: string; kept_as: string }[];
  }

  // --- review API ----------------------------------------------------------------------------------------------
  function sessionSummary(s: SessionRow) {
    return {
      id: s.id, status: s.status, machineId: s.machine_id, lab: s.lab, examId: s.exam_id, studentId: s.student_id,
      startedAt: s.started_at, endedAt: s.ended_at, verifiedAt: s.verified_at, manifestSha256: s.manifest_sha256,
      events: s.events, episodes: s.episodes, reasons: s.reasons ? (JSON.parse(s.reasons) as string[]) : [],
      updatedAt: s.updated_at,
    };
  }

  function reviewSession(sid: string): SessionRow {
    if (!isSafeSessionId(sid)) throw new ApiError(400, 'BAD_SESSION_ID', `"${sid}" is not a valid session id.`);
    const s = db.session(sid);
    if (!s) throw new ApiError(404, 'SESSION_UNKNOWN', `No session ${sid} on this server.`);
    return s;
  }

  async function serveFile(req: IncomingMessage, res: ServerResponse, acct: AuthedAccount, sid: string, path: string): Promise<void> {
    const s = reviewSession(sid);
    const bad = checkBundlePath(path);
    if (bad) throw new ApiError(400, 'BAD_PATH', bad);
    const rows = db.filesOf(sid).filter((r) => r.path === path && r.state === 'stored');
    let row = rows[0];
    if (s.status === 'verified' && s.receipt) {
      const rc = JSON.parse(Buffer.from((JSON.parse(s.receipt) as Receipt).payload, 'base64').toString('utf8')) as ReceiptPayload;
      const want = rc.files.find((f) => f.path === path);
      row = rows.find((r) => r.sha256 === want?.sha256) ?? row;
    }
    if (!row) throw new ApiError(404, 'FILE_UNKNOWN', `Session ${sid} has no stored file ${path}.`);
    const range = parseRange(req.headers.range, row.size);
    audit(acct, req, 'file.read', sid, path, range ? { range: `${range.start}-${range.end}` } : undefined);
    const headers: Record<string, string | number> = {
      'Content-Type': contentTypeOf(path), 'Accept-Ranges': 'bytes', 'Cache-Control': 'private, no-store',
      'ETag': `"${row.sha256}"`, 'X-Content-Type-Options': 'nosniff', 'Content-Disposition': `inline; filename="${path.split('/').pop()}"`,
    };
    if (row.size === 0) { res.writeHead(200, { ...headers, 'Content-Length': 0 }); res.end(); return; }
    if (range) {
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${range.start}-${range.end}/${row.size}`, 'Content-Length': range.end - range.start + 1 });
    } else res.writeHead(200, { ...headers, 'Content-Length': row.size });
    if (req.method === 'HEAD') { res.end(); return; }
    const s2 = await store.read(row.upload_id, range ?? undefined);
    s2.on('error', () => res.destroy());
    s2.pipe(res);
  }

  async function login(req: IncomingMessage, body: unknown): Promise<unknown> {
    const b = body as { username?: unknown; password?: unknown };
    if (typeof b.username !== 'string' || typeof b.password !== 'string') throw new ApiError(400, 'BAD_REQUEST', 'Send {username, password}.');
    const f = loginFailures.get(b.username);
    if (f && f.until > nowMs()) throw new ApiError(429, 'TOO_MANY_ATTEMPTS', `Too many failed logins for ${b.username}; wait ${Math.ceil((f.until - nowMs()) / 1000)} s.`);
    const a = db.account(b.username);
    const good = await verifyPassword(b.password, a?.password_hash ?? DUMMY_PASSWORD_HASH);
    if (!a || !good || a.disabled) {
      const n = (f?.n ?? 0) + 1;
      loginFailures.set(b.username, { n, until: n >= 5 ? nowMs() + 30_000 : 0 });
      db.audit({ at: nowMs(), actor: b.username.slice(0, 64), role: 'unknown', action: 'login.failed', session_id: null, path: null, detail: null, ip: clientIp(req) });
      throw new ApiError(401, 'BAD_LOGIN', 'Wrong username or password.');
    }
    loginFailures.delete(b.username);
    const token = newSecret('kza');
    const expiresAt = nowMs() + config.accountTokenHours * 3600_000;
    db.addBearer(secretHash(token), 'account', a.username, nowMs(), expiresAt);
    db.audit({ at: nowMs(), actor: a.username, role: a.role, action: 'login', session_id: null, path: null, detail: null, ip: clientIp(req) });
    return { token, role: a.role, username: a.username, expiresAt };
  }

  const num = (v: string | null, def: number, max: number) => {
    const n = v === null ? def : Number(v);
    return Number.isFinite(n) && n >= 0 ? Math.min(Math.floor(n), max) : def;
  };

  async function api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const p = url.pathname.slice(API_PREFIX.length);
    const seg = p.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
    const q = url.searchParams;

    if (method === 'GET' && p === '/health') return sendJson(res, 200, { ok: true, version: APP_VERSION, protocol: PROTOCOL_VERSION });
    if (method === 'GET' && p === '/server') return sendJson(res, 200, { protocol: PROTOCOL_VERSION, version: APP_VERSION, keyid: key.keyid, publicKeyPem: key.publicKeyPem, tus: TUS_PATH, limits: config.limits });
    if (method === 'POST' && p === '/enroll') return sendJson(res, 200, await enroll(await readJsonBody(req)));
    if (method === 'POST' && p === '/auth/challenge') return sendJson(res, 200, challenge(await readJsonBody(req)));
    if (method === 'POST' && p === '/auth/token') return sendJson(res, 200, deviceToken(await readJsonBody(req)));
    if (method === 'POST' && p === '/login') return sendJson(res, 200, await login(req, await readJsonBody(req)));
    if (method === 'POST' && p === '/logout') {
      const t = bearerOf(req);
      if (t) db.dropBearer(secretHash(t));
      return sendJson(res, 200, { ok: true });
    }

    // Device endpoints.
    if (seg[0] === 'sessions' && seg.length === 3 && method === 'POST' && (seg[2] === 'status' || seg[2] === 'complete')) {
      const device = authDevice(req);
      const sid = seg[1]!;
      if (seg[2] === 'status') return sendJson(res, 200, await fileStatus(sid, device, await readJsonBody(req, 32 * 1024 * 1024)));
      const inline = await ingestInline(req, sid, device, await readJsonBody(req, COMPLETE_BODY_MAX));
      const r = await complete(sid, device);
      return sendJson(res, r.status === 'verified' ? 200 : 422, r.status === 'verified'
        ? { ...r, inline }
        : { ...r, inline, error: { code: 'QUARANTINED', message: `Session ${sid} failed verification and is quarantined on the server: ${r.reasons[0]}` } });
    }

    // Review endpoints (proctor/admin); every read of evidence is audited.
    if (seg[0] === 'sessions' && method === 'GET') {
      const acct = authAccount(req);
      if (seg.length === 1) {
        const rows = db.listSessions({ status: q.get('status') ?? undefined, lab: q.get('lab') ?? undefined, exam: q.get('exam') ?? undefined, student: q.get('student') ?? undefined, limit: num(q.get('limit'), 100, 1000), offset: num(q.get('offset'), 0, 1e9) });
        audit(acct, req, 'sessions.list', null, null, Object.fromEntries(q));
        return sendJson(res, 200, { sessions: rows.map(sessionSummary) });
      }
      const sid = seg[1]!;
      const s = reviewSession(sid);
      if (seg.length === 2) {
        audit(acct, req, 'session.read', sid, null);
        const files = db.filesOf(sid).map((f) => ({ path: f.path, sha256: f.sha256, size: f.size, state: f.state, storedAt: f.stored_at }));
        return sendJson(res, 200, {
          ...sessionSummary(s), deviceKeyId: s.device_keyid, warnings: s.warnings ? JSON.parse(s.warnings) : [],
          files, verdicts: db.verdicts(sid), rejectedUploads: db.rejectedUploads(sid), receipt: s.receipt ? JSON.parse(s.receipt) : null,
        });
      }
      if (seg[2] === 'events' || seg[2] === 'episodes') {
        const typePrefix = seg[2] === 'episodes' ? 'episode.' : q.get('type') ?? undefined;
        const rows = db.events(sid, { typePrefix, fromSeq: num(q.get('from'), 0, 1e12), limit: num(q.get('limit'), 1000, 10000) });
        audit(acct, req, `${seg[2]}.read`, sid, null, typePrefix ? { type: typePrefix } : undefined);
        return sendJson(res, 200, { session: sid, verified: s.status === 'verified', events: rows.map((r) => ({ seq: r.seq, wall: r.wall, type: r.type, data: JSON.parse(r.data) })) });
      }
      if (seg[2] === 'receipt') {
        if (!s.receipt) throw new ApiError(404, 'NO_RECEIPT', `Session ${sid} has no receipt (status ${s.status}).`);
        audit(acct, req, 'receipt.read', sid, null);
        return sendJson(res, 200, JSON.parse(s.receipt));
      }
      if (seg[2] === 'files' && seg.length > 3) return serveFile(req, res, acct, sid, seg.slice(3).join('/'));
    }
    if (seg[0] === 'sessions' && method === 'HEAD' && seg[2] === 'files' && seg.length > 3) {
      return serveFile(req, res, authAccount(req), seg[1]!, seg.slice(3).join('/'));
    }

    if (seg[0] === 'audit' && method === 'GET') {
      authAccount(req, ['admin']);
      return sendJson(res, 200, { audit: db.auditLog({ sessionId: q.get('session') ?? undefined, limit: num(q.get('limit'), 200, 5000), offset: num(q.get('offset'), 0, 1e9) }) });
    }
    if (seg[0] === 'admin') {
      const acct = authAccount(req, ['admin']);
      if (method === 'POST' && seg[1] === 'enrolment-tokens') {
        const b = (await readJsonBody(req)) as { lab?: string; machineId?: string; hours?: number };
        const t = createEnrolToken(db, { lab: b.lab, machineId: b.machineId, hours: b.hours ?? config.enrolTokenHours, by: acct.username });
        audit(acct, req, 'enrolment-token.create', null, null, { lab: b.lab ?? null, id: t.id });
        return sendJson(res, 200, t);
      }
      if (method === 'GET' && seg[1] === 'devices') return sendJson(res, 200, { devices: db.listDevices().map((d) => ({ ...d, public_key_pem: undefined })) });
      if (method === 'POST' && seg[1] === 'devices' && seg[3] === 'revoke') {
        const b = (await readJsonBody(req)) as { reason?: string };
        const n = revokeDevices(db, seg[2]!, b.reason ?? `revoked by ${acct.username}`);
        audit(acct, req, 'device.revoke', null, null, { device: seg[2], revoked: n });
        return sendJson(res, 200, { revoked: n });
      }
      if (method === 'POST' && seg[1] === 'accounts') {
        const b = (await readJsonBody(req)) as { username?: string; password?: string; role?: string };
        await addAccount(db, String(b.username ?? ''), String(b.password ?? ''), String(b.role ?? ''));
        audit(acct, req, 'account.upsert', null, null, { username: b.username, role: b.role });
        return sendJson(res, 200, { ok: true });
      }
    }
    throw new ApiError(404, 'NOT_FOUND', `No API endpoint ${method} ${url.pathname}.`);
  }

  // --- HTTP ----------------------------------------------------------------------------------------------------
  const sockets = new Set<Socket>();
  const http: HttpServer = createServer({ requestTimeout: 600_000, headersTimeout: 30_000, keepAliveTimeout: 10_000 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const done = (async () => {
      if (url.pathname === TUS_PATH || url.pathname.startsWith(TUS_PATH + '/')) return tusRoute(req, res, url);
      if (url.pathname.startsWith(API_PREFIX + '/')) return api(req, res, url);
      throw new ApiError(404, 'NOT_FOUND', `Nothing at ${url.pathname}. The API is under ${API_PREFIX}/, uploads under ${TUS_PATH}/.`);
    })();
    done.catch((e: unknown) => {
      if (res.headersSent) { res.destroy(); return; }
      if (e instanceof ApiError) {
        if (e.status >= 500) log(`${req.method} ${url.pathname}: ${e.message}`);
        sendJson(res, e.status, e.body(), req.method === 'POST' || req.method === 'PATCH' ? { Connection: 'close' } : {});
        return;
      }
      log(`${req.method} ${url.pathname}: internal error: ${(e as Error)?.stack ?? String(e)}`);
      sendJson(res, 500, { error: { code: 'INTERNAL', message: 'Internal server error; the evidence received so far is kept.' } });
    });
  });
  http.setTimeout(120_000);
  http.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  const host = opts.host ?? config.host;
  const port = opts.port ?? config.port;
  await new Promise<void>((resolve, reject) => {
    http.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE'
      ? new KuzetError('PORT_IN_USE', `Port ${port} on ${host} is already in use; choose another with --port.`)
      : e));
    http.listen(port, host, () => resolve());
  });
  const addr = http.address();
  const boundPort = typeof addr === 'object' && addr ? addr.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;

  // Reconcile uploads that reached full length while the previous run stopped before finalising them.
  void (async () => {
    for (const s of db.listSessions({ status: 'receiving', limit: 100000, offset: 0 })) {
      for (const r of db.filesOf(s.id)) if (r.state === 'receiving') await finalize(r.upload_id).catch(() => undefined);
    }
  })().catch(() => undefined); // closed before it finished: the next start (or the device's status call) goes on

  let closed = false;
  return {
    url, port: boundPort, dataDir: opts.dataDir, db, key, config, store,
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await Promise.allSettled([...finalizing.values(), ...completing.values()]);
      await store.close();
      disk.close();
      db.close();
    },
  };
}

/** Writes a small file under a temporary name and renames it (readers never see half of it; not flushed here). */
async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o644 });
  renameSync(tmp, path);
}

/** Writes a file and flushes it to disk before it takes its name (like `writeFileDurable`, off the event loop). */
async function writeFileDurableAsync(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode: 0o644 });
  const fh = await open(tmp, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
  await rename(tmp, path);
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

// --- admin operations (used by `kuzet admin` directly on the data dir, and by the admin API) ---------------------

export function createEnrolToken(db: ServerDb, o: { lab?: string; machineId?: string; hours: number; by: string }): { token: string; id: string; lab: string | null; machineId: string | null; expiresAt: number } {
  if (o.machineId !== undefined && !/^[A-Za-z0-9._-]{1,128}$/.test(o.machineId)) throw new KuzetError('BAD_MACHINE_ID', `Machine id "${o.machineId}" may only use letters, digits, ".", "_" and "-".`);
  const token = newSecret('kze');
  const id = randomBytes(6).toString('hex');
  const now = Date.now();
  const expiresAt = now + Math.round(o.hours * 3600_000);
  db.addEnrolToken({ id, token_sha256: secretHash(token), lab: o.lab ?? null, machine_id: o.machineId ?? null, created_at: now, created_by: o.by, expires_at: expiresAt, used_at: null, used_by_keyid: null });
  return { token, id, lab: o.lab ?? null, machineId: o.machineId ?? null, expiresAt };
}

/** Revokes by key id (or a unique prefix of at least 8 hex digits) or by machine id; returns how many keys. */
export function revokeDevices(db: ServerDb, who: string, reason: string): number {
  const now = Date.now();
  let targets = db.devicesByMachine(who);
  if (targets.length === 0 && /^[0-9a-f]{8,64}$/.test(who)) targets = db.listDevices().filter((d) => d.keyid.startsWith(who));
  if (targets.length === 0) throw new KuzetError('NO_SUCH_DEVICE', `No enrolled device with machine id or key id "${who}".`);
  let n = 0;
  for (const d of targets) if (db.revokeDevice(d.keyid, now, reason)) n++;
  return n;
}

export async function addAccount(db: ServerDb, username: string, password: string, role: string): Promise<void> {
  if (!/^[A-Za-z0-9._@-]{2,64}$/.test(username)) throw new KuzetError('BAD_USERNAME', 'A username has 2–64 letters, digits, ".", "_", "@" or "-".');
  if (role !== 'admin' && role !== 'proctor') throw new KuzetError('BAD_ROLE', `Role must be "admin" or "proctor", not "${role}".`);
  if (password.length < 10) throw new KuzetError('WEAK_PASSWORD', 'A password needs at least 10 characters.');
  db.upsertAccount(username, await hashPassword(password), role, Date.now());
}

/** Reads the bytes of a stored receipt for a session (tests, admin). */
export async function readStoredReceipt(dataDir: string, sid: string): Promise<Receipt> {
  return JSON.parse(await readFile(join(serverPaths(dataDir).receipts, `${sid}.json`), 'utf8')) as Receipt;
}

