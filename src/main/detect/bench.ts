/**
 * `npm run bench:detect`: per-model median inference time, the pipeline's cost per frame relative to raw inference,
 * and the CPU share of live detection (faces at 5 Hz, objects at 2 Hz on two 320x240 cameras) through the
 * DetectorPool, against a baseline computed in the same run from the raw medians.
 *   options: --seconds <n> (live part, default 10)  --runs <n> (per model, default 30)  --json
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { loadModelSession, ort, type ModelName } from './models.js';
import { Detector } from './detector.js';
import { DetectorPool, DetectionScheduler, type Frame } from './pool.js';
import { decodeImage, type RgbImage } from './image.js';

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const r2 = (v: number) => Math.round(v * 100) / 100;

async function rawMedian(name: ModelName, runs: number): Promise<number> {
  const s = await loadModelSession(name, undefined, { threads: 1 });
  const meta = s.inputMetadata[0] as { shape?: (number | string)[] };
  const shape = (meta.shape ?? []).map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => ((i * 7919) % 255) / 255);
  const feeds = { [s.inputNames[0]!]: new ort.Tensor('float32', data, shape) };
  for (let i = 0; i < 3; i++) await s.run(feeds);
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await s.run(feeds);
    t.push(performance.now() - t0);
  }
  await s.release();
  return median(t);
}

/** A 320x240 camera-like frame with one face in it (the test fixture pasted onto a grey room). */
async function cameraFrame(): Promise<RgbImage> {
  const here = dirname(fileURLToPath(import.meta.url));
  const face = await decodeImage(join(here, '../../../tests/detect/fixtures/face_frontal.jpg'));
  const W = 320;
  const H = 240;
  const data = new Uint8Array(W * H * 3).fill(96);
  const ox = Math.floor((W - face.width) / 2);
  const oy = Math.max(0, Math.floor((H - face.height) / 2));
  for (let y = 0; y < Math.min(face.height, H); y++) {
    for (let x = 0; x < face.width && ox + x < W; x++) {
      const s = (y * face.width + x) * 3;
      const d = ((oy + y) * W + ox + x) * 3;
      data[d] = face.data[s]!; data[d + 1] = face.data[s + 1]!; data[d + 2] = face.data[s + 2]!;
    }
  }
  return { data, width: W, height: H };
}

export async function benchCommand(argv: string[]): Promise<number> {
  const opt = (n: string, d: number) => {
    const i = argv.indexOf(n);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const seconds = opt('--seconds', 10);
  const runs = opt('--runs', 30);
  const json = argv.includes('--json');
  const out: Record<string, unknown> = {};

  // 1. raw inference, 1 thread each
  const models: ModelName[] = ['blazeface-front-128', 'blazeface-back-256', 'facemesh', 'iris', 'nanodet-416'];
  const raw: Record<string, number> = {};
  for (const m of models) raw[m] = r2(await rawMedian(m, runs));
  out.rawMedianMs = raw;

  // 2. pipeline per frame, in-process, vs raw inference of the models it runs
  const det = await Detector.create({ threads: 1 });
  const frame = await cameraFrame();
  const time = async (opts: Parameters<Detector['analyze']>[1]) => {
    for (let i = 0; i < 3; i++) await det.analyze(frame, opts);
    const t: number[] = [];
    let faces = 0;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const a = await det.analyze(frame, opts);
      t.push(performance.now() - t0);
      faces = a.faces.length;
    }
    return { ms: median(t), faces };
  };
  const faceP = await time({ objects: false, irisMinFacePx: 0 });
  const objP = await time({ faces: false, tiles: 0 });
  const faceRaw = raw['blazeface-back-256']! + faceP.faces * raw.facemesh!;
  const objRaw = raw['nanodet-416']!;
  out.pipeline = {
    frame: '320x240, one face',
    faceBranch: { ms: r2(faceP.ms), rawMs: r2(faceRaw), ratio: r2(faceP.ms / faceRaw), faces: faceP.faces },
    objectBranch: { ms: r2(objP.ms), rawMs: r2(objRaw), ratio: r2(objP.ms / objRaw) },
  };

  // 3. live: two cameras, 5 Hz faces + 2 Hz objects, through the worker pool
  const pool = await DetectorPool.start({ workers: 1, maxQueue: 2, threads: 1, options: { tiles: 0, irisMinFacePx: 0 } });
  const sched = new DetectionScheduler(5, 2);
  const fps = 5;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let submitted = 0;
  for (let k = 0; k < seconds * fps; k++) {
    const target = t0 + (k * 1000) / fps;
    const wait = target - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    for (const source of ['face', 'room']) {
      const f: Frame = { source, width: frame.width, height: frame.height, data: frame.data, pts: k / fps, wall: Date.now() };
      const plan = sched.plan(f);
      if (plan && pool.submit(f, plan)) submitted++;
    }
  }
  await pool.drain();
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cores = (cpu.user + cpu.system) / 1e6 / wallS;
  const st = pool.stats();
  await pool.close();
  // baseline: the same schedule priced at raw inference medians (2 cameras × (5 Hz faces + 2 Hz objects))
  const baselineCores = (2 * (5 * faceRaw + 2 * objRaw)) / 1000;
  out.live = {
    seconds: r2(wallS), cameras: 2, faceHz: 5, objectHz: 2, submitted, processed: st.processed, dropped: st.dropped,
    meanLatencyMs: st.meanLatencyMs, cpuCores: r2(cores), baselineCores: r2(baselineCores), ratio: r2(cores / baselineCores), goalCores: 0.3,
  };

  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    console.log('raw inference, median ms (onnxruntime-node, 1 intra-op thread):');
    for (const [k, v] of Object.entries(raw)) console.log(`  ${k.padEnd(20)} ${v.toFixed(2)}`);
    const p = out.pipeline as { faceBranch: { ms: number; rawMs: number; ratio: number; faces: number }; objectBranch: { ms: number; rawMs: number; ratio: number } };
    console.log(`pipeline per 320x240 frame (decode→tensor→infer→decode), vs raw inference in this run (goal ≤ 1.5x):`);
    console.log(`  faces   (BlazeFace-256 + FaceMesh x${p.faceBranch.faces}) ${p.faceBranch.ms.toFixed(2)} ms vs ${p.faceBranch.rawMs.toFixed(2)} ms raw = ${p.faceBranch.ratio}x`);
    console.log(`  objects (NanoDet-416, no tiles)          ${p.objectBranch.ms.toFixed(2)} ms vs ${p.objectBranch.rawMs.toFixed(2)} ms raw = ${p.objectBranch.ratio}x`);
    const l = out.live as Record<string, number>;
    console.log(`live, 2 cameras, faces 5 Hz + objects 2 Hz, worker pool, ${l.seconds} s: CPU ${l.cpuCores} cores (goal ≤ 0.3) vs baseline ${l.baselineCores} cores at raw medians = ${l.ratio}x; ${l.processed}/${l.submitted} analysed, ${l.dropped} dropped, mean latency ${l.meanLatencyMs} ms`);
  }
  return 0;
}
