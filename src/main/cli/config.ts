import { ensureHome } from '../core/home.js';
import { loadMachineConfig, configHash, parseExamConfig } from '../core/config.js';
import { parse } from './args.js';

export async function configCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { file: { type: 'string' }, help: { type: 'boolean' } }, false);
  if (values.help) {
    console.log('usage: kuzet config [--file <config.json>]\nChecks the machine config and prints the effective settings (defaults filled in).');
    return 0;
  }
  const home = ensureHome();
  const path = values.file ?? home.config;
  const cfg = loadMachineConfig(path, !!values.file);
  console.log(JSON.stringify(cfg, null, 2));
  console.error(`config ok (${path}); hash ${configHash(cfg, parseExamConfig({})).slice(0, 16)}…`);
  return 0;
}
