import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { SessionContext } from '../core/context.js';
import type { LogRecord } from '../core/eventlog.js';
import { resolveFfmpeg } from '../core/ffmpeg.js';
import type { Step } from '../core/session.js';
import { VoiceDetector, type VoiceEpisode } from './voice.js';

/** Decodes one recorded audio segment to mono 16-bit PCM at 16 kHz. */
export function decodePcm(file: string, ffmpeg = resolveFfmpeg().path): Promise<Int16Array> {
  return new Promise((resolve, reject) => {
    const p = spawn(ffmpeg, ['-v', 'error', '-nostdin', '-i', file, '-vn', '-ac', '1', '-ar', '16000', '-f', 's16le', 'pipe:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => chunks.push(d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`ffmpeg could not decode ${file}: ${err.trim() || `exit ${code}`}`));
      const b = Buffer.concat(chunks);
      const aligned = new Int16Array(b.length >> 1);
      for (let i = 0; i < aligned.length; i++) aligned[i] = b.readInt16LE(i * 2);
      resolve(aligned);
    });
  });
}

/**
 * Voice activity on the microphone: each mic segment is analysed the moment it closes (so the exam's CPU is not
 * spent on audio the rest of the time) and sustained speech becomes `audio.voice` episodes in the log. The
 * proctor listens to the recording; Kuzet only points at the moments.
 */
export function voiceStep(): Step<SessionContext> {
  let onRecord: ((r: LogRecord) => void) | null = null;
  let chain: Promise<void> = Promise.resolve();
  let det: VoiceDetector | null = null;
  let n = 0;
  const emit = (ctx: SessionContext, e: VoiceEpisode) => {
    const id = `voice-${String(++n).padStart(4, '0')}`;
    ctx.log.append('episode.started', { id, type: 'audio.voice', camera: 'mic', start: e.start, score: e.peakDbfs, detail: {}, snapshot: null });
    ctx.log.append('episode.ended', {
      id, type: 'audio.voice', camera: 'mic', start: e.start, end: e.end, duration: Math.round((e.end - e.start) * 100) / 100,
      peakScore: e.peakDbfs, peakT: e.start, frames: 0, detail: { speechSeconds: e.speechSeconds, peakDbfs: e.peakDbfs },
    });
  };
  return {
    name: 'voice',
    start(ctx) {
      if (ctx.machine.sources.mic.kind === 'none') return;
      det = new VoiceDetector();
      const d = det;
      onRecord = (rec) => {
        if (rec.type !== 'segment.closed') return;
        const s = rec.data as { source?: string; file?: string; start?: number | null };
        if (s.source !== 'mic' || typeof s.file !== 'string') return;
        const file = join(ctx.dir, s.file);
        chain = chain.then(async () => {
          try {
            const pcm = await decodePcm(file);
            for (const e of d.push(pcm, typeof s.start === 'number' ? s.start : undefined)) emit(ctx, e);
          } catch (e) {
            ctx.log.append('detect.voice_failed', { file: s.file, error: (e as Error).message });
          }
        });
      };
      ctx.log.on('record', onRecord);
      ctx.log.append('detect.voice_started', {});
    },
    async stop(ctx) {
      if (!onRecord) return;
      // Stopped after the recorder (steps stop in reverse), so the last mic segment has closed and is queued.
      ctx.log.off('record', onRecord);
      onRecord = null;
      await chain;
      for (const e of det?.flush() ?? []) emit(ctx, e);
      ctx.log.append('detect.voice_stopped', { frames: det?.frames ?? 0, speechFrames: det?.speechFrames ?? 0 });
    },
  };
}
