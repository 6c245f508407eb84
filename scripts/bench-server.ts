/**
 * `npm run bench:server` — evidence delivery on loopback, measured against a baseline taken in the same run.
 *
 *  1. Baseline: a plain local disk copy of the same segment files (read → write through user space, like `cp`
 *     without copy offload), and fs.copyFile (kernel copy) for reference.
 *  2. N simulated devices (default 100) upload at once: each sends its segments the way the live uploader does
 *     (hash known from segment.closed), then the end-of-exam step (tail + manifest) and waits for the signed
 *     receipt. The server runs as a separate `kuzet serve` process; its peak RSS is read from /proc (VmHWM).
 *  3. Exam end → receipt for one 30-minute session (3 streams at 2–8 MB/min, 6-s segments; synthetic bundle),
 *     whose segments were delivered live except the last one of each stream.
 *
 * Environment: BENCH_DEVICES (100), BENCH_SEGMENTS per stream per device (3), BENCH_EXAM_MINUTES (30),
 * BENCH_KEEP=1 keeps the temp folder.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from '../src/main/core/canonical.js';
import { EventLog } from '../src/main/core/eventlog.js';
import { ensureHome, type HomeLayout } from '../src/main/core/home.js';
import { generateKeyPair, loadKeyPair, saveKeyPair, type KeyPair } from '../src/main/core/keys.js';
import { sealSession, writeSessionState } from '../src/main/evidence/seal.js';
import { createEnrolToken, openDataDir } from '../src/main/server/app.js';
import { uploadBundle } from '../src/main/upload/bundle.js';
import { ServerClient, saveEnrolment } from '../src/main/upload/client.js';
import { UploadQueue } from '../src/main/upload/spool.js';

const BIN = fileURLToPath(new URL('../bin/kuzet.mjs', import.meta.url));
const DEVICES = Number(process.env.BENCH_DEVICES ?? 100);
const SEGMENTS = Number(process.env.BENCH_SEGMENTS ?? 3);
const EXAM_MINUTES = Number(process.env.BENCH_EXAM_MINUTES ?? 30);
const SEG_SECONDS = 6;
const STREAMS = ['face', 'room', 'screen'];

const pool = randomBytes(16 * 1024 * 1024);
/** Segment bytes at a rate of 2–8 MB/min for a 6-s segment (0.2–0.8 MB), unique per file. */
function segmentBytes(): Buffer {
  const mbPerMin = 2 + Math.random() * 6;
  const size = Math.round((mbPerMin * 1024 * 1024 * SEG_SECONDS) / 60);
  const off = Math.floor(Math.random() * (pool.length - size));
  const b = Buffer.from(pool.subarray(off, off + size));
  randomBytes(32).copy(b, 0);
  return b;
}

interface Seg { path: string; abs: string; sha256: string; size: number }
interface Dev { home: HomeLayout; key: KeyPair; dir: string; id: string; segs: Seg[] }

let sessionCounter = 0;
async function makeDevice(root: string, segsPerStream: number): Promise<Dev> {
  const home = ensureHome(root);
  saveKeyPair(home.keys, generateKeyPair());
  const key = loadKeyPair(home.keys);
  const id = `20260101T090000Z-b${(sessionCounter++).toString(16).padStart(5, '0')}`;
  const dir = join(home.bundles, id);
  mkdirSync(join(dir, 'media'), { recursive: true });
  writeSessionState(dir, { id, examId: 'bench', studentId: 'stu', machineId: 'bench', demo: true, configHash: '0'.repeat(64), appVersion: '0.1.0', pid: process.pid, startedAt: Date.now() });
  const log = EventLog.open(join(dir, 'events.ndjson'), { syncEveryMs: 60_000 });
  log.append('session.opened', { id });
  const segs: Seg[] = [];
  for (let i = 0; i < segsPerStream; i++) {
    for (const s of STREAMS) {
      const path = `media/${s}/seg-${String(i).padStart(5, '0')}.ts`;
      mkdirSync(join(dir, 'media', s), { recursive: true });
      const data = segmentBytes();
      writeFileSync(join(dir, path), data);
      const rec = { source: s, index: i, file: path, sha256: sha256Hex(data), size: data.length, duration: SEG_SECONDS };
      log.append('segment.closed', rec);
      segs.push({ path, abs: join(dir, path), sha256: rec.sha256, size: rec.size });
    }
  }
  await sealSession({ dir, log, key });
  return { home, key, dir, id, segs };
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number | 'self'): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(parts[11]) + Number(parts[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function peakRss(pid: number): { hwm: number; rss: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) * 1024;
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

async function startServe(data: string): Promise<{ url: string; pid: number; stop: () => Promise<void>; logLines: string[] }> {
  const child = spawn(process.execPath, [...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROF] : []), BIN, 'serve', '--data', data, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logLines: string[] = [];
  let errBuf = '';
  child.stderr.on('data', (d) => {
    errBuf += d;
    const lines = errBuf.split('\n');
    errBuf = lines.pop()!;
    for (const l of lines) { logLines.push(l); if (process.env.BENCH_DEBUG || /error|internal/i.test(l)) console.error(`serve: ${l}`); }
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]!.trim()); });
    child.once('close', (c) => reject(new Error(`kuzet serve exited ${c}`)));
  });
  return {
    url, pid: child.pid!, logLines,
    stop: () => new Promise((r) => { child.once('close', () => r()); child.kill('SIGTERM'); }),
  };
}

