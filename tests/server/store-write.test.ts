import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ERRORS, Upload } from '@tus/utils';
import { ServerDb } from '../../src/main/server/db.js';
import { DbConfigstore, LeanFileStore } from '../../src/main/server/storage.js';
import { cleanup, tempDir } from './helpers.js';

// The server's own upload store: the bytes of a request body go to uploads/<id>, hashed on the way. These tests
// drive it directly with streams that behave like request bodies: slow, broken off, larger than one write batch.
describe('upload store: writing a body', () => {
  const dirs: string[] = [];
  afterEach(() => { for (const d of dirs.splice(0)) cleanup(d); });

  function store(): { st: LeanFileStore; dir: string } {
    const d = tempDir('store');
    dirs.push(d);
    const db = new ServerDb(join(d, 'server.db'));
    return { st: new LeanFileStore(d, new DbConfigstore(db, d)), dir: d };
  }
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('a body of many pieces, arriving faster than the disk takes it, is stored whole and hashed once', async () => {
    const { st, dir } = store();
    const id = 'a'.repeat(40);
    const body = randomBytes(3 * 1024 * 1024 + 12345);
    await st.create(new Upload({ id, size: body.length, offset: 0 }));
    const pieces = Array.from({ length: Math.ceil(body.length / 65536) }, (_, i) => body.subarray(i * 65536, (i + 1) * 65536));
    const end = await st.write(Readable.from(pieces), id, 0);
    expect(end).toBe(body.length);
    expect(sha(readFileSync(join(dir, id)))).toBe(sha(body));
    expect(st.hasher.take(id, body.length)).toBe(sha(body));
  });

  it('a body that breaks off keeps what arrived, fails, and a resumed write completes the same bytes', async () => {
    const { st, dir } = store();
    const id = 'b'.repeat(40);
    const body = randomBytes(700_000);
    await st.create(new Upload({ id, size: body.length, offset: 0 }));
    const req = new PassThrough();
    const p = st.write(req, id, 0);
    req.write(body.subarray(0, 300_000));
    req.write(body.subarray(300_000, 400_000));
    setTimeout(() => req.destroy(new Error('aborted')), 20);
    await expect(p).rejects.toBe(ERRORS.FILE_WRITE_ERROR);
    const kept = readFileSync(join(dir, id));
    expect(kept.length).toBe(400_000);
    expect(kept.equals(body.subarray(0, 400_000))).toBe(true);
    // The running hash was dropped (the bytes before the resume were not all seen by one write).
    const end = await st.write(Readable.from([body.subarray(400_000)]), id, 400_000);
    expect(end).toBe(body.length);
    expect(st.hasher.take(id, body.length)).toBeNull();
    expect(sha(readFileSync(join(dir, id)))).toBe(sha(body));
  });

  it('a body paused before it reaches the store is still read to its end', async () => {
    const { st, dir } = store();
    const id = 'd'.repeat(40);
    const body = randomBytes(300_000);
    await st.create(new Upload({ id, size: body.length, offset: 0 }));
    const r = new PassThrough();
    r.pause();
    r.end(body);
    expect(await st.write(r, id, 0)).toBe(body.length);
    expect(readFileSync(join(dir, id)).equals(body)).toBe(true);
  }, 5000);

  it('an empty body stores nothing and resolves at its offset', async () => {
    const { st } = store();
    const id = 'c'.repeat(40);
    await st.create(new Upload({ id, size: 10, offset: 0 }));
    expect(await st.write(Readable.from([]), id, 0)).toBe(0);
  });
});
