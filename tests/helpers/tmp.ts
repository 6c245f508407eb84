import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary folder, removed after the test file unless KUZET_KEEP_TMP=1. */
export function tmpDir(prefix = 'kuzet-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function cleanup(dir: string): void {
  if (process.env.KUZET_KEEP_TMP !== '1') rmSync(dir, { recursive: true, force: true });
}
