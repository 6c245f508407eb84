/** Test helper: a private Xvfb + openbox display, and small X windows (xmessage) to focus with xdotool. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { findOnPath } from '../../src/main/core/ffmpeg.js';

export const X_TOOLS = ['Xvfb', 'openbox', 'xdotool', 'xmessage', 'xprop'];
export const missingXTools = (): string[] => X_TOOLS.filter((t) => !findOnPath(t));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface XServer {
  display: string;
  env: NodeJS.ProcessEnv;
  window(title: string, setPid?: boolean): Promise<{ id: string; pid: number; proc: ChildProcess }>;
  activate(id: string): void;
  /** Pids of Xvfb, openbox and the windows (to leave their CPU out of measurements). */
  pids(): number[];
  stop(): Promise<void>;
}

/** `auth.write(displayNumber)` returns an Xauthority file for Xvfb's -auth (access control on, clients need the cookie). */
export async function startXServer(opts: { auth?: (displayNumber: number) => string } = {}): Promise<XServer> {
  // Test files run in parallel, each with its own X server: a display number is ours only once the lock file Xvfb
  // writes names our Xvfb's pid (two workers can pick the same free number at the same moment; the loser exits).
  let n = 150 + (process.pid % 500);
  let display = '';
  let authFile: string | undefined;
  let xvfb: ChildProcess | undefined;
  for (let attempt = 0; attempt < 20 && !xvfb; attempt++, n++) {
    while (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) n++;
    const a = opts.auth?.(n);
    const p = spawn('Xvfb', [`:${n}`, '-screen', '0', '800x600x24', '-nolisten', 'tcp', ...(a ? ['-auth', a] : [])], { stdio: 'ignore' });
    for (let i = 0; i < 200 && p.exitCode === null && !existsSync(`/tmp/.X11-unix/X${n}`); i++) await sleep(50);
    let owner = '';
    try { owner = readFileSync(`/tmp/.X${n}-lock`, 'utf8').trim(); } catch { /* not there */ }
    if (p.exitCode === null && owner === String(p.pid)) { xvfb = p; display = `:${n}`; authFile = a; } else p.kill('SIGTERM');
  }
  if (!xvfb) throw new Error('Xvfb could not start on a free display');
  const env = { ...process.env, DISPLAY: display, ...(authFile ? { XAUTHORITY: authFile } : {}) };
  const procs: ChildProcess[] = [xvfb];
  // openbox is ready when it announces _NET_ACTIVE_WINDOW support on the root window (what xdotool windowactivate
  // checks); under a loaded CI machine that can take seconds, so wait up to 20 s. An openbox that exits before that
  // (a clean-clone CI run once saw one never announce) is started again, up to three times, and what it printed is
  // in the error if it never comes.
  let ready = false;
  let wmErr = '';
  const deadline = Date.now() + 20_000;
  for (let start = 0; start < 3 && !ready && Date.now() < deadline; start++) {
    const wm = spawn('openbox', [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    wm.stderr!.on('data', (d: Buffer) => { wmErr = (wmErr + String(d)).slice(-500); });
    procs.push(wm);
    while (!ready && wm.exitCode === null && wm.signalCode === null && Date.now() < deadline) {
      try {
        const root = execFileSync('xprop', ['-root', '_NET_SUPPORTING_WM_CHECK', '_NET_SUPPORTED'], { env, encoding: 'utf8' });
        ready = /window id/.test(root) && /_NET_ACTIVE_WINDOW/.test(root);
      } catch { /* not yet */ }
      if (!ready) await sleep(50);
    }
  }
  if (!ready) {
    for (const p of procs) p.kill('SIGTERM');
    throw new Error(`openbox on ${display} did not announce _NET_ACTIVE_WINDOW within 20 s${wmErr ? `; it said: ${wmErr.trim()}` : ''}`);
  }
  return {
    display, env,
    async window(title, setPid = true) {
      const proc = spawn('xmessage', ['-title', title, title], { env, stdio: 'ignore' });
      procs.push(proc);
      let id = '';
      for (let i = 0; i < 100 && !id; i++) {
        await sleep(50);
        try { id = execFileSync('xdotool', ['search', '--name', `^${title}$`], { env, encoding: 'utf8' }).trim().split('\n')[0] ?? ''; } catch { /* not mapped yet */ }
      }
      if (!id) throw new Error(`window "${title}" did not appear`);
      const hex = '0x' + Number(id).toString(16);
      // xmessage (Xt) does not set _NET_WM_PID; a real app (Electron, GTK, Qt) does. Set it as they would.
      if (setPid) execFileSync('xprop', ['-id', hex, '-f', '_NET_WM_PID', '32c', '-set', '_NET_WM_PID', String(proc.pid)], { env });
      return { id: hex, pid: proc.pid!, proc };
    },
    pids: () => procs.map((p) => p.pid!).filter(Boolean),
    activate(id) {
      execFileSync('xdotool', ['windowactivate', '--sync', id], { env });
    },
    async stop() {
      for (const p of procs.reverse()) if (p.exitCode === null) p.kill('SIGTERM');
      await sleep(100);
    },
  };
}
