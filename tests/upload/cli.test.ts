import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureHome } from '../../src/main/core/home.js';
import { loadKeyPair } from '../../src/main/core/keys.js';
import { checkReceipt } from '../../src/main/server/protocol.js';
import { loadEnrolment } from '../../src/main/upload/client.js';
import { readSpool } from '../../src/main/upload/spool.js';
import { cleanup, makeBundle, tempDir } from '../server/helpers.js';
import { FaultProxy } from './faultproxy.js';

const BIN = fileURLToPath(new URL('../../bin/kuzet.mjs', import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function serve(data: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--data', data, '--port', '0', '--quiet']);
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve({ child, url: line.trim() });
    });
    child.on('close', (code) => reject(new Error(`kuzet serve exited ${code}: ${err}`)));
  });
}

describe('CLI contract: serve, admin token, enroll, upload', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  let proxy: FaultProxy | null = null;
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await proxy?.close();
    cleanup(...dirs);
  });

  it('enrols with a one-time token, uploads, survives kill -9 mid-upload, and prints the receipt path last', async () => {
    const data = tempDir('cli-srv');
    const home = tempDir('cli-home');
    dirs.push(data, home);
    const { child, url } = await serve(data);
    children.push(child);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    proxy = new FaultProxy(Number(new URL(url).port));
    const via = `http://127.0.0.1:${await proxy.listen()}`;
    const env = { KUZET_HOME: home };

    const tok = await run(['admin', 'token', '--data', data, '--lab', 'lab3']);
    expect(tok.code).toBe(0);
    const token = tok.stdout.trim();
    expect(token).toMatch(/^kze_/);
    const en = await run(['enroll', '--server', via, '--token', token, '--machine-id', 'lab3-pc01'], env);
    expect(en.code, en.stderr).toBe(0);
    expect((await run(['enroll', '--server', via, '--token', token], env)).code).toBe(1); // one-time
    const h = ensureHome(home);
    expect(loadEnrolment(h).machineId).toBe('lab3-pc01');

    // Usage and bad-input exit codes.
    expect((await run(['upload'], env)).code).toBe(2);
    const notBundle = await run(['upload', home, '--server', via], env);
    expect(notBundle.code).toBe(1);
    expect(notBundle.stderr).toMatch(/NOT_SEALED/);

    const b = await makeBundle(h.bundles, loadKeyPair(h.keys), { sources: ['screen'], segments: 2, segBytes: 3_000_000 });
    // Slow the link, start the upload, and kill -9 the uploader once the spool shows bytes acknowledged.
    proxy.rates.bytesPerSecond = 1_500_000;
    const up = spawn(process.execPath, [BIN, 'upload', b.dir, '--server', via], { env: { ...process.env, ...env } });
    children.push(up);
    const acked = () => readSpool(h, b.id).some((i) => i.offset > 0);
    const deadline = Date.now() + 60_000;
    while (!acked() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(acked()).toBe(true);
    up.kill('SIGKILL');
    await new Promise((r) => up.once('close', r));
    expect(existsSync(b.dir)).toBe(true);

    proxy.rates.bytesPerSecond = 0;
    const before = proxy.stats.upBytes;
    const again = await run(['upload', b.dir, '--server', via], env);
    expect(again.code, again.stderr).toBe(0);
    expect(proxy.stats.upBytes - before).toBeLessThan(6_000_000);
    expect(again.stderr).toMatch(/Uploading \[#+\] 100%/);
    const last = again.stdout.trim().split('\n').at(-1)!;
    expect(last).toBe(join(home, 'receipts', `${b.id}.receipt.json`));
    const receipt = JSON.parse(readFileSync(last, 'utf8'));
    expect(checkReceipt(receipt, loadEnrolment(h).serverKeyPem, { sessionId: b.id }).ok).toBe(true);

    const sessions = await run(['admin', 'sessions', '--data', data]);
    expect(sessions.stdout).toMatch(new RegExp(`verified\\s+${b.id}`));
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('close', r));
    expect(code).toBe(0);
  }, 180_000);
});
