/**
 * npm run bench:monitors — CPU cost and event-loop blocking of all system monitors together, with the real OS
 * sources, under a private Xvfb + openbox display while windows are switched every few seconds.
 *
 * CPU is this process plus its child processes (xprop, xrandr, pactl …): /proc/self/stat utime+stime+cutime+cstime
 * and the live long-running children (the xprop spy), in % of one core. Baselines measured in the same run:
 * idle (the same process doing nothing) and naive get-windows polling every 400 ms (what the numbers
 * suggest). Event-loop blocking: perf_hooks.monitorEventLoopDelay (max and p99).
 *
 * BENCH_SECONDS (default 20) sets the length of each phase.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { parseMachineConfig } from '../src/main/core/config.js';
import { MONITOR_NAMES, MonitorSet, type MonitorName } from '../src/main/monitors/monitors.js';
import { X11ForegroundSource } from '../src/main/monitors/foreground.js';
import { XrandrSource } from '../src/main/monitors/displays.js';
import { XclipSource } from '../src/main/monitors/clipboard.js';
import { missingXTools, startXServer } from '../tests/monitors/xserver.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const TICK_MS = 10; // USER_HZ is 100 on Linux

function statTicks(pid: number | 'self'): { own: number; children: number } | null {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch { return null; }
}

/** CPU ms used by our live children that have not exited yet (long-running spies). */
const notOurs = new Set<number>();

function liveChildrenMs(): number {
  let t = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.split(') ')[1]!.split(' ');
      if (Number(f[1]) === process.pid && !notOurs.has(Number(d))) t += (Number(f[11]) + Number(f[12])) * TICK_MS;
    } catch { /* gone */ }
  }
  return t;
}

function cpuMsNow(): number {
  const s = statTicks('self')!;
  return (s.own + s.children) * TICK_MS + liveChildrenMs();
}

interface Phase { name: string; cpuPct: number; loopMaxMs: number; loopP99Ms: number; events: number }

async function phase(name: string, run: (stopAt: number) => Promise<number>): Promise<Phase> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const c0 = cpuMsNow();
  const t0 = performance.now();
  const events = await run(t0 + SECONDS * 1000);
  const wall = performance.now() - t0;
  const c1 = cpuMsNow();
  h.disable();
  const p: Phase = { name, cpuPct: ((c1 - c0) / wall) * 100, loopMaxMs: h.max / 1e6, loopP99Ms: h.percentile(99) / 1e6, events };
  console.log(`${name.padEnd(44)} cpu ${p.cpuPct.toFixed(2).padStart(6)} % of one core   event loop max ${p.loopMaxMs.toFixed(1).padStart(6)} ms  p99 ${p.loopP99Ms.toFixed(1).padStart(5)} ms   events ${events}`);
  return p;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const missing = missingXTools();
  if (missing.length) { console.error(`bench:monitors needs ${missing.join(', ')} (Debian: apt-get install xvfb openbox xdotool x11-utils)`); process.exit(1); }
  const x = await startXServer();
  const env = x.env;
  const a = await x.window('Kuzet kiosk');
  const b = await x.window('Other app');
  x.activate(a.id);
  for (const p of x.pids()) notOurs.add(p);
  // Window switches come from a detached shell (not our child), so their cost is not billed to the monitors.
  let switcher = 0;
  const startSwitching = () => {
    switcher = Number(execFileSync('sh', ['-c', `(while true; do sleep 2.5; xdotool windowactivate ${b.id}; sleep 2.5; xdotool windowactivate ${a.id}; done) >/dev/null 2>&1 & echo $!`], { env, encoding: 'utf8' }).trim());
  };
  const stopSwitching = () => { if (switcher) { try { process.kill(switcher, 'SIGTERM'); } catch { /* gone */ } switcher = 0; x.activate(a.id); } };
  console.log(`bench:monitors — ${SECONDS} s per phase (after a 3 s warm-up), display ${x.display}, ${process.platform} node ${process.version}, load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${cpus().length} cores`);

  try {
    const idle = await phase('baseline: idle process', async (stopAt) => { await wait(stopAt - performance.now()); return 0; });

    const naive = await phase('baseline: get-windows activeWindow() / 400 ms', async (stopAt) => {
      process.env.DISPLAY = x.display;
      const { activeWindow } = await import('get-windows');
      let n = 0;
      while (performance.now() < stopAt) {
        const t = performance.now();
        await activeWindow().catch(() => undefined);
        n++;
        await wait(Math.max(0, 400 - (performance.now() - t)));
      }
      return n;
    });

    const cfg = parseMachineConfig({}).monitors;
    /** Starts the monitors, lets start-up pass (module loading, VM check, first scans), then measures. */
    const monitorsPhase = async (name: string, only?: MonitorName[], switching = false): Promise<Phase> => {
      let n = 0;
      const seen: string[] = [];
      const set = new MonitorSet(cfg, (t) => { n++; seen.push(t); }, {
        only, ours: { pids: [a.pid] }, terminate: false,
        sources: { foreground: new X11ForegroundSource({ env }), displays: new XrandrSource(env), clipboard: new XclipSource(env) },
      });
      await set.start();
      if (switching) startSwitching();
      await wait(3000);
      const p = await phase(name, async (stopAt) => { const n0 = n; await wait(stopAt - performance.now()); if (process.env.BENCH_DEBUG) console.log(seen.slice(n0)); return n - n0; });
      stopSwitching();
      await set.stop();
      return p;
    };
    const all = await monitorsPhase('kuzet monitors: all six, kiosk focused');
    const sw = await monitorsPhase('kuzet monitors: all six, switch every 2.5 s', undefined, true);
    if (process.env.BENCH_EACH === '1') for (const only of MONITOR_NAMES) await monitorsPhase(`  ${only} alone, switching`, [only], true);

    const extra = all.cpuPct - idle.cpuPct;
    const extraSw = sw.cpuPct - idle.cpuPct;
    const worstLoop = Math.max(all.loopMaxMs, sw.loopMaxMs);
    const loopBudget = Math.max(50, idle.loopMaxMs);
    console.log('');
    console.log(`monitors over idle, kiosk focused:    ${extra.toFixed(2)} % of one core (budget 3 %) → ${extra <= 3 ? 'OK' : 'OVER BUDGET'}`);
    console.log(`monitors over idle, switching:        ${extraSw.toFixed(2)} % of one core`);
    console.log(`ratio monitors / get-windows polling: ${(all.cpuPct / naive.cpuPct).toFixed(3)} focused, ${(sw.cpuPct / naive.cpuPct).toFixed(3)} switching (get-windows alone ${naive.cpuPct.toFixed(2)} %)`);
    console.log(`ratio monitors / idle:                ${(all.cpuPct / Math.max(idle.cpuPct, 0.01)).toFixed(2)} focused, ${(sw.cpuPct / Math.max(idle.cpuPct, 0.01)).toFixed(2)} switching`);
    console.log(`event loop delay max with monitors:   ${worstLoop.toFixed(1)} ms (budget 50 ms; the idle process itself saw ${idle.loopMaxMs.toFixed(1)} ms on this shared machine) → ${worstLoop <= loopBudget ? 'OK' : 'OVER BUDGET'}`);
    process.exitCode = extra <= 3 && worstLoop <= loopBudget ? 0 : 1;
  } finally {
    stopSwitching();
    await x.stop();
  }
}

await main();
