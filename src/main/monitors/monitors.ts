import type { ExamConfig, MachineConfig } from '../core/config.js';
import type { Emit, VmReport } from './events.js';
import { ForegroundMonitor, defaultForegroundSource, type ForegroundSource, type OursSpec } from './foreground.js';
import { ProcessMonitor, defaultProcessSource, effectiveDenyList, type ProcessKiller, type ProcessSource } from './processes.js';
import { DisplayMonitor, defaultDisplaySource, type DisplaySource } from './displays.js';
import { DeviceMonitor, PactlAudioSource, nodeHidSource, type AudioSource, type HidSource } from './devices.js';
import { ClipboardMonitor, defaultClipboardSource, type ClipboardSource } from './clipboard.js';
import { assessVm, defaultVmFacts, type VmFacts } from './vm.js';
import { spawnHelper } from './helper.js';
import { RemoteSessionMonitor, defaultRemoteSource, type RemoteSource } from './remote.js';

export type MonitorsConfig = MachineConfig['monitors'];
export const MONITOR_NAMES = ['foreground', 'process', 'vm', 'display', 'device', 'clipboard', 'remote'] as const;
export type MonitorName = (typeof MONITOR_NAMES)[number];

/** The machine's monitor settings with the exam's overrides on top. */
export function effectiveMonitorsConfig(machine: MachineConfig, exam?: ExamConfig): MonitorsConfig {
  return { ...machine.monitors, ...(exam?.monitors ?? {}) } as MonitorsConfig;
}

/** Every OS source, injectable. Missing ones are the real sources of this machine. */
export interface MonitorSources {
  foreground: ForegroundSource;
  processes: ProcessSource;
  killer?: ProcessKiller;
  displays: DisplaySource;
  hid: HidSource | null;
  audio: AudioSource | null;
  clipboard: ClipboardSource | null;
  vmFacts: () => Promise<VmFacts>;
  remote: RemoteSource | null;
}

export function defaultSources(env: NodeJS.ProcessEnv = process.env): MonitorSources {
  return {
    foreground: defaultForegroundSource(env),
    processes: defaultProcessSource(),
    displays: defaultDisplaySource(env),
    hid: nodeHidSource,
    audio: new PactlAudioSource(),
    clipboard: defaultClipboardSource(env),
    vmFacts: defaultVmFacts,
    remote: defaultRemoteSource(),
  };
}

export interface MonitorsOptions {
  sources?: Partial<MonitorSources>;
  /** The kiosk's own windows (the shell passes its pid); the config's allowWindows are added. */
  ours?: OursSpec;
  /** Run only these monitors (default: all). */
  only?: MonitorName[];
  /** Apply "terminate" policies (default true in a session; `kuzet monitor` needs --terminate). */
  terminate?: boolean;
}

export function oursFrom(cfg: MonitorsConfig, ours: OursSpec = {}): OursSpec {
  return {
    ...ours,
    pids: ours.pids ?? [process.pid],
    titles: [...(ours.titles ?? []), ...cfg.allowWindows.titles],
    classes: [...(ours.classes ?? []), ...cfg.allowWindows.classes],
  };
}

/**
 * All monitors of one session, wired together: the foreground monitor's "back" triggers the clipboard check,
 * the VM/remote check runs once at start. `start()` and `stop()` are what the session step calls.
 */
export class MonitorSet {
  readonly foreground: ForegroundMonitor | null;
  readonly processes: ProcessMonitor | null;
  readonly displays: DisplayMonitor | null;
  readonly devices: DeviceMonitor | null;
  readonly clipboard: ClipboardMonitor | null;
  readonly remote: RemoteSessionMonitor | null;
  vm: VmReport | null = null;
  private readonly names: MonitorName[];
  private readonly src: MonitorSources;
  get sources(): Readonly<MonitorSources> { return this.src; }
  private awayWindow: import('./events.js').WindowInfo | null = null;

