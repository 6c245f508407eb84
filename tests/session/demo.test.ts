import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyLogText, type LogRecord } from '../../src/main/core/eventlog.js';
import { hashFile } from '../../src/main/evidence/hash.js';
import { verifyBundle } from '../../src/main/evidence/verify.js';
import { ffprobeJson, kuzet, KUZET, ROOT } from '../helpers/cli.js';
import { cleanup, tmpDir } from '../helpers/tmp.js';

const root = tmpDir('kuzet-session-');
afterAll(() => cleanup(root));
const STREAMS = ['face', 'room', 'screen'] as const;

function records(bundle: string): LogRecord[] {
  return verifyLogText(readFileSync(join(bundle, 'events.ndjson'), 'utf8')).records;
}

function segmentDurations(dir: string, source: string): number[] {
  const d = join(dir, 'media', source);
  return readdirSync(d).filter((f) => /^seg-\d+\.ts$/.test(f)).sort().map((f) => {
    const p = ffprobeJson(join(d, f));
    expect(p, `${source}/${f} does not play`).not.toBeNull();
    expect((p!.streams ?? []).length, `${source}/${f} has no stream`).toBeGreaterThan(0);
    return Number(p!.format?.duration ?? NaN);
  });
}

/**
 * Wall-clock time a stream was really recording: from its first bytes (the first segment's start, in seconds since
 * the session opened) to its `recorder.stopped` event, or to `until` (a kill).
 */
function streamSpan(bundle: string, recs: LogRecord[], source: string, until?: number): { span: number; firstByte: number } {
  const startedAt = (JSON.parse(readFileSync(join(bundle, 'session.json'), 'utf8')) as { startedAt: number }).startedAt;
  const seg0 = recs.find((r) => r.type === 'segment.closed' && (r.data as { source: string }).source === source)!.data as { start: number };
  const firstByte = startedAt + seg0.start * 1000;
  const stop = until ?? recs.find((r) => r.type === 'recorder.stopped' && (r.data as { source: string }).source === source)!.wall;
  return { span: (stop - firstByte) / 1000, firstByte };
}

function wallOf(recs: LogRecord[], type: string): number {
  return recs.find((r) => r.type === type)!.wall;
}

describe('a demo exam session end to end (real ffmpeg, real files)', () => {
  it('a 20-s session yields a bundle that verifies; every segment plays; durations add up within 1 s per stream', async () => {
    const env = { KUZET_HOME: join(root, 'home-a'), KUZET_MIN_FREE_BYTES: '1000', DISPLAY: '' };
    const r = await kuzet(['session', '--demo', '--duration', '20', '--out', join(root, 'out-a'), '--quiet'], env, 180_000);
    expect(r.code, r.stderr).toBe(0);
    const bundle = r.stdout.trim().split('\n').pop()!;
    const v = await verifyBundle(bundle);
    expect(v.problems).toEqual([]);
    const recs = records(bundle);
    for (const s of STREAMS) {
      const durs = segmentDurations(bundle, s);
      const total = durs.reduce((a, b) => a + b, 0);
      const { span, firstByte } = streamSpan(bundle, recs, s);
      // The exam starts only once every stream records, and every stream records until the exam has finished.
      expect(firstByte, `${s} was recording when the exam started`).toBeLessThanOrEqual(wallOf(recs, 'session.started'));
      expect(total, `${s} covers the exam`).toBeGreaterThanOrEqual((wallOf(recs, 'session.finishing') - wallOf(recs, 'session.started')) / 1000 - 1);
      expect(Math.abs(total - span), `${s}: segments ${total.toFixed(2)} s vs ran ${span.toFixed(2)} s`).toBeLessThanOrEqual(1);
      expect(v.manifest!.streams[s]!.segments).toBe(durs.length);
    }
    expect(v.manifest!.models['nanodet-416']).toMatch(/^[0-9a-f]{64}$/);
  }, 200_000);

  it('kill -9 of the whole session process group, then `kuzet recover`: verifies, loses at most the flush window', async () => {
    const env = { ...process.env, KUZET_HOME: join(root, 'home-b'), KUZET_MIN_FREE_BYTES: '1000', DISPLAY: '' };
    const child = spawn(process.execPath, [KUZET, 'session', '--demo', '--duration', '120', '--quiet'], { env, cwd: ROOT, detached: true, stdio: 'ignore' });
    const killAfter = 9_000 + Math.random() * 6_000;
    // Wait until recording has really started (a segment list exists), then a random moment more.
    const sessions = join(root, 'home-b', 'sessions');
    const t0 = Date.now();
    while (Date.now() - t0 < 60_000) {
      const ids = existsSync(sessions) ? readdirSync(sessions) : [];
      if (ids.length && existsSync(join(sessions, ids[0]!, 'media', 'screen'))) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    await new Promise((res) => setTimeout(res, killAfter));
    process.kill(-child.pid!, 'SIGKILL');
    const killedAt = Date.now();
    await new Promise((res) => child.once('exit', res));
    const id = readdirSync(sessions)[0]!;
    const dir = join(sessions, id);
    // Every byte on disk at the moment of the kill must reach the bundle unchanged.
    const onDisk = new Map<string, string>();
    for (const s of STREAMS) for (const f of readdirSync(join(dir, 'media', s))) if (f.startsWith('seg-')) onDisk.set(`media/${s}/${f}`, (await hashFile(join(dir, 'media', s, f))).sha256);

    const rec = await kuzet(['recover', '--out', join(root, 'out-b')], { KUZET_HOME: env.KUZET_HOME });
    expect(rec.code, rec.stderr).toBe(0);
    const bundle = rec.stdout.trim().split('\n').pop()!;
    expect(bundle).toContain(id);
    const v = await verifyBundle(bundle);
    expect(v.problems).toEqual([]);
    expect(v.manifest!.recovered).toBe(true);
    const files = new Map(v.manifest!.files.map((f) => [f.path, f.sha256]));
    for (const [p, h] of onDisk) expect(files.get(p), p).toBe(h);
    const recs = records(bundle);
    expect(recs.some((r) => r.type === 'session.recovered')).toBe(true);
    for (const s of STREAMS) {
      const total = segmentDurations(bundle, s).reduce((a, b) => a + b, 0);
      const { span } = streamSpan(bundle, recs, s, killedAt);
      // Lost = what ran minus what plays: the flush window (~1 s) plus ffmpeg's encoder delay at most.
      expect(span - total, `${s}: ran ${span.toFixed(2)} s, plays ${total.toFixed(2)} s`).toBeLessThanOrEqual(1.5);
    }
    expect(statSync(join(bundle, 'manifest.sig.json')).size).toBeGreaterThan(0);
  }, 200_000);
});
