/**
 * The S3 storage path against a real S3-compatible server on loopback: s3rver (npm, pure JS, filesystem-backed),
 * reached over HTTP by the AWS SDK inside @tus/s3-store. A bundle goes up through `kuzet serve`'s S3 store, is
 * verified and receipted, and every object in the bucket is byte-identical to the device's file.
 *
 * s3rver 3.7.1 implements multipart uploads but not ListParts (GET <key>?uploadId=…), which @tus/s3-store calls to
 * learn an upload's offset; the test gives s3rver that one call, answered from the parts s3rver itself stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { listFiles } from '../../src/main/evidence/hash.js';
import type { EvidenceServer } from '../../src/main/server/app.js';
import { checkReceipt, uploadIdFor } from '../../src/main/server/protocol.js';
import { uploadBundle } from '../../src/main/upload/bundle.js';
import { loadEnrolment } from '../../src/main/upload/client.js';
import { cleanup, enrolledDevice, makeBundle, server, tempDir } from './helpers.js';

interface KoaCtx { method: string; path: string; query: Record<string, string | undefined>; status: number; type: string; body: unknown }
interface S3rverLike {
  middleware: ((ctx: KoaCtx, next: () => Promise<void>) => Promise<void>)[];
  store: { getResourcePath(bucket: string, key: string | undefined, resource: string): string };
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}

const BUCKET = 'kuzet-evidence';

/** ListParts for s3rver, from the part files it keeps under <bucket>/<uploads>/<uploadId>/<n> (+ <n>.md5). */
function listPartsFor(s3: S3rverLike) {
  return async (ctx: KoaCtx, next: () => Promise<void>) => {
    const uploadId = ctx.query.uploadId;
    if (ctx.method !== 'GET' || !uploadId || !/^[0-9a-f]+$/.test(uploadId)) return next();
    const [, bucket, ...keyParts] = ctx.path.split('/');
    const dir = join(s3.store.getResourcePath(bucket!, undefined, 'uploads'), uploadId);
    ctx.type = 'application/xml';
    if (!existsSync(dir)) {
      ctx.status = 404;
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message><UploadId>${uploadId}</UploadId></Error>`;
      return;
    }
    const parts = readdirSync(dir).filter((f) => /^\d+$/.test(f)).map(Number).sort((a, b) => a - b).map((n) => {
      const st = statSync(join(dir, String(n)));
      const md5 = readFileSync(join(dir, `${n}.md5`), 'utf8').trim();
      return `<Part><PartNumber>${n}</PartNumber><LastModified>${st.mtime.toISOString()}</LastModified><ETag>"${md5}"</ETag><Size>${st.size}</Size></Part>`;
    });
    ctx.status = 200;
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult><Bucket>${bucket}</Bucket><Key>${keyParts.join('/')}</Key><UploadId>${uploadId}</UploadId><IsTruncated>false</IsTruncated>${parts.join('')}</ListPartsResult>`;
  };
}

describe('S3-compatible store (s3rver on loopback)', () => {
  const dirs: string[] = [];
  let s3: S3rverLike | null = null;
  let endpoint = '';
  let srv: EvidenceServer | null = null;

  beforeAll(async () => {
    const s3dir = tempDir('s3rver');
    dirs.push(s3dir);
    const S3rver = createRequire(import.meta.url)('s3rver') as new (o: Record<string, unknown>) => S3rverLike;
    s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: s3dir, configureBuckets: [{ name: BUCKET }] });
    s3.middleware.unshift(listPartsFor(s3));
    const addr = await s3.run();
    endpoint = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    await srv?.close();
    await s3?.close();
    cleanup(...dirs);
  });

  it('uploads a bundle through @tus/s3-store, receipts it, and every object is byte-identical', async () => {
    const data = tempDir('s3-srv');
    const root = tempDir('s3-dev');
    dirs.push(data, root);
    srv = await server(data, {
      store: { kind: 's3', bucket: BUCKET, endpoint, region: 'us-east-1', forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', partSize: 5 * 1024 * 1024 },
    });
    expect(srv.store.kind).toBe('s3');
    const dev = await enrolledDevice(srv, root, { machineId: 'lab1-s3' });
    // Segments larger than a part (two multipart parts) and small ones; 1 MiB tus chunks make the large files go
    // up in several PATCH requests, each resuming the multipart upload (incomplete part, then ListParts) in S3.
    const sizes = [6_500_000, 30_000, 200_000];
    let k = 0;
    const b = await makeBundle(dev.home.bundles, dev.key, { sources: ['face', 'screen'], segments: 2, segBytes: () => sizes[k++ % sizes.length]! });
    const r = await uploadBundle(b.dir, srv.url, { home: dev.home, upload: { keepDaysAfterReceipt: -1, chunkBytes: 1024 * 1024 } });

    const chk = checkReceipt(r.receipt, loadEnrolment(dev.home).serverKeyPem, { sessionId: b.id });
    expect(chk.ok).toBe(true);
    const { files } = await listFiles(b.dir);
    expect(r.payload.files.map((f) => f.path).sort()).toEqual(files);

    // Every object in the bucket (keyed by upload id) holds exactly the device's bytes.
    for (const f of r.payload.files) {
      const body = await (await srv.store.read(uploadIdFor(b.id, f.path, f.sha256))).toArray();
      const remote = Buffer.concat(body as Buffer[]);
      expect(remote.equals(readFileSync(join(b.dir, f.path))), `${f.path} differs in the bucket`).toBe(true);
    }
    // Nothing of the bundle was kept in the data dir: bytes live in the bucket, verification copies are gone.
    expect(existsSync(join(data, 'uploads'))).toBe(false);
    expect(readdirSync(join(data, 'tmp'))).toEqual([]);

    // The review API reads a byte range of a video straight from the bucket.
    const seg = r.payload.files.find((f) => f.size === 6_500_000)!;
    const stream = await srv.store.read(uploadIdFor(b.id, seg.path, seg.sha256), { start: 1000, end: 1999 });
    const range = Buffer.concat((await stream.toArray()) as Buffer[]);
    expect(range.equals(readFileSync(join(b.dir, seg.path)).subarray(1000, 2000))).toBe(true);

    // Re-uploading the same bundle is idempotent: the same receipt.
    const again = await uploadBundle(b.dir, srv.url, { home: dev.home, upload: { keepDaysAfterReceipt: -1 } });
    expect(again.payload.manifestSha256).toBe(r.payload.manifestSha256);
    expect(again.receipt.signatures[0]!.sig).toBe(r.receipt.signatures[0]!.sig);
  });

  it('quarantines an upload whose bytes differ from the declared hash, keeping the bad bytes in the bucket', async () => {
    expect(srv).not.toBeNull();
    const root = tempDir('s3-dev2');
    dirs.push(root);
    const dev = await enrolledDevice(srv!, root, { machineId: 'lab1-s3b' });
    const good = randomBytes(70_000);
    const sid = `20260101T000000Z-s3q${randomBytes(3).toString('hex')}`;
    const { sha256Hex } = await import('../../src/main/core/canonical.js');
    const declared = sha256Hex(good);
    const c = await dev.client.create(sid, 'media/face/seg-00000.ts', declared, good.length);
    expect(c.state).toBe('created');
    const badFile = join(root, 'bad.ts');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(badFile, randomBytes(good.length));
    await expect(dev.client.patch(c.url, badFile, 0, good.length)).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    const rejected = srv!.db.rejectedUploads(sid) as { kept_as: string }[];
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.kept_as).toMatch(new RegExp(`^s3://${BUCKET}/quarantine/`));
    // The same upload id is free again: the good bytes can be sent and are stored.
    const c2 = await dev.client.create(sid, 'media/face/seg-00000.ts', declared, good.length);
    expect(c2.state).toBe('created');
    const goodFile = join(root, 'good.ts');
    writeFileSync(goodFile, good);
    const p = await dev.client.patch(c2.url, goodFile, 0, good.length);
    expect(p.storedSha256).toBe(declared);
  });
});
