#!/usr/bin/env node
// `npm test`: the unit/integration suite (vitest) and then the browser suites (Playwright: the React UI in real
// Chromium, and the Electron E2E spec, which skips with its reason where no Electron binary is installed).
// Ends with one summary line: "kuzet: N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

mkdirSync('test-results', { recursive: true });
const env = { ...process.env, FORCE_COLOR: process.env.CI ? '0' : process.env.FORCE_COLOR };
const extra = process.argv.slice(2);
let passed = 0, failed = 0, skipped = 0;
let status = 0;

function run(cmd, args, extraEnv = {}) {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...env, ...extraEnv } });
  return r.status ?? 1;
}

function readJson(p) {
  try { return JSON.parse(readFileSync(p, 'utf8')); } catch { return null; }
}

// Static checks first: the type checker, and ESLint (which also enforces the layering: only the shell imports electron).
if (extra.length === 0) {
  for (const [name, cmd, args] of [['typecheck', 'npx', ['tsc', '-p', 'tsconfig.json', '--noEmit']], ['lint', 'npx', ['eslint', '.']]]) {
    const code = run(cmd, args);
    if (code !== 0) { console.error(`${name} failed`); failed += 1; status = 1; } else passed += 1;
  }
}

// Vitest in two passes: everything in parallel, then the whole-session tests one file at a time — they run real
// ffmpeg + detectors against the clock, and two of them at once on 2 cores would measure the machine, not Kuzet.
const SERIAL = 'tests/session/**';
const passes = extra.length
  ? [['vitest', ...extra]]
  : [['vitest-parallel', '--exclude', SERIAL], ['vitest-serial', 'tests/session', '--no-file-parallelism']];
for (const [name, ...args] of passes) {
  const out = `test-results/${name}.json`;
  const v = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...args]);
  const vj = readJson(out);
  if (vj) {
    passed += vj.numPassedTests ?? 0;
    failed += vj.numFailedTests ?? 0;
    skipped += (vj.numPendingTests ?? 0) + (vj.numTodoTests ?? 0);
    // A file can fail outside its tests (a beforeAll hook, an import): its tests then count as skipped, so count
    // the file itself as a failure and say which one.
    for (const r of vj.testResults ?? []) {
      if (r.status !== 'failed' || (r.assertionResults ?? []).some((a) => a.status === 'failed')) continue;
      const why = String(r.message ?? '').split('\n')[0];
      console.error(`${name}: ${r.name} failed outside its tests (${why || 'a hook or the file itself; see above'})`);
      failed += 1;
    }
  } else if (v !== 0) failed += 1;
  if (v !== 0) status = 1;
}

if (existsSync('playwright.config.ts') && extra.length === 0) {
  const pwOut = 'test-results/playwright.json';
  const p = run('npx', ['playwright', 'test', '--reporter=list,json'], { PLAYWRIGHT_JSON_OUTPUT_NAME: pwOut });
  const pj = readJson(pwOut);
  if (pj?.stats) {
    passed += (pj.stats.expected ?? 0) + (pj.stats.flaky ?? 0);
    failed += pj.stats.unexpected ?? 0;
    skipped += pj.stats.skipped ?? 0;
  } else if (p !== 0) failed += 1;
  if (p !== 0) status = 1;
}

if (status !== 0 && failed === 0) failed = 1; // a step failed without a test to blame: never print "0 failed" then
console.log(`\nkuzet: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status);
