/**
 * System monitors: foreground window, forbidden processes, VM / remote session, displays, HID and audio devices,
 * clipboard. Plain Node (no electron): the shell injects Electron-backed sources where it has better ones
 * (displays, clipboard). See docs/monitors.md.
 */
import type { Step } from '../core/session.js';
import type { SessionContext } from '../core/context.js';
import type { Emit } from './events.js';
import { MonitorSet, effectiveMonitorsConfig, type MonitorName, type MonitorsOptions } from './monitors.js';

export * from './events.js';
export { MonitorSet, MONITOR_NAMES, defaultSources, effectiveMonitorsConfig, oursFrom, type MonitorName, type MonitorSources, type MonitorsConfig, type MonitorsOptions } from './monitors.js';
export { preflight, type PreflightItem, type PreflightResult, type CheckStatus, type Lang, type Text } from './preflight.js';
export { ForegroundMonitor, SourceUnavailable, X11ForegroundSource, GetWindowsSource, isOurs, type ForegroundSource, type OursSpec } from './foreground.js';
export { ProcessMonitor, matchDeny, effectiveDenyList, type ProcessSource, type ProcessKiller } from './processes.js';
export { DEFAULT_DENY } from './denylist.js';
export { DisplayMonitor, electronDisplaySource, type DisplaySource, type ElectronDisplayLike } from './displays.js';
export { DeviceMonitor, type HidSource, type AudioSource, type RawHid } from './devices.js';
export { ClipboardMonitor, type ClipboardSource, type PasteDecision } from './clipboard.js';
export { assessVm, linuxVmFacts, fixtureFs, recordingFs, type VmFacts } from './vm.js';

/** What a running monitors step offers other parts of the session (the kiosk asks the clipboard before a paste). */
export type MonitorsService = MonitorSet;

/** Events go to the hash-chained log; a failing append (disk full) must not stop the monitors or the exam. */
export function logEmitter(ctx: Pick<SessionContext, 'log'>): Emit & { failures: number } {
  const f = ((type, data) => {
    try { ctx.log.append(type, data); } catch { f.failures++; }
  }) as Emit & { failures: number };
  f.failures = 0;
  return f;
}

/**
 * All monitors as one reversible session step (`ctx.services.monitors` while it runs). Settings come from the
 * machine config's `monitors` section with the exam's overrides; `opts` injects sources and the kiosk's identity.
 */
export function monitorsStep(opts: MonitorsOptions & { name?: string } = {}): Step<SessionContext> {
  let set: MonitorSet | null = null;
  const service = opts.only?.length === 1 ? `monitor.${opts.only[0]}` : 'monitors';
  return {
    name: opts.name ?? service,
    async start(ctx) {
      const cfg = effectiveMonitorsConfig(ctx.machine, ctx.exam);
      if (!cfg.enabled) { ctx.log.append('monitor.started', { monitors: [], platform: process.platform, sources: {}, disabled: true }); return; }
      set = new MonitorSet(cfg, logEmitter(ctx), opts);
      await set.start();
      ctx.services[service] = set;
    },
    async stop(ctx) {
      if (!set) return;
      const s = set;
      set = null;
      delete ctx.services[service];
      await s.stop();
    },
  };
}

/** One monitor as its own step (named `monitor.<name>`), for sessions that order them separately. */
export function monitorStep(name: MonitorName, opts: MonitorsOptions = {}): Step<SessionContext> {
  return monitorsStep({ ...opts, only: [name] });
}
