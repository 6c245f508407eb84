import { EventEmitter } from 'node:events';
import { readFile, readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Emit, WindowInfo } from './events.js';
import { LineWatcher, Poller, cLocaleEnv, errMsg, hasTool, run } from './util.js';
import { BAD_WINDOW, PROPERTY_CHANGE_MASK, PROPERTY_NOTIFY, X11ConnectError, X11Connection, X11Error, propertyText } from './x11.js';

/** Thrown by a source that cannot tell the foreground window at all (no display, no window manager, Wayland). */
export class SourceUnavailable extends Error {}

/**
 * Where the foreground window comes from. `read` returns the active window, or null when no window has the focus.
 * `maxAgeMs` lets a source answer from its cache when nothing changed. `watch`, when the source can, calls back as
 * soon as the OS reports a focus change, so the monitor reacts without waiting for the next poll.
 */
export interface ForegroundSource {
  readonly name: string;
  read(opts: { maxAgeMs: number }): Promise<WindowInfo | null>;
  watch?(onChange: () => void): void;
  close?(): void;
}

// ---------------------------------------------------------------------------------------------------------------
// X11: the same tools get-windows uses (xprop), but asking only for four properties (get-windows prints every
// property, including the window icon as ASCII art, and runs xwininfo too: ≈60 ms of CPU a call here), and
// listening to `xprop -root -spy _NET_ACTIVE_WINDOW` so a focus change costs one lookup instead of a poll.

const WINDOW_PROPS = ['_NET_WM_PID', 'WM_CLASS', '_NET_WM_NAME', 'WM_NAME'];

/** Decodes one xprop string value: backslash escapes and octal-escaped UTF-8 bytes. */
export function decodeXpropString(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      const oct = /^[0-7]{3}/.exec(s.slice(i + 1));
      if (oct) { bytes.push(parseInt(oct[0], 8)); i += 3; continue; }
      const n = s[++i]!;
      const map: Record<string, string> = { n: '\n', t: '\t', r: '\r' };
      bytes.push(...Buffer.from(map[n] ?? n, 'utf8'));
      continue;
    }
    bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

export function quotedStrings(value: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value)) !== null) out.push(decodeXpropString(m[1]!));
  return out;
}

/** Parses `xprop -id W PROPS…` output into property name → raw value ("not found" properties are left out). */
export function parseXpropProps(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z_a-z0-9]+)(?:\([A-Z_0-9]+\))?\s*(=|:)\s?(.*)$/.exec(line);
    if (!m || /not found\.?$/.test(line) || /no such atom/.test(line)) continue;
    out[m[1]!] = m[3]!.trim();
  }
  return out;
}

/** Parses `_NET_ACTIVE_WINDOW(WINDOW): window id # 0x1a00003` → "0x1a00003"; 0x0 → null; not published → undefined. */
export function parseActiveWindowLine(line: string): string | null | undefined {
  const m = /window id # (0x[0-9a-fA-F]+)/.exec(line);
  if (!m) return undefined;
  return parseInt(m[1]!, 16) === 0 ? null : m[1]!.toLowerCase();
}

async function procOwner(pid: number): Promise<{ name: string | null; path: string | null }> {
  const [path, comm] = await Promise.all([
    readlink(`/proc/${pid}/exe`).catch(() => null),
    readFile(`/proc/${pid}/comm`, 'utf8').then((s) => s.trim()).catch(() => null),
  ]);
  return { path, name: path ? basename(path) : comm };
}

export function windowFromXprop(id: string, props: Record<string, string>, owner: { name: string | null; path: string | null } | null): WindowInfo {
  const pidN = props._NET_WM_PID ? parseInt(props._NET_WM_PID, 10) : NaN;
  const classes = props.WM_CLASS ? quotedStrings(props.WM_CLASS) : [];
  const title = props._NET_WM_NAME ? quotedStrings(props._NET_WM_NAME)[0] ?? null : props.WM_NAME ? quotedStrings(props.WM_NAME)[0] ?? null : null;
  return {
    id,
    title,
    classes,
    owner: {
      name: owner?.name ?? classes.at(-1) ?? '(unknown)',
      pid: Number.isFinite(pidN) ? pidN : null,
      path: owner?.path ?? null,
    },
  };
}

