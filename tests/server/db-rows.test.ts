import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ServerDb, type FileRow } from '../../src/main/server/db.js';
import { cleanup, tempDir } from './helpers.js';

// The index keeps the `files` and `sessions` rows it read or wrote in memory (the upload path reads each row several
// times). These tests check that what it answers is always what SQLite holds: after updates, deletes, a rolled-back
// transaction, and after reopening.
describe('server index: rows kept in memory stay what SQLite holds', () => {
  const dirs: string[] = [];
  afterEach(() => { for (const d of dirs.splice(0)) cleanup(d); });

  function open(): { db: ServerDb; path: string } {
    const d = tempDir('dbrows');
    dirs.push(d);
    const path = join(d, 'server.db');
    return { db: new ServerDb(path), path };
  }
  const row = (id: string, over: Partial<FileRow> = {}): FileRow => ({
    upload_id: id, session_id: 's1', path: `face/${id.slice(0, 4)}.mp4`, sha256: 'e'.repeat(64), size: 10,
    state: 'receiving', created_at: 1, stored_at: null, ...over,
  });
  const onDisk = (path: string, id: string) => {
    const raw = new Database(path, { readonly: true });
    try { return raw.prepare('SELECT * FROM files WHERE upload_id = ?').get(id) as FileRow | undefined; } finally { raw.close(); }
  };

  it('a stored, then dropped upload reads as SQLite has it at each step', () => {
    const { db, path } = open();
    const id = 'a'.repeat(40);
    db.tx(() => { db.createSession('s1', 'k1', 'm1', 'lab', 1); db.addFile(row(id)); });
    expect(db.file(id)?.state).toBe('receiving');
    db.markStored(id, 42);
    expect(db.file(id)).toMatchObject({ state: 'stored', stored_at: 42 });
    expect(onDisk(path, id)).toMatchObject({ state: 'stored', stored_at: 42 });
    db.dropFile(id);
    expect(db.file(id)).toBeUndefined();
    expect(onDisk(path, id)).toBeUndefined();
    db.close();
  });

  it('a transaction that rolls back leaves no trace in what the index answers', () => {
    const { db } = open();
    const a = 'b'.repeat(40);
    const b = 'c'.repeat(40);
    db.tx(() => { db.createSession('s1', 'k1', 'm1', 'lab', 1); db.addFile(row(a)); });
    expect(db.file(a)?.state).toBe('receiving');
    // A second file and a state change in one transaction that fails part-way: both are rolled back.
    expect(() => db.tx(() => {
      db.addFile(row(b, { path: 'room/x.mp4' }));
      db.markStored(a, 7);
      db.addFile(row(b, { path: 'room/y.mp4' })); // same upload id: primary key conflict
    })).toThrow();
    expect(db.file(b)).toBeUndefined();
    expect(db.file(a)).toMatchObject({ state: 'receiving', stored_at: null });
    expect(db.sessionBytes('s1')).toEqual({ bytes: 10, count: 1 });
    db.close();
  });

  it('a group commit: calls made together share one transaction, one that throws fails alone, each resolves once committed', async () => {
    const { db, path } = open();
    db.tx(() => db.createSession('s1', 'k1', 'm1', 'lab', 1));
    const ids = ['1', '2', '3'].map((c) => c.repeat(40));
    const seenOnDisk: (FileRow | undefined)[] = [];
    const calls = [
      db.inBatch(() => db.addFile(row(ids[0]!))).then(() => seenOnDisk.push(onDisk(path, ids[0]!))),
      db.inBatch(() => { db.addFile(row(ids[1]!, { path: 'room/a.mp4' })); throw new Error('refused after its insert'); }),
      db.inBatch(() => { db.addFile(row(ids[2]!, { path: 'screen/a.mp4' })); return 'third'; }),
    ];
    const [a, b, c] = await Promise.allSettled(calls);
    expect(a?.status).toBe('fulfilled');
    expect(b).toMatchObject({ status: 'rejected', reason: { message: 'refused after its insert' } });
    expect(c).toEqual({ status: 'fulfilled', value: 'third' });
    // Another connection saw the first row the moment its promise resolved: the commit came first.
    expect(seenOnDisk[0]?.upload_id).toBe(ids[0]);
    expect(db.file(ids[1]!)).toBeUndefined();
    expect(onDisk(path, ids[1]!)).toBeUndefined();
    expect(onDisk(path, ids[2]!)?.path).toBe('screen/a.mp4');
    expect(db.sessionBytes('s1')).toEqual({ bytes: 20, count: 2 });
    // A call still waiting when the index closes is committed by the close.
    const late = db.inBatch(() => db.markStored(ids[0]!, 5));
    db.close();
    await late;
    expect(onDisk(path, ids[0]!)).toMatchObject({ state: 'stored', stored_at: 5 });
  });

  it('session updates show at once, and a reopened index reads the same rows', () => {
    const { db, path } = open();
    db.tx(() => db.createSession('s2', 'k2', 'm2', null, 5));
    expect(db.session('s2')?.status).toBe('receiving');
    db.updateSession('s2', { status: 'verified', verified_at: 99, updated_at: 99 });
    expect(db.session('s2')).toMatchObject({ status: 'verified', verified_at: 99 });
    db.tx(() => db.addFile(row('d'.repeat(40), { session_id: 's2', state: 'stored', stored_at: 3 })));
    db.close();
    const again = new ServerDb(path);
    expect(again.session('s2')).toMatchObject({ status: 'verified', verified_at: 99, machine_id: 'm2' });
    expect(again.file('d'.repeat(40))).toMatchObject({ session_id: 's2', state: 'stored', stored_at: 3 });
    // The index this version opens no longer carries the redundant files_session index.
    const names = (again.db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'files'").all() as { name: string }[]).map((r) => r.name);
    expect(names).not.toContain('files_session');
    again.close();
  });
});
