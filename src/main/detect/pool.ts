/**
 * DetectorPool: inference off the main thread. Frames go to worker_threads workers through a bounded queue; when
 * the queue is full a new frame is dropped (and counted) instead of building latency. Results come back as
 * 'result' events in completion order.
 *
 *   const pool = await DetectorPool.start({ workers: 1, maxQueue: 2 });
 *   pool.on('result', (r) => …);           // r: DetectionResult
 *   pool.submit(frame, { objects: false }); // false = dropped
 *   pool.stats();                            // { submitted, processed, dropped, … }
 *   await pool.close();
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { KuzetError } from '../core/errors.js';
import type { DetectOptions, FrameAnalysis } from './detector.js';
import type { ModelName } from './models.js';

/** The recorder's frame tap type (src/main/recorder): rgb24. */
export interface Frame { source: string; width: number; height: number; data: Uint8Array; pts: number; wall: number }

export type WorkerRequest = { type: 'frame'; id: number; width: number; height: number; data: ArrayBuffer; options?: Partial<DetectOptions> };
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'fatal'; message: string; code?: string; details?: Record<string, unknown> }
  | { type: 'result'; id: number; analysis: FrameAnalysis }
  | { type: 'error'; id: number; message: string };

export interface DetectionResult extends FrameAnalysis {
  source: string;
  pts: number;
  wall: number;
  /** ms from submit to result (queueing + inference) */
  latencyMs: number;
}

export interface PoolOptions {
  /** worker threads (default 1: the machine has 2 cores and also records video) */
  workers?: number;
  /** frames waiting or in flight per worker before new ones are dropped (default 2) */
  maxQueue?: number;
  /** onnxruntime intra-op threads per worker (default 1) */
  threads?: number;
  modelsDir?: string;
  /** models to load (default: all); the session passes only those that passed their hash check */
  load?: ModelName[];
  /** default analysis options for every frame */
  options?: Partial<DetectOptions>;
  /** worker script (default: worker-entry.mjs beside this file) */
  workerUrl?: URL;
}

export interface PoolStats {
  submitted: number;
  processed: number;
  dropped: number;
  errors: number;
  queued: number;
  inFlight: number;
  /** mean inference+analysis time reported by the workers, ms */
  meanAnalysisMs: number;
  /** mean submit→result latency, ms */
  meanLatencyMs: number;
  /** dropped per source */
  droppedBySource: Record<string, number>;
}

interface Pending { id: number; frame: Frame; options?: Partial<DetectOptions>; t0: number }
interface Slot { worker: Worker; busy: Pending | null; queue: Pending[] }

export class DetectorPool extends EventEmitter {
  private slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  private readonly maxQueue: number;
  private s = { submitted: 0, processed: 0, dropped: 0, errors: 0, analysisMs: 0, latencyMs: 0 };
  private droppedBySource: Record<string, number> = {};

  private constructor(maxQueue: number) {
    super();
    this.maxQueue = maxQueue;
  }