export interface X11SourceOptions {
  /** Re-ask the root window (not just trust the spy) this often. */
  verifyMs?: number;
  env?: NodeJS.ProcessEnv;
}

export class X11ForegroundSource implements ForegroundSource {
  readonly name = 'x11-xprop';
  private spy: LineWatcher | null = null;
  private spyId: string | null | undefined = undefined;
  private lastRootCheck = 0;
  private cache: { id: string; at: number; info: WindowInfo | null } | null = null;
  spawns = 0;

  constructor(private readonly opts: X11SourceOptions = {}) {}

  watch(onChange: () => void): void {
    this.spy = new LineWatcher('xprop', ['-root', '-spy', '_NET_ACTIVE_WINDOW'], (line) => {
      this.spyId = parseActiveWindowLine(line);
      onChange();
    }, { env: this.opts.env });
    this.spy.start();
  }

  close(): void {
    this.spy?.stop();
    this.spy = null;
  }

  private async rootActive(): Promise<string | null> {
    this.spawns++;
    const r = await run('xprop', ['-root', '_NET_ACTIVE_WINDOW'], { env: this.opts.env, timeoutMs: 3000 });
    if (!r.ok) {
      if (r.missing) throw new SourceUnavailable('xprop is not installed (Debian: apt-get install x11-utils)');
      if (/unable to open display/i.test(r.stderr + r.error)) throw new SourceUnavailable(`no X display (DISPLAY=${(this.opts.env ?? process.env).DISPLAY ?? 'unset'})`);
      throw new Error(r.error);
    }
    const id = parseActiveWindowLine(r.stdout);
    if (id === undefined) throw new SourceUnavailable('no window manager publishes _NET_ACTIVE_WINDOW (start one, e.g. openbox)');
    return id;
  }

  async read({ maxAgeMs }: { maxAgeMs: number }): Promise<WindowInfo | null> {
    const now = performance.now();
    let id: string | null;
    if (this.spy?.alive && this.spyId !== undefined && now - this.lastRootCheck < (this.opts.verifyMs ?? 30_000)) {
      id = this.spyId;
    } else {
      id = await this.rootActive();
      this.lastRootCheck = performance.now();
    }
    if (id === null) return null;
    if (this.cache && this.cache.id === id && now - this.cache.at < maxAgeMs) return this.cache.info;
    this.spawns++;
    const r = await run('xprop', ['-id', id, ...WINDOW_PROPS], { env: cLocaleEnv(this.opts.env), timeoutMs: 3000 });
    let info: WindowInfo | null;
    if (!r.ok) {
      if (/BadWindow/i.test(r.stderr + r.error)) info = null; // the window closed between the focus event and the lookup
      else throw new Error(r.error);
    } else {
      const props = parseXpropProps(r.stdout);
      const pid = props._NET_WM_PID ? parseInt(props._NET_WM_PID, 10) : NaN;
      info = windowFromXprop(id, props, Number.isFinite(pid) ? await procOwner(pid) : null);
    }
    this.cache = { id, at: performance.now(), info };
    return info;
  }
}

/**
 * X11 without any helper program: the monitor's own connection to the X server (`x11.ts`). It selects
 * PropertyNotify on the root window (`_NET_ACTIVE_WINDOW` changes) and on the focused window (its title and
 * class), so a focus change or a new title in the same window (a browser tab) is reported at once, and a lookup
 * is five small requests answered in one round trip. No process is started, so the exam's event loop never
 * waits for a fork. If the server refuses our connection (an authorisation scheme other than
 * MIT-MAGIC-COOKIE-1), it falls back to the xprop source.
 */
export class X11NativeForegroundSource implements ForegroundSource {
  name = 'x11';
  private conn: X11Connection | null = null;
  private connecting: Promise<X11Connection> | null = null;
  private atoms: { active: number; pid: number; wmClass: number; netName: number; wmName: number; utf8: number; compound: number } | null = null;
  private cache: { id: number; at: number; info: WindowInfo | null; dirty: boolean } | null = null;
  private watched: number | null = null;
  private onChange: (() => void) | null = null;
  private fallback: X11ForegroundSource | null = null;
  private closed = false;
  /** Window lookups answered from the X server (not from the cache). */
  lookups = 0;

  constructor(private readonly opts: { env?: NodeJS.ProcessEnv } = {}) {}

