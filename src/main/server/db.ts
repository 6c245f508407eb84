/**
 * The evidence server's index: one SQLite file (better-sqlite3, WAL) under the data dir. It holds devices,
 * enrolment and bearer tokens, accounts, sessions, the files of each session, verdict history, the indexed events
 * of verified bundles, and the audit log. The bytes themselves live in the upload store (filesystem or S3).
 *
 * All SQL lives in this file, written in the common subset of SQLite and PostgreSQL (no SQLite-only types, no
 * AUTOINCREMENT, integers for times), so a university-wide deployment can move the index to PostgreSQL by porting
 * this one class (docs/server.md, "Moving to PostgreSQL").
 */
import Database from 'better-sqlite3';
import { KuzetError } from '../core/errors.js';

export const DB_SCHEMA_VERSION = 1;

/**
 * Rows kept in memory (see ServerDb.fileRows). A row is read again only while its upload runs (and at its session's
 * completion), so this only has to cover the uploads in flight with a wide margin; about 8 MB when full.
 */
const FILE_ROWS_KEPT = 20_000;
const SESSION_ROWS_KEPT = 10_000;

/**
 * How long a group commit (ServerDb.inBatch) waits for company. Within one turn of the event loop there is rarely
 * more than one (measured: 1,562 of 1,842 commits alone); 3 ms gathered 4.2 on average with 100 machines uploading,
 * and adds 3 ms to an upload of a few hundred milliseconds.
 */
const BATCH_WINDOW_MS = 3;

/** Sets `key` in a Map used as a bounded cache: the oldest entry goes when it is full. */
function remember<V>(m: Map<string, V>, key: string, value: V, max: number): void {
  m.delete(key);
  if (m.size >= max) m.delete(m.keys().next().value!);
  m.set(key, value);
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
  keyid TEXT PRIMARY KEY,
  machine_id TEXT NOT NULL,
  lab TEXT,
  hostname TEXT,
  public_key_pem TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
  enrolled_at BIGINT NOT NULL,
  enrol_token_id TEXT,
  revoked_at BIGINT,
  revoked_reason TEXT
);
CREATE INDEX IF NOT EXISTS devices_machine ON devices (machine_id);
CREATE TABLE IF NOT EXISTS enrol_tokens (
  id TEXT PRIMARY KEY,
  token_sha256 TEXT NOT NULL UNIQUE,
  lab TEXT,
  machine_id TEXT,
  created_at BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  used_by_keyid TEXT
);
CREATE TABLE IF NOT EXISTS bearer_tokens (
  token_sha256 TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('device', 'account')),
  subject TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
  username TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'proctor')),
  created_at BIGINT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  device_keyid TEXT NOT NULL,
  machine_id TEXT NOT NULL,
  lab TEXT,
  exam_id TEXT,
  student_id TEXT,
  status TEXT NOT NULL CHECK (status IN ('receiving', 'verified', 'quarantined')),
  manifest_sha256 TEXT,
  started_at BIGINT,
  ended_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  reasons TEXT,
  warnings TEXT,
  receipt TEXT,
  verified_at BIGINT,
  episodes INTEGER NOT NULL DEFAULT 0,
  events INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_status ON sessions (status, updated_at);
