/**
 * The session step that uploads evidence while the exam runs: every `segment.closed` event queues that segment
 * in the durable spool at once, so at the end only the tail (last segments, log, manifest) is left to send.
 * Without a configured server, or on a machine that is not enrolled, the step logs why and the exam goes on:
 * the bundle is uploaded later (`kuzet upload`). A network outage never stops the exam either.
 */
import { join } from 'node:path';
import type { SessionContext } from '../core/context.js';
import type { LogRecord } from '../core/eventlog.js';
import { loadKeyPair } from '../core/keys.js';
import type { Step } from '../core/session.js';
import { ServerClient, loadEnrolment } from './client.js';
import { UploadQueue, type UploadProgress } from './spool.js';

export interface LiveUploadService {
  queue: UploadQueue;
  progress(): UploadProgress;
}

interface SegmentClosed { source?: string; index?: number; file?: string; sha256?: string; size?: number }

export function liveUploadStep(): Step<SessionContext> {
  let queue: UploadQueue | null = null;
  let onRecord: ((rec: LogRecord) => void) | null = null;
  const safeAppend = (ctx: SessionContext, type: string, data: unknown) => {
    try { ctx.log.append(type, data); } catch { /* the log is closed: the session is sealing */ }
  };
  return {
    name: 'upload.live',
    start(ctx) {
      const cfg = ctx.machine.upload;
      if (!cfg.server || !cfg.live) {
        safeAppend(ctx, 'upload.live_off', { reason: !cfg.server ? 'no evidence server configured (upload.server)' : 'live upload disabled (upload.live=false)' });
        return;
      }
      let client: ServerClient;
      try {
        loadEnrolment(ctx.home, cfg.server);
        client = new ServerClient(cfg.server, loadKeyPair(ctx.home.keys), { stallMs: cfg.stallMs });
      } catch (e) {
        safeAppend(ctx, 'upload.live_off', { reason: (e as Error).message, code: (e as { code?: string }).code ?? null });
        ctx.degraded.push(`upload.live: ${(e as Error).message.split('.')[0]}`);
        return;
      }
      const q = new UploadQueue({
        home: ctx.home, client, concurrency: cfg.concurrency, chunkBytes: cfg.chunkBytes, retryMinMs: cfg.retryMinMs, retryMaxMs: cfg.retryMaxMs,
      });
      queue = q;
      q.on('stored', (item) => {
        if (item.session === ctx.id) safeAppend(ctx, 'upload.acked', { path: item.path, sha256: item.sha256, size: item.size });
      });
      q.on('rejected', (item, why) => {
        if (item.session === ctx.id) safeAppend(ctx, 'upload.refused', { path: item.path, reason: why });
      });
      onRecord = (rec: LogRecord) => {
        if (rec.type !== 'segment.closed') return;
        const d = rec.data as SegmentClosed;
        if (typeof d.file !== 'string' || typeof d.sha256 !== 'string' || typeof d.size !== 'number') return;
        try {
          q.enqueue({ session: ctx.id, path: d.file, file: join(ctx.dir, d.file), sha256: d.sha256, size: d.size });
        } catch (e) {
          safeAppend(ctx, 'upload.queue_failed', { path: d.file, error: (e as Error).message });
        }
      };
      ctx.log.on('record', onRecord);
      q.resume(); // earlier sessions' unfinished uploads continue in the background too
      q.start();
      safeAppend(ctx, 'upload.live_on', { server: client.server, concurrency: cfg.concurrency });
      const svc: LiveUploadService = { queue: q, progress: () => q.progress(ctx.id) };
      ctx.services.upload = svc;
    },
    async stop(ctx) {
      if (onRecord) ctx.log.off('record', onRecord);
      onRecord = null;
      if (!queue) return;
      const q = queue;
      queue = null;
      await q.stop(3000);
      const p = q.progress(ctx.id);
      safeAppend(ctx, 'upload.live_stopped', { filesDone: p.filesDone, filesTotal: p.filesTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal });
      delete ctx.services.upload;
    },
  };
}
