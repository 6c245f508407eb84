import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ForegroundMonitor, X11ForegroundSource, decodeXpropString, isOurs, parseActiveWindowLine, parseXpropProps, windowFromXprop, type ForegroundSource } from '../../src/main/monitors/foreground.js';
import type { Emit, MonitorEventMap, WindowInfo } from '../../src/main/monitors/events.js';
import { missingXTools, startXServer, type XServer } from './xserver.js';

const fx = (name: string) => readFileSync(new URL(`../fixtures/monitors/xprop/${name}`, import.meta.url), 'utf8');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Ev = { type: keyof MonitorEventMap; data: unknown; at: number };
function collector() {
  const events: Ev[] = [];
  const emit: Emit = (type, data) => { events.push({ type, data, at: performance.now() }); };
  const waitFor = async (type: string, after = 0, timeoutMs = 3000) => {
    const t0 = performance.now();
    while (performance.now() - t0 < timeoutMs) {
      const e = events.find((x) => x.type === type && x.at >= after);
      if (e) return e;
      await sleep(10);
    }
    throw new Error(`no ${type} within ${timeoutMs} ms; got ${events.map((e) => e.type).join(', ')}`);
  };
  return { events, emit, waitFor };
}

const win = (id: string, title: string, pid: number | null, name = 'app'): WindowInfo => ({ id, title, classes: [name], owner: { name, pid, path: pid ? `/usr/bin/${name}` : null } });

describe('xprop parsing (recorded outputs)', () => {
  it('reads pid, class and a UTF-8 title with escaped quotes; prefers _NET_WM_NAME over a mis-encoded WM_NAME', () => {
    const props = parseXpropProps(fx('window-utf8-recorded.txt'));
    const w = windowFromXprop('0x400030', props, { name: 'xmessage', path: '/usr/bin/xmessage' });
    expect(w).toEqual({ id: '0x400030', title: 'Емтихан — Kuzet "kiosk"', classes: ['xmessage', 'Xmessage'], owner: { name: 'xmessage', pid: 11586, path: '/usr/bin/xmessage' } });
  });
  it('a window without _NET_WM_PID still gives its title and class', () => {
    const w = windowFromXprop('0x800030', parseXpropProps(fx('window-nopid-recorded.txt')), null);
    expect(w.owner).toEqual({ name: 'Xmessage', pid: null, path: null });
    expect(w.title).toBe('other');
  });
  it('active window line, 0x0 and octal escapes', () => {
    expect(parseActiveWindowLine(fx('root-active-recorded.txt'))).toBe('0x400030');
    expect(parseActiveWindowLine('_NET_ACTIVE_WINDOW(WINDOW): window id # 0x0')).toBeNull();
    expect(parseActiveWindowLine('_NET_ACTIVE_WINDOW:  not found.')).toBeUndefined();
    expect(decodeXpropString('\\342\\200\\224 a\\"b')).toBe('— a"b');
  });
  it('isOurs: pid, class, title pattern; a look-alike title in another process is not ours by pid', () => {
    const ours = { pids: [100], classes: ['kuzet'], titles: [/^Kuzet exam/] };
    expect(isOurs(win('1', 'x', 100), ours)).toBe(true);
    expect(isOurs(win('2', 'x', 5, 'Kuzet'), ours)).toBe(true);
    expect(isOurs(win('3', 'Kuzet exam — Math', 5), ours)).toBe(true);
    expect(isOurs(win('4', 'Telegram', 5), ours)).toBe(false);
    expect(isOurs(win('4', 'Telegram', 5), { pids: [100] })).toBe(false);
  });
});

/** A scripted source: returns the current value; counts concurrent reads. */
function scripted(initial: WindowInfo | null, delayMs = 0) {
  let current = initial;
  let inFlight = 0;
  let maxInFlight = 0;
  let kick: (() => void) | null = null;
  const src: ForegroundSource = {
    name: 'scripted',
    async read() {
      inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(delayMs);
      inFlight--;
      return current;
    },
    watch(cb) { kick = cb; },
  };
  return { src, set(w: WindowInfo | null) { current = w; kick?.(); }, get maxInFlight() { return maxInFlight; } };
}

