/**
 * THE bridge contract between the kiosk UI (renderer) and the main process, versioned. Types and channel names only:
 * the preload (Electron) and the test adapter (Chromium UI tests) both implement `KuzetApi` over these channels, and
 * `KioskService` (src/main/kiosk) answers them. Bump BRIDGE_VERSION on an incompatible change.
 */

export const BRIDGE_VERSION = 2;
// v2: CheckStatus 'unavailable'; FinishState remaining-work fields (files, rate, ETA, sent live); ExamWarning.text;
//     exam-view channels (print attempts).

export const LANGS = ['kk', 'ru', 'en'] as const;
export type Lang = (typeof LANGS)[number];

/** The student's screens, in order. */
export type Screen = 'identify' | 'checks' | 'rules' | 'exam' | 'finishing' | 'done';

/** Height in CSS pixels of the status bar above the exam view during the exam (the shell places the view below it). */
export const STATUS_BAR_HEIGHT = 56;

export interface BridgeError {
  /** Stable code (KuzetError codes, or FIELD_INVALID, BAD_ARGS, WRONG_SCREEN …). */
  code: string;
  /** Plain-language message in English (the UI shows its own translation keyed on `code` when it has one). */
  message: string;
  /** For FIELD_INVALID: the identification field at fault. */
  field?: string;
}

export type BridgeResult<T> = { ok: true; value: T } | { ok: false; error: BridgeError };

export interface FieldSpec {
  id: string;
  /** Label per language from the exam config; otherwise the UI uses its own text for `id`. */
  label?: Partial<Record<Lang, string>>;
  /** Regular expression the value must match in full (checked again in the main process). */
  pattern?: string;
}

export interface ExamInfo {
  examId: string;
  title: string;
  durationMinutes: number;
  fields: FieldSpec[];
  languages: Lang[];
  demo: boolean;
  /** A proctor exit code is configured (the UI offers the "proctor exit" box). */
  hasExitCode: boolean;
  /** Evidence is uploaded to a server at the end (otherwise it stays on this computer). */
  hasServer: boolean;
}

/** `unavailable`: this computer cannot run the check (no display server, no detector model …) — not a problem the
 * student can fix, shown as "not checked" so it is not mistaken for a warning about them. */
export type CheckStatus = 'pending' | 'ok' | 'warn' | 'fail' | 'unavailable';

export interface CheckItem {
  /** camera.face, camera.room, face.visible, room.desk, devices, processes, displays, server, … */
  id: string;
  status: CheckStatus;
  /** i18n keys: `checks.<id>.title`; when not ok, `checks.<id>.fix` (plain-language fix). */
  titleKey: string;
  fixKey?: string;
  /** Technical detail (English) shown small under the fix, e.g. the name of the process found. */
  detail?: string;
  /** A specific sentence from the service in each UI language (e.g. "Close these programs: AnyDesk"), shown
   * instead of the generic fix when present. */
  text?: Partial<Record<Lang, string>>;
  /** A failing blocking check keeps the student on this screen. */
  blocking: boolean;
}

export interface ExamWarning {
  id: number;
  /** The event type that raised it (monitor.process, episode.opened, kiosk.focus_lost, …). */
  kind: string;
  /** i18n key of the student-facing text. */
  messageKey: string;
  /** Wall-clock ms. */
  at: number;
  detail?: string;
  /** A specific sentence from the service in each UI language, shown instead of the generic text when present. */
  text?: Partial<Record<Lang, string>>;
}

export type FinishPhase = 'sealing' | 'uploading' | 'done' | 'failed';

