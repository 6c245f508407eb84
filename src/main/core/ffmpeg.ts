import { existsSync, accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { KuzetError } from './errors.js';

export interface ToolResolution { path: string; via: 'env' | 'ffmpeg-static' | 'PATH' }

function isExecutable(p: string): boolean {
  try { accessSync(p, constants.X_OK); return true; } catch { return false; }
}

export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const exts = process.platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD').split(';') : [''];
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const p = join(dir, name + ext.toLowerCase());
      if (existsSync(p) && isExecutable(p)) return p;
      const q = join(dir, name + ext);
      if (existsSync(q) && isExecutable(q)) return q;
    }
  }
  return null;
}

/**
 * ffmpeg, in this order: `KUZET_FFMPEG` → the `ffmpeg-static` package (an optional dependency whose binary
 * download may have failed, so the file is checked) → `ffmpeg` on PATH. A clear error names all three.
 */
export function resolveFfmpeg(env: NodeJS.ProcessEnv = process.env): ToolResolution {
  const override = env.KUZET_FFMPEG;
  if (override) {
    if (existsSync(override) && isExecutable(override)) return { path: override, via: 'env' };
    throw new KuzetError('NO_FFMPEG', `KUZET_FFMPEG points to ${override}, which is not an executable file.`);
  }
  if (env.KUZET_NO_FFMPEG_STATIC !== '1') {
    try {
      const req = createRequire(import.meta.url);
      const p = req('ffmpeg-static') as string | null;
      if (p && existsSync(p) && isExecutable(p)) return { path: p, via: 'ffmpeg-static' };
    } catch { /* not installed: fine */ }
  }
  const onPath = findOnPath('ffmpeg', env);
  if (onPath) return { path: onPath, via: 'PATH' };
  throw new KuzetError(
    'NO_FFMPEG',
    'ffmpeg not found: set KUZET_FFMPEG to an ffmpeg binary, install the ffmpeg-static package, or install ffmpeg on PATH (Debian: apt-get install ffmpeg).',
  );
}

/** ffprobe: `KUZET_FFPROBE` → next to the resolved ffmpeg → PATH. */
export function resolveFfprobe(env: NodeJS.ProcessEnv = process.env): ToolResolution {
  if (env.KUZET_FFPROBE) {
    if (isExecutable(env.KUZET_FFPROBE)) return { path: env.KUZET_FFPROBE, via: 'env' };
    throw new KuzetError('NO_FFPROBE', `KUZET_FFPROBE points to ${env.KUZET_FFPROBE}, which is not an executable file.`);
  }
  try {
    const ff = resolveFfmpeg(env);
    const sib = join(dirname(ff.path), process.platform === 'win32' ? 'ffprobe.exe' : 'ffprobe');
    if (isExecutable(sib)) return { path: sib, via: ff.via };
  } catch { /* fall through to PATH */ }
  const p = findOnPath('ffprobe', env);
  if (p) return { path: p, via: 'PATH' };
  throw new KuzetError('NO_FFPROBE', 'ffprobe not found: set KUZET_FFPROBE or install ffmpeg (which includes ffprobe) on PATH.');
}
