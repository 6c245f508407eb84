/**
 * `kuzet detect <image|video>... [--json]`: run the local detectors on files.
 * With --json an image prints ONE JSON object {"faces":[…],"objects":[…]}; a video prints one such object per
 * analysed frame (sampled at --fps, default 2) with its "time" in seconds. Only detections that pass the
 * thresholds are printed.
 */
import { extname, basename } from 'node:path';
import { Detector, DEFAULT_DETECT_OPTIONS, type DetectOptions, type FrameAnalysis } from './detector.js';
import { decodeFrames, decodeImage } from './image.js';
import { KuzetError } from '../core/errors.js';

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff', '.ppm', '.pgm', '.pnm', '.gif']);

export const DETECT_USAGE = `usage: kuzet detect <image|video>... [options]
  --json                 one JSON object per image / per analysed video frame (with "time")
  --fps <n>              video sampling rate (default 2)
  --face-model <m>       back-256 (default) or front-128
  --face-score <0..1>    face threshold (default ${DEFAULT_DETECT_OPTIONS.faceScore})
  --object-score <0..1>  object threshold (default ${DEFAULT_DETECT_OPTIONS.objectScore}; cell phone ${DEFAULT_DETECT_OPTIONS.objectLabelThresholds['cell phone']})
  --tiles <0|2|auto>     2x2 overlapping tiles for small objects (default 2 for files; the live pool uses auto)
  --no-faces | --no-objects   skip a branch
  --max-side <px>        shrink larger inputs first (default 1920)
  --models <dir>         model folder (default: KUZET_MODELS_DIR or the bundled models/)`;

export interface ParsedDetectArgs { files: string[]; json: boolean; fps: number; maxSide: number; modelsDir?: string; opts: Partial<DetectOptions>; help: boolean }

function num(v: string | undefined, name: string, min: number, max: number): number {
  const n = Number(v);
  if (v === undefined || !Number.isFinite(n) || n < min || n > max) throw new KuzetError('USAGE', `${name} needs a number in ${min}..${max}`);
  return n;
}

export function parseDetectArgs(argv: string[]): ParsedDetectArgs {
  // files are analysed offline, so tiles are on by default: they find small phones (see docs/detection.md)
  const r: ParsedDetectArgs = { files: [], json: false, fps: 2, maxSide: 1920, opts: { tiles: 2 }, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--json': r.json = true; break;
      case '-h': case '--help': r.help = true; break;
      case '--fps': r.fps = num(argv[++i], a, 0.01, 60); break;
      case '--max-side': r.maxSide = num(argv[++i], a, 64, 8192); break;
      case '--models': r.modelsDir = argv[++i]; break;
      case '--face-score': r.opts.faceScore = num(argv[++i], a, 0, 1); break;
      case '--object-score': {
        const v = num(argv[++i], a, 0, 1);
        r.opts.objectScore = v;
        r.opts.objectLabelThresholds = {};
        break;
      }
      case '--face-model': {
        const v = argv[++i];
        if (v !== 'back-256' && v !== 'front-128') throw new KuzetError('USAGE', '--face-model is back-256 or front-128');
        r.opts.faceModel = v;
        break;
      }
      case '--tiles': {
        const v = argv[++i];
        if (v === 'auto') r.opts.tiles = 'auto';
        else if (v === '0' || v === '1' || v === '2') r.opts.tiles = Number(v) as 0 | 1 | 2;
        else throw new KuzetError('USAGE', '--tiles is 0, 2 or auto');
        break;
      }
      case '--no-faces': r.opts.faces = false; break;
      case '--no-objects': r.opts.objects = false; break;
      default:
        if (a.startsWith('-')) throw new KuzetError('USAGE', `unknown option ${a}`);
        r.files.push(a);
    }
  }
  return r;
}

/** The JSON shape printed by `kuzet detect --json`. */
export function toJsonRecord(a: FrameAnalysis, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...extra,
    faces: a.faces.map((f) => ({ box: f.box, score: f.score, yaw: f.yaw, pitch: f.pitch, roll: f.roll, ...(f.gaze ? { gaze: f.gaze } : {}) })),
    objects: a.objects.map((o) => ({ label: o.label, score: o.score, box: o.box })),
  };
}

function describe(a: FrameAnalysis): string {
  const faces = a.faces.map((f) => `face ${f.score.toFixed(2)} yaw ${f.yaw}° pitch ${f.pitch}° roll ${f.roll}°${f.gaze ? ` gaze ${f.gaze.x},${f.gaze.y}` : ''}`);
  const objs = a.objects.map((o) => `${o.label} ${o.score.toFixed(2)}`);
  return `${a.faces.length} face(s), ${a.objects.length} object(s) [${a.timings.total} ms]\n${[...faces, ...objs].map((s) => `    ${s}`).join('\n')}`;
}

export async function detectCommand(argv: string[]): Promise<number> {
  let args: ParsedDetectArgs;
  try {
    args = parseDetectArgs(argv);
  } catch (e) {
    console.error(`kuzet detect: ${(e as Error).message}\n${DETECT_USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(DETECT_USAGE);
    return 0;
  }
  if (!args.files.length) {
    console.error(DETECT_USAGE);
    return 2;
  }
  let detector: Detector;
  try {
    detector = await Detector.create({ modelsDir: args.modelsDir });
  } catch (e) {
    console.error(`kuzet detect: ${(e as Error).message}`);
    return 1;
  }
  const many = args.files.length > 1;
  let failed = 0;
  for (const file of args.files) {
    const extra = many ? { file } : {};
    try {
      if (IMAGE_EXT.has(extname(file).toLowerCase())) {
        const img = await decodeImage(file, { maxSide: args.maxSide });
        const a = await detector.analyze(img, args.opts);
        if (args.json) console.log(JSON.stringify(toJsonRecord(a, extra)));
        else console.log(`${basename(file)} (${img.width}x${img.height}): ${describe(a)}`);
      } else {
        for await (const fr of decodeFrames(file, { fps: args.fps, maxSide: args.maxSide })) {
          const a = await detector.analyze(fr, args.opts);
          const time = Math.round(fr.time * 1000) / 1000;
          if (args.json) console.log(JSON.stringify(toJsonRecord(a, { ...extra, time })));
          else console.log(`${basename(file)} t=${time}s: ${describe(a)}`);
        }
      }
    } catch (e) {
      failed++;
      console.error(`kuzet detect: ${file}: ${(e as Error).message}`);
    }
  }
  return failed ? 1 : 0;
}
