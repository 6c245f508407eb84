/**
 * The recorder: one ffmpeg process per source (face, room, screen, mic), each writing crash-safe segments under
 * `<session>/media/<source>/` and, for tapped cameras, low-rate rgb24 frames on a pipe. Every closed segment is
 * hashed and logged (`segment.closed`) as soon as ffmpeg lists it; an ffmpeg that dies is logged and restarted with
 * continued numbering; nothing here ever deletes or rewrites a segment. See README.md in this folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SOURCE_IDS, type MachineConfig, type SourceConfig, type SourceId } from '../core/config.js';
import type { Frame } from '../core/context.js';
import { KuzetError, fsError } from '../core/errors.js';
import type { EventLog } from '../core/eventlog.js';
import { resolveFfmpeg } from '../core/ffmpeg.js';
import { buildRunArgs, checkSource, describeSource, isAudioSource, segmentExt, segmentName, SOURCE_LABEL, type RunPlan } from './args.js';
import { hashFile, listSegmentFiles, parseListLine, probeDuration, round3, type ListEntry, type SegmentClosed } from './segments.js';
import { FrameSplitter, TapHub, type TapStats } from './tap.js';

export interface RecorderOptions {
  /** The session folder; media goes to `<dir>/media/<source>/`. */
  dir: string;
  log: EventLog;
  config: MachineConfig;
  /** Default: every source whose kind is not "none". */
  sources?: SourceId[];
  ffmpegPath?: string;
  /** Session start (ms since epoch) that `start`/`end`/`pts` count from. Default: the wall time of the log's first record. */
  t0?: number;
  /** Environment for `$DISPLAY` and tool lookup (tests). */
  env?: NodeJS.ProcessEnv;
  /** Frames kept per tap subscriber before the oldest is dropped. */
  tapDepth?: number;
}

export interface SourceStats {
  source: SourceId;
  kind: SourceConfig['kind'];
  state: RunnerState;
  run: number;
  pid: number | null;
  segments: number;
  bytes: number;
  restarts: number;
  lastError: string | null;
  tap: TapStats | null;
}

export type RecorderStats = Partial<Record<SourceId, SourceStats>>;

export interface RecorderEvents {
  segment: [SegmentClosed];
  started: [{ source: SourceId; run: number; pid: number | null }];
  exited: [{ source: SourceId; run: number; code: number | null; signal: string | null; stderrTail: string; expected: boolean }];
  restart: [{ source: SourceId; run: number; delayMs: number }];
  failed: [{ source: SourceId; reason: string }];
  stopped: [{ source: SourceId }];
  /** Something went wrong that the exam survives (disk full, a log append failed …). Never 'error'. */
  problem: [KuzetError];
}

type RunnerState = 'idle' | 'starting' | 'running' | 'waiting' | 'stopping' | 'stopped' | 'failed';

interface Run {
  n: number;
  plan: RunPlan;
  proc: ChildProcess;
  pid: number | null;
  startNumber: number;
  spawnedAt: number;
  offset: number;
  stderr: string[];
  csvOffset: number;
  csvRest: string;
  lastEnd: number | null;
  firstBytes: boolean;
  onFirstBytes: (() => void) | null;
  exited: boolean;
  exit: { code: number | null; signal: string | null } | null;
  /** Resolves once the exit has been fully processed (last segments hashed and logged). */
  done: Promise<void>;
  resolveDone: () => void;
  onExitDuringStart: ((e: KuzetError) => void) | null;
  poll: NodeJS.Timeout | null;
  watch: NodeJS.Timeout | null;
  /** Set when this run was told to end because it can no longer record (write error, stall). */
  ending: string | null;
  growth: { file: string; size: number; at: number };
  clockStarted: boolean;
  /** ffmpeg reported a write error: the segment it closes next was cut short. */
  writeFailed: boolean;
}

