/**
 * One long-lived `sh` that starts the monitors' short-lived tools (xrandr, pactl, xclip, who) on their behalf.
 *
 * Why: on Linux, libuv starts a program with fork(), and `child_process.spawn` returns only after the child has
 * called exec(). fork() copies the page tables of the whole exam process (Electron, onnxruntime, models), and on a
 * loaded machine the child then waits for a CPU before it can exec. Measured here with a session's RSS: 20–80 ms
 * with the event loop blocked, per tool started (docs/monitors.md, "Cost"). The helper is forked once, when the
 * monitors start; after that, each tool is forked by the small shell, and the exam process only writes a line to
 * a pipe and reads two small files when the shell says the tool has ended.
 *
 * Protocol (lines on the shell's stdin): `<id> <timeout s> <n>` followed by n argument lines for `env`
 * (`-u NAME`, `NAME=value`, then the command and its arguments). The shell runs
 * `timeout -k 1 <t> env <args> </dev/null >dir/<id>.o 2>dir/<id>.e` in the background and prints `<id> <status>`
 * (124: timed out, 127: not found). Arguments and environment values with a newline go the direct way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { findOnPath } from '../core/ffmpeg.js';
import type { RunResult } from './util.js';

const SCRIPT = [
  'd=$1',
  'while read -r id t n; do',
  '  set --',
  '  while [ "$n" -gt 0 ]; do IFS= read -r a || exit 0; set -- "$@" "$a"; n=$((n-1)); done',
  '  ( timeout -k 1 "$t" env "$@" </dev/null >"$d/$id.o" 2>"$d/$id.e"; echo "$id $?" ) &',
  'done',
].join('\n');

interface Job { cmd: string; args: string[]; timeoutMs: number; maxBytes: number; resolve: (r: RunResult) => void }

export class SpawnHelper {
  private child: ChildProcess | null = null;
  private dir: string | null = null;
  private baseEnv: NodeJS.ProcessEnv = {};
  private nextId = 1;
  private readonly jobs = new Map<number, Job>();
  private failures = 0;
  /** How many times the shell itself was started (1 in a normal session). */
  starts = 0;
  /** Tools run through the shell. */
  runs = 0;
  lastError: string | null = null;
  /** false: every tool starts directly from this process (the bench's "before" phase). */
  enabled = true;

  /** Linux with sh, env and timeout (coreutils) on PATH; the helper can be turned off with KUZET_MONITOR_HELPER=0. */
  static supported(env: NodeJS.ProcessEnv = process.env): boolean {
    return process.platform === 'linux' && env.KUZET_MONITOR_HELPER !== '0' && ['sh', 'env', 'timeout'].every((t) => findOnPath(t) !== null);
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null;
  }

  /** Starts the shell now (the one fork of the exam process); later calls do nothing while it runs. */
  start(): boolean {
    if (this.running) return true;
    if (this.failures >= 3 || !SpawnHelper.supported()) return false;
    try {
      if (!this.dir) removeStaleDirs();
      this.dir ??= mkdtempSync(join(tmpdir(), `kuzet-run-${process.pid}-`));
    } catch (e) {
      this.lastError = `cannot create a temporary folder: ${(e as Error).message}`;
      this.failures = 3;
      return false;
    }
    this.baseEnv = { ...process.env };
    const child = spawn('sh', ['-c', SCRIPT, 'kuzet-monitor-helper', this.dir], { stdio: ['pipe', 'pipe', 'ignore'], env: this.baseEnv });
    this.child = child;
    this.starts++;
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    this.refStdout(false);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^(\d+) (\d+)$/.exec(line);
      if (m) void this.finish(Number(m[1]), Number(m[2]));
    });
    const gone = (why: string) => {
      if (this.child !== child) return;
      this.child = null;
      this.failures++;
      this.lastError = why;
      for (const [id, j] of this.jobs) { this.jobs.delete(id); j.resolve(fail(j, `${j.cmd}: the monitor helper stopped (${why})`)); }
    };
    child.on('error', (e) => gone(e.message));
    child.on('exit', (code, sig) => gone(`exited (${sig ?? code})`));
    child.stdin!.on('error', () => undefined);
    return true;
  }

  /** Stops the shell (tools it started finish on their own, each bounded by its timeout). */
  stop(): void {
    const c = this.child;
    this.child = null;
    if (c && c.exitCode === null) c.kill('SIGTERM');
    for (const [id, j] of this.jobs) { this.jobs.delete(id); j.resolve(fail(j, `${j.cmd}: stopped`)); }
    if (this.dir) { rmSync(this.dir, { recursive: true, force: true }); this.dir = null; }
  }

  private refStdout(on: boolean): void {
    const s = this.child?.stdout as unknown as { ref?: () => void; unref?: () => void } | undefined;
    if (on) s?.ref?.(); else s?.unref?.();
  }

  /** The `env` arguments that turn the shell's environment into `want`, or null when a value cannot be passed. */
  private envArgs(want: NodeJS.ProcessEnv): string[] | null {
    const unset: string[] = [];
    const set: string[] = [];
    for (const k of Object.keys(this.baseEnv)) if (want[k] === undefined) unset.push('-u', k);
    for (const [k, v] of Object.entries(want)) {
      if (v === undefined || this.baseEnv[k] === v) continue;
      if (v.includes('\n') || k.includes('=') || k.includes('\n')) return null;
      set.push(`${k}=${v}`);
    }
    return [...unset, ...set];
  }

  /**
   * Runs a tool through the shell; null when this one cannot go that way (then the caller runs it directly).
   * Never throws.
   */
  run(cmd: string, args: string[], opts: { timeoutMs: number; env: NodeJS.ProcessEnv; maxBytes: number }): Promise<RunResult> | null {
    if (!this.enabled || (!this.running && !this.start())) return null;
    if (cmd.includes('=') || cmd.startsWith('-') || [cmd, ...args].some((a) => a.includes('\n'))) return null;
    const envArgs = this.envArgs(opts.env);
    if (envArgs === null) return null;
    const id = this.nextId++;
    const argv = [...envArgs, cmd, ...args];
    const secs = Math.max(0.1, opts.timeoutMs / 1000).toFixed(1);
    this.runs++;
    return new Promise<RunResult>((resolve) => {
      this.jobs.set(id, { cmd, args, timeoutMs: opts.timeoutMs, maxBytes: opts.maxBytes, resolve });
      this.refStdout(true);
      this.child!.stdin!.write(`${id} ${secs} ${argv.length}\n${argv.join('\n')}\n`);
    });
  }

  private async finish(id: number, status: number): Promise<void> {
    const j = this.jobs.get(id);
    if (!j) return;
    this.jobs.delete(id);
    if (this.jobs.size === 0) this.refStdout(false);
    const base = join(this.dir!, String(id));
    const read = async (f: string): Promise<{ text: string; over: boolean }> => {
      try {
        const size = (await stat(f)).size;
        if (size > j.maxBytes) return { text: '', over: true };
        return { text: await readFile(f, 'utf8'), over: false };
      } catch { return { text: '', over: false }; } finally { await unlink(f).catch(() => undefined); }
    };
    const [out, err] = await Promise.all([read(`${base}.o`), read(`${base}.e`)]);
    const line = `${j.cmd} ${j.args.join(' ')}`;
    if (out.over) return j.resolve({ ok: false, code: status, stdout: '', stderr: err.text, error: `${line} failed: output larger than ${j.maxBytes} bytes` });
    if (status === 0) return j.resolve({ ok: true, code: 0, stdout: out.text, stderr: err.text });
    if (status === 127) return j.resolve({ ok: false, code: null, stdout: out.text, stderr: err.text, error: `${j.cmd} is not installed (not found on PATH)`, missing: true });
    if (status === 124 || status === 137) return j.resolve({ ok: false, code: null, stdout: out.text, stderr: err.text, error: `${j.cmd} timed out after ${j.timeoutMs} ms` });
    j.resolve({ ok: false, code: status, stdout: out.text, stderr: err.text, error: `${line} failed: ${(err.text || `exit code ${status}`).trim().split('\n')[0]}` });
  }
}

/** Folders left by helpers of processes that were killed (the exit hook did not run). */
function removeStaleDirs(): void {
  try {
    for (const d of readdirSync(tmpdir())) {
      const m = /^kuzet-run-(\d+)-/.exec(d);
      if (!m || Number(m[1]) === process.pid) continue;
      let alive = true;
      try { process.kill(Number(m[1]), 0); } catch (e) { alive = (e as NodeJS.ErrnoException).code === 'EPERM'; }
      if (!alive) rmSync(join(tmpdir(), d), { recursive: true, force: true });
    }
  } catch { /* best effort */ }
}

function fail(j: Job, error: string): RunResult {
  return { ok: false, code: null, stdout: '', stderr: '', error };
}

/** The process-wide helper the monitors share. */
export const spawnHelper = new SpawnHelper();

process.once('exit', () => spawnHelper.stop());
