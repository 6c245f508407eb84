import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addAccount, type EvidenceServer } from '../../src/main/server/app.js';
import { uploadBundle } from '../../src/main/upload/bundle.js';
import { request } from '../../src/main/upload/http.js';
import { ServerClient } from '../../src/main/upload/client.js';
import { hashPassword, verifyPassword } from '../../src/main/server/secrets.js';
import { cleanup, enrolledDevice, makeBundle, server, tempDir, type Device } from './helpers.js';

async function call(url: string, method: string, token: string | null, body?: unknown, headers: Record<string, string> = {}) {
  const res = await request({
    method, url, stallMs: 5000,
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? Buffer.from(JSON.stringify(body)) : undefined,
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- API answers are checked field by field below
  let json: any;
  try { json = JSON.parse(res.body.toString('utf8')); } catch { json = undefined; }
  return { status: res.status, json, body: res.body, headers: res.headers };
}

describe('review API: accounts, roles, evidence reads with ranges, audit log', () => {
  let data: string;
  let root: string;
  let srv: EvidenceServer;
  let dev: Device;
  let sid: string;
  let bundleDir: string;
  let api: string;

  beforeAll(async () => {
    data = tempDir('srv');
    root = tempDir('home');
    srv = await server(data);
    api = `${srv.url}/api/v1`;
    dev = await enrolledDevice(srv, root);
    await addAccount(srv.db, 'aigul', 'correct horse battery', 'proctor');
    await addAccount(srv.db, 'admin', 'admin password 123', 'admin');
    const b = await makeBundle(dev.home.bundles, dev.key, { segments: 2, segBytes: 30_000, episodes: 2 });
    sid = b.id;
    bundleDir = b.dir;
    await uploadBundle(b.dir, srv.url, { home: dev.home, upload: { keepDaysAfterReceipt: -1 } });
  });
  afterAll(async () => {
    await srv.close();
    cleanup(data, root);
  });

  it('stores passwords as salted scrypt hashes', async () => {
    const h = await hashPassword('s3cret-pass');
    expect(h).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(h).not.toContain('s3cret');
    expect(await verifyPassword('s3cret-pass', h)).toBe(true);
    expect(await verifyPassword('s3cret-pasS', h)).toBe(false);
    expect(srv.db.account('aigul')!.password_hash).not.toContain('horse');
  });

  it('logs in with the right password only', async () => {
    expect((await call(`${api}/login`, 'POST', null, { username: 'aigul', password: 'wrong password' })).status).toBe(401);
    expect((await call(`${api}/login`, 'POST', null, { username: 'nobody', password: 'whatever123' })).json.error.code).toBe('BAD_LOGIN');
    const ok = await call(`${api}/login`, 'POST', null, { username: 'aigul', password: 'correct horse battery' });
    expect(ok.status).toBe(200);
    expect(ok.json.role).toBe('proctor');
    expect(ok.json.token).toMatch(/^kza_/);
  });

  it('lets a proctor read sessions, events, episodes and byte ranges of video, and audits every read', async () => {
    const { json: { token } } = await call(`${api}/login`, 'POST', null, { username: 'aigul', password: 'correct horse battery' });
    expect((await call(`${api}/sessions`, 'GET', null)).status).toBe(401);
    const list = await call(`${api}/sessions?status=verified`, 'GET', token);
    expect(list.json.sessions.map((s: { id: string }) => s.id)).toContain(sid);
    const one = await call(`${api}/sessions/${sid}`, 'GET', token);
    expect(one.json.status).toBe('verified');
    expect(one.json.studentId).toBe('stu-001');
    expect(one.json.episodes).toBe(2);
    expect(one.json.files.length).toBeGreaterThan(6);
    const eps = await call(`${api}/sessions/${sid}/episodes`, 'GET', token);
    expect(eps.json.events.map((e: { type: string }) => e.type)).toEqual(['episode.closed', 'episode.closed']);
    const segs = await call(`${api}/sessions/${sid}/events?type=segment.&limit=2`, 'GET', token);
    expect(segs.json.events).toHaveLength(2);
    expect(segs.json.events[0].data.file).toBe('media/face/seg-00000.ts');

    const local = readFileSync(join(bundleDir, 'media/face/seg-00001.ts'));
    const part = await call(`${api}/sessions/${sid}/files/media/face/seg-00001.ts`, 'GET', token, undefined, { Range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers['content-type']).toBe('video/mp2t');
    expect(part.headers['content-range']).toBe(`bytes 100-199/${local.length}`);
    expect(part.body.equals(local.subarray(100, 200))).toBe(true);
    const tail = await call(`${api}/sessions/${sid}/files/media/face/seg-00001.ts`, 'GET', token, undefined, { Range: 'bytes=-10' });
    expect(tail.body.equals(local.subarray(local.length - 10))).toBe(true);
    const whole = await call(`${api}/sessions/${sid}/files/media/face/seg-00001.ts`, 'GET', token);
    expect(whole.status).toBe(200);
    expect(whole.body.equals(local)).toBe(true);
    expect((await call(`${api}/sessions/${sid}/files/media/face/seg-00001.ts`, 'GET', token, undefined, { Range: `bytes=${local.length}-` })).status).toBe(416);
    expect((await call(`${api}/sessions/${sid}/files/media/..%2F..%2Fserver.db`, 'GET', token)).status).toBe(400);

    // Proctors cannot read the audit log or administer; admins can, and see each read above.
    expect((await call(`${api}/audit`, 'GET', token)).status).toBe(403);
    const { json: { token: adminTok } } = await call(`${api}/login`, 'POST', null, { username: 'admin', password: 'admin password 123' });
    const audit = await call(`${api}/audit?session=${sid}`, 'GET', adminTok);
    const actions = audit.json.audit.map((a: { actor: string; action: string; path: string | null; detail: string | null }) => `${a.actor}:${a.action}:${a.path ?? ''}:${a.detail ?? ''}`);
    expect(actions).toContain('aigul:session.read::');
    expect(actions).toContain('aigul:episodes.read::{"type":"episode."}');
    expect(actions).toContain('aigul:file.read:media/face/seg-00001.ts:{"range":"100-199"}');
    expect(actions).toContain('aigul:file.read:media/face/seg-00001.ts:');
    expect(audit.json.audit.every((a: { ip: string }) => a.ip.includes('127.0.0.1'))).toBe(true);
  });

  it('admins issue enrolment tokens and revoke devices over the API; proctors cannot', async () => {
    const { json: { token } } = await call(`${api}/login`, 'POST', null, { username: 'aigul', password: 'correct horse battery' });
    expect((await call(`${api}/admin/enrolment-tokens`, 'POST', token, { lab: 'lab2' })).status).toBe(403);
    const { json: { token: adminTok } } = await call(`${api}/login`, 'POST', null, { username: 'admin', password: 'admin password 123' });
    const t = await call(`${api}/admin/enrolment-tokens`, 'POST', adminTok, { lab: 'lab2', machineId: 'lab2-pc07' });
    expect(t.json.token).toMatch(/^kze_/);
    const d2 = new ServerClient(srv.url, (await import('../../src/main/core/keys.js')).generateKeyPair());
    const e = await d2.enroll(t.json.token, 'ignored');
    expect(e.machineId).toBe('lab2-pc07');
    expect(e.lab).toBe('lab2');
    // One-time: the same token cannot enrol another key.
    const d3 = new ServerClient(srv.url, (await import('../../src/main/core/keys.js')).generateKeyPair());
    await expect(d3.enroll(t.json.token, 'x')).rejects.toMatchObject({ code: 'TOKEN_USED' });
    const rv = await call(`${api}/admin/devices/lab2-pc07/revoke`, 'POST', adminTok, { reason: 'machine retired' });
    expect(rv.json.revoked).toBe(1);
    await expect(d2.bearer()).rejects.toMatchObject({ code: 'DEVICE_REVOKED' });
  });
});
