import { describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseServerConfig } from '../../src/main/core/config.js';
import { loadServerConfig } from '../../src/main/server/app.js';
import { loadS3Support, openStore } from '../../src/main/server/storage.js';
import { ServerDb } from '../../src/main/server/db.js';
import { checkBundlePath, isSafeSessionId, uploadIdFor } from '../../src/main/server/protocol.js';
import { cleanup, tempDir } from './helpers.js';

describe('server config and store wiring', () => {
  it('fills defaults and names the bad field of a broken server.json', () => {
    const c = parseServerConfig({});
    expect(c.port).toBe(7420);
    expect(c.store.kind).toBe('file');
    expect(c.limits.maxFileBytes).toBe(2 * 1024 ** 3);
    expect(() => parseServerConfig({ store: { kind: 's3' } })).toThrow(/store\.bucket/);
    expect(() => parseServerConfig({ limits: { maxFileBytes: -1 } })).toThrow(/limits\.maxFileBytes/);
    const d = tempDir('cfg');
    try {
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'server.json'), '{ "port": 70000 }');
      expect(() => loadServerConfig(d)).toThrow(/server\.json: port/);
      writeFileSync(join(d, 'server.json'), '{ not json');
      expect(() => loadServerConfig(d)).toThrow(/not valid JSON/);
    } finally { cleanup(d); }
  });

  it('wires an S3-compatible bucket through @tus/s3-store (no S3 server needed to build it)', async () => {
    const d = tempDir('s3');
    try {
      await loadS3Support();
      const cfg = parseServerConfig({ store: { kind: 's3', bucket: 'kuzet-evidence', endpoint: 'http://127.0.0.1:9', accessKeyId: 'k', secretAccessKey: 's' } });
      const db = new ServerDb(join(d, 'server.db'));
      const store = openStore(d, cfg.store, db);
      expect(store.kind).toBe('s3');
      expect(store.linksInPlace).toBe(false);
      expect(store.localPath('a'.repeat(40))).toBeNull();
      expect(store.datastore.constructor.name).toBe('S3Store');
      expect(store.datastore.hasExtension('creation')).toBe(true);
      // An unreachable endpoint reads as "not there", not as a crash.
      expect(await store.size('a'.repeat(40))).toBeNull();
      const file = openStore(d, parseServerConfig({}).store, db);
      expect(file.kind).toBe('file');
      expect(file.localPath('b'.repeat(40))).toBe(join(d, 'uploads', 'b'.repeat(40)));
      expect(() => file.localPath('../x')).toThrow(/not an upload id/);
      await new Promise((r) => setTimeout(r, 50)); // @tus/file-store finishes its own async mkdir
      db.close();
    } finally { cleanup(d); }
  });

  it('derives stable upload ids and refuses unsafe names', () => {
    expect(uploadIdFor('s1', 'media/a.ts', 'f'.repeat(64))).toBe(uploadIdFor('s1', 'media/a.ts', 'f'.repeat(64)));
    expect(uploadIdFor('s1', 'media/a.ts', 'f'.repeat(64))).not.toBe(uploadIdFor('s2', 'media/a.ts', 'f'.repeat(64)));
    expect(checkBundlePath('media/face/seg-00001.ts')).toBeNull();
    expect(checkBundlePath('manifest.json')).toBeNull();
    for (const bad of ['', '..', 'a/../b', '/abs', 'C:x', 'a\\b', 'a/.git/x', 'a/b\u0000', 'x|y']) expect(checkBundlePath(bad), bad).not.toBeNull();
    expect(isSafeSessionId('20260101T000000Z-abc123')).toBe(true);
    expect(isSafeSessionId('../x')).toBe(false);
    expect(isSafeSessionId('a/b')).toBe(false);
  });
});