CREATE TABLE IF NOT EXISTS files (
  upload_id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size BIGINT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('receiving', 'stored')),
  created_at BIGINT NOT NULL,
  stored_at BIGINT,
  UNIQUE (session_id, path, sha256)
);
CREATE TABLE IF NOT EXISTS rejected_uploads (
  id INTEGER PRIMARY KEY,
  upload_id TEXT NOT NULL,
  session_id TEXT NOT NULL,
  path TEXT NOT NULL,
  declared_sha256 TEXT NOT NULL,
  actual_sha256 TEXT NOT NULL,
  size BIGINT NOT NULL,
  kept_as TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
  id INTEGER PRIMARY KEY,
  session_id TEXT NOT NULL,
  at BIGINT NOT NULL,
  status TEXT NOT NULL,
  manifest_sha256 TEXT,
  reasons TEXT NOT NULL,
  warnings TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_session ON verdicts (session_id, at);
CREATE TABLE IF NOT EXISTS events (
  session_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  wall BIGINT NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (session_id, seq)
);
CREATE INDEX IF NOT EXISTS events_type ON events (session_id, type);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  role TEXT NOT NULL,
  action TEXT NOT NULL,
  session_id TEXT,
  path TEXT,
  detail TEXT,
  ip TEXT
);
CREATE INDEX IF NOT EXISTS audit_session ON audit (session_id, at);
`;

export interface DeviceRow {
  keyid: string; machine_id: string; lab: string | null; hostname: string | null; public_key_pem: string;
  status: 'active' | 'revoked'; enrolled_at: number; enrol_token_id: string | null; revoked_at: number | null; revoked_reason: string | null;
}
export interface EnrolTokenRow {
  id: string; token_sha256: string; lab: string | null; machine_id: string | null; created_at: number; created_by: string;
  expires_at: number; used_at: number | null; used_by_keyid: string | null;
}
export interface AccountRow { username: string; password_hash: string; role: 'admin' | 'proctor'; created_at: number; disabled: number }
export interface SessionRow {
  id: string; device_keyid: string; machine_id: string; lab: string | null; exam_id: string | null; student_id: string | null;
  status: 'receiving' | 'verified' | 'quarantined'; manifest_sha256: string | null; started_at: number | null; ended_at: number | null;
  created_at: number; updated_at: number; reasons: string | null; warnings: string | null; receipt: string | null;
  verified_at: number | null; episodes: number; events: number;
}
export interface FileRow {
  upload_id: string; session_id: string; path: string; sha256: string; size: number; state: 'receiving' | 'stored';
  created_at: number; stored_at: number | null;
}
export interface EventRow { session_id: string; seq: number; wall: number; type: string; data: string }
export interface AuditRow { id: number; at: number; actor: string; role: string; action: string; session_id: string | null; path: string | null; detail: string | null; ip: string | null }

export class ServerDb {
  readonly db: Database.Database;
  readonly path: string;

  constructor(path: string) {
    this.path = path;
    try {
      this.db = new Database(path);
    } catch (e) {
      throw new KuzetError('DB_OPEN', `Cannot open the server index ${path}: ${(e as Error).message}`, { path });
    }
    this.db.pragma('journal_mode = WAL');
    // Per-upload bookkeeping commits without a disk flush (WAL + NORMAL survives a process crash; a power cut can
    // lose the last commits, which the lazy finalise and the clients' retries rebuild). `durably()` flushes: the
    // server uses it for verdicts and receipts, which must never be lost once announced.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    // Indexes that earlier versions made and this one does without: files_session (session_id, path) repeated the
    // first two columns of the UNIQUE (session_id, path, sha256) index, which serves the same queries, and cost a
    // third of every file row's insert.
    this.db.exec('DROP INDEX IF EXISTS files_session');
    const v = this.stmt('SELECT value FROM meta WHERE key = ?').get('schemaVersion') as { value: string } | undefined;
    if (!v) this.stmt('INSERT INTO meta (key, value) VALUES (?, ?)').run('schemaVersion', String(DB_SCHEMA_VERSION));
    else if (Number(v.value) > DB_SCHEMA_VERSION) {
      throw new KuzetError('DB_VERSION', `The server index ${path} has schema version ${v.value}; this Kuzet reads ${DB_SCHEMA_VERSION}. Upgrade Kuzet.`);
    }
  }

  private readonly stmts = new Map<string, Database.Statement>();

  /** Prepared statements are cached: preparing costs more than running most of these queries. */
  private stmt(sql: string): Database.Statement {
    let st = this.stmts.get(sql);
    if (!st) { st = this.db.prepare(sql); this.stmts.set(sql, st); }
    return st;
  }

  close(): void {
    if (this.batch.length > 0 && this.db.open) this.runBatch();
    if (this.db.open) this.db.close();
  }

  private batch: { fn: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];

  /**
   * Runs `fn` (statements of this class) in one transaction with the other calls made within BATCH_WINDOW_MS, and
   * resolves once that transaction is committed: a group commit. The upload path commits twice an upload (its row
   * before the body, `stored` after it); with 100 machines uploading, about four of those share each commit. Each
   * call runs in its own savepoint, so one that throws is rolled back alone and rejects only its own promise. `fn`
   * runs later than the call, so it must check again whatever it depends on.
   */
  inBatch<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.batch.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.batch.length === 1) setTimeout(() => this.runBatch(), BATCH_WINDOW_MS);
    });
  }

  private runBatch(): void {
    const jobs = this.batch;
    this.batch = [];
    if (jobs.length === 0) return;
    const out: { ok: boolean; v: unknown }[] = [];
    try {
      this.db.transaction(() => {
        for (const j of jobs) {
          try { out.push({ ok: true, v: this.db.transaction(j.fn)() }); } catch (e) { out.push({ ok: false, v: e }); }
        }
      })();
    } catch (e) {
      this.forgetCached(); // nothing was committed
      for (const j of jobs) j.reject(e);
      return;
    }
    if (out.some((r) => !r.ok)) this.forgetCached(); // a savepoint rolled back: its changes may be in the copies
    jobs.forEach((j, i) => { const r = out[i]!; if (r.ok) j.resolve(r.v); else j.reject(r.v); });
  }

  /**
   * Rows of `files` and `sessions` as this connection last read or wrote them. One upload request reads its file row
   * up to three times (the creation check, the tus record, the finish) and its session row once; SQLite reads cost
   * 15–30 µs each on the server's busy event loop, a Map lookup nothing. Only the server process writes these two
   * tables (`kuzet admin` never does; one server serves a data dir), and every write goes through this class, which
   * updates the copy after its statement ran; a transaction that rolls back forgets them all. Misses are not kept.
   */
  private readonly fileRows = new Map<string, FileRow>();
  private readonly sessionRows = new Map<string, SessionRow>();

  private forgetCached(): void {
    this.usage.clear();
    this.fileRows.clear();
    this.sessionRows.clear();
  }

  private localChanges = 0;
  /**
   * Changes to who may upload (devices, device tokens) since this connection opened: this process's own changes
   * plus any commit by another connection to the same index (`kuzet admin revoke` while the server runs), which
   * SQLite reports through `PRAGMA data_version`. Callers that cache authentication compare it per request.
   */
  authGeneration(): string {
    const v = (this.stmt('PRAGMA data_version').get() as { data_version: number }).data_version;
    return `${v}.${this.localChanges}`;
  }

  tx<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn)();
    } catch (e) {
      this.forgetCached(); // rolled back: cached rows and counts may include changes that are not there
      throw e;
    }
  }

  /** Makes every commit so far durable (checkpoint the WAL into the database file and flush it). */
  flushWal(): void {
    this.db.pragma('wal_checkpoint(FULL)');
  }

  /** Runs `fn` in a transaction whose commit is flushed to disk (synchronous = FULL for this commit). */
  durably<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try { return this.db.transaction(fn)(); } catch (e) { this.forgetCached(); throw e; } finally { this.db.pragma('synchronous = NORMAL'); }
  }

  // --- devices & enrolment -------------------------------------------------------------------------------------
  addEnrolToken(row: EnrolTokenRow): void {
    this.stmt(`INSERT INTO enrol_tokens (id, token_sha256, lab, machine_id, created_at, created_by, expires_at, used_at, used_by_keyid)
      VALUES (@id, @token_sha256, @lab, @machine_id, @created_at, @created_by, @expires_at, @used_at, @used_by_keyid)`).run(row);
  }
  enrolTokenByHash(h: string): EnrolTokenRow | undefined {
    return this.stmt('SELECT * FROM enrol_tokens WHERE token_sha256 = ?').get(h) as EnrolTokenRow | undefined;
  }
  useEnrolToken(id: string, keyid: string, at: number): boolean {
    return this.stmt('UPDATE enrol_tokens SET used_at = ?, used_by_keyid = ? WHERE id = ? AND used_at IS NULL').run(at, keyid, id).changes === 1;
  }
  listEnrolTokens(): EnrolTokenRow[] {
    return this.stmt('SELECT * FROM enrol_tokens ORDER BY created_at DESC').all() as EnrolTokenRow[];
  }
  device(keyid: string): DeviceRow | undefined {
    return this.stmt('SELECT * FROM devices WHERE keyid = ?').get(keyid) as DeviceRow | undefined;
  }
  devicesByMachine(machineId: string): DeviceRow[] {
    return this.stmt('SELECT * FROM devices WHERE machine_id = ?').all(machineId) as DeviceRow[];
  }
  upsertDevice(row: DeviceRow): void {
    this.stmt(`INSERT INTO devices (keyid, machine_id, lab, hostname, public_key_pem, status, enrolled_at, enrol_token_id, revoked_at, revoked_reason)
      VALUES (@keyid, @machine_id, @lab, @hostname, @public_key_pem, @status, @enrolled_at, @enrol_token_id, @revoked_at, @revoked_reason)
      ON CONFLICT (keyid) DO UPDATE SET machine_id = excluded.machine_id, lab = excluded.lab, hostname = excluded.hostname,
        status = excluded.status, enrolled_at = excluded.enrolled_at, enrol_token_id = excluded.enrol_token_id,
        revoked_at = excluded.revoked_at, revoked_reason = excluded.revoked_reason`).run(row);
    this.localChanges++;
  }
  revokeDevice(keyid: string, at: number, reason: string): boolean {
    const n = this.stmt("UPDATE devices SET status = 'revoked', revoked_at = ?, revoked_reason = ? WHERE keyid = ? AND status = 'active'").run(at, reason, keyid).changes;
    this.stmt("DELETE FROM bearer_tokens WHERE kind = 'device' AND subject = ?").run(keyid);
    this.localChanges++;
    return n === 1;
  }
  listDevices(): DeviceRow[] {
    return this.stmt('SELECT * FROM devices ORDER BY enrolled_at DESC').all() as DeviceRow[];
  }

  // --- bearer tokens -------------------------------------------------------------------------------------------
  addBearer(tokenSha256: string, kind: 'device' | 'account', subject: string, now: number, expiresAt: number): void {
    this.stmt('INSERT INTO bearer_tokens (token_sha256, kind, subject, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(tokenSha256, kind, subject, now, expiresAt);
    if (Math.random() < 0.02) this.stmt('DELETE FROM bearer_tokens WHERE expires_at < ?').run(now);
  }
  bearer(tokenSha256: string): { kind: 'device' | 'account'; subject: string; expires_at: number } | undefined {
    return this.stmt('SELECT kind, subject, expires_at FROM bearer_tokens WHERE token_sha256 = ?').get(tokenSha256) as
      { kind: 'device' | 'account'; subject: string; expires_at: number } | undefined;
  }
  dropBearer(tokenSha256: string): void {
    this.stmt('DELETE FROM bearer_tokens WHERE token_sha256 = ?').run(tokenSha256);
    this.localChanges++;
  }

  // --- accounts ------------------------------------------------------------------------------------------------
  account(username: string): AccountRow | undefined {
    return this.stmt('SELECT * FROM accounts WHERE username = ?').get(username) as AccountRow | undefined;
  }
  upsertAccount(username: string, passwordHash: string, role: 'admin' | 'proctor', now: number): void {
    this.stmt(`INSERT INTO accounts (username, password_hash, role, created_at, disabled) VALUES (?, ?, ?, ?, 0)
      ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role, disabled = 0`).run(username, passwordHash, role, now);
    this.stmt("DELETE FROM bearer_tokens WHERE kind = 'account' AND subject = ?").run(username);
  }
  listAccounts(): Omit<AccountRow, 'password_hash'>[] {
    return this.stmt('SELECT username, role, created_at, disabled FROM accounts ORDER BY username').all() as Omit<AccountRow, 'password_hash'>[];
  }

  // --- sessions & files ----------------------------------------------------------------------------------------
  session(id: string): SessionRow | undefined {
    const hit = this.sessionRows.get(id);
    if (hit) return hit;
    const row = this.stmt('SELECT * FROM sessions WHERE id = ?').get(id) as SessionRow | undefined;
    if (row) remember(this.sessionRows, id, row, SESSION_ROWS_KEPT);
    return row;
  }
  createSession(id: string, deviceKeyid: string, machineId: string, lab: string | null, now: number): void {
    this.stmt(`INSERT INTO sessions (id, device_keyid, machine_id, lab, status, created_at, updated_at)
      VALUES (?, ?, ?, ?, 'receiving', ?, ?) ON CONFLICT (id) DO NOTHING`).run(id, deviceKeyid, machineId, lab, now, now);
  }
  updateSession(id: string, fields: Partial<Omit<SessionRow, 'id'>>): void {
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    this.stmt(`UPDATE sessions SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`).run({ ...fields, id });
    const hit = this.sessionRows.get(id);
    if (hit) this.sessionRows.set(id, { ...hit, ...fields });
  }
  listSessions(q: { status?: string; lab?: string; exam?: string; student?: string; limit: number; offset: number }): SessionRow[] {
    const where: string[] = [];
    const args: Record<string, unknown> = { limit: q.limit, offset: q.offset };
    if (q.status) { where.push('status = @status'); args.status = q.status; }
    if (q.lab) { where.push('lab = @lab'); args.lab = q.lab; }
    if (q.exam) { where.push('exam_id = @exam'); args.exam = q.exam; }
    if (q.student) { where.push('student_id = @student'); args.student = q.student; }
    return this.stmt(`SELECT * FROM sessions ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC LIMIT @limit OFFSET @offset`).all(args) as SessionRow[];
  }
  file(uploadId: string): FileRow | undefined {
    const hit = this.fileRows.get(uploadId);
    if (hit) return hit;
    const row = this.stmt('SELECT * FROM files WHERE upload_id = ?').get(uploadId) as FileRow | undefined;
    if (row) remember(this.fileRows, uploadId, row, FILE_ROWS_KEPT);
    return row;
  }
  /** An upload's row with the key id of the device whose session it belongs to (one query for the upload path). */
  fileWithOwner(uploadId: string): (FileRow & { device_keyid: string }) | undefined {
    return this.stmt('SELECT f.*, s.device_keyid FROM files f JOIN sessions s ON s.id = f.session_id WHERE f.upload_id = ?').get(uploadId) as
      (FileRow & { device_keyid: string }) | undefined;
  }
  filesOf(sessionId: string): FileRow[] {
    return this.stmt('SELECT * FROM files WHERE session_id = ? ORDER BY path, created_at').all(sessionId) as FileRow[];
  }
  /**
   * Bytes and files a session holds (for the limits). Summed once per session, then kept up to date by this
   * connection's addFile/dropFile (only the server process writes file rows), so a long exam's 900th upload does
   * not sum 900 rows again.
   */
  sessionBytes(sessionId: string): { bytes: number; count: number } {
    let u = this.usage.get(sessionId);
    if (!u) {
      u = this.stmt('SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS count FROM files WHERE session_id = ?').get(sessionId) as { bytes: number; count: number };
      if (this.usage.size >= 10000) this.usage.delete(this.usage.keys().next().value!);
      this.usage.set(sessionId, u);
    }
    return { ...u };
  }
  private readonly usage = new Map<string, { bytes: number; count: number }>();
  addFile(row: FileRow): void {
    this.stmt(`INSERT INTO files (upload_id, session_id, path, sha256, size, state, created_at, stored_at)
      VALUES (@upload_id, @session_id, @path, @sha256, @size, @state, @created_at, @stored_at)`).run(row);
    remember(this.fileRows, row.upload_id, { ...row }, FILE_ROWS_KEPT);
    const u = this.usage.get(row.session_id);
    if (u) { u.bytes += row.size; u.count++; }
  }
  markStored(uploadId: string, at: number): void {
    this.stmt("UPDATE files SET state = 'stored', stored_at = ? WHERE upload_id = ?").run(at, uploadId);
    const hit = this.fileRows.get(uploadId);
    if (hit) this.fileRows.set(uploadId, { ...hit, state: 'stored', stored_at: at });
  }
  dropFile(uploadId: string): void {
    const r = this.stmt('SELECT session_id FROM files WHERE upload_id = ?').get(uploadId) as { session_id: string } | undefined;
    this.stmt('DELETE FROM files WHERE upload_id = ?').run(uploadId);
    this.fileRows.delete(uploadId);
    if (r) this.usage.delete(r.session_id);
  }
  addRejectedUpload(r: { upload_id: string; session_id: string; path: string; declared_sha256: string; actual_sha256: string; size: number; kept_as: string; at: number }): void {
    this.stmt(`INSERT INTO rejected_uploads (upload_id, session_id, path, declared_sha256, actual_sha256, size, kept_as, at)
      VALUES (@upload_id, @session_id, @path, @declared_sha256, @actual_sha256, @size, @kept_as, @at)`).run(r);
  }
  rejectedUploads(sessionId: string): unknown[] {
    return this.stmt('SELECT * FROM rejected_uploads WHERE session_id = ? ORDER BY at').all(sessionId);
  }
  addVerdict(sessionId: string, at: number, status: string, manifestSha256: string | null, reasons: string[], warnings: string[]): void {
    this.stmt('INSERT INTO verdicts (session_id, at, status, manifest_sha256, reasons, warnings) VALUES (?, ?, ?, ?, ?, ?)')
      .run(sessionId, at, status, manifestSha256, JSON.stringify(reasons), JSON.stringify(warnings));
  }
  verdicts(sessionId: string): { at: number; status: string; manifest_sha256: string | null; reasons: string[]; warnings: string[] }[] {
    return (this.stmt('SELECT at, status, manifest_sha256, reasons, warnings FROM verdicts WHERE session_id = ? ORDER BY id').all(sessionId) as
      { at: number; status: string; manifest_sha256: string | null; reasons: string; warnings: string }[])
      .map((v) => ({ ...v, reasons: JSON.parse(v.reasons) as string[], warnings: JSON.parse(v.warnings) as string[] }));
  }

  // --- events --------------------------------------------------------------------------------------------------
  replaceEvents(sessionId: string, rows: { seq: number; wall: number; type: string; data: unknown }[]): void {
    this.tx(() => {
      this.stmt('DELETE FROM events WHERE session_id = ?').run(sessionId);
      const ins = this.stmt('INSERT INTO events (session_id, seq, wall, type, data) VALUES (?, ?, ?, ?, ?)');
      for (const r of rows) ins.run(sessionId, r.seq, r.wall, r.type, JSON.stringify(r.data ?? null));
    });
  }
  events(sessionId: string, q: { typePrefix?: string; fromSeq?: number; limit: number }): EventRow[] {
    const args: unknown[] = [sessionId, q.fromSeq ?? 0];
    let sql = 'SELECT * FROM events WHERE session_id = ? AND seq >= ?';
    if (q.typePrefix) { sql += ' AND type LIKE ? ESCAPE \'\\\''; args.push(q.typePrefix.replace(/[\\%_]/g, (c) => '\\' + c) + '%'); }
    sql += ' ORDER BY seq LIMIT ?';
    args.push(q.limit);
    return this.stmt(sql).all(...args) as EventRow[];
  }

  // --- audit ---------------------------------------------------------------------------------------------------
  audit(r: Omit<AuditRow, 'id'>): void {
    this.stmt('INSERT INTO audit (at, actor, role, action, session_id, path, detail, ip) VALUES (@at, @actor, @role, @action, @session_id, @path, @detail, @ip)').run(r);
  }
  auditLog(q: { sessionId?: string; limit: number; offset: number }): AuditRow[] {
    if (q.sessionId) return this.stmt('SELECT * FROM audit WHERE session_id = ? ORDER BY id DESC LIMIT ? OFFSET ?').all(q.sessionId, q.limit, q.offset) as AuditRow[];
    return this.stmt('SELECT * FROM audit ORDER BY id DESC LIMIT ? OFFSET ?').all(q.limit, q.offset) as AuditRow[];
  }
}
