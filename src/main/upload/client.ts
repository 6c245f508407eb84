/**
 * The device side of the evidence protocol: enrolment, challenge → device token, the tus calls (create, HEAD,
 * PATCH) and the status/complete calls. Every failure is classified: `transient` (retry with backoff: network,
 * 5xx, 408/429, a lost race) or permanent (a clear refusal from the server that a retry cannot fix).
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '../core/canonical.js';
import { KuzetError } from '../core/errors.js';
import type { HomeLayout } from '../core/home.js';
import { signEnvelope, type KeyPair } from '../core/keys.js';
import { writeFileDurable } from '../evidence/seal.js';
import {
  API_PREFIX, AUTH_PAYLOAD_TYPE, ENROL_PAYLOAD_TYPE, TUS_PATH, encodeMetadata, uploadIdFor,
  type ApiErrorBody, type AuthStatement, type EnrolStatement, type InlineFile, type Receipt,
} from '../server/protocol.js';
import { NetworkError, jsonOf, request, type HttpResponse } from './http.js';

export interface Enrolment {
  server: string;
  machineId: string;
  lab: string | null;
  keyid: string;
  serverKeyId: string;
  serverKeyPem: string;
  enrolledAt: number;
}

export function enrolmentPath(home: HomeLayout): string {
  return join(home.root, 'enrolment.json');
}

export function normalizeServerUrl(url: string): string {
  let u: URL;
  try { u = new URL(url); } catch { throw new KuzetError('BAD_SERVER_URL', `"${url}" is not a URL; give the server as http(s)://host:port.`); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new KuzetError('BAD_SERVER_URL', `"${url}" must start with http:// or https://.`);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

export function loadEnrolment(home: HomeLayout, server?: string): Enrolment {
  const p = enrolmentPath(home);
  if (!existsSync(p)) throw new KuzetError('NOT_ENROLLED', `This machine is not enrolled with an evidence server (${p} is missing). Run \`kuzet enroll --server <url> --token <t>\` with a token from the administrator.`);
  let e: Enrolment;
  try { e = JSON.parse(readFileSync(p, 'utf8')) as Enrolment; } catch (err) { throw new KuzetError('BAD_ENROLMENT', `${p} is unreadable: ${(err as Error).message}`); }
  if (server && normalizeServerUrl(server) !== e.server) {
    throw new KuzetError('NOT_ENROLLED', `This machine is enrolled with ${e.server}, not ${normalizeServerUrl(server)}. Enrol with that server first (kuzet enroll).`);
  }
  return e;
}

/** A refusal or failure from the server, with its stable code. */
export class ServerRefusal extends KuzetError {
  readonly status: number;
  readonly transient: boolean;
  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(code, message, { status, ...(details ?? {}) });
    this.status = status;
    this.transient = status >= 500 || status === 408 || status === 429 || status === 423;
  }
}

export function isTransient(e: unknown): boolean {
  return e instanceof NetworkError || (e instanceof ServerRefusal && e.transient);
}

function refusal(res: HttpResponse, what: string): ServerRefusal {
  const j = jsonOf<ApiErrorBody & { error?: { details?: Record<string, unknown> } }>(res);
  const code = j?.error?.code ?? `HTTP_${res.status}`;
  const msg = j?.error?.message ?? (res.body.toString('utf8').trim().slice(0, 300) || `HTTP ${res.status}`);
  return new ServerRefusal(res.status, code, `${what}: ${msg}`, j?.error?.details);
}

export interface ClientOptions {
  stallMs?: number;
  signal?: AbortSignal;
}

/** Device tokens by server and key id (see `ServerClient.bearer`). */
const sharedTokens = new Map<string, { value: string; expiresAt: number }>();

export class ServerClient {
  readonly server: string;
  readonly key: KeyPair;
  private token: { value: string; expiresAt: number } | null = null;
  private tokenPending: Promise<string> | null = null;
  stallMs: number;

  constructor(server: string, key: KeyPair, opts: ClientOptions = {}) {
    this.server = normalizeServerUrl(server);
    this.key = key;
    this.stallMs = opts.stallMs ?? 20000;
  }

  /** Forgets the token (the server no longer accepts it); the next request signs a new challenge. */
  private dropToken(): void {
    const cacheKey = `${this.server}\0${this.key.keyid}`;
    if (sharedTokens.get(cacheKey) === this.token) sharedTokens.delete(cacheKey);
    this.token = null;
  }

  uploadUrl(id: string): string {
    return `${this.server}${TUS_PATH}/${id}`;
  }

