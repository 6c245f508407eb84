/**
 * A fault-injecting TCP proxy for loopback tests: between the uploader and the server it resets connections in
 * the middle of requests, stalls them (no byte moves, then the socket dies), and cuts responses short. Faults are
 * drawn from a seeded generator so a failing run can be replayed. Bounded: it only ever connects to 127.0.0.1.
 */
import net from 'node:net';
import { join } from 'node:path';
import { ServerClient } from '../../src/main/upload/client.js';
import { UploadQueue } from '../../src/main/upload/spool.js';
import { cleanup, enrolledDevice, openSession, server, tempDir, type Device } from '../server/helpers.js';

export interface FaultRates {
  /** Per request chunk (client → server): reset both sides. */
  reset: number;
  /** Per connection: at a random chunk, stop forwarding for `stallMs`, then destroy. */
  stall: number;
  /** Per response chunk (server → client): forward only part of it, then close. */
  truncate: number;
  stallMs: number;
  /** Throttle client → server bytes to this rate (0 = unthrottled), to make mid-upload moments observable. */
  bytesPerSecond: number;
}

export interface FaultStats { connections: number; resets: number; stalls: number; truncations: number; upBytes: number; downBytes: number }

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultProxy {
  targetPort: number;
  rates: FaultRates;
  readonly stats: FaultStats = { connections: 0, resets: 0, stalls: 0, truncations: 0, upBytes: 0, downBytes: 0 };
  private readonly rnd: () => number;
  private readonly server: net.Server;
  private readonly open = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(targetPort: number, rates: Partial<FaultRates> = {}, seed = 1) {
    this.targetPort = targetPort;
    this.rates = { reset: 0, stall: 0, truncate: 0, stallMs: 3000, bytesPerSecond: 0, ...rates };
    this.rnd = mulberry32(seed);
    this.server = net.createServer((c) => this.handle(c));
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }

  private track(s: net.Socket): void {
    this.open.add(s);
    s.on('close', () => this.open.delete(s));
    s.on('error', () => undefined);
  }

  private handle(client: net.Socket): void {
    this.stats.connections++;
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    this.track(client);
    this.track(upstream);
    let dead = false;
    let stalled = false;
    // Set the moment a fault cuts the stream: nothing after the cut may pass (the socket dies once the part before
    // it is written). A TCP stream never loses its middle and delivers what followed; forwarding later chunks while
    // the cut part was still being written did exactly that, and the server stored bytes out of place.
    let cut = false;
    const kill = (how: 'reset' | 'end') => {
      if (dead) return;
      dead = true;
      if (how === 'reset') { client.resetAndDestroy(); upstream.resetAndDestroy(); } else { client.destroy(); upstream.destroy(); }
    };
    const stallAt = this.rnd() < this.rates.stall ? Math.floor(this.rnd() * 6) : -1;
    let chunks = 0;
    const maybeStall = (): boolean => {
      if (stalled) return true;
      if (chunks++ !== stallAt) return false;
      stalled = true;
      this.stats.stalls++;
      const t = setTimeout(() => { this.timers.delete(t); kill('end'); }, this.rates.stallMs);
      this.timers.add(t);
      return true;
    };
    client.on('data', (d: Buffer) => {
      if (dead || cut || maybeStall()) return;
      if (this.rnd() < this.rates.reset) {
        this.stats.resets++;
        cut = true;
        const part = d.subarray(0, Math.floor(this.rnd() * d.length));
        this.stats.upBytes += part.length;
        upstream.write(part, () => kill('reset'));
        return;
      }
      this.stats.upBytes += d.length;
      if (this.rates.bytesPerSecond > 0) {
        client.pause();
        const t = setTimeout(() => { this.timers.delete(t); if (!dead) upstream.write(d, () => client.resume()); }, (d.length / this.rates.bytesPerSecond) * 1000);
        this.timers.add(t);
        return;
      }
      if (!upstream.write(d)) { client.pause(); upstream.once('drain', () => client.resume()); }
    });
    upstream.on('data', (d: Buffer) => {
      if (dead || cut || maybeStall()) return;
      if (this.rnd() < this.rates.truncate) {
        this.stats.truncations++;
        cut = true;
        const part = d.subarray(0, Math.floor(this.rnd() * d.length));
        this.stats.downBytes += part.length;
        client.write(part, () => kill('end'));
        return;
      }
      this.stats.downBytes += d.length;
      if (!client.write(d)) { upstream.pause(); client.once('drain', () => upstream.resume()); }
    });
    client.on('end', () => { if (!dead) upstream.end(); });
    upstream.on('end', () => { if (!dead) client.end(); });
    client.on('close', () => { if (!dead && !stalled) upstream.destroy(); });
    upstream.on('close', () => { if (!dead && !stalled) client.destroy(); });
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.open) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/**
 * An evidence server on loopback behind a FaultProxy limited to `bytesPerSecond` (no faults), with one device
 * enrolled through the proxy: for tests that cut an upload half-way. `close()` stops both and removes the folders.
 */
export async function deviceBehindProxy(bytesPerSecond: number) {
  const data = tempDir('srv');
  const root = tempDir('home');
  const srv = await server(data);
  const proxy = new FaultProxy(srv.port, { bytesPerSecond });
  const url = `http://127.0.0.1:${await proxy.listen()}`;
  const close = async () => { await proxy.close(); await srv.close(); cleanup(data, root); };
  try {
    return { data, srv, proxy, url, dev: await enrolledDevice({ ...srv, url }, root), close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Queues one new 1.5 MB segment of `source`, lets more than 500 kB of it go out (through a slow proxy), then stops
 * the queue: an upload cut off mid-file as by a crash (the request in flight is dropped, nothing else is said).
 */
export async function cutOffMidUpload(dev: Device, url: string, source: string) {
  const s = openSession(dev.home.sessions);
  const seg = s.closeSegment(source, 1_500_000);
  const q1 = new UploadQueue({ home: dev.home, client: new ServerClient(url, dev.key), chunkBytes: 128 * 1024 });
  q1.enqueue({ session: s.id, path: seg.file, file: join(s.dir, seg.file), sha256: seg.sha256, size: seg.size });
  q1.start();
  await new Promise<void>((resolve) => q1.on('progress', (p) => { if (p.bytesDone > 500_000) resolve(); }));
  await q1.stop();
  return { s, seg, q1 };
}

/**
 * A new queue (the restarted process) resumes the device's unfinished files, sends them to the end and stops;
 * returns how many it resumed and how many bytes went up through the proxy meanwhile.
 */
export async function resumeInNewQueue(dev: Device, url: string, proxy: FaultProxy, sessionId: string): Promise<{ resumed: number; sent: number }> {
  const before = proxy.stats.upBytes;
  const q = new UploadQueue({ home: dev.home, client: new ServerClient(url, dev.key), chunkBytes: 128 * 1024 });
  const resumed = q.resume();
  q.start();
  await q.drain(sessionId);
  await q.stop();
  return { resumed, sent: proxy.stats.upBytes - before };
}
