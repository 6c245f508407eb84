/**
 * `npm run bench:server` — evidence delivery on loopback, measured against a baseline taken in the same run.
 *
 *  1. Baseline: a plain local disk copy of the same segment files (read → write through user space, like `cp`
 *     without copy offload), and fs.copyFile (kernel copy) for reference. Also a reference for what HTTP itself
 *     costs here: the same files PUT by all devices at once to a minimal Node server that only writes them to disk.
 *     For context only: the same copy followed by one flush of its filesystem (the upload flushes before every
 *     receipt; the plain copy never does).
 *  2. N simulated devices (default 100) upload at once, with the machine config's default upload settings (2 files
 *     at a time): each sends its segments the way the live uploader does
 *     (hash known from segment.closed), then the end-of-exam step (tail + manifest) and waits for the signed
 *     receipt. The server runs as a separate `kuzet serve` process; its peak RSS is read from /proc (VmHWM).
 *     This is done BENCH_ROUNDS times (5), each with its own devices and a fresh server, interleaved with the stream
 *     copy (copy, upload, copy, upload, …, copy): the machine is shared and its speed drifts, so each round is
 *     compared with the copies either side of it, and the median round is the result. A round lasts about 3 s, and
 *     single rounds of the same code ranged from 0.69 to 1.24 of the copy in one day: the median of 5 rounds moves
 *     less from run to run than the median of 3 did (BENCH_ROUNDS=3 gives the shorter run). Before each
 *     measured round, BENCH_WARMUP (20) other devices upload to the same server, not counted: at the end of an exam
 *     the server has been taking live uploads for an hour, so its code is compiled and optimised; a process started
 *     a second ago is not (BENCH_WARMUP=0 measures that case). One more upload round, not measured, comes before
 *     the first copy, so that every measured round follows a copy that follows an upload round.
 *  3. Exam end → receipt for one 30-minute session (3 streams at 2–8 MB/min, 6-s segments; synthetic bundle),
 *     whose segments were delivered live except the last one of each stream.
 *
 * Environment: BENCH_DEVICES (100), BENCH_SEGMENTS per stream per device (3: an 18-s exam per device, in which the
 * fixed work of a session — token, tail, verification, flush, receipt — weighs about as much as all its segments;
 * 10 = a one-minute backlog per device, as after a short network outage; docs/server.md reports both),
 * BENCH_EXAM_MINUTES (30), BENCH_ROUNDS (5), BENCH_WARMUP (20 devices; 0 = none), BENCH_PRIME=0 (no first
 * upload round before the measured ones, see main()),
 * BENCH_KEEP=1 keeps the temp folder. Diagnostics: BENCH_SPLIT=<n>, BENCH_DEBUG=1, BENCH_PROF=<dir>, BENCH_TIDS=1,
 * BENCH_TIMELINE=<ms>, BENCH_SERVERS=2, BENCH_NODE_ARGS='<flags>' (extra node flags for `kuzet serve`, e.g. V8
 * tracing), BENCH_SERVE_OUT=<prefix> (its stdout goes to <prefix>.<pid>).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from '../src/main/core/canonical.js';
import { EventLog } from '../src/main/core/eventlog.js';
import { ensureHome, type HomeLayout } from '../src/main/core/home.js';
import { parseMachineConfig } from '../src/main/core/config.js';
import { generateKeyPair, loadKeyPair, saveKeyPair, type KeyPair } from '../src/main/core/keys.js';
import { sealSession, writeSessionState } from '../src/main/evidence/seal.js';
import { createEnrolToken, openDataDir } from '../src/main/server/app.js';
import { uploadBundle } from '../src/main/upload/bundle.js';
import { ServerClient, saveEnrolment } from '../src/main/upload/client.js';
import { request } from '../src/main/upload/http.js';
import { UploadQueue } from '../src/main/upload/spool.js';

const BIN = fileURLToPath(new URL('../bin/kuzet.mjs', import.meta.url));
const DEVICES = Number(process.env.BENCH_DEVICES ?? 100);
const SEGMENTS = Number(process.env.BENCH_SEGMENTS ?? 3);
const EXAM_MINUTES = Number(process.env.BENCH_EXAM_MINUTES ?? 30);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5));
const WARMUP = Math.max(0, Number(process.env.BENCH_WARMUP ?? 20));
const PRIME = process.env.BENCH_PRIME !== '0';
const SEG_SECONDS = 6;
/** What a lab machine uses: the machine config's default upload settings (concurrency 2 …). */
const UPLOAD = parseMachineConfig({}).upload;
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

