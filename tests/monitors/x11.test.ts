import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { X11ConnectError, X11Connection, decodeCompoundText, parseDisplay, parseXauthority, pickCookie } from '../../src/main/monitors/x11.js';
import { ForegroundMonitor, X11NativeForegroundSource } from '../../src/main/monitors/foreground.js';
import { X11ClipboardSource } from '../../src/main/monitors/clipboard.js';
import { XrandrSource } from '../../src/main/monitors/displays.js';
import { directSpawns } from '../../src/main/monitors/util.js';
import { spawnHelper } from '../../src/main/monitors/helper.js';
import type { Emit, MonitorEventMap } from '../../src/main/monitors/events.js';
import { missingXTools, startXServer, type XServer } from './xserver.js';
import { findOnPath } from '../../src/main/core/ffmpeg.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One Xauthority record (big-endian), as xauth writes it. */
function xauthRecord(family: number, address: string, num: string, name: string, data: Buffer): Buffer {
  const f = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  return Buffer.concat([Buffer.from([family >> 8, family & 0xff]), f(Buffer.from(address)), f(Buffer.from(num)), f(Buffer.from(name)), f(data)]);
}

describe('X11 client: pure parts', () => {
  it('parses DISPLAY forms', () => {
    expect(parseDisplay(':0')).toMatchObject({ socketPath: '/tmp/.X11-unix/X0', display: 0, screen: 0 });
    expect(parseDisplay('unix:3.1')).toMatchObject({ socketPath: '/tmp/.X11-unix/X3', display: 3, screen: 1 });
    expect(parseDisplay('localhost:10.0')).toMatchObject({ socketPath: null, host: 'localhost', port: 6010 });
    expect(parseDisplay(undefined)).toBeNull();
    expect(parseDisplay('wayland-0')).toBeNull();
  });

  it('reads an Xauthority file and picks the cookie for the display (local before wild, right number)', () => {
    const other = xauthRecord(256, hostname(), '1', 'MIT-MAGIC-COOKIE-1', Buffer.alloc(16, 1));
    const wild = xauthRecord(65535, '', '0', 'MIT-MAGIC-COOKIE-1', Buffer.alloc(16, 2));
    const local = xauthRecord(256, hostname(), '0', 'MIT-MAGIC-COOKIE-1', Buffer.alloc(16, 3));
    const entries = parseXauthority(Buffer.concat([other, wild, local, Buffer.from([0, 1])])); // a truncated tail is ignored
    expect(entries).toHaveLength(3);
    expect(pickCookie(entries, parseDisplay(':0')!)!.data[0]).toBe(3);
    expect(pickCookie(entries.slice(0, 2), parseDisplay(':0')!)!.data[0]).toBe(2);
    expect(pickCookie(entries, parseDisplay(':1')!)!.data[0]).toBe(1);
    expect(pickCookie(entries, parseDisplay(':7')!)).toBeNull();
  });

  it('decodes COMPOUND_TEXT titles: Latin-1, Cyrillic (ESC - L) and UTF-8 segments (Kazakh letters)', () => {
    const cyr = Buffer.concat([Buffer.from([0x1b, 0x2d, 0x4c]), Buffer.from([0xb5, 0xdc, 0xe2, 0xd8, 0xe5, 0xd0, 0xdd]), Buffer.from(' "b"')]);
    expect(decodeCompoundText(cyr)).toBe('Емтихан "b"');
    const kk = Buffer.concat([Buffer.from('x '), Buffer.from([0x1b, 0x25, 0x47]), Buffer.from('Сәлем', 'utf8'), Buffer.from([0x1b, 0x25, 0x40]), Buffer.from([0xe9])]);
    expect(decodeCompoundText(kk)).toBe('x Сәлемé');
  });
});

