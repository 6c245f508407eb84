/**
 * A small X11 protocol client in plain JavaScript: just what the monitors need (atoms, window properties,
 * property-change events, RandR change notifications, reading a selection). It talks to the X server over its
 * socket, so watching the focused window costs a few bytes per change instead of starting `xprop` — and starting
 * any program from the exam's process means fork(), which blocks the event loop for 20–80 ms on a loaded machine
 * (measured: docs/monitors.md, "Cost").
 *
 * Protocol reference: the X Window System Protocol (X11R7), little-endian byte order, no extensions except RandR.
 */
import { connect, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';

export class X11Error extends Error {
  constructor(message: string, readonly code: number, readonly badValue: number, readonly majorOpcode: number) {
    super(message);
    this.name = 'X11Error';
  }
}

/** The display cannot be reached at all (unset DISPLAY, no socket, refused connection or authorisation). */
export class X11ConnectError extends Error {
  constructor(message: string, readonly reason: 'no-display' | 'unreachable' | 'refused') {
    super(message);
    this.name = 'X11ConnectError';
  }
}

const ERROR_NAMES: Record<number, string> = { 1: 'BadRequest', 2: 'BadValue', 3: 'BadWindow', 4: 'BadPixmap', 5: 'BadAtom', 8: 'BadMatch', 9: 'BadDrawable', 10: 'BadAccess', 11: 'BadAlloc', 14: 'BadIDChoice', 16: 'BadLength', 17: 'BadImplementation' };
export const BAD_WINDOW = 3;

export interface DisplayAddress { socketPath: string | null; host: string | null; port: number; display: number; screen: number }

/** Parses DISPLAY: ":0", ":0.1", "unix:0", "localhost:10.0" (TCP 6010), "/path/to/socket:0" (XQuartz). */
export function parseDisplay(d: string | undefined): DisplayAddress | null {
  if (!d) return null;
  const m = /^(.*):(\d+)(?:\.(\d+))?$/.exec(d);
  if (!m) return null;
  const host = m[1]!;
  const display = Number(m[2]);
  const screen = m[3] ? Number(m[3]) : 0;
  if (host.startsWith('/')) return { socketPath: `${host}:${display}`, host: null, port: 0, display, screen };
  if (host === '' || host === 'unix') return { socketPath: `/tmp/.X11-unix/X${display}`, host: null, port: 0, display, screen };
  return { socketPath: null, host, port: 6000 + display, display, screen };
}

export interface XauthEntry { family: number; address: string; number: string; name: string; data: Buffer }

/** Parses an Xauthority file (big-endian records: family, then four length-prefixed fields). */
export function parseXauthority(buf: Buffer): XauthEntry[] {
  const out: XauthEntry[] = [];
  let o = 0;
  const field = (): Buffer | null => {
    if (o + 2 > buf.length) return null;
    const n = buf.readUInt16BE(o);
    if (o + 2 + n > buf.length) return null;
    const b = buf.subarray(o + 2, o + 2 + n);
    o += 2 + n;
    return b;
  };
  while (o + 2 <= buf.length) {
    const family = buf.readUInt16BE(o);
    o += 2;
    const address = field(), number = field(), name = field(), data = field();
    if (!address || !number || !name || !data) break;
    out.push({ family, address: address.toString('latin1'), number: number.toString('latin1'), name: name.toString('latin1'), data: Buffer.from(data) });
  }
  return out;
}

const FAMILY_LOCAL = 256, FAMILY_WILD = 65535;

/** The MIT-MAGIC-COOKIE-1 entry for a display, as libxcb chooses it (local/wild entries for a local socket). */
export function pickCookie(entries: XauthEntry[], addr: DisplayAddress, host = hostname()): XauthEntry | null {
  const num = String(addr.display);
  const cands = entries.filter((e) => e.name === 'MIT-MAGIC-COOKIE-1' && (e.number === '' || e.number === num));
  const local = addr.socketPath !== null || addr.host === 'localhost' || addr.host === '127.0.0.1';
  return cands.find((e) => e.family === FAMILY_LOCAL && e.address === host && local)
    ?? cands.find((e) => e.family === FAMILY_WILD)
    ?? cands.find((e) => !local && e.family !== FAMILY_LOCAL)
    ?? (local ? cands.find((e) => e.family === FAMILY_LOCAL) : undefined)
    ?? null;
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

export interface PropertyValue { type: number; format: number; value: Buffer; bytesAfter: number }

export interface ConnectOptions { env?: NodeJS.ProcessEnv; timeoutMs?: number }

interface Pending { resolve: (b: Buffer) => void; reject: (e: Error) => void; what: string }

/**
 * One connection to an X server. Requests that expect a reply return a promise (rejected with X11Error on a
 * protocol error, or when the connection closes); requests without a reply return nothing, and their errors go
 * to the 'xerror' event. Events arrive as raw 32-byte buffers on 'event'.
 */
export class X11Connection extends EventEmitter<{ event: [Buffer]; xerror: [X11Error]; close: [Error | null] }> {
  readonly root: number;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private buf: Buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly atoms = new Map<string, number>();
  private closedWith: Error | null | undefined = undefined;
  requests = 0;

  private constructor(private readonly sock: Socket, private readonly ridBase: number, private readonly ridMask: number, root: number, leftover: Buffer) {
    super();
    this.root = root;
    sock.on('data', (d: Buffer) => this.onData(d));
    if (leftover.length) queueMicrotask(() => this.onData(leftover));
    sock.unref(); // only a request waiting for its reply keeps the process alive
    const gone = (e: Error | null) => {
      if (this.closedWith !== undefined) return;
      this.closedWith = e;
      const err = e ?? new Error('X connection closed');
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.emit('close', e);
    };
    sock.on('error', (e) => gone(e));
    sock.on('close', () => gone(null));
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  static async connect(opts: ConnectOptions = {}): Promise<X11Connection> {
    const env = opts.env ?? process.env;
    const addr = parseDisplay(env.DISPLAY);
    if (!addr) throw new X11ConnectError(`no X display (DISPLAY=${env.DISPLAY ?? 'unset'})`, 'no-display');
    const authFile = env.XAUTHORITY || join(env.HOME || homedir(), '.Xauthority');
    const cookie = pickCookie(parseXauthority(await readFile(authFile).catch(() => Buffer.alloc(0))), addr);
    const timeoutMs = opts.timeoutMs ?? 3000;
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = addr.socketPath ? connect(addr.socketPath) : connect(addr.port, addr.host!);
      const t = setTimeout(() => { s.destroy(); reject(new X11ConnectError(`X display ${env.DISPLAY} did not answer within ${timeoutMs} ms`, 'unreachable')); }, timeoutMs);
      s.once('connect', () => { clearTimeout(t); resolve(s); });
      s.once('error', (e) => { clearTimeout(t); reject(new X11ConnectError(`cannot connect to X display ${env.DISPLAY}: ${e.message}`, 'unreachable')); });
    });
    sock.setNoDelay(true);
    // Connection setup: byte order 'l', protocol 11.0, authorisation name and data.
    const name = cookie ? Buffer.from(cookie.name, 'latin1') : Buffer.alloc(0);
    const data = cookie ? cookie.data : Buffer.alloc(0);
    const head = Buffer.alloc(12);
    head[0] = 0x6c;
    head.writeUInt16LE(11, 2);
    head.writeUInt16LE(0, 4);
    head.writeUInt16LE(name.length, 6);
    head.writeUInt16LE(data.length, 8);
    sock.write(Buffer.concat([head, name, Buffer.alloc(pad4(name.length)), data, Buffer.alloc(pad4(data.length))]));
    let leftover = Buffer.alloc(0);
    const reply = await new Promise<Buffer>((resolve, reject) => {
      let acc = Buffer.alloc(0);
      const t = setTimeout(() => { cleanup(); sock.destroy(); reject(new X11ConnectError(`X display ${env.DISPLAY} did not complete the connection setup`, 'unreachable')); }, timeoutMs);
      const onData = (d: Buffer) => {
        acc = Buffer.concat([acc, d]);
        if (acc.length < 8) return;
        const total = 8 + acc.readUInt16LE(6) * 4;
        if (acc.length < total) return;
        cleanup();
        leftover = Buffer.from(acc.subarray(total));
        resolve(acc.subarray(0, total));
      };
      const onErr = (e: Error) => { cleanup(); reject(new X11ConnectError(`X display ${env.DISPLAY}: ${e.message}`, 'unreachable')); };
      const onClose = () => { cleanup(); reject(new X11ConnectError(`X display ${env.DISPLAY} closed the connection during setup`, 'refused')); };
      const cleanup = () => { clearTimeout(t); sock.off('data', onData); sock.off('error', onErr); sock.off('close', onClose); };
      sock.on('data', onData);
      sock.on('error', onErr);
      sock.on('close', onClose);
    });
    if (reply[0] !== 1) {
      sock.destroy();
      const why = reply[0] === 0 ? reply.subarray(8, 8 + reply[1]!).toString('latin1') : 'further authentication required';
      throw new X11ConnectError(`X display ${env.DISPLAY} refused the connection: ${why.trim() || 'no reason given'}${cookie ? '' : ' (no MIT-MAGIC-COOKIE-1 for it in ' + authFile + ')'}`, 'refused');
    }
    const ridBase = reply.readUInt32LE(12);
    const ridMask = reply.readUInt32LE(16);
    const vendorLen = reply.readUInt16LE(24);
    const screens = reply[28]!;
    const formats = reply[29]!;
    let o = 40 + vendorLen + pad4(vendorLen) + 8 * formats;
    let root = 0;
    for (let s = 0; s < screens && o + 40 <= reply.length; s++) {
      if (s === addr.screen || s === 0) root = reply.readUInt32LE(o);
      if (s === addr.screen) break;
      const depths = reply[o + 39]!;
      o += 40;
      for (let d = 0; d < depths; d++) o += 8 + 24 * reply.readUInt16LE(o + 2);
    }
    return new X11Connection(sock, ridBase, ridMask, root, leftover);
  }

  close(): void {
    this.sock.destroy();
  }

  /** A fresh resource id (window) for this client. */
  newId(): number {
    const step = this.ridMask & -this.ridMask;
    const id = (this.ridBase | ((this.nextId++ * step) & this.ridMask)) >>> 0;
    return id;
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    while (this.buf.length >= 32) {
      const kind = this.buf[0]!;
      let len = 32;
      if (kind === 1 || (kind & 0x7f) === 35) len += this.buf.readUInt32LE(4) * 4;
      if (this.buf.length < len) break;
      const msg = this.buf.subarray(0, len);
      this.buf = this.buf.subarray(len);
      const seq = msg.readUInt16LE(2);
      if (kind === 1) {
        const p = this.pending.get(seq);
        if (p) { this.pending.delete(seq); p.resolve(Buffer.from(msg)); }
        if (this.pending.size === 0) this.sock.unref();
      } else if (kind === 0) {
        const code = msg[1]!;
        const e = new X11Error(`${ERROR_NAMES[code] ?? `X error ${code}`} (value 0x${msg.readUInt32LE(4).toString(16)}, request ${msg[10]})`, code, msg.readUInt32LE(4), msg[10]!);
        const p = this.pending.get(seq);
        if (p) { this.pending.delete(seq); p.reject(e); } else this.emit('xerror', e);
        if (this.pending.size === 0) this.sock.unref();
      } else {
        this.emit('event', Buffer.from(msg));
      }
    }
  }

  private send(req: Buffer, reply: false, what?: string): void;
  private send(req: Buffer, reply: true, what: string): Promise<Buffer>;
  private send(req: Buffer, reply: boolean, what = ''): Promise<Buffer> | void {
    if (this.closed) {
      const err = this.closedWith ?? new Error('X connection closed');
      if (reply) return Promise.reject(err);
      return;
    }
    req.writeUInt16LE(req.length / 4, 2);
    this.seq = (this.seq + 1) & 0xffff;
    this.requests++;
    const seq = this.seq;
    this.sock.write(req);
    if (!reply) return;
    this.sock.ref();
    return new Promise<Buffer>((resolve, reject) => { this.pending.set(seq, { resolve, reject, what }); });
  }

  async internAtom(name: string, onlyIfExists = false): Promise<number> {
    const known = this.atoms.get(name);
    if (known !== undefined) return known;
    const n = Buffer.from(name, 'latin1');
    const req = Buffer.alloc(8 + n.length + pad4(n.length));
    req[0] = 16;
    req[1] = onlyIfExists ? 1 : 0;
    req.writeUInt16LE(n.length, 4);
    n.copy(req, 8);
    const atom = (await this.send(req, true, `InternAtom ${name}`)).readUInt32LE(8);
    if (atom !== 0) this.atoms.set(name, atom);
    return atom;
  }

  /** Reads a property; null when the window has no such property. */
  async getProperty(window: number, property: number, opts: { type?: number; delete?: boolean; maxBytes?: number; offset?: number } = {}): Promise<PropertyValue | null> {
    const req = Buffer.alloc(24);
    req[0] = 20;
    req[1] = opts.delete ? 1 : 0;
    req.writeUInt32LE(window >>> 0, 4);
    req.writeUInt32LE(property >>> 0, 8);
    req.writeUInt32LE(opts.type ?? 0, 12);
    req.writeUInt32LE(opts.offset ?? 0, 16);
    req.writeUInt32LE(Math.ceil((opts.maxBytes ?? 65536) / 4), 20);
    const r = await this.send(req, true, 'GetProperty');
    const type = r.readUInt32LE(8);
    if (type === 0) return null;
    const format = r[1]!;
    const n = r.readUInt32LE(16) * (format / 8);
    return { type, format, bytesAfter: r.readUInt32LE(12), value: r.subarray(32, 32 + n) };
  }

  /** Sets the event mask this client selects on a window (errors, e.g. a window that just closed, go to 'xerror'). */
  selectInput(window: number, eventMask: number): void {
    const req = Buffer.alloc(16);
    req[0] = 2;
    req.writeUInt32LE(window >>> 0, 4);
    req.writeUInt32LE(0x800, 8); // CWEventMask
    req.writeUInt32LE(eventMask >>> 0, 12);
    this.send(req, false);
  }

  /** An unmapped 1×1 InputOnly window: a requestor for selections. */
  createHiddenWindow(eventMask = 0): number {
    const id = this.newId();
    const req = Buffer.alloc(36);
    req[0] = 1;
    req[1] = 0;
    req.writeUInt32LE(id, 4);
    req.writeUInt32LE(this.root, 8);
    req.writeInt16LE(-10, 12);
    req.writeInt16LE(-10, 14);
    req.writeUInt16LE(1, 16);
    req.writeUInt16LE(1, 18);
    req.writeUInt16LE(0, 20); // border
    req.writeUInt16LE(2, 22); // InputOnly
    req.writeUInt32LE(0, 24); // CopyFromParent visual
    req.writeUInt32LE(0x800, 28); // CWEventMask
    req.writeUInt32LE(eventMask >>> 0, 32);
    this.send(req, false);
    return id;
  }

  convertSelection(requestor: number, selection: number, target: number, property: number): void {
    const req = Buffer.alloc(24);
    req[0] = 24;
    req.writeUInt32LE(requestor, 4);
    req.writeUInt32LE(selection, 8);
    req.writeUInt32LE(target, 12);
    req.writeUInt32LE(property, 16);
    req.writeUInt32LE(0, 20); // CurrentTime
    this.send(req, false);
  }

  setSelectionOwner(owner: number, selection: number): void {
    const req = Buffer.alloc(16);
    req[0] = 22;
    req.writeUInt32LE(owner, 4);
    req.writeUInt32LE(selection, 8);
    req.writeUInt32LE(0, 12); // CurrentTime
    this.send(req, false);
  }

  changeProperty(window: number, property: number, type: number, format: 8 | 32, data: Buffer): void {
    const req = Buffer.alloc(24 + data.length + pad4(data.length));
    req[0] = 18;
    req[1] = 0; // Replace
    req.writeUInt32LE(window, 4);
    req.writeUInt32LE(property, 8);
    req.writeUInt32LE(type, 12);
    req[16] = format;
    req.writeUInt32LE(data.length / (format / 8), 20);
    data.copy(req, 24);
    this.send(req, false);
  }

  /** SendEvent with no event mask: delivered to the client that created `destination`. */
  sendEvent(destination: number, event: Buffer): void {
    const req = Buffer.alloc(44);
    req[0] = 25;
    req.writeUInt32LE(destination, 4);
    req.writeUInt32LE(0, 8);
    event.copy(req, 12, 0, 32);
    this.send(req, false);
  }

  deleteProperty(window: number, property: number): void {
    const req = Buffer.alloc(12);
    req[0] = 19;
    req.writeUInt32LE(window, 4);
    req.writeUInt32LE(property, 8);
    this.send(req, false);
  }

  async queryExtension(name: string): Promise<{ present: boolean; majorOpcode: number; firstEvent: number }> {
    const n = Buffer.from(name, 'latin1');
    const req = Buffer.alloc(8 + n.length + pad4(n.length));
    req[0] = 98;
    req.writeUInt16LE(n.length, 4);
    n.copy(req, 8);
    const r = await this.send(req, true, `QueryExtension ${name}`);
    return { present: r[8] === 1, majorOpcode: r[9]!, firstEvent: r[10]! };
  }

  /**
   * Asks RandR to report screen, CRTC and output changes on the root window. Returns the event codes that mean
   * "the displays changed", or null when the server has no RandR.
   */
  async selectRandrChanges(): Promise<number[] | null> {
    const ext = await this.queryExtension('RANDR');
    if (!ext.present) return null;
    const v = Buffer.alloc(12);
    v[0] = ext.majorOpcode; v[1] = 0; // RRQueryVersion 1.5
    v.writeUInt32LE(1, 4); v.writeUInt32LE(5, 8);
    await this.send(v, true, 'RRQueryVersion');
    const sel = Buffer.alloc(12);
    sel[0] = ext.majorOpcode; sel[1] = 4; // RRSelectInput
    sel.writeUInt32LE(this.root, 4);
    sel.writeUInt16LE(1 | 2 | 4, 8); // ScreenChange | CrtcChange | OutputChange
    this.send(sel, false);
    return [ext.firstEvent, ext.firstEvent + 1];
  }

  /** A round trip (GetInputFocus): every request sent before it has been processed when it resolves. */
  async sync(): Promise<void> {
    const req = Buffer.alloc(4);
    req[0] = 43;
    await this.send(req, true, 'GetInputFocus');
  }
}

export const PROPERTY_NOTIFY = 28;
export const SELECTION_CLEAR = 29;
export const SELECTION_REQUEST = 30;
export const SELECTION_NOTIFY = 31;
export const PROPERTY_CHANGE_MASK = 0x00400000;

/**
 * Decodes COMPOUND_TEXT (what Xlib programs such as xmessage put in WM_NAME for non-ASCII titles): ASCII and
 * ISO-8859-1 by default, ISO-8859-5 (Cyrillic) after ESC - L, UTF-8 segments between ESC % G and ESC % @.
 * Other character sets are read as Latin-1 (approximate, never an error).
 */
export function decodeCompoundText(b: Buffer): string {
  let out = '';
  let gr: 'latin1' | 'cyrillic' = 'latin1';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c === 0x1b) {
      if (b[i + 1] === 0x25 && b[i + 2] === 0x47) { // ESC % G: UTF-8 until ESC % @
        let j = i + 3;
        while (j < b.length && !(b[j] === 0x1b && b[j + 1] === 0x25 && b[j + 2] === 0x40)) j++;
        out += b.subarray(i + 3, j).toString('utf8');
        i = j + 3;
        continue;
      }
      if (b[i + 1] === 0x2d && b[i + 2] === 0x4c) { gr = 'cyrillic'; i += 3; continue; }
      if (b[i + 1] === 0x2d && b[i + 2] === 0x41) { gr = 'latin1'; i += 3; continue; }
      let j = i + 1; // any other designation: skip intermediate bytes and the final byte
      while (j < b.length && b[j]! >= 0x20 && b[j]! <= 0x2f) j++;
      i = j + 1;
      continue;
    }
    if (c >= 0xa1 && gr === 'cyrillic') out += c === 0xad ? '\u00ad' : c === 0xf0 ? '\u2116' : c === 0xfd ? '\u00a7' : String.fromCharCode(0x360 + c);
    else out += String.fromCharCode(c);
    i++;
  }
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes a text property: UTF8_STRING as UTF-8, COMPOUND_TEXT, and STRING as Latin-1 — unless its bytes are valid
 * UTF-8, as many programs (xdotool, some toolkits) put UTF-8 into STRING properties; Latin-1 text with accents
 * is almost never valid UTF-8.
 */
export function propertyText(p: PropertyValue | null, atoms: { utf8: number; compound?: number }): string | null {
  if (!p || p.format !== 8) return null;
  if (p.type === atoms.utf8) return p.value.toString('utf8');
  if (atoms.compound !== undefined && p.type === atoms.compound) return decodeCompoundText(p.value);
  try { return strictUtf8.decode(p.value); } catch { return p.value.toString('latin1'); }
}
