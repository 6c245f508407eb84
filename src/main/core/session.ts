import { EventEmitter } from 'node:events';
import { KuzetError } from './errors.js';

/**
 * A session is an ordered list of reversible steps (the idea of Safe Exam Browser's operation sequences, far
 * smaller). `start` runs the steps in order; if one fails, the steps that already started are stopped in reverse
 * order and the failure is rethrown naming the step. `stop` stops every started step in reverse order and never
 * gives up half-way: one step's failure is collected and the others are still stopped.
 */
export interface Step<C> {
  readonly name: string;
  start(ctx: C): Promise<void> | void;
  stop(ctx: C, reason: StopReason): Promise<void> | void;
}

export type StopReason = 'finished' | 'unwind' | 'aborted' | 'signal';

export interface StepEvents {
  'step.started': [name: string, ms: number];
  'step.failed': [name: string, error: Error];
  'step.stopped': [name: string, reason: StopReason];
  'step.stop_failed': [name: string, error: Error];
}

export class StepFailed extends KuzetError {
  readonly step: string;
  override readonly cause: Error;
  readonly unwindErrors: { step: string; error: Error }[];
  constructor(step: string, cause: Error, unwindErrors: { step: string; error: Error }[]) {
    super(
      (cause as KuzetError).code ?? 'STEP_FAILED',
      `Step "${step}" failed: ${cause.message}` + (unwindErrors.length ? ` (and undoing ${unwindErrors.map((u) => u.step).join(', ')} also failed)` : ''),
      { step },
    );
    this.step = step;
    this.cause = cause;
    this.unwindErrors = unwindErrors;
  }
}

export class StepSequence<C> extends EventEmitter<StepEvents> {
  private readonly steps: Step<C>[];
  private started: Step<C>[] = [];

  constructor(steps: Step<C>[]) {
    super();
    const names = new Set<string>();
    for (const s of steps) {
      if (names.has(s.name)) throw new KuzetError('DUPLICATE_STEP', `Two session steps are named "${s.name}"`);
      names.add(s.name);
    }
    this.steps = steps;
  }

  get startedNames(): string[] {
    return this.started.map((s) => s.name);
  }

  async start(ctx: C): Promise<void> {
    for (const step of this.steps) {
      const t = performance.now();
      try {
        await step.start(ctx);
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        this.emit('step.failed', step.name, err);
        const unwindErrors = await this.stopStarted(ctx, 'unwind');
        throw new StepFailed(step.name, err, unwindErrors);
      }
      this.started.push(step);
      this.emit('step.started', step.name, Math.round(performance.now() - t));
    }
  }

  /** Stops whatever started, newest first. Returns the failures (also emitted) instead of throwing. */
  async stop(ctx: C, reason: StopReason = 'finished'): Promise<{ step: string; error: Error }[]> {
    return this.stopStarted(ctx, reason);
  }

  private async stopStarted(ctx: C, reason: StopReason): Promise<{ step: string; error: Error }[]> {
    const errors: { step: string; error: Error }[] = [];
    while (this.started.length > 0) {
      const step = this.started.pop()!;
      try {
        await step.stop(ctx, reason);
        this.emit('step.stopped', step.name, reason);
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        errors.push({ step: step.name, error: err });
        this.emit('step.stop_failed', step.name, err);
      }
    }
    return errors;
  }
}
