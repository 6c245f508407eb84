import { readFileSync } from 'node:fs';
import { formatReport, verifyBundle } from '../evidence/verify.js';
import { UsageError } from './index.js';
import { parse } from './args.js';

export async function verifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, key: { type: 'string' }, help: { type: 'boolean' } });
  if (values.help) {
    console.log('usage: kuzet verify <bundle-folder> [--key <device.pub>] [--json]\nExit 0: valid; 1: not valid (each bad file, event or signature is named); 2: usage error.');
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('verify takes exactly one bundle folder (kuzet verify --help)');
  let publicKeyPem: string | undefined;
  if (values.key) {
    try { publicKeyPem = readFileSync(values.key, 'utf8'); } catch (e) { throw new UsageError(`cannot read --key ${values.key}: ${(e as Error).message}`); }
  }
  const report = await verifyBundle(positionals[0]!, { publicKeyPem });
  if (values.json) {
    const { manifest, ...rest } = report;
    console.log(JSON.stringify({ ...rest, session: manifest?.session, time: manifest?.time, streams: manifest?.streams }, null, 2));
  } else {
    console.log(formatReport(report));
  }
  return report.ok ? 0 : 1;
}
