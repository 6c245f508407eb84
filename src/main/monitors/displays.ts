import type { DisplayInfo, DisplaySummary, Emit } from './events.js';
import { LineWatcher, Poller, cLocaleEnv, errMsg, hasTool, run } from './util.js';
import { SourceUnavailable } from './foreground.js';
import { X11Connection, parseDisplay } from './x11.js';

/** Where the list of active displays comes from (xrandr, or the Electron shell's `screen` through `electronDisplaySource`). */
export interface DisplaySource {
  readonly name: string;
  list(): Promise<DisplayInfo[]>;
  /** Calls back when the OS reports a display change (then the poll is only a safety net). */
  watch?(onChange: () => void): boolean;
  close?(): void;
}

const VIRTUAL_NAME = /^(virtual|dummy|none|xwayland|vnc|screen$|spacedesk|meta-)/i;
const INTERNAL_NAME = /^(edp|lvds|dsi)/i;

/**
 * Parses `xrandr --current` (which reads the current state without probing the connectors again, unlike
 * `xrandr --query`, which can take a second and make screens flicker). Only active outputs are displays.
 */
export function parseXrandr(stdout: string): DisplayInfo[] {
  const out: DisplayInfo[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) connected( primary)? (\d+)x(\d+)\+(-?\d+)\+(-?\d+)(.*)$/.exec(line);
    if (!m) continue;
    const mm = /(\d+)mm x (\d+)mm\s*$/.exec(m[7]!);
    const name = m[1]!;
    const widthMm = mm ? Number(mm[1]) : 0;
    const heightMm = mm ? Number(mm[2]) : 0;
    out.push({
      name, primary: !!m[2],
      width: Number(m[3]), height: Number(m[4]), x: Number(m[5]), y: Number(m[6]),
      widthMm, heightMm,
      internal: INTERNAL_NAME.test(name),
      virtual: VIRTUAL_NAME.test(name) ? `output "${name}" belongs to a virtual or dummy display driver`
        : widthMm === 0 && heightMm === 0 ? 'reports no physical size (no EDID): a virtual display, a dummy plug or a capture device' : null,
    });
  }
  return out;
}

export function summarize(displays: DisplayInfo[]): DisplaySummary {
  const groups = new Map<string, string[]>();
  for (const d of displays) {
    const k = `${d.x},${d.y},${d.width}x${d.height}`;
    groups.set(k, [...(groups.get(k) ?? []), d.name]);
  }
  return {
    count: displays.length,
    displays,
    mirrored: [...groups.values()].filter((g) => g.length > 1),
    virtual: displays.filter((d) => d.virtual !== null).map((d) => d.name),
  };
}

export class XrandrSource implements DisplaySource {
  readonly name = 'xrandr';
  private watcher: LineWatcher | null = null;
  private x: X11Connection | null = null;
  private closed = false;
  /** How display changes are noticed: 'x11-randr' (own X connection), 'xev', or null (the poll alone). */
  watching: 'x11-randr' | 'xev' | null = null;
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  /**
   * RandR change notifications on the monitors' own X connection (no process); `xev -root -event randr` if that
   * fails. Either way a display change costs one xrandr call, not a poll.
   */
  watch(onChange: () => void): boolean {
    if (!parseDisplay(this.env.DISPLAY) && !hasTool('xev')) return false;
    void (async () => {
      try {
        const c = await X11Connection.connect({ env: this.env });
        const codes = await c.selectRandrChanges();
        if (!codes) { c.close(); throw new Error('no RandR'); }
        if (this.closed) { c.close(); return; }
        c.on('event', (ev) => { if (codes.includes(ev[0]! & 0x7f)) onChange(); });
        this.x = c;
        this.watching = 'x11-randr';
      } catch {
        if (this.closed || !hasTool('xev')) return;
        this.watcher = new LineWatcher('xev', ['-root', '-event', 'randr'], (line) => { if (/^RR\w*Notify/.test(line)) onChange(); }, { env: this.env, maxRestarts: 3 });
        this.watcher.start();
        this.watching = 'xev';
      }
    })();
    return true;
  }

