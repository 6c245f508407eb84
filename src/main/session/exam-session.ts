import { EventEmitter } from 'node:events';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { configHash, type ExamConfig, type MachineConfig } from '../core/config.js';
import type { SessionContext } from '../core/context.js';
import { EventLog, type LogRecord } from '../core/eventlog.js';
import { KuzetError } from '../core/errors.js';
import { ensureHome, type HomeLayout } from '../core/home.js';
import { loadOrCreateKeyPair, loadKeyPair, type KeyPair } from '../core/keys.js';
import { StepSequence, type Step, type StopReason } from '../core/session.js';
import { APP_VERSION } from '../core/version.js';
import { LOG_FILE } from '../evidence/format.js';
import { sealSession, writeSessionState, type SealResult } from '../evidence/seal.js';
import { verifyBundle } from '../evidence/verify.js';
import type { DefaultStepOptions } from './steps.js';

export interface ExamSessionOptions {
  machine: MachineConfig;
  exam: ExamConfig;
  studentId: string;
  demo?: boolean;
  home?: HomeLayout;
  /** The device key; default: `<home>/keys/device.key` (created on the fly only in demo mode). */
  key?: KeyPair;
  /** The session's steps, in order. Default: `defaultSteps()` from ./steps.ts. */
  steps?: Step<SessionContext>[];
  /** Options for the default steps (e.g. the kiosk's own pid and Electron-backed monitor sources). */
  stepOptions?: DefaultStepOptions;
}

export interface FinishResult extends SealResult {
  bundleDir: string;
}

export type SessionPhase = 'opened' | 'starting' | 'running' | 'finishing' | 'sealed' | 'failed';

interface ExamSessionEvents {
  event: [rec: LogRecord];
  phase: [phase: SessionPhase];
  /** Something the student or technician should know now (disk full, a step failing to stop). */
  warning: [w: { code: string; message: string }];
}

