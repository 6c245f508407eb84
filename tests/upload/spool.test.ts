import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureHome } from '../../src/main/core/home.js';
import { uploadBundle } from '../../src/main/upload/bundle.js';
import { ServerClient } from '../../src/main/upload/client.js';
import { INLINE_FILE_MAX } from '../../src/main/server/protocol.js';
import {
  COMPACT_MIN_LINES, JOURNAL_FILE, STALE_CHECK_EVERY, SessionJournal, readSpoolDir, replayJournal, type SpoolItem,
} from '../../src/main/upload/journal.js';
import { UploadQueue, readSpool, spoolItemId } from '../../src/main/upload/spool.js';
import { cleanup, makeBundle, openSession, server, serverWithDevice, sessionId, tempDir } from '../server/helpers.js';
import { cutOffMidUpload, deviceBehindProxy, resumeInNewQueue } from './faultproxy.js';

const CHILD = fileURLToPath(new URL('./spool-child.ts', import.meta.url));
const children: ChildProcess[] = [];
afterAll(() => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });

function record(session: string, over: Partial<SpoolItem> = {}): SpoolItem {
  const path = over.path ?? 'media/face/seg-00000.ts';
  const sha256 = over.sha256 ?? 'a'.repeat(64);
  return {
    v: 1, id: spoolItemId('http://127.0.0.1:1', session, path, sha256), server: 'http://127.0.0.1:1', session, path, file: `/x/${path}`,
    sha256, size: 1000, uploadUrl: null, offset: 0, state: 'pending', attempts: 0, checksumRetries: 0, lastError: null,
    createdAt: 1, storedAt: null, ...over,
  };
}
const line = (i: SpoolItem) => JSON.stringify(i) + '\n';
const journalLines = (dir: string) => readFileSync(join(dir, JOURNAL_FILE), 'utf8').split('\n').filter(Boolean).length;

/** The server's stored copy of an uploaded file. */
function storedBytes(srv: Awaited<ReturnType<typeof server>>, data: string, session: string, path: string): Buffer {
  const row = srv.db.filesOf(session).find((r) => r.path === path);
  expect(row?.state).toBe('stored');
  return readFileSync(join(data, 'uploads', row!.upload_id));
}