/** CPU seconds by thread name (main thread, libuv pool, V8 workers …) of a process so far. */
function threadCpu(pid: number | 'self'): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = `${f.slice(f.indexOf('(') + 1, f.lastIndexOf(')'))}${t === String(pid === 'self' ? process.pid : pid) ? ' (main)' : process.env.BENCH_TIDS ? `#${t}` : ''}`;
      const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(parts[11]) + Number(parts[12])) / 100);
    } catch { /* thread ended */ }
  }
  return out;
}
const threadDiff = (a: Map<string, number>, b: Map<string, number>) =>
  [...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, v]) => v > 0.01).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');

/** Kernel-side CPU seconds (stime) of a process so far. */
function sysSeconds(pid: number | 'self'): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(f.slice(f.lastIndexOf(')') + 2).split(' ')[12]) / 100;
}

function peakRss(pid: number): { hwm: number; rss: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) * 1024;
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

async function startServe(data: string): Promise<{ url: string; pid: number; stop: () => Promise<void>; logLines: string[] }> {
  const child = spawn(process.execPath, [...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROF] : []), ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []), BIN, 'serve', '--data', data, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logLines: string[] = [];
  if (process.env.BENCH_SERVE_OUT) child.stdout.pipe(createWriteStream(`${process.env.BENCH_SERVE_OUT}.${child.pid}`));
  let errBuf = '';
  child.stderr.on('data', (d) => {
    errBuf += d;
    const lines = errBuf.split('\n');
    errBuf = lines.pop()!;
    for (const l of lines) { logLines.push(l); if (process.env.BENCH_DEBUG || /error|internal/i.test(l)) console.error(`serve: ${l}`); }
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; const m = /^(https?:\/\/\S+)\r?\n/m.exec(out); if (m) resolve(m[1]!); }); // the URL's own, whole line (V8 flags may print others)
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
  const q = new UploadQueue({ home: dev.home, client: new ServerClient(url, dev.key), concurrency: UPLOAD.concurrency, chunkBytes: UPLOAD.chunkBytes, retryMinMs: 200 });
  if (process.env.BENCH_DEBUG) q.on('retry', (i, why) => console.log('retry', i.path, why));
  for (const s of segs) q.enqueue({ session: dev.id, path: s.path, file: s.abs, sha256: s.sha256, size: s.size });
  q.start();
  await q.drain(dev.id);
  await q.stop();
}

/** Jiffies of the whole machine from /proc/stat: busy (user+nice+system+irq+softirq), iowait, idle. */
function machineJiffies(): { busy: number; iowait: number; idle: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0]! + f[1]! + f[2]! + f[5]! + f[6]!, iowait: f[4]!, idle: f[3]! };
}

/**
 * Diagnosis (BENCH_TIMELINE=<ms>, e.g. 250): cores busy per window during the 100 devices' upload — the machine's
 * (from /proc/stat, with iowait and idle), the server's and this process's — printed when it stops.
 */
function startTimeline(srvPid: number): { stop: () => void } {
  const step = Number(process.env.BENCH_TIMELINE) || 250;
  const rows: string[] = [];
  const sched = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number); // on-CPU ns, runnable-waiting ns, slices
  let last = { m: machineJiffies(), srv: cpuSeconds(srvPid), cli: cpuSeconds('self'), t: performance.now(), ss: sched(srvPid), cs: sched(process.pid) };
  const t0 = last.t;
  const tick = () => {
    const now = { m: machineJiffies(), srv: cpuSeconds(srvPid), cli: cpuSeconds('self'), t: performance.now(), ss: sched(srvPid), cs: sched(process.pid) };
    const s = (now.t - last.t) / 1000;
    const c = (j: number) => (j / 100 / s).toFixed(2).padStart(6);
    rows.push(`${((now.t - t0) / 1000).toFixed(2).padStart(6)} s ${c(now.m.busy - last.m.busy)} ${c(now.m.iowait - last.m.iowait)} ${c(now.m.idle - last.m.idle)}  ${((now.srv - last.srv) / s).toFixed(2).padStart(6)} ${((now.cli - last.cli) / s).toFixed(2).padStart(6)}  main threads on CPU / waiting for a CPU: server ${((now.ss[0]! - last.ss[0]!) / 1e9 / s).toFixed(2)} / ${((now.ss[1]! - last.ss[1]!) / 1e9 / s).toFixed(2)}, devices ${((now.cs[0]! - last.cs[0]!) / 1e9 / s).toFixed(2)} / ${((now.cs[1]! - last.cs[1]!) / 1e9 / s).toFixed(2)}`);
    last = now;
  };
  const timer = setInterval(tick, step);
  return {
    stop: () => {
      clearInterval(timer);
      tick();
      console.log('timeline   end of window: cores busy, iowait, idle (machine) · server · devices');
      for (const r of rows) console.log(`timeline ${r}`);
    },
  };
}

