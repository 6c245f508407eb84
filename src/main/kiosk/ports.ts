/**
 * What the kiosk needs from the headless services, as narrow interfaces. `realPorts()` wires them to the real
 * modules (ExamSession, preflight, upload); nothing here is a fake: tests and the Electron shell both use
 * `realPorts()`, and a port whose module is not there yet says so in the check list instead of pretending.
 */
import type { ExamConfig, MachineConfig } from '../core/config.js';
import type { SessionContext } from '../core/context.js';
import type { LogRecord } from '../core/eventlog.js';
import type { HomeLayout } from '../core/home.js';
import type { KeyPair } from '../core/keys.js';
import type { StopReason } from '../core/session.js';
import type { MonitorSet, MonitorsOptions } from '../monitors/monitors.js';
import type { PreflightItem } from '../monitors/preflight.js';
import type { UploadProgress as QueueProgress, UploadQueue } from '../upload/spool.js';
import type { Lang } from '../../shared/bridge.js';

export interface SessionLike {
  readonly ctx: SessionContext;
  start(): Promise<void>;
  finish(reason?: StopReason, note?: Record<string, unknown>): Promise<{ bundleDir: string; manifestSha256: string }>;
  on(event: 'event', cb: (rec: LogRecord) => void): unknown;
  off(event: 'event', cb: (rec: LogRecord) => void): unknown;
}

export interface OpenSessionOptions {
  machine: MachineConfig;
  exam: ExamConfig;
  studentId: string;
  demo: boolean;
  home?: HomeLayout;
  key?: KeyPair;
  /** For the default steps: the kiosk's own windows/pids and Electron-backed monitor sources, the models folder. */
  stepOptions?: { monitors?: MonitorsOptions; modelsDir?: string };
}

/** One computer check for the list: the spine's (disk, ffmpeg) and the monitors' (processes, VM, displays …). */
export interface PreflightLine {
  /** The check id the UI has text for: disk, ffmpeg, processes, vm, remote, displays, devices, foreground, clipboard. */
  id: string;
  status: 'ok' | 'warn' | 'fail' | 'unavailable';
  blocking: boolean;
  detail?: string;
  text?: Partial<Record<Lang, string>>;
}

export type UploadProgress = QueueProgress;
export interface UploadOutcome { receiptId: string; receiptPath: string }
export interface UploadRequest {
  home: HomeLayout;
  machine: MachineConfig;
  onProgress: (p: UploadProgress) => void;
  signal: AbortSignal;
  /** The live uploader's queue (it already holds what was sent during the exam): only the rest is sent. */
  queue?: UploadQueue;
}

export interface KioskPorts {
  openSession(o: OpenSessionOptions): Promise<SessionLike>;
  /** Computer checks (disk, ffmpeg, devices, processes, displays, VM), with the same sources and identity as the
   * session's running monitors. */
  preflight(ctx: SessionContext, monitors?: MonitorsOptions): Promise<PreflightLine[]>;
  /** Faces in one rgb24 frame (null: no face detector available, with the reason). */
  countFaces(rgb: Uint8Array, width: number, height: number): Promise<{ faces: number } | { faces: null; reason: string }>;
  /** Is the evidence server up? Resolves with a short detail, rejects with a reason. */
  pingServer(url: string, signal: AbortSignal): Promise<string>;
  /** Uploads a sealed bundle and returns the server's verified receipt (its id is what the student writes down). */
  upload(bundleDir: string, serverUrl: string, o: UploadRequest): Promise<UploadOutcome>;
}

const MONITOR_CHECK_IDS: Record<string, string> = { process: 'processes', display: 'displays', device: 'devices' };

/** What the student writes down: the first 16 hex digits (64 bits) of the receipt's digest, upper case. */
export function receiptIdOf(digestHex: string): string {
  return digestHex.slice(0, 16).toUpperCase();
}

/** One monitors preflight item as a checklist line: its kk/ru/en sentence always goes along (also when clean). */
export function preflightLine(it: PreflightItem): PreflightLine {
  const status = it.status === 'clean' ? 'ok' : it.status === 'blocked' ? 'fail' : it.status === 'unavailable' ? 'unavailable' : 'warn';
  return {
    id: MONITOR_CHECK_IDS[it.id] ?? it.id, status, blocking: it.status === 'blocked',
    ...(it.details.length ? { detail: it.details.join('; ') } : {}), text: it.title,
  };
}

/** The pre-check's own face counter (BlazeFace only), made once, when no detection step answers. */
let faceCounter: Promise<import('../detect/detector.js').Detector> | null = null;

export function realPorts(): KioskPorts {
  return {
    async openSession(o) {
      const { ExamSession } = await import('../session/exam-session.js');
      return ExamSession.open(o);
    },
    async preflight(ctx, monitors = {}) {
      const { spinePreflight } = await import('../session/preflight.js');
      const lines: PreflightLine[] = spinePreflight(ctx).map((i) => ({
        id: i.id, status: i.ok ? 'ok' : i.blocking ? 'fail' : 'warn', blocking: i.blocking, ...(i.ok ? {} : { detail: i.detail }),
      }));
      const mon = await import('../monitors/index.js');
      const cfg = mon.effectiveMonitorsConfig(ctx.machine, ctx.exam);
      if (!cfg.enabled) return lines;
      // The session's monitors already run with the shell's sources (Electron clipboard and screen, X11 …): the
      // checklist asks the very same sources, so what it shows is what the exam will be watched with.
      const running = ctx.services.monitors as MonitorSet | undefined;
      const sources = { ...monitors.sources, ...(running ? running.sources : {}) };
      const res = await mon.preflight(cfg, { ...monitors, sources, emit: (type, data) => { ctx.log.append(type, data); } });
      for (const it of res.items) lines.push(preflightLine(it));
      return lines;
    },
    async countFaces(rgb, width, height) {
      try {
        faceCounter ??= import('../detect/detector.js').then(({ Detector }) => Detector.create({ load: ['blazeface-back-256'] }));
        const a = await (await faceCounter).analyze({ data: rgb, width, height }, { faces: true, objects: false, pose: false, irisMinFacePx: 0 });
        return { faces: a.faces.length };
      } catch (e) {
        return { faces: null, reason: (e as Error).message };
      }
    },
    async pingServer(url, signal) {
      const { API_PREFIX } = await import('../server/protocol.js');
      const res = await fetch(`${url.replace(/\/+$/, '')}${API_PREFIX}/health`, { signal, redirect: 'manual' });
      const body = (await res.json().catch(() => null)) as { ok?: boolean; version?: string } | null;
      if (!res.ok || !body?.ok) throw new Error(`the server answered HTTP ${res.status} to its health check`);
      return `Kuzet server ${body.version ?? ''}`.trim();
    },
    async upload(bundleDir, serverUrl, o) {
      const { uploadBundle } = await import('../upload/bundle.js');
      const { receiptDigest } = await import('../server/protocol.js');
      const r = await uploadBundle(bundleDir, serverUrl, {
        home: o.home, upload: o.machine.upload, signal: o.signal, onProgress: o.onProgress, ...(o.queue ? { queue: o.queue } : {}),
      });
      return { receiptId: receiptIdOf(receiptDigest(r.receipt)), receiptPath: r.receiptPath };
    },
  };
}