  close(): void {
    this.closed = true;
    this.watcher?.stop();
    this.x?.close();
  }
  async list(): Promise<DisplayInfo[]> {
    const r = await run('xrandr', ['--current'], { env: cLocaleEnv(this.env), timeoutMs: 5000 });
    if (!r.ok) {
      if (r.missing) throw new SourceUnavailable('xrandr is not installed (Debian: apt-get install x11-xserver-utils)');
      if (/can't open display|cannot open display/i.test(r.stderr + r.error)) throw new SourceUnavailable(`no X display (DISPLAY=${this.env.DISPLAY ?? 'unset'})`);
      throw new Error(r.error);
    }
    return parseXrandr(r.stdout);
  }
}

/** The shape of Electron's `screen.getAllDisplays()` entries that we use (no electron import here). */
export interface ElectronDisplayLike {
  id: number;
  label?: string;
  bounds: { x: number; y: number; width: number; height: number };
  internal?: boolean;
}

/** For the shell: wraps Electron's screen API (works on every OS, and sees what the kiosk window sees). */
export function electronDisplaySource(getAll: () => ElectronDisplayLike[], primaryId: () => number): DisplaySource {
  return {
    name: 'electron-screen',
    list: async () => getAll().map((d) => {
      const name = d.label || `display-${d.id}`;
      return {
        name, primary: d.id === primaryId(), ...d.bounds, widthMm: 0, heightMm: 0, internal: d.internal ?? null,
        virtual: VIRTUAL_NAME.test(name) || /virtual|spacedesk|dummy|parsec|idd/i.test(name) ? `display "${name}" looks like a virtual display driver` : null,
      };
    }),
  };
}

export function defaultDisplaySource(env: NodeJS.ProcessEnv = process.env): DisplaySource {
  if (process.platform === 'linux') {
    if (!env.DISPLAY) return { name: 'none', list: async () => { throw new SourceUnavailable(env.WAYLAND_DISPLAY ? 'Wayland: displays are read by the Electron shell' : 'no X display (DISPLAY is not set)'); } };
    return new XrandrSource(env);
  }
  return { name: 'none', list: async () => { throw new SourceUnavailable('headless display listing is only implemented for X11; the Electron shell passes electronDisplaySource()'); } };
}

function sig(s: DisplaySummary): string {
  return JSON.stringify(s.displays.map((d) => [d.name, d.x, d.y, d.width, d.height, d.primary]).sort());
}

/**
 * Snapshot of the displays at start (`monitor.display.snapshot`: count, mirroring, virtual displays) and a
 * `monitor.display.changed` event with before/after whenever a display is added, removed, moved or mirrored.
 */
export class DisplayMonitor {
  private readonly poller: Poller;
  last: DisplaySummary | null = null;
  private unavailable: string | null = null;
  private errors = 0;

  constructor(private readonly o: { emit: Emit; source: DisplaySource; pollMs: number }) {
    this.poller = new Poller(async () => { await this.check(); }, o.pollMs, (e) => this.onError(e));
  }

  start(): void {
    // With change notifications the poll is only a safety net.
    if (this.o.source.watch?.(() => this.poller.kick())) this.poller.everyMs = Math.max(this.o.pollMs, 30_000);
    this.poller.start();
  }

  async stop(): Promise<void> {
    await this.poller.stop();
    this.o.source.close?.();
  }
  stats() { return { source: this.o.source.name, checks: this.poller.runs, count: this.last?.count ?? null, errors: this.errors, unavailable: this.unavailable }; }

  private onError(e: unknown): void {
    if (e instanceof SourceUnavailable) {
      if (this.unavailable !== e.message) this.o.emit('monitor.source_unavailable', { monitor: 'display', source: this.o.source.name, reason: e.message });
      this.unavailable = e.message;
      return;
    }
    this.errors++;
    if (this.errors === 1 || this.errors % 50 === 0) this.o.emit('monitor.source_error', { monitor: 'display', error: errMsg(e), count: this.errors });
  }

  async check(): Promise<DisplaySummary> {
    const now = summarize(await this.o.source.list());
    this.unavailable = null;
    if (this.last === null) this.o.emit('monitor.display.snapshot', now);
    else if (sig(now) !== sig(this.last)) {
      const before = this.last;
      const names = (s: DisplaySummary) => new Set(s.displays.map((d) => d.name));
      this.o.emit('monitor.display.changed', {
        ...now, before,
        added: [...names(now)].filter((n) => !names(before).has(n)),
        removed: [...names(before)].filter((n) => !names(now).has(n)),
      });
    }
    this.last = now;
    return now;
  }
}
