/**
 * Faces: BlazeFace detection → FaceMesh (468 3-D points) on each face crop → head pose (yaw/pitch/roll) and, when the
 * face is large enough, iris-based gaze.
 *
 * Conventions (image coordinates: x to the image's right, y down, z away from the camera):
 * - yaw   > 0: the nose points toward the IMAGE's right edge (the subject turns to their own left).
 * - pitch > 0: the nose points down (head bowed toward the desk).
 * - roll  > 0: the head is tilted so that the eye line turns clockwise in the image (image-right eye lower).
 * - gaze.x > 0: the irises sit toward the image's right side of the eyes; gaze.y > 0: toward the bottom.
 *   Both are fractions of the eye width (about ±0.25 at the extremes).
 */
import type ort from 'onnxruntime-node';
import { ort as ortNs } from './models.js';
import { cropToTensor, roiToTensor, type Box, type RgbImage, type Roi } from './image.js';
import { clampBox, squareAround, weightedNms } from './geometry.js';

export interface FaceDetection {
  box: Box;
  score: number;
  /** six BlazeFace keypoints in image pixels: eyes (subject right, left), nose, mouth, ears (right, left) */
  keypoints: [number, number][];
}

export interface HeadPose { yaw: number; pitch: number; roll: number }
export interface Gaze { x: number; y: number }
export interface FaceResult extends HeadPose {
  box: Box;
  score: number;
  /** FaceMesh's own face-presence score for the crop (0..1) */
  meshScore: number;
  gaze?: Gaze;
}

// ---------------- BlazeFace ----------------

const BF_LAYERS = [
  { grid: 16, anchors: 2, scores: 0, boxes: 2 },
  { grid: 8, anchors: 6, scores: 1, boxes: 3 },
] as const;

export interface BlazeFaceOptions { scoreThreshold: number; iouThreshold: number }

/** Decode BlazeFace outputs ([scores16, scores8, boxes16, boxes8] in normalized square coords). */
export function decodeBlazeFace(outs: Float32Array[], inputSize: number, opts: BlazeFaceOptions): { box: Box; score: number; points: number[] }[] {
  const cands: { box: Box; score: number; points: number[] }[] = [];
  const logit = Math.log(opts.scoreThreshold / (1 - opts.scoreThreshold));
  for (const L of BF_LAYERS) {
    const scores = outs[L.scores]!;
    const boxes = outs[L.boxes]!;
    for (let row = 0; row < L.grid; row++) {
      for (let col = 0; col < L.grid; col++) {
        for (let a = 0; a < L.anchors; a++) {
          const i = (row * L.grid + col) * L.anchors + a;
          const raw = scores[i]!;
          if (raw < logit) continue;
          const score = 1 / (1 + Math.exp(-Math.max(-100, Math.min(100, raw))));
          const ax = (col + 0.5) / L.grid;
          const ay = (row + 0.5) / L.grid;
          const o = i * 16;
          const cx = ax + boxes[o]! / inputSize;
          const cy = ay + boxes[o + 1]! / inputSize;
          const w = boxes[o + 2]! / inputSize;
          const h = boxes[o + 3]! / inputSize;
          const points: number[] = [];
          for (let k = 0; k < 6; k++) points.push(ax + boxes[o + 4 + 2 * k]! / inputSize, ay + boxes[o + 5 + 2 * k]! / inputSize);
          cands.push({ box: { x: cx - w / 2, y: cy - h / 2, w, h }, score, points });
        }
      }
    }
  }
  return weightedNms(cands, opts.iouThreshold);
}

export class BlazeFace {
  readonly size: number;
  private readonly inputName: string;
  private readonly outNames: string[];
  private readonly buf: Float32Array;
  /** the input tensor wraps `buf`, which each call refills (calls on one instance are sequential) */
  private readonly input: ort.Tensor;
  constructor(private readonly session: ort.InferenceSession) {
    const shape = (session.inputMetadata[0] as { shape?: (number | string)[] }).shape ?? [];
    this.size = Number(shape[1]) || 128;
    this.buf = new Float32Array(this.size * this.size * 3);
    this.input = new ortNs.Tensor('float32', this.buf, [1, this.size, this.size, 3]);
    this.inputName = session.inputNames[0]!;
    this.outNames = [...session.outputNames];
  }

  /** The centred square the frame is letterboxed into (black padding outside the frame). */
  static squareFor(img: { width: number; height: number }): Box {
    const side = Math.max(img.width, img.height);
    return { x: (img.width - side) / 2, y: (img.height - side) / 2, w: side, h: side };
  }

