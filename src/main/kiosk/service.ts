/**
 * KioskService: the student flow over the real headless services, in plain Node. It answers every method of the
 * bridge contract (src/shared/bridge.ts) through `invoke`, pushes state and preview frames as events, and takes
 * lockdown observations from the shell (`note*`), which it writes to the session's hash-chained log. The Electron
 * main process and the Chromium UI tests both drive this same class.
 */
import { EventEmitter } from 'node:events';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ExamConfig, MachineConfig, SourceId } from '../core/config.js';
import type { Frame } from '../core/context.js';
import type { LogRecord } from '../core/eventlog.js';
import { isKuzetError } from '../core/errors.js';
import type { HomeLayout } from '../core/home.js';
import type { KeyPair } from '../core/keys.js';
import {
  BRIDGE_METHODS, BRIDGE_VERSION, LANGS,
  type BridgeError, type BridgeMethod, type BridgeMethods, type BridgeResult, type CheckItem, type ExamInfo,
  type ExamWarning, type KioskState, type Lang, type PreviewFrame,
} from '../../shared/bridge.js';
import { checkKeyBase, warningKey } from '../../shared/i18n/index.js';
import { ExitCodeGuard, sebConfigKey } from '../shell/policy.js';
import type { MonitorSet, MonitorsOptions, PasteDecision } from '../monitors/index.js';
import type { LiveUploadService } from '../upload/live.js';
import { sha256Hex } from '../core/canonical.js';
import type { DetectionService } from '../episodes/step.js';
import { lumaStats, pngDataUrl } from './png.js';
import { realPorts, type KioskPorts, type PreflightLine, type SessionLike, type UploadProgress } from './ports.js';

export interface KioskOptions {
  machine: MachineConfig;
  exam: ExamConfig;
  demo?: boolean;
  home?: HomeLayout;
  key?: KeyPair;
  lang?: Lang;
  ports?: Partial<KioskPorts>;
  /**
   * For the session's monitors step and the pre-checks: the kiosk's own pids/windows (`ours`) and sources the
   * shell has better versions of (Electron clipboard, Electron screen). Headless, the OS sources are used.
   */
  monitors?: MonitorsOptions;
  /** Detector models folder (default: the repository's / package's `models/`). */
  modelsDir?: string;
  /** Preview frames per second per camera (at most 2). */
  previewFps?: number;
  /** How long the camera checks wait for a first frame. */
  cameraWaitMs?: number;
  /** After the exam time is up, the session finishes by itself after this grace period. */
  overtimeGraceMs?: number;
  now?: () => number;
}

export interface KioskEvents {
  state: [KioskState];
  preview: [PreviewFrame];
  /** The exam page should be shown (shell: load `url` into the locked exam view). */
  'exam-view': [{ show: boolean; url: string }];
  /** The session was sealed and the result is known: the kiosk may close. */
  released: [];
  quit: [];
}

const MAX_WARNINGS = 20;
export const AFTER_SEAL_FILE = 'after-seal.ndjson';
const AFTER_SEAL_MAX_BYTES = 1024 * 1024;
const CAMERAS: readonly ('face' | 'room')[] = ['face', 'room'];

class BridgeFailure extends Error {
  constructor(readonly code: string, message: string, readonly field?: string) { super(message); }
}

/** Which log events the student sees as a warning during the exam, and under which key. */
export function warningFor(rec: LogRecord): string | null {
  const t = rec.type;
  const d = (rec.data ?? {}) as Record<string, unknown>;
  if (t === 'kiosk.focus_lost') return 'focus_lost';
  if (t === 'kiosk.shortcut_blocked') return 'shortcut';
  if (t === 'kiosk.navigation_blocked' || t === 'kiosk.window_open_blocked') return 'navigation';
  if (t === 'kiosk.print_blocked') return 'print';
  if (t === 'kiosk.paste_blocked') return 'clipboard';
  if (t === 'detect.unavailable' || t === 'detect.loop_failed' || t === 'detect.worker_error') return 'detector_off';
  if ((t === 'recorder.exited' && d.expected === false) || t === 'recorder.failed' || t === 'recorder.stalled') return 'recorder';
  if (t === 'episode.started') {
    const map: Record<string, string> = {
      'face.absent': 'face_missing', 'face.multiple': 'multiple_faces', 'head.away': 'head_away', 'head.away.repeated': 'head_away',
      'object.phone': 'phone', 'object.book': 'book', 'person.extra': 'extra_person',
    };
    return map[String(d.type)] ?? 'generic';
  }
  const monitor: Record<string, string> = {
    'monitor.foreground.away': 'window', 'monitor.process.found': 'process', 'monitor.process.terminate_failed': 'process',
    'monitor.display.changed': 'display', 'monitor.device.added': 'device', 'monitor.device.removed': 'device', 'monitor.device.changed': 'device',
    'monitor.clipboard.paste_blocked': 'clipboard', 'monitor.clipboard.outside_copy': 'clipboard_outside', 'monitor.clipboard.paste_outside': 'clipboard_outside',
  };
  return monitor[t] ?? null;
}

