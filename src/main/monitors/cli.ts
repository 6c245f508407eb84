import { writeFileSync } from 'node:fs';
import { ensureHome } from '../core/home.js';
import { loadExamConfig, loadMachineConfig } from '../core/config.js';
import { EventLog } from '../core/eventlog.js';
import { UsageError } from '../cli/index.js';
import { num, parse } from '../cli/args.js';
import type { Emit, MonitorEventMap, MonitorEventType, WindowInfo } from './events.js';
import { MONITOR_NAMES, MonitorSet, defaultSources, effectiveMonitorsConfig, type MonitorName } from './monitors.js';
import { preflight, type Lang } from './preflight.js';
import { linuxVmFacts, realFs, recordingFs } from './vm.js';

const HELP = `usage: kuzet monitor [--duration <s>] [--json] [--preflight] [--terminate] [--only <list>]
                     [--exam <exam.json>] [--config <config.json>] [--ours-pid <pid>] [--ours-title <title>]
                     [--all-windows] [--log <events.ndjson>] [--lang kk|ru|en] [--record-vm <file.json>]

Runs the system monitors alone and prints their events as they happen — for technicians checking a machine.
  --duration <s>    stop after this many seconds (default: until Ctrl-C)
  --json            one JSON event per line (NDJSON)
  --preflight       run the pre-exam checklist once and exit (exit 1 if something blocks the exam)
  --terminate       apply "terminate" policies (default: only report; an exam session always applies them)
  --only <list>     comma-separated: ${MONITOR_NAMES.join(',')}
  --exam <file>     apply this exam config's monitor overrides (deny list, clipboard policy …)
  --ours-pid/--ours-title   windows that count as "the exam" (default: the window focused at start, e.g. this terminal)
  --all-windows     report every focused window, including the one focused at start
  --log <file>      also write the events into a hash-chained event log
  --record-vm <f>   save the files the VM check read as a JSON fixture (send it to us for a false positive)`;

function who(w: WindowInfo | null): string {
  if (!w) return '(no window focused)';
  return `${w.owner.name}${w.owner.pid !== null ? ` pid ${w.owner.pid}` : ''}${w.owner.path ? ` ${w.owner.path}` : ''} "${w.title ?? ''}"`;
}

/** One line a technician can read. */
export function describeEvent<K extends MonitorEventType>(type: K, d: MonitorEventMap[K]): string {
  const x = d as Record<string, unknown> & MonitorEventMap[MonitorEventType];
  switch (type) {
    case 'monitor.foreground.away': { const e = d as MonitorEventMap['monitor.foreground.away']; return `left the exam window → ${who(e.window)}`; }
    case 'monitor.foreground.changed': { const e = d as MonitorEventMap['monitor.foreground.changed']; return `now in ${who(e.window)} (away ${(e.awayMs / 1000).toFixed(1)} s)`; }
    case 'monitor.foreground.back': { const e = d as MonitorEventMap['monitor.foreground.back']; return `back after ${(e.durationMs / 1000).toFixed(1)} s in ${e.windows.map((s) => s.window?.owner.name ?? 'no window').join(', ')}${e.atStop ? ' (monitor stopped)' : ''}`; }
    case 'monitor.process.found': case 'monitor.process.terminated': case 'monitor.process.terminate_failed': case 'monitor.process.exited': {
      const e = d as MonitorEventMap['monitor.process.found'] & { error?: string; ms?: number; runningMs?: number };
      return `${e.entry} (${e.category}, ${e.policy}) pid ${e.pid} ${e.exe ?? e.name} [by ${e.matchedBy.join('+')}]${e.error ? ` — ${e.error}` : ''}${e.ms !== undefined ? ` in ${e.ms} ms` : ''}${e.runningMs !== undefined ? ` after ${Math.round(e.runningMs / 1000)} s` : ''}`;
    }
    case 'monitor.vm.signal': { const e = d as MonitorEventMap['monitor.vm.signal']; return `[${e.weight}] ${e.id} → ${e.suggests}: ${e.evidence}`; }
    case 'monitor.vm.summary': { const e = d as MonitorEventMap['monitor.vm.summary']; return `verdict ${e.verdict} (score ${e.score}${e.hypervisor ? `, ${e.hypervisor}` : ''}${e.container ? ', container' : ''}); remote session: ${e.remoteSession.own ? 'yes' : 'no'}, others logged in: ${e.remoteSession.others}`; }
    case 'monitor.display.snapshot': case 'monitor.display.changed': { const e = d as MonitorEventMap['monitor.display.snapshot']; return `${e.count} display(s): ${e.displays.map((s) => `${s.name} ${s.width}x${s.height}+${s.x}+${s.y}${s.virtual ? ' (virtual)' : ''}`).join(', ')}${e.mirrored.length ? `; mirrored ${JSON.stringify(e.mirrored)}` : ''}`; }
    case 'monitor.device.snapshot': { const e = d as MonitorEventMap['monitor.device.snapshot']; return `${e.hid.length} HID device(s), ${e.audio.length} audio device(s) (${e.sources.hid}, ${e.sources.audio})`; }
    case 'monitor.device.added': case 'monitor.device.removed': case 'monitor.device.changed': { const e = d as MonitorEventMap['monitor.device.added']; return `${e.flagged ? 'FLAG ' : ''}${e.reason}`; }
    case 'monitor.remote.connected': case 'monitor.remote.ended': { const e = d as MonitorEventMap['monitor.remote.connected'] & { durationMs?: number }; return `${e.connection.kind} (${e.connection.via}): ${e.connection.detail}${e.atStart ? ' (already connected at start)' : ''}${e.durationMs !== undefined ? ` after ${Math.round(e.durationMs / 1000)} s` : ''}`; }
    case 'monitor.source_unavailable': { const e = d as MonitorEventMap['monitor.source_unavailable']; return `${e.monitor}: not available (${e.source}): ${e.reason}`; }
    default: return JSON.stringify(x);
  }
}

