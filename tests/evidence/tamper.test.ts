import { appendFileSync, cpSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/main/core/canonical.js';
import { GENESIS, recordHash, type LogRecord } from '../../src/main/core/eventlog.js';
import { generateKeyPair, signEnvelope } from '../../src/main/core/keys.js';
import { MANIFEST_PAYLOAD_TYPE, type Manifest } from '../../src/main/evidence/format.js';
import { verifyBundle, type VerifyReport } from '../../src/main/evidence/verify.js';
import { kuzet } from '../helpers/cli.js';
import { cleanup, tmpDir } from '../helpers/tmp.js';

const root = tmpDir('kuzet-tamper-');
let original = '';
let n = 0;
const env = { KUZET_HOME: join(root, 'home'), KUZET_MIN_FREE_BYTES: '1000', DISPLAY: '' };

/** A fresh copy of the demo bundle for one tamper case. */
function copy(): string {
  const d = join(root, `case-${++n}`);
  cpSync(original, d, { recursive: true });
  return d;
}

function messages(r: VerifyReport): string {
  return r.problems.map((p) => p.message).join('\n');
}

function segs(dir: string, source: string): string[] {
  return readdirSync(join(dir, 'media', source)).filter((f) => f.endsWith('.ts')).sort();
}

function flipByte(file: string, at = 0.5): void {
  const b = readFileSync(file);
  const i = Math.floor(b.length * at);
  b[i] = b[i]! ^ 0x01;
  writeFileSync(file, b);
}

function rewriteLog(dir: string, edit: (recs: LogRecord[]) => LogRecord[], rechain = false): void {
  const p = join(dir, 'events.ndjson');
  let recs = readFileSync(p, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as LogRecord);
  recs = edit(recs);
  if (rechain) {
    let prev = GENESIS;
    recs = recs.map((r, i) => { const b = { ...r, seq: i, prev }; const h = recordHash(b); prev = h; return { ...b, hash: h }; });
  }
  writeFileSync(p, recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

beforeAll(async () => {
  const r = await kuzet(['session', '--demo', '--duration', '8', '--out', join(root, 'out'), '--quiet'], env);
  expect(r.code, r.stderr).toBe(0);
  original = r.stdout.trim().split('\n').pop()!;
}, 120_000);
afterAll(() => cleanup(root));

describe('kuzet verify on a real demo bundle', () => {
  it('accepts the untouched bundle (CLI exit 0) and it holds real segments for every stream', async () => {
    const r = await kuzet(['verify', original, '--json'], env);
    expect(r.code, r.stdout).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(true);
    for (const s of ['face', 'room', 'screen']) expect(segs(original, s).length, s).toBeGreaterThanOrEqual(1);
    expect(j.checked.segments).toBeGreaterThanOrEqual(3);
  });

  it('exit 2 on usage errors', async () => {
    expect((await kuzet(['verify'], env)).code).toBe(2);
    expect((await kuzet(['verify', original, '--bogus'], env)).code).toBe(2);
  });

  it('flipping one byte of any file makes it invalid and names the file', async () => {
    const pick = (d: string) => [join('media', 'face', segs(d, 'face')[0]!), join('media', 'screen', segs(d, 'screen').at(-1)!), 'events.ndjson', 'session.json'];
    for (const rel of pick(original)) {
      const d = copy();
      flipByte(join(d, rel));
      const r = await verifyBundle(d);
      expect(r.ok, rel).toBe(false);
      expect(messages(r), rel).toContain(rel.split('\\').join('/'));
    }
    const cli = copy();
    flipByte(join(cli, 'media', 'room', segs(cli, 'room')[0]!), 0.9);
    const r = await kuzet(['verify', cli], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/media\/room\/seg-00000\.ts content differs/);
  });

  it('a deleted, reordered or duplicated segment is caught', async () => {
    const del = copy();
    rmSync(join(del, 'media', 'face', segs(del, 'face')[0]!));
    expect(messages(await verifyBundle(del))).toMatch(/media\/face\/seg-00000\.ts is missing/);

    const re = copy();
    const [a, b] = segs(re, 'room');
    expect(b, 'need two room segments').toBeDefined();
    renameSync(join(re, 'media/room', a!), join(re, 'media/room/tmp'));
    renameSync(join(re, 'media/room', b!), join(re, 'media/room', a!));
    renameSync(join(re, 'media/room/tmp'), join(re, 'media/room', b!));
    const rr = messages(await verifyBundle(re));
    expect(rr).toMatch(new RegExp(`media/room/${a} (content differs|has \\d+ bytes, the manifest says)`));
    expect(rr).toMatch(new RegExp(`media/room/${b} (content differs|has \\d+ bytes, the manifest says)`));

    const dup = copy();
    copyFileSync(join(dup, 'media/face', segs(dup, 'face')[0]!), join(dup, 'media/face/seg-00099.ts'));
    expect(messages(await verifyBundle(dup))).toMatch(/media\/face\/seg-00099\.ts is not listed in the manifest/);
  });

  it('an edited, inserted or deleted event is caught and its seq named', async () => {
    const ed = copy();
    rewriteLog(ed, (rs) => rs.map((r) => (r.type === 'session.opened' ? { ...r, data: { ...(r.data as object), studentId: 'someone-else' } } : r)));
    const re = await verifyBundle(ed);
    expect(re.problems.some((p) => p.kind === 'event' && p.seq !== undefined && /edited/.test(p.message))).toBe(true);

    const ins = copy();
    rewriteLog(ins, (rs) => [...rs.slice(0, 3), { ...rs[2]!, type: 'note', data: { forged: true } }, ...rs.slice(3)]);
    expect(messages(await verifyBundle(ins))).toMatch(/seq|chain/);

    const del = copy();
    rewriteLog(del, (rs) => rs.filter((r) => !(r.type === 'segment.closed' && (r.data as { source: string }).source === 'face')), true);
    // Even a re-chained log (every hash recomputed) no longer matches the signed head, and the segment is unannounced.
    const rd = messages(await verifyBundle(del));
    expect(rd).toMatch(/last hash .* is not the signed head|events, the manifest says/);
    expect(rd).toMatch(/media\/face\/seg-00000\.ts was never announced/);
  });

  it('an edited manifest, a swapped signature or a swapped key is caught', async () => {
    const m = copy();
    const man = JSON.parse(readFileSync(join(m, 'manifest.json'), 'utf8')) as Manifest;
    man.session.studentId = 'other-student';
    writeFileSync(join(m, 'manifest.json'), canonicalize(man));
    expect(messages(await verifyBundle(m))).toMatch(/manifest\.json differs from the signed manifest/);

    // Another bundle's signature (here: a signature over a different manifest by the same key) does not fit.
    const s = copy();
    const env2 = JSON.parse(readFileSync(join(s, 'manifest.sig.json'), 'utf8'));
    env2.signatures[0].sig = Buffer.from(env2.signatures[0].sig, 'base64').reverse().toString('base64');
    writeFileSync(join(s, 'manifest.sig.json'), JSON.stringify(env2));
    expect(messages(await verifyBundle(s))).toMatch(/does not verify/);

    // Swapped key file: the signature no longer verifies with it.
    const k = copy();
    const attacker = generateKeyPair();
    writeFileSync(join(k, 'device.pub'), attacker.publicKeyPem);
    expect((await verifyBundle(k)).ok).toBe(false);

    // Full forgery: edited manifest re-signed by another key with its device.pub — caught by pinning the real key.
    const f = copy();
    const pinned = readFileSync(join(f, 'device.pub'), 'utf8');
    const fm = JSON.parse(readFileSync(join(f, 'manifest.json'), 'utf8')) as Manifest;
    fm.session.studentId = 'forged';
    fm.key.keyid = attacker.keyid;
    const bytes = Buffer.from(canonicalize(fm));
    writeFileSync(join(f, 'manifest.json'), bytes);
    writeFileSync(join(f, 'manifest.sig.json'), JSON.stringify(signEnvelope(MANIFEST_PAYLOAD_TYPE, bytes, attacker)));
    writeFileSync(join(f, 'device.pub'), attacker.publicKeyPem);
    const unpinned = await verifyBundle(f);
    expect(unpinned.keyPinned).toBe(false);
    expect(unpinned.warnings.join(' ')).toMatch(/taken from the bundle itself/);
    writeFileSync(join(root, 'pinned.pub'), pinned);
    const r = await kuzet(['verify', f, '--key', join(root, 'pinned.pub')], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/key was swapped|no signature by key/);
  });

  it('a bundle with its signature removed, or a random folder, is invalid with a clear reason', async () => {
    const u = copy();
    rmSync(join(u, 'manifest.sig.json'));
    expect(messages(await verifyBundle(u))).toMatch(/manifest\.sig\.json is missing: the bundle is unsigned/);
    expect(messages(await verifyBundle(join(root, 'does-not-exist')))).toMatch(/is not a folder/);
    const junk = copy();
    appendFileSync(join(junk, 'manifest.sig.json'), '}}}');
    expect(messages(await verifyBundle(junk))).toMatch(/not valid JSON/);
  });
});
