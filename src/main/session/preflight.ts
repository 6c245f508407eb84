import { statfsSync } from 'node:fs';
import type { SessionContext } from '../core/context.js';
import { KuzetError } from '../core/errors.js';
import { resolveFfmpeg } from '../core/ffmpeg.js';
import type { Step } from '../core/session.js';

/** Free space below which a session does not start: 3 streams at ≤ 8 MB/min for 3 hours, with margin. */
export const MIN_FREE_BYTES = 2 * 1024 ** 3;

export interface PreflightItem { id: string; ok: boolean; blocking: boolean; detail: string }

export function diskFree(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

/** The spine's own checks: ffmpeg present, enough disk. Monitors and detectors add theirs in their own steps. */
export function spinePreflight(ctx: SessionContext, minFree = Number(process.env.KUZET_MIN_FREE_BYTES ?? MIN_FREE_BYTES)): PreflightItem[] {
  const items: PreflightItem[] = [];
  try {
    const ff = resolveFfmpeg();
    items.push({ id: 'ffmpeg', ok: true, blocking: true, detail: `${ff.path} (via ${ff.via})` });
  } catch (e) {
    items.push({ id: 'ffmpeg', ok: false, blocking: true, detail: (e as Error).message });
  }
  const free = diskFree(ctx.dir);
  items.push({
    id: 'disk', ok: free >= minFree, blocking: true,
    detail: `${(free / 1024 ** 3).toFixed(1)} GiB free at ${ctx.dir} (need ${(minFree / 1024 ** 3).toFixed(1)} GiB)`,
  });
  return items;
}

export function preflightStep(): Step<SessionContext> {
  return {
    name: 'preflight',
    start(ctx) {
      const items = spinePreflight(ctx);
      ctx.log.append('session.preflight', { items });
      const bad = items.filter((i) => i.blocking && !i.ok);
      if (bad.length) throw new KuzetError(`PREFLIGHT_${bad[0]!.id.toUpperCase()}`, bad.map((b) => b.detail).join('; '));
    },
    stop() { /* nothing to undo */ },
  };
}
