import type { SourceId } from '../core/config.js';
import type { SessionContext } from '../core/context.js';
import type { Step } from '../core/session.js';
import { Recorder } from './recorder.js';

/**
 * The session step that records: creates a Recorder over `ctx.dir`/`ctx.log`/`ctx.machine`, starts it (throwing a
 * KuzetError naming the source if a camera or file is missing), publishes it as `ctx.services.recorder`, and on
 * stop closes the last segments gracefully before the step sequence moves on to sealing.
 */
export function recorderStep(opts: { sources?: SourceId[]; ffmpegPath?: string; onRecorder?: (r: Recorder) => void } = {}): Step<SessionContext> {
  let rec: Recorder | null = null;
  return {
    name: 'recorder',
    async start(ctx) {
      rec = new Recorder({ dir: ctx.dir, log: ctx.log, config: ctx.machine, sources: opts.sources, ffmpegPath: opts.ffmpegPath });
      opts.onRecorder?.(rec);
      await rec.start();
      ctx.services.recorder = rec;
    },
    async stop(ctx) {
      const r = rec;
      rec = null;
      if (ctx.services.recorder === r) delete ctx.services.recorder;
      if (r) await r.stop();
    },
  };
}