const STDERR_LINES = 25;
const POLL_MS = 200;
const QUICK_FAILURE_MS = 10_000;
/**
 * ffmpeg keeps running when one output fails (e.g. the segment output on a full disk while the tap pipe still
 * works), so these stderr lines end the run: it is stopped and restarted, and the failure is logged.
 */
const FATAL_STDERR = /No space left on device|Disk quota exceeded|Error muxing a packet|av_interleaved_write_frame\(\): (?!Immediate exit)|Error writing trailer|Input\/output error/i;

/** Live ffmpeg processes of this Node process, signalled if Node exits without stopping the recorder. */
const live = new Set<ChildProcess>();
let exitHook = false;
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  // SIGTERM makes ffmpeg stop at once; the bytes of the open segment are already flushed, and crash recovery
  // (closeDanglingSegments) logs that segment.
  process.on('exit', () => { for (const p of live) { try { p.kill('SIGTERM'); } catch { /* gone */ } } });
}

/** Classifies an ffmpeg failure from its stderr into a KuzetError code and a hint for the person fixing it. */
export function classifyFailure(stderr: string): { code: string; hint: string } {
  if (/No space left on device|Disk quota exceeded/i.test(stderr)) return { code: 'DISK_FULL', hint: 'The disk is full: free space on this drive. Segments already closed are kept.' };
  if (/Permission denied|Operation not permitted/i.test(stderr)) return { code: 'NO_PERMISSION', hint: 'Kuzet may not open the device or write the folder (on Linux, is the user in the "video" group?).' };
  if (/Inappropriate ioctl for device|Not a video capture device|not a capture device/i.test(stderr)) return { code: 'SOURCE_FAILED', hint: 'That device is not a camera: pick the right /dev/video* (v4l2-ctl --list-devices lists them).' };
  if (/Device or resource busy/i.test(stderr)) return { code: 'SOURCE_BUSY', hint: 'Another program is using the device: close it and try again.' };
  if (/Invalid data found|moov atom not found|could not find codec parameters/i.test(stderr)) return { code: 'SOURCE_FAILED', hint: 'ffmpeg cannot read this input as video: check the file or device in the machine config.' };
  if (/No such file or directory|No such device|Could not find video device|Cannot open display|Can't open display|Input\/output error/i.test(stderr)) {
    return { code: 'SOURCE_NOT_FOUND', hint: 'Check that the device is connected and that the machine config names it correctly.' };
  }
  return { code: 'SOURCE_FAILED', hint: 'See the ffmpeg message above; check the source settings in the machine config.' };
}

