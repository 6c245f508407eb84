/**
 * What the server checks at completion about bytes it already stored. Every upload is hashed as it arrives; by
 * default completion trusts those hashes and checks each stored file's size, and with `rehashOnComplete` it reads
 * every byte again. Both are shown here by changing a stored upload on the server's disk after it arrived.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import type { EvidenceServer } from '../../src/main/server/app.js';
import { uploadIdFor } from '../../src/main/server/protocol.js';
import { bundleFiles } from '../../src/main/upload/bundle.js';
import { cleanup, enrolledDevice, makeBundle, server, tempDir, type Device } from './helpers.js';

/** Sends every file of a sealed bundle (no completion yet); returns the session id and one segment's path. */
async function sendAll(dev: Device, segBytes = 30_000): Promise<{ id: string; segment: { path: string; sha256: string } }> {
  const b = await makeBundle(dev.home.bundles, dev.key, { sources: ['face'], segments: 2, segBytes });
  const { files } = await bundleFiles(b.dir);
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
});
