import type { AudioDeviceInfo, DeviceInfo, Emit, HidDeviceInfo } from './events.js';
import { LineWatcher, Poller, cLocaleEnv, errMsg, hasTool, run } from './util.js';
import { SourceUnavailable } from './foreground.js';
import { realFs, type FactFs } from './vm.js';

/** Raw HID interface as node-hid reports it. */
export interface RawHid {
  vendorId: number;
  productId: number;
  path?: string;
  serialNumber?: string;
  manufacturer?: string;
  product?: string;
  interface?: number;
  usagePage?: number;
  usage?: number;
}

export interface HidSource { readonly name: string; list(): Promise<RawHid[]> }
export interface AudioSource { readonly name: string; list(): Promise<AudioDeviceInfo[]>; watch?(onChange: () => void): void; close?(): void }

/** HID usage page/usage → what kind of device this interface is. */
export function hidKind(page?: number, usage?: number): string | null {
  if (page === 0x01) return ({ 2: 'mouse', 4: 'joystick', 5: 'gamepad', 6: 'keyboard', 7: 'keypad' } as Record<number, string>)[usage ?? -1] ?? null;
  if (page === 0x0b) return 'telephony (headset buttons)';
  if (page === 0x0c) return 'consumer control (media keys, headset buttons)';
  if (page === 0x0d) return 'digitizer (touch, pen)';
  return null;
}

/** Groups a device's interfaces (a keyboard often has three) into one physical device. */
export function groupHid(raw: RawHid[]): HidDeviceInfo[] {
  const by = new Map<string, HidDeviceInfo>();
  for (const r of raw) {
    const key = `${r.vendorId.toString(16).padStart(4, '0')}:${r.productId.toString(16).padStart(4, '0')}:${r.serialNumber ?? ''}`;
    let d = by.get(key);
    if (!d) {
      d = { key, vendorId: r.vendorId, productId: r.productId, product: r.product || null, manufacturer: r.manufacturer || null, serial: r.serialNumber || null, kinds: [], bus: r.path && /bluetooth|:0005:/i.test(r.path) ? 'bluetooth' : null, interfaces: 0 };
      by.set(key, d);
    }
    d.interfaces++;
    const k = hidKind(r.usagePage, r.usage);
    if (k && !d.kinds.includes(k)) d.kinds.push(k);
  }
  return [...by.values()].sort((a, b) => a.key.localeCompare(b.key));
}

export const nodeHidSource: HidSource = {
  name: 'node-hid',
  async list() {
    let mod: { devicesAsync(): Promise<RawHid[]> };
    try {
      const m = await import('node-hid') as unknown as { default?: typeof mod; devicesAsync?: typeof mod.devicesAsync };
      mod = (typeof m.devicesAsync === 'function' ? m : m.default) as typeof mod;
    } catch (e) {
      throw new SourceUnavailable(`node-hid could not load its native module: ${errMsg(e)}`);
    }
    return mod.devicesAsync();
  },
};

// ---------------------------------------------------------------------------------------------------------------
// Audio: PulseAudio / PipeWire through `pactl` (text output in the C locale: understood by every pactl version),
// else the ALSA card list.

export function portKind(port: string | null): string | null {
  if (!port) return null;
  const p = port.toLowerCase();
  if (/headset/.test(p)) return 'headset';
  if (/headphone/.test(p)) return 'headphones';
  if (/a2dp|handsfree|hfp|hsp/.test(p)) return 'bluetooth audio';
  if (/hdmi|displayport|iec958/.test(p)) return 'hdmi';
  if (/speaker/.test(p)) return 'speaker';
  if (/line/.test(p)) return 'line';
  if (/mic|input/.test(p)) return 'microphone';
  return 'other';
}

