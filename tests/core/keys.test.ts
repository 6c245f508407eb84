import { statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair, loadKeyPair, saveKeyPair, signEnvelope, verifyEnvelope, pae } from '../../src/main/core/keys.js';
import { cleanup, tmpDir } from '../helpers/tmp.js';

const dir = tmpDir();
afterAll(() => cleanup(dir));

describe('device keys and DSSE envelopes', () => {
  it('saves the private key with mode 0600 and loads the same key back', () => {
    const kp = generateKeyPair();
    const p = saveKeyPair(join(dir, 'keys'), kp);
    expect(statSync(p.priv).mode & 0o777).toBe(0o600);
    expect(loadKeyPair(join(dir, 'keys')).keyid).toBe(kp.keyid);
    expect(() => saveKeyPair(join(dir, 'keys'), generateKeyPair())).toThrow(/refusing to overwrite/);
    expect(readFileSync(p.pub, 'utf8')).toContain('BEGIN PUBLIC KEY');
  });

  it('names the missing key file', () => {
    expect(() => loadKeyPair(join(dir, 'nowhere'))).toThrow(/No device key at .*nowhere.*kuzet keygen/);
  });

  it('uses the DSSE pre-authentication encoding', () => {
    expect(pae('t/x', Buffer.from('hello')).toString()).toBe('DSSEv1 3 t/x 5 hello');
  });

  it('verifies a good envelope and rejects another type, another key, a changed payload', () => {
    const kp = generateKeyPair();
    const other = generateKeyPair();
    const env = signEnvelope('application/x-test', Buffer.from('{"a":1}'), kp);
    expect(verifyEnvelope(env, 'application/x-test', kp.publicKey)).toMatchObject({ ok: true });
    expect(verifyEnvelope(env, 'application/x-other', kp.publicKey)).toMatchObject({ ok: false, reason: expect.stringMatching(/payload type/) });
    expect(verifyEnvelope(env, 'application/x-test', other.publicKey)).toMatchObject({ ok: false, reason: expect.stringMatching(/no signature by key/) });
    const changed = { ...env, payload: Buffer.from('{"a":2}').toString('base64') };
    expect(verifyEnvelope(changed, 'application/x-test', kp.publicKey)).toMatchObject({ ok: false, reason: expect.stringMatching(/does not verify/) });
    expect(verifyEnvelope('junk', 'application/x-test', kp.publicKey)).toMatchObject({ ok: false });
  });
});
