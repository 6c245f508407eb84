/**
 * The detector: loads the (hash-checked) models once and analyses rgb24 frames.
 * Plain Node; the worker (pool.ts) runs the same class off the main thread.
 */
import { performance } from 'node:perf_hooks';
import { defaultModelsDir, loadModelSession, type ModelName } from './models.js';
import { BlazeFace, FaceMesh, Iris, type FaceResult } from './faces.js';
import { NanoDet, type CocoLabel, type ObjectResult } from './objects.js';
import { roundBox } from './geometry.js';
import type { RgbImage } from './image.js';

export type { FaceResult, ObjectResult };

export interface DetectOptions {
  /** run the face branch (BlazeFace + FaceMesh pose) */
  faces: boolean;
  /** run NanoDet */
  objects: boolean;
  /** 'back-256' finds more and smaller faces (profiles too); 'front-128' is for a close webcam */
  faceModel: 'back-256' | 'front-128';
  faceScore: number;
  faceIou: number;
  maxFaces: number;
  /** FaceMesh pose for each face (needed for yaw/pitch/roll) */
  pose: boolean;
  /** FaceMesh face score below which the face crop is run again in grayscale (coloured light); 0 = never */
  meshGrayRetry: number;
  /** iris gaze when the face box is at least this many pixels wide (0 = never) */
  irisMinFacePx: number;
  objectScore: number;
  objectLabelThresholds: Partial<Record<CocoLabel, number>>;
  objectLabels?: readonly CocoLabel[];
  objectIou: number;
  tiles: 0 | 1 | 2 | 'auto';
}

/** Thresholds and why: see docs/detection.md. */
export const DEFAULT_DETECT_OPTIONS: DetectOptions = {
  faces: true,
  objects: true,
  faceModel: 'back-256',
  faceScore: 0.5,
  faceIou: 0.3,
  maxFaces: 10,
  pose: true,
  meshGrayRetry: 0.5,
  irisMinFacePx: 120,
  objectScore: 0.35,
  objectLabelThresholds: { 'cell phone': 0.3 },
  objectIou: 0.5,
  tiles: 'auto',
};

export interface FrameAnalysis {
  width: number;
  height: number;
  faces: FaceResult[];
  objects: ObjectResult[];
  /** branches asked for but skipped because their model was not loaded (e.g. it failed its hash check) */
  unavailable?: ('faces' | 'pose' | 'objects')[];
  /** milliseconds: model runs and the whole call */
  timings: { face: number; mesh: number; iris: number; objects: number; total: number };
}

export interface DetectorInit { modelsDir?: string; threads?: number; load?: ModelName[] }

const r1 = (v: number): number => Math.round(v * 10) / 10;
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

export class Detector {
  private constructor(
    private readonly front: BlazeFace | null,
    private readonly back: BlazeFace | null,
    private readonly mesh: FaceMesh | null,
    private readonly iris: Iris | null,
    private readonly nanodet: NanoDet | null,
  ) {}

  /** Load the models (all by default). Throws ModelFileError for a missing or corrupt file. */
  static async create(init: DetectorInit = {}): Promise<Detector> {
    const dir = init.modelsDir ?? defaultModelsDir();
    const want = new Set<ModelName>(init.load ?? ['blazeface-front-128', 'blazeface-back-256', 'facemesh', 'iris', 'nanodet-416']);
    const load = async (n: ModelName) => (want.has(n) ? loadModelSession(n, dir, { threads: init.threads }) : null);
    const [f, b, m, i, o] = await Promise.all([load('blazeface-front-128'), load('blazeface-back-256'), load('facemesh'), load('iris'), load('nanodet-416')]);
    return new Detector(f && new BlazeFace(f), b && new BlazeFace(b), m && new FaceMesh(m), i && new Iris(i), o && new NanoDet(o));
  }

  async analyze(img: RgbImage, options: Partial<DetectOptions> = {}): Promise<FrameAnalysis> {
    const o = { ...DEFAULT_DETECT_OPTIONS, ...options };
    const t0 = performance.now();
    const timings = { face: 0, mesh: 0, iris: 0, objects: 0, total: 0 };
    const faces: FaceResult[] = [];
    const unavailable: NonNullable<FrameAnalysis['unavailable']> = [];
    // a missing face model falls back to the other BlazeFace; a missing branch is reported, not thrown
    const bf = o.faceModel === 'front-128' ? this.front ?? this.back : this.back ?? this.front;
    if (o.faces && !bf) unavailable.push('faces');
    if (o.faces && bf && o.pose && !this.mesh) unavailable.push('pose');
    if (o.objects && !this.nanodet) unavailable.push('objects');
    if (o.faces && bf) {
      let t = performance.now();
      const dets = (await bf.detect(img, { scoreThreshold: o.faceScore, iouThreshold: o.faceIou })).slice(0, o.maxFaces);
      timings.face = performance.now() - t;
      for (const d of dets) {
        const f: FaceResult = { box: roundBox(d.box), score: r3(d.score), yaw: 0, pitch: 0, roll: 0, meshScore: 0 };
        if (o.pose && this.mesh) {
          t = performance.now();
          const m = await this.mesh.run(img, FaceMesh.roiFor(d), { retryBelow: o.meshGrayRetry });
          timings.mesh += performance.now() - t;
          f.yaw = r1(m.pose.yaw);
          f.pitch = r1(m.pose.pitch);
          f.roll = r1(m.pose.roll);
          f.meshScore = r3(m.score);
          if (this.iris && o.irisMinFacePx > 0 && d.box.w >= o.irisMinFacePx && m.score >= 0.5) {
            t = performance.now();
            const g = await this.iris.gaze(img, m.points);
            timings.iris += performance.now() - t;
            f.gaze = { x: r3(g.x), y: r3(g.y) };
          }
        }
        faces.push(f);
      }
    }
    let objects: ObjectResult[] = [];
    if (o.objects && this.nanodet) {
      const t = performance.now();
      objects = (await this.nanodet.detect(img, {
        scoreThreshold: o.objectScore, labelThresholds: o.objectLabelThresholds, labels: o.objectLabels, iouThreshold: o.objectIou, tiles: o.tiles,
      })).map((x) => ({ label: x.label, score: r3(x.score), box: roundBox(x.box) }));
      timings.objects = performance.now() - t;
    }
    timings.total = performance.now() - t0;
    for (const k of Object.keys(timings) as (keyof typeof timings)[]) timings[k] = r1(timings[k]);
    return { width: img.width, height: img.height, faces, objects, timings, ...(unavailable.length ? { unavailable } : {}) };
  }
}

let shared: Promise<Detector> | null = null;

/**
 * Analyse one rgb24 frame with a lazily created shared Detector (models from the default dir).
 * For many frames from a session, prefer DetectorPool (off the main thread).
 */
export async function analyzeFrame(rgb: Uint8Array, width: number, height: number, opts: Partial<DetectOptions> = {}): Promise<FrameAnalysis> {
  if (rgb.length !== width * height * 3) throw new RangeError(`rgb24 buffer has ${rgb.length} bytes, expected ${width}x${height}x3 = ${width * height * 3}`);
  shared ??= Detector.create();
  try {
    return await (await shared).analyze({ data: rgb, width, height }, opts);
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('MODEL_')) shared = null;
    throw e;
  }
}
