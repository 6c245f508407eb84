import { afterAll, beforeAll } from 'vitest';
/** Test fixtures for the evidence server and the uploader: temp homes, synthetic sealed bundles, enrolled devices. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../src/main/core/canonical.js';
import { EventLog } from '../../src/main/core/eventlog.js';
import { ensureHome, type HomeLayout } from '../../src/main/core/home.js';
import { generateKeyPair, saveKeyPair, loadKeyPair, type KeyPair } from '../../src/main/core/keys.js';
import { LOG_FILE } from '../../src/main/evidence/format.js';
import { sealSession, writeSessionState } from '../../src/main/evidence/seal.js';
import { createEnrolToken, startServer, type EvidenceServer } from '../../src/main/server/app.js';
import { ServerClient, saveEnrolment } from '../../src/main/upload/client.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `kuzet-${prefix}-`));
}

export function cleanup(...dirs: string[]): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

let counter = 0;
export function sessionId(): string {
  return `20260101T000000Z-${process.pid.toString(16)}${(counter++).toString(16).padStart(4, '0')}${randomBytes(2).toString('hex')}`;
}

export interface BundleSpec {
  sources?: string[];
  segments?: number;
  /** Bytes of each segment (random, so nothing compresses or dedups by accident). */
  segBytes?: number | (() => number);
  id?: string;
  episodes?: number;
}

/** Opens a session folder with a real hash-chained log; `closeSegment` writes one segment and logs segment.closed. */
export function openSession(root: string, spec: { id?: string; machineId?: string } = {}) {
  const id = spec.id ?? sessionId();
  const dir = join(root, id);
  mkdirSync(join(dir, 'media'), { recursive: true });
  writeSessionState(dir, { id, examId: 'exam-1', studentId: 'stu-001', machineId: spec.machineId ?? 'lab1-pc01', lab: 'lab1', demo: true, configHash: '0'.repeat(64), appVersion: '0.1.0', pid: process.pid, startedAt: Date.now() });
  const log = EventLog.open(join(dir, LOG_FILE), { syncEveryMs: 5000 });
  log.append('session.opened', { id, examId: 'exam-1', studentId: 'stu-001', machineId: spec.machineId ?? 'lab1-pc01' });
  const index = new Map<string, number>();
  return {
    id, dir, log,
    closeSegment(source: string, bytes: number): { file: string; sha256: string; size: number } {
      const i = index.get(source) ?? 0;
      index.set(source, i + 1);
      const file = `media/${source}/seg-${String(i).padStart(5, '0')}.ts`;
      mkdirSync(join(dir, 'media', source), { recursive: true });
      const data = randomBytes(bytes);
      writeFileSync(join(dir, file), data);
      const rec = { source, index: i, file, sha256: sha256Hex(data), size: bytes, duration: 6 };
      log.append('segment.closed', rec);
      return rec;
    },
  };
}

/** A sealed bundle with `segments` segments per source. */
export async function makeBundle(root: string, key: KeyPair, spec: BundleSpec = {}): Promise<{ id: string; dir: string }> {
  const s = openSession(root, { id: spec.id });
  const size = spec.segBytes ?? 20_000;
  for (let k = 0; k < (spec.segments ?? 3); k++) {
    for (const src of spec.sources ?? ['face', 'room', 'screen']) s.closeSegment(src, typeof size === 'function' ? size() : size);
  }
  for (let e = 0; e < (spec.episodes ?? 1); e++) s.log.append('episode.closed', { kind: 'no_face', start: e * 10, end: e * 10 + 5, score: 0.9 });
  await sealSession({ dir: s.dir, log: s.log, key });
  return { id: s.id, dir: s.dir };
}

export interface Device { home: HomeLayout; key: KeyPair; client: ServerClient }

/** A machine home with a device key, enrolled with the server. */
export async function enrolledDevice(srv: EvidenceServer, root: string, opts: { lab?: string; machineId?: string } = {}): Promise<Device> {
  const home = ensureHome(root);
  saveKeyPair(home.keys, generateKeyPair());
  const key = loadKeyPair(home.keys);
  const { token } = createEnrolToken(srv.db, { lab: opts.lab ?? 'lab1', hours: 1, by: 'test' });
  const client = new ServerClient(srv.url, key, { stallMs: 5000 });
  const e = await client.enroll(token, opts.machineId ?? `pc-${key.keyid.slice(0, 6)}`);
  saveEnrolment(home, e);
  return { home, key, client };
}

export async function server(dataDir: string, config: Record<string, unknown> = {}, port = 0): Promise<EvidenceServer> {
  return startServer({ dataDir, port, host: '127.0.0.1', config });
}

/**
 * For a describe block: starts an evidence server on loopback with one enrolled device before its tests and stops
 * it after them. Read `t.srv`, `t.dev`, `t.data` inside the tests.
 */
export function serverWithDevice(config: Record<string, unknown> = {}): { data: string; root: string; srv: EvidenceServer; dev: Device } {
  const t = { data: '', root: '', srv: undefined as unknown as EvidenceServer, dev: undefined as unknown as Device };
  beforeAll(async () => {
    t.data = tempDir('srv');
    t.root = tempDir('home');
    t.srv = await server(t.data, config);
    t.dev = await enrolledDevice(t.srv, t.root);
  });
  afterAll(async () => {
    await t.srv?.close();
    cleanup(t.data, t.root);
  });
  return t;
}
