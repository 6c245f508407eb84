import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { verifyBundle } from '../../src/main/evidence/verify.js';
import { receiptDigest, type Receipt } from '../../src/main/server/protocol.js';
import type { BridgeResult, KioskState } from '../../src/shared/bridge.js';
import { startKiosk, type Kiosk } from '../ui/harness.js';

let k: Kiosk | null = null;
afterEach(async () => { await k?.close(); k = null; });

const ok = (r: BridgeResult<unknown>): KioskState => {
  if (!r.ok) throw new Error(`bridge error: ${JSON.stringify(r.error)}`);
  return r.value as KioskState;
};

describe('kiosk finish against the real embedded evidence server', () => {
  it('seals, uploads with progress, and releases only with the verified receipt id', async () => {
    k = await startKiosk({ withServer: true });
    const progress: KioskState['finish'][] = [];
    k.service.on('state', (s) => { if (s.finish) progress.push(s.finish); });
    ok(await k.service.invoke('identify', [{ studentId: 'S3001', examCode: 'E' }]));
    let s: KioskState;
    s = ok(await k.service.invoke('runChecks', []));
    expect(s.checks.find((c) => c.id === 'server')).toMatchObject({ status: 'ok' });
    expect(s.checksPassed, JSON.stringify(s.checks)).toBe(true);
    ok(await k.service.invoke('confirmChecks', []));
    ok(await k.service.invoke('acceptRules', []));
    // The live uploader delivers closed segments while the exam runs; wait for the first acknowledgement.
    const ctx = k.service.sessionContext!;
    await new Promise<void>((r) => { const on = (rec: { type: string }) => { if (rec.type === 'upload.acked') { ctx.log.off('record', on); r(); } }; ctx.log.on('record', on); });
    s = ok(await k.service.invoke('finish', []));
    expect(s.finish, JSON.stringify(s.finish)).toMatchObject({ phase: 'done' });
    expect(s.released).toBe(true);
    const phases = progress.map((p) => p!.phase);
    expect(phases.indexOf('sealing')).toBeLessThan(phases.indexOf('uploading'));
    expect(phases.at(-1)).toBe('done');
    expect(s.finish!.totalBytes).toBeGreaterThan(0);
    // Finishing reused the live queue: the first progress already counts what was sent during the exam, and only
    // the rest (last segments, log, manifest, signature) was left.
    const uploading = progress.filter((p) => p!.phase === 'uploading');
    expect(uploading[0]!.sentLiveFiles).toBeGreaterThanOrEqual(1);
    expect(uploading[0]!.sentLiveBytes).toBeGreaterThan(0);
    const counted = uploading.find((p) => p!.filesTotal !== undefined)!;
    expect(counted.sentBytes).toBeGreaterThanOrEqual(counted.sentLiveBytes!);
    expect(counted.filesDone).toBeGreaterThanOrEqual(counted.sentLiveFiles!);
    expect(counted.filesTotal!).toBeGreaterThan(counted.sentLiveFiles!);
    expect(s.finish).toMatchObject({ filesDone: s.finish!.filesTotal, sentBytes: s.finish!.totalBytes });
    // The id shown is the receipt's digest prefix; the receipt was stored and verifies the bundle's manifest.
    const receiptFile = `${k.home.root}/receipts/${s.sessionId}.receipt.json`;
    expect(existsSync(receiptFile)).toBe(true);
    const receipt = JSON.parse(readFileSync(receiptFile, 'utf8')) as Receipt;
    expect(s.finish!.receiptId).toBe(receiptDigest(receipt).slice(0, 16).toUpperCase());
    const payload = JSON.parse(Buffer.from(receipt.payload, 'base64').toString('utf8')) as { manifestSha256: string };
    expect(payload.manifestSha256).toBe(s.finish!.manifestSha256);
    if (existsSync(s.finish!.bundleDir!)) expect((await verifyBundle(s.finish!.bundleDir!)).ok).toBe(true);
  });
});
