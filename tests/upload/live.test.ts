import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../src/main/core/canonical.js';
import { parseExamConfig, parseMachineConfig } from '../../src/main/core/config.js';
import type { SessionContext } from '../../src/main/core/context.js';
import { readLogRecords } from '../../src/main/core/eventlog.js';
import type { Step } from '../../src/main/core/session.js';
import { ExamSession } from '../../src/main/session/exam-session.js';
import { uploadBundle } from '../../src/main/upload/bundle.js';
import { liveUploadStep, type LiveUploadService } from '../../src/main/upload/live.js';
import { readSpool } from '../../src/main/upload/spool.js';
import { serverWithDevice } from '../server/helpers.js';
import { cutOffMidUpload, deviceBehindProxy, resumeInNewQueue } from './faultproxy.js';

/** Stands in for the recorder: closes a segment every `everyMs` and announces it as segment.closed. */
function syntheticSegments(everyMs: number, bytes: number): Step<SessionContext> {
  let timer: NodeJS.Timeout | null = null;
  let i = 0;
  return {
    name: 'test.segments',
    start(ctx) {
      mkdirSync(join(ctx.dir, 'media', 'face'), { recursive: true });
      timer = setInterval(() => {
        const file = `media/face/seg-${String(i).padStart(5, '0')}.ts`;
        const data = randomBytes(bytes);
        writeFileSync(join(ctx.dir, file), data);
        ctx.log.append('segment.closed', { source: 'face', index: i++, file, sha256: sha256Hex(data), size: bytes, duration: 1 });
      }, everyMs);
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}

describe('live upload during the exam', () => {
  const t = serverWithDevice();

  it('uploads each segment as it closes; at the end only the tail and the manifest remain', async () => {
    const machine = parseMachineConfig({ upload: { server: t.srv.url, keepDaysAfterReceipt: -1, retryMinMs: 50 } });
    const session = await ExamSession.open({
      machine, exam: parseExamConfig({}), studentId: 'stu-042', home: t.dev.home, key: t.dev.key,
      steps: [syntheticSegments(80, 40_000), liveUploadStep()],
    });
    await session.start();
    const sid = session.ctx.id;
    // While the exam runs, the server receives the closed segments.
    const svc = session.ctx.services.upload as LiveUploadService;
    const stored = () => t.srv.db.filesOf(sid).filter((f) => f.state === 'stored').length;
    // Wait for both sides: the server has stored them, and the client has read the server's acknowledgements.
    const deadline = Date.now() + 20_000;
    while ((stored() < 5 || svc.progress().filesDone < 5) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const duringExam = stored();
    const ackedDuring = svc.progress().filesDone;
    const statusDuring = t.srv.db.session(sid)?.status;
    const res = await session.finish();
    expect(duringExam).toBeGreaterThanOrEqual(5);
    expect(statusDuring).toBe('receiving');
    expect(ackedDuring).toBeGreaterThanOrEqual(5);

    // At the end, the uploader has only the files the live step had not delivered: the tail.
    let tail = -1;
    const r = await uploadBundle(res.bundleDir, t.srv.url, { home: t.dev.home, upload: machine.upload, onProgress: (p) => { if (tail < 0) tail = p.filesTotal - p.filesDone; } });
    expect(r.payload.files.length).toBeGreaterThan(duringExam);
    // The log records what the server acknowledged during the exam.
    const acked = readLogRecords(join(res.bundleDir, 'events.ndjson')).filter((x) => x.type === 'upload.acked');
    expect(acked.length).toBeGreaterThanOrEqual(duringExam);
    const segments = r.payload.files.filter((f) => f.path.startsWith('media/')).length;
    expect(acked.length).toBeLessThanOrEqual(segments);
    expect(tail).toBeGreaterThan(0);
    expect(tail).toBeLessThanOrEqual(r.payload.files.length - duringExam);
    expect(t.srv.db.session(sid)?.status).toBe('verified');
    for (const f of r.payload.files) expect(readFileSync(join(t.data, 'bundles', sid, f.path)).equals(readFileSync(join(res.bundleDir, f.path)))).toBe(true);
  });

  it('without a configured server the step logs why and the exam goes on', async () => {
    const session = await ExamSession.open({
      machine: parseMachineConfig({}), exam: parseExamConfig({}), studentId: 'stu-043', home: t.dev.home, key: t.dev.key,
      steps: [liveUploadStep()],
    });
    await session.start();
    const res = await session.finish();
    const off = readLogRecords(join(res.bundleDir, 'events.ndjson')).find((x) => x.type === 'upload.live_off');
    expect((off?.data as { reason: string }).reason).toMatch(/no evidence server configured/);
  });
});

describe('the upload queue survives a crash and resumes from the last acknowledged byte', () => {
  it('a new queue (new process) resumes the half-sent file instead of starting over', async () => {
    const { data, srv, proxy, url, dev, close } = await deviceBehindProxy(4 * 1024 * 1024);
    try {
      const { s, seg, q1 } = await cutOffMidUpload(dev, url, 'screen'); // the "crash"
      const rec = q1.items(s.id)[0]!;
      expect(rec.state).toBe('pending');
      expect(rec.uploadUrl).toMatch(/\/files\/[0-9a-f]{40}$/);
      const onDisk = readSpool(dev.home, s.id).find((i) => i.id === rec.id)!;
      expect(onDisk.uploadUrl).toBe(rec.uploadUrl);
      expect(onDisk.offset).toBeGreaterThan(0);
      const { resumed, sent: resent } = await resumeInNewQueue(dev, url, proxy, s.id);
      expect(resumed).toBe(1);
      expect(resent).toBeLessThan(seg.size - 300_000);
      const row = srv.db.filesOf(s.id)[0]!;
      expect(row.state).toBe('stored');
      expect(readFileSync(join(data, 'uploads', row.upload_id)).equals(readFileSync(join(s.dir, seg.file)))).toBe(true);
      s.log.close();
    } finally {
      await close();
    }
  });
});
