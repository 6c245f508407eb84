import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinuxProcSource, ProcessMonitor, effectiveDenyList, matchDeny, ownTree, parseProcStat, parsePs, parseTasklist } from '../../src/main/monitors/processes.js';
import type { Emit, MonitorEventMap, ProcInfo } from '../../src/main/monitors/events.js';
import { preflight } from '../../src/main/monitors/preflight.js';
import { parseMachineConfig } from '../../src/main/core/config.js';

const p = (o: Partial<ProcInfo> & { pid: number; name: string }): ProcInfo => ({ ppid: 1, exe: null, cmdline: null, uid: 1000, start: 1, ...o });
const deny = effectiveDenyList({});

describe('deny-list matching', () => {
  it('matches on name, file name without .exe, and argv[0]', () => {
    expect(matchDeny(p({ pid: 2, name: 'AnyDesk.exe' }), deny)).toMatchObject({ entry: 'AnyDesk', category: 'remote', policy: 'terminate', matchedBy: ['name'] });
    expect(matchDeny(p({ pid: 2, name: 'x', exe: 'C:\\Users\\s\\AppData\\Roaming\\Telegram Desktop\\Telegram.exe' }), deny)).toMatchObject({ entry: 'Telegram', matchedBy: ['name', 'path'] });
    expect(matchDeny(p({ pid: 2, name: 'sh', cmdline: '/opt/obs-studio/bin/obs --startrecording' }), deny)).toMatchObject({ entry: 'OBS Studio', matchedBy: ['name'] });
  });
  it('a renamed binary in a known install folder matches by path only', () => {
    expect(matchDeny(p({ pid: 3, name: 'notepad', exe: '/usr/share/anydesk/notepad' }), deny)).toMatchObject({ entry: 'AnyDesk', matchedBy: ['path'] });
  });
  it("Linux's 15-character process names match the longer entry they are a prefix of", () => {
    expect(matchDeny(p({ pid: 4, name: 'remoting_deskto' }), deny)).toMatchObject({ entry: 'Chrome Remote Desktop' });
    expect(matchDeny(p({ pid: 4, name: 'remoting' }), deny)).toBeNull();
  });
  it('ordinary programs do not match; browsers are flagged, not terminated', () => {
    for (const name of ['bash', 'code', 'libreoffice', 'Xorg', 'node', 'kuzet']) expect(matchDeny(p({ pid: 5, name }), deny)).toBeNull();
    expect(matchDeny(p({ pid: 5, name: 'firefox-esr' }), deny)?.policy).toBe('flag');
  });
  it('an exam can replace or extend the list', () => {
    const mine = effectiveDenyList({ deny: [{ name: 'Calc', match: ['gnome-calculator'], paths: [], category: 'other', policy: 'flag' }], denyExtra: [{ name: 'X', match: ['Foo.EXE'], paths: ['C:\\Foo\\'], category: 'other', policy: 'terminate' }] });
    expect(mine.map((e) => e.name)).toEqual(['Calc', 'X']);
    expect(mine[1]).toMatchObject({ match: ['foo'], paths: ['c:/foo/'] });
    expect(matchDeny(p({ pid: 6, name: 'anydesk' }), mine)).toBeNull();
  });
  it('parses /proc stat with spaces and parentheses in the name, ps and tasklist output', () => {
    expect(parseProcStat('123 (a (b) c) S 1 123 123 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0')).toEqual({ name: 'a (b) c', state: 'S', ppid: 1, start: 98765 });
    expect(parsePs('  501   1   501 /Applications/AnyDesk.app/Contents/MacOS/AnyDesk\n')[0]).toMatchObject({ pid: 501, name: 'AnyDesk', exe: '/Applications/AnyDesk.app/Contents/MacOS/AnyDesk' });
    expect(parseTasklist('"TeamViewer.exe","4321","Console","1","52,108 K"\r\n')[0]).toMatchObject({ pid: 4321, name: 'TeamViewer.exe' });
  });
  it('never reports our own process tree', () => {
    const list = [p({ pid: 1, name: 'init', ppid: 0 }), p({ pid: 10, name: 'shell', ppid: 1 }), p({ pid: 20, name: 'kuzet', ppid: 10 }), p({ pid: 30, name: 'anydesk', ppid: 20 }), p({ pid: 40, name: 'anydesk', ppid: 1 })];
    const mine = ownTree(list, 20);
    expect([...mine].sort((a, b) => a - b)).toEqual([1, 10, 20, 30]);
  });
});

