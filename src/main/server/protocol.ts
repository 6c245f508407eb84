/**
 * The evidence-delivery wire protocol, version 1: what the client (src/main/upload) and the server
 * (src/main/server) agree on. Plain types and pure functions only (no server dependencies), so the client can
 * import it without pulling in SQLite or the upload store. docs/server.md describes the same contract for people.
 */
import { createHash } from 'node:crypto';
import { canonicalize, sha256Hex } from '../core/canonical.js';
import { publicKeyFromPem, verifyEnvelope } from '../core/keys.js';
import { isSafeBundlePath, MANIFEST_FILE, PUBLIC_KEY_FILE, SIGNATURE_FILE } from '../evidence/format.js';

export const PROTOCOL_VERSION = 1;
export const API_PREFIX = '/api/v1';
export const TUS_PATH = '/files';

/** DSSE payload types; each is bound into its signature. */
export const RECEIPT_PAYLOAD_TYPE = 'application/vnd.kuzet.receipt+json; version=1';
export const AUTH_PAYLOAD_TYPE = 'application/vnd.kuzet.device-auth+json; version=1';
export const ENROL_PAYLOAD_TYPE = 'application/vnd.kuzet.enrolment+json; version=1';

/** tus Upload-Metadata keys every upload carries. */
export interface UploadMeta {
  session: string;
  path: string;
  sha256: string;
}

/** Session ids become folder names on the server: keep them to a safe alphabet. */
export function isSafeSessionId(id: unknown): id is string {
  return typeof id === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id) && !id.includes('..');
}

/**
 * A bundle path the server accepts: the bundle format's safe-path rule, plus a conservative alphabet (no control
 * characters, no Windows-reserved characters) and no component starting with a dot (".tus", ".tmp" stay ours).
 */
