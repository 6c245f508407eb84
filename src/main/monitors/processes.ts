import { readdirSync, readFileSync } from 'node:fs';
import { readFile, readlink, stat } from 'node:fs/promises';
import type { DenyEntryConfig } from '../core/config.js';
import { DEFAULT_DENY } from './denylist.js';
import type { DenyHit, Emit, ProcInfo, ProcessFact } from './events.js';
import { Poller, errMsg, run, sleep } from './util.js';

/** Where the process list comes from (injectable: tests feed recorded lists). */
export interface ProcessSource {
  readonly name: string;
  list(): Promise<ProcInfo[]>;
}

/** How a process is ended and how we tell it is gone (injectable: tests use processes that refuse to die). */
export interface ProcessKiller {
  signal(p: ProcInfo, sig: 'SIGTERM' | 'SIGKILL'): void;
  alive(p: ProcInfo): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------------------------
// Linux: /proc, read asynchronously. A process already seen (same pid, start time and name) is not read again,
// so a scan costs one small read per process; a changed name (exec) or a new pid reads exe, cmdline and owner.

/** Parses /proc/<pid>/stat: the name sits in parentheses and may itself contain spaces and parentheses. */
export function parseProcStat(text: string): { name: string; state: string; ppid: number; start: number } | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const rest = text.slice(close + 2).split(' ');
  return { name: text.slice(open + 1, close), state: rest[0] ?? '?', ppid: Number(rest[1]), start: Number(rest[19]) };
}

export class LinuxProcSource implements ProcessSource {
  readonly name = 'linux-proc';
  private known = new Map<number, ProcInfo>();
  /** Longest synchronous stretch of a scan, ms (for the bench). */
  longestSliceMs = 0;
  constructor(private readonly root = '/proc', private readonly sliceMs = 2) {}

  /**
   * /proc files live in memory: a synchronous read costs ~40 µs where a promise-based one costs ~200 µs of CPU.
   * So `stat` is read synchronously, in time slices of `sliceMs` with a yield to the event loop between them
   * (the slice is measured, not counted in processes, so a preempted or slow machine still yields on time);
   * only new or changed processes get their exe, cmdline and owner read, asynchronously.
   */
  async list(): Promise<ProcInfo[]> {
    let slice = performance.now();
    const pids = readdirSync(this.root).filter((d) => /^\d+$/.test(d)).map(Number);
    const next = new Map<number, ProcInfo>();
    const fresh: { pid: number; st: NonNullable<ReturnType<typeof parseProcStat>> }[] = [];
    for (let i = 0; i < pids.length; i++) {
      const now = performance.now();
      if (now - slice >= this.sliceMs) {
        this.longestSliceMs = Math.max(this.longestSliceMs, now - slice);
        await new Promise<void>((r) => setImmediate(r));
        slice = performance.now();
      }
      const pid = pids[i]!;
      let st: ReturnType<typeof parseProcStat>;
      try { st = parseProcStat(readFileSync(`${this.root}/${pid}/stat`, 'utf8')); } catch { continue; }
      if (!st || st.state === 'Z' || st.state === 'X') continue;
      const prev = this.known.get(pid);
      if (prev && prev.start === st.start && prev.name === st.name) next.set(pid, prev);
      else fresh.push({ pid, st });
    }
    this.longestSliceMs = Math.max(this.longestSliceMs, performance.now() - slice);
    await Promise.all(fresh.map(async ({ pid, st }) => {
      const [exe, cmd, owner] = await Promise.all([
        readlink(`${this.root}/${pid}/exe`).catch(() => null),
        readFile(`${this.root}/${pid}/cmdline`, 'utf8').catch(() => ''),
        stat(`${this.root}/${pid}`).then((s) => s.uid).catch(() => null),
      ]);
      next.set(pid, {
        pid, ppid: st.ppid, name: st.name, start: st.start, uid: owner,
        exe: exe ? exe.replace(/ \(deleted\)$/, '') : null,
        cmdline: cmd ? cmd.replace(/\0+$/, '').replaceAll('\0', ' ') : null,
      });
    }));
    this.known = next;
    return [...next.values()];
  }
}

/** macOS and other Unixes: one `ps` call (comm is the full executable path there). */
export class PsSource implements ProcessSource {
  readonly name = 'ps';
  async list(): Promise<ProcInfo[]> {
    const r = await run('ps', ['-axo', 'pid=,ppid=,uid=,comm='], { timeoutMs: 5000 });
    if (!r.ok) throw new Error(r.error);
    return parsePs(r.stdout);
  }
}

export function parsePs(stdout: string): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(.+)$/.exec(line);
    if (!m) continue;
    const comm = m[4]!.trim();
    out.push({ pid: Number(m[1]), ppid: Number(m[2]), uid: Number(m[3]), name: baseName(comm), exe: comm.includes('/') ? comm : null, cmdline: null, start: null });
  }
  return out;
}