  /** Requests sent over the current connection (for tests and the bench). */
  get requests(): number {
    return this.conn?.requests ?? 0;
  }

  get spawns(): number {
    return this.fallback?.spawns ?? 0;
  }

  watch(onChange: () => void): void {
    this.onChange = onChange;
    this.connection().catch(() => undefined); // read() reports why
  }

  close(): void {
    this.closed = true;
    this.conn?.close();
    this.conn = null;
    this.fallback?.close();
  }

  private connection(): Promise<X11Connection> {
    if (this.conn && !this.conn.closed) return Promise.resolve(this.conn);
    this.connecting ??= (async () => {
      try {
        const c = await X11Connection.connect({ env: this.opts.env });
        const [active, pid, wmClass, netName, wmName, utf8, compound] = await Promise.all(
          ['_NET_ACTIVE_WINDOW', '_NET_WM_PID', 'WM_CLASS', '_NET_WM_NAME', 'WM_NAME', 'UTF8_STRING', 'COMPOUND_TEXT'].map((n) => c.internAtom(n)));
        this.atoms = { active: active!, pid: pid!, wmClass: wmClass!, netName: netName!, wmName: wmName!, utf8: utf8!, compound: compound! };
        c.on('event', (ev) => this.onEvent(ev));
        c.on('xerror', () => undefined); // BadWindow for a window that closed before we selected on it
        c.on('close', () => {
          if (this.conn !== c) return;
          this.conn = null;
          this.watched = null;
          this.cache = null;
          if (!this.closed) this.onChange?.();
        });
        c.selectInput(c.root, PROPERTY_CHANGE_MASK);
        if (this.closed) c.close(); else this.conn = c;
        return c;
      } finally {
        this.connecting = null;
      }
    })();
    return this.connecting;
  }

  private onEvent(ev: Buffer): void {
    if ((ev[0]! & 0x7f) !== PROPERTY_NOTIFY || !this.atoms || !this.conn) return;
    const win = ev.readUInt32LE(4);
    const atom = ev.readUInt32LE(8);
    const a = this.atoms;
    if (win === this.conn.root) {
      if (atom === a.active) this.onChange?.();
    } else if (win === this.watched && (atom === a.netName || atom === a.wmName || atom === a.wmClass || atom === a.pid)) {
      if (this.cache?.id === win) this.cache.dirty = true;
      this.onChange?.();
    }
  }

  async read({ maxAgeMs }: { maxAgeMs: number }): Promise<WindowInfo | null> {
    if (this.fallback) return this.fallback.read({ maxAgeMs });
    let c: X11Connection;
    try {
      c = await this.connection();
    } catch (e) {
      if (e instanceof X11ConnectError) {
        if (e.reason === 'refused' && hasTool('xprop')) {
          this.fallback = new X11ForegroundSource({ env: this.opts.env });
          this.name = 'x11-xprop';
          if (this.onChange) this.fallback.watch(this.onChange);
          return this.fallback.read({ maxAgeMs });
        }
        throw new SourceUnavailable(e.message);
      }
      throw e;
    }
    const a = this.atoms!;
    const root = await c.getProperty(c.root, a.active);
    if (!root) throw new SourceUnavailable('no window manager publishes _NET_ACTIVE_WINDOW (start one, e.g. openbox)');
    const id = root.format === 32 && root.value.length >= 4 ? root.value.readUInt32LE(0) : 0;
    if (id === 0) return null;
    if (this.watched !== id) {
      if (this.watched !== null) c.selectInput(this.watched, 0);
      c.selectInput(id, PROPERTY_CHANGE_MASK);
      this.watched = id;
    }
    const now = performance.now();
    if (this.cache && this.cache.id === id && !this.cache.dirty && now - this.cache.at < maxAgeMs) return this.cache.info;
    this.lookups++;
    let info: WindowInfo | null;
    try {
      const [pidP, clsP, netP, nameP] = await Promise.all([a.pid, a.wmClass, a.netName, a.wmName].map((p) => c.getProperty(id, p, { maxBytes: 4096 })));
      const pid = pidP && pidP.format === 32 && pidP.value.length >= 4 ? pidP.value.readUInt32LE(0) : null;
      const classes = (propertyText(clsP ?? null, a) ?? '').split('\0').filter((x) => x.length > 0);
      const title = propertyText(netP ?? null, a) ?? propertyText(nameP ?? null, a);
      const owner = pid !== null ? await procOwner(pid) : null;
      info = { id: `0x${id.toString(16)}`, title, classes, owner: { name: owner?.name ?? classes.at(-1) ?? '(unknown)', pid, path: owner?.path ?? null } };
    } catch (e) {
      if (e instanceof X11Error && e.code === BAD_WINDOW) info = null; // closed between the focus change and the lookup
      else throw e;
    }
    this.cache = { id, at: performance.now(), info, dirty: false };
    return info;
  }
}

