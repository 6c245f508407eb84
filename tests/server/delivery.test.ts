import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sha256Hex } from '../../src/main/core/canonical.js';
import { checkReceipt } from '../../src/main/server/protocol.js';
import { listFiles } from '../../src/main/evidence/hash.js';
import { uploadBundle, receiptPathFor } from '../../src/main/upload/bundle.js';
import { loadEnrolment } from '../../src/main/upload/client.js';
import { ARRIVAL_HASH_MAX, FileEvidenceStore } from '../../src/main/server/storage.js';
import { makeBundle, serverWithDevice } from './helpers.js';

describe('evidence delivery end to end (loopback)', () => {
  const t = serverWithDevice();

  it('uploads a sealed bundle, gets a receipt that verifies, and the server copy is byte-identical', async () => {
    const b = await makeBundle(t.dev.home.bundles, t.dev.key, { segments: 2, segBytes: 50_000 });
    const progress: number[] = [];
    const r = await uploadBundle(b.dir, t.srv.url, { home: t.dev.home, upload: { keepDaysAfterReceipt: -1 }, onProgress: (p) => progress.push(p.bytesDone) });
    expect(r.receiptPath).toBe(receiptPathFor(t.dev.home, b.id));
    const enr = loadEnrolment(t.dev.home);
    const chk = checkReceipt(JSON.parse(readFileSync(r.receiptPath, 'utf8')), enr.serverKeyPem, { sessionId: b.id });
    expect(chk.ok).toBe(true);
    // Every local file is listed in the receipt and byte-identical on the server.
    const { files } = await listFiles(b.dir);
    expect(r.payload.files.map((f) => f.path).sort()).toEqual(files);
    for (const f of files) {
      expect(readFileSync(join(t.data, 'bundles', b.id, f)).equals(readFileSync(join(b.dir, f)))).toBe(true);
    }
    expect(progress.at(-1)).toBe(r.payload.totalBytes);
    expect(t.srv.db.session(b.id)?.status).toBe('verified');
    // Retention -1: nothing deleted; the spool forgot the session only after the receipt.
    expect(existsSync(b.dir)).toBe(true);
    expect(existsSync(join(t.dev.home.spool, b.id))).toBe(false);
  });

  it('re-uploading the same bundle is idempotent: same receipt, no duplicate files', async () => {
    const b = await makeBundle(t.dev.home.bundles, t.dev.key, { segments: 1 });
    const r1 = await uploadBundle(b.dir, t.srv.url, { home: t.dev.home, upload: { keepDaysAfterReceipt: -1 } });
    const n1 = t.srv.db.filesOf(b.id).length;
    const uploads1 = readdirSync(join(t.data, 'uploads')).length;
    const r2 = await uploadBundle(b.dir, t.srv.url, { home: t.dev.home, upload: { keepDaysAfterReceipt: -1 } });
    expect(r2.receipt).toEqual(r1.receipt);
    expect(t.srv.db.filesOf(b.id).length).toBe(n1);
    expect(readdirSync(join(t.data, 'uploads')).length).toBe(uploads1);
  });

  it('deletes local evidence only after a valid receipt and per retention (0 days = at once)', async () => {
    const b = await makeBundle(t.dev.home.bundles, t.dev.key, { segments: 1 });
    const r = await uploadBundle(b.dir, t.srv.url, { home: t.dev.home, upload: { keepDaysAfterReceipt: 0 } });
    expect(r.deleted).toContain(b.dir);
    expect(existsSync(b.dir)).toBe(false);
    expect(existsSync(r.receiptPath)).toBe(true);
  });

  it('bytes that arrived corrupted are kept aside; sent again, the bundle is receipted with a warning, never silently', async () => {
    const b = await makeBundle(t.dev.home.bundles, t.dev.key, { sources: ['face'], segments: 1, segBytes: 40_000 });
    const path = 'media/face/seg-00000.ts';
    const good = readFileSync(join(b.dir, path));
    const bad = join(t.root, 'corrupted.ts');
    writeFileSync(bad, randomBytes(good.length));
    // A transfer that went wrong: the declared hash is the file's, the bytes are not.
    await expect(t.dev.client.create(b.id, path, sha256Hex(good), good.length, undefined, { file: bad, end: good.length }))
      .rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    const r = await uploadBundle(b.dir, t.srv.url, { home: t.dev.home, upload: { keepDaysAfterReceipt: -1 } });
    expect(t.srv.db.session(b.id)?.status).toBe('verified');
    expect(r.payload.files.find((f) => f.path === path)?.sha256).toBe(sha256Hex(good));
    const warnings = JSON.parse(t.srv.db.session(b.id)!.warnings ?? '[]') as string[];
    expect(warnings.some((w) => w.includes(`an upload of ${path} arrived with bytes that differ`) && w.includes('sent again'))).toBe(true);
    const [kept] = t.srv.db.rejectedUploads(b.id) as { kept_as: string }[];
    expect(readFileSync(kept!.kept_as).equals(readFileSync(bad))).toBe(true);

    // Without a good copy the same record is a reason: the bundle is quarantined.
    const b2 = await makeBundle(t.dev.home.bundles, t.dev.key, { sources: ['face'], segments: 1, segBytes: 40_000 });
    const good2 = readFileSync(join(b2.dir, path));
    await expect(t.dev.client.create(b2.id, path, sha256Hex(good2), good2.length, undefined, { file: bad, end: good2.length }))
      .rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    const rest = (await listFiles(b2.dir)).files.filter((f) => f !== path).map((f) => {
      const bytes = readFileSync(join(b2.dir, f));
      return { path: f, sha256: sha256Hex(bytes), size: bytes.length, data: bytes.toString('base64') };
    });
    const res = await t.dev.client.complete(b2.id, undefined, rest);
    expect(res.status).toBe('quarantined');
    expect(res.status === 'quarantined' && res.reasons.join('\n')).toMatch(/arrived with bytes that differ from its declared hash/);
  });

  it('a segment bigger than ARRIVAL_HASH_MAX is hashed from disk by the hash worker: good bytes stored, bad ones kept aside', async () => {
    const store = t.srv.store as FileEvidenceStore;
    const before = store.hashWorker.counts.worker;
    const b = await makeBundle(t.dev.home.bundles, t.dev.key, { sources: ['face'], segments: 2, segBytes: 4 * ARRIVAL_HASH_MAX + 123 });
    const path = 'media/face/seg-00000.ts';
    const good = readFileSync(join(b.dir, path));
    expect(good.length).toBeGreaterThan(ARRIVAL_HASH_MAX);
    const bad = join(t.root, 'corrupted-big.ts');
    const flipped = Buffer.from(good);
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 1) ^ 0xff, flipped.length - 1); // the last byte: all of it must be hashed
    writeFileSync(bad, flipped);
    await expect(t.dev.client.create(b.id, path, sha256Hex(good), good.length, undefined, { file: bad, end: good.length }))
      .rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(store.hashWorker.counts.worker).toBe(before + 1);
    const r = await uploadBundle(b.dir, t.srv.url, { home: t.dev.home, upload: { keepDaysAfterReceipt: -1 } });
    expect(t.srv.db.session(b.id)?.status).toBe('verified');
    expect(store.hashWorker.counts.worker).toBeGreaterThanOrEqual(before + 3); // the two segments, sent again
    for (const f of r.payload.files) {
      const row = t.srv.db.filesOf(b.id).find((x) => x.path === f.path && x.state === 'stored');
      expect(row?.sha256).toBe(f.sha256);
      expect(sha256Hex(readFileSync(join(t.data, 'uploads', row!.upload_id)))).toBe(f.sha256);
    }
    const [kept] = t.srv.db.rejectedUploads(b.id) as { kept_as: string }[];
    expect(readFileSync(kept!.kept_as).equals(flipped)).toBe(true);
  });
});
