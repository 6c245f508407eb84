/**
 * THE evidence bundle format, version 1 (specified in docs/bundle-format.md; this file and that document change
 * together, and BUNDLE_FORMAT_VERSION goes up on any change a version-1 verifier would misread).
 */
export const BUNDLE_FORMAT = 'kuzet.bundle';
export const BUNDLE_FORMAT_VERSION = 1;
export const MANIFEST_PAYLOAD_TYPE = 'application/vnd.kuzet.manifest+json; version=1';

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig.json';
export const PUBLIC_KEY_FILE = 'device.pub';
export const LOG_FILE = 'events.ndjson';
/** Written into a session folder when it is sealed; absent = unfinished (recovered at next start). */
export const SESSION_STATE_FILE = 'session.json';

/** Files that describe the bundle itself and so are not listed in `files`. */
export const SELF_FILES = new Set([MANIFEST_FILE, SIGNATURE_FILE, PUBLIC_KEY_FILE]);

export interface ManifestFile {
  /** Bundle-relative POSIX path; no "..", no leading "/", no backslash. */
  path: string;
  sha256: string;
  size: number;
}

export interface StreamSummary {
  segments: number;
  /** Sum of segment durations in seconds (null where a segment's duration could not be read). */
  durationSec: number | null;
  bytes: number;
}

/** Who and what a session is about: in session.json, in the `session.opened` event and in the manifest. */
export interface SessionIdentity {
  id: string;
  examId: string;
  studentId: string;
  machineId: string;
  lab?: string;
  demo: boolean;
}

export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  session: SessionIdentity;
  app: { name: 'kuzet'; version: string };
  configHash: string;
  /** Model name → sha256 of the model file that ran. */
  models: Record<string, string>;
  /** Features that ran in a reduced form (e.g. "detect.objects: model missing"). */
  degraded: string[];
  time: { start: number; end: number; durationMs: number };
  log: { file: string; count: number; headSeq: number; headHash: string };
  streams: Record<string, StreamSummary>;
  /** Every file of the bundle except manifest.json, manifest.sig.json and device.pub, sorted by path. */
  files: ManifestFile[];
  /** true when the session was sealed by `kuzet recover` after a crash. */
  recovered: boolean;
  sealedAt: number;
  key: { alg: 'ed25519'; keyid: string };
}

/** A bundle path is safe when it stays inside the bundle on every OS. */
export function isSafeBundlePath(p: string): boolean {
  if (typeof p !== 'string' || p.length === 0 || p.length > 512) return false;
  if (p.startsWith('/') || p.includes('\\') || p.includes('\0') || /^[A-Za-z]:/.test(p)) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** Recording segments (announced by `segment.closed`); other files under media/ (segment lists) are informational. */
export const SEGMENT_FILE = /^media\/[a-z]+\/seg-\d{5,}\.(ts|mp4|m4s)$/;
