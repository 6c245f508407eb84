/**
 * `npm run eval -- <dir>`: precision/recall per label on a labelled folder (labels.json keyed by file name with
 * faces, head, phone, book, headphones, persons — the format of the shared detection fixtures).
 *
 * Counting labels (faces, persons): per image TP = min(pred, truth), FP = excess predictions, FN = missed ones.
 * Presence labels (phone, book): image-level. Head: per class over images whose label is not "unknown".
 * headphones: COCO has no such class, so it is reported as not detectable (recall 0 by construction).
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Detector, type DetectOptions, type FrameAnalysis } from './detector.js';
import { decodeImage } from './image.js';
import { parseMachineConfig } from '../core/config.js';

export interface LabelEntry { faces: number; head: string; phone: boolean; book: boolean; headphones: boolean; persons: number }
export interface HeadThresholds { yawDeg: number; pitchDeg: number }
/**
 * yaw 17° (the turned fixtures read 22–60°, frontal ones mostly within ±17°); pitch = the config default
 * `detection.thresholds.headDownPitchDeg`, so the eval scores the "down" threshold the session rules use.
 */
export const DEFAULT_HEAD: HeadThresholds = { yawDeg: 17, pitchDeg: parseMachineConfig({}).detection.thresholds.headDownPitchDeg };

/** left/right by yaw sign when |yaw| exceeds the threshold, else down when pitch exceeds it, else frontal. */
export function headClass(f: { yaw: number; pitch: number }, t: HeadThresholds = DEFAULT_HEAD): 'left' | 'right' | 'down' | 'frontal' {
  if (Math.abs(f.yaw) > t.yawDeg) return f.yaw > 0 ? 'right' : 'left';
  if (f.pitch > t.pitchDeg) return 'down';
  return 'frontal';
}

export interface Prediction { faces: number; head: string; phone: boolean; book: boolean; headphones: boolean; persons: number }

export function predictLabels(a: FrameAnalysis, t: HeadThresholds = DEFAULT_HEAD): Prediction {
  const heads = new Set(a.faces.map((f) => headClass(f, t)));
  return {
    faces: a.faces.length,
    head: heads.size === 1 ? [...heads][0]! : 'unknown',
    phone: a.objects.some((o) => o.label === 'cell phone'),
    book: a.objects.some((o) => o.label === 'book'),
    headphones: false,
    persons: a.objects.filter((o) => o.label === 'person').length,
  };
}

interface Counts { tp: number; fp: number; fn: number }
const pr = (c: Counts) => ({ precision: c.tp + c.fp ? c.tp / (c.tp + c.fp) : NaN, recall: c.tp + c.fn ? c.tp / (c.tp + c.fn) : NaN });

export function score(rows: { truth: LabelEntry; pred: Prediction }[]): Record<string, Counts & { precision: number; recall: number; note?: string }> {
  const c: Record<string, Counts> = {};
  const add = (k: string, d: Partial<Counts>) => {
    c[k] ??= { tp: 0, fp: 0, fn: 0 };
    c[k]!.tp += d.tp ?? 0; c[k]!.fp += d.fp ?? 0; c[k]!.fn += d.fn ?? 0;
  };
  for (const { truth, pred } of rows) {
    for (const k of ['faces', 'persons'] as const) {
      add(k, { tp: Math.min(pred[k], truth[k]), fp: Math.max(0, pred[k] - truth[k]), fn: Math.max(0, truth[k] - pred[k]) });
    }
    for (const k of ['phone', 'book', 'headphones'] as const) {
      add(k, { tp: pred[k] && truth[k] ? 1 : 0, fp: pred[k] && !truth[k] ? 1 : 0, fn: !pred[k] && truth[k] ? 1 : 0 });
    }
    if (truth.head !== 'unknown') {
      for (const h of ['frontal', 'left', 'right', 'down']) {
        add(`head:${h}`, { tp: pred.head === h && truth.head === h ? 1 : 0, fp: pred.head === h && truth.head !== h ? 1 : 0, fn: pred.head !== h && truth.head === h ? 1 : 0 });
      }
    }
  }
  const out: Record<string, Counts & { precision: number; recall: number; note?: string }> = {};
  for (const [k, v] of Object.entries(c)) out[k] = { ...v, ...pr(v), ...(k === 'headphones' ? { note: 'no COCO class: not detected' } : {}) };
  return out;
}

const f2 = (v: number) => (Number.isNaN(v) ? '  -  ' : v.toFixed(2));

export function formatTable(s: ReturnType<typeof score>): string {
  const lines = ['label          TP  FP  FN  precision  recall', '-------------  --  --  --  ---------  ------'];
  for (const [k, v] of Object.entries(s)) lines.push(`${k.padEnd(13)}  ${String(v.tp).padStart(2)}  ${String(v.fp).padStart(2)}  ${String(v.fn).padStart(2)}  ${f2(v.precision).padStart(9)}  ${f2(v.recall).padStart(6)}${v.note ? `  (${v.note})` : ''}`);
  return lines.join('\n');
}

export async function evalCommand(argv: string[]): Promise<number> {
  const dir = argv.find((a) => !a.startsWith('-'));
  const json = argv.includes('--json');
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (!dir || !existsSync(join(dir, 'labels.json'))) {
    console.error('usage: npm run eval -- <dir with labels.json> [--json] [--verbose] [--face-model back-256|front-128] [--tiles 0|2|auto] [--yaw 17] [--pitch 25]');
    return 2;
  }
  const labels = JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')) as Record<string, LabelEntry>;
  const opts: Partial<DetectOptions> = { tiles: 2 };
  const fm = opt('--face-model');
  if (fm === 'front-128' || fm === 'back-256') opts.faceModel = fm;
  const tl = opt('--tiles');
  if (tl) opts.tiles = tl === 'auto' ? 'auto' : (Number(tl) as 0 | 1 | 2);
  const head: HeadThresholds = { yawDeg: Number(opt('--yaw') ?? DEFAULT_HEAD.yawDeg), pitchDeg: Number(opt('--pitch') ?? DEFAULT_HEAD.pitchDeg) };
  const detector = await Detector.create();
  const rows: { file: string; truth: LabelEntry; pred: Prediction; analysis: FrameAnalysis }[] = [];
  for (const [file, truth] of Object.entries(labels)) {
    const img = await decodeImage(join(dir, file), { maxSide: 1920 });
    const analysis = await detector.analyze(img, opts);
    const pred = predictLabels(analysis, head);
    rows.push({ file, truth, pred, analysis });
    if (verbose) {
      console.log(`${file}: faces ${pred.faces}/${truth.faces} head ${pred.head}/${truth.head} phone ${pred.phone}/${truth.phone} book ${pred.book}/${truth.book} persons ${pred.persons}/${truth.persons}` +
        `  [${analysis.faces.map((f) => `yaw ${f.yaw} pitch ${f.pitch} roll ${f.roll} mesh ${f.meshScore}`).join('; ')}]`);
    }
  }
  const s = score(rows);
  const exactFaces = rows.filter((r) => r.pred.faces === r.truth.faces).length;
  if (json) console.log(JSON.stringify({ images: rows.length, exactFaceCount: exactFaces, head, labels: s }, null, 2));
  else {
    console.log(`${rows.length} images in ${dir}; face count exact on ${exactFaces}/${rows.length}; head thresholds |yaw| > ${head.yawDeg}°, pitch > ${head.pitchDeg}°`);
    console.log(formatTable(s));
  }
  return 0;
}
