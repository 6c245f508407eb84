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
}

/** One line of a pre-check list, as the spine's and the monitors' preflight functions return it. */
export interface PreflightLine { id: string; ok: boolean; blocking: boolean; detail: string }

export interface UploadProgress { sentBytes: number; totalBytes: number }
export interface UploadOutcome { receiptId: string }

export interface KioskPorts {
  openSession(o: OpenSessionOptions): Promise<SessionLike>;
  /** Computer checks (disk, ffmpeg, devices, processes, displays, VM). */
  preflight(ctx: SessionContext): Promise<PreflightLine[]>;
  /** Faces in one rgb24 frame (null: no face detector available, with the reason). */
  countFaces(rgb: Uint8Array, width: number, height: number): Promise<{ faces: number } | { faces: null; reason: string }>;
  /** Is the evidence server up? Resolves with a short detail, rejects with a reason. */
  pingServer(url: string, signal: AbortSignal): Promise<string>;
  /** Uploads a sealed bundle and returns the server's verified receipt id. */
  upload(bundleDir: string, serverUrl: string, onProgress: (p: UploadProgress) => void, signal: AbortSignal): Promise<UploadOutcome>;
}

export function realPorts(): KioskPorts {
  return {
    async openSession(o) {
      const { ExamSession } = await import('../session/exam-session.js');
      return ExamSession.open(o);
    },
    async preflight(ctx) {
      const { spinePreflight } = await import('../session/preflight.js');
      return spinePreflight(ctx);
    },
    async countFaces(rgb, width, height) {
      try {
        const { analyzeFrame } = await import('../detect/detector.js');
        const a = await analyzeFrame(rgb, width, height, { faces: true, objects: false, pose: false, irisMinFacePx: 0 });
        return { faces: a.faces.length };
      } catch (e) {
        return { faces: null, reason: (e as Error).message };
      }
    },
    async pingServer(url, signal) {
      const res = await fetch(new URL('/', url), { signal, redirect: 'manual' });
      await res.body?.cancel();
      return `HTTP ${res.status}`;
    },
    async upload() {
      throw Object.assign(new Error('the upload module is not available in this build'), { code: 'UPLOAD_UNAVAILABLE' });
    },
  };
}
