import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KuzetError } from './errors.js';

/** An Ed25519 key pair with its key id: sha256 of the raw 32-byte public key, hex. */
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyid: string;
  publicKeyPem: string;
}

export function rawPublicKey(pub: KeyObject): Buffer {
  const jwk = pub.export({ format: 'jwk' }) as { x?: string };
  if (!jwk.x) throw new KuzetError('BAD_KEY', 'Not an Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

const keyIds = new WeakMap<KeyObject, string>();

export function keyIdOf(pub: KeyObject): string {
  let id = keyIds.get(pub);
  if (id === undefined) { id = createHash('sha256').update(rawPublicKey(pub)).digest('hex'); keyIds.set(pub, id); }
  return id;
}

/**
 * Parsed keys by the hash of their PEM text. Parsing a PEM costs about a millisecond (OpenSSL's decoders), and the same keys
 * are parsed again and again (the server key for every receipt check, the device key at session start and at
 * upload). KeyObjects are immutable, so sharing them is safe. Bounded: the oldest entry goes first.
 */
const parsedKeys = new Map<string, KeyObject>();
const PARSED_KEYS_MAX = 256;

function cachedKey(pem: string, parse: (pem: string) => KeyObject): KeyObject {
  const id = createHash('sha256').update(pem).digest('base64'); // the key text itself is not kept
  let k = parsedKeys.get(id);
  if (!k) {
    k = parse(pem);
    if (parsedKeys.size >= PARSED_KEYS_MAX) parsedKeys.delete(parsedKeys.keys().next().value!);
    parsedKeys.set(id, k);
  }
  return k;
}

export function publicKeyFromPem(pem: string): KeyObject {
  try {
    const k = cachedKey(`pub\0${pem}`, () => createPublicKey(pem));
    if (k.asymmetricKeyType !== 'ed25519') throw new Error(`key type is ${k.asymmetricKeyType}`);
    return k;
  } catch (e) {
    throw new KuzetError('BAD_KEY', `Not a valid Ed25519 public key: ${(e as Error).message}`);
  }
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, keyid: keyIdOf(publicKey), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Where a named key lives under `<home>/keys`: `<name>.key` (PKCS#8 PEM, mode 0600) and `<name>.pub`. */
export function keyPaths(keysDir: string, name = 'device') {
  return { priv: join(keysDir, `${name}.key`), pub: join(keysDir, `${name}.pub`) };
}

export function saveKeyPair(keysDir: string, kp: KeyPair, name = 'device', overwrite = false): { priv: string; pub: string } {
  const p = keyPaths(keysDir, name);
  if (!overwrite && existsSync(p.priv)) {
    throw new KuzetError('KEY_EXISTS', `A ${name} key already exists at ${p.priv}; refusing to overwrite it (use --force to replace it).`);
  }
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  writeFileSync(p.priv, kp.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  chmodSync(p.priv, 0o600);
  writeFileSync(p.pub, kp.publicKeyPem, { mode: 0o644 });
  return p;
}

export function loadKeyPair(keysDir: string, name = 'device'): KeyPair {
  const p = keyPaths(keysDir, name);
  if (!existsSync(p.priv)) {
    throw new KuzetError('NO_KEY', `No ${name} key at ${p.priv}. Run \`kuzet keygen\` first.`, { path: p.priv });
  }
  let privateKey: KeyObject;
  try {
    const pem = readFileSync(p.priv, 'latin1');
    privateKey = cachedKey(`priv\0${pem}`, () => createPrivateKey(pem));
  } catch (e) {
    throw new KuzetError('BAD_KEY', `The ${name} key at ${p.priv} is unreadable: ${(e as Error).message}`, { path: p.priv });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new KuzetError('BAD_KEY', `The key at ${p.priv} is not Ed25519`);
  let pub = publicParts.get(privateKey);
  if (!pub) {
    const publicKey = createPublicKey(privateKey);
    pub = { publicKey, keyid: keyIdOf(publicKey), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
    publicParts.set(privateKey, pub);
  }
  return { privateKey, ...pub };
}

const publicParts = new WeakMap<KeyObject, { publicKey: KeyObject; keyid: string; publicKeyPem: string }>();

export function loadOrCreateKeyPair(keysDir: string, name = 'device'): KeyPair {
  return existsSync(keyPaths(keysDir, name).priv) ? loadKeyPair(keysDir, name) : (saveKeyPair(keysDir, generateKeyPair(), name), loadKeyPair(keysDir, name));
}

// ---------------------------------------------------------------------------------------------------------------
// DSSE envelopes (the payload type is bound into the signature through the pre-authentication encoding).

export interface DsseSignature { keyid: string; sig: string }
export interface DsseEnvelope { payloadType: string; payload: string; signatures: DsseSignature[] }

export function pae(payloadType: string, payload: Buffer): Buffer {
  const t = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), payload]);
}

export function signEnvelope(payloadType: string, payload: Buffer, kp: KeyPair): DsseEnvelope {
  const sig = sign(null, pae(payloadType, payload), kp.privateKey);
  return { payloadType, payload: payload.toString('base64'), signatures: [{ keyid: kp.keyid, sig: sig.toString('base64') }] };
}

export type EnvelopeCheck =
  | { ok: true; payload: Buffer; keyid: string }
  | { ok: false; reason: string };

/** Checks shape, payload type, key id and signature. Never throws on bad input. */
export function verifyEnvelope(env: unknown, expectedType: string, publicKey: KeyObject): EnvelopeCheck {
  if (!env || typeof env !== 'object') return { ok: false, reason: 'signature envelope is not a JSON object' };
  const e = env as Partial<DsseEnvelope>;
  if (typeof e.payloadType !== 'string' || typeof e.payload !== 'string' || !Array.isArray(e.signatures)) {
    return { ok: false, reason: 'signature envelope lacks payloadType, payload or signatures' };
  }
  if (e.payloadType !== expectedType) return { ok: false, reason: `payload type is "${e.payloadType}", expected "${expectedType}"` };
  const payload = Buffer.from(e.payload, 'base64');
  const keyid = keyIdOf(publicKey);
  const s = e.signatures.find((x) => x && x.keyid === keyid);
  if (!s) return { ok: false, reason: `no signature by key ${keyid.slice(0, 16)}… (signed by ${e.signatures.map((x) => String(x?.keyid).slice(0, 16)).join(', ') || 'nobody'})` };
  let good: boolean;
  try {
    good = verify(null, pae(e.payloadType, payload), publicKey, Buffer.from(String(s.sig), 'base64'));
  } catch {
    good = false;
  }
  return good ? { ok: true, payload, keyid } : { ok: false, reason: `signature by key ${keyid.slice(0, 16)}… does not verify` };
}
