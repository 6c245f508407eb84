/**
 * The typed events the system monitors write into the session's hash-chained log (`ctx.log`).
 * Every event carries what a proctor needs to judge it without the machine: who (process, path, title), what
 * (device, display, clipboard size), when and for how long. Types are `monitor.<name>.<what>`.
 */

export interface WindowOwner {
  /** Process name (executable base name, or the window class when the process is unknown). */
  name: string;
  pid: number | null;
  /** Executable path, when the OS tells it. */
  path: string | null;
}

export interface WindowInfo {
  /** Window id as the OS knows it (X11 window id in hex, Windows HWND, macOS window number). */
  id: string | null;
  title: string | null;
  /** X11 WM_CLASS (instance and class), macOS bundle id; otherwise empty. */
  classes: string[];
  owner: WindowOwner;
}

export interface ProcInfo {
  pid: number;
  ppid: number | null;
  /** Kernel process name (Linux: /proc/<pid>/comm, truncated to 15 characters). */
  name: string;
  exe: string | null;
  cmdline: string | null;
  uid: number | null;
  /** Start time in clock ticks since boot (Linux) or ms epoch; identifies the process against pid reuse. */
  start: number | null;
}

export interface DenyHit {
  entry: string;
  category: string;
  policy: 'flag' | 'terminate';
  /** Which identity facts matched: the executable name, its path, or both. */
  matchedBy: ('name' | 'path')[];
}

export interface ProcessFact {
  pid: number;
  name: string;
  exe: string | null;
  cmdline: string | null;
  uid: number | null;
}

export interface DisplayInfo {
  name: string;
  primary: boolean;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Physical size reported by the monitor (EDID); 0 when unknown, which real monitors rarely are. */
  widthMm: number;
  heightMm: number;
  internal: boolean | null;
  /** Why this output looks virtual (a dummy/virtual driver or no physical size); null when it looks real. */
  virtual: string | null;
}

export interface DisplaySummary {
  count: number;
  displays: DisplayInfo[];
  /** Groups of outputs showing the same picture (same position and size). */
  mirrored: string[][];
  virtual: string[];
}

export interface HidDeviceInfo {
  key: string;
  vendorId: number;
  productId: number;
  product: string | null;
  manufacturer: string | null;
  serial: string | null;
  /** Keyboard, mouse, game controller, headset controls, … from the HID usage page/usage. */
  kinds: string[];
  bus: string | null;
  interfaces: number;
}

export interface AudioDeviceInfo {
  key: string;
  direction: 'output' | 'input';
  name: string;
  description: string;
  bus: string | null;
  formFactor: string | null;
  activePort: string | null;
  /** Kind of the active port: headphones, headset, speaker, hdmi, … */
  portKind: string | null;
  /** Where the reading came from: pactl or ALSA card list. */
  via: 'pactl' | 'alsa';
}

export type DeviceInfo = ({ type: 'hid' } & HidDeviceInfo) | ({ type: 'audio' } & AudioDeviceInfo);

export type VmWeight = 'strong' | 'medium' | 'weak' | 'info';

export interface VmSignal {
  /** Stable id, e.g. dmi.sys_vendor, cpu.hypervisor_flag, nic.oui, disk.model, pci.vendor, container.dockerenv. */
  id: string;
  kind: 'dmi' | 'cpu' | 'nic' | 'disk' | 'gpu' | 'pci' | 'kernel' | 'container' | 'remote';
  weight: VmWeight;
  /** What it suggests: a named hypervisor, "container", "remote session". */
  suggests: string;
  /** The raw fact, verbatim from the OS (file or command and value). */
  evidence: string;
  /** Plain-language meaning, including why a real laptop may show it. */
  note: string;
}

export interface VmReport {
  verdict: 'none' | 'unlikely' | 'possible' | 'likely';
  score: number;
  hypervisor: string | null;
  container: boolean;
  remoteSession: { own: boolean; others: number; evidence: string[] };
  signals: VmSignal[];
}

/** A remote session seen during the exam (inbound remote-access connection or network login). */
export interface RemoteConnection {
  key: string;
  kind: 'ssh' | 'rdp' | 'vnc' | 'teamviewer' | 'anydesk' | 'rustdesk' | 'login';
  via: 'tcp' | 'utmp';
  /** peer address and local port, or user, terminal and host */
  detail: string;
}

export interface MonitorEventMap {
  'monitor.started': { monitors: string[]; platform: string; sources: Record<string, string> };
  'monitor.stopped': { monitors: string[]; stats: Record<string, unknown> };
  'monitor.source_unavailable': { monitor: string; source: string; reason: string };
  'monitor.source_error': { monitor: string; error: string; count: number };

  'monitor.foreground.away': { window: WindowInfo | null; reason: 'other-window' | 'no-focus' };
  'monitor.foreground.changed': { window: WindowInfo | null; previous: WindowInfo | null; awayMs: number };
  'monitor.foreground.back': { durationMs: number; windows: { window: WindowInfo | null; ms: number }[]; atStop?: boolean; truncated?: number };

  'monitor.process.found': ProcessFact & DenyHit & { phase: 'preflight' | 'exam' };
  'monitor.process.terminated': ProcessFact & DenyHit & { signal: string; ms: number };
  'monitor.process.terminate_failed': ProcessFact & DenyHit & { error: string };
  'monitor.process.exited': ProcessFact & DenyHit & { runningMs: number };

  'monitor.vm.signal': VmSignal;
  'monitor.vm.summary': Omit<VmReport, 'signals'> & { signals: number };

  'monitor.display.snapshot': DisplaySummary;
  'monitor.display.changed': DisplaySummary & { before: DisplaySummary; added: string[]; removed: string[] };

  'monitor.device.snapshot': { hid: HidDeviceInfo[]; audio: AudioDeviceInfo[]; sources: Record<string, string> };
  'monitor.device.added': { device: DeviceInfo; flagged: boolean; reason: string };
  'monitor.device.removed': { device: DeviceInfo; flagged: boolean; reason: string };
  'monitor.device.changed': { device: DeviceInfo; before: DeviceInfo; flagged: boolean; reason: string };

  'monitor.remote.connected': { connection: RemoteConnection; atStart?: boolean };
  'monitor.remote.ended': { connection: RemoteConnection; durationMs: number };

  'monitor.clipboard.cleared': { at: 'start' | 'end' | 'blocked-paste'; ok: boolean; error?: string };
  'monitor.clipboard.outside_copy': { length: number; sha256: string; preview: string; copiedWhileIn: WindowInfo | null };
  'monitor.clipboard.paste_blocked': { length: number; sha256: string; preview: string };
  'monitor.clipboard.paste_outside': { length: number; sha256: string; preview: string };
}

export type MonitorEventType = keyof MonitorEventMap;

/** Where monitors put their events: `ctx.log.append` in a session, a printer in `kuzet monitor`. */
export type Emit = <K extends MonitorEventType>(type: K, data: MonitorEventMap[K]) => void;
