/**
 * `npm run bench:record [-- --seconds 30 --config machine.json]`: CPU share and MB/min of the recorder's three
 * streams (face, room, screen) together, against a baseline measured in the same run: the same inputs and the same
 * filter graph (tap included) with the encoded output sent to `-f null` — i.e. what capture alone costs. CPU comes
 * from /proc/<pid>/stat (utime + stime) of the ffmpeg processes; Linux only.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadMachineConfig, parseMachineConfig, type MachineConfig, type SourceId } from '../src/main/core/config.js';
import { EventLog } from '../src/main/core/eventlog.js';
import { resolveFfmpeg } from '../src/main/core/ffmpeg.js';
import { buildRunArgs } from '../src/main/recorder/args.js';
import { Recorder } from '../src/main/recorder/recorder.js';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, config: { type: 'string' }, keep: { type: 'boolean' } } });
const seconds = Number(values.seconds ?? process.env.BENCH_SECONDS ?? 30);
const config: MachineConfig = values.config ? loadMachineConfig(values.config, true) : parseMachineConfig({});
const SOURCES: SourceId[] = ['face', 'room', 'screen'];
const hz = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cpuTicks(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  } catch {
    return null;
  }
}

/** Sums CPU ticks of a changing set of pids, remembering the last reading of pids that have gone. */
class CpuMeter {
  private last = new Map<number, number>();
  private first = new Map<number, number>();
  sample(pids: number[]): void {
    for (const pid of pids) {
      const t = cpuTicks(pid);
      if (t === null) continue;
      if (!this.first.has(pid)) this.first.set(pid, t);
      this.last.set(pid, t);
    }
  }
  /** Seconds of CPU used since each pid's first sample. */
  seconds(): number {
    let s = 0;
    for (const [pid, t] of this.last) s += t - (this.first.get(pid) ?? t);
    return s / hz;
  }
}

async function baseline(): Promise<{ cpu: Record<string, number>; wall: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'kuzet-bench-null-'));
  const ffmpeg = resolveFfmpeg().path;
  const procs: { id: SourceId; p: ChildProcess }[] = [];
  for (const id of SOURCES) {
    const plan = buildRunArgs({ id, cfg: config.sources[id], config, dir, run: 0, startNumber: 0 });
    const a = plan.args;
    const from = a.indexOf('[rec]') - 1; // the '-map' before '[rec]'
    const to = a.indexOf(plan.pattern);
    const args = [...a.slice(0, from), '-map', '[rec]', '-f', 'null', '-', ...a.slice(to + 1)];
    procs.push({ id, p: spawn(ffmpeg, args, { stdio: ['pipe', 'pipe', 'ignore'] }) });
  }
  for (const { p } of procs) p.stdout?.resume();
  await sleep(2000); // start-up is not what we measure
  const meters = new Map(procs.map(({ id }) => [id, new CpuMeter()]));
  const t0 = Date.now();
  const timer = setInterval(() => { for (const { id, p } of procs) meters.get(id)!.sample([p.pid!]); }, 500);
  for (const { id, p } of procs) meters.get(id)!.sample([p.pid!]);
  await sleep(seconds * 1000);
  for (const { id, p } of procs) meters.get(id)!.sample([p.pid!]);
  clearInterval(timer);
  const wall = (Date.now() - t0) / 1000;
  await Promise.all(procs.map(({ p }) => new Promise((r) => { p.on('close', r); p.stdin?.write('q'); p.stdin?.end(); })));
  rmSync(dir, { recursive: true, force: true });
  return { cpu: Object.fromEntries(SOURCES.map((id) => [id, meters.get(id)!.seconds() / wall])), wall };
}

