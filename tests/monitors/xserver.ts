/** Test helper: a private Xvfb + openbox display, and small X windows (xmessage) to focus with xdotool. */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
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
  let n = 150 + (process.pid % 500);
  while (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) n++;
  const display = `:${n}`;
  const authFile = opts.auth?.(n);
  const env = { ...process.env, DISPLAY: display, ...(authFile ? { XAUTHORITY: authFile } : {}) };
  const procs: ChildProcess[] = [];
  const xvfb = spawn('Xvfb', [display, '-screen', '0', '800x600x24', '-nolisten', 'tcp', ...(authFile ? ['-auth', authFile] : [])], { stdio: 'ignore' });
  procs.push(xvfb);
  for (let i = 0; i < 100 && !existsSync(`/tmp/.X11-unix/X${n}`); i++) await sleep(50);
  const wm = spawn('openbox', [], { env, stdio: 'ignore' });
  procs.push(wm);
  // openbox is ready when it announces _NET_ACTIVE_WINDOW support on the root window (what xdotool windowactivate
  // checks); under a loaded CI machine that can take seconds, so wait up to 20 s and say so if it never comes.
  let ready = false;
  for (let i = 0; i < 400 && !ready; i++) {
    try {
      const root = execFileSync('xprop', ['-root', '_NET_SUPPORTING_WM_CHECK', '_NET_SUPPORTED'], { env, encoding: 'utf8' });
      ready = /window id/.test(root) && /_NET_ACTIVE_WINDOW/.test(root);
    } catch { /* not yet */ }
    if (!ready) await sleep(50);
  }
  if (!ready) {
    for (const p of procs) p.kill('SIGTERM');
    throw new Error(`openbox on ${display} did not announce _NET_ACTIVE_WINDOW within 20 s`);
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
