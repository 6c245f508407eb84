import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { ensureHome } from '../../src/main/core/home.js';
import { generateKeyPair, saveKeyPair, loadKeyPair } from '../../src/main/core/keys.js';
import { sha256Hex } from '../../src/main/core/canonical.js';
import { openDataDir, revokeDevices, type EvidenceServer } from '../../src/main/server/app.js';
import { uploadBundle } from '../../src/main/upload/bundle.js';
import { ServerClient, ServerRefusal, saveEnrolment, loadEnrolment } from '../../src/main/upload/client.js';
import { request } from '../../src/main/upload/http.js';
import { cleanup, enrolledDevice, makeBundle, server, sessionId, tempDir, type Device } from './helpers.js';

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return { code: (e as { code?: string }).code ?? 'none', message: (e as Error).message };
  }
  throw new Error('expected a rejection, got success');
}

describe('the evidence server refuses bad input with a clear reason', () => {
  let data: string;
  let root: string;
  let srv: EvidenceServer;
  let dev: Device;
  const roots: string[] = [];
  const fast = { keepDaysAfterReceipt: -1, retryMinMs: 20, retryMaxMs: 100 };

  beforeAll(async () => {
    data = tempDir('srv');
    root = tempDir('home');
    srv = await server(data, { limits: { maxFileBytes: 200_000, maxSessionBytes: 2_000_000 } });
    dev = await enrolledDevice(srv, root);
  });
  afterAll(async () => {
    await srv.close();
    cleanup(data, root, ...roots);
  });

  it('an unenrolled key cannot get a token or upload', async () => {
    const r = tempDir('unenrolled');
    roots.push(r);
    const home = ensureHome(r);
    saveKeyPair(home.keys, generateKeyPair());
    const key = loadKeyPair(home.keys);
    const client = new ServerClient(srv.url, key);
    const e = await rejection(client.bearer());
    expect(e.code).toBe('DEVICE_UNENROLLED');
    expect(e.message).toMatch(/not enrolled/);
    // Pretending to be enrolled (a copied enrolment file) does not help either.
    saveEnrolment(home, { ...loadEnrolment(dev.home), keyid: key.keyid });
    const b = await makeBundle(home.bundles, key, { segments: 1 });
    const u = await rejection(uploadBundle(b.dir, srv.url, { home, upload: fast }));
    expect(u.code).toBe('UPLOAD_REJECTED');
    expect(u.message).toMatch(/not enrolled/);
    expect(srv.db.session(b.id)).toBeUndefined();
  });

  it('a revoked key is refused at once, even with a token it already holds', async () => {
    const r = tempDir('revoked');
    roots.push(r);
    const d = await enrolledDevice(srv, r, { machineId: 'lab1-pc99' });
    await d.client.bearer();
    expect(revokeDevices(srv.db, 'lab1-pc99', 'stolen laptop')).toBe(1);
    const b = await makeBundle(d.home.bundles, d.key, { segments: 1 });
    const u = await rejection(uploadBundle(b.dir, srv.url, { home: d.home, upload: fast }));
    expect(u.code).toBe('UPLOAD_REJECTED');
    expect(u.message).toMatch(/revoked: stolen laptop/);
    expect(existsSync(b.dir)).toBe(true);
  });

  it('a revocation takes effect on the next request even after the server has accepted that token (also from `kuzet admin` on the same data dir)', async () => {
    for (const via of ['server', 'admin connection'] as const) {
      const r = tempDir('revoked2');
      roots.push(r);
      const machineId = `lab1-pc${via === 'server' ? 97 : 98}`;
      const d = await enrolledDevice(srv, r, { machineId });
      const ok = await makeBundle(d.home.bundles, d.key, { segments: 1 });
      expect((await uploadBundle(ok.dir, srv.url, { home: d.home, upload: fast })).payload.sessionId).toBe(ok.id);
      if (via === 'server') expect(revokeDevices(srv.db, machineId, 'reported lost')).toBe(1);
      else {
        const { db } = openDataDir(data); // what `kuzet admin revoke` does while the server runs
        try { expect(revokeDevices(db, machineId, 'reported lost')).toBe(1); } finally { db.close(); }
      }
      const b = await makeBundle(d.home.bundles, d.key, { segments: 1 });
      const u = await rejection(uploadBundle(b.dir, srv.url, { home: d.home, upload: fast }));
      expect(u.code, via).toBe('UPLOAD_REJECTED');
      expect(u.message, via).toMatch(/revoked: reported lost/);
      expect(srv.db.session(b.id), via).toBeUndefined();
    }
  });

  it('a bundle signed by another key is quarantined with "bad signature" and kept', async () => {
    const other = generateKeyPair();
    const b = await makeBundle(dev.home.bundles, other, { segments: 1 });
    const u = await rejection(uploadBundle(b.dir, srv.url, { home: dev.home, upload: fast }));
    expect(u.code).toBe('QUARANTINED');
    expect(u.message).toMatch(/bad signature: the manifest is not signed by the enrolled key/);
    const s = srv.db.session(b.id)!;
    expect(s.status).toBe('quarantined');
    expect(srv.db.filesOf(b.id).every((f) => f.state === 'stored')).toBe(true);
    expect(existsSync(join(data, 'verdicts', `${b.id}.json`))).toBe(true);
    expect(existsSync(b.dir)).toBe(true);
  });

  it('a file whose content differs from the manifest is uploaded as is and the bundle quarantined, naming the file', async () => {
    const b = await makeBundle(dev.home.bundles, dev.key, { segments: 2 });
    const f = join(b.dir, 'media/face/seg-00001.ts');
    const buf = readFileSync(f);
    buf[100] = buf[100]! ^ 0xff;
    writeFileSync(f, buf);
    const warnings: string[] = [];
    const u = await rejection(uploadBundle(b.dir, srv.url, { home: dev.home, upload: fast, onWarning: (w) => warnings.push(w) }));
    expect(warnings.join('\n')).toMatch(/media\/face\/seg-00001.ts differs from the manifest/);
    expect(u.code).toBe('QUARANTINED');
    expect(u.message).toMatch(/media\/face\/seg-00001\.ts: the server holds different content/);
    // The altered bytes are on the server, exactly as they were on the machine.
    const row = srv.db.filesOf(b.id).find((r) => r.path === 'media/face/seg-00001.ts')!;
    expect(row.sha256).toBe(sha256Hex(buf));
  });

  it('a manifest whose files are missing is quarantined with the missing names', async () => {
    const b = await makeBundle(dev.home.bundles, dev.key, { segments: 2 });
    unlinkSync(join(b.dir, 'media/room/seg-00000.ts'));
    const u = await rejection(uploadBundle(b.dir, srv.url, { home: dev.home, upload: fast }));
    expect(u.code).toBe('QUARANTINED');
    expect(u.message).toMatch(/never received: media\/room\/seg-00000\.ts/);
    expect(srv.db.verdicts(b.id).at(-1)?.status).toBe('quarantined');
  });

  it('path traversal and unsafe names are refused at upload creation', async () => {
    const sid = sessionId();
    const bad = ['../etc/passwd', '/etc/passwd', 'media/../../x.ts', 'C:/Windows/x', 'media\\..\\x', 'media/.hidden', 'a//b', 'ok/\u0001.ts'];
    for (const p of bad) {
      const e = await rejection(dev.client.create(sid, p, 'a'.repeat(64), 10));
      expect(e.code, p).toBe('BAD_PATH');
      expect((e as unknown as ServerRefusal).message).toMatch(/refused|not allowed|hidden/);
    }
    const e2 = await rejection(dev.client.create('../../evil', 'media/x.ts', 'a'.repeat(64), 10));
    expect(e2.code).toBe('BAD_SESSION_ID');
    expect(readdirSync(data).sort()).toEqual(['bundles', 'keys', 'quarantine', 'receipts', 'server.db', 'server.db-shm', 'server.db-wal', 'tmp', 'uploads', 'verdicts'].filter((x) => existsSync(join(data, x))));
  });

  it('oversize files and sessions beyond the configured limits are refused with the limit named', async () => {
    const sid = sessionId();
    const e = await rejection(dev.client.create(sid, 'media/face/seg-00000.ts', 'b'.repeat(64), 300_000));
    expect(e.code).toBe('FILE_TOO_LARGE');
    expect(e.message).toMatch(/at most 200000 bytes a file \(limits\.maxFileBytes\)/);
    const b = await makeBundle(dev.home.bundles, dev.key, { segments: 1, segBytes: 250_000 });
    const u = await rejection(uploadBundle(b.dir, srv.url, { home: dev.home, upload: fast }));
    expect(u.code).toBe('UPLOAD_REJECTED');
    expect(u.message).toMatch(/limits\.maxFileBytes/);
    const b2 = await makeBundle(dev.home.bundles, dev.key, { segments: 6, segBytes: 150_000 });
    const u2 = await rejection(uploadBundle(b2.dir, srv.url, { home: dev.home, upload: fast }));
    expect(u2.message).toMatch(/limits\.maxSessionBytes/);
  });

  it('uploads created at the same moment cannot pass a session limit together', async () => {
    // 20 creations of 150 kB at once against a 2 MB session limit: exactly 13 fit. The server commits upload rows in
    // groups, so it checks the limit again inside the commit; checking only before it would let more through.
    // The 20 requests go out on 20 open connections, one write each, so they reach the server within one commit window.
    const sid = sessionId();
    const tok = await dev.client.bearer();
    const { hostname: host, port } = new URL(srv.url);
    const b64 = (v: string) => Buffer.from(v).toString('base64');
    const socks = await Promise.all(Array.from({ length: 20 }, () => new Promise<Socket>((res, rej) => {
      const s = connect(Number(port), host, () => res(s));
      s.once('error', rej);
    })));
    const answers = socks.map((s) => new Promise<string>((res) => {
      let got = '';
      s.on('data', (d) => { got += d; if (got.includes('\r\n\r\n')) { res(got.split('\r\n')[0]!); s.destroy(); } });
      s.on('close', () => res(got.split('\r\n')[0] ?? ''));
    }));
    socks.forEach((s, i) => {
      const meta = `session ${b64(sid)},path ${b64(`media/face/seg-${String(i).padStart(5, '0')}.ts`)},sha256 ${b64(sha256Hex(Buffer.from(String(i))))}`;
      s.write(`POST /files/ HTTP/1.1\r\nHost: ${host}:${port}\r\nAuthorization: Bearer ${tok}\r\nTus-Resumable: 1.0.0\r\n` +
        `Upload-Length: 150000\r\nUpload-Metadata: ${meta}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    });
    const status = (await Promise.all(answers)).map((l) => l.split(' ')[1]);
    expect(status.filter((c) => c === '201')).toHaveLength(13);
    expect(status.filter((c) => c === '413')).toHaveLength(7);
    expect(srv.db.sessionBytes(sid)).toEqual({ bytes: 13 * 150_000, count: 13 });
  });

  it('a device cannot read evidence back, through the API or the upload endpoint', async () => {
    const tok = await dev.client.bearer();
    const auth = { Authorization: `Bearer ${tok}`, 'Tus-Resumable': '1.0.0' };
    const list = await request({ method: 'GET', url: `${srv.url}/api/v1/sessions`, headers: auth, stallMs: 5000 });
    expect(list.status).toBe(403);
    expect(JSON.parse(list.body.toString()).error.code).toBe('DEVICE_CANNOT_READ');
    const any = srv.db.filesOf(srv.db.listSessions({ limit: 1, offset: 0 })[0]!.id)[0]!;
    const get = await request({ method: 'GET', url: `${srv.url}/files/${any.upload_id}`, headers: auth, stallMs: 5000 });
    expect(get.status).toBe(405);
    const del = await request({ method: 'DELETE', url: `${srv.url}/files/${any.upload_id}`, headers: auth, stallMs: 5000 });
    expect(del.status).toBe(403);
  });
});