async function recording(): Promise<{ cpu: Record<string, number>; mbPerMin: Record<string, number>; wall: number; dir: string; drops: number; nodeCpu: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'kuzet-bench-rec-'));
  const log = EventLog.open(join(dir, 'events.ndjson'));
  const rec = new Recorder({ dir, log, config, sources: SOURCES });
  const readers = ['face', 'room'].filter((s) => config.recording.tapSources.includes(s as 'face')).map((s) => (async () => { for await (const f of rec.frames(s as SourceId)) void f; })());
  await rec.start();
  await sleep(2000);
  const meters = new Map(SOURCES.map((id) => [id, new CpuMeter()]));
  const sample = () => { const st = rec.stats(); for (const id of SOURCES) { const pid = st[id]?.pid; if (pid) meters.get(id)!.sample([pid]); } };
  const t0 = Date.now();
  const node0 = process.cpuUsage();
  sample();
  const timer = setInterval(sample, 500);
  await sleep(seconds * 1000);
  sample();
  clearInterval(timer);
  const wall = (Date.now() - t0) / 1000;
  const nodeUse = process.cpuUsage(node0);
  const nodeCpu = (nodeUse.user + nodeUse.system) / 1e6 / wall;
  await rec.stop();
  await Promise.all(readers);
  log.close();
  const st = rec.stats();
  const segs = readFileSync(join(dir, 'events.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: { source: SourceId; duration: number | null; size: number } }).filter((r) => r.type === 'segment.closed');
  const mbPerMin: Record<string, number> = {};
  for (const id of SOURCES) {
    const mine = segs.filter((s) => s.data.source === id);
    const dur = mine.reduce((a, s) => a + (s.data.duration ?? 0), 0);
    mbPerMin[id] = dur > 0 ? (mine.reduce((a, s) => a + s.data.size, 0) / 1e6) / (dur / 60) : 0;
  }
  const drops = SOURCES.reduce((a, id) => a + (st[id]?.tap?.dropped ?? 0), 0);
  return { cpu: Object.fromEntries(SOURCES.map((id) => [id, meters.get(id)!.seconds() / wall])), mbPerMin, wall, dir, drops, nodeCpu };
}

if (process.platform !== 'linux') {
  console.error('bench:record reads /proc/<pid>/stat and runs on Linux only.');
  process.exit(2);
}
const desc = SOURCES.map((id) => { const s = config.sources[id]; return `${id} ${s.kind} ${s.width}x${s.height}@${s.fps}`; }).join(', ');
console.log(`bench:record — ${seconds} s per phase; ${desc}; ${config.recording.videoCodec} ${config.recording.preset} crf ${config.recording.crf}, ${config.recording.segmentSeconds}-s ${config.recording.container} segments, tap ${config.recording.tapFps} fps ${config.recording.tapWidth}x${config.recording.tapHeight}`);
console.log(`load average before: ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores`);
const base = await baseline();
const rec = await recording();
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
console.log('');
console.log('stream   baseline CPU (-f null)   recorder CPU   ratio   MB/min');
let bt = 0;
let rt = 0;
let mt = 0;
for (const id of SOURCES) {
  const b = base.cpu[id]!;
  const r = rec.cpu[id]!;
  bt += b; rt += r; mt += rec.mbPerMin[id]!;
  console.log(`${id.padEnd(8)} ${pct(b).padStart(22)}   ${pct(r).padStart(12)}   ${(r / b).toFixed(2).padStart(5)}   ${rec.mbPerMin[id]!.toFixed(2).padStart(6)}`);
}
console.log(`${'total'.padEnd(8)} ${pct(bt).padStart(22)}   ${pct(rt).padStart(12)}   ${(rt / bt).toFixed(2).padStart(5)}   ${mt.toFixed(2).padStart(6)}`);
console.log(`Node side (segment polling + hashing + tap splitting, this process): ${pct(rec.nodeCpu)} of one core`);
console.log(`(CPU = share of one core; recorder/baseline ratio = what encoding + segmenting + hashing add over capture alone; tap frames dropped: ${rec.drops})`);
console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(JSON.stringify({ bench: 'record', seconds, baselineCpu: base.cpu, recorderCpu: rec.cpu, nodeCpu: rec.nodeCpu, ratio: rt / bt, mbPerMin: rec.mbPerMin }));
if (!values.keep) rmSync(rec.dir, { recursive: true, force: true });
else console.log(`recording kept in ${rec.dir}`);
