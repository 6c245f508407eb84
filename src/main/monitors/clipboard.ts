import { spawn } from 'node:child_process';
import type { Emit, WindowInfo } from './events.js';
import { errMsg, preview, run, sha256 } from './util.js';
import { SourceUnavailable } from './foreground.js';
import { PROPERTY_CHANGE_MASK, PROPERTY_NOTIFY, SELECTION_CLEAR, SELECTION_NOTIFY, SELECTION_REQUEST, X11ConnectError, X11Connection } from './x11.js';

/**
 * The system clipboard (text). The Electron shell passes one backed by Electron's `clipboard` module; headless,
 * X11 uses xclip (or xsel).
 */
export interface ClipboardSource {
  readonly name: string;
  readText(): Promise<string>;
  clear(): Promise<void>;
  /** Lets go of the OS resources (an X connection); called after the final clear. */
  close?(): void;
}

export class XclipSource implements ClipboardSource {
  readonly name = 'xclip';
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  async readText(): Promise<string> {
    const r = await run('xclip', ['-selection', 'clipboard', '-o'], { env: this.env, timeoutMs: 3000 });
    if (r.ok) return r.stdout;
    if (r.missing) throw new SourceUnavailable('xclip is not installed (Debian: apt-get install xclip)');
    if (/Can't open display/i.test(r.stderr + r.error)) throw new SourceUnavailable('no X display for the clipboard');
    return ''; // "target STRING not available": the clipboard is empty or holds no text
  }

  /** Takes the clipboard over with empty content (xclip stays as its owner until another program copies). */
  clear(): Promise<void> {
    return new Promise((resolve, reject) => {
      // stdout/stderr ignored: the background xclip would otherwise hold our pipes open.
      const c = spawn('xclip', ['-selection', 'clipboard', '-i'], { env: this.env, stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      c.on('error', (e) => reject((e as NodeJS.ErrnoException).code === 'ENOENT' ? new SourceUnavailable('xclip is not installed') : e));
      // xclip forks into the background once it owns the selection; the foreground process then exits 0.
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`xclip exited with code ${code}`))));
      c.stdin!.end('');
    });
  }
}

/**
 * The X11 CLIPBOARD over the monitors' own X connection (`x11.ts`): no xclip process per read. Reading asks the
 * owner for UTF8_STRING (then STRING) into a property of a hidden window, including the INCR transfer large
 * copies use. Clearing makes this connection the owner of an empty clipboard, as xclip does, until another
 * program copies; the content is gone when Kuzet exits.
 */
export class X11ClipboardSource implements ClipboardSource {
  readonly name = 'x11';
  private conn: X11Connection | null = null;
  private connecting: Promise<X11Connection> | null = null;
  private win = 0;
  private a = { clipboard: 0, utf8: 0, string: 0, text: 0, targets: 0, incr: 0, atom: 0, prop: 0 };
  private owning = false;
  private queue: Promise<unknown> = Promise.resolve();
  private waiters: ((ev: Buffer) => void)[] = [];

  constructor(private readonly env: NodeJS.ProcessEnv = process.env, private readonly timeoutMs = 2000) {}

  private connection(): Promise<X11Connection> {
    if (this.conn && !this.conn.closed) return Promise.resolve(this.conn);
    this.connecting ??= (async () => {
      try {
        const c = await X11Connection.connect({ env: this.env }).catch((e: unknown) => {
          throw e instanceof X11ConnectError ? new SourceUnavailable(`clipboard: ${e.message}`) : e;
        });
        const names = ['CLIPBOARD', 'UTF8_STRING', 'STRING', 'TEXT', 'TARGETS', 'INCR', 'ATOM', 'KUZET_CLIPBOARD'] as const;
        const ids = await Promise.all(names.map((n) => c.internAtom(n)));
        const [clipboard, utf8, string, text, targets, incr, atom, prop] = ids as [number, number, number, number, number, number, number, number];
        this.a = { clipboard, utf8, string, text, targets, incr, atom, prop };
        this.win = c.createHiddenWindow(PROPERTY_CHANGE_MASK);
        c.on('event', (ev) => this.onEvent(c, ev));
        c.on('xerror', () => undefined); // a requestor window that went away
        c.on('close', () => { if (this.conn === c) { this.conn = null; this.owning = false; } });
        await c.sync();
        this.conn = c;
        return c;
      } finally {
        this.connecting = null;
      }
    })();
    return this.connecting;
  }

