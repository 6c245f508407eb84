import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyLogText } from '../../src/main/core/eventlog.js';
import { hashFile } from '../../src/main/evidence/hash.js';
import { verifyBundle } from '../../src/main/evidence/verify.js';
import { kuzet } from '../helpers/cli.js';
import { cleanup, tmpDir } from '../helpers/tmp.js';
import { mountTinyTmpfs, unmount } from '../helpers/tmpfs.js';

const root = tmpDir('kuzet-bad-');
afterAll(() => cleanup(root));
const base = { KUZET_MIN_FREE_BYTES: '1000', DISPLAY: '' };

describe('bad input gets a clear error and never loses evidence', () => {
  it('no ffmpeg: exit 1 naming the override, and the aborted session is still sealed and valid', async () => {
    const env = { ...base, KUZET_HOME: join(root, 'h1'), KUZET_FFMPEG: join(root, 'no-such-ffmpeg') };
    const r = await kuzet(['session', '--demo', '--duration', '2'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\[PREFLIGHT_FFMPEG\].*KUZET_FFMPEG points to .*no-such-ffmpeg/);
    const bundles = readdirSync(join(root, 'h1', 'bundles'));
    expect(bundles).toHaveLength(1);
    expect((await verifyBundle(join(root, 'h1', 'bundles', bundles[0]!))).ok).toBe(true);
  });

  it('a camera that does not exist: exit 1 naming the source and device, quickly', async () => {
    const h = join(root, 'h2');
    mkdirSync(h, { recursive: true });
    writeFileSync(join(h, 'cam.json'), JSON.stringify({ sources: { room: { kind: 'v4l2', device: '/dev/video97' } } }));
    expect((await kuzet(['keygen'], { ...base, KUZET_HOME: h })).code).toBe(0);
    const t = Date.now();
    const r = await kuzet(['session', '--config', join(h, 'cam.json'), '--duration', '5'], { ...base, KUZET_HOME: h });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/room camera \/dev\/video97 does not exist/);
    expect(Date.now() - t).toBeLessThan(30_000);
    const b = readdirSync(join(h, 'bundles'));
    const v = await verifyBundle(join(h, 'bundles', b[0]!));
    expect(v.ok).toBe(true);
    const types = verifyLogText(readFileSync(join(h, 'bundles', b[0]!, 'events.ndjson'), 'utf8')).records.map((x) => x.type);
    expect(types).toContain('session.start_failed');
  });

  it('a missing or invalid config names the file and the field (exit 1), a wrong option exits 2', async () => {
    const h = join(root, 'h3');
    mkdirSync(h, { recursive: true });
    writeFileSync(join(h, 'bad.json'), JSON.stringify({ recording: { segmentSeconds: 'six' } }));
    const bad = await kuzet(['session', '--config', join(h, 'bad.json')], { ...base, KUZET_HOME: h });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad\.json: recording\.segmentSeconds/);
    const missing = await kuzet(['session', '--config', join(h, 'nope.json')], { ...base, KUZET_HOME: h });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.json does not exist/);
    expect((await kuzet(['session', '--demo', '--duration', 'soon'], { ...base, KUZET_HOME: h })).code).toBe(2);
  });

  it('a full disk mid-exam: clear DISK_FULL error, closed segments intact, and `kuzet recover` seals a valid bundle once space is back', async (ctx) => {
    const mnt = join(root, 'tiny');
    const why = mountTinyTmpfs(mnt, '1200k');
    if (why) {
      ctx.skip(why);
      return;
    }
    try {
      const env = { ...base, KUZET_HOME: join(mnt, 'home') };
      const r = await kuzet(['session', '--demo', '--duration', '30'], env, 150_000);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\[DISK_FULL\].*kuzet recover/);
      expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
      const sessions = join(mnt, 'home', 'sessions');
      const id = readdirSync(sessions)[0]!;
      const log = verifyLogText(readFileSync(join(sessions, id, 'events.ndjson'), 'utf8'));
      expect(log.problems).toEqual([]);
      const closed = log.records.filter((x) => x.type === 'segment.closed').map((x) => x.data as { file: string; sha256: string });
      expect(closed.length).toBeGreaterThan(2);
      for (const c of closed) expect((await hashFile(join(sessions, id, c.file))).sha256, c.file).toBe(c.sha256);

      expect(spawnSync('mount', ['-o', 'remount,size=40m', mnt]).status).toBe(0);
      const rec = await kuzet(['recover'], env);
      expect(rec.code, rec.stderr).toBe(0);
      const bundle = rec.stdout.trim().split('\n').pop()!;
      const v = await verifyBundle(bundle);
      expect(v.problems).toEqual([]);
      const listed = new Map(v.manifest!.files.map((f) => [f.path, f.sha256]));
      for (const c of closed) expect(listed.get(c.file), c.file).toBe(c.sha256);
    } finally {
      unmount(mnt);
    }
  }, 200_000);
});
