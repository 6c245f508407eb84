/** Boxes, IoU and non-maximum suppression shared by the face and object decoders. */
import type { Box } from './image.js';

export function iou(a: Box, b: Box): number {
  const x0 = Math.max(a.x, b.x);
  const y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.w, b.x + b.w);
  const y1 = Math.min(a.y + a.h, b.y + b.h);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const union = a.w * a.h + b.w * b.h - inter;
  return union > 0 ? inter / union : 0;
}

export interface Scored { box: Box; score: number }

/** Greedy NMS: keep the best, drop others with IoU > threshold. Returns kept items, best first. */
export function nms<T extends Scored>(items: T[], iouThreshold: number, maxOut = Infinity): T[] {
  const sorted = [...items].sort((a, b) => b.score - a.score);
  const kept: T[] = [];
  for (const it of sorted) {
    if (kept.length >= maxOut) break;
    if (kept.every((k) => iou(k.box, it.box) <= iouThreshold)) kept.push(it);
  }
  return kept;
}

/**
 * Weighted NMS (as MediaPipe does for BlazeFace): each cluster of overlapping candidates (IoU > threshold with the
 * best remaining one) becomes one detection whose geometry is the score-weighted mean; the score is the best one.
 */
export function weightedNms<T extends Scored & { points: number[] }>(items: T[], iouThreshold: number): T[] {
  let rest = [...items].sort((a, b) => b.score - a.score);
  const out: T[] = [];
  while (rest.length) {
    const best = rest[0]!;
    const cluster = rest.filter((r) => iou(best.box, r.box) > iouThreshold || r === best);
    rest = rest.filter((r) => !cluster.includes(r));
    let ws = 0;
    const box = { x: 0, y: 0, w: 0, h: 0 };
    const pts = new Array<number>(best.points.length).fill(0);
    for (const c of cluster) {
      ws += c.score;
      box.x += c.box.x * c.score; box.y += c.box.y * c.score; box.w += c.box.w * c.score; box.h += c.box.h * c.score;
      c.points.forEach((v, i) => { pts[i] = pts[i]! + v * c.score; });
    }
    out.push({ ...best, box: { x: box.x / ws, y: box.y / ws, w: box.w / ws, h: box.h / ws }, points: pts.map((v) => v / ws) });
  }
  return out;
}

export const clampBox = (b: Box, W: number, H: number): Box => {
  const x0 = Math.max(0, Math.min(W, b.x));
  const y0 = Math.max(0, Math.min(H, b.y));
  const x1 = Math.max(0, Math.min(W, b.x + b.w));
  const y1 = Math.max(0, Math.min(H, b.y + b.h));
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
};

/** Round a box to 1 decimal for output. */
export const roundBox = (b: Box): Box => ({ x: Math.round(b.x * 10) / 10, y: Math.round(b.y * 10) / 10, w: Math.round(b.w * 10) / 10, h: Math.round(b.h * 10) / 10 });

export const squareAround = (cx: number, cy: number, side: number): Box => ({ x: cx - side / 2, y: cy - side / 2, w: side, h: side });
