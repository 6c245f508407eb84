/**
 * Objects: NanoDet (COCO-80) at 416×416. Input is BGR, (pixel − mean) / std per channel as NanoDet was trained
 * (RGB/255 input finds almost nothing). Outputs per stride 8/16/32: class scores (already sigmoid) and box
 * distributions (4 sides × 11 bins, General Focal Loss): distance = Σ softmax(bin)·k · stride.
 * Optional 2×2 overlapping tiles find small phones that vanish when a large frame is shrunk to 416.
 */
import type ort from 'onnxruntime-node';
import { ort as ortNs } from './models.js';
import { cropToTensor, type Box, type RgbImage } from './image.js';
import { clampBox, nms } from './geometry.js';

export const COCO_LABELS = [
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
  'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
  'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
  'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
  'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
  'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed',
  'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave', 'oven',
  'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush',
] as const;
export type CocoLabel = (typeof COCO_LABELS)[number];

export interface ObjectResult { label: CocoLabel; score: number; box: Box }

export interface ObjectOptions {
  /** minimum score per detection (after NMS); per-label overrides in `labelThresholds` */
  scoreThreshold: number;
  labelThresholds?: Partial<Record<CocoLabel, number>>;
  /** only these labels are returned (all when absent) */
  labels?: readonly CocoLabel[];
  iouThreshold: number;
  /** 0/1: whole frame only; 2: also 2×2 overlapping tiles; 'auto': tiles when the frame's shorter side ≥ 600 px */
  tiles: 0 | 1 | 2 | 'auto';
}

const MEAN_BGR: [number, number, number] = [103.53, 116.28, 123.675];
const STD_BGR: [number, number, number] = [57.375, 57.12, 58.395];
const STRIDES = [8, 16, 32] as const;
/** Labels taken from the 2×2 tiles (small hand-held things); everything else comes from the whole frame only. */
export const TILE_LABELS: ReadonlySet<string> = new Set<CocoLabel>(['cell phone', 'remote', 'book', 'mouse', 'cup', 'bottle', 'scissors']);
const BINS = 11;

export class NanoDet {
  static readonly SIZE = 416;
  private buf = new Float32Array(3 * NanoDet.SIZE * NanoDet.SIZE);
  constructor(private readonly session: ort.InferenceSession) {}

  /** The model input for a region of a frame: stretched to 416×416, BGR, NanoDet's mean/std, NCHW. */
  static tensorFor(img: RgbImage, region: Box, out?: Float32Array): Float32Array {
    const S = NanoDet.SIZE;
    return cropToTensor(img, region, { width: S, height: S, layout: 'nchw', order: 'bgr', mean: MEAN_BGR, std: STD_BGR }, out);
  }

  /** Run on one region (stretched to 416×416); returns candidates in image pixels above `minScore`. */
  async runRegion(img: RgbImage, region: Box, minScore: number, wanted?: Set<number>): Promise<ObjectResult[]> {
    const S = NanoDet.SIZE;
    NanoDet.tensorFor(img, region, this.buf);
    const out = await this.session.run({ input_1: new ortNs.Tensor('float32', this.buf, [1, 3, S, S]) });
    const res: ObjectResult[] = [];
    const sx = region.w / S;
    const sy = region.h / S;
    const probs = new Float64Array(BINS);
    for (const stride of STRIDES) {
      const cls = out[`cls${stride}`]!.data as Float32Array;
      const reg = out[`box${stride}`]!.data as Float32Array;
      const grid = Math.ceil(S / stride);
      const n = grid * grid;
      for (let i = 0; i < n; i++) {
        let best = -1;
        let bestScore = minScore;
        for (let c = 0; c < 80; c++) {
          const s = cls[i * 80 + c]!;
          if (s > bestScore && (!wanted || wanted.has(c))) { bestScore = s; best = c; }
        }
        if (best < 0) continue;
        const cx = (i % grid) * stride;
        const cy = Math.floor(i / grid) * stride;
        const dist: number[] = [];
        for (let side = 0; side < 4; side++) {
          const o = i * 44 + side * BINS;
          let m = -Infinity;
          for (let k = 0; k < BINS; k++) m = Math.max(m, reg[o + k]!);
          let z = 0;
          for (let k = 0; k < BINS; k++) { probs[k] = Math.exp(reg[o + k]! - m); z += probs[k]!; }
          let d = 0;
          for (let k = 0; k < BINS; k++) d += (probs[k]! / z) * k;
          dist.push(d * stride);
        }
        const x0 = cx - dist[0]!;
        const y0 = cy - dist[1]!;
        const x1 = cx + dist[2]!;
        const y1 = cy + dist[3]!;
        res.push({
          label: COCO_LABELS[best]!,
          score: bestScore,
          box: { x: region.x + x0 * sx, y: region.y + y0 * sy, w: (x1 - x0) * sx, h: (y1 - y0) * sy },
        });
      }
    }
    return res;
  }

  /** Whole frame (and tiles if asked), per-label NMS, per-label thresholds. */
  async detect(img: RgbImage, opts: ObjectOptions): Promise<ObjectResult[]> {
    const W = img.width;
    const H = img.height;
    const minScore = Math.min(opts.scoreThreshold, ...Object.values(opts.labelThresholds ?? {}).map(Number));
    const wanted = opts.labels ? new Set(opts.labels.map((l) => COCO_LABELS.indexOf(l))) : undefined;
    const regions: Box[] = [{ x: 0, y: 0, w: W, h: H }];
    const tiles = opts.tiles === 'auto' ? (Math.min(W, H) >= 600 ? 2 : 1) : opts.tiles;
    if (tiles === 2) {
      const tw = W * 0.6;
      const th = H * 0.6;
      for (const [fx, fy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) regions.push({ x: fx * (W - tw), y: fy * (H - th), w: tw, h: th });
    }
    let cands: ObjectResult[] = [];
    for (const [k, r] of regions.entries()) {
      const found = await this.runRegion(img, r, minScore, wanted);
      // tiles are for small things: a tile cuts people and furniture into parts that would count twice
      cands = cands.concat(k === 0 ? found : found.filter((f) => TILE_LABELS.has(f.label)));
    }
    const byLabel = new Map<string, ObjectResult[]>();
    for (const c of cands) {
      const thr = opts.labelThresholds?.[c.label] ?? opts.scoreThreshold;
      if (c.score < thr) continue;
      c.box = clampBox(c.box, W, H);
      if (!byLabel.has(c.label)) byLabel.set(c.label, []);
      byLabel.get(c.label)!.push(c);
    }
    const out: ObjectResult[] = [];
    for (const list of byLabel.values()) out.push(...nms(list, opts.iouThreshold));
    return out.sort((a, b) => b.score - a.score);
  }
}
