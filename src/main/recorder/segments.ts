/**
 * Segment bookkeeping shared by the live recorder and crash recovery: the CSV list ffmpeg writes, hashing a
 * closed segment, ffprobe durations, and closing segments that a crash left without a `segment.closed` event.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { SOURCE_IDS, type SourceId } from '../core/config.js';
import { readLogRecords, type EventLog } from '../core/eventlog.js';
import { resolveFfprobe } from '../core/ffmpeg.js';
import { hashFile } from '../core/hash.js';

/** The data of a `segment.closed` event (the contract with the evidence bundle). */
export interface SegmentClosed {
  source: SourceId;
  index: number;
  /** Bundle-relative POSIX path, e.g. "media/face/seg-00003.ts". */
  file: string;
  sha256: string;
  size: number;
  /** Seconds since the session started (null when a recovered segment's place in time is unknown). */
  start: number | null;
  end: number | null;
  duration: number | null;
  /** The ffmpeg run (0-based, per source) that wrote it; null if recovery could not tell. */
  run: number | null;
  /** Set by crash recovery (`closeDanglingSegments`). */
  recovered?: true;
  /** Set by the recorder for the in-progress segment of an ffmpeg that died (its end was never written). */
  partial?: true;
}

export const SEGMENT_RE = /^seg-(\d{5,})\.(ts|mp4)$/;

export interface ListEntry { name: string; index: number; start: number; end: number }

/** Parses complete lines of a segment-muxer CSV list (`seg-00003.ts,18.000000,24.000000`). */
export function parseListLine(line: string): ListEntry | null {
  const l = line.trim();
  if (!l) return null;
  // The file name is the first field; ffmpeg quotes names that contain commas or quotes (ours never do).
  const parts = l.split(',');
  if (parts.length < 3) return null;
  const end = Number(parts.pop());
  const start = Number(parts.pop());
  const name = parts.join(',').replace(/^"|"$/g, '').split(/[\\/]/).pop() ?? '';
  const m = SEGMENT_RE.exec(name);
  if (!m || !Number.isFinite(start) || !Number.isFinite(end)) return null;
  return { name, index: Number(m[1]), start, end };
}

export { hashFile };

/** Duration in seconds as ffprobe reads it, or null (no ffprobe, unreadable or empty file). Never throws. */
export async function probeDuration(file: string): Promise<number | null> {
  let probe: string;
  try { probe = resolveFfprobe().path; } catch { return null; }
  return new Promise((resolve) => {
    let out = '';
    let done = false;
    const finish = (v: number | null) => { if (!done) { done = true; clearTimeout(timer); resolve(v); } };
    const p = spawn(probe, ['-v', 'error', '-show_entries', 'format=duration', '-of', 'default=noprint_wrappers=1:nokey=1', file], { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => { p.kill('SIGKILL'); finish(null); }, 20000);
    p.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    p.on('error', () => finish(null));
    p.on('close', (code) => {
      const n = Number.parseFloat(out.trim());
      finish(code === 0 && Number.isFinite(n) && n >= 0 ? Math.round(n * 1000) / 1000 : null);
    });
  });
}

export const round3 = (n: number): number => Math.round(n * 1000) / 1000;

/** Segment files of one source folder, sorted by index. */
export function listSegmentFiles(sourceDir: string): { name: string; index: number }[] {
  if (!existsSync(sourceDir)) return [];
  return readdirSync(sourceDir)
    .map((name) => { const m = SEGMENT_RE.exec(name); return m ? { name, index: Number(m[1]) } : null; })
    .filter((x): x is { name: string; index: number } => x !== null)
    .sort((a, b) => a.index - b.index);
}

/**
 * Crash recovery: every segment file under `<dir>/media/<source>/` that has no `segment.closed` event in `log` is
 * hashed and gets one now, with `recovered: true`, its duration from ffprobe (null if unreadable), its start right
 * after the source's previous logged segment (null if none), and the run that was writing it (from the
 * `recorder.started` events). Returns how many segments it closed. Files are never changed or deleted.
 */
export async function closeDanglingSegments(dir: string, log: EventLog): Promise<number> {
  const records = readLogRecords(log.path);
  const logged = new Set<string>();
  const ends = new Map<string, { index: number; end: number | null }[]>();
  const runs = new Map<string, { run: number; startNumber: number }[]>();
  for (const r of records) {
    const d = r.data as Record<string, unknown>;
    if (r.type === 'segment.closed' && typeof d?.file === 'string') {
      logged.add(d.file);
      const list = ends.get(String(d.source)) ?? [];
      list.push({ index: Number(d.index), end: typeof d.end === 'number' ? d.end : null });
      ends.set(String(d.source), list);
    } else if (r.type === 'recorder.started' && typeof d?.run === 'number' && typeof d?.startNumber === 'number') {
      const list = runs.get(String(d.source)) ?? [];
      list.push({ run: d.run, startNumber: d.startNumber });
      runs.set(String(d.source), list);
    }
  }
  let closed = 0;
  const mediaDir = join(dir, 'media');
  if (!existsSync(mediaDir)) return 0;
  for (const source of readdirSync(mediaDir)) {
    if (!(SOURCE_IDS as readonly string[]).includes(source)) continue;
    const sdir = join(mediaDir, source);
    if (!statSync(sdir).isDirectory()) continue;
    for (const f of listSegmentFiles(sdir)) {
      const rel = `media/${source}/${f.name}`;
      if (logged.has(rel)) continue;
      const { sha256, size } = await hashFile(join(sdir, f.name));
      const duration = size > 0 ? await probeDuration(join(sdir, f.name)) : null;
      const prev = (ends.get(source) ?? []).filter((e) => e.index < f.index && e.end !== null).sort((a, b) => b.index - a.index)[0];
      const start = prev?.end ?? null;
      const run = (runs.get(source) ?? []).filter((r) => r.startNumber <= f.index).sort((a, b) => b.startNumber - a.startNumber)[0]?.run ?? null;
      const data: SegmentClosed = {
        source: source as SourceId, index: f.index, file: rel, sha256, size,
        start, end: start !== null && duration !== null ? round3(start + duration) : null, duration, run, recovered: true,
      };
      log.append('segment.closed', data);
      logged.add(rel);
      const list = ends.get(source) ?? [];
      list.push({ index: f.index, end: data.end });
      ends.set(source, list);
      closed++;
    }
  }
  return closed;
}
