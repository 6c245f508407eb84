import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

/**
 * Mounts a tmpfs of `size` (e.g. "64k") at `dir` to simulate a full disk. Returns null when mounted, or the reason
 * it could not be (not root, no CAP_SYS_ADMIN) for the test's skip message.
 */
export function mountTinyTmpfs(dir: string, size: string): string | null {
  mkdirSync(dir, { recursive: true });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  return m.status === 0 ? null : `mounting a tiny tmpfs to fill is not permitted here: ${String(m.stderr).trim()}`;
}

export function unmount(dir: string): void {
  spawnSync('umount', ['-l', dir]);
}
