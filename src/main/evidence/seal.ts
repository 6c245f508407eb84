import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync, renameSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalize, sha256Hex } from '../core/canonical.js';
import { KuzetError } from '../core/errors.js';
import { EventLog, readLogRecords, type LogRecord } from '../core/eventlog.js';
import { signEnvelope, type KeyPair } from '../core/keys.js';
import { APP_VERSION } from '../core/version.js';
import {
  BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, LOG_FILE, MANIFEST_FILE, MANIFEST_PAYLOAD_TYPE, PUBLIC_KEY_FILE, SELF_FILES,
  SEGMENT_FILE, SESSION_STATE_FILE, SIGNATURE_FILE, type Manifest, type ManifestFile, type SessionIdentity, type StreamSummary,
} from './format.js';
import { hashFile, listFiles } from './hash.js';

/** Immutable facts about a session, written to session.json when it opens (and listed in the bundle). */
export interface SessionState extends SessionIdentity {
  configHash: string;
  appVersion: string;
  pid: number;
  startedAt: number;
}

export function writeSessionState(dir: string, state: SessionState): void {
  writeFileDurable(join(dir, SESSION_STATE_FILE), JSON.stringify(state, null, 2) + '\n');
}

export function readSessionState(dir: string): SessionState {
  const p = join(dir, SESSION_STATE_FILE);
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as SessionState;
  } catch (e) {
    throw new KuzetError('BAD_SESSION', `Session folder ${dir} has no readable ${SESSION_STATE_FILE}: ${(e as Error).message}`, { path: p });
  }
}

export function isSealed(dir: string): boolean {
  return existsSync(join(dir, SIGNATURE_FILE)) && existsSync(join(dir, MANIFEST_FILE));
}

/** Writes a file through a temporary name, fsyncs it and renames it into place: a crash leaves old or new, never half. */
export function writeFileDurable(path: string, data: string | Buffer, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  const fd = openSync(tmp, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, path);
}

interface SegmentEvent { source: string; index: number; file: string; sha256: string; size: number; duration?: number | null }

function segmentEvents(records: LogRecord[]): SegmentEvent[] {
  return records.filter((r) => r.type === 'segment.closed').map((r) => r.data as SegmentEvent);
}

export interface SealOptions {
  dir: string;
  /** The open log (a live session), or omitted to reopen the log on disk (recovery). */
  log?: EventLog;
  key: KeyPair;
  recovered?: boolean;
  /** Extra data for the final `session.sealed` event. */
  note?: Record<string, unknown>;
}

export interface SealResult { manifest: Manifest; manifestSha256: string; dir: string }

/**
 * Seals a session folder in place: re-hashes every file, records any file that changed since its
 * `segment.closed` event, appends `session.sealed`, closes the log, writes manifest.json (RFC 8785 bytes),
 * manifest.sig.json (DSSE, Ed25519) and device.pub. Deletes nothing.
 */
export async function sealSession(opts: SealOptions): Promise<SealResult> {
  const { dir, key } = opts;
  if (isSealed(dir)) throw new KuzetError('ALREADY_SEALED', `Session ${dir} is already sealed.`);
  const state = readSessionState(dir);
  // Temporary files of an earlier sealing attempt that failed (disk full) are ours, not evidence.
  for (const f of readdirSync(dir)) if (/^(manifest\.json|manifest\.sig\.json|device\.pub)\.tmp-\d+$/.test(f)) rmSync(join(dir, f));
  const log = opts.log ?? EventLog.open(join(dir, LOG_FILE));

  // 1. Hash everything except the log (still open) and the bundle's own files.
  const { files: onDisk, links } = await listFiles(dir);
  const hashed = new Map<string, { sha256: string; size: number }>();
  for (const rel of onDisk) {
    if (SELF_FILES.has(rel) || rel === LOG_FILE || rel.includes('.tmp-')) continue;
    hashed.set(rel, await hashFile(join(dir, rel)));
  }
  for (const l of links) log.append('evidence.link_skipped', { path: l });

  // 2. Cross-check segments against what was logged when they closed.
  const before = readLogRecords(log.path);
  const segs = segmentEvents(before);
  const logged = new Set(segs.map((s) => s.file));
  for (const s of segs) {
    const h = hashed.get(s.file);
    if (!h) log.append('evidence.missing', { file: s.file, expectedSha256: s.sha256 });
    else if (h.sha256 !== s.sha256 || h.size !== s.size) {
      log.append('evidence.changed', { file: s.file, loggedSha256: s.sha256, loggedSize: s.size, sha256: h.sha256, size: h.size });
    }
  }
  for (const rel of hashed.keys()) {
    if (SEGMENT_FILE.test(rel) && !logged.has(rel)) log.append('evidence.unlogged_media', { file: rel, ...hashed.get(rel) });
  }

  const features = [...before].reverse().find((r) => r.type === 'session.features')?.data as
    | { models?: Record<string, string>; degraded?: string[] }
    | undefined;
  const end = Date.now();
  log.append('session.sealed', { recovered: !!opts.recovered, files: hashed.size + 1, ...(opts.note ?? {}) });
  const head = log.head;
  const count = log.count;
  log.close();
  hashed.set(LOG_FILE, await hashFile(join(dir, LOG_FILE)));

  const files: ManifestFile[] = [...hashed.entries()].map(([path, h]) => ({ path, sha256: h.sha256, size: h.size }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  const streams: Record<string, StreamSummary> = {};
  for (const s of segs) {
    const st = (streams[s.source] ??= { segments: 0, durationSec: 0, bytes: 0 });
    st.segments++;
    st.bytes += s.size;
    st.durationSec = st.durationSec === null || typeof s.duration !== 'number' ? null : Math.round((st.durationSec + s.duration) * 1000) / 1000;
  }

  const manifest: Manifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    session: { id: state.id, examId: state.examId, studentId: state.studentId, machineId: state.machineId, ...(state.lab ? { lab: state.lab } : {}), demo: state.demo },
    app: { name: 'kuzet', version: state.appVersion || APP_VERSION },
    configHash: state.configHash,
    models: features?.models ?? {},
    degraded: features?.degraded ?? [],
    time: { start: state.startedAt, end, durationMs: end - state.startedAt },
    log: { file: LOG_FILE, count, headSeq: head.seq, headHash: head.hash },
    streams,
    files,
    recovered: !!opts.recovered,
    sealedAt: end,
    key: { alg: 'ed25519', keyid: key.keyid },
  };
  const bytes = Buffer.from(canonicalize(manifest), 'utf8');
  const envelope = signEnvelope(MANIFEST_PAYLOAD_TYPE, bytes, key);
  writeFileDurable(join(dir, PUBLIC_KEY_FILE), key.publicKeyPem);
  writeFileDurable(join(dir, MANIFEST_FILE), bytes);
  // The signature goes last: its presence is what marks the session as sealed.
  writeFileDurable(join(dir, SIGNATURE_FILE), JSON.stringify(envelope, null, 2) + '\n');
  return { manifest, manifestSha256: sha256Hex(bytes), dir };
}