  private async json<T>(method: string, path: string, body: unknown, auth: boolean, what: string, signal?: AbortSignal, retried = false): Promise<{ status: number; data: T }> {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (auth) headers.Authorization = `Bearer ${await this.bearer(signal)}`;
    const res = await request({ method, url: `${this.server}${API_PREFIX}${path}`, headers, body: Buffer.from(JSON.stringify(body ?? {})), stallMs: this.stallMs, signal });
    if (res.status === 401 && auth && !retried) {
      this.dropToken();
      const j = jsonOf<ApiErrorBody>(res);
      if (j?.error?.code === 'TOKEN_EXPIRED') return this.json<T>(method, path, body, auth, what, signal, true);
    }
    const data = jsonOf<T>(res);
    if (res.status >= 400 && !(res.status === 422 && data)) throw refusal(res, what);
    if (data === undefined) throw new NetworkError('truncated', `${what}: the server's answer is not JSON`);
    return { status: res.status, data };
  }

  /** Enrols this machine's key with a one-time token; returns what to store in `<home>/enrolment.json`. */
  async enroll(token: string, machineId: string, signal?: AbortSignal): Promise<Enrolment> {
    const st: EnrolStatement = { type: 'kuzet.enrolment', tokenSha256: sha256Hex(token), machineId, hostname: hostname(), publicKeyPem: this.key.publicKeyPem, at: Date.now() };
    const envelope = signEnvelope(ENROL_PAYLOAD_TYPE, Buffer.from(JSON.stringify(st)), this.key);
    const { data } = await this.json<{ machineId: string; lab: string | null; keyid: string; server: { keyid: string; publicKeyPem: string } }>('POST', '/enroll', { token, envelope }, false, 'enrolment refused', signal);
    return { server: this.server, machineId: data.machineId, lab: data.lab, keyid: data.keyid, serverKeyId: data.server.keyid, serverKeyPem: data.server.publicKeyPem, enrolledAt: Date.now() };
  }

  /**
   * A device bearer token, from a signed challenge; cached until a minute before it expires, and shared by every
   * client of this process for the same server and key (the live uploader and the end-of-exam upload use one).
   */
  async bearer(signal?: AbortSignal): Promise<string> {
    const cacheKey = `${this.server}\0${this.key.keyid}`;
    const shared = sharedTokens.get(cacheKey);
    if (!this.token && shared && shared.expiresAt - 60_000 > Date.now()) this.token = shared;
    if (this.token && this.token.expiresAt - 60_000 > Date.now()) return this.token.value;
    this.tokenPending ??= (async () => {
      try {
        const { data: ch } = await this.json<{ nonce: string; audience: string }>('POST', '/auth/challenge', { keyid: this.key.keyid }, false, 'authentication', signal);
        const st: AuthStatement = { type: 'kuzet.device-auth', nonce: ch.nonce, keyid: this.key.keyid, audience: ch.audience, at: Date.now() };
        const envelope = signEnvelope(AUTH_PAYLOAD_TYPE, Buffer.from(JSON.stringify(st)), this.key);
        const { data } = await this.json<{ token: string; expiresAt: number }>('POST', '/auth/token', { envelope }, false, 'authentication refused', signal);
        this.token = { value: data.token, expiresAt: data.expiresAt };
        sharedTokens.set(cacheKey, this.token);
        return data.token;
      } finally {
        this.tokenPending = null;
      }
    })();
    return this.tokenPending;
  }

  private async tus(method: string, url: string, headers: Record<string, string | number>, body: HttpRequestBody, signal?: AbortSignal, onSent?: (n: number) => void): Promise<HttpResponse> {
    const h = { ...headers, 'Tus-Resumable': '1.0.0', Authorization: `Bearer ${await this.bearer(signal)}` };
    const res = await request({ method, url, headers: h, body, stallMs: this.stallMs, signal, onSent });
    if (res.status === 401) {
      this.dropToken();
      const h2 = { ...h, Authorization: `Bearer ${await this.bearer(signal)}` };
      return request({ method, url, headers: h2, body, stallMs: this.stallMs, signal, onSent });
    }
    return res;
  }