const ERRORISH = /error|fail|cannot|can't|could not|no such|invalid|denied|not permitted|unable|no space|not found|busy|refused|\[kuzet\]/i;
const INFO_NOISE = /^(Input #|Output #|Stream #|Stream mapping|Duration:|Metadata:|Press \[q\]|\s)|\[libx26[45] @|frame I:|frame P:|kb\/s:|mb [IPB] |ref [PB] |consecutive B-frames|coded y,|i16 v,h,dc,p|i8 v,h,dc|Weighted P-Frames|Last message repeated|video:\d|^\s*$/;

/** The most telling stderr lines (ffmpeg's error lines, else its last words), one line. */
export function reasonOf(lines: string[]): string {
  const clean = lines.map((l) => l.trim()).filter((l) => l && !INFO_NOISE.test(l));
  const errs = clean.filter((l) => ERRORISH.test(l));
  const pick = errs.length ? errs : clean;
  return [...new Set(pick.slice(-3))].join(' | ') || '(ffmpeg printed nothing)';
}

/** Lines kept in the stderr tail: ffmpeg's banner-like info lines are dropped, warnings and errors kept. */
function keepLine(l: string): boolean {
  return !INFO_NOISE.test(l) || ERRORISH.test(l);
}

/** The wall time of the first record of an event log file (the session's start), or null. */
function firstRecordWall(path: string): number | null {
  try {
    const fd = openSync(path, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      const n = readSync(fd, buf, 0, buf.length, 0);
      const line = buf.subarray(0, n).toString('utf8').split('\n')[0];
      const wall = (JSON.parse(line ?? '') as { wall?: unknown }).wall;
      return typeof wall === 'number' ? wall : null;
    } finally { closeSync(fd); }
  } catch { return null; }
}

class SourceRunner {
  state: RunnerState = 'idle';
  run: Run | null = null;
  runNo: number;
  nextIndex: number;
  restarts = 0;
  quickFailures = 0;
  segments = 0;
  bytes = 0;
  lastError: string | null = null;
  lastExit: { code: number | null; signal: string | null } | null = null;
  private readonly logged = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private restartTimer: NodeJS.Timeout | null = null;
  readonly dir: string;
  readonly audio: boolean;

  constructor(
    private readonly rec: Recorder,
    readonly id: SourceId,
    readonly cfg: SourceConfig,
    readonly hub: TapHub | null,
  ) {
    this.dir = join(rec.dir, 'media', id);
    this.audio = isAudioSource(id, cfg);
    // A folder that already holds segments (a resumed session) continues after them, in a new run.
    const existing = listSegmentFiles(this.dir);
    this.nextIndex = existing.length ? existing.at(-1)!.index + 1 : 0;
    this.runNo = existsSync(this.dir) ? readdirSync(this.dir).filter((n) => /^segments-\d+\.csv$/.test(n)).length : 0;
  }

  private enqueue(fn: () => Promise<void> | void): Promise<void> {
    const p = this.chain.then(fn).catch((e) => this.rec.problem(e instanceof KuzetError ? e : new KuzetError('RECORDER_INTERNAL', `${SOURCE_LABEL[this.id]}: ${(e as Error).message}`, { source: this.id })));
    this.chain = p;
    return p;
  }

  /** Spawns ffmpeg for the next run. Never throws for ffmpeg failures: they arrive as an exit. */
  private spawnRun(): Run {
    mkdirSync(this.dir, { recursive: true });
    const n = this.runNo++;
    const startNumber = this.nextIndex;
    const plan = buildRunArgs({ id: this.id, cfg: this.cfg, config: this.rec.config, dir: this.dir, run: n, startNumber, env: this.rec.env });
    const spawnedAt = Date.now();
    const proc = spawn(this.rec.ffmpeg, plan.args, { stdio: ['pipe', plan.tap ? 'pipe' : 'ignore', 'pipe'], windowsHide: true, env: this.rec.env });
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => { resolveDone = r; });
    const run: Run = {
      n, plan, proc, pid: proc.pid ?? null, startNumber, spawnedAt, offset: round3((spawnedAt - this.rec.t0) / 1000),
      stderr: [], csvOffset: 0, csvRest: '', lastEnd: null, firstBytes: false, onFirstBytes: null,
      exited: false, exit: null, done, resolveDone, onExitDuringStart: null, poll: null, watch: null,
      ending: null, growth: { file: '', size: -1, at: spawnedAt }, clockStarted: false, writeFailed: false,
    };
    this.run = run;
    live.add(proc);
    proc.stdin?.on('error', () => { /* ffmpeg already gone: its exit is handled below */ });
    let errBuf = '';
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (c: string) => {
      errBuf += c;
      const lines = errBuf.split(/\r?\n|\r/);
      errBuf = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.trim()) continue;
        if (!run.clockStarted && l.startsWith('Press [q] to stop')) {
          // The stream clock starts now: segment times and frame pts count from here.
          run.clockStarted = true;
          run.offset = round3((Date.now() - this.rec.t0) / 1000);
        }
        if (!keepLine(l)) continue;
        run.stderr.push(l);
        if (FATAL_STDERR.test(l) && !run.writeFailed && this.state !== 'stopping') {
          run.writeFailed = true;
          this.endRun(run, `ffmpeg reported: ${l.trim()}`);
        }
      }
      if (run.stderr.length > STDERR_LINES * 2) run.stderr.splice(0, run.stderr.length - STDERR_LINES);
      if (errBuf.length > 4096) errBuf = errBuf.slice(-4096);
    });
    proc.stderr?.on('end', () => { if (errBuf.trim()) run.stderr.push(errBuf); errBuf = ''; });
    if (plan.tap && proc.stdout) {
      const splitter = new FrameSplitter(this.id, plan.tap.width, plan.tap.height, plan.tap.fps, () => run.offset, (f: Frame) => {
        this.markFirstBytes(run);
        this.hub?.push(f);
      });
      proc.stdout.on('data', (c: Buffer) => splitter.push(c));
      proc.stdout.on('error', () => { /* the exit is handled below */ });
    }
    const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
      if (run.exited) return;
      run.exited = true;
      run.exit = { code, signal };
      live.delete(proc);
      if (run.poll) { clearInterval(run.poll); run.poll = null; }
      if (run.watch) { clearInterval(run.watch); run.watch = null; }
      void this.enqueue(() => this.afterExit(run));
    };
    proc.on('close', onGone);
    proc.on('error', (e) => {
      run.stderr.push(`cannot run ${this.rec.ffmpeg}: ${e.message}`);
      // A process that never started emits no 'close' on every platform: finish it here.
      if (proc.pid === undefined) onGone(null, null);
    });
    run.poll = setInterval(() => { void this.enqueue(() => this.scan(run)); }, POLL_MS);
    run.poll.unref();
    run.watch = setInterval(() => this.checkGrowth(run), 1000);
    run.watch.unref();
    this.rec.append('recorder.started', { source: this.id, run: n, startNumber, pid: run.pid, offset: run.offset, args: plan.args });
    this.rec.emit('started', { source: this.id, run: n, pid: run.pid });
    return run;
  }

  /**
   * Ends a run that can no longer record: "q" so the segment muxer closes and lists the open segment, SIGKILL if
   * that does not work within 3 s. The exit then goes through the normal path (logged, restarted).
   */
  private endRun(run: Run, why: string): void {
    if (run.exited || run.ending || this.state === 'stopping' || this.state === 'stopped') return;
    run.ending = why;
    run.stderr.push(`[kuzet] ending this ffmpeg run: ${why}`);
    try { run.proc.stdin?.write('q'); run.proc.stdin?.end(); } catch { /* gone */ }
    setTimeout(() => { if (!run.exited) { try { run.proc.kill('SIGKILL'); } catch { /* gone */ } } }, 3000).unref();
  }

  /** A run whose newest segment stopped growing is stuck (a frozen camera driver, a hung pipe): end it. */
  private checkGrowth(run: Run): void {
    if (run.exited || run.ending || this.state !== 'running') return;
    const now = Date.now();
    const files = listSegmentFiles(this.dir).filter((f) => f.index >= run.startNumber);
    const newest = files.at(-1);
    let size = -1;
    if (newest) { try { size = statSync(join(this.dir, newest.name)).size; } catch { /* raced with a rename: next time */ } }
    const key = newest?.name ?? '';
    if (key !== run.growth.file || size !== run.growth.size) { run.growth = { file: key, size, at: now }; return; }
    const stallMs = Math.max(10_000, 2 * this.rec.config.recording.segmentSeconds * 1000);
    if (now - run.growth.at >= stallMs) {
      this.rec.append('recorder.stalled', { source: this.id, run: run.n, file: key ? `media/${this.id}/${key}` : null, ms: now - run.growth.at });
      this.endRun(run, `no new data for ${Math.round((now - run.growth.at) / 1000)} s`);
    }
  }

  private markFirstBytes(run: Run): void {
    if (run.firstBytes) return;
    run.firstBytes = true;
    const f = run.onFirstBytes;
    run.onFirstBytes = null;
    f?.();
  }

  /** Reads new lines of this run's CSV list; each names a closed segment. Also notices the first bytes. */
  private async scan(run: Run): Promise<void> {
    if (!run.firstBytes) {
      try {
        if (statSync(join(this.dir, segmentName(run.startNumber, run.plan.ext))).size > 0) this.markFirstBytes(run);
      } catch { /* not there yet */ }
    }
    let text = '';
    try {
      const fd = openSync(run.plan.listPath, 'r');
      try {
        const size = statSync(run.plan.listPath).size;
        if (size > run.csvOffset) {
          const buf = Buffer.alloc(size - run.csvOffset);
          const got = readSync(fd, buf, 0, buf.length, run.csvOffset);
          run.csvOffset += got;
          text = buf.subarray(0, got).toString('utf8');
        }
      } finally { closeSync(fd); }
    } catch { return; /* no list yet */ }
    if (!text) return;
    const all = run.csvRest + text;
    const lines = all.split('\n');
    run.csvRest = lines.pop() ?? '';
    for (const line of lines) {
      const e = parseListLine(line);
      if (e) await this.closeListed(run, e);
    }
  }

  private async closeListed(run: Run, e: ListEntry): Promise<void> {
    if (this.logged.has(e.name)) return;
    const path = join(this.dir, e.name);
    const { sha256, size } = await hashFile(path);
    const start = round3(run.offset + e.start);
    const end = round3(run.offset + e.end);
    this.record(run, {
      source: this.id, index: e.index, file: `media/${this.id}/${e.name}`, sha256, size, start, end, duration: round3(e.end - e.start), run: run.n,
      ...(run.writeFailed ? { partial: true as const } : {}),
    });
    run.lastEnd = end;
  }

  private record(run: Run, data: SegmentClosed): void {
    this.logged.add(data.file.split('/').pop()!);
    this.segments++;
    this.bytes += data.size;
    this.nextIndex = Math.max(this.nextIndex, data.index + 1);
    this.rec.append('segment.closed', data);
    this.rec.emit('segment', data);
  }

  /** Segments of this run that ffmpeg never listed (it died mid-segment): hashed and logged as partial. */
  private async closeUnlisted(run: Run): Promise<void> {
    for (const f of listSegmentFiles(this.dir)) {
      this.nextIndex = Math.max(this.nextIndex, f.index + 1);
      if (f.index < run.startNumber || this.logged.has(f.name)) continue;
      const path = join(this.dir, f.name);
      const { sha256, size } = await hashFile(path);
      const duration = size > 0 ? await probeDuration(path) : null;
      const start = run.lastEnd ?? run.offset;
      this.record(run, {
        source: this.id, index: f.index, file: `media/${this.id}/${f.name}`, sha256, size,
        start, end: duration !== null ? round3(start + duration) : null, duration, run: run.n, partial: true,
      });
      if (duration !== null) run.lastEnd = round3(start + duration);
    }
  }

  private async afterExit(run: Run): Promise<void> {
    await this.scan(run);
    // The list's last line is complete once ffmpeg has exited.
    if (run.csvRest.trim()) { const e = parseListLine(run.csvRest); run.csvRest = ''; if (e) await this.closeListed(run, e); }
    await this.closeUnlisted(run);
    const expected = this.state === 'stopping';
    const { code, signal } = run.exit ?? { code: null, signal: null };
    const stderrTail = run.stderr.slice(-STDERR_LINES).join('\n').slice(-3000);
    // An exit we asked for is reported by recorder.stopped; recorder.exited means ffmpeg stopped on its own (or was killed).
    if (!expected) this.rec.append('recorder.exited', { source: this.id, run: run.n, code, signal, stderrTail, expected, ...(run.ending ? { reason: run.ending } : {}) });
    this.lastExit = { code, signal };
    this.rec.emit('exited', { source: this.id, run: run.n, code, signal, stderrTail, expected });
    if (!expected) {
      const { code: ecode, hint } = classifyFailure(stderrTail);
      const msg = `The ${describeSource(this.id, this.cfg)} recording stopped (ffmpeg ${signal ? 'killed by ' + signal : 'exit code ' + code}): ${reasonOf(run.stderr)}. ${hint}`;
      this.lastError = msg;
      if (ecode === 'DISK_FULL') {
        const err = new KuzetError('DISK_FULL', msg, { source: this.id, run: run.n });
        this.rec.append('recorder.error', { source: this.id, run: run.n, code: err.code, message: err.message });
        this.rec.problem(err);
      }
    }
    run.resolveDone();
    if (run.onExitDuringStart) {
      const { code: ecode, hint } = classifyFailure(stderrTail);
      run.onExitDuringStart(new KuzetError(ecode, `Cannot start the ${describeSource(this.id, this.cfg)}: ffmpeg stopped at once (${signal ? 'signal ' + signal : 'exit code ' + code}): ${reasonOf(run.stderr)}. ${hint}`, { source: this.id, device: this.cfg.device ?? this.cfg.file ?? this.cfg.pattern, stderrTail }));
      return;
    }
    if (this.state === 'running') this.scheduleRestart(run);
  }

  private scheduleRestart(run: Run): void {
    const lived = Date.now() - run.spawnedAt;
    this.quickFailures = lived < QUICK_FAILURE_MS ? this.quickFailures + 1 : 0;
    if (this.restarts >= this.rec.config.recording.maxRestarts) {
      const reason = `ffmpeg for the ${SOURCE_LABEL[this.id]} stopped ${this.restarts + 1} times; gave up after ${this.restarts} restarts. Last: ${this.lastError ?? 'unknown'}`;
      this.state = 'failed';
      this.lastError = reason;
      this.rec.append('recorder.failed', { source: this.id, reason });
      this.rec.emit('failed', { source: this.id, reason });
      this.hub?.end();
      return;
    }
    const base = this.rec.config.recording.restartDelayMs;
    // Back off when a source keeps failing at once (full disk, unplugged camera), up to 30 s.
    const delayMs = Math.min(base * 2 ** Math.max(0, Math.min(this.quickFailures - 1, 5)), Math.max(base, 30_000));
    this.restarts++;
    this.state = 'waiting';
    this.rec.append('recorder.restart', { source: this.id, run: this.runNo, delayMs });
    this.rec.emit('restart', { source: this.id, run: this.runNo, delayMs });
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.state !== 'waiting') return;
      this.state = 'running';
      try {
        this.spawnRun();
      } catch (e) {
        this.lastError = (e as Error).message;
        this.rec.problem(e instanceof KuzetError ? e : new KuzetError('SOURCE_FAILED', `Cannot restart the ${SOURCE_LABEL[this.id]}: ${(e as Error).message}`, { source: this.id }));
        this.scheduleRestart(this.run!);
      }
    }, delayMs);
  }

  /** First run: resolves on the first bytes, rejects with a KuzetError on an early exit or a timeout. */
  async start(): Promise<void> {
    this.state = 'starting';
    const run = this.spawnRun();
    const timeoutMs = this.rec.config.recording.startTimeoutMs;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          run.onExitDuringStart = null;
          reject(new KuzetError('SOURCE_TIMEOUT', `The ${describeSource(this.id, this.cfg)} produced nothing within ${Math.round(timeoutMs / 1000)} s of starting. ${reasonOf(run.stderr)}`, { source: this.id }));
        }, timeoutMs);
        run.onFirstBytes = () => { clearTimeout(timer); run.onExitDuringStart = null; resolve(); };
        run.onExitDuringStart = (e) => { clearTimeout(timer); run.onFirstBytes = null; reject(e); };
      });
    } catch (e) {
      this.lastError = (e as Error).message;
      this.state = 'failed';
      if (!run.exited) { try { run.proc.kill('SIGKILL'); } catch { /* gone */ } }
      await run.done;
      throw e;
    }
    this.state = 'running';
  }

  async stop(timeoutMs: number): Promise<void> {
    const prev = this.state;
    if (prev === 'stopped' || prev === 'idle') return;
    this.state = 'stopping';
    if (this.restartTimer) { clearTimeout(this.restartTimer); this.restartTimer = null; }
    const run = this.run;
    if (run && !run.exited) {
      try { run.proc.stdin?.write('q'); run.proc.stdin?.end(); } catch { /* gone */ }
      let timer: NodeJS.Timeout | null = null;
      const killed = await Promise.race([
        run.done.then(() => false),
        new Promise<boolean>((r) => { timer = setTimeout(() => r(true), timeoutMs); }),
      ]);
      if (timer) clearTimeout(timer);
      if (killed && !run.exited) {
        this.rec.problem(new KuzetError('STOP_TIMEOUT', `ffmpeg for the ${SOURCE_LABEL[this.id]} did not stop within ${timeoutMs} ms; killed it (its last segment is logged as partial).`, { source: this.id }));
        try { run.proc.kill('SIGKILL'); } catch { /* gone */ }
      }
    }
    if (run) await run.done;
    await this.chain;
    this.state = 'stopped';
    this.hub?.end();
    this.rec.append('recorder.stopped', { source: this.id, segments: this.segments, bytes: this.bytes, restarts: this.restarts, exit: this.lastExit });
    this.rec.emit('stopped', { source: this.id });
  }

  stats(): SourceStats {
    return {
      source: this.id, kind: this.cfg.kind, state: this.state, run: this.run?.n ?? -1,
      pid: this.run && !this.run.exited ? this.run.pid : null,
      segments: this.segments, bytes: this.bytes, restarts: this.restarts, lastError: this.lastError,
      tap: this.hub ? this.hub.stats() : null,
    };
  }
}

