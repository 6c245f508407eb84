/**
 * One HTTP exchange with stall detection: a request that neither sends nor receives a byte for `stallMs` is
 * destroyed (a silent network, a half-open socket). Truncated responses and resets reject with a NetworkError;
 * the caller decides whether to retry. Node's http only (no fetch): we need byte-level progress and control.
 */
import http from 'node:http';
import https from 'node:https';
import { closeSync, constants as fsConstants, createReadStream, openSync, readSync } from 'node:fs';

export class NetworkError extends Error {
  readonly kind: 'stall' | 'reset' | 'truncated' | 'refused' | 'aborted' | 'other';
  constructor(kind: NetworkError['kind'], message: string) {
    super(message);
    this.name = 'NetworkError';
    this.kind = kind;
  }
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string | number>;
  /** A buffer, or a byte range of a file streamed from disk. */
  body?: Buffer | { file: string; start: number; end: number /* exclusive */ };
  stallMs: number;
  signal?: AbortSignal;
  /** Bytes of the body handed to the socket so far. */
  onSent?: (bytes: number) => void;
  maxResponseBytes?: number;
}

/**
 * Connections are kept open between requests. The per-server cap only guards against runaway sockets: a lab machine
 * uses `upload.concurrency` (2) of them, but one process may stand in for many machines (`npm run bench:server`
 * simulates 100 devices × 2 requests), and a cap below that queued each device's end of exam behind the others'
 * uploads (0.8 s instead of 0.3 s a device).
 */
const MAX_SOCKETS = 256;
const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
  https: new https.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
};

export function request(r: HttpRequest): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(r.url);
    const mod = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string | number> = { ...(r.headers ?? {}) };
    let bodyLen = 0;
    if (Buffer.isBuffer(r.body)) bodyLen = r.body.length;
    else if (r.body) bodyLen = r.body.end - r.body.start;
    if (r.body !== undefined) headers['Content-Length'] = bodyLen;
    let settled = false;
    let timer: NodeJS.Timeout | null = null;
    const finish = (err: Error | null, res?: HttpResponse) => {
      if (settled) return;
      settled = true;
      if (timer) { clearTimeout(timer); timer = null; }
      r.signal?.removeEventListener('abort', onAbort);
      if (err) { req.destroy(); reject(err); } else resolve(res!);
    };
    // One timer per request, pushed back on every byte that moves (refresh() instead of a new timer each time).
    const bump = () => {
      if (settled) return;
      if (timer) { timer.refresh(); return; }
      timer = setTimeout(() => finish(new NetworkError('stall', `no progress for ${r.stallMs} ms (${r.method} ${u.pathname})`)), r.stallMs);
    };
    const onAbort = () => finish(new NetworkError('aborted', 'upload stopped'));
    const req = mod.request(u, { method: r.method, headers, agent: u.protocol === 'https:' ? agents.https : agents.http });
    if (r.signal) {
      if (r.signal.aborted) { queueMicrotask(onAbort); }
      r.signal.addEventListener('abort', onAbort, { once: true });
    }
    bump();
    req.on('error', (e: NodeJS.ErrnoException) => {
      const kind = e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ECONNRESET' || e.code === 'EPIPE' ? 'reset' : 'other';
      finish(new NetworkError(kind, `${e.code ?? ''} ${e.message}`.trim()));
    });
    req.on('response', (res) => {
      bump();
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        bump();
        n += c.length;
        if (n > (r.maxResponseBytes ?? 64 * 1024 * 1024)) { finish(new NetworkError('other', 'response too large')); return; }
        chunks.push(c);
      });
      res.on('error', () => finish(new NetworkError('truncated', `response to ${r.method} ${u.pathname} was cut off`)));
      res.on('aborted', () => finish(new NetworkError('truncated', `response to ${r.method} ${u.pathname} was cut off`)));
      res.on('end', () => {
        if (!res.complete) { finish(new NetworkError('truncated', `response to ${r.method} ${u.pathname} was cut off`)); return; }
        finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('close', () => { if (!res.complete) finish(new NetworkError('truncated', `connection closed during the response to ${r.method} ${u.pathname}`)); });
    });
    if (r.body === undefined) { req.end(); return; }
    if (Buffer.isBuffer(r.body)) { req.end(r.body); r.onSent?.(bodyLen); return; }
    if (bodyLen === 0) { req.end(); return; }
    const range = r.body;
    if (bodyLen <= SMALL_BODY) {
      // A segment-sized body: read at once with direct calls (a page-cache read of a segment costs far less than
      // the thread-pool trips of an async read) into a reused buffer, instead of a stream of partial reads.
      const buf = takeBuffer();
      try {
        readRangeInto(range.file, range.start, bodyLen, buf);
      } catch (e) {
        giveBack(buf);
        queueMicrotask(() => finish(new NetworkError('other', `cannot read ${range.file}: ${(e as Error).message}`)));
        return;
      }
      // The buffer is reused only once the request handed all of it to the operating system ('finish'); a request
      // cut off before that leaves it to the garbage collector (the socket may still hold a slice).
      req.once('finish', () => giveBack(buf));
      // Written in slices, each when the socket has taken the previous one, so a slow link still shows progress
      // to the stall timer and the progress callback.
      let off = 0;
      const more = () => {
        while (!settled && off < bodyLen) {
          const end = Math.min(bodyLen, off + BODY_SLICE);
          const ok = req.write(buf.subarray(off, end));
          off = end;
          bump();
          r.onSent?.(off);
          if (!ok) { req.once('drain', more); return; }
        }
        if (!settled) req.end();
      };
      more();
      return;
    }
    const src = createReadStream(r.body.file, { start: r.body.start, end: r.body.end - 1, highWaterMark: 256 * 1024 });
    let sent = 0;
    src.on('data', (c) => {
      bump();
      sent += (c as Buffer).length;
      r.onSent?.(sent);
    });
    src.on('error', (e) => finish(new NetworkError('other', `cannot read ${r.body && !Buffer.isBuffer(r.body) ? r.body.file : ''}: ${e.message}`)));
    src.pipe(req);
  });
}

