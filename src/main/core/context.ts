import type { EventLog } from './eventlog.js';
import type { ExamConfig, MachineConfig, SourceId } from './config.js';
import type { HomeLayout } from './home.js';

/** A raw frame from a recorder tap: rgb24, top-down rows, `pts` in seconds since the session started. */
export interface Frame {
  source: SourceId;
  width: number;
  height: number;
  data: Buffer;
  pts: number;
  wall: number;
}

/** Anything that offers frame taps (the recorder). */
export interface FrameSource {
  frames(source: SourceId): AsyncIterable<Frame>;
}

/**
 * What every session step sees. Steps add their service under `services` in start() and remove it in stop().
 * `models` collects model name → sha256 for the manifest; `degraded` names features that run in a reduced form
 * (e.g. a detector whose model failed its hash check), and the manifest carries it.
 */
export interface SessionContext {
  id: string;
  /** The session's working folder: events.ndjson, media/<source>/seg-*.ts, detect/, snapshots/ … */
  dir: string;
  log: EventLog;
  machine: MachineConfig;
  exam: ExamConfig;
  home: HomeLayout;
  meta: { studentId: string; machineId: string; lab?: string; demo: boolean };
  services: {
    recorder?: FrameSource & { stats(): unknown };
    [name: string]: unknown;
  };
  models: Record<string, string>;
  degraded: string[];
  /** Aborted when the session must end (signal, proctor exit, fatal error). */
  signal: AbortSignal;
}