  /** Start the workers and wait until every one has loaded (and hash-checked) its models. */
  static async start(opts: PoolOptions = {}): Promise<DetectorPool> {
    const pool = new DetectorPool(Math.max(1, opts.maxQueue ?? 2));
    const url = opts.workerUrl ?? new URL('./worker-entry.mjs', import.meta.url);
    const n = Math.max(1, opts.workers ?? 1);
    try {
      await Promise.all(Array.from({ length: n }, () => pool.spawn(url, opts)));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  private spawn(url: URL, opts: PoolOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(url, { workerData: { modelsDir: opts.modelsDir, threads: opts.threads ?? 1, options: opts.options, load: opts.load } });
      const slot: Slot = { worker, busy: null, queue: [] };
      let ready = false;
      worker.on('message', (m: WorkerReply) => {
        if (m.type === 'ready') {
          ready = true;
          this.slots.push(slot);
          resolve();
        } else if (m.type === 'fatal') {
          reject(new KuzetError(m.code ?? 'DETECT_WORKER', m.message, m.details));
        } else this.onReply(slot, m);
      });
      worker.on('error', (e) => {
        if (!ready) reject(e);
        else this.emit('error', e);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new KuzetError('DETECT_WORKER', `detector worker exited with code ${code} before it was ready`));
        else if (!this.closed) this.emit('error', new KuzetError('DETECT_WORKER', `detector worker exited with code ${code}`));
      });
    });
  }

  /**
   * Queue a frame. At most one frame per source waits: a newer frame of the same source replaces the waiting one
   * (the older is counted as dropped), so a busy camera cannot starve the other one and results stay fresh.
   * Returns false when this frame was dropped (queue full, or the pool is closed).
   */
  submit(frame: Frame, options?: Partial<DetectOptions>): boolean {
    if (this.closed || !this.slots.length) return false;
    this.s.submitted++;
    const p: Pending = { id: this.nextId++, frame, options, t0: performance.now() };
    for (const slot of this.slots) {
      const i = slot.queue.findIndex((q) => q.frame.source === frame.source);
      if (i >= 0) {
        this.countDrop(slot.queue[i]!.frame);
        slot.queue[i] = p;
        return true;
      }
    }
    const slot = this.slots.reduce((a, b) => (load(b) < load(a) ? b : a));
    if (load(slot) >= this.maxQueue) {
      this.countDrop(frame);
      return false;
    }
    if (slot.busy) slot.queue.push(p);
    else this.send(slot, p);
    return true;
  }

  private countDrop(frame: Frame): void {
    this.s.dropped++;
    this.droppedBySource[frame.source] = (this.droppedBySource[frame.source] ?? 0) + 1;
    this.emit('drop', frame);
  }

  private send(slot: Slot, p: Pending): void {
    slot.busy = p;
    const f = p.frame;
    const copy = new Uint8Array(f.data); // a real copy (Buffer#slice is a view): the tap and snapshots keep theirs
    const msg: WorkerRequest = { type: 'frame', id: p.id, width: f.width, height: f.height, data: copy.buffer as ArrayBuffer, options: p.options };
    slot.worker.postMessage(msg, [copy.buffer as ArrayBuffer]);
  }

  private onReply(slot: Slot, m: WorkerReply): void {
    const p = slot.busy;
    slot.busy = null;
    const next = slot.queue.shift();
    if (next) this.send(slot, next);
    if (!p) return;
    if (m.type === 'result') {
      const latencyMs = performance.now() - p.t0;
      this.s.processed++;
      this.s.analysisMs += m.analysis.timings.total;
      this.s.latencyMs += latencyMs;
      const r: DetectionResult = { ...m.analysis, source: p.frame.source, pts: p.frame.pts, wall: p.frame.wall, latencyMs: Math.round(latencyMs * 10) / 10 };
      this.emit('result', r);
    } else if (m.type === 'error') {
      this.s.errors++;
      this.emit('frameError', { source: p.frame.source, pts: p.frame.pts, message: m.message });
    }
    if (this.idle()) this.emit('idle');
  }

  private idle(): boolean {
    return this.slots.every((s) => !s.busy && !s.queue.length);
  }

  /** Resolve when every queued frame has been analysed. */
  async drain(): Promise<void> {
    if (this.idle()) return;
    await new Promise<void>((res) => this.once('idle', () => res()));
  }

  stats(): PoolStats {
    const p = this.s.processed || 1;
    return {
      submitted: this.s.submitted,
      processed: this.s.processed,
      dropped: this.s.dropped,
      errors: this.s.errors,
      queued: this.slots.reduce((a, s) => a + s.queue.length, 0),
      inFlight: this.slots.filter((s) => s.busy).length,
      meanAnalysisMs: Math.round((this.s.analysisMs / p) * 10) / 10,
      meanLatencyMs: Math.round((this.s.latencyMs / p) * 10) / 10,
      droppedBySource: { ...this.droppedBySource },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots = [];
  }
}

function load(s: Slot): number {
  return (s.busy ? 1 : 0) + s.queue.length;
}

/**
 * Decides per frame which branches to run so each source gets faces at `faceHz` and objects at `objectHz`
 * (by the frame's pts), e.g. 5 Hz / 2 Hz from a 5 fps tap.
 */
export class DetectionScheduler {
  private lastFace = new Map<string, number>();
  private lastObj = new Map<string, number>();
  constructor(private readonly faceHz: number, private readonly objectHz: number) {}

  /** null when neither branch is due for this frame. */
  plan(frame: { source: string; pts: number }): { faces: boolean; objects: boolean } | null {
    const due = (m: Map<string, number>, hz: number) => {
      if (hz <= 0) return false;
      const last = m.get(frame.source);
      // small tolerance so a 5 fps tap yields 5 Hz despite pts jitter
      if (last !== undefined && frame.pts - last < (1 / hz) * 0.9) return false;
      m.set(frame.source, frame.pts);
      return true;
    };
    const faces = due(this.lastFace, this.faceHz);
    const objects = due(this.lastObj, this.objectHz);
    return faces || objects ? { faces, objects } : null;
  }
}