  /** The model input for a frame: letterboxed, resized, scaled to −1..1 (NHWC RGB). */
  static tensorFor(img: RgbImage, size: number, out?: Float32Array): Float32Array {
    return cropToTensor(img, BlazeFace.squareFor(img), { width: size, height: size, layout: 'nhwc', mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] }, out);
  }

  async detect(img: RgbImage, opts: BlazeFaceOptions): Promise<FaceDetection[]> {
    const sq = BlazeFace.squareFor(img);
    const side = sq.w;
    const S = this.size;
    BlazeFace.tensorFor(img, S, this.buf);
    const out = await this.session.run({ [this.inputName]: this.input });
    // sort outputs: Identity (scores 512), Identity_1 (scores 384), Identity_2 (boxes 512x16), Identity_3 (boxes 384x16)
    const arrs = this.outNames.map((n) => out[n]!.data as Float32Array);
    const dets = decodeBlazeFace(arrs, S, opts);
    return dets.map((d) => ({
      box: clampBox({ x: sq.x + d.box.x * side, y: sq.y + d.box.y * side, w: d.box.w * side, h: d.box.h * side }, img.width, img.height),
      score: d.score,
      keypoints: Array.from({ length: 6 }, (_, k) => [sq.x + d.points[2 * k]! * side, sq.y + d.points[2 * k + 1]! * side] as [number, number]),
    }));
  }
}

// ---------------- FaceMesh + pose ----------------

/** Mesh indices used for pose: eye outer corners, forehead, chin, nose tip. */
const IDX = { rightEyeOuter: 33, rightEyeInner: 133, leftEyeInner: 362, leftEyeOuter: 263, forehead: 10, chin: 152, nose: 1 } as const;
const RAD = 180 / Math.PI;

type V3 = [number, number, number];
const sub = (a: V3, b: V3): V3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const cross = (a: V3, b: V3): V3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const norm = (a: V3): V3 => {
  const l = Math.hypot(a[0], a[1], a[2]) || 1;
  return [a[0] / l, a[1] / l, a[2] / l];
};

/**
 * Head pose from FaceMesh 3-D points (any uniform scale; x right, y down, z away from the camera).
 * The face's right-to-left eye axis and chin-to-forehead axis span the face plane; their cross product is the
 * direction the face points to. The angles decompose the head rotation as R = Rz(roll) · Ry(yaw) · Rx(pitch):
 * roll is the eye line's angle in the image; yaw and pitch are read after turning the face direction back by the
 * roll, so they are the head's own left/right and up/down turns and do not change when the camera (or the head)
 * rotates in the image plane.
 */
export function poseFromMesh(pt: (i: number) => V3): HeadPose {
  const across = sub(pt(IDX.leftEyeOuter), pt(IDX.rightEyeOuter)); // toward image right for a frontal face
  const up = sub(pt(IDX.forehead), pt(IDX.chin)); // toward image top
  const f = norm(cross(across, up)); // toward the camera (-z) for a frontal face
  const rollRad = Math.atan2(across[1], across[0]);
  const c = Math.cos(rollRad);
  const s = Math.sin(rollRad);
  // face direction with the roll undone (rotate by -roll about the camera axis)
  const fx = f[0] * c + f[1] * s;
  const fy = -f[0] * s + f[1] * c;
  const yaw = Math.atan2(fx, -f[2]) * RAD;
  const pitch = Math.atan2(fy, Math.hypot(fx, f[2])) * RAD;
  return { yaw, pitch, roll: rollRad * RAD };
}

export interface MeshResult {
  /** 468 × (x, y, z) in image pixels (z: depth on the same scale, larger = farther) */
  points: Float32Array;
  roi: Roi;
  score: number;
  pose: HeadPose;
  /** the crop was retried in grayscale because the colour crop scored below `retryBelow` */
  gray: boolean;
}

export interface MeshOptions {
  /** FaceMesh face-presence score below which the crop is run again in grayscale (0 = never) */
  retryBelow?: number;
}

export class FaceMesh {
  static readonly SIZE = 192;
  /** side of the face crop relative to the BlazeFace box (MediaPipe uses 1.5) */
  static readonly SCALE = 1.5;
  private readonly buf = new Float32Array(192 * 192 * 3);
  private readonly input = new ortNs.Tensor('float32', this.buf, [1, 192, 192, 3]);
  constructor(private readonly session: ort.InferenceSession) {}

  /**
   * Crop for a BlazeFace detection: a square 1.5× the box's larger side, centred on the box, turned by the eye line
   * (keypoints 0 and 1) so the face is upright in the crop, as the model was trained.
   */
  static roiFor(det: { box: Box; keypoints?: [number, number][] }): Roi {
    const b = det.box;
    const re = det.keypoints?.[0];
    const le = det.keypoints?.[1];
    const angle = re && le ? Math.atan2(le[1] - re[1], le[0] - re[0]) : 0;
    return { cx: b.x + b.w / 2, cy: b.y + b.h / 2, size: Math.max(b.w, b.h) * FaceMesh.SCALE, angle };
  }