describe('journal replay', () => {
  it('the newest line per item wins; garbage, foreign, invalid and torn lines are skipped without throwing', () => {
    const s = sessionId();
    const a0 = record(s);
    const a1 = { ...a0, uploadUrl: 'http://127.0.0.1:1/files/abc', offset: 500 };
    const a2 = { ...a1, state: 'stored' as const, offset: 1000, storedAt: 5 };
    const b = record(s, { path: 'media/room/seg-00000.ts' });
    const text = [
      line(a0), 'not json at all\n', line(b), '{}\n', line({ ...b, session: 'another-session' }), line(a1),
      JSON.stringify({ ...b, v: 2 }) + '\n', JSON.stringify({ ...b, size: -1 }) + '\n', JSON.stringify({ ...b, sha256: 'zz' }) + '\n',
      '[1,2,3]\n', 'null\n', line(a2), '{"v":1,"id":"', // torn: a crash in the middle of the last write
    ].join('');
    const items = new Map<string, SpoolItem>();
    const r = replayJournal(text, s, items);
    expect(r.torn).toBe(true);
    expect(r.lines).toBe(12);
    expect(r.skipped).toBe(8);
    expect([...items.keys()].sort()).toEqual([a0.id, b.id].sort());
    expect(items.get(a0.id)).toMatchObject({ state: 'stored', offset: 1000, uploadUrl: a1.uploadUrl });
    expect(items.get(b.id)).toMatchObject({ state: 'pending', offset: 0 });
  });

  it('journal lines win over records of the earlier one-file-per-record layout; broken old records are skipped', () => {
    const root = tempDir('spool');
    try {
      const s = sessionId();
      const dir = join(root, s);
      const a = record(s);
      const c = record(s, { path: 'media/screen/seg-00000.ts', uploadUrl: 'http://127.0.0.1:1/files/c', offset: 300 });
      const b = record(s, { path: 'media/room/seg-00000.ts' });
      // The earlier layout: <id>.json, one per file; one of them half-written, one named after another record.
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${a.id}.json`), JSON.stringify(a));
      writeFileSync(join(dir, `${c.id}.json`), JSON.stringify(c));
      writeFileSync(join(dir, `${b.id}.json`), '{"v":1,"id":"');
      writeFileSync(join(dir, `${'f'.repeat(32)}.json`), JSON.stringify(b));
      writeFileSync(join(dir, JOURNAL_FILE), line({ ...a, state: 'stored', offset: 1000 }));
      const r = readSpoolDir(dir, s);
      expect(r.legacy).toBe(2);
      expect(r.items.size).toBe(2);
      expect(r.items.get(a.id)?.state).toBe('stored');
      expect(r.items.get(c.id)).toMatchObject({ state: 'pending', offset: 300 });
      expect(readSpoolDir(join(root, 'missing'), s).items.size).toBe(0);
    } finally { cleanup(root); }
  });
});

describe('journal writer', () => {
  it('a crash mid-write leaves a torn line: the next writer ends it, so its own records stay readable', async () => {
    const root = tempDir('spool');
    try {
      const s = sessionId();
      const dir = join(root, s);
      const a = record(s);
      const j1 = new SessionJournal(dir, s, readSpoolDir(dir, s), () => []);
      j1.append(a, false);
      await j1.close();
      appendFileSync(join(dir, JOURNAL_FILE), line({ ...a, state: 'stored' }).slice(0, 40)); // torn
      const j2 = new SessionJournal(dir, s, readSpoolDir(dir, s), () => []);
      expect(j2.known.get(a.id)?.state).toBe('pending');
      j2.append({ ...a, offset: 700, uploadUrl: 'http://127.0.0.1:1/files/a' }, true);
      await j2.close();
      const r = readSpoolDir(dir, s);
      expect(r.torn).toBe(false);
      expect(r.skipped).toBe(1);
      expect(r.items.get(a.id)).toMatchObject({ offset: 700, state: 'pending' });
    } finally { cleanup(root); }
  });

  it('a retry storm compacts the journal; a second writer whose file was replaced writes its records again', async () => {
    const root = tempDir('spool');
    try {
      const s = sessionId();
      const dir = join(root, s);
      const a = record(s);
      let b = record(s, { path: 'media/room/seg-00000.ts' });
      const ja = new SessionJournal(dir, s, readSpoolDir(dir, s), () => []);
      const jb = new SessionJournal(dir, s, readSpoolDir(dir, s), () => [b]); // "another process"
      ja.append(a, false);
      jb.append(b, false);
      for (let i = 1; i <= COMPACT_MIN_LINES + 50; i++) ja.append({ ...a, attempts: i, lastError: `try ${i}` }, false);
      await ja.flushed();
      // Compacted once at COMPACT_MIN_LINES lines, then 50 more appended: far fewer lines than appends.
      expect(journalLines(dir)).toBeLessThan(60);
      expect(readSpoolDir(dir, s).items.get(a.id)?.attempts).toBe(COMPACT_MIN_LINES + 50);
      // The other writer's descriptor points to the replaced file: its writes are lost until it notices …
      b = { ...b, state: 'stored', offset: b.size, storedAt: 9 };
      jb.append(b, false);
      expect(readSpoolDir(dir, s).items.get(b.id)?.state).toBe('pending');
      // … which it does within STALE_CHECK_EVERY appends, writing its current records to the new file.
      for (let i = 0; i < STALE_CHECK_EVERY; i++) jb.append(b, false);
      expect(readSpoolDir(dir, s).items.get(b.id)?.state).toBe('stored');
      expect(readSpoolDir(dir, s).items.get(a.id)?.attempts).toBe(COMPACT_MIN_LINES + 50);
      await Promise.all([ja.close(), jb.close()]);
    } finally { cleanup(root); }
  });

  it('a queue retrying against a dead server keeps its journal bounded and its newest state', async () => {
    const root = tempDir('home');
    try {
      const home = ensureHome(root);
      const dead = net.createServer();
      await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
      const port = (dead.address() as net.AddressInfo).port;
      await new Promise((r) => dead.close(r));
      const { generateKeyPair } = await import('../../src/main/core/keys.js');
      const s = openSession(home.sessions);
      const seg = s.closeSegment('face', 1000);
      const q = new UploadQueue({ home, client: new ServerClient(`http://127.0.0.1:${port}`, generateKeyPair()), retryMinMs: 1, retryMaxMs: 1 });
      let retries = 0;
      const enough = new Promise<void>((r) => q.on('retry', () => { if (++retries === COMPACT_MIN_LINES + 60) r(); }));
      q.enqueue({ session: s.id, path: seg.file, file: join(s.dir, seg.file), sha256: seg.sha256, size: seg.size });
      q.start();
      await enough;
      await q.stop();
      s.log.close();
      const dir = join(home.spool, s.id);
      expect(journalLines(dir)).toBeLessThan(80);
      const [item] = readSpool(home, s.id);
      expect(item?.state).toBe('pending');
      expect(item?.attempts).toBeGreaterThanOrEqual(COMPACT_MIN_LINES + 60);
      expect(item?.lastError).toMatch(/ECONNREFUSED|refused/i);
    } finally { cleanup(root); }
  });
});