const missing = missingXTools();
describe.skipIf(missing.length > 0)(`X11 client under Xvfb + openbox${missing.length ? ` — skipped: ${missing.join(', ')} not installed` : ''}`, () => {
  let x: XServer;
  beforeAll(async () => { x = await startXServer(); });
  afterAll(async () => { await x?.stop(); });

  it('focus changes and a new title in the same window are seen without starting any process', async () => {
    const kiosk = await x.window('Kuzet kiosk');
    const other = await x.window('Notes');
    x.activate(kiosk.id);
    const events: { type: keyof MonitorEventMap; data: unknown; at: number }[] = [];
    const emit: Emit = (type, data) => { events.push({ type, data, at: performance.now() }); };
    const waitFor = async (type: string, after: number) => {
      for (let i = 0; i < 300; i++) { const e = events.find((v) => v.type === type && v.at >= after); if (e) return e; await sleep(10); }
      throw new Error(`no ${type}; got ${events.map((e) => e.type).join(', ')}`);
    };
    const src = new X11NativeForegroundSource({ env: x.env });
    // A long poll: whatever is seen quickly was pushed by the X server.
    const m = new ForegroundMonitor({ emit, source: src, ours: { pids: [kiosk.pid] }, pollMs: 5000 });
    m.start();
    await sleep(300);
    const forks0 = directSpawns.count;
    const helper0 = spawnHelper.runs;

    const t0 = performance.now();
    x.activate(other.id);
    const away = await waitFor('monitor.foreground.away', t0);
    expect(away.at - t0).toBeLessThan(1000);
    expect((away.data as MonitorEventMap['monitor.foreground.away']).window).toMatchObject({ id: other.id, title: 'Notes', classes: ['xmessage', 'Xmessage'], owner: { name: 'xmessage', pid: other.pid } });

    const t1 = performance.now();
    execFileSync('xdotool', ['set_window', '--name', 'Notes — Google', other.id], { env: x.env });
    const changed = await waitFor('monitor.foreground.changed', t1);
    expect(changed.at - t1).toBeLessThan(1000);
    expect((changed.data as MonitorEventMap['monitor.foreground.changed']).window?.title).toBe('Notes — Google');

    const t2 = performance.now();
    x.activate(kiosk.id);
    const back = await waitFor('monitor.foreground.back', t2);
    expect((back.data as MonitorEventMap['monitor.foreground.back']).windows.map((w) => w.window?.title)).toEqual(['Notes', 'Notes — Google']);
    await m.stop();
    expect(directSpawns.count - forks0).toBe(0);
    expect(spawnHelper.runs - helper0).toBe(0);
    expect(src.spawns).toBe(0);
  });

  it.skipIf(!findOnPath('xclip'))('clipboard: reads what another program copied (also a large INCR transfer) and clears it', async () => {
    const s = new X11ClipboardSource(x.env);
    const copy = async (t: string) => {
      const c = spawn('xclip', ['-selection', 'clipboard', '-i'], { env: x.env, stdio: ['pipe', 'ignore', 'ignore'] });
      c.stdin!.end(t);
      await new Promise((r) => c.on('exit', r));
      for (let i = 0; i < 100; i++) { if ((await s.readText()) === t) return; await sleep(30); }
      throw new Error('copied text never became readable');
    };
    const xclipOut = () => new Promise<string>((r) => execFile('xclip', ['-selection', 'clipboard', '-o'], { env: x.env, encoding: 'utf8' }, (_e, o) => r(o)));
    await copy('Сәлем "copy"');
    const big = 'ә'.repeat(300_000) + 'END'; // 600 kB: more than one request, so xclip sends it INCR
    await copy(big);
    await s.clear();
    expect(await s.readText()).toBe('');
    expect(await xclipOut()).toBe(''); // another program sees the empty clipboard we now own
    await copy('after');
    s.close();
  });

  it('displays: RandR notifications arrive on our own connection', async () => {
    const s = new XrandrSource(x.env);
    let changes = 0;
    expect(s.watch(() => changes++)).toBe(true);
    for (let i = 0; i < 100 && !s.watching; i++) await sleep(20);
    expect(s.watching).toBe('x11-randr');
    // Xvfb cannot really change its mode; a refused framebuffer change still sends RandR notifications.
    await new Promise((r) => execFile('xrandr', ['--fb', '640x480'], { env: x.env }, r));
    for (let i = 0; i < 100 && changes === 0; i++) await sleep(20);
    s.close();
    expect(changes).toBeGreaterThan(0);
  });
});

describe.skipIf(missing.length > 0)('X11 client with access control (Xvfb -auth)', () => {
  let x: XServer;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kuzet-xauth-'));
    x = await startXServer({
      auth: (n) => {
        const f = join(dir, 'Xauthority');
        writeFileSync(f, xauthRecord(256, hostname(), String(n), 'MIT-MAGIC-COOKIE-1', randomBytes(16)));
        return f;
      },
    });
  });
  afterAll(async () => { await x?.stop(); rmSync(dir, { recursive: true, force: true }); });

  it('connects with the cookie from XAUTHORITY and is refused (clear reason) without it', async () => {
    const c = await X11Connection.connect({ env: x.env });
    expect(c.root).toBeGreaterThan(0);
    expect(await c.internAtom('_NET_ACTIVE_WINDOW')).toBeGreaterThan(0);
    c.close();
    const err = await X11Connection.connect({ env: { ...x.env, XAUTHORITY: join(dir, 'none') } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(X11ConnectError);
    expect((err as X11ConnectError).reason).toBe('refused');
    expect((err as Error).message).toMatch(/refused the connection.*no MIT-MAGIC-COOKIE-1/);
  });
});

describe('X11 client: text properties', () => {
  it('STRING holding UTF-8 (xdotool, some toolkits) is read as UTF-8; real Latin-1 stays Latin-1', async () => {
    const { propertyText } = await import('../../src/main/monitors/x11.js');
    const atoms = { utf8: 300, compound: 301 };
    expect(propertyText({ type: 31, format: 8, bytesAfter: 0, value: Buffer.from('Notes — Google', 'utf8') }, atoms)).toBe('Notes — Google');
    expect(propertyText({ type: 31, format: 8, bytesAfter: 0, value: Buffer.from('café', 'latin1') }, atoms)).toBe('café');
    expect(propertyText({ type: 300, format: 8, bytesAfter: 0, value: Buffer.from('Сәлем', 'utf8') }, atoms)).toBe('Сәлем');
    expect(propertyText(null, atoms)).toBeNull();
  });
});
