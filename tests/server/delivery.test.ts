import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkReceipt } from '../../src/main/server/protocol.js';
import { listFiles } from '../../src/main/evidence/hash.js';
import { uploadBundle, receiptPathFor } from '../../src/main/upload/bundle.js';
import { loadEnrolment } from '../../src/main/upload/client.js';
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
});