/** get-windows (Windows: native call; macOS: needs the screen-recording permission for titles). */
export class GetWindowsSource implements ForegroundSource {
  readonly name = 'get-windows';
  async read(): Promise<WindowInfo | null> {
    const { activeWindow } = await import('get-windows');
    let w: Awaited<ReturnType<typeof activeWindow>>;
    try {
      w = await activeWindow({ accessibilityPermission: false, screenRecordingPermission: true });
    } catch (e) {
      // get-windows rejects on Linux for a window without _NET_WM_PID; report what we can.
      throw new Error(`get-windows: ${errMsg(e)}`, { cause: e });
    }
    if (!w) return null;
    const bundle = (w.owner as { bundleId?: string }).bundleId;
    return {
      id: String(w.id),
      title: w.title ?? null,
      classes: bundle ? [bundle] : [],
      owner: { name: w.owner.name, pid: w.owner.processId ?? null, path: w.owner.path ?? null },
    };
  }
}

/** The real source for this machine: the X11 protocol on Linux/X11, get-windows on Windows and macOS. */
export function defaultForegroundSource(env: NodeJS.ProcessEnv = process.env): ForegroundSource {
  if (process.platform === 'win32' || process.platform === 'darwin') return new GetWindowsSource();
  if (!env.DISPLAY && env.WAYLAND_DISPLAY) {
    return {
      name: 'wayland',
      read: async () => {
        throw new SourceUnavailable('Wayland does not let other programs see the focused window; run the exam in an X11 session or a single-app kiosk compositor (cage)');
      },
    };
  }
  return new X11NativeForegroundSource({ env });
}

// ---------------------------------------------------------------------------------------------------------------

/** How the kiosk's own windows are recognised. Any one criterion matching makes a window "ours". */
export interface OursSpec {
  /** Owner process ids (the Electron main process owns its windows). The strongest criterion. */
  pids?: number[];
  /** Window titles: exact strings or patterns. Weak on its own (any program can copy a title). */
  titles?: (string | RegExp)[];
  /** X11 WM_CLASS / macOS bundle id / owner process name, case-insensitive. */
  classes?: string[];
  windowIds?: string[];
}

export function isOurs(w: WindowInfo, ours: OursSpec): boolean {
  if (w.owner.pid !== null && ours.pids?.includes(w.owner.pid)) return true;
  if (w.id && ours.windowIds?.includes(w.id)) return true;
  const cls = (ours.classes ?? []).map((c) => c.toLowerCase());
  if (cls.length && [...w.classes, w.owner.name].some((c) => cls.includes(c.toLowerCase()))) return true;
  if (w.title !== null) {
    for (const t of ours.titles ?? []) if (typeof t === 'string' ? t === w.title : t.test(w.title)) return true;
  }
  return false;
}

function sameWindow(a: WindowInfo | null, b: WindowInfo | null): boolean {
  if (a === null || b === null) return a === b;
  return a.id === b.id && a.title === b.title && a.owner.pid === b.owner.pid;
}

export interface ForegroundOptions {
  emit: Emit;
  source: ForegroundSource;
  ours: OursSpec;
  pollMs: number;
  /** No window focused for this long counts as away (focus passes through "none" for a moment on every switch). */
  noFocusGraceMs?: number;
  /** While away, re-read the foreign window's title at most this often (titles change as tabs change). */
  awayRefreshMs?: number;
  /** While the kiosk is in front, re-check its details at most this often. */
  homeRefreshMs?: number;
}

const MAX_SEGMENTS = 20;

/**
 * Reports every time the foreground window is not the kiosk: `monitor.foreground.away` (with the window's owner
 * process, path and title), `monitor.foreground.changed` when the student moves between foreign windows, and
 * `monitor.foreground.back` with the total duration and the windows visited. Emits 'away'/'back' for other monitors.
 */
