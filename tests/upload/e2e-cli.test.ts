/**
 * Acceptance, end to end with the real CLI on loopback: `kuzet serve` (its own process), `kuzet admin token`,
 * `kuzet enroll`, and a 12-s `kuzet session --demo --server <url>` that records with real ffmpeg, uploads its
 * segments while the exam runs, seals, uploads the rest and waits for the server's signed receipt.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readLogRecords } from '../../src/main/core/eventlog.js';
import { listFiles } from '../../src/main/evidence/hash.js';
import { checkReceipt, type Receipt } from '../../src/main/server/protocol.js';
import { KUZET, ROOT, kuzet } from '../helpers/cli.js';
import { cleanup, tempDir } from '../server/helpers.js';

/** Starts `kuzet serve --port 0` and returns the URL it prints on its first stdout line. */
function serve(data: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KUZET, 'serve', '--data', data, '--port', '0'], { cwd: ROOT });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ child, url: out.split('\n')[0]!.trim(), stderr: () => err });
    });
    child.once('close', (code) => reject(new Error(`kuzet serve exited ${code}: ${err}`)));
  });
}

describe('end to end with the real CLI on loopback', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    cleanup(...dirs);
  });

  it('serve + admin token + enroll + a 12-s demo session: segments go up during the exam, the receipt verifies with the server key, the server copy is byte-identical', async () => {
    const data = tempDir('e2e-srv');
    const home = tempDir('e2e-home');
    dirs.push(data, home);
    // 3-s segments and small synthetic cameras, so several segments close (and go up) while the 12-s exam runs.
    writeFileSync(join(home, 'config.json'), JSON.stringify({
      machine: { id: 'lab9-pc07', lab: 'lab9' },
      recording: { segmentSeconds: 3 },
      sources: {
        face: { kind: 'lavfi', pattern: 'testsrc2', width: 320, height: 240, fps: 10 },
        room: { kind: 'lavfi', pattern: 'smptebars', width: 320, height: 240, fps: 10 },
        screen: { kind: 'lavfi', pattern: 'testsrc', width: 640, height: 360, fps: 5 },
      },
    }));
    const env = { KUZET_HOME: home, DISPLAY: '', KUZET_LANG: 'en' };

    const srv = await serve(data);
    children.push(srv.child);
    expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const tok = await kuzet(['admin', 'token', '--data', data, '--lab', 'lab9']);
    expect(tok.code, tok.stderr).toBe(0);
    const token = tok.stdout.trim();
    expect(token).toMatch(/^kze_/);
    const en = await kuzet(['enroll', '--server', srv.url, '--token', token], env);
    expect(en.code, en.stderr).toBe(0);

    const s = await kuzet(['session', '--demo', '--duration', '12', '--server', srv.url], env, 150_000);
    expect(s.code, s.stderr).toBe(0);
    const bundle = s.stdout.trim().split('\n').at(-1)!;
    expect(existsSync(join(bundle, 'manifest.sig.json')), s.stderr).toBe(true);
    const receiptLine = s.stderr.split('\n').find((l) => l.startsWith('receipt: '));
    expect(receiptLine, s.stderr).toBeDefined();
    const receiptPath = receiptLine!.slice('receipt: '.length).trim();
    const sid = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')).session.id as string;
    expect(receiptPath).toBe(join(home, 'receipts', `${sid}.receipt.json`));

    // The receipt verifies with the server's own key (from its data dir, not from the client's pinned copy).
    const serverPem = readFileSync(join(data, 'keys', 'server.pub'), 'utf8');
    const receipt = JSON.parse(readFileSync(receiptPath, 'utf8')) as Receipt;
    const chk = checkReceipt(receipt, serverPem, { sessionId: sid });
    expect(chk.ok, chk.ok ? '' : chk.reason).toBe(true);
    if (!chk.ok) return;
    expect(chk.payload.verdict).toBe('verified');
    expect(chk.payload.machineId).toBe('lab9-pc07');

    // Segments were acknowledged by the server DURING the exam: upload.acked events before session.finishing.
    const records = readLogRecords(join(bundle, 'events.ndjson'));
    const finishing = records.find((r) => r.type === 'session.finishing');
    expect(finishing).toBeDefined();
    const ackedLive = records.filter((r) => r.type === 'upload.acked' && r.seq < finishing!.seq).map((r) => (r.data as { path: string }).path);
    const segments = records.filter((r) => r.type === 'segment.closed').map((r) => (r.data as { file: string }).file);
    expect(ackedLive.length, `acked during the exam: ${ackedLive.join(', ')}`).toBeGreaterThanOrEqual(2);
    for (const p of ackedLive) expect(segments).toContain(p);

    // Every file of the bundle is in the receipt, and the server's stored copy is byte-identical.
    const { files } = await listFiles(bundle);
    expect(chk.payload.files.map((f) => f.path).sort()).toEqual(files);
    const stored = await listFiles(join(data, 'bundles', sid));
    expect(stored.files).toEqual(files);
    for (const f of files) {
      const local = readFileSync(join(bundle, f));
      const remote = readFileSync(join(data, 'bundles', sid, f));
      expect(remote.equals(local), `${f} differs on the server`).toBe(true);
    }
    expect(chk.payload.totalBytes).toBe(files.reduce((a, f) => a + readFileSync(join(bundle, f)).length, 0));

    srv.child.kill('SIGTERM');
    expect(await new Promise((r) => srv.child.once('close', r))).toBe(0);
  }, 180_000);
});