export interface FinishState {
  phase: FinishPhase;
  /** Bytes of this session the server holds / will hold in all (live-uploaded segments count as sent). */
  sentBytes: number;
  totalBytes: number;
  /** Files of this session the server holds / in all. */
  filesDone?: number;
  filesTotal?: number;
  /** What the live upload had already delivered during the exam when the finish began. */
  sentLiveBytes?: number;
  sentLiveFiles?: number;
  /** Current rate (bytes/s) and the estimated seconds left (null: not known yet). */
  rateBps?: number;
  etaSeconds?: number | null;
  /** Everything is sent; the server is verifying the bundle before it signs the receipt. */
  verifying?: boolean;
  /** A transient problem being retried (English, technical), e.g. the network is down. */
  retrying?: string | null;
  bundleDir?: string;
  manifestSha256?: string;
  /** The server's receipt id: shown to the student, and only then the kiosk releases. */
  receiptId?: string;
  /** No server configured: the sealed bundle stays on this computer for `kuzet upload`. */
  localOnly?: boolean;
  error?: BridgeError;
}

export interface KioskState {
  bridgeVersion: number;
  screen: Screen;
  lang: Lang;
  exam: ExamInfo;
  /** The identification values once accepted. */
  identity?: Record<string, string>;
  sessionId?: string;
  checks: CheckItem[];
  /** Checks ran and no blocking check fails. */
  checksPassed: boolean;
  checksRunning: boolean;
  rulesAccepted: boolean;
  /** Recording is running (the status-bar indicator). */
  recording: boolean;
  /** Wall-clock ms of the exam start (rules accepted) and its scheduled end. */
  examStartedAt?: number;
  examEndsAt?: number;
  /** The most recent warnings, newest last (at most 20). */
  warnings: ExamWarning[];
  warningCount: number;
  focusLosses: number;
  finish?: FinishState;
  /** The kiosk may close: the receipt is shown (or the bundle is sealed locally, or a proctor exited). */
  released: boolean;
  /** A fatal problem (e.g. recording could not start): shown on the current screen. */
  error?: BridgeError;
}

export interface PreviewFrame {
  source: 'face' | 'room';
  width: number;
  height: number;
  /** data:image/png;base64,… */
  dataUrl: string;
  wall: number;
}

/** The requests the UI can make, with their arguments and results. */
export interface BridgeMethods {
  getState: { args: []; result: KioskState };
  setLanguage: { args: [lang: Lang]; result: KioskState };
  /** Checks the fields, opens the session and starts recording (the pre-checks need live cameras). */
  identify: { args: [values: Record<string, string>]; result: KioskState };
  runChecks: { args: []; result: KioskState };
  /** Checks passed: go on to the rules. */
  confirmChecks: { args: []; result: KioskState };
  /** Accepting the rules starts the exam (and its timer). */
  acceptRules: { args: []; result: KioskState };
  /** Seal, upload, receipt. Resolves when the finish is done or failed (progress arrives as state events). */
  finish: { args: []; result: KioskState };
  /** After a failed upload: try again. */
  retryUpload: { args: []; result: KioskState };
  /** The proctor's exit code: ends the session (sealed) and releases the kiosk. */
  proctorExit: { args: [code: string]; result: KioskState };
  /** The kiosk window closes after release (the shell quits). */
  quit: { args: []; result: { quitting: boolean } };
}
export type BridgeMethod = keyof BridgeMethods;

export const BRIDGE_METHODS = [
  'getState', 'setLanguage', 'identify', 'runChecks', 'confirmChecks', 'acceptRules', 'finish', 'retryUpload', 'proctorExit', 'quit',
] as const satisfies readonly BridgeMethod[];

/** IPC channel names (ipcRenderer.invoke / webContents.send). */
export const CHANNELS = {
  invoke: (m: BridgeMethod): string => `kuzet:${m}`,
  state: 'kuzet:event:state',
  preview: 'kuzet:event:preview',
  /** Exam view (its own small preload, src/preload/exam.ts) → main: the page called window.print(). */
  examPrint: 'kuzet:exam:print-blocked',
} as const;

/** What `window.kuzet` offers the renderer. */
export type KuzetApi = {
  readonly bridgeVersion: number;
  onState(cb: (s: KioskState) => void): () => void;
  onPreview(cb: (f: PreviewFrame) => void): () => void;
} & {
  [M in BridgeMethod]: (...args: BridgeMethods[M]['args']) => Promise<BridgeResult<BridgeMethods[M]['result']>>;
};

declare global {
  interface Window { kuzet?: KuzetApi }
}
