import { afterEach, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HashWorker } from '../../src/main/server/hashworker.js';
import { cleanup, tempDir } from './helpers.js';

// The server hashes each stored segment in a worker thread (off its event loop). The hash must be the file's, whatever
// its size, and a worker that goes away must never lose a hash that was asked for.
describe('hash worker', () => {
  const dirs: string[] = [];
  const workers: HashWorker[] = [];
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.close();
    for (const d of dirs.splice(0)) cleanup(d);
  });
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  function setup(): { hw: HashWorker; dir: string } {
    const dir = tempDir('hashworker');
    dirs.push(dir);
    const hw = new HashWorker();
    workers.push(hw);
    return { hw, dir };
  }

  it('hashes files of every size in the worker, many at once, each to its own answer', async () => {
    const { hw, dir } = setup();
    const sizes = [0, 1, 65_535, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 777];
    const files = sizes.map((n, i) => {
      const b = randomBytes(n);
      const p = join(dir, `f${i}`);
      writeFileSync(p, b);
      return { p, b };
    });
    const got = await Promise.all([...files, ...files].map((f) => hw.hash(f.p)));
    got.forEach((d, i) => {
      const f = files[i % files.length]!;
      expect(d).toEqual({ sha256: sha(f.b), size: f.b.length });
    });
    expect(hw.counts).toEqual({ worker: 2 * files.length, inline: 0 });
  });

  it('a missing file rejects with ENOENT and names it; the worker goes on', async () => {
    const { hw, dir } = setup();
    const missing = join(dir, 'nope');
    await expect(hw.hash(missing)).rejects.toMatchObject({ code: 'ENOENT', message: expect.stringContaining(missing) });
    const b = randomBytes(1000);
    writeFileSync(join(dir, 'yes'), b);
    expect((await hw.hash(join(dir, 'yes'))).sha256).toBe(sha(b));
    expect(hw.counts.worker).toBe(1);
  });

  it('hashes owed by a worker that exits are made on the calling thread, and later ones too', async () => {
    const { hw, dir } = setup();
    const b = randomBytes(2 << 20);
    const p = join(dir, 'big');
    writeFileSync(p, b);
    await hw.hash(p); // the worker is running
    const owed = Array.from({ length: 8 }, () => hw.hash(p));
    // The worker dies under them (as if it crashed): stop it from outside, not through close().
    await (hw as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    for (const d of await Promise.all(owed)) expect(d).toEqual({ sha256: sha(b), size: b.length });
    expect((await hw.hash(p)).sha256).toBe(sha(b));
    expect(hw.counts.worker + hw.counts.inline).toBe(10);
    expect(hw.counts.inline).toBeGreaterThanOrEqual(1); // at least the one asked after the worker was gone
  });

  it('close() with hashes still owed finishes them on the calling thread', async () => {
    const { hw, dir } = setup();
    const b = randomBytes(1 << 20);
    const p = join(dir, 'f');
    writeFileSync(p, b);
    const owed = Array.from({ length: 6 }, () => hw.hash(p));
    await hw.close();
    for (const d of await Promise.all(owed)) expect(d.sha256).toBe(sha(b));
    expect(hw.counts.worker + hw.counts.inline).toBe(6);
  });
});
