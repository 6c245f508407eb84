import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

export { hashFile } from '../core/hash.js';

/** All regular files below `root`, as sorted bundle-relative POSIX paths. Symlinks are reported, not followed. */
export async function listFiles(root: string): Promise<{ files: string[]; links: string[] }> {
  const files: string[] = [];
  const links: string[] = [];
  async function walk(dir: string): Promise<void> {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      const rel = relative(root, full).split(sep).join('/');
      if (e.isSymbolicLink()) links.push(rel);
      else if (e.isDirectory()) await walk(full);
      else if (e.isFile()) files.push(rel);
    }
  }
  await walk(root);
  files.sort();
  links.sort();
  return { files, links };
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}