describe('resume after a crash', () => {
  it('kill -9 of the uploading process mid-file, plus a torn last line: the next queue resumes from the server offset; bytes identical', async () => {
    const { data, srv, proxy, url, dev, close } = await deviceBehindProxy(1_000_000);
    try {
      const s = openSession(dev.home.sessions);
      const seg = s.closeSegment('screen', 2_500_000);
      const file = join(s.dir, seg.file);
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dev.home.root, url, s.id, seg.file, file, seg.sha256, String(seg.size), String(128 * 1024)], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let err = '';
      child.stderr!.on('data', (d) => { err += d; });
      const acked = () => readSpool(dev.home, s.id).find((i) => i.offset > 0);
      const deadline = Date.now() + 60_000;
      while (!acked() && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 25));
      const before = acked();
      expect(before, err).toBeDefined();
      child.kill('SIGKILL');
      await new Promise((r) => child.once('close', r));
      expect(before!.state).toBe('pending');
      expect(before!.offset).toBeLessThan(seg.size);
      // The crash may also have cut a line: a torn record at the end of the journal.
      appendFileSync(join(dev.home.spool, s.id, JOURNAL_FILE), line({ ...before!, state: 'stored' }).slice(0, 57));

      proxy.rates.bytesPerSecond = 0;
      const { resumed, sent: resent } = await resumeInNewQueue(dev, url, proxy, s.id);
      expect(resumed).toBe(1);
      expect(resent).toBeLessThan(seg.size - before!.offset + 400_000); // from the server's offset, not from 0
      expect(resent).toBeGreaterThan(0);
      expect(storedBytes(srv, data, s.id, seg.file).equals(readFileSync(file))).toBe(true);
      // The records written after the torn line are readable: the file is known as stored.
      const after = readSpoolDir(join(dev.home.spool, s.id), s.id);
      expect(after.items.get(before!.id)?.state).toBe('stored');
      expect(after.torn).toBe(false);
      s.log.close();
    } finally {
      await close();
    }
  }, 120_000);

  it('records of the earlier <id>.json layout (a machine upgraded mid-exam) and a journal full of garbage are resumed', async () => {
    const { data, srv, proxy, url, dev, close } = await deviceBehindProxy(4 * 1024 * 1024);
    try {
      const { s, seg } = await cutOffMidUpload(dev, url, 'face');
      const [rec] = readSpool(dev.home, s.id);
      expect(rec?.offset).toBeGreaterThan(0);
      // Rewrite the spool as the earlier version left it: one <id>.json per file, no journal …
      const dir = join(dev.home.spool, s.id);
      rmSync(join(dir, JOURNAL_FILE));
      writeFileSync(join(dir, `${rec!.id}.json`), JSON.stringify(rec));
      // … plus a second, unfinished file known only to the old layout …
      const seg2 = s.closeSegment('face', 300_000);
      const id2 = spoolItemId(new ServerClient(url, dev.key).server, s.id, seg2.file, seg2.sha256);
      writeFileSync(join(dir, `${id2}.json`), JSON.stringify({ ...rec!, id: id2, path: seg2.file, file: join(s.dir, seg2.file), sha256: seg2.sha256, size: seg2.size, uploadUrl: null, offset: 0 }));
      // … and a journal holding nothing but garbage.
      writeFileSync(join(dir, JOURNAL_FILE), 'garbage\n{"v":1}\n\u0000\u0000\n{"v":1,"id":"');
      const { resumed, sent } = await resumeInNewQueue(dev, url, proxy, s.id);
      expect(resumed).toBe(2);
      expect(sent).toBeLessThan(seg.size - 300_000 + seg2.size + 100_000);
      expect(storedBytes(srv, data, s.id, seg.file).equals(readFileSync(join(s.dir, seg.file)))).toBe(true);
      expect(storedBytes(srv, data, s.id, seg2.file).equals(readFileSync(join(s.dir, seg2.file)))).toBe(true);
      expect(readSpool(dev.home, s.id).map((i) => i.state)).toEqual(['stored', 'stored']);
      s.log.close();
    } finally {
      await close();
    }
  }, 120_000);
});

describe('forgetting a session', () => {
  const t = serverWithDevice();

  it('the journal stays until the signed receipt, then the session folder leaves the spool', async () => {
    // Segments over the inline limit go through the queue (small files travel inside the completion).
    const b = await makeBundle(t.dev.home.bundles, t.dev.key, { sources: ['face'], segments: 2, segBytes: INLINE_FILE_MAX + 1000 });
    const q = new UploadQueue({ home: t.dev.home, client: new ServerClient(t.srv.url, t.dev.key) });
    let journalAtReceipt = false;
    const origForget = q.forgetSession.bind(q);
    q.forgetSession = async (sid: string) => {
      journalAtReceipt = existsSync(join(t.dev.home.spool, sid, JOURNAL_FILE)) && existsSync(join(t.dev.home.root, 'receipts', `${sid}.receipt.json`));
      return origForget(sid);
    };
    const r = await uploadBundle(b.dir, t.srv.url, { home: t.dev.home, queue: q, upload: { keepDaysAfterReceipt: -1 } });
    await q.stop();
    expect(r.sessionId).toBe(b.id);
    expect(journalAtReceipt).toBe(true);
    expect(existsSync(join(t.dev.home.spool, b.id))).toBe(false);
    expect(readSpool(t.dev.home, b.id)).toEqual([]);
    const deadline = Date.now() + 10_000;
    while (readdirSync(t.dev.home.spool).some((d) => d.includes(b.id)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(readdirSync(t.dev.home.spool).filter((d) => d.includes(b.id))).toEqual([]);
  });
});