describe('real processes (Linux /proc)', () => {
  let dir: string;
  let anydesk: string;
  // Not "anydesk" itself: other test files run real sessions at the same time, whose built-in deny list ends any
  // process by that name on the machine. This name is on no list but the tests' own.
  const fakeName = `remotedesk${process.pid % 1000}`;
  const started: number[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kuzet-proc-'));
    anydesk = join(dir, fakeName);
    copyFileSync('/bin/sleep', anydesk);
    chmodSync(anydesk, 0o755);
  });
  afterAll(() => {
    for (const pid of started) { try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ } }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the copy the way a user would: not as our child (the shell exits, the process is re-parented). */
  const startAnydesk = (): number => {
    const pid = Number(execFileSync('sh', ['-c', `"${anydesk}" 30 >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' }).trim());
    started.push(pid);
    return pid;
  };
  const alive = (pid: number) => { try { return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; } };
  const collect = () => { const ev: { type: string; data: unknown }[] = []; const emit: Emit = (type, data) => { ev.push({ type, data }); }; return { ev, emit }; };
  const only = [{ name: 'AnyDesk', match: [fakeName], paths: [] as string[], category: 'remote' as const, policy: 'flag' as const }];

  it.skipIf(process.platform !== 'linux')('a copied `sleep` named anydesk is found within one scan interval and flagged once', async () => {
    const c = collect();
    const m = new ProcessMonitor({ emit: c.emit, source: new LinuxProcSource(), deny: only, scanMs: 300, terminate: true });
    m.start();
    await new Promise((r) => setTimeout(r, 350));
    const scansBefore = m.scans;
    const pid = startAnydesk();
    const t0 = performance.now();
    while (!c.ev.some((e) => e.type === 'monitor.process.found') && performance.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
    const found = c.ev.find((e) => e.type === 'monitor.process.found')?.data as MonitorEventMap['monitor.process.found'];
    expect(found).toMatchObject({ pid, name: fakeName, exe: anydesk, entry: 'AnyDesk', policy: 'flag', matchedBy: ['name'], phase: 'exam' });
    expect(m.scans - scansBefore).toBeLessThanOrEqual(2); // the scan that was due, at most one interval later
    await new Promise((r) => setTimeout(r, 700));
    expect(c.ev.filter((e) => e.type === 'monitor.process.found')).toHaveLength(1);
    expect(alive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    while (!c.ev.some((e) => e.type === 'monitor.process.exited') && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    await m.stop();
    expect(c.ev.at(-1)).toMatchObject({ type: 'monitor.process.exited', data: { pid, entry: 'AnyDesk' } });
  });

  it.skipIf(process.platform !== 'linux')('with policy "terminate" it is gone and both facts are logged', async () => {
    const c = collect();
    const pid = startAnydesk();
    const m = new ProcessMonitor({ emit: c.emit, source: new LinuxProcSource(), deny: [{ ...only[0]!, policy: 'terminate' }], scanMs: 300, terminate: true, graceMs: 1000 });
    const r = await m.scan();
    expect(alive(pid)).toBe(false);
    expect(r.blockers).toHaveLength(0);
    expect(c.ev.map((e) => e.type)).toEqual(['monitor.process.found', 'monitor.process.terminated']);
    expect(c.ev[1]!.data).toMatchObject({ pid, entry: 'AnyDesk', signal: 'SIGTERM' });
    await m.scan();
    expect(c.ev).toHaveLength(2); // no "exited" for a process we ended
  });

  it.skipIf(process.platform !== 'linux')('preflight blocks the exam while a "terminate" entry cannot be ended, in kk/ru/en', async () => {
    const pid = startAnydesk();
    const cfg = parseMachineConfig({ monitors: { deny: [{ name: 'AnyDesk', match: [fakeName], policy: 'terminate', category: 'remote' }] } }).monitors;
    const refuses = { signal: () => { throw Object.assign(new Error('operation not permitted'), { code: 'EPERM' }); }, alive: async () => true };
    const ev: string[] = [];
    const r = await preflight(cfg, { only: ['process'], sources: { killer: refuses }, emit: (t) => { ev.push(t); } });
    expect(r.ok).toBe(false);
    expect(r.blocked[0]).toMatchObject({ id: 'process', status: 'blocked' });
    expect(r.blocked[0]!.title.en).toContain('AnyDesk');
    expect(r.blocked[0]!.title.ru).toContain('Закройте');
    expect(r.blocked[0]!.title.kk).toContain('жабыңыз');
    expect(r.blocked[0]!.details.join('\n')).toMatch(/no permission/);
    expect(ev).toEqual(['monitor.process.found', 'monitor.process.terminate_failed']);
    // With a killer that works the same check passes and says what it closed.
    const ok = await preflight(cfg, { only: ['process'] });
    expect(ok.ok).toBe(true);
    expect(ok.items[0]!.title.en).toMatch(/1 forbidden program/);
    expect(alive(pid)).toBe(false);
  });
});