  private onEvent(c: X11Connection, ev: Buffer): void {
    const code = ev[0]! & 0x7f;
    if (code === SELECTION_REQUEST) return this.answer(c, ev);
    if (code === SELECTION_CLEAR && ev.readUInt32LE(12) === this.a.clipboard) { this.owning = false; return; }
    for (const w of [...this.waiters]) w(ev);
  }

  /** Another program (or we ourselves) asks for the empty clipboard we own. */
  private answer(c: X11Connection, ev: Buffer): void {
    const time = ev.readUInt32LE(4), requestor = ev.readUInt32LE(12), selection = ev.readUInt32LE(16), target = ev.readUInt32LE(20);
    let property = ev.readUInt32LE(24) || target;
    if (!this.owning || selection !== this.a.clipboard) property = 0;
    else if (target === this.a.targets) {
      const list = Buffer.alloc(16);
      [this.a.targets, this.a.utf8, this.a.string, this.a.text].forEach((t, i) => list.writeUInt32LE(t, i * 4));
      c.changeProperty(requestor, property, this.a.atom, 32, list);
    } else if (target === this.a.utf8 || target === this.a.string || target === this.a.text) {
      c.changeProperty(requestor, property, target === this.a.text ? this.a.string : target, 8, Buffer.alloc(0));
    } else property = 0;
    const notify = Buffer.alloc(32);
    notify[0] = SELECTION_NOTIFY;
    notify.writeUInt32LE(time, 4);
    notify.writeUInt32LE(requestor, 8);
    notify.writeUInt32LE(selection, 12);
    notify.writeUInt32LE(target, 16);
    notify.writeUInt32LE(property, 20);
    c.sendEvent(requestor, notify);
  }