const mb = (n: number) => (n / 1024 / 1024).toFixed(1);

/**
 * When a run of this bench last deleted its temp folder (the file's mtime). On ext4 without a journal, as on this
 * machine, creating a file skips every inode of its group freed in the last minute, or in the last six when the
 * inode's block has been written since: the kernel reads each one's deletion time (recently_deleted in perf). In a
 * round that began 30 s after the previous run deleted its folder, that was 11 % of the server's event loop; in one
 * that began 7 minutes after, 0.2 %.
 * The copies create as many files and pay it too, so the ratio moves less than the rates; the note says so.
 */
const LAST_DELETE = join(tmpdir(), 'kuzet-bench-server.last-delete');

function recentDelete(): string {
  try {
    const age = (Date.now() - statSync(LAST_DELETE).mtimeMs) / 1000;
    if (age < 0 || age >= 360) return '';
    return `note      a previous run of this bench deleted its temp folder ${age.toFixed(0)} s before this one started; on ext4 without a journal, file creates are slower for up to 6 min after many deletes (they skip the freed inodes), in the copies and the upload alike; for the cleanest figures, leave 6 min between runs`;
  } catch {
    return '';
  }
}

/**
 * Empties every file under `dir` (truncate to 0, keeping the files): frees a finished phase's page cache and disk
 * blocks without deleting anything. Two effects of this VM made the phases unequal otherwise:
 * - deleting thousands of files makes every file create in the next minutes slow (ext4 without a journal scans the
 *   recently freed inodes: perf shows recently_deleted/find_inode_bit; 0.1–0.4 ms a create instead of ≈ 0.01 ms);
 * - writing into memory the guest has not used lately is slow (the kernel's copy into the page cache took 20× longer
 *   in a copy that ran after 3 GB had been written than in one that ran first), so a phase that came after others
 *   that kept their output paid for their memory.
 * With every phase's output emptied before the next phase, each one writes into just-freed memory and creates files
 * in a directory tree with no recent deletes.
 */
function empty(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) truncateSync(join(e.parentPath, e.name), 0);
  }
}

/** Writes back everything dirty on the bench's filesystem, so the next phase does not pay for the previous one. */
function settle(dir: string): void {
  spawnSync('sync', ['-f', dir]);
}

/**
 * Baseline: a read → write stream copy of every segment, one after the other. Wall and this process's CPU seconds.
 * With `durable`, the copy is followed by one flush of its filesystem (`sync -f`), timed with it: the upload ends with
 * the same kind of flush before each receipt, so this is the like-for-like figure (printed for context; the goal is
 * stated against the plain copy).
 */
async function streamCopy(segs: Seg[], dir: string, durable = false): Promise<{ s: number; cpu: number }> {
  mkdirSync(dir, { recursive: true });
  if (durable) spawnSync('sync', ['-f', dir]); // start from clean: only the copy's own bytes are flushed below
  const c0 = cpuSeconds('self');
  const t = performance.now();
  for (const [i, s] of segs.entries()) await pipeline(createReadStream(s.abs), createWriteStream(join(dir, `s${i}`)));
  if (durable) spawnSync('sync', ['-f', dir]);
  return { s: (performance.now() - t) / 1000, cpu: cpuSeconds('self') - c0 };
}