export class Recorder extends EventEmitter<RecorderEvents> {
  readonly dir: string;
  readonly log: EventLog;
  readonly config: MachineConfig;
  readonly ffmpeg: string;
  readonly env: NodeJS.ProcessEnv;
  readonly sources: SourceId[];
  t0: number;
  private readonly runners = new Map<SourceId, SourceRunner>();
  private readonly hubs = new Map<SourceId, TapHub>();
  private pending: [string, unknown][] = [];
  private phase: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(opts: RecorderOptions) {
    super();
    this.dir = opts.dir;
    this.log = opts.log;
    this.config = opts.config;
    this.env = opts.env ?? process.env;
    this.ffmpeg = opts.ffmpegPath ?? resolveFfmpeg(this.env).path;
    this.t0 = opts.t0 ?? firstRecordWall(opts.log.path) ?? Date.now();
    const wanted = opts.sources ?? SOURCE_IDS.filter((s) => this.config.sources[s].kind !== 'none');
    for (const s of wanted) {
      if (!(SOURCE_IDS as readonly string[]).includes(s)) throw new KuzetError('CONFIG_INVALID', `Unknown source "${s}" (sources are ${SOURCE_IDS.join(', ')}).`);
      if (this.config.sources[s].kind === 'none') throw new KuzetError('SOURCE_DISABLED', `The ${SOURCE_LABEL[s]} is switched off (sources.${s}.kind is "none") but was asked to record.`, { source: s });
    }
    this.sources = [...new Set(wanted)];
    const rec = this.config.recording;
    for (const s of this.sources) {
      const cfg = this.config.sources[s];
      const tapped = !isAudioSource(s, cfg) && rec.tapFps > 0 && (rec.tapSources as string[]).includes(s);
      const hub = tapped ? new TapHub(opts.tapDepth ?? 3) : null;
      if (hub) this.hubs.set(s, hub);
      this.runners.set(s, new SourceRunner(this, s, cfg, hub));
    }
  }

