import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { SessionContext, Frame } from '../core/context.js';
import type { SourceId } from '../core/config.js';
import { KuzetError } from '../core/errors.js';
import type { Step } from '../core/session.js';
import { DetectorPool, type DetectionResult } from '../detect/pool.js';
import { defaultModelsDir, preflightModels, type ModelName } from '../detect/models.js';
import { EpisodeRules, type Camera, type EpisodeEvent } from './rules.js';
import { writeJpeg } from './snapshot.js';

const CAMERAS: Camera[] = ['face', 'room'];

export interface DetectionService {
  stats(): { frames: Record<string, number>; episodes: number; pool: ReturnType<DetectorPool['stats']> | null };
  /** The newest face-camera analysis that looked for faces: its time (s since session start) and face count. */
  latestFaces(): { t: number; faces: number } | null;
}

/**
 * The detection step: the recorder's frame taps → DetectorPool (worker thread, bounded queue that drops frames)
 * → raw per-frame scores in `detect/<camera>.ndjson` → the rules stage → `episode.started` / `episode.ended`
 * events with a JPEG snapshot. Model files are hash-checked first; the exam policy
 * (`detection.onModelProblem`) decides between refusing to start and running without the broken detector, and
 * the bundle's `degraded` list says which.
 */
export function detectionStep(opts: { modelsDir?: string } = {}): Step<SessionContext> {
  let pool: DetectorPool | null = null;
  let stopping: (() => void) | null = null;
  const stopped = new Promise<void>((res) => (stopping = res));
  const loops: Promise<void>[] = [];
  const pendingSnapshots = new Set<Promise<void>>();
  const files = new Map<string, WriteStream>();
  const what = new Map<string, { faces: boolean; objects: boolean }>();
  const lastFrame = new Map<string, Frame>();
  const counts: Record<string, number> = {};
  let episodes = 0;
  let latestFaces: { t: number; faces: number } | null = null;
  let rules: EpisodeRules | null = null;
  let statsTimer: NodeJS.Timeout | null = null;
  /** Which branches have usable models (set at start). */
  const features = { faces: false, objects: false };

  function onEpisode(ctx: SessionContext, e: EpisodeEvent): void {
    if (e.kind === 'start') {
      episodes++;
      const frame = lastFrame.get(e.camera);
      let snapshot: string | null = null;
      if (frame) {
        snapshot = `snapshots/${e.id}-${e.type.replace(/\./g, '_')}.jpg`;
        const p = writeJpeg(frame.data, frame.width, frame.height, join(ctx.dir, snapshot))
          .catch((err: Error) => { ctx.log.append('detect.snapshot_failed', { id: e.id, error: err.message }); })
          .finally(() => pendingSnapshots.delete(p));
        pendingSnapshots.add(p);
      }
      ctx.log.append('episode.started', { id: e.id, type: e.type, camera: e.camera, start: r3(e.start), score: r3(e.score), detail: e.detail, snapshot });
    } else {
      ctx.log.append('episode.ended', {
        id: e.id, type: e.type, camera: e.camera, start: r3(e.start), end: r3(e.end), duration: r3(e.duration),
        peakScore: e.peakScore, peakT: r3(e.peakT), frames: e.frames, detail: e.detail,
      });
    }
  }

  function onResult(ctx: SessionContext, r: DetectionResult): void {
    const key = `${r.source}@${r.pts}`;
    const w = what.get(key) ?? { faces: true, objects: true };
    what.delete(key);
    counts[r.source] = (counts[r.source] ?? 0) + 1;
    const rec = {
      t: r3(r.pts), wall: r.wall, ms: r.timings.total,
      ...(w.faces ? { faces: r.faces.map((f) => ({ box: f.box, score: f.score, yaw: f.yaw, pitch: f.pitch, roll: f.roll, ...(f.gaze ? { gaze: f.gaze } : {}) })) } : {}),
      ...(w.objects ? { objects: r.objects } : {}),
    };
    files.get(r.source)?.write(JSON.stringify(rec) + '\n');
    if (w.faces && r.source === 'face') latestFaces = { t: r.pts, faces: r.faces.filter((f) => f.score >= ctx.machine.detection.thresholds.faceScore).length };
    for (const e of rules!.push({ camera: r.source as Camera, t: r.pts, faces: w.faces ? r.faces : undefined, objects: w.objects ? r.objects : undefined })) onEpisode(ctx, e);
  }

  async function consume(ctx: SessionContext, cam: Camera): Promise<void> {
    const rec = ctx.services.recorder;
    if (!rec) return;
    const det = ctx.machine.detection;
    const faceEvery = det.faceHz > 0 ? 1 / det.faceHz : Infinity;
    const objEvery = det.objectHz > 0 ? 1 / det.objectHz : Infinity;
    let nextFace = 0;
    let nextObj = 0;
    const it = rec.frames(cam as SourceId)[Symbol.asyncIterator]();
    const stop = stopped.then(() => ({ done: true as const, value: undefined }));
    for (;;) {
      const n = await Promise.race([it.next(), stop]);
      if (n.done) break;
      const f = n.value as Frame;
      // The face camera gets faces + pose at faceHz and objects at objectHz; the room camera objects only.
      const faces = cam === 'face' && f.pts + 1e-6 >= nextFace && faceEvery !== Infinity && features.faces;
      const objects = f.pts + 1e-6 >= nextObj && objEvery !== Infinity && features.objects;
      if (!faces && !objects) continue;
      if (faces) nextFace = Math.max(nextFace + faceEvery, f.pts);
      if (objects) nextObj = Math.max(nextObj + objEvery, f.pts);
      lastFrame.set(cam, f);
      what.set(`${cam}@${f.pts}`, { faces, objects });
      if (!pool!.submit(f, { faces, objects })) what.delete(`${cam}@${f.pts}`);
    }
    await it.return?.();
  }

  return {
    name: 'detection',
    async start(ctx) {
      const det = ctx.machine.detection;
      if (!det.enabled) {
        ctx.log.append('detect.disabled', {});
        return;
      }
      const dir = opts.modelsDir ?? defaultModelsDir();
      let items: ReturnType<typeof preflightModels>;
      try {
        items = preflightModels(dir);
      } catch (e) {
        items = [];
        if (det.onModelProblem === 'refuse') throw e;
        ctx.degraded.push(`detection: no model manifest (${(e as Error).message})`);
      }
      const good = new Set<string>();
      for (const m of items) {
        if (m.ok) { good.add(m.name); ctx.models[m.name] = m.sha256; continue; }
        ctx.log.append('detect.model_problem', { model: m.name, file: m.file, expectedSha256: m.sha256, problem: m.problem });
        if (det.onModelProblem === 'refuse') {
          throw new KuzetError('MODEL_INVALID', `Detector model ${m.file} failed its check (expected sha256 ${m.sha256}): ${m.problem}. The exam policy says not to start without it.`, { file: m.file });
        }
        ctx.degraded.push(`detection: ${m.name} unavailable (${m.problem})`);
      }
      features.faces = good.has('blazeface-back-256') && good.has('facemesh');
      features.objects = good.has('nanodet-416');
      const load = [...good].filter((n) => n !== 'blazeface-front-128') as ModelName[];
      if (!features.faces && !features.objects) {
        ctx.log.append('detect.unavailable', { reason: 'no usable model' });
        return;
      }
      const th = det.thresholds;
      pool = await DetectorPool.start({
        workers: 1, maxQueue: 3, threads: 1, modelsDir: dir, load,
        options: { faceScore: Math.min(th.faceScore, 0.5), objectScore: Math.min(th.objectScore, 0.3), faceModel: 'back-256', pose: features.faces, irisMinFacePx: good.has('iris') ? 120 : 0 },
      });
      rules = new EpisodeRules({
        faceScore: th.faceScore, objectScore: th.objectScore, noFaceSeconds: th.noFaceSeconds, multiFaceSeconds: th.multiFaceSeconds,
        headAwayYawDeg: th.headAwayYawDeg, headDownPitchDeg: th.headDownPitchDeg, headAwaySeconds: th.headAwaySeconds,
        phoneVotes: th.phoneVotes, extraPersonSeconds: th.extraPersonSeconds,
      });
      mkdirSync(join(ctx.dir, 'detect'), { recursive: true });
      mkdirSync(join(ctx.dir, 'snapshots'), { recursive: true });
      const cams = CAMERAS.filter((c) => ctx.machine.sources[c].kind !== 'none');
      for (const c of cams) files.set(c, createWriteStream(join(ctx.dir, 'detect', `${c}.ndjson`), { flags: 'a' }));
      pool.on('result', (r: DetectionResult) => onResult(ctx, r));
      pool.on('drop', (f: { source: string; pts: number }) => what.delete(`${f.source}@${f.pts}`));
      pool.on('frameError', (e: { source: string; pts: number; message: string }) => ctx.log.append('detect.frame_error', e));
      pool.on('error', (e: Error) => ctx.log.append('detect.worker_error', { error: e.message }));
      ctx.log.append('detect.started', { cameras: cams, features: { ...features }, faceHz: det.faceHz, objectHz: det.objectHz });
      for (const c of cams) loops.push(consume(ctx, c).catch((e: Error) => { ctx.log.append('detect.loop_failed', { camera: c, error: e.message }); }));
      statsTimer = setInterval(() => ctx.log.append('detect.stats', { frames: { ...counts }, pool: pool?.stats() }), 60_000);
      statsTimer.unref();
      const service: DetectionService = { stats: () => ({ frames: { ...counts }, episodes, pool: pool?.stats() ?? null }), latestFaces: () => latestFaces };
      ctx.services.detection = service;
    },
    async stop(ctx) {
      if (statsTimer) clearInterval(statsTimer);
      stopping?.();
      await Promise.all(loops);
      if (pool) {
        await Promise.race([pool.drain(), new Promise((r) => setTimeout(r, 5000))]);
        for (const e of rules!.flush()) onEpisode(ctx, e);
        ctx.log.append('detect.stopped', { frames: { ...counts }, episodes, pool: pool.stats() });
        await pool.close();
      }
      await Promise.all([...pendingSnapshots]);
      await Promise.all([...files.values()].map((s) => new Promise<void>((res) => s.end(() => res()))));
      delete ctx.services.detection;
    },
  };
}

const r3 = (v: number) => Math.round(v * 1000) / 1000;
