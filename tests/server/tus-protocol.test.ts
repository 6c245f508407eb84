/**
 * The server's own tus 1.0.0 implementation (src/main/server/tus.ts): a stock tus-js-client uploads to it (creation,
 * creation-with-upload, PATCH chunks), and the protocol's refusals come with the right status and a named reason.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import * as tus from 'tus-js-client';
import { TUS_PATH, encodeMetadata, uploadIdFor } from '../../src/main/server/protocol.js';
import { request } from '../../src/main/upload/http.js';
import { serverWithDevice, sessionId } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('tus 1.0.0 on the evidence server', () => {
  const t = serverWithDevice();
  const auth = async () => ({ Authorization: `Bearer ${await t.dev.client.bearer()}`, 'Tus-Resumable': '1.0.0' });
  const create = async (sid: string, path: string, bytes: Buffer) => request({
    method: 'POST', url: `${t.srv.url}${TUS_PATH}/`, stallMs: 5000,
    headers: { ...(await auth()), 'Upload-Length': bytes.length, 'Upload-Metadata': encodeMetadata({ session: sid, path, sha256: sha(bytes) }) },
  });

  it('a stock tus-js-client uploads in chunks (creation-with-upload, then PATCH) and the server stores the exact bytes', async () => {
    const sid = sessionId();
    for (const [path, size, during] of [['media/face/seg-00000.ts', 300_000, true], ['media/room/seg-00000.ts', 250_000, false]] as const) {
      const bytes = randomBytes(size);
      const headers = await auth();
      const url = await new Promise<string>((resolve, reject) => {
        const up = new tus.Upload(bytes, {
          endpoint: `${t.srv.url}${TUS_PATH}/`,
          chunkSize: 100_000,
          uploadDataDuringCreation: during,
          metadata: { session: sid, path, sha256: sha(bytes) },
          headers: { Authorization: headers.Authorization },
          retryDelays: [],
          onError: reject,
          onSuccess: () => resolve(up.url!),
        });
        up.start();
      });
      const id = uploadIdFor(sid, path, sha(bytes));
      expect(url.endsWith(`${TUS_PATH}/${id}`), path).toBe(true);
      expect(t.srv.db.file(id)?.state, path).toBe('stored');
      expect(readFileSync(t.srv.store.localPath(id)!).equals(bytes), path).toBe(true);
    }
  });

  it('answers OPTIONS with the version, extensions and size limit, and refuses requests without Tus-Resumable (412)', async () => {
    const o = await request({ method: 'OPTIONS', url: `${t.srv.url}${TUS_PATH}/`, stallMs: 5000 });
    expect(o.status).toBe(204);
    expect(o.headers['tus-version']).toBe('1.0.0');
    expect(String(o.headers['tus-extension']).split(',')).toEqual(expect.arrayContaining(['creation', 'creation-with-upload']));
    expect(Number(o.headers['tus-max-size'])).toBe(t.srv.config.limits.maxFileBytes);
    const h = await auth();
    const r = await request({ method: 'POST', url: `${t.srv.url}${TUS_PATH}/`, stallMs: 5000, headers: { Authorization: h.Authorization, 'Upload-Length': 10 } });
    expect(r.status).toBe(412);
    expect(JSON.parse(r.body.toString()).error.code).toBe('TUS_VERSION');
  });

  it('HEAD gives offset and length; a PATCH at the wrong offset is 409, without the offset content type 415, past the end 413; the right one completes', async () => {
    const sid = sessionId();
    const bytes = randomBytes(50_000);
    const c = await create(sid, 'media/face/seg-00001.ts', bytes);
    expect(c.status).toBe(201);
    const url = String(c.headers.location);
    const h = await auth();
    const head = await request({ method: 'HEAD', url, stallMs: 5000, headers: h });
    expect([head.status, head.headers['upload-offset'], head.headers['upload-length'], head.headers['cache-control']]).toEqual([200, '0', '50000', 'no-store']);
    const patch = (offset: number, body: Buffer, type = 'application/offset+octet-stream') =>
      request({ method: 'PATCH', url, stallMs: 5000, headers: { ...h, 'Upload-Offset': offset, 'Content-Type': type }, body });
    const wrong = await patch(10, bytes.subarray(10));
    expect([wrong.status, JSON.parse(wrong.body.toString()).error.code]).toEqual([409, 'OFFSET_CONFLICT']);
    const badType = await patch(0, bytes, 'application/octet-stream');
    expect([badType.status, JSON.parse(badType.body.toString()).error.code]).toEqual([415, 'BAD_CONTENT_TYPE']);
    const tooLong = await patch(0, Buffer.concat([bytes, Buffer.alloc(1)]));
    expect([tooLong.status, JSON.parse(tooLong.body.toString()).error.code]).toEqual([413, 'BODY_TOO_LARGE']);
    const first = await patch(0, bytes.subarray(0, 20_000));
    expect([first.status, first.headers['upload-offset']]).toEqual([204, '20000']);
    const rest = await patch(20_000, bytes.subarray(20_000));
    expect([rest.status, rest.headers['upload-offset'], rest.headers['kuzet-stored-sha256']]).toEqual([204, '50000', sha(bytes)]);
  });

  it('malformed Upload-Metadata and a missing Upload-Length are refused with their reason', async () => {
    const h = await auth();
    const bad = await request({ method: 'POST', url: `${t.srv.url}${TUS_PATH}/`, stallMs: 5000, headers: { ...h, 'Upload-Length': 5, 'Upload-Metadata': 'session a b c' } });
    expect([bad.status, JSON.parse(bad.body.toString()).error.code]).toEqual([400, 'BAD_METADATA']);
    const noLen = await request({ method: 'POST', url: `${t.srv.url}${TUS_PATH}/`, stallMs: 5000, headers: { ...h, 'Upload-Metadata': encodeMetadata({ session: sessionId(), path: 'a.ts', sha256: '0'.repeat(64) }) } });
    expect([noLen.status, JSON.parse(noLen.body.toString()).error.code]).toEqual([400, 'BAD_UPLOAD_LENGTH']);
  });

  it('a PATCH stuck half-sent on a dead connection is ended by the retry, which resumes from what arrived and completes', async () => {
    const sid = sessionId();
    const bytes = randomBytes(200_000);
    const c = await create(sid, 'media/screen/seg-00000.ts', bytes);
    const url = new URL(String(c.headers.location));
    const h = await auth();
    // A raw connection that sends headers and 64 KiB of the body, then goes silent (never closes).
    const sock = net.connect(Number(url.port), url.hostname);
    await new Promise((r) => sock.once('connect', r));
    sock.write(`PATCH ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: ${h.Authorization}\r\nTus-Resumable: 1.0.0\r\n` +
      `Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: ${bytes.length}\r\n\r\n`);
    sock.write(bytes.subarray(0, 65_536));
    try {
      await new Promise((r) => setTimeout(r, 300)); // the server is now inside that request, holding the upload
      // The retry: a PATCH from the server's offset takes the upload over from the stuck request.
      const now = Number((await request({ method: 'HEAD', url: url.href, stallMs: 5000, headers: h })).headers['upload-offset']);
      const r = await request({ method: 'PATCH', url: url.href, stallMs: 5000, headers: { ...h, 'Upload-Offset': now, 'Content-Type': 'application/offset+octet-stream' }, body: bytes.subarray(now) });
      if (r.status === 409) {
        // Ending the stuck request stored the 64 KiB it had received: resume once more from the final offset.
        const again = Number((await request({ method: 'HEAD', url: url.href, stallMs: 5000, headers: h })).headers['upload-offset']);
        const r2 = await request({ method: 'PATCH', url: url.href, stallMs: 5000, headers: { ...h, 'Upload-Offset': again, 'Content-Type': 'application/offset+octet-stream' }, body: bytes.subarray(again) });
        expect(r2.status).toBe(204);
      } else expect(r.status).toBe(204);
      const id = uploadIdFor(sid, 'media/screen/seg-00000.ts', sha(bytes));
      expect(t.srv.db.file(id)?.state).toBe('stored');
      expect(readFileSync(t.srv.store.localPath(id)!).equals(bytes)).toBe(true);
      await new Promise<void>((r) => { if (sock.destroyed || sock.readableEnded) r(); else sock.once('close', () => r()); sock.resume(); });
    } finally {
      sock.destroy();
    }
  });
});
