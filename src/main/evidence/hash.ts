import { readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export { hashFile } from '../core/hash.js';

/** All regular files below `root`, as sorted bundle-relative POSIX paths. Symlinks are reported, not followed. */
export async function listFiles(root: string): Promise<{ files: string[]; links: string[] }> {
  const files: string[] = [];
  const links: string[] = [];
  // Direct calls: a bundle has a handful of folders, and on a busy evidence server a listing sent through the thread
  // pool waited behind every upload's disk writes.
  function walk(dir: string): void {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      const rel = relative(root, full).split(sep).join('/');
      if (e.isSymbolicLink()) links.push(rel);
      else if (e.isDirectory()) walk(full);
      else if (e.isFile()) files.push(rel);
    }
  }
  walk(root);
  files.sort();
  links.sort();
  return { files, links };
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}
