/**
 * One error type for everything the user can cause or fix: bad config, missing ffmpeg, a camera that does not
 * exist, a full disk, a tampered bundle. `code` is stable (tests and the UI key on it); `message` names the problem
 * and, where there is one, the fix.
 */
export class KuzetError extends Error {
  readonly code: string;
  readonly details?: Record<string, unknown>;
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'KuzetError';
    this.code = code;
    this.details = details;
  }
}

export function isKuzetError(e: unknown): e is KuzetError {
  return e instanceof KuzetError;
}

/** Turns a node fs error into a KuzetError that names the path and what went wrong. */
export function fsError(e: unknown, action: string, path: string): KuzetError {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC' || err?.code === 'EDQUOT') {
    return new KuzetError('DISK_FULL', `Disk full while trying to ${action} ${path}. Free space on this drive; evidence already written is kept.`, { path });
  }
  if (err?.code === 'EACCES' || err?.code === 'EPERM') {
    return new KuzetError('NO_PERMISSION', `No permission to ${action} ${path}.`, { path });
  }
  if (err?.code === 'ENOENT') {
    return new KuzetError('NOT_FOUND', `Cannot ${action} ${path}: it does not exist.`, { path });
  }
  return new KuzetError('IO_ERROR', `Cannot ${action} ${path}: ${err?.message ?? String(e)}`, { path });
}
