/**
 * What the server checks at completion about bytes it already stored. Every upload is hashed as it arrives; by
 * default completion trusts those hashes and checks each stored file's size, and with `rehashOnComplete` it reads
 * every byte again. Both are shown here by changing a stored upload on the server's disk after it arrived.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type EvidenceServer } from '../../src/main/server/app.js';
import { DiskFlusher } from '../../src/main/server/durable.js';
import { checkReceipt } from '../../src/main/server/protocol.js';
import { bundleFiles as filesOf, uploadBundle } from '../../src/main/upload/bundle.js';
import { loadEnrolment } from '../../src/main/upload/client.js';
import { uploadIdFor } from '../../src/main/server/protocol.js';
import { cleanup, enrolledDevice, makeBundle, server, tempDir, type Device } from './helpers.js';

/** Sends every file of a sealed bundle (no completion yet); returns the session id and one segment's path. */
async function sendAll(dev: Device, segBytes = 30_000): Promise<{ id: string; segment: { path: string; sha256: string } }> {
  const b = await makeBundle(dev.home.bundles, dev.key, { sources: ['face'], segments: 2, segBytes });
  const { files } = await filesOf(b.dir);
  for (const f of files) {
    const c = await dev.client.create(b.id, f.path, f.sha256, f.size, undefined, { file: `${b.dir}/${f.path}`, end: f.size });
    expect(c.storedSha256, f.path).toBe(f.sha256);
  }
  const seg = files.find((f) => f.path.startsWith('media/'))!;
  return { id: b.id, segment: seg };
}

describe('stored bytes that change on the server after they arrived', () => {
  const dirs: string[] = [];
  const servers: EvidenceServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
    cleanup(...dirs);
  });

  async function setup(config: Record<string, unknown>): Promise<{ srv: EvidenceServer; dev: Device }> {
    const data = tempDir('integrity-srv');
    const root = tempDir('integrity-dev');
    dirs.push(data, root);
    const srv = await server(data, config);
    servers.push(srv);
    return { srv, dev: await enrolledDevice(srv, root) };
  }

  it('rehashOnComplete: a stored segment whose content changed (same size) is found and the bundle quarantined', async () => {
    const { srv, dev } = await setup({ rehashOnComplete: true });
    const { id, segment } = await sendAll(dev);
    const stored = srv.store.localPath(uploadIdFor(id, segment.path, segment.sha256))!;
    const bytes = readFileSync(stored);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(stored, bytes);
    const r = await dev.client.complete(id);
    expect(r.status).toBe('quarantined');
    if (r.status !== 'quarantined') return;
    expect(r.reasons.join('\n')).toMatch(new RegExp(`${segment.path}.*content differs`));
    expect(srv.db.session(id)?.status).toBe('quarantined');
  });

  it('default (arrival hashes trusted): a stored segment whose size changed is found and the bundle quarantined', async () => {
    const { srv, dev } = await setup({});
    const { id, segment } = await sendAll(dev);
    appendFileSync(srv.store.localPath(uploadIdFor(id, segment.path, segment.sha256))!, Buffer.from('extra'));
    const r = await dev.client.complete(id);
    expect(r.status).toBe('quarantined');
    if (r.status !== 'quarantined') return;
    expect(r.reasons.join('\n')).toMatch(new RegExp(`${segment.path} has 30005 bytes, the manifest says 30000`));
  });

  it('default: an untouched bundle verifies from its arrival hashes', async () => {
    const { dev } = await setup({});
    const { id } = await sendAll(dev);
    const r = await dev.client.complete(id);
    expect(r.status).toBe('verified');
  });

  it('per-file flushing (where a whole-filesystem flush is unavailable) receipts a bundle the same way', async () => {
    const data = tempDir('integrity-perfile');
    const root = tempDir('integrity-perfile-dev');
    dirs.push(data, root);
    const srv = await startServer({ dataDir: data, port: 0, host: '127.0.0.1', config: {}, diskFlush: 'per-file' });
    servers.push(srv);
    const dev = await enrolledDevice(srv, root);
    const b = await makeBundle(dev.home.bundles, dev.key, { segments: 2, segBytes: 40_000 });
    const r = await uploadBundle(b.dir, srv.url, { home: dev.home, upload: { keepDaysAfterReceipt: -1 } });
    expect(checkReceipt(r.receipt, loadEnrolment(dev.home).serverKeyPem, { sessionId: b.id }).ok).toBe(true);
    const { files } = await filesOf(b.dir);
    for (const f of files) expect(readFileSync(join(data, 'bundles', b.id, f.path)).equals(readFileSync(join(b.dir, f.path))), f.path).toBe(true);
  });
});

describe('group commit of disk flushes', () => {
  it('many completions waiting at once share one or two whole-filesystem flushes', async () => {
    const d = tempDir('flusher');
    try {
      const f = new DiskFlusher([d], true);
      expect(await f.flush()).toBe(process.platform === 'linux');
      if (process.platform !== 'linux') return;
      const before = f.flushes;
      const oks = await Promise.all(Array.from({ length: 40 }, () => f.flush()));
      expect(oks.every(Boolean)).toBe(true);
      expect(f.flushes - before).toBeLessThanOrEqual(2);
      f.close();
      expect(await new DiskFlusher([d], false).flush()).toBe(false); // disabled: callers fsync their own files
    } finally { cleanup(d); }
  });
});
