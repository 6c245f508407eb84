import type { MachineConfig } from '../core/config.js';
import type { SessionContext } from '../core/context.js';
import type { Step } from '../core/session.js';
import { detectionStep } from '../episodes/step.js';
import { recorderStep } from '../recorder/index.js';
import { preflightStep } from './preflight.js';

/** The default order of a session's steps. Each service contributes one reversible step. */
export function defaultSteps(_machine: MachineConfig): Step<SessionContext>[] {
  return [preflightStep(), recorderStep(), detectionStep()];
}