  /** Waits for the first event `match` accepts; null after the timeout. */
  private next(match: (ev: Buffer) => boolean): Promise<Buffer | null> {
    return new Promise((resolve) => {
      const w = (ev: Buffer) => { if (match(ev)) { done(); resolve(ev); } };
      const t = setTimeout(() => { done(); resolve(null); }, this.timeoutMs);
      const done = () => { clearTimeout(t); this.waiters = this.waiters.filter((x) => x !== w); };
      this.waiters.push(w);
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  readText(): Promise<string> {
    return this.serial(async () => {
      const c = await this.connection();
      // A round trip first: a SelectionClear the server sent before it (another program took the clipboard) is
      // then already handled, so `owning` is current.
      await c.sync();
      if (this.owning) return '';
      for (const target of [this.a.utf8, this.a.string]) {
        const got = this.next((ev) => (ev[0]! & 0x7f) === SELECTION_NOTIFY && ev.readUInt32LE(8) === this.win);
        c.convertSelection(this.win, this.a.clipboard, target, this.a.prop);
        const ev = await got;
        if (ev === null) throw new Error(`the program that owns the clipboard did not answer within ${this.timeoutMs} ms`);
        if (ev.readUInt32LE(20) === 0) continue; // no owner, or no text in this form
        return this.fetch(c);
      }
      return '';
    });
  }

  private async fetch(c: X11Connection): Promise<string> {
    const newValue = () => this.next((ev) => (ev[0]! & 0x7f) === PROPERTY_NOTIFY && ev.readUInt32LE(4) === this.win && ev.readUInt32LE(8) === this.a.prop && ev[16] === 0);
    const first = await c.getProperty(this.win, this.a.prop, { delete: true, maxBytes: 4 << 20 });
    if (!first) return '';
    if (first.type !== this.a.incr) return first.value.toString(first.type === this.a.string ? 'latin1' : 'utf8');
    // INCR: the owner sends chunks; each one is announced by a new value and ended by an empty one.
    const chunks: Buffer[] = [];
    let type = 0;
    for (let total = 0; total < 16 << 20;) {
      const ev = await newValue();
      if (ev === null) throw new Error('the clipboard owner stopped in the middle of a large transfer');
      const p = await c.getProperty(this.win, this.a.prop, { delete: true, maxBytes: 4 << 20 });
      if (!p || p.value.length === 0) break;
      type = p.type;
      chunks.push(Buffer.from(p.value));
      total += p.value.length;
    }
    return Buffer.concat(chunks).toString(type === this.a.string ? 'latin1' : 'utf8');
  }

  clear(): Promise<void> {
    return this.serial(async () => {
      const c = await this.connection();
      this.owning = true;
      c.setSelectionOwner(this.win, this.a.clipboard);
      await c.sync();
    });
  }

  close(): void {
    this.conn?.close();
    this.conn = null;
  }
}

export function defaultClipboardSource(env: NodeJS.ProcessEnv = process.env): ClipboardSource | null {
  if (process.platform === 'linux' && env.DISPLAY) return new X11ClipboardSource(env);
  return null;
}

export type ClipboardPolicy = 'off' | 'clear' | 'isolate';

export interface PasteDecision { allow: boolean; reason: 'empty' | 'internal' | 'outside-blocked' | 'outside-allowed' | 'off' | 'unavailable' }

/**
 * Clipboard policy. `clear`: emptied at start and end. `isolate` (also): text that entered the clipboard from
 * outside the exam cannot be pasted in — the kiosk asks `checkPaste()` on every paste and blocks it when the
 * content was not copied inside the exam. Copies are attributed by the foreground monitor: what the clipboard
 * holds when the student comes back from another window was copied outside (`monitor.clipboard.outside_copy`).
 * Only a hash, the length and a short preview are logged, never the whole text.
 */
export class ClipboardMonitor {
  private readonly internal = new Set<string>();
  private lastHash: string | null = null;
  private unavailable: string | null = null;

  constructor(private readonly o: { emit: Emit; source: ClipboardSource | null; policy: ClipboardPolicy; previewChars: number }) {}

  stats() {
    return { source: this.o.source?.name ?? 'none', policy: this.o.policy, internalCopies: this.internal.size, unavailable: this.unavailable };
  }

  async start(): Promise<void> {
    if (this.o.policy === 'off') return;
    if (!this.o.source) { this.markUnavailable('no clipboard access in this process (the kiosk shell provides it)'); return; }
    await this.clear('start');
  }

  async stop(): Promise<void> {
    if (this.o.policy === 'off' || !this.o.source) return;
    await this.clear('end');
    this.o.source.close?.();
  }

  private markUnavailable(reason: string): void {
    if (this.unavailable === reason) return;
    this.unavailable = reason;
    this.o.emit('monitor.source_unavailable', { monitor: 'clipboard', source: this.o.source?.name ?? 'none', reason });
  }

  private async clear(at: 'start' | 'end' | 'blocked-paste'): Promise<void> {
    try {
      await this.o.source!.clear();
      this.lastHash = sha256('');
      this.o.emit('monitor.clipboard.cleared', { at, ok: true });
    } catch (e) {
      if (e instanceof SourceUnavailable) this.markUnavailable(e.message);
      this.o.emit('monitor.clipboard.cleared', { at, ok: false, error: errMsg(e) });
    }
  }

  private async read(): Promise<string | null> {
    if (!this.o.source) return null;
    try { return await this.o.source.readText(); } catch (e) {
      this.markUnavailable(errMsg(e));
      return null;
    }
  }

  /** The kiosk calls this after a copy inside the exam: the current content may be pasted back. */
  async noteInternalCopy(text?: string): Promise<void> {
    const t = text ?? await this.read();
    if (t === null) return;
    const h = sha256(t);
    this.internal.add(h);
    this.lastHash = h;
  }

  /**
   * Called when the student returns to the kiosk (and usable any time): a clipboard that changed while another
   * window had the focus was filled outside the exam.
   */
  async checkAfterAway(copiedWhileIn: WindowInfo | null): Promise<void> {
    if (this.o.policy === 'off') return;
    const t = await this.read();
    if (t === null) return;
    const h = sha256(t);
    if (h === this.lastHash || t === '' || this.internal.has(h)) { this.lastHash = h; return; }
    this.lastHash = h;
    this.o.emit('monitor.clipboard.outside_copy', { length: t.length, sha256: h, preview: preview(t, this.o.previewChars), copiedWhileIn });
  }

  /** The kiosk asks before every paste. */
  async checkPaste(): Promise<PasteDecision> {
    if (this.o.policy === 'off') return { allow: true, reason: 'off' };
    const t = await this.read();
    if (t === null) return { allow: this.o.policy !== 'isolate', reason: 'unavailable' };
    if (t === '') return { allow: true, reason: 'empty' };
    const h = sha256(t);
    if (this.internal.has(h)) return { allow: true, reason: 'internal' };
    const ev = { length: t.length, sha256: h, preview: preview(t, this.o.previewChars) };
    if (this.o.policy === 'isolate') {
      this.o.emit('monitor.clipboard.paste_blocked', ev);
      await this.clear('blocked-paste');
      return { allow: false, reason: 'outside-blocked' };
    }
    this.o.emit('monitor.clipboard.paste_outside', ev);
    return { allow: true, reason: 'outside-allowed' };
  }
}