describe('ForegroundMonitor state machine (injected source)', () => {
  const kiosk = win('0x1', 'Kuzet', 42, 'kuzet');
  it('away → changed → back with duration and the windows visited; nothing for our own window', async () => {
    const c = collector();
    const s = scripted(kiosk);
    const m = new ForegroundMonitor({ emit: c.emit, source: s.src, ours: { pids: [42] }, pollMs: 50 });
    m.start();
    await sleep(80);
    expect(c.events).toHaveLength(0);
    s.set(win('0x2', 'Telegram', 7, 'telegram-desktop'));
    const away = await c.waitFor('monitor.foreground.away');
    expect((away.data as MonitorEventMap['monitor.foreground.away']).window?.owner).toEqual({ name: 'telegram-desktop', pid: 7, path: '/usr/bin/telegram-desktop' });
    await sleep(120);
    s.set(win('0x3', 'Google', 9, 'chrome'));
    await c.waitFor('monitor.foreground.changed');
    await sleep(120);
    s.set(kiosk);
    const back = await c.waitFor('monitor.foreground.back');
    const d = back.data as MonitorEventMap['monitor.foreground.back'];
    expect(d.durationMs).toBeGreaterThanOrEqual(230);
    expect(d.durationMs).toBeLessThan(2000);
    expect(d.windows.map((x) => x.window?.owner.name)).toEqual(['telegram-desktop', 'chrome']);
    expect(d.windows[0]!.ms + d.windows[1]!.ms).toBeLessThanOrEqual(d.durationMs + 1);
    await m.stop();
    expect(c.events.map((e) => e.type)).toEqual(['monitor.foreground.away', 'monitor.foreground.changed', 'monitor.foreground.back']);
  });

  it('a moment with no focused window (passing between windows) is not an event; a lasting one is', async () => {
    const c = collector();
    const s = scripted(kiosk);
    const m = new ForegroundMonitor({ emit: c.emit, source: s.src, ours: { pids: [42] }, pollMs: 40, noFocusGraceMs: 300 });
    m.start();
    await sleep(60);
    s.set(null);
    await sleep(100);
    s.set(kiosk);
    await sleep(400);
    expect(c.events).toHaveLength(0);
    s.set(null);
    const away = await c.waitFor('monitor.foreground.away');
    expect(away.data).toMatchObject({ window: null, reason: 'no-focus' });
    await m.stop();
    const back = c.events.at(-1)!;
    expect(back.type).toBe('monitor.foreground.back');
    expect(back.data).toMatchObject({ atStop: true });
  });

  it('never reads twice at once: a slow source with many change notifications coalesces them', async () => {
    const c = collector();
    const s = scripted(kiosk, 60);
    const m = new ForegroundMonitor({ emit: c.emit, source: s.src, ours: { pids: [42] }, pollMs: 20 });
    m.start();
    for (let i = 0; i < 20; i++) { s.set(i % 2 ? kiosk : win('0x9', `w${i}`, 9)); await sleep(5); }
    await sleep(200);
    await m.stop();
    expect(s.maxInFlight).toBe(1);
    expect(m.stats().coalesced).toBeGreaterThan(0);
  });

  it('an unavailable source is reported once, not once per poll', async () => {
    const c = collector();
    const { SourceUnavailable } = await import('../../src/main/monitors/foreground.js');
    const m = new ForegroundMonitor({ emit: c.emit, source: { name: 'none', read: async () => { throw new SourceUnavailable('no X display'); } }, ours: {}, pollMs: 20 });
    m.start();
    await sleep(150);
    await m.stop();
    expect(c.events.map((e) => e.type)).toEqual(['monitor.source_unavailable']);
  });
});

const missing = missingXTools();
describe.skipIf(missing.length > 0)(`under Xvfb + openbox (real xprop source)${missing.length ? ` — skipped: ${missing.join(', ')} not installed` : ''}`, () => {
  let x: XServer;
  beforeAll(async () => { x = await startXServer(); });
  afterAll(async () => { await x?.stop(); });

  it('focusing a second window yields away within 1 s; returning yields back with the duration', async () => {
    const kiosk = await x.window('Kuzet kiosk');
    const other = await x.window('Notes');
    const stranger = await x.window('No pid', false);
    x.activate(kiosk.id);
    const c = collector();
    const src = new X11ForegroundSource({ env: x.env });
    const m = new ForegroundMonitor({ emit: c.emit, source: src, ours: { pids: [kiosk.pid] }, pollMs: 400 });
    m.start();
    await sleep(600);
    expect(c.events.filter((e) => e.type.startsWith('monitor.foreground'))).toHaveLength(0);

    const t0 = performance.now();
    x.activate(other.id);
    const away = await c.waitFor('monitor.foreground.away', t0);
    expect(away.at - t0).toBeLessThan(1000);
    const w = (away.data as MonitorEventMap['monitor.foreground.away']).window!;
    expect(w).toMatchObject({ id: other.id, title: 'Notes', owner: { name: 'xmessage', pid: other.pid, path: expect.stringMatching(/xmessage$/) } });

    await sleep(300);
    x.activate(stranger.id);
    const changed = await c.waitFor('monitor.foreground.changed', t0);
    expect((changed.data as MonitorEventMap['monitor.foreground.changed']).window).toMatchObject({ title: 'No pid', owner: { pid: null } });

    await sleep(300);
    const t1 = performance.now();
    x.activate(kiosk.id);
    const back = await c.waitFor('monitor.foreground.back', t1);
    expect(back.at - t1).toBeLessThan(1000);
    const d = back.data as MonitorEventMap['monitor.foreground.back'];
    expect(d.durationMs).toBeGreaterThanOrEqual(550);
    expect(d.durationMs).toBeLessThanOrEqual(Math.ceil(back.at - t0) + 50);
    expect(d.windows.map((s) => s.window?.title)).toEqual(['Notes', 'No pid']);
    await m.stop();
    // The spy did the work: a handful of lookups, not one per poll.
    expect(src.spawns).toBeLessThan(12);
  });
});
