import { homedir, platform } from 'node:os';
import { join, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';

/**
 * The one data directory for all machine state: keys, machine config, unfinished sessions, sealed bundles and the
 * upload spool. `KUZET_HOME` overrides the per-OS default so that tests and several instances never collide.
 */
export function kuzetHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KUZET_HOME && env.KUZET_HOME.trim() !== '') return resolve(env.KUZET_HOME);
  switch (platform()) {
    case 'win32':
      return join(env.PROGRAMDATA || join(homedir(), 'AppData', 'Local'), 'Kuzet');
    case 'darwin':
      return join(homedir(), 'Library', 'Application Support', 'Kuzet');
    default:
      return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'kuzet');
  }
}

export interface HomeLayout {
  root: string;
  keys: string;
  config: string;
  sessions: string;
  bundles: string;
  spool: string;
}

export function homeLayout(root = kuzetHome()): HomeLayout {
  return {
    root,
    keys: join(root, 'keys'),
    config: join(root, 'config.json'),
    sessions: join(root, 'sessions'),
    bundles: join(root, 'bundles'),
    spool: join(root, 'spool'),
  };
}

export function ensureHome(root = kuzetHome()): HomeLayout {
  const l = homeLayout(root);
  for (const d of [l.root, l.sessions, l.bundles, l.spool]) mkdirSync(d, { recursive: true });
  mkdirSync(l.keys, { recursive: true, mode: 0o700 });
  return l;
}
