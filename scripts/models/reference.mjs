// Seeded probe inputs and compact output summaries, shared by the model build (which writes
// models/reference.json from an independent TensorFlow.js run) and the tests (which check the
// committed ONNX files against it).

/** Deterministic pseudo-random input in [-1, 1) (LCG; the same numbers on every platform). */
export function seededInput(shape, seed = 1234) {
  const n = shape.reduce((a, b) => a * b, 1);
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

const SAMPLES = 64;

/** Summary of one output tensor: length, sums and 64 evenly spaced samples. */
export function summarize(data) {
  let sum = 0;
  let sumAbs = 0;
  let maxAbs = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    sum += v;
    sumAbs += Math.abs(v);
    if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
  }
  const step = Math.max(1, Math.floor(data.length / SAMPLES));
  const samples = [];
  for (let i = 0; i < data.length && samples.length < SAMPLES; i += step) samples.push([i, Number(data[i].toPrecision(8))]);
  return { length: data.length, sum: Number(sum.toPrecision(10)), sumAbs: Number(sumAbs.toPrecision(10)), maxAbs: Number(maxAbs.toPrecision(8)), samples };
}

/**
 * Largest error of `data` against a summary, relative to max(1, the output's largest magnitude).
 * Returns Infinity when the lengths differ.
 */
export function errorAgainstSummary(data, ref) {
  if (data.length !== ref.length) return Infinity;
  const scale = Math.max(1, ref.maxAbs);
  let err = 0;
  for (const [i, v] of ref.samples) err = Math.max(err, Math.abs(data[i] - v) / scale);
  const cur = summarize(data);
  err = Math.max(err, Math.abs(cur.sumAbs - ref.sumAbs) / Math.max(1, ref.sumAbs) / 10);
  return err;
}

/** Largest element-wise error of a against b, relative to max(1, max |b|). */
export function relativeMaxError(a, b) {
  if (a.length !== b.length) return Infinity;
  let maxAbs = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(b[i]));
    err = Math.max(err, Math.abs(a[i] - b[i]));
  }
  return err / Math.max(1, maxAbs);
}