  /**
   * Creates the upload of one file. `stored` = the server already holds these exact bytes (idempotent re-upload);
   * `exists` = an upload of these bytes is in progress (resume it at the deterministic URL).
   * With `first`, the request also carries bytes [0, first.end) of the file (tus creation-with-upload): one request
   * instead of two for a file that fits in a chunk; `offset` is then the server's new offset.
   */
  async create(session: string, path: string, sha256: string, size: number, signal?: AbortSignal,
    first?: { file: string; end: number; onSent?: (n: number) => void }): Promise<{ state: 'created' | 'stored' | 'exists'; url: string; offset?: number; storedSha256?: string }> {
    const headers: Record<string, string | number> = { 'Upload-Length': size, 'Upload-Metadata': encodeMetadata({ session, path, sha256 }) };
    if (first) headers['Content-Type'] = 'application/offset+octet-stream';
    const body = first ? { file: first.file, start: 0, end: first.end } : undefined;
    const res = await this.tus('POST', `${this.server}${TUS_PATH}/`, headers, body, signal, first?.onSent);
    const id = uploadIdFor(session, path, sha256);
    if (res.status === 201) {
      const loc = res.headers.location;
      const url = loc ? new URL(String(loc), this.server).href : this.uploadUrl(id);
      if (!first) return { state: 'created', url };
      const offset = Number(res.headers['upload-offset']);
      if (!Number.isFinite(offset)) throw new NetworkError('truncated', 'creation answer without Upload-Offset');
      const s = res.headers['kuzet-stored-sha256'];
      return { state: 'created', url, offset, storedSha256: typeof s === 'string' ? s : undefined };
    }
    if (res.status === 409) {
      const code = jsonOf<ApiErrorBody>(res)?.error?.code;
      if (code === 'ALREADY_STORED') return { state: 'stored', url: this.uploadUrl(id) };
      if (code === 'UPLOAD_EXISTS') return { state: 'exists', url: this.uploadUrl(id) };
    }
    throw refusal(res, `upload of ${path} refused`);
  }

  /** The server's offset for an upload, or null when it no longer exists (create it again). */
  async head(url: string, signal?: AbortSignal): Promise<{ offset: number; length: number } | null> {
    const res = await this.tus('HEAD', url, {}, undefined, signal);
    if (res.status === 404 || res.status === 410) return null;
    if (res.status !== 200 && res.status !== 204) throw refusal(res, 'upload status');
    const offset = Number(res.headers['upload-offset']);
    if (!Number.isFinite(offset)) throw new NetworkError('truncated', 'HEAD answer without Upload-Offset');
    return { offset, length: Number(res.headers['upload-length'] ?? NaN) };
  }

  /** Sends bytes [start, end) of a file; returns the server's new offset and whether it stored the file. */
  async patch(url: string, file: string, start: number, end: number, signal?: AbortSignal, onSent?: (n: number) => void): Promise<{ offset: number; storedSha256?: string }> {
    const res = await this.tus('PATCH', url, { 'Upload-Offset': start, 'Content-Type': 'application/offset+octet-stream' }, { file, start, end }, signal, onSent);
    if (res.status === 204 || res.status === 200) {
      const offset = Number(res.headers['upload-offset']);
      if (!Number.isFinite(offset)) throw new NetworkError('truncated', 'PATCH answer without Upload-Offset');
      const s = res.headers['kuzet-stored-sha256'];
      return { offset, storedSha256: typeof s === 'string' ? s : undefined };
    }
    throw refusal(res, 'upload');
  }

  async status(session: string, files: { path: string; sha256: string; size: number }[], signal?: AbortSignal): Promise<{ path: string; sha256: string; state: 'stored' | 'receiving' | 'absent' | 'invalid'; offset?: number }[]> {
    const { data } = await this.json<{ files: { path: string; sha256: string; state: 'stored' | 'receiving' | 'absent' | 'invalid'; offset?: number }[] }>('POST', `/sessions/${encodeURIComponent(session)}/status`, { files }, true, 'upload status', signal);
    return data.files;
  }

  /**
   * Asks the server to verify the session and sign its receipt. `inline` files (small, see protocol.ts) travel in
   * the same request; `inline` in the answer is how many the server took (absent: a server that does not take
   * inline files, so they still have to be uploaded).
   */
  async complete(session: string, signal?: AbortSignal, inline: InlineFile[] = []): Promise<CompleteAnswer> {
    const { data } = await this.json<CompleteAnswer>('POST', `/sessions/${encodeURIComponent(session)}/complete`, inline.length ? { files: inline } : {}, true, 'bundle completion', signal);
    return data;
  }
}

export type CompleteAnswer = ({ status: 'verified'; receipt: Receipt } | { status: 'quarantined'; reasons: string[]; warnings: string[] }) & { inline?: number };

type HttpRequestBody = Buffer | { file: string; start: number; end: number } | undefined;

export function saveEnrolment(home: HomeLayout, e: Enrolment): string {
  const p = enrolmentPath(home);
  writeFileDurable(p, JSON.stringify(e, null, 2) + '\n');
  return p;
}