export class ForegroundMonitor extends EventEmitter<{ away: [WindowInfo | null]; back: [number] }> {
  private readonly poller: Poller;
  state: 'unknown' | 'home' | 'away' = 'unknown';
  private awayStart = 0;
  private segStart = 0;
  private current: WindowInfo | null = null;
  private segments: { window: WindowInfo | null; ms: number }[] = [];
  private truncated = 0;
  private noFocusSince: number | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  private unavailable: string | null = null;
  private errors = 0;
  awayEpisodes = 0;

  constructor(private readonly o: ForegroundOptions) {
    super();
    this.poller = new Poller(() => this.tick(), o.pollMs, (e) => this.onError(e));
  }

  get currentWindow(): WindowInfo | null {
    return this.current;
  }

  start(): void {
    this.o.source.watch?.(() => this.poller.kick());
    this.poller.start();
  }

  async stop(): Promise<void> {
    await this.poller.stop();
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.o.source.close?.();
    if (this.state === 'away') this.goBack(true);
  }

  /** One reading now (used by tests and the first preflight check). */
  async checkNow(): Promise<void> {
    await this.tick();
  }

  stats() {
    return { source: this.o.source.name, state: this.state, reads: this.poller.runs, coalesced: this.poller.coalesced, errors: this.errors, awayEpisodes: this.awayEpisodes, unavailable: this.unavailable };
  }

  private onError(e: unknown): void {
    if (e instanceof SourceUnavailable) {
      if (this.unavailable !== e.message) {
        this.unavailable = e.message;
        this.o.emit('monitor.source_unavailable', { monitor: 'foreground', source: this.o.source.name, reason: e.message });
      }
      return;
    }
    this.errors++;
    if (this.errors === 1 || this.errors % 100 === 0) this.o.emit('monitor.source_error', { monitor: 'foreground', error: errMsg(e), count: this.errors });
  }

  private async tick(): Promise<void> {
    const w = await this.o.source.read({ maxAgeMs: this.state === 'away' ? (this.o.awayRefreshMs ?? 2000) : (this.o.homeRefreshMs ?? 30_000) });
    this.unavailable = null;
    const now = performance.now();
    if (w === null) {
      if (this.state === 'away') return; // passing between foreign windows; keep the current one
      this.noFocusSince ??= now;
      const grace = this.o.noFocusGraceMs ?? 800;
      if (now - this.noFocusSince >= grace) this.goAway(null, 'no-focus', this.noFocusSince);
      else if (!this.graceTimer) {
        this.graceTimer = setTimeout(() => { this.graceTimer = null; this.poller.kick(); }, grace - (now - this.noFocusSince) + 5);
      }
      return;
    }
    this.noFocusSince = null;
    if (isOurs(w, this.o.ours)) {
      if (this.state === 'away') this.goBack(false);
      this.state = 'home';
      this.current = w;
      return;
    }
    if (this.state !== 'away') { this.goAway(w, 'other-window', now); return; }
    if (!sameWindow(this.current, w)) {
      this.closeSegment(now);
      this.o.emit('monitor.foreground.changed', { window: w, previous: this.current, awayMs: Math.round(now - this.awayStart) });
      this.current = w;
    }
  }

  private goAway(w: WindowInfo | null, reason: 'other-window' | 'no-focus', since: number): void {
    this.state = 'away';
    this.awayEpisodes++;
    this.awayStart = since;
    this.segStart = since;
    this.segments = [];
    this.truncated = 0;
    this.current = w;
    this.o.emit('monitor.foreground.away', { window: w, reason });
    this.emit('away', w);
  }

  private closeSegment(now: number): void {
    if (this.segments.length < MAX_SEGMENTS) this.segments.push({ window: this.current, ms: Math.round(now - this.segStart) });
    else this.truncated++;
    this.segStart = now;
  }

  private goBack(atStop: boolean): void {
    const now = performance.now();
    this.closeSegment(now);
    const durationMs = Math.round(now - this.awayStart);
    this.state = atStop ? 'unknown' : 'home';
    this.o.emit('monitor.foreground.back', {
      durationMs,
      windows: this.segments,
      ...(atStop ? { atStop: true } : {}),
      ...(this.truncated ? { truncated: this.truncated } : {}),
    });
    this.emit('back', durationMs);
  }
}
