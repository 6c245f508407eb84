/** Shared helpers for the recorder tests: a private KUZET_HOME, a session dir with a log, a quick config. */
import { spawnSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMachineConfig, type MachineConfig } from '../../src/main/core/config.js';
import { EventLog, verifyLogText, type LogRecord } from '../../src/main/core/eventlog.js';
import type { SegmentClosed } from '../../src/main/recorder/segments.js';

const homes: string[] = [];
// Each test file removes its temporary homes at the end (KUZET_KEEP_TEST_DIRS=1 keeps them for a look).
afterAll(() => {
  if (process.env.KUZET_KEEP_TEST_DIRS === '1') return;
  for (const h of homes.splice(0)) { try { rmSync(h, { recursive: true, force: true }); } catch { /* a lazily unmounted tmpfs: leave it */ } }
});

export function tempSession(prefix = 'kuzet-rec-'): { home: string; dir: string; log: EventLog } {
  const home = mkdtempSync(join(tmpdir(), prefix));
  homes.push(home);
  process.env.KUZET_HOME = home;
  const dir = join(home, 'sessions', 's1');
  mkdirSync(dir, { recursive: true });
  return { home, dir, log: EventLog.open(join(dir, 'events.ndjson')) };
}

/** Small, fast streams: 320x240 cameras, a 640x360 screen at 5 fps, 3-s segments. */
export function quickConfig(over: Record<string, unknown> = {}): MachineConfig {
  const base = {
    sources: {
      face: { kind: 'lavfi', pattern: 'testsrc2', width: 320, height: 240, fps: 10 },
      room: { kind: 'lavfi', pattern: 'smptebars', width: 320, height: 240, fps: 10 },
      screen: { kind: 'lavfi', pattern: 'testsrc', width: 640, height: 360, fps: 5 },
      mic: { kind: 'none' },
    },
    recording: { segmentSeconds: 3, restartDelayMs: 300, tapWidth: 160, tapHeight: 120, tapFps: 2 },
  };
  const merged = { ...base, ...over, recording: { ...base.recording, ...(over.recording as object ?? {}) }, sources: { ...base.sources, ...(over.sources as object ?? {}) } };
  return parseMachineConfig(merged);
}

export function records(log: EventLog): LogRecord[] {
  const v = verifyLogText(readFileSync(log.path, 'utf8'));
  if (!v.ok) throw new Error(`event log does not verify: ${JSON.stringify(v.problems)}`);
  return v.records;
}

export function segEvents(log: EventLog, source?: string): SegmentClosed[] {
  return records(log).filter((r) => r.type === 'segment.closed').map((r) => r.data as SegmentClosed).filter((d) => !source || d.source === source);
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** ffprobe: decodes the whole file (errors fail) and returns its duration in seconds and video frame count. */
export function probe(path: string): { ok: boolean; duration: number; frames: number; err: string } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'format=duration:stream=nb_read_frames,codec_type', '-of', 'json', path], { encoding: 'utf8' });
  let duration = NaN;
  let frames = 0;
  try {
    const j = JSON.parse(r.stdout) as { format?: { duration?: string }; streams?: { nb_read_frames?: string }[] };
    duration = Number(j.format?.duration);
    frames = Number(j.streams?.[0]?.nb_read_frames ?? 0);
  } catch { /* reported via ok */ }
  return { ok: r.status === 0 && Number.isFinite(duration) && frames > 0, duration, frames, err: r.stderr };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts Xvfb on a free display number if it is installed; returns null (with the reason) otherwise. */
export async function startXvfb(): Promise<{ display: string; proc: ChildProcess } | { reason: string }> {
  const bin = ['/usr/bin/Xvfb', '/usr/local/bin/Xvfb'].find((p) => existsSync(p));
  if (!bin) return { reason: 'Xvfb is not installed' };
  for (let n = 140 + (process.pid % 50); n < 260; n++) {
    if (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) continue;
    const proc = spawn(bin, [`:${n}`, '-screen', '0', '640x360x24', '-nolisten', 'tcp'], { stdio: 'ignore' });
    for (let i = 0; i < 50; i++) {
      await sleep(100);
      if (existsSync(`/tmp/.X11-unix/X${n}`)) return { display: `:${n}`, proc };
      if (proc.exitCode !== null) break;
    }
    proc.kill('SIGKILL');
  }
  return { reason: 'Xvfb did not start' };
}