/** A short, technical detail for a warning (what the proctor also sees): the program, window, device or key. */
export function warningDetail(rec: LogRecord): string | undefined {
  const d = (rec.data ?? {}) as Record<string, unknown>;
  const o = (v: unknown) => (v && typeof v === 'object' ? v as Record<string, unknown> : {});
  const s = (v: unknown) => (typeof v === 'string' && v ? v.slice(0, 120) : undefined);
  switch (rec.type) {
    case 'monitor.process.found': case 'monitor.process.terminate_failed': return s(d.entry) ?? s(d.name);
    case 'monitor.foreground.away': { const w = o(d.window); return s(w.title) ?? s(o(w.owner).name); }
    case 'monitor.device.added': case 'monitor.device.removed': case 'monitor.device.changed': { const dev = o(d.device); return s(dev.product) ?? s(dev.description) ?? s(dev.key); }
    case 'monitor.display.changed': return typeof d.count === 'number' ? `${d.count}` : undefined;
    case 'kiosk.shortcut_blocked': return s(d.combo);
    case 'kiosk.navigation_blocked': case 'kiosk.window_open_blocked': { try { return new URL(String(d.url)).host || undefined; } catch { return undefined; } }
    default: return undefined;
  }
}

export class KioskService extends EventEmitter<KioskEvents> {
  private readonly machine: MachineConfig;
  private readonly exam: ExamConfig;
  private readonly demo: boolean;
  private readonly opts: KioskOptions;
  private readonly ports: KioskPorts;
  private readonly now: () => number;
  private readonly exitGuard: ExitCodeGuard;
  private state: KioskState;
  private session: SessionLike | null = null;
  private readonly onRecord = (rec: LogRecord) => this.onSessionEvent(rec);
  /** Shell observations made before a session exists: written to the log as soon as it opens. */
  private pendingNotes: { type: string; data: Record<string, unknown> }[] = [];
  private previewAbort: AbortController | null = null;
  private readonly lastFrame = new Map<'face' | 'room', Frame>();
  private readonly frameWaiters = new Map<'face' | 'room', ((f: Frame) => void)[]>();
  private warningSeq = 0;
  private busy: Promise<unknown> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private finishing: Promise<void> | null = null;
  private uploadAbort: AbortController | null = null;
  private sealed: { bundleDir: string; manifestSha256: string } | null = null;

  constructor(opts: KioskOptions) {
    super();
    this.opts = opts;
    this.machine = opts.machine;
    this.exam = opts.exam;
    this.demo = !!opts.demo;
    this.ports = { ...realPorts(), ...opts.ports };
    this.now = opts.now ?? Date.now;
    this.exitGuard = new ExitCodeGuard(opts.exam.exitCodeSha256);
    const languages = (opts.exam.languages.length ? opts.exam.languages : [...LANGS]) as Lang[];
    const lang = opts.lang && languages.includes(opts.lang) ? opts.lang : languages[0]!;
    const info: ExamInfo = {
      examId: opts.exam.examId, title: opts.exam.title, durationMinutes: opts.exam.durationMinutes,
      fields: opts.exam.fields.map((f) => ({ id: f.id, ...(f.label ? { label: f.label } : {}), ...(f.pattern ? { pattern: f.pattern } : {}) })),
      languages, demo: this.demo, hasExitCode: /^[0-9a-f]{64}$/.test(opts.exam.exitCodeSha256), hasServer: !!opts.machine.upload.server,
    };
    this.state = {
      bridgeVersion: BRIDGE_VERSION, screen: 'identify', lang, exam: info, checks: [], checksPassed: false,
      checksRunning: false, rulesAccepted: false, recording: false, warnings: [], warningCount: 0, focusLosses: 0, released: false,
    };
  }

  getState(): KioskState {
    return structuredClone(this.state);
  }

  /** The exam config (the shell builds its allowlist from it). */
  get examConfig(): ExamConfig {
    return this.exam;
  }

  get sessionContext() {
    return this.session?.ctx ?? null;
  }

  private update(patch: Partial<KioskState>): KioskState {
    this.state = { ...this.state, ...patch };
    const s = this.getState();
    this.emit('state', s);
    return s;
  }

  // -------------------------------------------------------------------------------------------------------------
  // The bridge