export function newSessionId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${t}-${randomBytes(3).toString('hex')}`;
}

/**
 * One exam session: a folder under `<home>/sessions/<id>`, its hash-chained log, and the ordered steps
 * (preflight → recording → detection → monitors → live upload). `finish()` stops the steps in reverse order and
 * seals the folder into a signed bundle under `<home>/bundles/<id>`.
 */
export class ExamSession extends EventEmitter<ExamSessionEvents> {
  readonly ctx: SessionContext;
  private readonly seq: StepSequence<SessionContext>;
  private readonly key: KeyPair;
  private readonly abortController: AbortController;
  private phaseValue: SessionPhase = 'opened';

  private constructor(ctx: SessionContext, steps: Step<SessionContext>[], key: KeyPair, abort: AbortController) {
    super();
    this.ctx = ctx;
    this.key = key;
    this.abortController = abort;
    this.seq = new StepSequence(steps);
    this.seq.on('step.started', (name, ms) => ctx.log.append('session.step.started', { step: name, ms }));
    this.seq.on('step.failed', (name, err) => ctx.log.append('session.step.failed', { step: name, error: err.message, code: (err as KuzetError).code }));
    this.seq.on('step.stopped', (name, reason) => ctx.log.append('session.step.stopped', { step: name, reason }));
    this.seq.on('step.stop_failed', (name, err) => ctx.log.append('session.step.stop_failed', { step: name, error: err.message }));
    ctx.log.on('record', (rec: LogRecord) => this.emit('event', rec));
    ctx.log.on('write_error', (e: KuzetError) => this.emit('warning', { code: e.code, message: e.message }));
  }

  static async open(opts: ExamSessionOptions): Promise<ExamSession> {
    const home = opts.home ?? ensureHome();
    const key = opts.key ?? (opts.demo ? loadOrCreateKeyPair(home.keys) : loadKeyPair(home.keys));
    const id = newSessionId();
    const dir = join(home.sessions, id);
    mkdirSync(join(dir, 'media'), { recursive: true });
    const machineId = opts.machine.machine.id ?? `host-${hostname()}`;
    const cfgHash = configHash(opts.machine, opts.exam);
    const startedAt = Date.now();
    writeSessionState(dir, {
      id, examId: opts.exam.examId, studentId: opts.studentId, machineId, lab: opts.machine.machine.lab, demo: !!opts.demo,
      configHash: cfgHash, appVersion: APP_VERSION, pid: process.pid, startedAt,
    });
    const log = EventLog.open(join(dir, LOG_FILE));
    log.append('session.opened', {
      id, examId: opts.exam.examId, studentId: opts.studentId, machineId, lab: opts.machine.machine.lab ?? null,
      demo: !!opts.demo, configHash: cfgHash, appVersion: APP_VERSION, keyid: key.keyid, pid: process.pid,
    });
    const abort = new AbortController();
    const ctx: SessionContext = {
      id, dir, log, machine: opts.machine, exam: opts.exam, home,
      meta: { studentId: opts.studentId, machineId, lab: opts.machine.machine.lab, demo: !!opts.demo },
      services: {}, models: {}, degraded: [], signal: abort.signal,
    };
    const steps = opts.steps ?? (await import('./steps.js')).defaultSteps(opts.machine, opts.stepOptions);
    return new ExamSession(ctx, steps, key, abort);
  }

  get phase(): SessionPhase {
    return this.phaseValue;
  }

  private setPhase(p: SessionPhase): void {
    this.phaseValue = p;
    this.emit('phase', p);
  }

  /** Runs every step in order. On a failure the started steps are undone, the session is sealed as failed, and the error is rethrown. */
  async start(): Promise<void> {
    if (this.phaseValue !== 'opened') throw new KuzetError('BAD_STATE', `Cannot start a session that is ${this.phaseValue}`);
    this.setPhase('starting');
    try {
      await this.seq.start(this.ctx);
    } catch (e) {
      this.ctx.log.append('session.start_failed', { error: (e as Error).message, code: (e as KuzetError).code ?? null });
      // Whatever was recorded before the failure is evidence too: seal it. The session's phase stays 'failed'.
      await this.seal({ outcome: 'start_failed' }).catch(() => undefined);
      this.setPhase('failed');
      throw e;
    }
    this.ctx.log.append('session.features', { models: this.ctx.models, degraded: this.ctx.degraded });
    this.ctx.log.append('session.started', { steps: this.seq.startedNames });
    this.setPhase('running');
  }

  /** Stops the steps (newest first) and seals the bundle. Step stop failures are logged, never lose evidence. */
  async finish(reason: StopReason = 'finished', note: Record<string, unknown> = {}): Promise<FinishResult> {
    if (this.phaseValue !== 'running') throw new KuzetError('BAD_STATE', `Cannot finish a session that is ${this.phaseValue}`);
    this.setPhase('finishing');
    this.ctx.log.append('session.finishing', { reason, ...note });
    this.abortController.abort();
    const errors = await this.seq.stop(this.ctx, reason);
    return this.seal({ outcome: reason, stopErrors: errors.map((e) => `${e.step}: ${e.error.message}`) });
  }

  private async seal(note: Record<string, unknown>): Promise<FinishResult> {
    let res: SealResult;
    try {
      res = await sealSession({ dir: this.ctx.dir, log: this.ctx.log, key: this.key, note });
    } catch (e) {
      this.setPhase('failed');
      throw new KuzetError(
        (e as KuzetError).code === 'LOG_UNWRITTEN' || (e as KuzetError).code === 'DISK_FULL' ? 'DISK_FULL' : 'SEAL_FAILED',
        `Could not seal the session: ${(e as Error).message.replace(/\.+$/, "")}. Everything already written is kept in ${this.ctx.dir}; ` +
          'free space and run `kuzet recover` (it also runs at the next start) to seal it.',
        { dir: this.ctx.dir },
      );
    }
    const bundleDir = await moveSealed(this.ctx.dir, this.ctx.home.bundles);
    this.setPhase('sealed');
    return { ...res, dir: bundleDir, bundleDir };
  }
}

/**
 * Moves a sealed session folder to `<destRoot>/<id>`: a rename on the same drive; across drives a copy that is
 * verified before the original is removed, so no byte ever exists only in a half-finished copy.
 */
export async function moveSealed(dir: string, destRoot: string): Promise<string> {
  mkdirSync(destRoot, { recursive: true });
  const id = dir.split(/[\\/]/).filter(Boolean).pop()!;
  const dest = join(destRoot, id);
  if (existsSync(dest)) throw new KuzetError('BUNDLE_EXISTS', `A bundle already exists at ${dest}; not overwriting it.`);
  try {
    renameSync(dir, dest);
    return dest;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
  }
  cpSync(dir, dest, { recursive: true, errorOnExist: true, preserveTimestamps: true });
  const r = await verifyBundle(dest);
  if (!r.ok) {
    throw new KuzetError('COPY_FAILED', `The copy of ${dir} at ${dest} does not verify (${r.problems[0]?.message}); the original is kept.`);
  }
  rmSync(dir, { recursive: true });
  return dest;
}
