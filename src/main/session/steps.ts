import type { MachineConfig } from '../core/config.js';
import type { SessionContext } from '../core/context.js';
import type { Step } from '../core/session.js';
import { detectionStep } from '../episodes/step.js';
import { voiceStep } from '../episodes/voice-step.js';
import { recorderStep } from '../recorder/index.js';
import { liveUploadStep } from '../upload/live.js';
import { monitorsStep, type MonitorsOptions } from '../monitors/index.js';
import { preflightStep } from './preflight.js';

/** Options the embedding program (CLI, kiosk) passes to the steps it does not build itself. */
export interface DefaultStepOptions {
  modelsDir?: string;
  /** The kiosk passes its own pid/window (`ours`) and Electron-backed sources (clipboard, displays). */
  monitors?: MonitorsOptions;
}

/**
 * The default order of a session's steps. Each service contributes one reversible step; `stop` runs in reverse,
 * so live upload and voice detection start before the recorder and stop after it — they see the last segment close.
 */
export function defaultSteps(machine: MachineConfig, opts: DefaultStepOptions = {}): Step<SessionContext>[] {
  const steps = [preflightStep(), liveUploadStep(), voiceStep(), recorderStep(), detectionStep({ modelsDir: opts.modelsDir })];
  if (machine.monitors.enabled) steps.push(monitorsStep({ ours: { pids: [process.pid] }, ...opts.monitors }));
  return steps;
}