export function checkBundlePath(p: unknown): string | null {
  if (typeof p !== 'string') return 'the file name is missing';
  if (!isSafeBundlePath(p)) return `the file name "${printable(p)}" is unsafe (absolute, "..", backslash or empty part): path traversal is refused`;
  if ([...p].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) || /[<>:"|?*]/.test(p)) return `the file name "${printable(p)}" has characters that are not allowed`;
  if (p.split('/').some((part) => part.startsWith('.'))) return `the file name "${printable(p)}" has a part starting with "." (hidden files are not evidence)`;
  return null;
}

export function isSha256Hex(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}

function printable(s: string): string {
  return JSON.stringify(s.length > 120 ? s.slice(0, 120) + '…' : s).slice(1, -1);
}

/** The server's storage id of one (session, path, content) triple: the same bytes always get the same upload. */
export function uploadIdFor(session: string, path: string, sha256: string): string {
  return createHash('sha256').update(`${session}\0${path}\0${sha256}`).digest('hex').slice(0, 40);
}

export function encodeMetadata(meta: Record<string, string>): string {
  return Object.entries(meta).map(([k, v]) => `${k} ${Buffer.from(v, 'utf8').toString('base64')}`).join(',');
}

// ---------------------------------------------------------------------------------------------------------------
// Completion with the small files inline

/**
 * `POST /sessions/<id>/complete` may carry the bundle's small files that the server does not hold yet (the log,
 * session.json, the manifest, its signature, the device key): `{files: [{path, sha256, size, data}]}`, data in
 * base64. The server stores each exactly as a tus upload of the same bytes (same id, checks, limits and hashing;
 * an unfinished upload of them is resumed), then completes, and answers with `inline: <files taken>`. One request
 * instead of one upload per file and then the completion; bigger files still go through tus first.
 */
export const INLINE_FILE_MAX = 256 * 1024;
/** Decoded bytes of all inline files of one completion (bounds what 100 completions arriving together hold in memory). */
export const INLINE_TOTAL_MAX = 512 * 1024;
/** The completion's JSON body limit: base64 of INLINE_TOTAL_MAX plus names and hashes. */
export const COMPLETE_BODY_MAX = Math.ceil((INLINE_TOTAL_MAX * 4) / 3) + 64 * 1024;

export interface InlineFile { path: string; sha256: string; size: number; data: string }

/** Files the bundle has besides those the manifest lists. */
export const BUNDLE_SELF_FILES = [MANIFEST_FILE, SIGNATURE_FILE, PUBLIC_KEY_FILE] as const;

// ---------------------------------------------------------------------------------------------------------------
// Receipts

export interface ReceiptFile { path: string; sha256: string; size: number }

export interface ReceiptPayload {
  type: 'kuzet.receipt';
  version: 1;
  sessionId: string;
  machineId: string;
  lab: string | null;
  /** The device key that signed the manifest (and uploaded it). */
  deviceKeyId: string;
  /** sha256 of the signed manifest bytes (manifest.json). */
  manifestSha256: string;
  /** Every file the server holds for this bundle: the manifest's files plus manifest.json, manifest.sig.json, device.pub. */
  files: ReceiptFile[];
  totalBytes: number;
  verdict: 'verified';
  verifiedAt: number;
  server: { keyid: string; name: string };
}

export interface Receipt {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

export type ReceiptCheck = { ok: true; payload: ReceiptPayload } | { ok: false; reason: string };

/**
 * Checks a receipt against the pinned server key and, when given, the local bundle's manifest bytes and file
 * list. Only a receipt that passes this may lead to local evidence being deleted.
 */
export function checkReceipt(
  receipt: unknown,
  serverKeyPem: string,
  expect?: { sessionId?: string; manifestSha256?: string; files?: ReceiptFile[] },
): ReceiptCheck {
  let key;
  try { key = publicKeyFromPem(serverKeyPem); } catch (e) { return { ok: false, reason: (e as Error).message }; }
  const env = verifyEnvelope(receipt, RECEIPT_PAYLOAD_TYPE, key);
  if (!env.ok) return { ok: false, reason: `receipt signature: ${env.reason}` };
  let p: ReceiptPayload;
  try { p = JSON.parse(env.payload.toString('utf8')) as ReceiptPayload; } catch { return { ok: false, reason: 'receipt payload is not JSON' }; }
  if (p.type !== 'kuzet.receipt' || p.version !== 1 || p.verdict !== 'verified' || !Array.isArray(p.files)) {
    return { ok: false, reason: 'receipt payload is not a version-1 "verified" receipt' };
  }
  if (expect?.sessionId && p.sessionId !== expect.sessionId) return { ok: false, reason: `receipt is for session ${p.sessionId}, not ${expect.sessionId}` };
  if (expect?.manifestSha256 && p.manifestSha256 !== expect.manifestSha256) {
    return { ok: false, reason: `receipt names manifest ${p.manifestSha256.slice(0, 16)}…, the local manifest is ${expect.manifestSha256.slice(0, 16)}…` };
  }
  if (expect?.files) {
    const got = new Map(p.files.map((f) => [f.path, f]));
    for (const f of expect.files) {
      const r = got.get(f.path);
      if (!r) return { ok: false, reason: `receipt does not list ${f.path}` };
      if (r.sha256 !== f.sha256 || r.size !== f.size) return { ok: false, reason: `receipt lists ${f.path} with a different hash or size` };
    }
  }
  return { ok: true, payload: p };
}

export function receiptDigest(receipt: Receipt): string {
  return sha256Hex(canonicalize(receipt));
}

// ---------------------------------------------------------------------------------------------------------------
// Device authentication: challenge → signed envelope → short-lived bearer token.

export interface AuthStatement {
  type: 'kuzet.device-auth';
  nonce: string;
  keyid: string;
  /** The server's key id, so a signed statement cannot be replayed to another server. */
  audience: string;
  at: number;
}

export interface EnrolStatement {
  type: 'kuzet.enrolment';
  /** sha256 of the one-time token (the token itself is sent beside it; this binds the key to it). */
  tokenSha256: string;
  machineId: string;
  hostname: string;
  publicKeyPem: string;
  at: number;
}

/** JSON error body every API error uses. */
export interface ApiErrorBody { error: { code: string; message: string; details?: unknown } }