async function enrol(dataDir: string, url: string, dev: Dev): Promise<void> {
  const { db } = openDataDir(dataDir);
  const { token } = createEnrolToken(db, { hours: 1, by: 'bench' });
  db.close();
  saveEnrolment(dev.home, await new ServerClient(url, dev.key).enroll(token, `bench-${dev.key.keyid.slice(0, 8)}`));
}

/** What the live uploader does during the exam: queue each closed segment with the hash from its event. */
async function liveUpload(url: string, dev: Dev, segs: Seg[]): Promise<void> {
  const q = new UploadQueue({ home: dev.home, client: new ServerClient(url, dev.key), concurrency: 1, retryMinMs: 200 });
  if (process.env.BENCH_DEBUG) q.on('retry', (i, why) => console.log('retry', i.path, why));
  for (const s of segs) q.enqueue({ session: dev.id, path: s.path, file: s.abs, sha256: s.sha256, size: s.size });
  q.start();
  await q.drain(dev.id);
  await q.stop();
}

const mb = (n: number) => (n / 1024 / 1024).toFixed(1);

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'kuzet-bench-server-'));
  console.log(`bench:server — ${DEVICES} devices × ${STREAMS.length} streams × ${SEGMENTS} segments (6-s segments at 2–8 MB/min); ${cpus().length} cores; temp ${root}`);
  try {
    // --- data -------------------------------------------------------------------------------------------------
    const devs: Dev[] = [];
    for (let i = 0; i < DEVICES; i++) devs.push(await makeDevice(join(root, `dev${i}`), SEGMENTS));
    const segs = devs.flatMap((d) => d.segs);
    const segBytes = segs.reduce((a, s) => a + s.size, 0);
    console.log(`data: ${segs.length} segments, ${mb(segBytes)} MB (mean ${mb(segBytes / segs.length)} MB a segment)`);

    // --- baseline: plain disk copies of the same bytes ------------------------------------------------------------
    const copyDir = join(root, 'copy');
    mkdirSync(copyDir);
    let t = performance.now();
    for (const [i, s] of segs.entries()) await pipeline(createReadStream(s.abs), createWriteStream(join(copyDir, `s${i}`)));
    const streamCopyS = (performance.now() - t) / 1000;
    rmSync(copyDir, { recursive: true });
    mkdirSync(copyDir);
    t = performance.now();
    for (const [i, s] of segs.entries()) await copyFile(s.abs, join(copyDir, `k${i}`));
    const kernelCopyS = (performance.now() - t) / 1000;
    rmSync(copyDir, { recursive: true });
    const streamCopyRate = segBytes / streamCopyS;
    const kernelCopyRate = segBytes / kernelCopyS;

    // --- 100 devices at once ----------------------------------------------------------------------------------
    const data = join(root, 'server');
    const srv = await startServe(data);
    for (const d of devs) await enrol(data, srv.url, d);
    let peak = 0;
    const sampler = setInterval(() => { try { peak = Math.max(peak, peakRss(srv.pid).rss); } catch { /* exited */ } }, 100);
    t = performance.now();
    if (process.env.BENCH_DEBUG) console.log(`upload phase start hrtime_us ${process.hrtime.bigint() / 1000n}`);
    const cpu0 = { srv: cpuSeconds(srv.pid), cli: cpuSeconds('self') };
    const receipts = await Promise.all(devs.map(async (d) => {
      const a = performance.now();
      await liveUpload(srv.url, d, d.segs);
      const b = performance.now();
      try { return await uploadBundle(d.dir, srv.url, { home: d.home, upload: { keepDaysAfterReceipt: -1, concurrency: 1 } }); } finally { if (process.env.BENCH_DEBUG) console.log(`live ${(b - a).toFixed(0)} ms, end ${(performance.now() - b).toFixed(0)} ms`); }
    }));
    const allS = (performance.now() - t) / 1000;
    if (process.env.BENCH_DEBUG) console.log(`upload phase end hrtime_us ${process.hrtime.bigint() / 1000n}`);
    const cpuUsed = { srv: cpuSeconds(srv.pid) - cpu0.srv, cli: cpuSeconds('self') - cpu0.cli };
    clearInterval(sampler);
    const hwm = peakRss(srv.pid).hwm;
    const delivered = receipts.reduce((a, r) => a + r.payload.totalBytes, 0);
    const uploadRate = delivered / allS;

    // --- exam end → receipt for a 30-minute session ---------------------------------------------------------------
    const perStream = Math.round((EXAM_MINUTES * 60) / SEG_SECONDS);
    const exam = await makeDevice(join(root, 'exam30'), perStream);
    await enrol(data, srv.url, exam);
    const lastIndex = `seg-${String(perStream - 1).padStart(5, '0')}.ts`;
    const live = exam.segs.filter((s) => !s.path.endsWith(lastIndex));
    await liveUpload(srv.url, exam, live);
    const examBytes = exam.segs.reduce((a, s) => a + s.size, 0);
    t = performance.now();
    const r30 = await uploadBundle(exam.dir, srv.url, { home: exam.home, upload: { keepDaysAfterReceipt: -1 } });
    const endToReceiptS = (performance.now() - t) / 1000;
    await srv.stop();

    // --- report -----------------------------------------------------------------------------------------------
    console.log('');
    console.log(`baseline  stream copy (read→write)   ${mb(streamCopyRate)} MB/s   (${streamCopyS.toFixed(2)} s)`);
    console.log(`baseline  fs.copyFile (kernel)       ${mb(kernelCopyRate)} MB/s   (${kernelCopyS.toFixed(2)} s)`);
    console.log(`upload    ${DEVICES} devices at once       ${mb(uploadRate)} MB/s   (${allS.toFixed(2)} s for ${mb(delivered)} MB, ${receipts.length} receipts)`);
    console.log(`cpu       server ${cpuUsed.srv.toFixed(2)} s, devices (this process) ${cpuUsed.cli.toFixed(2)} s during the ${allS.toFixed(2)} s upload (${((cpuUsed.srv + cpuUsed.cli) / allS).toFixed(2)} cores busy)`);
    console.log(`ratio     upload / stream copy       ${(uploadRate / streamCopyRate).toFixed(2)}   (goal ≥ 0.80)`);
    console.log(`ratio     upload / fs.copyFile       ${(uploadRate / kernelCopyRate).toFixed(2)}`);
    console.log(`server    peak RSS (VmHWM)           ${mb(hwm)} MB   (sampled max ${mb(peak)} MB; goal ≤ 300 MB)`);
    console.log(`exam end → receipt, ${EXAM_MINUTES}-min session   ${endToReceiptS.toFixed(2)} s   (${exam.segs.length} segments, ${mb(examBytes)} MB, tail ${exam.segs.length - live.length} segments + log + manifest; server re-verifies every byte)`);
    console.log(`receipt   ${r30.payload.files.length} files, manifest ${r30.payload.manifestSha256.slice(0, 16)}…`);
    const how = srv.logLines.find((l) => l.includes(`session ${exam.id}: verified`));
    if (how) console.log(`server    ${how.replace(/^\[[^\]]*\] /, '')}`);
  } finally {
    if (process.env.BENCH_KEEP !== '1') rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
