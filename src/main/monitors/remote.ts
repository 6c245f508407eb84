/**
 * Remote sessions during the exam, not only at start: someone connecting to this computer over SSH, RDP, VNC or a
 * remote-control tool's direct port while the student sits the exam. A light periodic check (two or three small
 * in-memory files every few seconds, no process started):
 *   - inbound TCP connections in /proc/net/tcp and tcp6 (state ESTABLISHED, local port of a remote-access
 *     service, peer not on this machine);
 *   - network logins in utmp (/run/utmp): a user session whose host is another computer.
 * The check at start is reported too (`atStart`), so the log shows what was already connected.
 */
import { readFile } from 'node:fs/promises';
import type { Emit, RemoteConnection } from './events.js';
import { Poller, errMsg } from './util.js';

/** Local ports of remote-access services (an inbound connection to one of them is a remote session). */
export const REMOTE_PORTS: Record<number, RemoteConnection['kind']> = {
  22: 'ssh', 3389: 'rdp', 3350: 'rdp', 5938: 'teamviewer', 7070: 'anydesk', 21118: 'rustdesk', 21119: 'rustdesk',
  ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [5900 + i, 'vnc'])),
};

export interface TcpEntry { local: string; localPort: number; remote: string; remotePort: number; state: number }

function ipv4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
}

function ipv6(hex: string): string {
  const words: string[] = [];
  for (let i = 0; i < 4; i++) {
    const w = hex.slice(i * 8, i * 8 + 8);
    const le = w.match(/../g)!.reverse().join(''); // each 32-bit word is in host (little-endian) order
    words.push(le.slice(0, 4), le.slice(4, 8));
  }
  const parts = words.map((w) => parseInt(w, 16));
  if (parts.slice(0, 5).every((p) => p === 0) && parts[5] === 0xffff) return `::ffff:${parts[6]! >> 8}.${parts[6]! & 0xff}.${parts[7]! >> 8}.${parts[7]! & 0xff}`;
  return parts.map((p) => p.toString(16)).join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** Parses /proc/net/tcp or /proc/net/tcp6. */
export function parseProcNetTcp(text: string): TcpEntry[] {
  const out: TcpEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const m = /^\s*\d+:\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{2})/.exec(line);
    if (!m) continue;
    const addr = (h: string) => (h.length === 8 ? ipv4(h) : ipv6(h));
    out.push({ local: addr(m[1]!), localPort: parseInt(m[2]!, 16), remote: addr(m[3]!), remotePort: parseInt(m[4]!, 16), state: parseInt(m[5]!, 16) });
  }
  return out;
}

const isLoopback = (a: string) => a.startsWith('127.') || a === '::1' || a.startsWith('::ffff:127.');

/** Inbound remote-access connections among the TCP entries (ESTABLISHED = 1, peer not on this machine). */
export function remoteTcp(entries: TcpEntry[]): RemoteConnection[] {
  return entries
    .filter((e) => e.state === 1 && REMOTE_PORTS[e.localPort] !== undefined && !isLoopback(e.remote))
    .map((e) => ({ key: `tcp:${e.localPort}:${e.remote}:${e.remotePort}`, kind: REMOTE_PORTS[e.localPort]!, via: 'tcp' as const, detail: `${e.remote}:${e.remotePort} → port ${e.localPort}` }));
}

export interface UtmpEntry { type: number; pid: number; line: string; user: string; host: string }

/** Parses glibc utmp records (384 bytes each on 64-bit Linux). */
export function parseUtmp(buf: Buffer): UtmpEntry[] {
  const out: UtmpEntry[] = [];
  const str = (o: number, n: number) => { const b = buf.subarray(o, o + n); const z = b.indexOf(0); return b.subarray(0, z < 0 ? n : z).toString('utf8'); };
  for (let o = 0; o + 384 <= buf.length; o += 384) {
    out.push({ type: buf.readInt16LE(o), pid: buf.readInt32LE(o + 4), line: str(o + 8, 32), user: str(o + 44, 32), host: str(o + 76, 256) });
  }
  return out;
}

/** Network logins: user sessions (type 7) whose host is another computer (not a local X display or console). */
export function remoteLogins(entries: UtmpEntry[]): RemoteConnection[] {
  return entries
    .filter((e) => e.type === 7 && e.host !== '' && !/^:\d/.test(e.host) && e.host !== 'localhost' && !isLoopback(e.host))
    .map((e) => ({ key: `utmp:${e.pid}:${e.line}:${e.host}`, kind: 'login' as const, via: 'utmp' as const, detail: `${e.user} on ${e.line} from ${e.host}` }));
}

export interface RemoteSource { readonly name: string; read(): Promise<RemoteConnection[]> }

export class LinuxRemoteSource implements RemoteSource {
  readonly name = 'linux-proc-net';
  constructor(private readonly root = '/proc', private readonly utmpPaths = ['/run/utmp', '/var/run/utmp']) {}
  async read(): Promise<RemoteConnection[]> {
    const [t4, t6] = await Promise.all(['tcp', 'tcp6'].map((f) => readFile(`${this.root}/net/${f}`, 'utf8').catch(() => '')));
    if (!t4 && !t6) throw new Error(`${this.root}/net/tcp is not readable`);
    let logins: RemoteConnection[] = [];
    for (const p of this.utmpPaths) {
      const b = await readFile(p).catch(() => null);
      if (b) { logins = remoteLogins(parseUtmp(b)); break; }
    }
    return [...remoteTcp([...parseProcNetTcp(t4!), ...parseProcNetTcp(t6!)]), ...logins];
  }
}

export function defaultRemoteSource(): RemoteSource | null {
  return process.platform === 'linux' ? new LinuxRemoteSource() : null;
}

/** `monitor.remote.connected` for each remote session (also those already there at start), `.ended` when it goes. */
export class RemoteSessionMonitor {
  private readonly poller: Poller;
  private known: Map<string, { c: RemoteConnection; since: number }> | null = null;
  private errors = 0;

  constructor(private readonly o: { emit: Emit; source: RemoteSource | null; checkMs: number }) {
    this.poller = new Poller(async () => { await this.check(); }, o.checkMs, (e) => {
      this.errors++;
      if (this.errors === 1 || this.errors % 50 === 0) o.emit('monitor.source_error', { monitor: 'remote', error: errMsg(e), count: this.errors });
    });
  }

  start(): void {
    if (!this.o.source) { this.o.emit('monitor.source_unavailable', { monitor: 'remote', source: 'none', reason: `remote-session checks during the exam are implemented for Linux only (${process.platform}); the start-up check still runs` }); return; }
    this.poller.start();
  }

  async stop(): Promise<void> {
    await this.poller.stop();
  }

  stats() {
    return { source: this.o.source?.name ?? 'none', checks: this.poller.runs, connected: this.known?.size ?? 0, errors: this.errors };
  }

  async check(): Promise<RemoteConnection[]> {
    const now = await this.o.source!.read();
    const atStart = this.known === null;
    const known = this.known ?? new Map();
    const seen = new Set<string>();
    for (const c of now) {
      seen.add(c.key);
      if (known.has(c.key)) continue;
      known.set(c.key, { c, since: Date.now() });
      this.o.emit('monitor.remote.connected', { connection: c, ...(atStart ? { atStart: true } : {}) });
    }
    for (const [k, v] of known) {
      if (seen.has(k)) continue;
      known.delete(k);
      this.o.emit('monitor.remote.ended', { connection: v.c, durationMs: Date.now() - v.since });
    }
    this.known = known;
    return now;
  }
}
