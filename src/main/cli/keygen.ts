import { ensureHome } from '../core/home.js';
import { generateKeyPair, saveKeyPair } from '../core/keys.js';
import { parse } from './args.js';

export async function keygenCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { force: { type: 'boolean' }, name: { type: 'string' }, help: { type: 'boolean' } }, false);
  if (values.help) {
    console.log('usage: kuzet keygen [--force] [--name device]\nMakes an Ed25519 key under $KUZET_HOME/keys (private key file mode 0600).');
    return 0;
  }
  const home = ensureHome();
  const kp = generateKeyPair();
  const p = saveKeyPair(home.keys, kp, values.name ?? 'device', !!values.force);
  console.log(`key id ${kp.keyid}`);
  console.log(`private key ${p.priv} (mode 0600)`);
  console.log(`public key ${p.pub}`);
  return 0;
}
