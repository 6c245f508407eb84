import { afterAll, describe, expect, it, vi } from 'vitest';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../src/main/core/canonical.js';
import { listFiles } from '../../src/main/evidence/hash.js';
import { INLINE_FILE_MAX, INLINE_TOTAL_MAX, checkReceipt, type InlineFile } from '../../src/main/server/protocol.js';
import { uploadBundle } from '../../src/main/upload/bundle.js';
import { ServerClient, loadEnrolment } from '../../src/main/upload/client.js';
import { makeBundle, serverWithDevice, sessionId } from './helpers.js';

async function refusal(p: Promise<unknown>): Promise<{ code: string; status?: number; message: string }> {
  try { await p; } catch (e) {
    return { code: (e as { code?: string }).code ?? 'none', status: (e as { status?: number }).status, message: (e as Error).message };
  }
  throw new Error('expected a refusal, got success');
}

const inlineOf = (path: string, bytes: Buffer): InlineFile => ({ path, sha256: sha256Hex(bytes), size: bytes.length, data: bytes.toString('base64') });

describe('small files travel inside the completion request', () => {
  const t = serverWithDevice();
  afterAll(() => vi.restoreAllMocks());

  it('one completion carries the log, manifest, signature and key; big segments still go through tus; the copy is byte-identical and a repeat changes nothing', async () => {
    const big = INLINE_FILE_MAX + 5_000;
    let n = 0;
    const b = await makeBundle(t.dev.home.bundles, t.dev.key, { sources: ['face', 'room'], segments: 2, segBytes: () => (n++ === 0 ? big : 30_000) });
    const created = vi.spyOn(ServerClient.prototype, 'create');
    const completed = vi.spyOn(ServerClient.prototype, 'complete');
    try {
      const r = await uploadBundle(b.dir, t.srv.url, { home: t.dev.home, upload: { keepDaysAfterReceipt: -1 } });
      const { files } = await listFiles(b.dir);
      // Only the one segment over the limit was a tus upload; everything else came with the single completion.
      expect(created.mock.calls.map((c) => c[1])).toEqual(['media/face/seg-00000.ts']);
      expect(completed).toHaveBeenCalledTimes(1);
      const sent = (completed.mock.calls[0]![2] ?? []).map((f) => f.path).sort();
      expect(sent).toEqual(files.filter((f) => f !== 'media/face/seg-00000.ts'));
      expect(sent).toEqual(expect.arrayContaining(['events.ndjson', 'manifest.json', 'manifest.sig.json', 'device.pub', 'session.json']));
      for (const f of files) expect(readFileSync(join(t.data, 'bundles', b.id, f)).equals(readFileSync(join(b.dir, f))), f).toBe(true);
      expect(checkReceipt(r.receipt, loadEnrolment(t.dev.home).serverKeyPem, { sessionId: b.id }).ok).toBe(true);

      // The device lost the answer and asks again with the same files: same receipt, no new rows.
      const rows = t.srv.db.filesOf(b.id).length;
      const again = await t.dev.client.complete(b.id, undefined, completed.mock.calls[0]![2]);
      expect(again.status).toBe('verified');
      expect(again.inline).toBe(sent.length);
      expect(again.status === 'verified' && again.receipt).toEqual(r.receipt);
      expect(t.srv.db.filesOf(b.id).length).toBe(rows);
    } finally {
      created.mockRestore();
      completed.mockRestore();
    }
  });

  it('an upload of a small file that stopped half-way is finished by the inline copy: one row, byte-identical', async () => {
    const b = await makeBundle(t.dev.home.bundles, t.dev.key, { sources: ['face'], segments: 1, segBytes: 40_000 });
    const file = join(b.dir, 'media/face/seg-00000.ts');
    const bytes = readFileSync(file);
    const half = Math.floor(bytes.length / 2);
    const c = await t.dev.client.create(b.id, 'media/face/seg-00000.ts', sha256Hex(bytes), bytes.length, undefined, { file, end: half });
    expect(c.offset).toBe(half);
    const r = await uploadBundle(b.dir, t.srv.url, { home: t.dev.home, upload: { keepDaysAfterReceipt: -1 } });
    expect(r.payload.files.find((f) => f.path === 'media/face/seg-00000.ts')?.sha256).toBe(sha256Hex(bytes));
    expect(readFileSync(join(t.data, 'bundles', b.id, 'media/face/seg-00000.ts')).equals(bytes)).toBe(true);
    expect(t.srv.db.filesOf(b.id).filter((f) => f.path === 'media/face/seg-00000.ts')).toHaveLength(1);
  });

  it('bad inline files are refused with the problem named, and nothing of them is kept as evidence', async () => {
    const sid = sessionId();
    const ok = Buffer.from('{"a":1}\n');
    const cases: [InlineFile[], string, number][] = [
      [[inlineOf('../../etc/passwd', ok)], 'BAD_PATH', 400],
      [[{ ...inlineOf('session.json', ok), size: ok.length + 1 }], 'BAD_INLINE_FILE', 400],
      [[{ ...inlineOf('session.json', ok), data: '***' }], 'BAD_INLINE_FILE', 400],
      [[inlineOf('media/face/big.ts', Buffer.alloc(INLINE_FILE_MAX + 1))], 'INLINE_TOO_LARGE', 413],
      [[...Array.from({ length: 4 }, (_, i) => inlineOf(`media/face/s${i}.ts`, Buffer.alloc(INLINE_TOTAL_MAX / 4, i))), inlineOf('session.json', ok)], 'INLINE_TOO_LARGE', 413],
    ];
    for (const [files, code, status] of cases) {
      const e = await refusal(t.dev.client.complete(sid, undefined, files));
      expect(e.code, code).toBe(code);
      expect(e.status).toBe(status);
    }
    expect(t.srv.db.session(sid)).toBeUndefined();
    // Bytes that do not match their declared hash are kept aside (as a tus upload's would be), not stored as evidence.
    const lie = { ...inlineOf('session.json', ok), sha256: 'f'.repeat(64) };
    const e = await refusal(t.dev.client.complete(sid, undefined, [lie]));
    expect(e.code).toBe('CHECKSUM_MISMATCH');
    expect(t.srv.db.filesOf(sid).filter((f) => f.state === 'stored')).toEqual([]);
    expect(t.srv.db.rejectedUploads(sid)).toHaveLength(1);
  });

  it('a server that ignores inline files (an older version) still gets them: the client uploads them and asks again', async () => {
    // A proxy that makes the server look like one without inline files: it drops them from the completion request
    // and the "inline" count from the answer.
    const target = new URL(t.srv.url);
    let completions = 0;
    const old: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body = Buffer.concat(chunks);
        const isComplete = req.method === 'POST' && /\/complete$/.test(req.url ?? '');
        if (isComplete) { completions++; body = Buffer.from('{}'); }
        const headers = { ...req.headers, 'content-length': String(body.length), host: target.host };
        const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (ur) => {
          const out: Buffer[] = [];
          ur.on('data', (c: Buffer) => out.push(c));
          ur.on('end', () => {
            let data = Buffer.concat(out);
            if (isComplete) { const j = JSON.parse(data.toString('utf8')) as Record<string, unknown>; delete j.inline; data = Buffer.from(JSON.stringify(j)); }
            res.writeHead(ur.statusCode ?? 502, { ...ur.headers, 'content-length': String(data.length) });
            res.end(data);
          });
        });
        up.end(body);
      });
    });
    await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(old.address() as { port: number }).port}`;
      // The enrolment names the server URL: pin this one to the proxy for the test.
      const enr = loadEnrolment(t.dev.home);
      const { saveEnrolment } = await import('../../src/main/upload/client.js');
      saveEnrolment(t.dev.home, { ...enr, server: url });
      const b = await makeBundle(t.dev.home.bundles, t.dev.key, { sources: ['face'], segments: 2 });
      const r = await uploadBundle(b.dir, url, { home: t.dev.home, upload: { keepDaysAfterReceipt: -1 } });
      expect(completions).toBe(2);
      expect(t.srv.db.session(b.id)?.status).toBe('verified');
      const { files } = await listFiles(b.dir);
      expect(r.payload.files.map((f) => f.path).sort()).toEqual(files);
      for (const f of files) expect(statSync(join(t.data, 'bundles', b.id, f)).size).toBe(statSync(join(b.dir, f)).size);
      saveEnrolment(t.dev.home, enr);
    } finally {
      await new Promise((r) => old.close(r));
    }
  });
});
