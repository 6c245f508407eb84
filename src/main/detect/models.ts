/**
 * Model files: where they live, their manifest (name → file, sha256, size), the hash check and session creation.
 * Models are committed in `models/` and never fetched at run time; `npm run models:build` rebuilds them.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { KuzetError } from '../core/errors.js';

export type ModelName = 'blazeface-front-128' | 'blazeface-back-256' | 'facemesh' | 'iris' | 'nanodet-416';
export const MODEL_NAMES: readonly ModelName[] = ['blazeface-front-128', 'blazeface-back-256', 'facemesh', 'iris', 'nanodet-416'];

export interface ManifestEntry {
  file: string;
  sha256: string;
  size: number;
  source: { package: string; path: string; license: string; conversion: string };
  inputs: { name: string; shape: (number | string)[] }[];
  outputs: { name: string; shape: (number | string)[] }[];
}
export interface ModelManifest { version: number; models: Record<string, ManifestEntry> }

/** A model file that is missing, unreadable, or whose sha256 differs from the manifest. */
export class ModelFileError extends KuzetError {
  readonly file: string;
  readonly expectedSha256: string;
  readonly actualSha256?: string;
  constructor(code: 'MODEL_MISSING' | 'MODEL_CORRUPT' | 'MODEL_UNKNOWN', message: string, file: string, expectedSha256: string, actualSha256?: string) {
    super(code, message, { file, expectedSha256, actualSha256 });
    this.name = 'ModelFileError';
    this.file = file;
    this.expectedSha256 = expectedSha256;
    this.actualSha256 = actualSha256;
  }
}

/** `KUZET_MODELS_DIR`, else the repository's `models/` folder. */
export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KUZET_MODELS_DIR) return resolve(env.KUZET_MODELS_DIR);
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../../models');
}

export function readManifest(dir = defaultModelsDir()): ModelManifest {
  const p = join(dir, 'manifest.json');
  if (!existsSync(p)) throw new KuzetError('MODEL_MANIFEST', `Model manifest ${p} is missing; run "npm run models:build" or set KUZET_MODELS_DIR.`, { file: p });
  return JSON.parse(readFileSync(p, 'utf8')) as ModelManifest;
}

export const sha256File = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/**
 * Read a model file and check its sha256 against the manifest (of the same dir unless given).
 * Throws ModelFileError naming the file and the expected hash.
 */
export function readVerifiedModel(name: string, dir = defaultModelsDir(), manifest: ModelManifest = readManifest(dir)): { path: string; bytes: Buffer; entry: ManifestEntry } {
  const entry = manifest.models[name];
  if (!entry) throw new ModelFileError('MODEL_UNKNOWN', `Model "${name}" is not in ${join(dir, 'manifest.json')}.`, join(dir, `${name}.onnx`), '');
  const path = join(dir, entry.file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new ModelFileError('MODEL_MISSING', `Model file ${path} is missing (expected sha256 ${entry.sha256}). Restore it from the release or run "npm run models:build".`, path, entry.sha256);
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== entry.sha256) {
    throw new ModelFileError('MODEL_CORRUPT', `Model file ${path} is corrupt or was replaced: sha256 ${actual}, expected ${entry.sha256}.`, path, entry.sha256, actual);
  }
  return { path, bytes, entry };
}

export interface PreflightItem { name: string; file: string; sha256: string; size: number; ok: boolean; problem?: string; code?: string }

/** Check every model of the manifest (for the start-up preflight and the bundle manifest). Never throws for a bad file. */
export function preflightModels(dir = defaultModelsDir()): PreflightItem[] {
  const manifest = readManifest(dir);
  return Object.entries(manifest.models).map(([name, e]) => {
    try {
      readVerifiedModel(name, dir, manifest);
      return { name, file: join(dir, e.file), sha256: e.sha256, size: e.size, ok: true };
    } catch (err) {
      const ke = err as ModelFileError;
      return { name, file: join(dir, e.file), sha256: e.sha256, size: e.size, ok: false, problem: ke.message, code: ke.code };
    }
  });
}

export interface SessionOptions { threads?: number }

/** Create an onnxruntime session for a verified model. `threads` defaults to 1 (the detector shares 2 cores). */
export async function loadModelSession(name: string, dir = defaultModelsDir(), opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const { bytes, path } = readVerifiedModel(name, dir);
  try {
    return await ort.InferenceSession.create(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
      intraOpNumThreads: opts.threads ?? 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
  } catch (e) {
    throw new KuzetError('MODEL_LOAD', `onnxruntime could not load ${path}: ${(e as Error).message}`, { file: path });
  }
}

export { ort };
