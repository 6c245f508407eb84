import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventLog, GENESIS, verifyLogText } from '../../src/main/core/eventlog.js';
import { cleanup, tmpDir } from '../helpers/tmp.js';
import { mountTinyTmpfs, unmount } from '../helpers/tmpfs.js';

const dir = tmpDir();
afterAll(() => cleanup(dir));

function makeLog(name: string, n: number): string {
  const p = join(dir, name);
  const log = EventLog.open(p);
  for (let i = 0; i < n; i++) log.append('test.event', { i });
  log.close();
  return p;
}

describe('hash-chained event log', () => {
  it('chains records from GENESIS and verifies', () => {
    const p = makeLog('a.ndjson', 5);
    const chk = verifyLogText(readFileSync(p, 'utf8'));
    expect(chk.ok).toBe(true);
    expect(chk.count).toBe(6); // log.opened + 5
    expect(chk.records[0]!.prev).toBe(GENESIS);
    expect(chk.records[3]!.prev).toBe(chk.records[2]!.hash);
  });

  it('names the edited, inserted, deleted and reordered events', () => {
    const lines = readFileSync(makeLog('b.ndjson', 5), 'utf8').trimEnd().split('\n');
    const edited = lines.map((l, i) => (i === 3 ? l.replace('"i":2', '"i":7') : l));
    expect(verifyLogText(edited.join('\n') + '\n').problems).toEqual([expect.objectContaining({ seq: 3, problem: expect.stringMatching(/edited/) })]);
    const deleted = lines.filter((_, i) => i !== 2);
    expect(verifyLogText(deleted.join('\n') + '\n').problems.map((p) => p.problem).join(' ')).toMatch(/expected 2.*chain is broken/);
    const swapped = [...lines];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    expect(verifyLogText(swapped.join('\n') + '\n').ok).toBe(false);
    const inserted = [...lines.slice(0, 2), lines[1]!, ...lines.slice(2)];
    expect(verifyLogText(inserted.join('\n') + '\n').problems[0]).toMatchObject({ line: 3 });
  });

  it('reopens after a torn write: keeps the torn bytes aside and says so in the log', () => {
    const p = makeLog('c.ndjson', 3);
    appendFileSync(p, '{"seq":4,"prev":"abc","ty');
    expect(verifyLogText(readFileSync(p, 'utf8')).problems.at(-1)?.problem).toMatch(/torn/);
    const log = EventLog.open(p);
    log.append('after.crash', {});
    log.close();
    const chk = verifyLogText(readFileSync(p, 'utf8'));
    expect(chk.ok).toBe(true);
    const torn = chk.records.find((r) => r.type === 'log.torn_tail')!;
    expect(torn.data).toMatchObject({ bytes: 25, file: 'c.ndjson.torn-1' });
    expect(readFileSync(`${p}.torn-1`, 'utf8')).toBe('{"seq":4,"prev":"abc","ty');
    expect(chk.records.at(-1)!.type).toBe('after.crash');
  });

  it('continues the chain when reopened cleanly', () => {
    const p = makeLog('d.ndjson', 2);
    const log = EventLog.open(p);
    expect(log.head.seq).toBe(3);
    log.close();
    expect(verifyLogText(readFileSync(p, 'utf8')).ok).toBe(true);
    expect(existsSync(`${p}.torn-1`)).toBe(false);
  });

  it('refuses to append after close, naming the log', () => {
    const p = join(dir, 'e.ndjson');
    const log = EventLog.open(p);
    log.close();
    expect(() => log.append('x', {})).toThrow(/e\.ndjson is closed/);
    writeFileSync(join(dir, 'junk.ndjson'), 'not json\n');
    expect(verifyLogText('not json\n').problems[0]!.problem).toMatch(/not valid JSON/);
  });
});

describe('event log on a full disk', () => {
  it('keeps appending in memory without throwing, then writes every record in order once space is back', async (ctx) => {
    const { rmSync: rm, writeFileSync: wf } = await import('node:fs');
    const mnt = join(dir, 'tiny');
    const why = mountTinyTmpfs(mnt, '64k');
    if (why) {
      ctx.skip(why);
      return;
    }
    try {
      const p = join(mnt, 'events.ndjson');
      const log = EventLog.open(p);
      const filler = join(mnt, 'filler');
      try { wf(filler, Buffer.alloc(200 * 1024)); } catch { /* fills the disk up to ENOSPC */ }
      const errors: string[] = [];
      log.on('write_error', (e: Error) => errors.push(e.message));
      for (let i = 0; i < 3; i++) log.append('while.full', { i, pad: 'x'.repeat(2000) });
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/Disk full .*events\.ndjson/);
      expect(log.unwritten).toBeGreaterThan(0);
      expect(() => log.close()).toThrow(/could not be written/);
      rm(filler);
      log.append('space.back', {});
      expect(log.unwritten).toBe(0);
      log.close();
      const chk = verifyLogText(readFileSync(p, 'utf8'));
      expect(chk.ok).toBe(true);
      expect(chk.records.map((r) => r.type)).toEqual(['log.opened', 'while.full', 'while.full', 'while.full', 'space.back']);
    } finally {
      unmount(mnt);
    }
  });
});
