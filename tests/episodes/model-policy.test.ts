import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseExamConfig, parseMachineConfig } from '../../src/main/core/config.js';
import { ensureHome } from '../../src/main/core/home.js';
import { generateKeyPair } from '../../src/main/core/keys.js';
import { defaultModelsDir } from '../../src/main/detect/models.js';
import { detectionStep } from '../../src/main/episodes/step.js';
import { verifyBundle } from '../../src/main/evidence/verify.js';
import { ExamSession } from '../../src/main/session/exam-session.js';
import { cleanup, tmpDir } from '../helpers/tmp.js';

const root = tmpDir('kuzet-models-');
afterAll(() => cleanup(root));

/** A copy of the shipped models folder with one file corrupted. */
function corruptModels(name: string): { dir: string; file: string; sha256: string } {
  const dir = join(root, `models-${name}`);
  mkdirSync(dir);
  for (const f of readdirSync(defaultModelsDir())) copyFileSync(join(defaultModelsDir(), f), join(dir, f));
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { models: Record<string, { file: string; sha256: string }> };
  const entry = manifest.models[name]!;
  const b = readFileSync(join(dir, entry.file));
  const mid = b.length >> 1;
  b[mid] = b[mid]! ^ 0xff;
  writeFileSync(join(dir, entry.file), b);
  return { dir, file: entry.file, sha256: entry.sha256 };
}

async function session(policy: 'refuse' | 'continue', modelsDir: string) {
  const home = ensureHome(join(root, `home-${policy}`));
  const machine = parseMachineConfig({ detection: { onModelProblem: policy } });
  return ExamSession.open({ machine, exam: parseExamConfig({}), studentId: 's1', home, key: generateKeyPair(), steps: [detectionStep({ modelsDir })] });
}

describe('a corrupt model file at preflight', () => {
  it('policy "refuse": the session does not start, and the error names the file and the expected hash', async () => {
    const bad = corruptModels('nanodet-416');
    const s = await session('refuse', bad.dir);
    await expect(s.start()).rejects.toThrow(new RegExp(`${bad.file}.*${bad.sha256}`));
    expect(s.phase).toBe('failed');
  });

  it('policy "continue": the exam runs without that detector and the signed manifest says so', async () => {
    const bad = corruptModels('facemesh');
    const s = await session('continue', bad.dir);
    await s.start();
    const res = await s.finish();
    const v = await verifyBundle(res.bundleDir);
    expect(v.ok).toBe(true);
    expect(v.manifest!.degraded.join('\n')).toMatch(/facemesh unavailable/);
    expect(v.manifest!.models.facemesh).toBeUndefined();
    expect(v.manifest!.models['nanodet-416']).toMatch(/^[0-9a-f]{64}$/);
    const log = readFileSync(join(res.bundleDir, 'events.ndjson'), 'utf8');
    expect(log).toContain('"type":"detect.model_problem"');
    expect(log).toContain(bad.sha256);
  });
});