/** Parses `LC_ALL=C pactl list sinks` or `… list sources` (monitor sources of sinks are left out). */
export function parsePactlList(text: string): AudioDeviceInfo[] {
  const out: AudioDeviceInfo[] = [];
  const blocks = text.split(/^(?=(?:Sink|Source) #\d+)/m).filter((b) => /^(Sink|Source) #/.test(b));
  for (const b of blocks) {
    const direction = b.startsWith('Sink') ? 'output' : 'input';
    const field = (k: string) => new RegExp(`^\\s*${k}:\\s*(.*)$`, 'm').exec(b)?.[1]?.trim() ?? null;
    const prop = (k: string) => new RegExp(`^\\s*${k.replaceAll('.', '\\.')} = "(.*)"$`, 'm').exec(b)?.[1] ?? null;
    if (prop('device.class') === 'monitor') continue;
    const name = field('Name') ?? '?';
    const active = field('Active Port');
    const bus = prop('device.bus') ?? (/^bluez_/.test(name) ? 'bluetooth' : null);
    out.push({
      key: `${direction}:${name}`, direction, name, description: field('Description') ?? name, bus,
      formFactor: prop('device.form_factor'), activePort: active && active !== 'n/a' ? active : null,
      portKind: bus === 'bluetooth' && !active ? 'bluetooth audio' : portKind(active), via: 'pactl',
    });
  }
  return out;
}

/** Parses /proc/asound/cards: one entry per sound card (no port information). */
export function parseAsoundCards(text: string): AudioDeviceInfo[] {
  const out: AudioDeviceInfo[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(\d+) \[([^\]]+)\]: (\S+) - (.*)$/.exec(lines[i]!);
    if (!m) continue;
    const detail = (lines[i + 1] ?? '').trim();
    const usb = /usb/i.test(m[3]!) || /usb-/i.test(detail);
    out.push({
      key: `card:${m[2]!.trim()}:${m[4]!.trim()}`, direction: 'output', name: m[2]!.trim(), description: m[4]!.trim(),
      bus: usb ? 'usb' : /hda|pci/i.test(m[3]!) ? 'pci' : null, formFactor: /headset|headphone/i.test(m[4]!) ? 'headset' : null,
      activePort: null, portKind: null, via: 'alsa',
    });
  }
  return out;
}

export class PactlAudioSource implements AudioSource {
  readonly name = 'pactl';
  private watcher: LineWatcher | null = null;
  constructor(private readonly fs: FactFs = realFs, private readonly retryMs = 30_000) {}

  /** When pactl last failed (no sound server): it is tried again after `retryMs`, ALSA answers meanwhile. */
  private pactlFailedAt = -Infinity;
  pactlError: string | null = null;

  async list(): Promise<AudioDeviceInfo[]> {
    if (hasTool('pactl') && performance.now() - this.pactlFailedAt > this.retryMs) {
      const [sinks, sources] = await Promise.all([
        run('pactl', ['list', 'sinks'], { env: cLocaleEnv(), timeoutMs: 5000 }),
        run('pactl', ['list', 'sources'], { env: cLocaleEnv(), timeoutMs: 5000 }),
      ]);
      if (sinks.ok && sources.ok) {
        this.pactlError = null;
        this.startWatcher();
        return [...parsePactlList(sinks.stdout), ...parsePactlList(sources.stdout)];
      }
      this.pactlFailedAt = performance.now();
      this.pactlError = sinks.error ?? sources.error ?? 'pactl failed';
    }
    // No sound server (or no pactl): the kernel's card list still shows a USB headset.
    const cards = await this.fs.read('/proc/asound/cards');
    if (cards === null) return [];
    return /no soundcards/i.test(cards) ? [] : parseAsoundCards(cards);
  }

  private onChange: (() => void) | null = null;

  /**
   * `pactl subscribe` tells of every new/removed/changed sink, source and card: no polling needed. It starts after
   * the first `pactl list` that worked, so a machine without a sound server does not start (and restart) it.
   */
  watch(onChange: () => void): void {
    this.onChange = onChange;
  }

  private startWatcher(): void {
    if (this.watcher || !this.onChange || !hasTool('pactl')) return;
    const onChange = this.onChange;
    this.watcher = new LineWatcher('pactl', ['subscribe'], (line) => {
      if (/on (sink|source|card) #/.test(line) && !/on (sink|source)-(input|output)/.test(line)) onChange();
    }, { env: cLocaleEnv(), maxRestarts: 3 });
    this.watcher.start();
  }

  get watching(): boolean {
    return this.watcher?.alive ?? false;
  }

  close(): void {
    this.onChange = null;
    this.watcher?.stop();
  }
}

// ---------------------------------------------------------------------------------------------------------------

function judgeAdded(d: DeviceInfo): { flagged: boolean; reason: string } {
  if (d.type === 'hid') {
    if (d.kinds.some((k) => k === 'keyboard' || k === 'keypad')) return { flagged: true, reason: `a new keyboard was connected: ${d.product ?? d.key}` };
    if (d.kinds.some((k) => k.startsWith('telephony'))) return { flagged: true, reason: `headset controls appeared: ${d.product ?? d.key} (a headset was connected)` };
    if (d.bus === 'bluetooth') return { flagged: true, reason: `a Bluetooth input device was connected: ${d.product ?? d.key}` };
    return { flagged: false, reason: `a new ${d.kinds[0] ?? 'HID'} device was connected: ${d.product ?? d.key}` };
  }
  if (d.direction === 'output') return { flagged: true, reason: `a new audio output appeared: ${d.description}${d.bus === 'bluetooth' ? ' (Bluetooth)' : ''}${d.portKind ? ` [${d.portKind}]` : ''} — headphones or a headset` };
  const headset = d.bus === 'bluetooth' || d.bus === 'usb' || /headset/.test(d.formFactor ?? '') || d.portKind === 'headset';
  return { flagged: headset, reason: `a new microphone appeared: ${d.description}${headset ? ' (part of a headset)' : ''}` };
}

function judgeChanged(before: DeviceInfo, after: DeviceInfo): { flagged: boolean; reason: string } | null {
  if (before.type !== 'audio' || after.type !== 'audio' || before.activePort === after.activePort) return null;
  const hp = after.portKind === 'headphones' || after.portKind === 'headset';
  return { flagged: hp, reason: hp ? `headphones plugged into ${after.description} (port ${after.activePort})` : `${after.description} switched from ${before.activePort ?? 'none'} to ${after.activePort ?? 'none'}` };
}

/**
 * HID and audio devices: a snapshot at start (`monitor.device.snapshot`), then every arrival, removal and
 * audio-port switch is an event; a new keyboard, a headset or headphones, and Bluetooth audio are flagged.
 */
export class DeviceMonitor {
  private readonly poller: Poller;
  private last: Map<string, DeviceInfo> | null = null;
  private lastAudio: AudioDeviceInfo[] = [];
  private audioDirty = true;
  private unavailable = new Map<string, string>();
  private errors = 0;
  private polls = 0;

  constructor(private readonly o: { emit: Emit; hid: HidSource | null; audio: AudioSource | null; pollMs: number; audioEvery?: number }) {
    this.poller = new Poller(() => this.check().then(() => undefined), o.pollMs, (e) => {
      this.errors++;
      if (this.errors === 1 || this.errors % 50 === 0) o.emit('monitor.source_error', { monitor: 'device', error: errMsg(e), count: this.errors });
    });
  }

  start(): void {
    this.o.audio?.watch?.(() => { this.audioDirty = true; this.poller.kick(); });
    this.poller.start();
  }

  async stop(): Promise<void> {
    await this.poller.stop();
    this.o.audio?.close?.();
  }

  stats() {
    return { hid: this.o.hid?.name ?? 'off', audio: this.o.audio?.name ?? 'off', polls: this.polls, devices: this.last?.size ?? null, errors: this.errors, unavailable: Object.fromEntries(this.unavailable) };
  }

  private async read<T>(what: 'hid' | 'audio', src: { name: string; list(): Promise<T[]> } | null): Promise<T[] | null> {
    if (!src) return [];
    try {
      const r = await src.list();
      this.unavailable.delete(what);
      return r;
    } catch (e) {
      const msg = errMsg(e);
      if (this.unavailable.get(what) !== msg) this.o.emit('monitor.source_unavailable', { monitor: 'device', source: src.name, reason: msg });
      this.unavailable.set(what, msg);
      return null;
    }
  }

  /** One check; returns the current devices. */
  async check(): Promise<DeviceInfo[]> {
    this.polls++;
    const hidRaw = await this.read('hid', this.o.hid);
    // Audio is re-read when pactl said something changed, or on every `audioEvery`-th poll as a safety net.
    const watching = (this.o.audio as PactlAudioSource | null)?.watching ?? false;
    if (!watching || this.audioDirty || this.polls % (this.o.audioEvery ?? 15) === 0) {
      this.audioDirty = false;
      const a = await this.read('audio', this.o.audio);
      if (a) this.lastAudio = a;
    }
    const now = new Map<string, DeviceInfo>();
    for (const h of groupHid(hidRaw ?? [])) now.set(`hid:${h.key}`, { type: 'hid', ...h });
    for (const a of this.lastAudio) now.set(`audio:${a.key}`, { type: 'audio', ...a });
    if (hidRaw === null && this.last) for (const [k, v] of this.last) if (v.type === 'hid') now.set(k, v); // keep last known on a failed read
    if (this.last === null) {
      this.o.emit('monitor.device.snapshot', {
        hid: [...now.values()].filter((d): d is DeviceInfo & { type: 'hid' } => d.type === 'hid').map(({ type: _t, ...h }) => h),
        audio: [...now.values()].filter((d): d is DeviceInfo & { type: 'audio' } => d.type === 'audio').map(({ type: _t, ...a }) => a),
        sources: { hid: this.o.hid?.name ?? 'off', audio: this.o.audio?.name ?? 'off' },
      });
    } else {
      for (const [k, d] of now) {
        const before = this.last.get(k);
        if (!before) this.o.emit('monitor.device.added', { device: d, ...judgeAdded(d) });
        else { const c = judgeChanged(before, d); if (c) this.o.emit('monitor.device.changed', { device: d, before, ...c }); }
      }
      for (const [k, d] of this.last) if (!now.has(k)) this.o.emit('monitor.device.removed', { device: d, flagged: false, reason: `${d.type === 'hid' ? (d.product ?? d.key) : d.description} was disconnected` });
    }
    this.last = now;
    return [...now.values()];
  }
}
