import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventLog, verifyLogText } from '../../src/main/core/eventlog.js';
import { StepSequence } from '../../src/main/core/session.js';
import { parseExamConfig, parseMachineConfig } from '../../src/main/core/config.js';
import { homeLayout } from '../../src/main/core/home.js';
import type { SessionContext } from '../../src/main/core/context.js';
import { monitorsStep, type MonitorSet, type WindowInfo } from '../../src/main/monitors/index.js';
import { fixtureFs, linuxVmFacts } from '../../src/main/monitors/vm.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'kuzet-mon-step-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

function ctxFor(name: string, exam: unknown = {}): SessionContext {
  const log = EventLog.open(join(dir, `${name}.ndjson`));
  return {
    id: name, dir, log,
    machine: parseMachineConfig({ monitors: { foregroundPollMs: 100, processScanMs: 250, devicePollMs: 250, displayPollMs: 250 } }),
    exam: parseExamConfig(exam),
    home: homeLayout(join(dir, 'home')),
    meta: { studentId: 's1', machineId: 'm1', demo: true },
    services: {}, models: {}, degraded: [], signal: new AbortController().signal,
  };
}

const kiosk: WindowInfo = { id: '0x1', title: 'Kuzet', classes: ['kuzet'], owner: { name: 'kuzet', pid: 4242, path: '/opt/kuzet/kuzet' } };
const chat: WindowInfo = { id: '0x2', title: 'Telegram', classes: ['TelegramDesktop'], owner: { name: 'telegram-desktop', pid: 77, path: '/usr/bin/telegram-desktop' } };

describe('monitorsStep in a session', () => {
  it('starts all monitors as one reversible step, writes typed events into the hash-chained log, and undoes itself', async () => {
    let fg: WindowInfo = kiosk;
    let clip = 'old clipboard';
    let procs = [{ pid: 77, ppid: 1, name: 'telegram-deskto', exe: '/usr/bin/telegram-desktop', cmdline: '/usr/bin/telegram-desktop', uid: 1000, start: 5 }];
    const ctx = ctxFor('all', { monitors: { clipboard: 'isolate', denyExtra: [] } });
    const seq = new StepSequence([monitorsStep({
      ours: { pids: [4242] },
      sources: {
        foreground: { name: 'fake-fg', read: async () => fg },
        processes: { name: 'fake-ps', list: async () => procs },
        killer: { signal: () => { procs = []; }, alive: async () => procs.length > 0 },
        displays: { name: 'fake-xrandr', list: async () => [{ name: 'eDP-1', primary: true, x: 0, y: 0, width: 1920, height: 1080, widthMm: 309, heightMm: 174, internal: true, virtual: null }] },
        hid: { name: 'fake-hid', list: async () => [] },
        audio: { name: 'fake-audio', list: async () => [] },
        clipboard: { name: 'fake-clip', readText: async () => clip, clear: async () => { clip = ''; } },
        remote: { name: 'fake-remote', read: async () => [{ key: 'tcp:5900:10.0.0.9:40000', kind: 'vnc', via: 'tcp', detail: '10.0.0.9:40000 → port 5900' }] },
        vmFacts: async () => linuxVmFacts(fixtureFs(JSON.parse(readFileSync(new URL('../fixtures/monitors/vm/baremetal-thinkpad-vm-host.json', import.meta.url), 'utf8')).files), { env: {}, who: async () => '', arch: 'x64' }),
      },
    })]);
    await seq.start(ctx);
    const set = ctx.services.monitors as MonitorSet;
    expect(set.monitorNames).toHaveLength(7);
    expect(clip).toBe('');
    await new Promise((r) => setTimeout(r, 300));
    fg = chat;
    await new Promise((r) => setTimeout(r, 300));
    clip = 'copied in Telegram';
    fg = kiosk;
    await new Promise((r) => setTimeout(r, 300));
    expect((await set.clipboard!.checkPaste()).allow).toBe(false);
    await seq.stop(ctx);
    expect(ctx.services.monitors).toBeUndefined();
    ctx.log.close();

    const check = verifyLogText(readFileSync(ctx.log.path, 'utf8'));
    expect(check.ok).toBe(true);
    const types = check.records.map((r) => r.type);
    for (const t of ['monitor.started', 'monitor.vm.summary', 'monitor.clipboard.cleared', 'monitor.process.found', 'monitor.process.terminated',
      'monitor.display.snapshot', 'monitor.device.snapshot', 'monitor.foreground.away', 'monitor.foreground.back',
      'monitor.clipboard.outside_copy', 'monitor.clipboard.paste_blocked', 'monitor.remote.connected', 'monitor.stopped']) expect(types, t).toContain(t);
    const found = check.records.find((r) => r.type === 'monitor.process.found')!.data as Record<string, unknown>;
    expect(found).toMatchObject({ entry: 'Telegram', pid: 77, exe: '/usr/bin/telegram-desktop', phase: 'exam' });
    const away = check.records.find((r) => r.type === 'monitor.foreground.away')!.data as { window: WindowInfo };
    expect(away.window.owner).toEqual(chat.owner);
    expect(types.indexOf('monitor.foreground.back')).toBeLessThan(types.indexOf('monitor.clipboard.outside_copy'));
    expect(types.at(-1)).toBe('monitor.stopped');
    expect(types.filter((t) => t === 'monitor.clipboard.cleared')).toHaveLength(3); // start, blocked paste, end
  });

  it('monitors.enabled=false: the step only records that', async () => {
    const ctx = ctxFor('off', { monitors: { enabled: false } });
    const step = monitorsStep();
    await step.start(ctx);
    await step.stop(ctx, 'finished');
    ctx.log.close();
    const recs = verifyLogText(readFileSync(ctx.log.path, 'utf8')).records;
    expect(recs.map((r) => r.type)).toEqual(['log.opened', 'monitor.started']);
    expect(recs[1]!.data).toMatchObject({ monitors: [], disabled: true });
  });
});

function kuzet(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/kuzet.mjs', ...args], { env: { ...process.env, KUZET_HOME: join(dir, 'cli-home'), ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('kuzet monitor', () => {
  it('--json prints NDJSON events as they happen and exits 0 after --duration', async () => {
    const r = await kuzet(['monitor', '--duration', '1', '--json', '--only', 'process,vm,device'], { DISPLAY: '' });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
    expect(lines[0]!.type).toBe('monitor.started');
    expect(lines.map((l) => l.type)).toEqual(expect.arrayContaining(['monitor.vm.summary', 'monitor.device.snapshot', 'monitor.stopped']));
    expect(lines.at(-1)!.type).toBe('monitor.stopped');
  });
  it('--preflight prints the checklist; bad options are usage errors (exit 2)', async () => {
    const r = await kuzet(['monitor', '--preflight', '--only', 'process,vm', '--lang', 'ru']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/CLEAN\s+process\s+Запрещённые программы не запущены/);
    expect(r.stdout).toMatch(/preflight: the exam may start/);
    expect((await kuzet(['monitor', '--only', 'camera'])).code).toBe(2);
    expect((await kuzet(['monitor', '--duration', 'soon'])).code).toBe(2);
  });
});
