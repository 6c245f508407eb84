import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** Streams a file through SHA-256 (constant memory, whatever the size). */
export async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

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