/** Windows: `tasklist` (names and pids; paths are not read here — see docs/monitors.md). */
export class TasklistSource implements ProcessSource {
  readonly name = 'tasklist';
  async list(): Promise<ProcInfo[]> {
    const r = await run('tasklist', ['/fo', 'csv', '/nh'], { timeoutMs: 10_000 });
    if (!r.ok) throw new Error(r.error);
    return parseTasklist(r.stdout);
  }
}

export function parseTasklist(stdout: string): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const cells = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    if (cells.length < 2 || !/^\d+$/.test(cells[1]!)) continue;
    out.push({ pid: Number(cells[1]), ppid: null, uid: null, name: cells[0]!, exe: null, cmdline: null, start: null });
  }
  return out;
}

export function defaultProcessSource(): ProcessSource {
  if (process.platform === 'linux') return new LinuxProcSource();
  if (process.platform === 'win32') return new TasklistSource();
  return new PsSource();
}

export const defaultKiller: ProcessKiller = {
  signal(p, sig) {
    process.kill(p.pid, sig);
  },
  async alive(p) {
    if (process.platform === 'linux') {
      const st = await readFile(`/proc/${p.pid}/stat`, 'utf8').then(parseProcStat).catch(() => null);
      if (!st || st.state === 'Z' || st.state === 'X') return false;
      if (p.start !== null && st.start !== p.start) return false; // the pid now belongs to another process
      return true;
    }
    try { process.kill(p.pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
  },
};

// ---------------------------------------------------------------------------------------------------------------

function baseName(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}

export function normName(s: string): string {
  return baseName(s).toLowerCase().replace(/\.(exe|app)$/, '');
}

function normPath(s: string): string {
  return s.toLowerCase().replaceAll('\\', '/');
}

/** The effective deny list: `deny` replaces the built-in list, `denyExtra` adds to it; entries are normalised. */
export function effectiveDenyList(cfg: { deny?: DenyEntryConfig[]; denyExtra?: DenyEntryConfig[] }): DenyEntryConfig[] {
  const base = cfg.deny ?? DEFAULT_DENY;
  return [...base, ...(cfg.denyExtra ?? [])].map((e) => ({
    name: e.name, category: e.category ?? 'other', policy: e.policy ?? 'flag',
    match: e.match.map(normName), paths: (e.paths ?? []).map(normPath).filter((p) => p.length > 0),
  }));
}

/**
 * Matches a process against the deny list on its name (kernel name, executable file name, argv[0]) and on its
 * executable path (install folder fragments), and says which of the two matched. Linux truncates the kernel name
 * to 15 characters, so a 15-character name matches an entry it is a prefix of.
 */
export function matchDeny(p: ProcInfo, list: DenyEntryConfig[]): DenyHit | null {
  const names = new Set<string>([normName(p.name)]);
  if (p.exe) names.add(normName(p.exe));
  const argv0 = p.cmdline?.split(' ')[0];
  if (argv0) names.add(normName(argv0));
  const exe = p.exe ? normPath(p.exe) : null;
  const short = p.name.length === 15 ? p.name.toLowerCase() : null;
  for (const e of list) {
    const matchedBy: ('name' | 'path')[] = [];
    if (e.match.some((m) => names.has(m) || (short !== null && m.startsWith(short)))) matchedBy.push('name');
    if (exe && e.paths.some((f) => exe.includes(f))) matchedBy.push('path');
    if (matchedBy.length) return { entry: e.name, category: e.category, policy: e.policy, matchedBy };
  }
  return null;
}

/** Our own process, its ancestors and its descendants: never reported, never killed. */
export function ownTree(list: ProcInfo[], self = process.pid, extra: number[] = []): Set<number> {
  const byPid = new Map(list.map((p) => [p.pid, p]));
  const roots = new Set<number>([self, ...extra]);
  const mine = new Set<number>(roots);
  for (let p = byPid.get(self); p && p.ppid && !mine.has(p.ppid); p = byPid.get(p.ppid)) mine.add(p.ppid);
  for (const p of list) {
    let cur: ProcInfo | undefined = p;
    for (let i = 0; cur && cur.ppid !== null && i < 64; i++) {
      if (roots.has(cur.ppid)) { mine.add(p.pid); break; }
      cur = byPid.get(cur.ppid);
    }
  }
  return mine;
}

function fact(p: ProcInfo): ProcessFact {
  return { pid: p.pid, name: p.name, exe: p.exe, cmdline: p.cmdline ? (p.cmdline.length > 300 ? p.cmdline.slice(0, 300) + '…' : p.cmdline) : null, uid: p.uid };
}

export interface Tracked {
  proc: ProcInfo;
  hit: DenyHit;
  since: number;
  terminated: boolean;
  failed: string | null;
}

export interface ScanResult {
  /** Matches seen for the first time in this scan. */
  found: Tracked[];
  /** All matches still running after this scan (terminated ones are gone). */
  running: Tracked[];
  /** Matches whose policy is "terminate" that keep running: the exam must not start while there are any. */
  blockers: Tracked[];
  scanned: number;
}

export interface ProcessMonitorOptions {
  emit: Emit;
  source: ProcessSource;
  killer?: ProcessKiller;
  deny: DenyEntryConfig[];
  scanMs: number;
  /** Apply "terminate" policies (false: only flag; `kuzet monitor` without --terminate). */
  terminate: boolean;
  graceMs?: number;
  /** Our own helper processes besides our process tree (e.g. the Electron renderers' parent). */
  ourPids?: number[];
}

/**
 * Scans the process list at preflight and every `scanMs` during the exam. Each match is logged once
 * (`monitor.process.found`); with policy "terminate" it is ended (SIGTERM, then SIGKILL after the grace time) and
 * `monitor.process.terminated` or `monitor.process.terminate_failed` is logged; a flagged process that ends by
 * itself logs `monitor.process.exited` with how long it ran.
 */
export class ProcessMonitor {
  private readonly poller: Poller;
  private readonly tracked = new Map<string, Tracked>();
  private readonly killer: ProcessKiller;
  private errors = 0;
  phase: 'preflight' | 'exam' = 'exam';
  scans = 0;

  constructor(private readonly o: ProcessMonitorOptions) {
    this.killer = o.killer ?? defaultKiller;
    this.poller = new Poller(async () => { await this.scan(); }, o.scanMs, (e) => {
      this.errors++;
      if (this.errors === 1 || this.errors % 50 === 0) o.emit('monitor.source_error', { monitor: 'process', error: errMsg(e), count: this.errors });
    });
  }

  start(immediately = true): void {
    this.poller.start(immediately);
  }

  async stop(): Promise<void> {
    await this.poller.stop();
  }

  stats() {
    return { source: this.o.source.name, scans: this.scans, tracked: this.tracked.size, errors: this.errors };
  }

  get running(): Tracked[] {
    return [...this.tracked.values()].filter((t) => !t.terminated);
  }

  async scan(): Promise<ScanResult> {
    const list = await this.o.source.list();
    this.scans++;
    const mine = ownTree(list, process.pid, this.o.ourPids ?? []);
    const now = Date.now();
    const present = new Set<string>();
    const found: Tracked[] = [];
    const toKill: Tracked[] = [];
    for (const p of list) {
      if (mine.has(p.pid)) continue;
      const hit = matchDeny(p, this.o.deny);
      if (!hit) continue;
      const key = `${p.pid}:${p.start ?? ''}:${p.name}`;
      present.add(key);
      let t = this.tracked.get(key);
      if (!t) {
        t = { proc: p, hit, since: now, terminated: false, failed: null };
        this.tracked.set(key, t);
        found.push(t);
        this.o.emit('monitor.process.found', { ...fact(p), ...hit, phase: this.phase });
      }
      if (hit.policy === 'terminate' && this.o.terminate && !t.terminated) toKill.push(t);
    }
    for (const [key, t] of this.tracked) {
      if (present.has(key)) continue;
      if (!t.terminated) this.o.emit('monitor.process.exited', { ...fact(t.proc), ...t.hit, runningMs: now - t.since });
      this.tracked.delete(key);
    }
    await Promise.all(toKill.map((t) => this.terminate(t)));
    for (const t of toKill) if (t.terminated) this.tracked.delete(`${t.proc.pid}:${t.proc.start ?? ''}:${t.proc.name}`);
    const running = this.running;
    const blockers = running.filter((t) => t.hit.policy === 'terminate');
    return { found, running, blockers, scanned: list.length };
  }

  private async terminate(t: Tracked): Promise<void> {
    const t0 = performance.now();
    const grace = this.o.graceMs ?? 1500;
    let error: string | null = null;
    let sent: 'SIGTERM' | 'SIGKILL' = 'SIGTERM';
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      sent = sig;
      try {
        this.killer.signal(t.proc, sig);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ESRCH') break; // already gone
        error = code === 'EPERM'
          ? `no permission to end process ${t.proc.pid} (${t.proc.name}): it belongs to another user; close it from that account or run the lab helper with administrator rights`
          : `cannot end process ${t.proc.pid} (${t.proc.name}): ${errMsg(e)}`;
        break;
      }
      const until = performance.now() + (sig === 'SIGTERM' ? grace : 1000);
      while (performance.now() < until && await this.killer.alive(t.proc)) await sleep(50);
      if (!await this.killer.alive(t.proc)) break;
    }
    const gone = !await this.killer.alive(t.proc);
    if (gone) {
      t.terminated = true;
      this.o.emit('monitor.process.terminated', { ...fact(t.proc), ...t.hit, signal: sent, ms: Math.round(performance.now() - t0) });
      return;
    }
    const msg = error ?? `process ${t.proc.pid} (${t.proc.name}) is still running after SIGTERM and SIGKILL`;
    if (t.failed !== msg) this.o.emit('monitor.process.terminate_failed', { ...fact(t.proc), ...t.hit, error: msg });
    t.failed = msg;
  }
}