  /** Axis-aligned crop box of the unrotated ROI (kept for callers that want a box). */
  static cropFor(det: { box: Box }): Box {
    const b = det.box;
    return squareAround(b.x + b.w / 2, b.y + b.h / 2, Math.max(b.w, b.h) * FaceMesh.SCALE);
  }

  private async infer(img: RgbImage, roi: Roi, gray: boolean): Promise<{ mesh: Float32Array; score: number }> {
    const S = FaceMesh.SIZE;
    roiToTensor(img, roi, S, { mean: 0, std: 255, gray }, this.buf);
    // the unused `contours` output is not fetched
    const out = await this.session.run({ input_1: this.input }, ['mesh', 'faceflag']);
    return { mesh: out.mesh!.data as Float32Array, score: (out.faceflag!.data as Float32Array)[0]! };
  }

  async run(img: RgbImage, roi: Roi, opts: MeshOptions = {}): Promise<MeshResult> {
    let r = await this.infer(img, roi, false);
    let gray = false;
    // Coloured light (a blue monitor glow, stage light) can make FaceMesh reject a face it finds in grayscale.
    if (opts.retryBelow && r.score < opts.retryBelow) {
      const g = await this.infer(img, roi, true);
      if (g.score > r.score) { r = g; gray = true; }
    }
    const points = FaceMesh.toImage(r.mesh, roi);
    const pt = (i: number): V3 => [points[3 * i]!, points[3 * i + 1]!, points[3 * i + 2]!];
    return { points, roi, score: r.score, pose: poseFromMesh(pt), gray };
  }

  /** Model output (crop pixels) → image pixels: turned by the ROI angle about its centre; z scaled like x. */
  static toImage(mesh: Float32Array, roi: Roi): Float32Array {
    const S = FaceMesh.SIZE;
    const k = roi.size / S;
    const c = Math.cos(roi.angle) * k;
    const s = Math.sin(roi.angle) * k;
    const points = new Float32Array(mesh.length);
    for (let i = 0; i < mesh.length; i += 3) {
      const u = mesh[i]! - S / 2;
      const v = mesh[i + 1]! - S / 2;
      points[i] = roi.cx + u * c - v * s;
      points[i + 1] = roi.cy + u * s + v * c;
      points[i + 2] = mesh[i + 2]! * k;
    }
    return points;
  }
}

// ---------------- Iris ----------------

export class Iris {
  static readonly SIZE = 64;
  private readonly buf = new Float32Array(64 * 64 * 3);
  constructor(private readonly session: ort.InferenceSession) {}

  /** Gaze from both eyes; the subject's right eye (image left) is mirrored, as the model expects a left eye. */
  async gaze(img: RgbImage, mesh: Float32Array): Promise<Gaze> {
    const S = Iris.SIZE;
    const p = (i: number): [number, number] => [mesh[3 * i]!, mesh[3 * i + 1]!];
    const eyes = [
      { outer: p(IDX.rightEyeOuter), inner: p(IDX.rightEyeInner), flip: true },
      { outer: p(IDX.leftEyeOuter), inner: p(IDX.leftEyeInner), flip: false },
    ];
    let gx = 0;
    let gy = 0;
    for (const e of eyes) {
      const cx = (e.outer[0] + e.inner[0]) / 2;
      const cy = (e.outer[1] + e.inner[1]) / 2;
      const width = Math.hypot(e.outer[0] - e.inner[0], e.outer[1] - e.inner[1]);
      const box = squareAround(cx, cy, width * 2.3);
      const t = cropToTensor(img, box, { width: S, height: S, layout: 'nhwc', mean: [0, 0, 0], std: [255, 255, 255], flip: e.flip }, this.buf);
      const out = await this.session.run({ input_1: new ortNs.Tensor('float32', t, [1, S, S, 3]) });
      const d = out.iris!.data as Float32Array;
      // 71 eye-contour points then 5 iris points (centre first), x,y,z each, in crop pixels
      let ix = d[71 * 3]!;
      const iy = d[71 * 3 + 1]!;
      if (e.flip) ix = S - ix;
      const px = box.x + (ix / S) * box.w;
      const py = box.y + (iy / S) * box.h;
      gx += (px - cx) / (width || 1);
      gy += (py - cy) / (width || 1);
    }
    return { x: gx / 2, y: gy / 2 };
  }
}