  /** Answers one bridge request. Arguments are untrusted (they come from a renderer): checked here. Never throws. */
  async invoke(method: string, args: unknown): Promise<BridgeResult<unknown>> {
    try {
      if (!(BRIDGE_METHODS as readonly string[]).includes(method)) throw new BridgeFailure('BAD_METHOD', `Unknown bridge method "${method}"`);
      if (!Array.isArray(args)) throw new BridgeFailure('BAD_ARGS', `${method}: arguments must be an array`);
      const value = await this.dispatch(method as BridgeMethod, args);
      return { ok: true, value };
    } catch (e) {
      return { ok: false, error: toBridgeError(e) };
    }
  }

  private dispatch(m: BridgeMethod, a: unknown[]): Promise<BridgeMethods[BridgeMethod]['result']> | BridgeMethods[BridgeMethod]['result'] {
    switch (m) {
      case 'getState': return this.getState();
      case 'setLanguage': return this.setLanguage(str(a[0], 'lang', 8) as Lang);
      case 'identify': return this.serial(() => this.identify(record(a[0])));
      case 'runChecks': return this.runChecks();
      case 'confirmChecks': return this.serial(() => this.confirmChecks());
      case 'acceptRules': return this.serial(() => this.acceptRules());
      case 'finish': return this.finish();
      case 'retryUpload': return this.retryUpload();
      case 'proctorExit': return this.proctorExit(str(a[0], 'code', 256));
      case 'quit': return this.quit();
    }
  }