  /** Bundle-relative folder of a source's segments and the segment file extension. */
  mediaDir(source: SourceId): string {
    return `media/${source}`;
  }

  get segmentExt(): 'ts' | 'mp4' {
    return segmentExt(this.config);
  }

  /**
   * Starts every source. Resolves once each has written its first bytes; if any fails (missing camera, bad file,
   * no bytes within `recording.startTimeoutMs`) the others are stopped and a KuzetError names the source(s).
   */
  async start(): Promise<void> {
    if (this.phase !== 'new') throw new KuzetError('RECORDER_STATE', `The recorder was already started (it is ${this.phase}); make a new Recorder for a new recording.`);
    this.phase = 'starting';
    const problems: KuzetError[] = [];
    for (const r of this.runners.values()) {
      try { checkSource(r.id, r.cfg); } catch (e) { problems.push(e as KuzetError); }
    }
    if (problems.length) { this.phase = 'stopped'; throw combine(problems); }
    try { mkdirSync(join(this.dir, 'media'), { recursive: true }); } catch (e) { this.phase = 'stopped'; throw fsError(e, 'create the media folder', join(this.dir, 'media')); }
    installExitHook();
    const results = await Promise.allSettled([...this.runners.values()].map((r) => r.start()));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as KuzetError] : []));
    if (failed.length) {
      await this.stop();
      throw combine(failed);
    }
    this.phase = 'running';
  }

  /** Graceful stop: "q" to each ffmpeg, wait for its last segment to be listed, hashed and logged; kill after the timeout. */
  async stop(): Promise<void> {
    if (this.phase === 'stopped' || this.phase === 'stopping') return;
    this.phase = 'stopping';
    await Promise.all([...this.runners.values()].map((r) => r.stop(this.config.recording.stopTimeoutMs)));
    for (const h of this.hubs.values()) h.end();
    this.flushPending();
    this.phase = 'stopped';
  }

  /**
   * Raw rgb24 frames of a tapped source (`recording.tapSources`), `recording.tapFps` a second at
   * `tapWidth`x`tapHeight`. Each iteration is a subscriber that sees frames from now on, across ffmpeg restarts,
   * until the recorder stops. A slow subscriber loses its oldest frames (counted in stats), never blocks ffmpeg.
   */
  frames(source: SourceId): AsyncIterable<Frame> {
    const hub = this.hubs.get(source);
    if (!hub) {
      const why = !this.runners.has(source) ? 'it is not being recorded' : this.config.recording.tapFps <= 0 ? 'recording.tapFps is 0' : 'it is not in recording.tapSources';
      throw new KuzetError('NO_TAP', `No frame tap for the ${SOURCE_LABEL[source] ?? source}: ${why}.`, { source });
    }
    return hub.iterable();
  }

  stats(): RecorderStats {
    const out: RecorderStats = {};
    for (const [s, r] of this.runners) out[s] = r.stats();
    return out;
  }

  /** Appends to the event log; if the log cannot be written (disk full) the record waits and is retried in order. */
  append(type: string, data: unknown): void {
    this.pending.push([type, data]);
    this.flushPending();
  }

  private flushPending(): void {
    while (this.pending.length) {
      const [type, data] = this.pending[0]!;
      try {
        this.log.append(type, data);
      } catch (e) {
        this.problem(e instanceof KuzetError ? e : new KuzetError('LOG_WRITE', `Cannot log ${type}: ${(e as Error).message}`));
        return;
      }
      this.pending.shift();
    }
  }

  /** Events that could not be logged yet (normally 0). */
  get unlogged(): number {
    return this.pending.length;
  }

  problem(e: KuzetError): void {
    this.emit('problem', e);
  }
}

function combine(errs: KuzetError[]): KuzetError {
  if (errs.length === 1) return errs[0]!;
  return new KuzetError(errs[0]!.code, errs.map((e) => e.message).join('\n'), { sources: errs.map((e) => e.details?.source), codes: errs.map((e) => e.code) });
}