/** A minimal HTTP server (its own process) that writes each request body to a file: what HTTP + disk cost here. */
const PLAIN_SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
let n = 0;
const srv = http.createServer((req, res) => {
  const out = fs.createWriteStream(path.join(process.argv[1], 'u' + n++));
  req.pipe(out);
  out.on('finish', () => { res.writeHead(204); res.end(); });
});
srv.listen(0, '127.0.0.1', () => console.log('http://127.0.0.1:' + srv.address().port));`;

/** Every device PUTs its segments one after another (as the live uploader does), all devices at once. */
async function plainHttp(devs: Dev[], dir: string): Promise<{ s: number; cpu: number }> {
  mkdirSync(dir, { recursive: true });
  const child = spawn(process.execPath, ['-e', PLAIN_SERVER, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(String(d).trim()));
    child.once('close', (c) => reject(new Error(`plain server exited ${c}`)));
  });
  const c0 = { srv: cpuSeconds(child.pid!), cli: cpuSeconds('self') };
  const t = performance.now();
  await Promise.all(devs.map(async (d) => {
    for (const s of d.segs) {
      const r = await request({ method: 'PUT', url: `${url}/${d.id}/${s.path}`, body: { file: s.abs, start: 0, end: s.size }, stallMs: 60_000 });
      if (r.status !== 204) throw new Error(`plain PUT: HTTP ${r.status}`);
    }
  }));
  const s = (performance.now() - t) / 1000;
  const cpu = cpuSeconds(child.pid!) - c0.srv + cpuSeconds('self') - c0.cli;
  await new Promise((r) => { child.once('close', r); child.kill('SIGTERM'); });
  return { s, cpu };
}

interface Round {
  s: number; bytes: number; receipts: number;
  cpu: { srv: number; cli: number }; sys: { srv: number; cli: number }; threads: { srv: string; cli: string };
  phases: { live: number; end: number }[]; hwm: number; peak: number;
  /** The warm-up before the measured part (BENCH_WARMUP devices), if any. */
  warm: { s: number; bytes: number } | null;
}

/**
 * One upload round: a fresh `kuzet serve` (its own data dir), the devices enrolled, then all of them at once: live
 * upload of their segments, end of exam, receipt.
 */
async function uploadRound(devs: Dev[], data: string, warm: Dev[] = []): Promise<Round> {
  const srv = await startServe(data);
  let warmed: Round['warm'] = null;
  if (warm.length > 0) {
    // BENCH_WARMUP: other devices upload to the same server first (not measured), so the measured round meets a
    // server whose code V8 has already compiled and optimised, as a server that has been taking live uploads during
    // an exam has. Without it, a fresh process spent 10–20 % more CPU a MB (docs/server.md, fifth session).
    for (const d of warm) await enrol(data, srv.url, d);
    const t0 = performance.now();
    const got = await Promise.all(warm.map(async (d) => {
      await liveUpload(srv.url, d, d.segs);
      return uploadBundle(d.dir, srv.url, { home: d.home, upload: { ...UPLOAD, keepDaysAfterReceipt: -1 } });
    }));
    warmed = { s: (performance.now() - t0) / 1000, bytes: got.reduce((a, x) => a + x.payload.totalBytes, 0) };
  }
  // Diagnosis (BENCH_SERVERS=2): a second, independent `kuzet serve` (own data dir) takes the odd devices — the most
  // a multi-process server could gain here, with no shared lock or index between the two.
  const data2 = `${data}-2`;
  const srv2 = process.env.BENCH_SERVERS === '2' ? await startServe(data2) : undefined;
  const target = (i: number) => (srv2 && i % 2 ? { data: data2, url: srv2.url } : { data, url: srv.url });
  const srvCpu = () => cpuSeconds(srv.pid) + (srv2 ? cpuSeconds(srv2.pid) : 0);
  const srvSys = () => sysSeconds(srv.pid) + (srv2 ? sysSeconds(srv2.pid) : 0);
  for (const [i, d] of devs.entries()) await enrol(target(i).data, target(i).url, d);
  settle(data);
  let peak = 0;
  const sampler = setInterval(() => { try { peak = Math.max(peak, peakRss(srv.pid).rss); } catch { /* exited */ } }, 100);
  const t = performance.now();
  if (process.env.BENCH_DEBUG) console.log(`upload phase start hrtime_us ${process.hrtime.bigint() / 1000n}`);
  const cpu0 = { srv: srvCpu(), cli: cpuSeconds('self') };
  const sys0 = { srv: srvSys(), cli: sysSeconds('self') };
  const thr0 = { srv: threadCpu(srv.pid), cli: threadCpu('self') };
  const phases: { live: number; end: number }[] = [];
  const timeline = process.env.BENCH_TIMELINE ? startTimeline(srv.pid) : undefined;
  const receipts = await Promise.all(devs.map(async (d, i) => {
    const a = performance.now();
    await liveUpload(target(i).url, d, d.segs);
    const b = performance.now();
    try { return await uploadBundle(d.dir, target(i).url, { home: d.home, upload: { ...UPLOAD, keepDaysAfterReceipt: -1 } }); } finally {
      phases.push({ live: b - a, end: performance.now() - b });
      if (process.env.BENCH_DEBUG) console.log(`live ${(b - a).toFixed(0)} ms, end ${(performance.now() - b).toFixed(0)} ms`);
    }
  }));
  const s = (performance.now() - t) / 1000;
  timeline?.stop();
  // CPU is read the moment the last receipt arrived (before the copies, which run in this same process).
  const r: Round = {
    s, bytes: receipts.reduce((a, x) => a + x.payload.totalBytes, 0), receipts: receipts.length,
    cpu: { srv: srvCpu() - cpu0.srv, cli: cpuSeconds('self') - cpu0.cli },
    sys: { srv: srvSys() - sys0.srv, cli: sysSeconds('self') - sys0.cli },
    threads: { srv: threadDiff(thr0.srv, threadCpu(srv.pid)), cli: threadDiff(thr0.cli, threadCpu('self')) },
    phases, hwm: peakRss(srv.pid).hwm, peak: 0, warm: warmed,
  };
  if (process.env.BENCH_DEBUG) console.log(`upload phase end hrtime_us ${process.hrtime.bigint() / 1000n}`);
  clearInterval(sampler);
  r.peak = peak;
  await srv.stop();
  if (srv2) { await srv2.stop(); empty(data2); }
  empty(data); // the server's copies (the receipts were checked): the next phase writes into freed memory, as this one did
  return r;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'kuzet-bench-server-'));
  const load0 = loadavg();
  const afterDelete = recentDelete();
  if (afterDelete) console.log(afterDelete);
  console.log(`bench:server — ${DEVICES} devices × ${STREAMS.length} streams × ${SEGMENTS} segments (6-s segments at 2–8 MB/min: a ${((SEGMENTS * SEG_SECONDS) / 60).toFixed(1)}-min backlog per device, then its end of exam), ${ROUNDS} rounds; ${cpus().length} cores; temp ${root}`);
  try {
    // --- data: one set of devices (own keys, sessions and segments) per round -------------------------------------
    const rounds: Dev[][] = [];
    const warmups: Dev[][] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const devs: Dev[] = [];
      for (let i = 0; i < DEVICES; i++) devs.push(await makeDevice(join(root, `r${r}`, `dev${i}`), SEGMENTS));
      rounds.push(devs);
      const w: Dev[] = [];
      for (let i = 0; i < WARMUP; i++) w.push(await makeDevice(join(root, `r${r}`, `warm${i}`), SEGMENTS));
      warmups.push(w);
    }
    const segsOf = (devs: Dev[]) => devs.flatMap((d) => d.segs);
    const bytesOf = (segs: Seg[]) => segs.reduce((a, s) => a + s.size, 0);
    const segs = segsOf(rounds[0]!);
    const segBytes = bytesOf(segs);
    console.log(`data: ${ROUNDS} × ${segs.length} segments, ${mb(segBytes)} MB a round (mean ${mb(segBytes / segs.length)} MB a segment)`);

    // --- copies and uploads, interleaved: copy, upload, copy, upload, …, copy -------------------------------------
    // The machine is shared and its speed drifts (a copy of the same bytes measured 117–268 MB/s within an hour), so
    // each upload round is compared with the mean of the copy right before it and the copy right after it, and the
    // report gives the median round. Every phase starts with nothing left to write back from the one before (a
    // copy started right after 1.5 GB was generated measured the disk catching up, not the copy), and with the
    // output of the phases before it emptied, not deleted (see empty()). All is removed with the temp folder.
    const copyOf = async (r: number, name: string) => {
      settle(root);
      const c = await streamCopy(segsOf(rounds[r]!), join(root, name));
      empty(join(root, name));
      return { ...c, rate: bytesOf(segsOf(rounds[r]!)) / c.s };
    };
    const durableCopy = await streamCopy(segs, join(root, 'copy-durable'), true);
    empty(join(root, 'copy-durable'));
    const kernelDir = join(root, 'copy-kernel');
    mkdirSync(kernelDir);
    const t = performance.now();
    for (const [i, s] of segs.entries()) await copyFile(s.abs, join(kernelDir, `k${i}`));
    const kernelCopyS = (performance.now() - t) / 1000;
    empty(kernelDir);
    const kernelCopyRate = segBytes / kernelCopyS;

    // --- reference: plain HTTP PUTs of the same files to a minimal server (no tus, auth, hashing, index) -----------
    settle(root);
    const ceiling = await plainHttp(rounds[0]!, join(root, 'plain'));
    empty(join(root, 'plain'));

    // --- a first upload round, not measured (BENCH_PRIME=0 skips it) ------------------------------------------------
    // Without it, the first measured round was the lowest of the run in 12 of 19 runs: its upload was 14 % slower
    // than the later rounds' on average (130.6 against 151.6 MB/s) and the copy before it 12 % faster (181.6 against
    // 162.2 MB/s), with more CPU a MB in both processes. It was the only round that followed the reference phases
    // instead of a copy, and the first upload of this process and of the machine's memory since the data was written.
    // With this round first, every measured round follows a copy that follows an upload round.
    if (PRIME) {
      const primeDevs: Dev[] = [];
      for (let i = 0; i < DEVICES; i++) primeDevs.push(await makeDevice(join(root, 'prime', `dev${i}`), SEGMENTS));
      settle(root);
      const p = await uploadRound(primeDevs, join(root, 'server-prime'));
      console.log(`prime     a first upload round, not measured: ${mb(p.bytes / p.s)} MB/s, ${p.receipts} receipts`);
      empty(join(root, 'prime'));
    }
    const copies = [await copyOf(0, 'copy-0')];

    // --- N devices at once, ROUNDS times, each followed by a copy ------------------------------------------------
    const results: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      results.push(await uploadRound(rounds[r]!, join(root, `server-${r}`), warmups[r]!));
      // The copy after this round (the server is stopped: its background flush would land in the copy).
      copies.push(await copyOf(r, `copy-${r + 1}`));
    }

    // --- exam end → receipt for a 30-minute session (and the BENCH_SPLIT diagnosis): a server of their own, after
    // the rounds, so that neither the 450 MB of this session nor the split devices land in a round or a copy.
    let splitLine = '';
    let exam30 = { s: 0, segs: 0, live: 0, bytes: 0, files: 0, manifest: '', how: '' };
    {
      const data = join(root, 'server-exam');
      const srv = await startServe(data);
      try {
        if (process.env.BENCH_SPLIT) splitLine = await splitDevices(root, data, srv.url, srv.pid);
        const perStream = Math.round((EXAM_MINUTES * 60) / SEG_SECONDS);
        const exam = await makeDevice(join(root, 'exam30'), perStream);
        await enrol(data, srv.url, exam);
        const lastIndex = `seg-${String(perStream - 1).padStart(5, '0')}.ts`;
        const live = exam.segs.filter((s) => !s.path.endsWith(lastIndex));
        await liveUpload(srv.url, exam, live);
        const tt = performance.now();
        const r30 = await uploadBundle(exam.dir, srv.url, { home: exam.home, upload: { ...UPLOAD, keepDaysAfterReceipt: -1 } });
        exam30 = {
          s: (performance.now() - tt) / 1000, segs: exam.segs.length, live: live.length, bytes: bytesOf(exam.segs),
          files: r30.payload.files.length, manifest: r30.payload.manifestSha256,
          how: srv.logLines.find((l) => l.includes(`session ${exam.id}: verified`))?.replace(/^\[[^\]]*\] /, '') ?? '',
        };
      } finally {
        await srv.stop();
      }
    }

    // --- report -----------------------------------------------------------------------------------------------
    console.log('');
    const perMb = (cpu: number, bytes: number) => ((cpu * 1000) / (bytes / 1048576)).toFixed(1);
    const rates = results.map((x) => x.bytes / x.s);
    const baseRates = results.map((_, r) => 2 / (1 / copies[r]!.rate + 1 / copies[r + 1]!.rate)); // bytes / mean time
    const ratios = rates.map((x, r) => x / baseRates[r]!);
    const mid = ratios.indexOf([...ratios].sort((a, b) => a - b)[(ratios.length - 1) >> 1]!); // the median round (lower middle)
    const m = results[mid]!;
    const streamCopyRate = baseRates[mid]!;
    const uploadRate = rates[mid]!;
    console.log(`machine   load average at start ${load0.map((x) => x.toFixed(1)).join(' ')}, at end ${loadavg().map((x) => x.toFixed(1)).join(' ')} (${cpus().length} cores, shared)`);
    if (afterDelete) console.log(afterDelete);
    console.log(`rounds    copy ${copies.map((c) => mb(c.rate)).join(' | ')} MB/s; upload ${rates.map((x) => mb(x)).join(' | ')} MB/s (each between the copies either side of it); ratio ${ratios.map((x) => x.toFixed(2)).join(' | ')}`);
    console.log(`          CPU a MB by round: server ${results.map((x) => perMb(x.cpu.srv, x.bytes)).join(' | ')} ms; devices ${results.map((x) => perMb(x.cpu.cli, x.bytes)).join(' | ')} ms`);
    console.log(`baseline  stream copy (read→write)   ${mb(streamCopyRate)} MB/s   (median round ${mid + 1}: mean of ${mb(copies[mid]!.rate)} MB/s before and ${mb(copies[mid + 1]!.rate)} MB/s after it; ${perMb(copies.reduce((a, c) => a + c.cpu, 0), copies.length * segBytes)} ms CPU a MB)`);
    console.log(`context   stream copy + one flush    ${mb(segBytes / durableCopy.s)} MB/s   (the same copy, then \`sync -f\` of its filesystem: bytes on disk, as before a receipt)`);
    console.log(`baseline  fs.copyFile (kernel)       ${mb(kernelCopyRate)} MB/s   (${kernelCopyS.toFixed(2)} s)`);
    console.log(`reference plain HTTP PUT, ${DEVICES} at once   ${mb(segBytes / ceiling.s)} MB/s   (minimal Node server writing the bytes to disk: no tus, auth, hashing or index; ${perMb(ceiling.cpu, segBytes)} ms CPU a MB) = ${(segBytes / ceiling.s / streamCopyRate).toFixed(2)} of the copy`);
    console.log(`upload    ${DEVICES} devices at once       ${mb(uploadRate)} MB/s   (median round: ${m.s.toFixed(2)} s for ${mb(m.bytes)} MB, ${m.receipts} receipts${process.env.BENCH_SERVERS === '2' ? '; two independent servers (BENCH_SERVERS=2), server CPU below is both, RSS the first only' : ''})`);
    const warmRates = results.filter((x) => x.warm).map((x) => x.warm!.bytes / x.warm!.s).sort((a, b) => a - b);
    console.log(WARMUP > 0
      ? `warm-up   ${WARMUP} other devices upload to each round's server first, not counted (median ${mb(warmRates[(warmRates.length - 1) >> 1]!)} MB/s on the server just started): the round meets a warm server, as at the end of an exam; BENCH_WARMUP=0 measures a cold one`
      : 'warm-up   none (BENCH_WARMUP=0): each round meets a server process that has just started');
    const cpu = { srv: results.reduce((a, x) => a + x.cpu.srv, 0), cli: results.reduce((a, x) => a + x.cpu.cli, 0) };
    const sys = { srv: results.reduce((a, x) => a + x.sys.srv, 0), cli: results.reduce((a, x) => a + x.sys.cli, 0) };
    const allS = results.reduce((a, x) => a + x.s, 0);
    const delivered = results.reduce((a, x) => a + x.bytes, 0);
    console.log(`cpu       all rounds: server ${cpu.srv.toFixed(2)} s + devices (this process) ${cpu.cli.toFixed(2)} s during ${allS.toFixed(2)} s of upload = ${perMb(cpu.srv + cpu.cli, delivered)} ms CPU a MB (server ${perMb(cpu.srv, delivered)}), ${((cpu.srv + cpu.cli) / allS).toFixed(2)} cores busy; in the kernel: server ${sys.srv.toFixed(2)} s, devices ${sys.cli.toFixed(2)} s`);
    console.log(`threads   median round, server: ${m.threads.srv}; devices: ${m.threads.cli} (CPU seconds by thread: the event loop, and the thread pool / V8 helpers)`);
    const phases = results.flatMap((x) => x.phases);
    const avg = (k: 'live' | 'end') => phases.reduce((a, p) => a + p[k], 0) / phases.length / 1000;
    console.log(`devices   mean wall time: live upload of the segments ${avg('live').toFixed(2)} s, end of exam (tail, manifest, server verification and disk flush, receipt) ${avg('end').toFixed(2)} s (max ${(Math.max(...phases.map((p) => p.end)) / 1000).toFixed(2)} s)`);
    console.log(`ratio     upload / stream copy       ${(uploadRate / streamCopyRate).toFixed(2)}   (goal ≥ 0.80; median of ${ROUNDS} rounds, range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
    console.log(`ratio     upload / plain HTTP PUT    ${(uploadRate / (segBytes / ceiling.s)).toFixed(2)}`);
    console.log(`ratio     upload / fs.copyFile       ${(uploadRate / kernelCopyRate).toFixed(2)}`);
    console.log(`ratio     upload / copy + flush      ${(uploadRate / (segBytes / durableCopy.s)).toFixed(2)}   (context: both end with the bytes on disk)`);
    console.log(`server    peak RSS (VmHWM)           ${mb(Math.max(...results.map((x) => x.hwm)))} MB   (highest of the rounds; sampled max ${mb(Math.max(...results.map((x) => x.peak)))} MB; goal ≤ 300 MB)`);
    if (splitLine) console.log(splitLine);
    console.log(`exam end → receipt, ${EXAM_MINUTES}-min session   ${exam30.s.toFixed(2)} s   (${exam30.segs} segments, ${mb(exam30.bytes)} MB, tail ${exam30.segs - exam30.live} segments + log + manifest; the server checks the signature, the log chain and every file against the hash and size it recorded when the file was stored)`);
    console.log(`receipt   ${exam30.files} files, manifest ${exam30.manifest.slice(0, 16)}…`);
    if (exam30.how) console.log(`server    ${exam30.how}`);
  } finally {
    if (process.env.BENCH_KEEP !== '1') {
      rmSync(root, { recursive: true, force: true });
      try { writeFileSync(LAST_DELETE, `${root}\n`); } catch { /* only feeds the note above */ }
    }
  }
}

/** Diagnosis (BENCH_SPLIT=<n>): n more devices one after another, with CPU split by phase. */
async function splitDevices(root: string, data: string, url: string, srvPid: number): Promise<string> {
  const n = Number(process.env.BENCH_SPLIT);
  const acc = { liveCli: 0, liveSrv: 0, endCli: 0, endSrv: 0, bytes: 0 };
  for (let i = 0; i < n; i++) {
    const d = await makeDevice(join(root, `split${i}`), SEGMENTS);
    await enrol(data, url, d);
    let c = { cli: cpuSeconds('self'), srv: cpuSeconds(srvPid) };
    await liveUpload(url, d, d.segs);
    let c2 = { cli: cpuSeconds('self'), srv: cpuSeconds(srvPid) };
    acc.liveCli += c2.cli - c.cli; acc.liveSrv += c2.srv - c.srv;
    c = c2;
    const r = await uploadBundle(d.dir, url, { home: d.home, upload: { ...UPLOAD, keepDaysAfterReceipt: -1 } });
    c2 = { cli: cpuSeconds('self'), srv: cpuSeconds(srvPid) };
    acc.endCli += c2.cli - c.cli; acc.endSrv += c2.srv - c.srv;
    acc.bytes += r.payload.totalBytes;
  }
  if (process.env.BENCH_DEBUG) console.log(`split end hrtime_us ${process.hrtime.bigint() / 1000n}`);
  const ms = (x: number) => ((x * 1000) / n).toFixed(1);
  return `split     per device (${SEGMENTS * STREAMS.length} segments, ${mb(acc.bytes / n)} MB): live upload CPU device ${ms(acc.liveCli)} ms + server ${ms(acc.liveSrv)} ms; end of exam device ${ms(acc.endCli)} ms + server ${ms(acc.endSrv)} ms`;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
