import { describe, it, expect } from 'vitest';
import { copyFileSync, readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelsDir, readManifest, readVerifiedModel, preflightModels, loadModelSession, ModelFileError, MODEL_NAMES, sha256File, ort } from '../../src/main/detect/models.js';
import { Detector } from '../../src/main/detect/detector.js';
import { tmp } from './helpers.js';

import { seededInput, errorAgainstSummary, type OutputSummary } from '../../scripts/models/reference.mjs';

const dir = defaultModelsDir();

function copyModels(): string {
  const d = tmp();
  const m = readManifest(dir);
  copyFileSync(join(dir, 'manifest.json'), join(d, 'manifest.json'));
  for (const e of Object.values(m.models)) copyFileSync(join(dir, e.file), join(d, e.file));
  return d;
}

describe('model files', () => {
  it('manifest lists every model with the sha256 and size of the committed file', () => {
    const m = readManifest(dir);
    expect(Object.keys(m.models).sort()).toEqual([...MODEL_NAMES].sort());
    for (const e of Object.values(m.models)) {
      const p = join(dir, e.file);
      expect(sha256File(p)).toBe(e.sha256);
      expect(readFileSync(p).length).toBe(e.size);
    }
    expect(preflightModels(dir).every((x) => x.ok)).toBe(true);
  });

  it('each model reproduces the reference outputs (TensorFlow.js for converted models) on the seeded input', async () => {
    const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as { models: Record<string, { outputs: Record<string, OutputSummary> }> };
    for (const name of MODEL_NAMES) {
      const s = await loadModelSession(name, dir);
      const meta = s.inputMetadata[0] as unknown as { shape: (number | string)[] };
      const shape = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
      const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', seededInput(shape), shape) });
      const r = ref.models[name]!;
      expect(Object.keys(r.outputs).sort()).toEqual([...s.outputNames].sort());
      for (const [k, summary] of Object.entries(r.outputs)) {
        const err = errorAgainstSummary(out[k]!.data as Float32Array, summary as OutputSummary);
        expect(err, `${name}/${k}`).toBeLessThan(1e-3);
      }
      await s.release();
    }
  });

  it('a corrupt model file gives an error naming the file and the expected sha256', async () => {
    const d = copyModels();
    const m = readManifest(d);
    const f = join(d, m.models.facemesh!.file);
    const bytes = readFileSync(f);
    bytes[1000] = bytes[1000]! ^ 0xff;
    writeFileSync(f, bytes);
    let err: unknown;
    try { readVerifiedModel('facemesh', d); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ModelFileError);
    const me = err as ModelFileError;
    expect(me.code).toBe('MODEL_CORRUPT');
    expect(me.message).toContain(f);
    expect(me.message).toContain(m.models.facemesh!.sha256);
    expect(me.expectedSha256).toBe(m.models.facemesh!.sha256);
    await expect(Detector.create({ modelsDir: d })).rejects.toThrow(m.models.facemesh!.sha256);
    const pf = preflightModels(d);
    expect(pf.find((x) => x.name === 'facemesh')!.ok).toBe(false);
    expect(pf.filter((x) => x.ok).length).toBe(MODEL_NAMES.length - 1);
  });

  it('a missing model file gives MODEL_MISSING with the path and expected hash', () => {
    const d = copyModels();
    const m = readManifest(d);
    const f = join(d, m.models['nanodet-416']!.file);
    unlinkSync(f);
    expect(() => readVerifiedModel('nanodet-416', d)).toThrow(ModelFileError);
    try { readVerifiedModel('nanodet-416', d); } catch (e) {
      expect((e as ModelFileError).code).toBe('MODEL_MISSING');
      expect((e as Error).message).toContain(f);
      expect((e as Error).message).toContain(m.models['nanodet-416']!.sha256);
    }
  });
});
