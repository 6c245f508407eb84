import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { findOnPath } from '../core/ffmpeg.js';
import { spawnHelper } from './helper.js';

export interface RunResult { ok: boolean; code: number | null; stdout: string; stderr: string; error?: string; missing?: boolean }

/**
 * Runs an OS tool asynchronously. Never throws: a missing tool, a timeout or a non-zero exit come back as
 * `ok: false` with the reason. On Linux the tool is started by the monitors' helper shell (`helper.ts`), so the
 * exam process does not fork (a fork blocks its event loop for tens of ms); elsewhere, or when the helper is
 * unavailable, directly.
 */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; maxBytes?: number; direct?: boolean } = {}): Promise<RunResult> {
  if (!opts.direct) {
    const viaHelper = spawnHelper.run(cmd, args, { timeoutMs: opts.timeoutMs ?? 5000, env: opts.env ?? process.env, maxBytes: opts.maxBytes ?? 4 * 1024 * 1024 });
    if (viaHelper) return viaHelper;
  }
  return runDirect(cmd, args, opts);
}

/** Programs started directly from this process (each one a fork of it): for tests and the bench. */
export const directSpawns = { count: 0 };

/** Runs an OS tool from this process (child_process.execFile). */
export function runDirect(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; maxBytes?: number } = {}): Promise<RunResult> {
  directSpawns.count++;
  return new Promise((resolve) => {
    execFile(cmd, args, {
      timeout: opts.timeoutMs ?? 5000,
      maxBuffer: opts.maxBytes ?? 4 * 1024 * 1024,
      env: opts.env ?? process.env,
      encoding: 'utf8',
      windowsHide: true,
    }, (err, stdout, stderr) => {
      if (!err) return resolve({ ok: true, code: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean };
      const missing = e.code === 'ENOENT';
      const reason = missing ? `${cmd} is not installed (not found on PATH)`
        : e.killed ? `${cmd} timed out after ${opts.timeoutMs ?? 5000} ms`
          : `${cmd} ${args.join(' ')} failed: ${(stderr || e.message).trim().split('\n')[0]}`;
      resolve({ ok: false, code: typeof e.code === 'number' ? e.code : null, stdout: stdout ?? '', stderr: stderr ?? '', error: reason, missing });
    });
  });
}

/** The C locale for tools whose output we parse (pactl, xrandr translate their labels otherwise). */
export function cLocaleEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8', LANGUAGE: '' };
}

export function hasTool(name: string): boolean {
  return findOnPath(name) !== null;
}

/**
 * A long-running tool whose output lines are events (`xprop -spy`, `pactl subscribe`): zero cost while nothing
 * happens. It is restarted (with a growing delay, at most `maxRestarts` times) if it exits while wanted.
 */
export class LineWatcher {
  private child: ChildProcess | null = null;
  private stopped = true;
  private restarts = 0;
  private timer: NodeJS.Timeout | null = null;
  lastError: string | null = null;

  constructor(
    private readonly cmd: string,
    private readonly args: string[],
    private readonly onLine: (line: string) => void,
    private readonly opts: { env?: NodeJS.ProcessEnv; maxRestarts?: number; onGiveUp?: (reason: string) => void } = {},
  ) {}

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && !this.stopped;
  }

  start(): void {
    this.stopped = false;
    this.spawnOnce();
  }

  private spawnOnce(): void {
    directSpawns.count++;
    const child = spawn(this.cmd, this.args, { env: this.opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    this.child = child;
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => { if (stderr.length < 2000) stderr += d; });
    createInterface({ input: child.stdout! }).on('line', (l) => { if (!this.stopped) this.onLine(l); });
    const onGone = (why: string) => {
      if (this.child !== child) return;
      this.child = null;
      this.lastError = why;
      if (this.stopped) return;
      if (this.restarts >= (this.opts.maxRestarts ?? 5)) { this.opts.onGiveUp?.(why); return; }
      this.restarts++;
      this.timer = setTimeout(() => { this.timer = null; if (!this.stopped) this.spawnOnce(); }, 250 * 2 ** this.restarts);
    };
    child.on('error', (e) => onGone(`${this.cmd}: ${(e as Error).message}`));
    child.on('exit', (code, sig) => onGone(`${this.cmd} exited (${sig ?? code})${stderr ? ': ' + stderr.trim().split('\n')[0] : ''}`));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.child && this.child.exitCode === null) this.child.kill('SIGTERM');
    this.child = null;
  }
}

/**
 * Runs `fn` every `everyMs`, never two at once: the next run is scheduled when the previous one ends, and a
 * `kick()` during a run asks for one more run right after it (several kicks coalesce). Errors go to `onError`.
 */
export class Poller {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private active = false;
  runs = 0;
  coalesced = 0;

  constructor(private readonly fn: () => Promise<void>, public everyMs: number, private readonly onError: (e: unknown) => void) {}

  start(immediately = true): void {
    this.active = true;
    if (immediately) this.kick(); else this.schedule();
  }

  kick(): void {
    if (!this.active) return;
    if (this.running) { this.again = true; this.coalesced++; return; }
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    this.running = (async () => {
      try { this.runs++; await this.fn(); } catch (e) { this.onError(e); }
    })().finally(() => {
      this.running = null;
      if (!this.active) return;
      if (this.again) { this.again = false; this.kick(); } else this.schedule();
    });
  }

  private schedule(): void {
    if (!this.active || this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.kick(); }, this.everyMs);
  }

  /** Stops the schedule and waits for a run in progress to finish. */
  async stop(): Promise<void> {
    this.active = false;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.running) await this.running;
  }
}

export { sha256Hex as sha256 } from '../core/canonical.js';

export function preview(text: string, chars: number): string {
  if (chars <= 0) return '';
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > chars ? flat.slice(0, chars) + '…' : flat;
}

export function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