  /** Screen-changing requests run one at a time (a double click must not open two sessions). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.busy.then(fn, fn);
    this.busy = p.catch(() => undefined);
    return p;
  }

  setLanguage(lang: Lang): KioskState {
    if (!this.state.exam.languages.includes(lang)) throw new BridgeFailure('BAD_ARGS', `Language "${lang}" is not offered for this exam`);
    this.note('kiosk.language', { lang });
    return this.update({ lang });
  }

  async identify(values: Record<string, string>): Promise<KioskState> {
    this.expectScreen('identify');
    const clean: Record<string, string> = {};
    for (const f of this.exam.fields) {
      const v = (values[f.id] ?? '').trim();
      if (!v) throw new BridgeFailure('FIELD_INVALID', `"${f.id}" is empty`, f.id);
      if (v.length > 128) throw new BridgeFailure('FIELD_INVALID', `"${f.id}" is longer than 128 characters`, f.id);
      if (f.pattern && !new RegExp(`^(?:${f.pattern})$`, 'u').test(v)) throw new BridgeFailure('FIELD_INVALID', `"${f.id}" does not match ${f.pattern}`, f.id);
      clean[f.id] = v;
    }
    const studentId = clean.studentId ?? Object.values(clean)[0] ?? '';
    let session: SessionLike;
    try {
      session = await this.ports.openSession({
        machine: this.machine, exam: this.exam, studentId, demo: this.demo,
        ...(this.opts.home ? { home: this.opts.home } : {}), ...(this.opts.key ? { key: this.opts.key } : {}),
        stepOptions: { ...(this.opts.monitors ? { monitors: this.opts.monitors } : {}), ...(this.opts.modelsDir ? { modelsDir: this.opts.modelsDir } : {}) },
      });
    } catch (e) {
      throw new BridgeFailure(isKuzetError(e) ? e.code : 'SESSION_START', `The session could not be opened: ${(e as Error).message}`);
    }
    this.session = session;
    session.on('event', this.onRecord);
    for (const n of this.pendingNotes.splice(0)) session.ctx.log.append(n.type, n.data);
    this.adoptAfterSealNotes(session);
    session.ctx.log.append('kiosk.identified', { fields: clean, lang: this.state.lang, bridgeVersion: BRIDGE_VERSION });
    try {
      await session.start();
    } catch (e) {
      session.off('event', this.onRecord);
      this.session = null;
      // ExamSession seals what it had on a failed start; the student may try again after the fix.
      throw new BridgeFailure(isKuzetError(e) ? e.code : 'SESSION_START', `Recording could not start: ${(e as Error).message}`);
    }
    this.update({ screen: 'checks', identity: clean, sessionId: session.ctx.id, recording: true, error: undefined });
    this.startPreviews();
    void this.runChecks().catch(() => undefined);
    return this.getState();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Pre-checks

  private checksRun: Promise<KioskState> | null = null;

  runChecks(): Promise<KioskState> {
    this.expectScreen('checks');
    this.checksRun ??= this.doChecks().finally(() => { this.checksRun = null; });
    return this.checksRun;
  }

  private async doChecks(): Promise<KioskState> {
    const session = this.session!;
    const item = (id: string, status: CheckItem['status'], blocking: boolean, detail?: string): CheckItem => {
      const base = checkKeyBase(id);
      return { id, status, blocking, titleKey: `${base}.title`, ...(status === 'ok' ? {} : { fixKey: `${base}.fix` }), ...(detail ? { detail } : {}) };
    };
    const cams = CAMERAS.filter((c) => this.machine.sources[c].kind !== 'none');
    const ids = [...cams.map((c) => `camera.${c}`), ...(cams.includes('face') ? ['face.visible'] : []), ...(cams.includes('room') ? ['room.desk'] : []),
      'detection', 'monitors', ...(this.machine.upload.server ? ['server'] : [])];
    const list = new Map<string, CheckItem>(ids.map((id) => [id, item(id, 'pending', id !== 'server' && id !== 'face.visible')]));
    const set = (c: CheckItem) => {
      list.set(c.id, c);
      const checks = [...list.values()];
      this.update({ checks, checksPassed: false, checksRunning: true });
    };
    this.update({ checks: [...list.values()], checksPassed: false, checksRunning: true });

    const cameraTasks = cams.map(async (src) => {
      const f = await this.nextFrame(src, this.opts.cameraWaitMs ?? 10_000);
      if (!f) {
        set(item(`camera.${src}`, 'fail', true, `no picture from the ${src} camera (${describeSource(this.machine, src)})`));
        set(item(src === 'face' ? 'face.visible' : 'room.desk', 'fail', src === 'room', 'no picture'));
        return;
      }
      const { mean, std } = lumaStats(f.width, f.height, f.data);
      const covered = mean < 20 || std < 6;
      set(item(`camera.${src}`, 'ok', true, `${f.width}×${f.height}, brightness ${mean.toFixed(0)}`));
      if (src === 'room') {
        set(item('room.desk', covered ? 'fail' : 'ok', true, covered ? `picture is dark or flat (brightness ${mean.toFixed(0)}, contrast ${std.toFixed(0)})` : undefined));
      } else {
        // The session's detection step already analyses this camera: use its newest answer when it is recent,
        // and only otherwise run a face count here.
        const seen = (session.ctx.services.detection as DetectionService | undefined)?.latestFaces();
        const r = covered ? { faces: 0 } : seen && seen.t >= f.pts - 2 ? { faces: seen.faces } : await this.ports.countFaces(f.data, f.width, f.height);
        if (r.faces === null) set({ ...item('face.visible', 'unavailable', false, `face detector unavailable: ${r.reason}`), fixKey: 'checks.items.face_visible.unavailable' });
        else if (r.faces === 1) set(item('face.visible', 'ok', false));
        else set(item('face.visible', 'warn', false, r.faces === 0 ? (covered ? 'picture is dark or flat' : 'no face found') : `${r.faces} faces found`));
      }
    });

    // Automatic detection during the exam (the session's detection step): not a blocker, but the student and the
    // proctor are told when it is off, and why.
    const det = this.detection;
    if (det.state === 'on') set(item('detection', 'ok', false));
    else if (det.state === 'partial') set({ ...item('detection', 'warn', false, det.detail), fixKey: 'checks.items.detection.partial' });
    else set({ ...item('detection', 'unavailable', false, det.detail ?? 'the detection step did not report'), fixKey: det.state === 'disabled' ? 'checks.items.detection.disabled' : 'checks.items.detection.fix' });

    const preflightTask = (async () => {
      let lines: PreflightLine[];
      try {
        lines = await this.ports.preflight(session.ctx, this.opts.monitors);
      } catch (e) {
        set(item('monitors', 'warn', false, `computer checks unavailable: ${(e as Error).message}`));
        return;
      }
      list.delete('monitors');
      for (const l of lines) {
        const c = { ...item(l.id, l.status, l.blocking, l.detail), ...(l.text ? { text: l.text } : {}) };
        if (l.status === 'unavailable') c.fixKey = 'checks.unavailableFix';
        set(c);
      }
      if (lines.length === 0) this.update({ checks: [...list.values()] });
    })();

    const serverTask = (async () => {
      const url = this.machine.upload.server;
      if (!url) return;
      const ac = new AbortController();
      const t = setTimeout(() => ac.abort(), 4000);
      try {
        const detail = await this.ports.pingServer(url, ac.signal);
        set(item('server', 'ok', false, `${url}: ${detail}`));
      } catch (e) {
        set(item('server', 'warn', false, `${url}: ${ac.signal.aborted ? 'no answer in 4 s' : (e as Error).message}`));
      } finally {
        clearTimeout(t);
      }
    })();

    await Promise.all([...cameraTasks, preflightTask, serverTask]);
    const checks = [...list.values()];
    const passed = checks.every((c) => c.status !== 'pending' && !(c.blocking && c.status === 'fail'));
    session.ctx.log.append('kiosk.checks', { passed, checks: checks.map((c) => ({ id: c.id, status: c.status, blocking: c.blocking, detail: c.detail ?? null })) });
    return this.update({ checks, checksPassed: passed, checksRunning: false });
  }

  async confirmChecks(): Promise<KioskState> {
    this.expectScreen('checks');
    if (this.checksRun) await this.checksRun;
    if (!this.state.checksPassed) throw new BridgeFailure('CHECKS_FAILED', 'Some blocking checks fail; fix them and check again.');
    this.note('kiosk.checks_confirmed', {});
    return this.update({ screen: 'rules' });
  }

  async acceptRules(): Promise<KioskState> {
    this.expectScreen('rules');
    const startedAt = this.now();
    const endsAt = startedAt + this.exam.durationMinutes * 60_000;
    this.note('kiosk.rules_accepted', { lang: this.state.lang });
    const seb = sebConfigKey(this.exam);
    this.note('kiosk.exam_started', { url: this.exam.url, allow: this.exam.allow, durationMinutes: this.exam.durationMinutes, endsAt, ...(seb ? { sebConfigKey: seb } : {}) });
    this.stopPreviews();
    const grace = this.opts.overtimeGraceMs ?? 5 * 60_000;
    this.timers.push(setTimeout(() => {
      this.note('kiosk.time_up', { endsAt });
      this.timers.push(setTimeout(() => { if (this.state.screen === 'exam') void this.finish('time_up'); }, grace).unref());
    }, Math.max(0, endsAt - this.now())).unref());
    let s = this.update({ screen: 'exam', rulesAccepted: true, examStartedAt: startedAt, examEndsAt: endsAt });
    for (const rec of this.openEpisodes.values()) this.addWarning(rec, startedAt);
    if (this.openEpisodes.size) s = this.getState();
    this.emit('exam-view', { show: true, url: this.exam.url });
    return s;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Finish: seal → upload → receipt

  async finish(reason: 'finished' | 'time_up' = 'finished'): Promise<KioskState> {
    if (this.state.screen !== 'exam' && this.state.screen !== 'finishing') throw new BridgeFailure('WRONG_SCREEN', `Cannot finish from the ${this.state.screen} screen`);
    this.finishing ??= this.doFinish(reason);
    await this.finishing;
    return this.getState();
  }

  private async doFinish(reason: string): Promise<void> {
    const session = this.session!;
    this.clearTimers();
    this.note('kiosk.finish', { reason, focus: { losses: this.state.focusLosses } });
    this.emit('exam-view', { show: false, url: this.exam.url });
    this.update({ screen: 'finishing', finish: { phase: 'sealing', sentBytes: 0, totalBytes: 0 } });
    // The live uploader's queue outlives the step (which only pauses it at stop): the finish resumes it, so what
    // it delivered during the exam is not sent again and its rate estimate carries on.
    this.liveUpload = (session.ctx.services.upload as LiveUploadService | undefined) ?? null;
    try {
      const r = await session.finish('finished', { by: 'student', reason });
      this.sealed = { bundleDir: r.bundleDir, manifestSha256: r.manifestSha256 };
    } catch (e) {
      // Sealing failed: the session folder stays where it is and `kuzet recover` seals it at the next start.
      this.update({ recording: false, finish: { phase: 'failed', sentBytes: 0, totalBytes: 0, error: toBridgeError(e) } });
      return;
    } finally {
      session.off('event', this.onRecord);
    }
    this.update({ recording: false });
    await this.uploadSealed();
  }

  private liveUpload: LiveUploadService | null = null;

  private async uploadSealed(): Promise<void> {
    const { bundleDir, manifestSha256 } = this.sealed!;
    const server = this.machine.upload.server;
    if (!server) {
      this.update({ screen: 'done', released: true, finish: { phase: 'done', sentBytes: 0, totalBytes: 0, bundleDir, manifestSha256, localOnly: true } });
      this.emit('released');
      return;
    }
    this.uploadAbort = new AbortController();
    const live = this.liveUpload;
    const before = live?.progress();
    const sentLive = before ? { sentLiveBytes: before.bytesDone, sentLiveFiles: before.filesDone } : { sentLiveBytes: 0, sentLiveFiles: 0 };
    // Until the bundle's files are queued (hashing the tail first) only the live part is known: no file counts yet.
    const shown = (p: UploadProgress | undefined) => ({
      phase: 'uploading' as const, bundleDir, manifestSha256, ...sentLive,
      sentBytes: p?.bytesDone ?? sentLive.sentLiveBytes, totalBytes: p?.bytesTotal ?? 0,
      ...(p ? { filesDone: p.filesDone, filesTotal: p.filesTotal } : {}),
      rateBps: p?.rateBps ?? 0, etaSeconds: p?.etaSeconds ?? null, retrying: p?.retrying ?? null,
      verifying: !!p && p.filesTotal > 0 && p.filesDone + p.filesRejected === p.filesTotal,
    });
    let last = 0;
    this.update({ finish: shown(undefined) });
    try {
      const out = await this.ports.upload(bundleDir, server, {
        home: this.session!.ctx.home, machine: this.machine, signal: this.uploadAbort.signal, ...(live ? { queue: live.queue } : {}),
        onProgress: (p) => {
          const t = this.now();
          const all = p.filesTotal > 0 && p.filesDone === p.filesTotal;
          if (t - last < 200 && !all) return;
          last = t;
          this.update({ finish: shown(p) });
        },
      });
      const f = this.state.finish!;
      this.update({ screen: 'done', released: true, finish: { ...f, phase: 'done', sentBytes: f.totalBytes, filesDone: f.filesTotal, etaSeconds: 0, verifying: false, retrying: null, receiptId: out.receiptId } });
      this.note('kiosk.receipt_shown', { receiptId: out.receiptId, receiptPath: out.receiptPath });
      await this.stopLiveQueue();
      this.emit('released');
    } catch (e) {
      const f = this.state.finish!;
      this.update({ finish: { ...f, phase: 'failed', verifying: false, error: toBridgeError(e) } });
    }
  }

  private async stopLiveQueue(): Promise<void> {
    const q = this.liveUpload?.queue;
    this.liveUpload = null;
    await q?.stop().catch(() => undefined);
  }

  async retryUpload(): Promise<KioskState> {
    if (this.state.finish?.phase !== 'failed') throw new BridgeFailure('WRONG_SCREEN', 'There is no failed upload to retry');
    if (!this.sealed) throw new BridgeFailure('NOT_SEALED', 'The session was not sealed; it will be recovered at the next start. Call the proctor.');
    await this.uploadSealed();
    return this.getState();
  }

  async proctorExit(code: string): Promise<KioskState> {
    const r = this.exitGuard.attempt(code, this.now());
    if (!r.ok) {
      this.note('kiosk.exit_code_rejected', { reason: r.reason, attempts: r.attempts });
      if (r.reason === 'locked') throw new BridgeFailure('EXIT_LOCKED', `Too many wrong codes; wait ${Math.ceil((r.retryInMs ?? 0) / 1000)} s`);
      throw new BridgeFailure('EXIT_CODE', r.reason === 'disabled' ? 'No exit code is configured for this exam' : 'Wrong code');
    }
    this.note('kiosk.proctor_exit', { screen: this.state.screen });
    this.clearTimers();
    this.stopPreviews();
    this.uploadAbort?.abort();
    if (this.session && !this.finishing && !this.sealed) {
      this.emit('exam-view', { show: false, url: this.exam.url });
      this.update({ screen: 'finishing', finish: { phase: 'sealing', sentBytes: 0, totalBytes: 0 } });
      const s = this.session;
      try {
        const res = await s.finish('aborted', { by: 'proctor' });
        this.sealed = res;
        this.update({ finish: { phase: 'done', sentBytes: 0, totalBytes: 0, bundleDir: res.bundleDir, manifestSha256: res.manifestSha256, localOnly: true } });
      } catch (e) {
        this.update({ finish: { phase: 'failed', sentBytes: 0, totalBytes: 0, error: toBridgeError(e) } });
      } finally {
        s.off('event', this.onRecord);
      }
    }
    this.update({ screen: 'done', released: true, recording: false });
    this.emit('released');
    return this.getState();
  }

  quit(): { quitting: boolean } {
    if (!this.state.released) return { quitting: false };
    this.emit('quit');
    return { quitting: true };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Observations from the shell (focus, shortcuts, navigation): always logged, never lost

  /**
   * Appends a `kiosk.*` event to the session log, or keeps it until the session opens. After sealing the chain is
   * closed: the event goes to the after-seal sidecar (`afterSealFile`), which the next session adopts.
   */
  note(type: string, data: Record<string, unknown>): void {
    const s = this.session;
    if (!s) { this.pendingNotes.push({ type, data: { ...data, notedAt: this.now() } }); return; }
    if (!this.sealed) {
      try { s.ctx.log.append(type, data); return; } catch { /* the log is closed (sealing): the sidecar keeps it */ }
    }
    this.appendAfterSeal(type, data);
  }

