import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { listFiles } from '../../src/main/evidence/hash.js';
import { INLINE_FILE_MAX, checkReceipt } from '../../src/main/server/protocol.js';
import type { EvidenceServer } from '../../src/main/server/app.js';
import { uploadBundle, receiptPathFor } from '../../src/main/upload/bundle.js';
import { loadEnrolment } from '../../src/main/upload/client.js';
import { cleanup, enrolledDevice, makeBundle, server, tempDir, type Device } from '../server/helpers.js';
import { FaultProxy } from './faultproxy.js';

describe('delivery through resets, stalls, truncated responses and server restarts', () => {
  const dirs: string[] = [];
  let srv: EvidenceServer | null = null;
  let proxy: FaultProxy | null = null;
  afterAll(async () => {
    await proxy?.close();
    await srv?.close();
    cleanup(...dirs);
  });

  it('50 bundle uploads all complete, byte-identical, without duplicates, and nothing is deleted before its receipt', async () => {
    const data = tempDir('chaos-srv');
    const pristine = tempDir('chaos-pristine');
    dirs.push(data, pristine);
    srv = await server(data);
    const port = srv.port;
    proxy = new FaultProxy(port, {}, 20260101);
    const viaProxy = `http://127.0.0.1:${await proxy.listen()}`;
    // Enrol through the proxy (no faults yet) so the pinned server URL is the one the uploads use.
    const devices: Device[] = [];
    for (let i = 0; i < 5; i++) {
      const root = tempDir(`chaos-dev${i}`);
      dirs.push(root);
      devices.push(await enrolledDevice({ ...srv, url: viaProxy }, root, { machineId: `lab1-pc${i}` }));
    }
    const jobs: { dev: Device; id: string; dir: string; copy: string }[] = [];
    // One segment of each bundle is over the inline limit, so it goes through tus in several chunks (resumed after
    // each fault); the other files travel inside the completion request, which is retried as a whole.
    let n = 0;
    const segBytes = () => (n++ % 4 === 0 ? INLINE_FILE_MAX + 10_000 + Math.floor(Math.random() * 30_000) : 10_000 + Math.floor(Math.random() * 50_000));
    for (let k = 0; k < 50; k++) {
      const dev = devices[k % devices.length]!;
      const b = await makeBundle(dev.home.bundles, dev.key, { sources: ['face', 'room'], segments: 2, segBytes });
      const copy = join(pristine, b.id);
      cpSync(b.dir, copy, { recursive: true });
      jobs.push({ dev, id: b.id, dir: b.dir, copy });
    }

    proxy.rates = { reset: 0.03, stall: 0.03, truncate: 0.06, stallMs: 2500, bytesPerSecond: 0 };
    // Watch the client side: a bundle folder may disappear only once its valid receipt is on disk.
    const early: string[] = [];
    const watch = setInterval(() => {
      for (const j of jobs) {
        if (!existsSync(j.dir) && !existsSync(receiptPathFor(j.dev.home, j.id))) early.push(j.id);
      }
    }, 25);
    // Restart the server (close: every open connection is dropped) a few times while the uploads run.
    let restarts = 0;
    let running = true;
    const restarter = (async () => {
      while (running && restarts < 5) {
        await new Promise((r) => setTimeout(r, 1500));
        if (!running) break;
        await srv!.close();
        await new Promise((r) => setTimeout(r, 200));
        srv = await server(data, {}, port);
        restarts++;
      }
    })();

    const upload = { keepDaysAfterReceipt: 0, stallMs: 1000, retryMinMs: 50, retryMaxMs: 800, chunkBytes: 64 * 1024 };
    const results: { id: string; ok: boolean; error?: string }[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (next < jobs.length) {
        const j = jobs[next++]!;
        try {
          await uploadBundle(j.dir, viaProxy, { home: j.dev.home, upload });
          results.push({ id: j.id, ok: true });
        } catch (e) {
          results.push({ id: j.id, ok: false, error: (e as Error).message });
        }
      }
    }));
    running = false;
    await restarter;
    clearInterval(watch);

    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results).toHaveLength(50);
    expect(early).toEqual([]);
    expect(restarts).toBeGreaterThanOrEqual(1);
    const s = proxy.stats;
    expect(s.resets + s.stalls + s.truncations).toBeGreaterThan(10);

    const db = srv!.db;
    for (const j of jobs) {
      // Receipt verifies against the pinned key; the local bundle is gone (retention 0) only because of it.
      const enr = loadEnrolment(j.dev.home);
      const receipt = JSON.parse(readFileSync(receiptPathFor(j.dev.home, j.id), 'utf8'));
      expect(checkReceipt(receipt, enr.serverKeyPem, { sessionId: j.id }).ok).toBe(true);
      expect(existsSync(j.dir)).toBe(false);
      // Byte-identical: every original file equals the server's copy.
      const { files } = await listFiles(j.copy);
      for (const f of files) expect(readFileSync(join(data, 'bundles', j.id, f)).equals(readFileSync(join(j.copy, f))), `${j.id}/${f}`).toBe(true);
      // No duplicates: one stored row per file, nothing else.
      const rows = db.filesOf(j.id);
      expect(rows.length).toBe(files.length);
      expect(new Set(rows.map((r) => r.path)).size).toBe(files.length);
      expect(rows.every((r) => r.state === 'stored')).toBe(true);
      expect(db.session(j.id)?.status).toBe('verified');
    }
    const uploads = readdirSync(join(data, 'uploads')).filter((f) => !f.endsWith('.json'));
    const total = jobs.reduce((a, j) => a + db.filesOf(j.id).length, 0);
    expect(uploads.length).toBe(total);
    console.log(`chaos: ${s.connections} connections, ${s.resets} resets, ${s.stalls} stalls, ${s.truncations} truncated responses, ${restarts} server restarts`);
  }, 300_000);
});
