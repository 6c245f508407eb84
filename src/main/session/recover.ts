import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventLog, readLogRecords } from '../core/eventlog.js';
import type { HomeLayout } from '../core/home.js';
import type { KeyPair } from '../core/keys.js';
import { LOG_FILE } from '../evidence/format.js';
import { isSealed, readSessionState, sealSession } from '../evidence/seal.js';
import { moveSealed } from './exam-session.js';

export interface RecoverResult { id: string; bundleDir?: string; skipped?: string; error?: string }

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A live pid may be a reused one: on Linux check it is still a Kuzet process.
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /kuzet|electron/i.test(cmd);
  } catch {
    return true;
  }
}

/** Hook for the recorder: hash media files that never got their `segment.closed` event (the crash's open segment). */
export type CloseDangling = (dir: string, log: EventLog) => Promise<number>;

/**
 * Seals every unfinished session under `<home>/sessions`: the crash's torn log line is kept aside (EventLog.open),
 * a `session.recovered` event says what happened, dangling segments are hashed, and the folder is sealed
 * (`recovered: true`) and moved to `outDir` (default `<home>/bundles`). Sessions whose process still runs are
 * left alone unless `force`.
 */
export async function recoverSessions(home: HomeLayout, key: KeyPair, opts: { outDir?: string; force?: boolean; closeDangling?: CloseDangling } = {}): Promise<RecoverResult[]> {
  const out: RecoverResult[] = [];
  if (!existsSync(home.sessions)) return out;
  for (const id of readdirSync(home.sessions).sort()) {
    const dir = join(home.sessions, id);
    try {
      if (isSealed(dir)) {
        // Crashed between sealing and moving: only the move is left.
        out.push({ id, bundleDir: await moveSealed(dir, opts.outDir ?? home.bundles) });
        continue;
      }
      if (!existsSync(join(dir, 'session.json'))) { out.push({ id, skipped: 'no session.json: not a Kuzet session folder' }); continue; }
      const state = readSessionState(dir);
      if (!opts.force && pidAlive(state.pid)) { out.push({ id, skipped: `its process ${state.pid} is still running` }); continue; }
      const before = existsSync(join(dir, LOG_FILE)) ? readLogRecords(join(dir, LOG_FILE)) : [];
      const last = before.at(-1);
      const log = EventLog.open(join(dir, LOG_FILE));
      log.append('session.recovered', {
        reason: 'the session did not finish (crash, power loss or kill); sealed at the next start',
        pid: state.pid,
        lastEvent: last ? { seq: last.seq, type: last.type, wall: last.wall } : null,
        recoveredBy: process.pid,
      });
      const closer = opts.closeDangling ?? (await loadCloseDangling());
      const dangling = closer ? await closer(dir, log) : 0;
      if (!closer) log.append('session.recovery_limited', { reason: 'recorder module unavailable: open segments not re-announced' });
      const res = await sealSession({ dir, log, key, recovered: true, note: { danglingSegments: dangling } });
      out.push({ id, bundleDir: await moveSealed(res.dir, opts.outDir ?? home.bundles) });
    } catch (e) {
      out.push({ id, error: (e as Error).message });
    }
  }
  return out;
}

async function loadCloseDangling(): Promise<CloseDangling | null> {
  try {
    const m = (await import('../recorder/index.js')) as { closeDanglingSegments?: CloseDangling };
    return m.closeDanglingSegments ?? null;
  } catch {
    return null;
  }
}