/** Bodies up to this size are read into memory and written at once; larger ones are streamed from disk. */
const SMALL_BODY = 1 << 20;
const BODY_SLICE = 256 * 1024;

/**
 * Reusable body buffers of SMALL_BODY bytes: a fresh buffer per segment costs page faults on first touch and keeps
 * the garbage collector busy (external memory). As many are kept as requests ran at once (up to SPARE_MAX); after
 * SPARE_IDLE_MS without a segment upload, all but two are let go.
 */
const spare: Buffer[] = [];
const SPARE_MAX = 64;
const SPARE_IDLE_MS = 10_000;
let lastTake = 0;
let trimTimer: NodeJS.Timeout | null = null;

function takeBuffer(): Buffer {
  lastTake = Date.now();
  return spare.pop() ?? Buffer.allocUnsafeSlow(SMALL_BODY);
}

function giveBack(buf: Buffer): void {
  if (spare.length >= SPARE_MAX) return;
  spare.push(buf);
  if (spare.length > 2 && !trimTimer) {
    trimTimer = setInterval(() => {
      if (Date.now() - lastTake < SPARE_IDLE_MS) return;
      spare.length = Math.min(spare.length, 2);
      clearInterval(trimTimer!);
      trimTimer = null;
    }, SPARE_IDLE_MS);
    trimTimer.unref();
  }
}

/** Reading evidence to send it need not update its access time (an inode write per segment); Linux only. */
let noAtime = fsConstants.O_NOATIME ?? 0;

function openForRead(file: string): number {
  if (noAtime) {
    try { return openSync(file, fsConstants.O_RDONLY | noAtime); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
      noAtime = 0; // not the files' owner: plain reads from now on
    }
  }
  return openSync(file, 'r');
}

function readRangeInto(file: string, start: number, length: number, buf: Buffer): void {
  const fd = openForRead(file);
  try {
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, start + got);
      if (n === 0) throw new Error(`the file ended after ${got} of ${length} bytes`);
      got += n;
    }
  } finally {
    closeSync(fd);
  }
}

export function jsonOf<T = unknown>(res: HttpResponse): T | undefined {
  try { return JSON.parse(res.body.toString('utf8')) as T; } catch { return undefined; }
}
