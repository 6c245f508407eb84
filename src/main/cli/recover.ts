import { resolve } from 'node:path';
import { ensureHome } from '../core/home.js';
import { loadKeyPair } from '../core/keys.js';
import { recoverSessions } from '../session/recover.js';
import { parse } from './args.js';

export async function recoverCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { out: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean' } }, false);
  if (values.help) {
    console.log('usage: kuzet recover [--out <dir>] [--force]\nSeals every unfinished session in $KUZET_HOME/sessions into a signed bundle marked "recovered".\n--force also takes sessions whose process still seems to run.');
    return 0;
  }
  const home = ensureHome();
  const key = loadKeyPair(home.keys);
  const results = await recoverSessions(home, key, { outDir: values.out ? resolve(values.out) : undefined, force: !!values.force });
  if (results.length === 0) console.error('recover: no unfinished sessions');
  let failed = 0;
  for (const r of results) {
    if (r.error) { failed++; console.error(`recover: ${r.id}: FAILED: ${r.error}`); }
    else if (r.skipped) console.error(`recover: ${r.id}: skipped (${r.skipped})`);
    else console.error(`recover: ${r.id}: sealed`);
  }
  for (const r of results) if (r.bundleDir) console.log(r.bundleDir);
  return failed ? 1 : 0;
}
