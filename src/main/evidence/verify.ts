import { existsSync, lstatSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { sha256Hex } from '../core/canonical.js';
import { verifyLogText, type LogRecord } from '../core/eventlog.js';
import { keyIdOf, publicKeyFromPem, verifyEnvelope } from '../core/keys.js';
import { BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, LOG_FILE, MANIFEST_FILE, MANIFEST_PAYLOAD_TYPE, PUBLIC_KEY_FILE, SEGMENT_FILE, SELF_FILES, SIGNATURE_FILE, isSafeBundlePath, type Manifest } from './format.js';
import { hashFile, listFiles } from './hash.js';

export type ProblemKind = 'bundle' | 'signature' | 'key' | 'manifest' | 'file' | 'event' | 'segment';

export interface VerifyProblem {
  kind: ProblemKind;
  /** The file concerned (bundle-relative), when there is one. */
  path?: string;
  /** The event concerned, when there is one. */
  seq?: number;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  bundle: string;
  problems: VerifyProblem[];
  warnings: string[];
  /** The signed manifest (from the signature's payload), when the envelope could be read. */
  manifest?: Manifest;
  manifestSha256?: string;
  keyid?: string;
  /** True when the signing key was checked against a key given by the caller, not only the one in the bundle. */
  keyPinned: boolean;
  checked: { files: number; bytes: number; events: number; segments: number };
  /** The event log's records as read (empty when it is missing); callers that index events need not read it again. */
  records: LogRecord[];
}

export interface VerifyOptions {
  /** PEM of the public key the bundle must be signed with (pinning). Without it the bundle's device.pub is used. */
  publicKeyPem?: string;
  /** Alternatively: key ids (sha256 of the raw public key) that are trusted. */
  trustedKeyIds?: string[];
  /**
   * Content hashes the caller computed itself from these exact bytes (the evidence server hashes every upload as it
   * arrives), by bundle-relative path. Such a file's size is still checked on disk; its content is not read again.
   */
  knownHashes?: ReadonlyMap<string, { sha256: string; size: number }>;
}

function readJson(path: string): { ok: true; value: unknown; bytes: Buffer } | { ok: false; error: string } {
  let bytes: Buffer;
  try { bytes = readFileSync(path); } catch (e) { return { ok: false, error: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (e as Error).message }; }
  try { return { ok: true, value: JSON.parse(bytes.toString('utf8')), bytes }; } catch (e) { return { ok: false, error: `not valid JSON (${(e as Error).message})` }; }
}

function shapeProblems(m: unknown): string[] {
  const out: string[] = [];
  const o = m as Partial<Manifest>;
  if (!o || typeof o !== 'object') return ['manifest is not an object'];
  if (o.format !== BUNDLE_FORMAT) out.push(`format is ${JSON.stringify(o.format)}, expected "${BUNDLE_FORMAT}"`);
  if (o.formatVersion !== BUNDLE_FORMAT_VERSION) out.push(`formatVersion ${JSON.stringify(o.formatVersion)} is not supported (this verifier reads ${BUNDLE_FORMAT_VERSION})`);
  if (!Array.isArray(o.files)) out.push('files is not a list');
  if (!o.log || typeof o.log.headHash !== 'string' || typeof o.log.count !== 'number') out.push('log is missing its count or head hash');
  if (!o.session || typeof o.session.id !== 'string') out.push('session.id is missing');
  if (!o.key || typeof o.key.keyid !== 'string') out.push('key.keyid is missing');
  return out;
}

/**
 * Verifies a sealed bundle offline. Never throws for a bad bundle: every problem is named in the report
 * (which file, which event, which signature), so a proctor or the server can say exactly what is wrong.
 */
export async function verifyBundle(dir: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const warnings: string[] = [];
  const report: VerifyReport = { ok: false, bundle: dir, problems, warnings, keyPinned: false, checked: { files: 0, bytes: 0, events: 0, segments: 0 }, records: [] };
  const add = (p: VerifyProblem) => problems.push(p);

  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    add({ kind: 'bundle', message: `${dir} is not a folder` });
    return report;
  }

  // --- Signature and key ---------------------------------------------------------------------------------------
  const envFile = readJson(join(dir, SIGNATURE_FILE));
  if (!envFile.ok) {
    add({ kind: 'signature', path: SIGNATURE_FILE, message: `${SIGNATURE_FILE} is ${envFile.error}: the bundle is unsigned or not a Kuzet bundle` });
    return report;
  }
  let signer: KeyObject | undefined;
  if (opts.publicKeyPem) {
    try { signer = publicKeyFromPem(opts.publicKeyPem); report.keyPinned = true; } catch (e) { add({ kind: 'key', message: `the given public key is unusable: ${(e as Error).message}` }); return report; }
  }
  const bundledPem = existsSync(join(dir, PUBLIC_KEY_FILE)) ? readFileSync(join(dir, PUBLIC_KEY_FILE), 'utf8') : undefined;
  let bundledKey: KeyObject | undefined;
  if (bundledPem) {
    try { bundledKey = publicKeyFromPem(bundledPem); } catch (e) { add({ kind: 'key', path: PUBLIC_KEY_FILE, message: `${PUBLIC_KEY_FILE} is not a valid Ed25519 public key: ${(e as Error).message}` }); }
  } else add({ kind: 'key', path: PUBLIC_KEY_FILE, message: `${PUBLIC_KEY_FILE} is missing` });
  if (signer && bundledKey && keyIdOf(signer) !== keyIdOf(bundledKey)) {
    add({ kind: 'key', path: PUBLIC_KEY_FILE, message: `${PUBLIC_KEY_FILE} is key ${keyIdOf(bundledKey).slice(0, 16)}…, not the pinned key ${keyIdOf(signer).slice(0, 16)}… (the key was swapped)` });
  }
  signer ??= bundledKey;
  if (!signer) return report;
  report.keyid = keyIdOf(signer);
  if (opts.trustedKeyIds) {
    report.keyPinned = opts.trustedKeyIds.includes(report.keyid);
    if (!report.keyPinned) add({ kind: 'key', message: `signing key ${report.keyid.slice(0, 16)}… is not among the trusted keys` });
  }
  if (!report.keyPinned) warnings.push(`signing key ${report.keyid.slice(0, 16)}… was taken from the bundle itself; pass --key <device.pub> to check it is the machine's enrolled key`);

  const sig = verifyEnvelope(envFile.value, MANIFEST_PAYLOAD_TYPE, signer);
  if (!sig.ok) {
    add({ kind: 'signature', path: SIGNATURE_FILE, message: sig.reason });
    return report;
  }
  const signedBytes = sig.payload;
  report.manifestSha256 = sha256Hex(signedBytes);

  let manifest: Manifest;
  try { manifest = JSON.parse(signedBytes.toString('utf8')) as Manifest; } catch { add({ kind: 'manifest', message: 'the signed manifest is not JSON' }); return report; }
  report.manifest = manifest;
  for (const s of shapeProblems(manifest)) add({ kind: 'manifest', message: `signed manifest: ${s}` });
  if (problems.some((p) => p.kind === 'manifest')) return report;
  if (manifest.key.keyid !== report.keyid) add({ kind: 'key', message: `manifest names key ${manifest.key.keyid.slice(0, 16)}… but was signed by ${report.keyid.slice(0, 16)}…` });

  const onDiskManifest = existsSync(join(dir, MANIFEST_FILE)) ? readFileSync(join(dir, MANIFEST_FILE)) : undefined;
  if (!onDiskManifest) add({ kind: 'manifest', path: MANIFEST_FILE, message: `${MANIFEST_FILE} is missing (the signed copy inside ${SIGNATURE_FILE} was used)` });
  else if (!onDiskManifest.equals(signedBytes)) add({ kind: 'manifest', path: MANIFEST_FILE, message: `${MANIFEST_FILE} differs from the signed manifest (it was edited after signing)` });

  // --- Files ---------------------------------------------------------------------------------------------------
  const listed = new Map<string, { sha256: string; size: number }>();
  for (const f of manifest.files) {
    if (!f || typeof f.path !== 'string' || typeof f.sha256 !== 'string' || typeof f.size !== 'number') {
      add({ kind: 'manifest', message: `a files entry is malformed: ${JSON.stringify(f).slice(0, 120)}` });
      continue;
    }
    if (!isSafeBundlePath(f.path) || SELF_FILES.has(f.path)) { add({ kind: 'manifest', path: f.path, message: `unsafe or reserved file name "${f.path}" in the manifest` }); continue; }
    if (listed.has(f.path)) { add({ kind: 'manifest', path: f.path, message: `"${f.path}" is listed twice` }); continue; }
    listed.set(f.path, { sha256: f.sha256, size: f.size });
  }
  const { files: onDisk, links } = await listFiles(dir);
  for (const l of links) add({ kind: 'file', path: l, message: `${l} is a symbolic link (not allowed in a bundle)` });
  const present = new Set(onDisk);
  for (const rel of onDisk) {
    if (SELF_FILES.has(rel)) continue;
    if (!listed.has(rel)) add({ kind: 'file', path: rel, message: `${rel} is not listed in the manifest (added or duplicated after sealing)` });
  }
  for (const [rel, want] of listed) {
    if (!present.has(rel)) { add({ kind: 'file', path: rel, message: `${rel} is missing (deleted or renamed)` }); continue; }
    const full = join(dir, rel);
    if (lstatSync(full).isSymbolicLink()) continue;
    const known = opts.knownHashes?.get(rel);
    const got = known && statSync(full).size === known.size ? known : await hashFile(full);
    report.checked.files++;
    report.checked.bytes += got.size;
    if (got.size !== want.size) add({ kind: 'file', path: rel, message: `${rel} has ${got.size} bytes, the manifest says ${want.size}` });
    else if (got.sha256 !== want.sha256) add({ kind: 'file', path: rel, message: `${rel} content differs from the manifest (sha256 ${got.sha256.slice(0, 16)}… ≠ ${want.sha256.slice(0, 16)}…)` });
  }

  // --- Event log -----------------------------------------------------------------------------------------------
  const logPath = join(dir, manifest.log.file || LOG_FILE);
  let records: LogRecord[] = [];
  if (!existsSync(logPath)) add({ kind: 'event', path: LOG_FILE, message: `the event log ${LOG_FILE} is missing` });
  else {
    const chk = verifyLogText(readFileSync(logPath, 'utf8'));
    records = chk.records;
    report.records = records;
    report.checked.events = chk.count;
    for (const p of chk.problems) add({ kind: 'event', path: LOG_FILE, seq: p.seq, message: `event log line ${p.line}${p.seq !== undefined ? ` (seq ${p.seq})` : ''}: ${p.problem}` });
    if (chk.count !== manifest.log.count) add({ kind: 'event', path: LOG_FILE, message: `the log has ${chk.count} events, the manifest says ${manifest.log.count} (events were added or removed)` });
    if (chk.head.hash !== manifest.log.headHash) add({ kind: 'event', path: LOG_FILE, seq: chk.head.seq, message: `the log's last hash ${chk.head.hash.slice(0, 16)}… is not the signed head ${manifest.log.headHash.slice(0, 16)}…` });
    const sessionEvent = records.find((r) => r.type === 'session.opened');
    const sid = (sessionEvent?.data as { id?: string } | undefined)?.id;
    if (sessionEvent && sid !== manifest.session.id) add({ kind: 'event', seq: sessionEvent.seq, message: `the log belongs to session ${sid}, the manifest to ${manifest.session.id}` });
  }

  // --- Segments: every recording file was announced when it closed, with the same hash, in order ----------------
  const segs = records.filter((r) => r.type === 'segment.closed');
  const bySource = new Map<string, { index: number; seq: number }[]>();
  const announced = new Set<string>();
  for (const r of segs) {
    const d = r.data as { source?: string; index?: number; file?: string; sha256?: string; size?: number };
    if (typeof d.file !== 'string') { add({ kind: 'segment', seq: r.seq, message: `segment.closed event ${r.seq} names no file` }); continue; }
    if (announced.has(d.file)) add({ kind: 'segment', seq: r.seq, path: d.file, message: `${d.file} is announced twice (event ${r.seq})` });
    announced.add(d.file);
    const want = listed.get(d.file);
    if (!want) add({ kind: 'segment', seq: r.seq, path: d.file, message: `segment ${d.file} (event ${r.seq}) is not in the bundle` });
    else if (want.sha256 !== d.sha256 || want.size !== d.size) add({ kind: 'segment', seq: r.seq, path: d.file, message: `segment ${d.file} differs from the hash logged when it closed (event ${r.seq})` });
    const list = bySource.get(String(d.source)) ?? [];
    list.push({ index: Number(d.index), seq: r.seq });
    bySource.set(String(d.source), list);
  }
  for (const [source, list] of bySource) {
    const idx = list.map((x) => x.index).sort((a, b) => a - b);
    for (let i = 0; i < idx.length; i++) {
      if (idx[i] !== i) { add({ kind: 'segment', message: `${source}: segment numbering has a gap or duplicate at index ${i} (found ${idx[i]})` }); break; }
    }
  }
  report.checked.segments = segs.length;
  for (const rel of listed.keys()) {
    if (SEGMENT_FILE.test(rel) && !announced.has(rel)) add({ kind: 'segment', path: rel, message: `${rel} was never announced by a segment.closed event` });
  }
  const altered = records.filter((r) => r.type === 'evidence.changed' || r.type === 'evidence.missing');
  for (const r of altered) warnings.push(`at sealing, ${(r.data as { file: string }).file} was ${r.type === 'evidence.changed' ? 'different from' : 'missing compared with'} its segment.closed record (event ${r.seq})`);
  if (manifest.recovered) warnings.push('this session was sealed by crash recovery (see the session.recovered event)');

  report.ok = problems.length === 0;
  return report;
}

export function formatReport(r: VerifyReport): string {
  const lines: string[] = [];
  const m = r.manifest;
  lines.push(`${r.ok ? 'VALID' : 'INVALID'}: ${r.bundle}`);
  if (m) {
    lines.push(`  session ${m.session.id}  exam ${m.session.examId}  student ${m.session.studentId}  machine ${m.session.machineId}`);
    lines.push(`  ${new Date(m.time.start).toISOString()} → ${new Date(m.time.end).toISOString()} (${Math.round(m.time.durationMs / 1000)} s)${m.recovered ? '  [recovered after a crash]' : ''}`);
  }
  if (r.keyid) lines.push(`  signed by ${r.keyid.slice(0, 16)}…${r.keyPinned ? ' (pinned key)' : ''}`);
  lines.push(`  checked ${r.checked.files} files (${(r.checked.bytes / 1e6).toFixed(1)} MB), ${r.checked.events} events, ${r.checked.segments} segments`);
  for (const p of r.problems) lines.push(`  ✗ [${p.kind}] ${p.message}`);
  for (const w of r.warnings) lines.push(`  ! ${w}`);
  return lines.join('\n');
}