  /** `<KUZET_HOME>/kiosk/after-seal.ndjson`: kiosk events that happened after the session's chain was sealed. */
  get afterSealFile(): string {
    const home = this.opts.home ?? this.session?.ctx.home;
    return join(home ? home.root : '.', 'kiosk', AFTER_SEAL_FILE);
  }

  private appendAfterSeal(type: string, data: Record<string, unknown>): void {
    const file = this.afterSealFile;
    try {
      mkdirSync(dirname(file), { recursive: true });
      if (existsSync(file) && statSync(file).size > AFTER_SEAL_MAX_BYTES) { this.afterSealDropped++; return; }
      const rec = { wall: this.now(), session: this.session?.ctx.id ?? null, type, data, ...(this.afterSealDropped ? { droppedBefore: this.afterSealDropped } : {}) };
      appendFileSync(file, JSON.stringify(rec) + '\n');
    } catch {
      this.afterSealDropped++; // a full disk here must not disturb the finish screen
    }
  }

  private afterSealDropped = 0;

  /**
   * A new session takes over what the previous kiosk wrote after its seal: the sidecar's size, hash and event
   * counts go into this session's chain (so the file cannot be changed afterwards unnoticed), and the file is
   * kept next to it under a name with this session's id, for the technician.
   */
  private adoptAfterSealNotes(session: SessionLike): void {
    const file = this.afterSealFile;
    if (!existsSync(file)) return;
    try {
      const text = readFileSync(file, 'utf8');
      const types: Record<string, number> = {};
      const sessions = new Set<string>();
      let records = 0;
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        records++;
        try {
          const r = JSON.parse(line) as { type?: string; session?: string | null };
          types[String(r.type)] = (types[String(r.type)] ?? 0) + 1;
          if (r.session) sessions.add(r.session);
        } catch { types['(unreadable line)'] = (types['(unreadable line)'] ?? 0) + 1; }
      }
      const kept = join(file, '..', `after-seal.adopted-by-${session.ctx.id}.ndjson`);
      renameSync(file, kept);
      session.ctx.log.append('kiosk.after_seal_previous', { file: kept, bytes: Buffer.byteLength(text), sha256: sha256Hex(text), records, types, sessions: [...sessions] });
    } catch (e) {
      session.ctx.log.append('kiosk.after_seal_previous', { file, error: (e as Error).message });
    }
  }

  noteFocusLost(data: Record<string, unknown>): void {
    this.update({ focusLosses: this.state.focusLosses + 1 });
    this.note('kiosk.focus_lost', data);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Session events → status bar

  private onSessionEvent(rec: LogRecord): void {
    if (rec.type.startsWith('detect.')) this.noteDetection(rec);
    const ep = (rec.data ?? {}) as { id?: unknown };
    if (rec.type === 'episode.started' && typeof ep.id === 'string') this.openEpisodes.set(ep.id, rec);
    if (rec.type === 'episode.ended' && typeof ep.id === 'string') this.openEpisodes.delete(ep.id);
    if (rec.type === 'recorder.failed') this.update({ recording: false });
    else if (rec.type === 'segment.closed' && !this.state.recording && this.state.screen !== 'finishing' && this.state.screen !== 'done') this.update({ recording: true });
    if (this.state.screen !== 'exam') return;
    this.addWarning(rec);
  }

  /** Detector episodes still open (e.g. no face since the checks): shown when the exam starts. */
  private readonly openEpisodes = new Map<string, LogRecord>();

  private addWarning(rec: LogRecord, at = rec.wall): void {
    const kind = warningFor(rec);
    if (!kind) return;
    const detail = warningDetail(rec);
    const w: ExamWarning = { id: ++this.warningSeq, kind: rec.type, messageKey: warningKey(kind), at, ...(detail ? { detail } : {}) };
    this.update({ warnings: [...this.state.warnings, w].slice(-MAX_WARNINGS), warningCount: this.state.warningCount + 1 });
  }

  /** What the session's detection step said at start: on, partly on, switched off, or unavailable (and why). */
  private detection: { state: 'unknown' | 'on' | 'partial' | 'disabled' | 'unavailable'; detail?: string } = { state: 'unknown' };

  private noteDetection(rec: LogRecord): void {
    const d = (rec.data ?? {}) as Record<string, unknown>;
    if (rec.type === 'detect.disabled') this.detection = { state: 'disabled', detail: 'detection.enabled is false in the machine config' };
    else if (rec.type === 'detect.unavailable') this.detection = { state: 'unavailable', detail: String(d.reason ?? 'no usable model') };
    else if (rec.type === 'detect.started') {
      const f = (d.features ?? {}) as { faces?: boolean; objects?: boolean };
      const off = [!f.faces && 'faces/head', !f.objects && 'phones/books/persons'].filter(Boolean);
      this.detection = off.length ? { state: 'partial', detail: `off: ${off.join(', ')}` } : { state: 'on' };
    } else if (rec.type === 'detect.model_problem') {
      const prev = this.detection.detail ? `${this.detection.detail}; ` : '';
      this.detection = { ...this.detection, detail: `${prev}${String(d.model)}: ${String(d.problem)}` };
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Clipboard and printing in the exam view (the shell asks; the monitors decide and log)

  private get monitorSet(): MonitorSet | null {
    return (this.session?.ctx.services.monitors as MonitorSet | undefined) ?? null;
  }

  /**
   * The shell asks before every paste into the exam page. Under the `isolate` policy text copied outside the exam
   * is refused (and logged by the clipboard monitor); without a clipboard monitor the paste is allowed.
   */
  async checkPaste(): Promise<PasteDecision> {
    if (this.state.screen !== 'exam') return { allow: false, reason: 'off' };
    const clip = this.monitorSet?.clipboard;
    if (!clip) return { allow: true, reason: 'unavailable' };
    try {
      return await clip.checkPaste();
    } catch (e) {
      this.note('kiosk.paste_check_failed', { error: (e as Error).message });
      return { allow: true, reason: 'unavailable' };
    }
  }

  /** The shell tells after a copy/cut inside the exam page: that text may be pasted back. */
  async noteInternalCopy(): Promise<void> {
    await this.monitorSet?.clipboard?.noteInternalCopy().catch(() => undefined);
  }

  private printAttempts = 0;

  /** The exam page called window.print() (or a frame did): refused by the exam view's guard, logged here. */
  notePrintBlocked(data: { url?: string; via?: string }): void {
    this.printAttempts++;
    // A page that calls print() in a loop must not flood the log: 1st, 10th, 100th, every 1000th.
    const n = this.printAttempts;
    if (n === 1 || n === 10 || n === 100 || n % 1000 === 0) this.note('kiosk.print_blocked', { url: (data.url ?? '').slice(0, 500), via: data.via ?? 'window.print', count: n });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Previews: low-rate frames from the recorder's taps, as PNG data URLs

  private startPreviews(): void {
    const recorder = this.session?.ctx.services.recorder;
    if (!recorder) return;
    this.previewAbort = new AbortController();
    const signal = this.previewAbort.signal;
    const minGap = 1000 / Math.min(2, Math.max(0.2, this.opts.previewFps ?? 2));
    for (const src of CAMERAS) {
      if (this.machine.sources[src].kind === 'none') continue;
      void (async () => {
        let last = 0;
        try {
          for await (const f of recorder.frames(src as SourceId)) {
            if (signal.aborted) break;
            this.lastFrame.set(src, f);
            for (const w of this.frameWaiters.get(src)?.splice(0) ?? []) w(f);
            const t = this.now();
            if (t - last < minGap) continue;
            last = t;
            this.emit('preview', { source: src, width: f.width, height: f.height, dataUrl: pngDataUrl(f.width, f.height, f.data), wall: f.wall });
          }
        } catch { /* the tap ended (recorder stopped): previews simply stop */ }
      })();
    }
  }

  private stopPreviews(): void {
    this.previewAbort?.abort();
    this.previewAbort = null;
  }

  /** The next frame from a camera (a fresh one, so a check sees the camera as it is now), or null on timeout. */
  private nextFrame(src: 'face' | 'room', timeoutMs: number): Promise<Frame | null> {
    if (!this.previewAbort) return Promise.resolve(this.lastFrame.get(src) ?? null);
    return new Promise((resolve) => {
      const waiters = this.frameWaiters.get(src) ?? [];
      this.frameWaiters.set(src, waiters);
      const t = setTimeout(() => { waiters.splice(waiters.indexOf(done), 1); resolve(null); }, timeoutMs);
      const done = (f: Frame) => { clearTimeout(t); resolve(f); };
      waiters.push(done);
    });
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  private expectScreen(screen: KioskState['screen']): void {
    if (this.state.screen !== screen) throw new BridgeFailure('WRONG_SCREEN', `This step needs the ${screen} screen; the kiosk is on ${this.state.screen}`);
  }

  /**
   * Ends whatever runs without student action (shell shutdown, signal): an open session is sealed as aborted,
   * never dropped. Safe to call more than once.
   */
  async close(reason = 'shutdown'): Promise<void> {
    this.clearTimers();
    this.stopPreviews();
    this.uploadAbort?.abort();
    if (this.finishing) await this.finishing.catch(() => undefined);
    await this.stopLiveQueue();
    const s = this.session;
    if (s && !this.sealed) {
      this.note('kiosk.closed', { reason, screen: this.state.screen });
      try { this.sealed = await s.finish('signal', { by: 'kiosk', reason }); } catch { /* recovered at next start */ }
      s.off('event', this.onRecord);
    }
  }
}

function str(v: unknown, name: string, max: number): string {
  if (typeof v !== 'string' || v.length > max) throw new BridgeFailure('BAD_ARGS', `${name} must be a string of at most ${max} characters`);
  return v;
}

function record(v: unknown): Record<string, string> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new BridgeFailure('BAD_ARGS', 'identify needs an object of field values');
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>).slice(0, 32)) out[k] = str(x, k, 1024);
  return out;
}

function toBridgeError(e: unknown): BridgeError {
  if (e instanceof BridgeFailure) return { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) };
  if (isKuzetError(e)) return { code: e.code, message: e.message };
  const code = (e as { code?: unknown })?.code;
  return { code: typeof code === 'string' ? code : 'INTERNAL', message: (e as Error)?.message ?? String(e) };
}

function describeSource(m: MachineConfig, src: SourceId): string {
  const s = m.sources[src];
  return [s.kind, s.device ?? s.pattern ?? s.file].filter(Boolean).join(' ');
}
