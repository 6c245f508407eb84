import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../core/canonical.js';

/** A random bearer/enrolment secret with a readable prefix (kze_ enrolment, kzd_ device, kza_ account). */
export function newSecret(prefix: 'kze' | 'kzd' | 'kza'): string {
  return `${prefix}_${randomBytes(24).toString('base64url')}`;
}

/** Secrets (tokens) are stored only as their SHA-256. */
export const secretHash = (secret: string): string => sha256Hex(secret);

const N = 16384;
const R = 8;
const P = 1;
const LEN = 32;

function scryptAsync(pw: string, salt: Buffer, n: number, r: number, p: number, len: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(pw, salt, len, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** scrypt (N=16384, r=8, p=1), stored as `scrypt$N$r$p$salt$hash` (base64url). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, N, R, P, LEN);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const want = Buffer.from(hash, 'base64url');
  const got = await scryptAsync(password, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p), want.length);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A fixed hash to compare against when the user does not exist, so timing does not reveal account names. */
export const DUMMY_PASSWORD_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
