/** `kuzet record` end to end through bin/kuzet.mjs. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tempSession } from './helpers.js';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'kuzet.mjs');

describe('kuzet record', () => {
  const s = tempSession();
  s.log.close();
  const env = { ...process.env, KUZET_HOME: s.home };

  it('records, prints JSON log records, exits 0; a missing camera exits 1 naming it; bad flags exit 2', () => {
    const out = join(s.home, 'rec');
    const r = spawnSync(process.execPath, [bin, 'record', '--seconds', '3', '--sources', 'room', '--out', out, '--json'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: { file?: string } });
    expect(recs.filter((x) => x.type === 'segment.closed').map((x) => x.data.file)).toContain('media/room/seg-00000.ts');
    expect(recs.at(-1)!.type).toBe('recorder.stopped');

    const cfg = join(s.home, 'bad.json');
    spawnSync('sh', ['-c', `echo '{"sources":{"face":{"kind":"v4l2","device":"/dev/video9"}}}' > ${cfg}`]);
    const bad = spawnSync(process.execPath, [bin, 'record', '--seconds', '1', '--config', cfg, '--out', join(s.home, 'rec2')], { env, encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/SOURCE_NOT_FOUND.*face camera \/dev\/video9/);

    const usage = spawnSync(process.execPath, [bin, 'record', '--sources', 'nose'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/unknown source nose/);
  });
});