  constructor(readonly cfg: MonitorsConfig, private readonly emit: Emit, opts: MonitorsOptions = {}) {
    this.src = { ...defaultSources(), ...opts.sources };
    this.names = (opts.only ?? [...MONITOR_NAMES]).filter((n) => MONITOR_NAMES.includes(n));
    const on = (n: MonitorName) => this.names.includes(n);
    this.foreground = on('foreground') ? new ForegroundMonitor({ emit, source: this.src.foreground, ours: oursFrom(cfg, opts.ours), pollMs: cfg.foregroundPollMs }) : null;
    this.processes = on('process') ? new ProcessMonitor({ emit, source: this.src.processes, killer: this.src.killer, deny: effectiveDenyList(cfg), scanMs: cfg.processScanMs, terminate: opts.terminate ?? true, graceMs: cfg.terminateGraceMs, ourPids: opts.ours?.pids }) : null;
    this.displays = on('display') ? new DisplayMonitor({ emit, source: this.src.displays, pollMs: cfg.displayPollMs }) : null;
    this.devices = on('device') ? new DeviceMonitor({ emit, hid: this.src.hid, audio: this.src.audio, pollMs: cfg.devicePollMs }) : null;
    this.clipboard = on('clipboard') ? new ClipboardMonitor({ emit, source: this.src.clipboard, policy: cfg.clipboard, previewChars: cfg.clipboardPreviewChars }) : null;
    this.remote = on('remote') ? new RemoteSessionMonitor({ emit, source: this.src.remote, checkMs: cfg.remoteCheckMs ?? 5000 }) : null;
    if (this.foreground && this.clipboard) {
      this.foreground.on('away', (w) => { this.awayWindow = w; });
      this.foreground.on('back', () => { void this.clipboard!.checkAfterAway(this.awayWindow); });
    }
  }

  get monitorNames(): MonitorName[] {
    return this.names;
  }

  async start(): Promise<void> {
    // The one fork of the exam process the monitors need: later tools (xrandr, pactl, who) start from the helper.
    spawnHelper.start();
    this.emit('monitor.started', {
      monitors: this.names, platform: process.platform,
      sources: { foreground: this.src.foreground.name, process: this.src.processes.name, display: this.src.displays.name, hid: this.src.hid?.name ?? 'off', audio: this.src.audio?.name ?? 'off', clipboard: this.src.clipboard?.name ?? 'none', remote: this.src.remote?.name ?? 'none' },
    });
    if (this.names.includes('vm')) await this.checkVm();
    await this.clipboard?.start();
    this.processes?.start();
    this.foreground?.start();
    this.displays?.start();
    this.devices?.start();
    this.remote?.start();
  }

  async checkVm(): Promise<VmReport | null> {
    try {
      this.vm = assessVm(await this.src.vmFacts());
    } catch (e) {
      this.emit('monitor.source_error', { monitor: 'vm', error: (e as Error).message, count: 1 });
      return null;
    }
    for (const s of this.vm.signals) this.emit('monitor.vm.signal', s);
    const { signals, ...rest } = this.vm;
    this.emit('monitor.vm.summary', { ...rest, signals: signals.length });
    return this.vm;
  }

  stats(): Record<string, unknown> {
    return {
      foreground: this.foreground?.stats(), process: this.processes?.stats(), display: this.displays?.stats(),
      device: this.devices?.stats(), clipboard: this.clipboard?.stats(), remote: this.remote?.stats(), helper: { running: spawnHelper.running, starts: spawnHelper.starts, runs: spawnHelper.runs }, vm: this.vm ? { verdict: this.vm.verdict, score: this.vm.score } : undefined,
    };
  }

  async stop(): Promise<void> {
    await Promise.all([this.foreground?.stop(), this.processes?.stop(), this.displays?.stop(), this.devices?.stop(), this.remote?.stop()]);
    await this.clipboard?.stop();
    this.emit('monitor.stopped', { monitors: this.names, stats: JSON.parse(JSON.stringify(this.stats())) as Record<string, unknown> });
  }
}
