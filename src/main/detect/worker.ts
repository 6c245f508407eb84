/** The detection worker: one Detector, frames in, analyses out (see pool.ts for the protocol). */
import { parentPort, workerData } from 'node:worker_threads';
import { Detector, type DetectOptions } from './detector.js';
import type { ModelName } from './models.js';
import type { WorkerRequest, WorkerReply } from './pool.js';

const port = parentPort;
if (!port) throw new Error('worker.ts must run in a worker thread');
const init = workerData as { modelsDir?: string; threads?: number; options?: Partial<DetectOptions>; load?: ModelName[] };
const post = (m: WorkerReply) => port.postMessage(m);

let detector: Detector | null = null;
try {
  detector = await Detector.create({ modelsDir: init.modelsDir, threads: init.threads, load: init.load });
  post({ type: 'ready' });
} catch (e) {
  const err = e as Error & { code?: string; details?: Record<string, unknown> };
  post({ type: 'fatal', message: err.message, code: err.code, details: err.details });
}

port.on('message', async (m: WorkerRequest) => {
  if (m.type !== 'frame' || !detector) return;
  try {
    const analysis = await detector.analyze(
      { data: new Uint8Array(m.data), width: m.width, height: m.height },
      { ...init.options, ...m.options },
    );
    post({ type: 'result', id: m.id, analysis });
  } catch (e) {
    post({ type: 'error', id: m.id, message: (e as Error).message });
  }
});
