import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinuxRemoteSource, RemoteSessionMonitor, parseProcNetTcp, parseUtmp, remoteLogins, remoteTcp, type RemoteSource } from '../../src/main/monitors/remote.js';
import type { Emit, MonitorEventMap, RemoteConnection } from '../../src/main/monitors/events.js';

const fx = (name: string) => readFileSync(new URL(`../fixtures/monitors/remote/${name}`, import.meta.url), 'utf8');

/** One glibc utmp record (384 bytes), as login/sshd write it. */
function utmpRecord(type: number, pid: number, line: string, user: string, host: string): Buffer {
  const b = Buffer.alloc(384);
  b.writeInt16LE(type, 0);
  b.writeInt32LE(pid, 4);
  b.write(line, 8, 32);
  b.write(user, 44, 32);
  b.write(host, 76, 256);
  return b;
}

describe('remote sessions: parsing', () => {
  it('/proc/net/tcp and tcp6: only established inbound remote-access connections from another computer', () => {
    const entries = [...parseProcNetTcp(fx('proc-net-tcp.txt')), ...parseProcNetTcp(fx('proc-net-tcp6.txt'))];
    expect(entries).toHaveLength(7);
    expect(entries[1]).toEqual({ local: '10.0.2.15', localPort: 22, remote: '192.168.1.100', remotePort: 54321, state: 1 });
    expect(entries[5]!.remote).toBe('::ffff:192.168.1.101');
    expect(entries[6]!.remote).toBe('::1');
    expect(remoteTcp(entries).map((c) => [c.kind, c.detail])).toEqual([
      ['ssh', '192.168.1.100:54321 → port 22'],
      ['rdp', '::ffff:192.168.1.101:57345 → port 3389'],
    ]);
  });

  it('utmp: network logins only (not the console, a local X display or localhost)', () => {
    const buf = Buffer.concat([
      utmpRecord(7, 100, 'pts/0', 'student', '192.168.1.50'),
      utmpRecord(7, 101, 'tty1', 'student', ''),
      utmpRecord(7, 102, 'pts/1', 'student', ':0'),
      utmpRecord(8, 103, 'pts/2', 'old', '10.0.0.9'), // DEAD_PROCESS: ended
      utmpRecord(7, 104, 'pts/3', 'x', 'localhost'),
    ]);
    expect(parseUtmp(buf)).toHaveLength(5);
    expect(remoteLogins(parseUtmp(buf))).toEqual([{ key: 'utmp:100:pts/0:192.168.1.50', kind: 'login', via: 'utmp', detail: 'student on pts/0 from 192.168.1.50' }]);
  });

  it('LinuxRemoteSource reads a /proc-like root and a utmp file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kuzet-remote-'));
    try {
      mkdirSync(join(dir, 'net'));
      writeFileSync(join(dir, 'net/tcp'), fx('proc-net-tcp.txt'));
      writeFileSync(join(dir, 'net/tcp6'), fx('proc-net-tcp6.txt'));
      writeFileSync(join(dir, 'utmp'), utmpRecord(7, 100, 'pts/0', 'student', '192.168.1.50'));
      const got = await new LinuxRemoteSource(dir, [join(dir, 'missing'), join(dir, 'utmp')]).read();
      expect(got.map((c) => c.kind)).toEqual(['ssh', 'rdp', 'login']);
      await expect(new LinuxRemoteSource(join(dir, 'nope'), []).read()).rejects.toThrow(/not readable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the real source on this machine runs and reports no remote session', async () => {
    expect(await new LinuxRemoteSource().read()).toEqual([]);
  });
});

describe('RemoteSessionMonitor', () => {
  it('reports what is there at start, each new session once, and its end with the duration', async () => {
    const ssh: RemoteConnection = { key: 'tcp:22:1.2.3.4:5000', kind: 'ssh', via: 'tcp', detail: '1.2.3.4:5000 → port 22' };
    const vnc: RemoteConnection = { key: 'tcp:5900:1.2.3.5:6000', kind: 'vnc', via: 'tcp', detail: '1.2.3.5:6000 → port 5900' };
    let now: RemoteConnection[] = [ssh];
    const src: RemoteSource = { name: 'scripted', read: async () => now };
    const events: { type: keyof MonitorEventMap; data: unknown }[] = [];
    const emit: Emit = (type, data) => { events.push({ type, data }); };
    const m = new RemoteSessionMonitor({ emit, source: src, checkMs: 60_000 });
    await m.check();
    await m.check();
    now = [ssh, vnc];
    await m.check();
    now = [ssh];
    await m.check();
    expect(events.map((e) => [e.type, (e.data as { connection: RemoteConnection }).connection.kind, (e.data as { atStart?: boolean }).atStart ?? false])).toEqual([
      ['monitor.remote.connected', 'ssh', true],
      ['monitor.remote.connected', 'vnc', false],
      ['monitor.remote.ended', 'vnc', false],
    ]);
    expect((events[2]!.data as MonitorEventMap['monitor.remote.ended']).durationMs).toBeGreaterThanOrEqual(0);
  });
});