export async function monitorCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    duration: { type: 'string' }, json: { type: 'boolean' }, preflight: { type: 'boolean' }, terminate: { type: 'boolean' },
    only: { type: 'string' }, exam: { type: 'string' }, config: { type: 'string' }, 'ours-pid': { type: 'string', multiple: true },
    'ours-title': { type: 'string', multiple: true }, 'all-windows': { type: 'boolean' }, log: { type: 'string' }, lang: { type: 'string' },
    'record-vm': { type: 'string' }, help: { type: 'boolean' },
  }, false);
  if (values.help) { console.log(HELP); return 0; }
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean) as MonitorName[] | undefined;
  const bad = only?.filter((n) => !MONITOR_NAMES.includes(n));
  if (bad?.length) throw new UsageError(`--only: unknown monitor(s) ${bad.join(', ')}; known: ${MONITOR_NAMES.join(', ')}`);
  const lang = (values.lang ?? 'en') as Lang;
  if (!['kk', 'ru', 'en'].includes(lang)) throw new UsageError('--lang must be kk, ru or en');
  const pids = (values['ours-pid'] ?? []).map((p) => { const n = Number(p); if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--ours-pid must be a process id, got "${p}"`); return n; });
  const duration = values.duration !== undefined ? num(values.duration, 'duration', 0) : null;

  if (values['record-vm']) {
    const rec = recordingFs(realFs);
    await linuxVmFacts(rec);
    writeFileSync(values['record-vm'], JSON.stringify({ recordedAt: new Date().toISOString(), platform: process.platform, files: rec.files }, null, 2) + '\n');
    console.error(`recorded ${Object.keys(rec.files).length} files to ${values['record-vm']}`);
    return 0;
  }

  const home = ensureHome();
  const machine = loadMachineConfig(values.config ?? home.config, !!values.config);
  const exam = values.exam ? loadExamConfig(values.exam) : undefined;
  const cfg = effectiveMonitorsConfig(machine, exam);

  const log = values.log ? EventLog.open(values.log) : null;
  const emit: Emit = (type, data) => {
    log?.append(type, data);
    if (values.json) process.stdout.write(JSON.stringify({ t: new Date().toISOString(), type, data }) + '\n');
    else console.log(`${new Date().toISOString().slice(11, 23)}  ${type.padEnd(32)} ${describeEvent(type, data)}`);
  };

  const sources = defaultSources();
  const ours = { pids: [process.pid, ...pids], titles: values['ours-title'] ?? [], windowIds: [] as string[] };
  if (!values['all-windows'] && (!only || only.includes('foreground'))) {
    const w = await sources.foreground.read({ maxAgeMs: 0 }).catch(() => null);
    if (w?.id) ours.windowIds.push(w.id);
  }
  const opts = { sources, ours, only, terminate: !!values.terminate };

  try {
    if (values.preflight) {
      const r = await preflight(cfg, { ...opts, emit: values.json ? emit : undefined });
      if (values.json) process.stdout.write(JSON.stringify({ type: 'monitor.preflight', data: r }) + '\n');
      else {
        for (const i of r.items) {
          console.log(`${i.status.toUpperCase().padEnd(11)} ${i.id.padEnd(10)} ${i.title[lang]}`);
          for (const d of i.details) console.log(`${' '.repeat(23)}${d}`);
        }
        console.log(r.ok ? 'preflight: the exam may start' : `preflight: BLOCKED (${r.blocked.map((b) => b.id).join(', ')})`);
      }
      return r.ok ? 0 : 1;
    }
    const set = new MonitorSet(cfg, emit, opts);
    await set.start();
    await new Promise<void>((resolve) => {
      const done = () => { process.off('SIGINT', done); process.off('SIGTERM', done); clearTimeout(timer); resolve(); };
      const timer = duration !== null ? setTimeout(done, duration * 1000) : undefined;
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
    await set.stop();
    return 0;
  } finally {
    log?.close();
  }
}
