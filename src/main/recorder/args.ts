/**
 * Builds the ffmpeg command line for one source: one input, the segment muxer (crash-safe: packets are flushed as
 * they are written, keyframes sit on the segment boundaries, the CSV list names each segment when it closes) and,
 * for tapped video sources, a second low-rate rgb24 output on stdout from the same decoded frames (`split`).
 * Pure functions: no I/O except the platform/file checks in `checkSource`.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineConfig, SourceConfig, SourceId } from '../core/config.js';
import { KuzetError } from '../core/errors.js';

export const SOURCE_LABEL: Record<SourceId, string> = {
  face: 'face camera',
  room: 'room camera',
  screen: 'screen',
  mic: 'microphone',
};

/** Which OS each capture kind exists on (lavfi and file work everywhere). */
const KIND_PLATFORM: Partial<Record<SourceConfig['kind'], NodeJS.Platform>> = {
  v4l2: 'linux',
  x11grab: 'linux',
  pulse: 'linux',
  alsa: 'linux',
  dshow: 'win32',
  gdigrab: 'win32',
  ddagrab: 'win32',
  avfoundation: 'darwin',
};

const NO_PROBE = ['-probesize', '32', '-analyzeduration', '0'];
const AUDIO_KINDS = new Set<SourceConfig['kind']>(['pulse', 'alsa']);
const IMAGE_EXT = /\.(png|jpe?g|bmp|webp|tiff?|gif)$/i;

export function isAudioSource(id: SourceId, cfg: SourceConfig): boolean {
  return id === 'mic' || AUDIO_KINDS.has(cfg.kind);
}

export function segmentExt(config: MachineConfig): 'ts' | 'mp4' {
  return config.recording.container === 'mp4' ? 'mp4' : 'ts';
}

/** Human description of the source used in error messages: `face camera (v4l2 /dev/video9)`. */
export function describeSource(id: SourceId, cfg: SourceConfig): string {
  const what = cfg.kind === 'file' ? cfg.file : cfg.kind === 'lavfi' ? (cfg.pattern ?? 'test pattern') : cfg.device;
  return `${SOURCE_LABEL[id]} (${cfg.kind}${what ? ' ' + what : ''})`;
}

/**
 * Checks what can be checked before ffmpeg runs: the kind exists on this OS, a file source's file exists, a
 * Linux camera device node exists. Throws a KuzetError naming the source and the config key to fix.
 */
export function checkSource(id: SourceId, cfg: SourceConfig, platform: NodeJS.Platform = process.platform): void {
  const need = KIND_PLATFORM[cfg.kind];
  if (need && need !== platform) {
    throw new KuzetError('SOURCE_UNSUPPORTED', `The ${describeSource(id, cfg)} cannot be used here: "${cfg.kind}" capture exists only on ${need}, this machine runs ${platform}. Change sources.${id}.kind in the machine config.`, { source: id, kind: cfg.kind });
  }
  if (cfg.kind === 'file') {
    const f = cfg.file!;
    if (!existsSync(f)) {
      throw new KuzetError('SOURCE_NOT_FOUND', `The ${SOURCE_LABEL[id]} is set to play the file ${f}, which does not exist. Fix sources.${id}.file in the machine config.`, { source: id, file: f });
    }
    if (!statSync(f).isFile()) {
      throw new KuzetError('SOURCE_NOT_FOUND', `The ${SOURCE_LABEL[id]} is set to play ${f}, which is not a file. Fix sources.${id}.file in the machine config.`, { source: id, file: f });
    }
  }
  if (cfg.kind === 'v4l2' && platform === 'linux' && cfg.device && cfg.device.startsWith('/dev/') && !existsSync(cfg.device)) {
    throw new KuzetError('SOURCE_NOT_FOUND', `The ${SOURCE_LABEL[id]} ${cfg.device} does not exist: is the camera connected? (sources.${id}.device in the machine config; the cameras present are the /dev/video* devices.)`, { source: id, device: cfg.device });
  }
}

/** `testsrc2` → `testsrc2=size=640x480:rate=15`; a chain keeps its later filters. */
function lavfiVideoGraph(cfg: SourceConfig): string {
  const pattern = (cfg.pattern ?? 'testsrc2').trim();
  const comma = pattern.indexOf(',');
  const head = comma < 0 ? pattern : pattern.slice(0, comma);
  const tail = comma < 0 ? '' : pattern.slice(comma);
  const sizeRate = `size=${cfg.width}x${cfg.height}:rate=${cfg.fps}`;
  const first = head.includes('=') ? `${head}:${sizeRate}` : `${head}=${sizeRate}`;
  return first + tail;
}

/** Input options (everything before and including `-i`) for a source. */
export function inputArgs(id: SourceId, cfg: SourceConfig, env: NodeJS.ProcessEnv = process.env): string[] {
  const audio = isAudioSource(id, cfg);
  const size = `${cfg.width}x${cfg.height}`;
  const fps = String(cfg.fps);
  switch (cfg.kind) {
    case 'lavfi':
      return ['-re', '-f', 'lavfi', '-i', audio ? (cfg.pattern ?? 'sine=frequency=440:sample_rate=48000') : lavfiVideoGraph(cfg)];
    case 'file':
      return IMAGE_EXT.test(cfg.file!)
        ? ['-loop', '1', '-framerate', fps, '-re', '-i', cfg.file!]
        : ['-stream_loop', '-1', '-re', '-i', cfg.file!];
    case 'v4l2':
      return ['-thread_queue_size', '64', '-f', 'v4l2', '-framerate', fps, '-video_size', size, '-i', cfg.device!];
    case 'x11grab':
      // The whole screen is grabbed (a -video_size larger than the screen is an error) and scaled afterwards.
      // No probing: a screen grabber's parameters are known, and probing would hold ~1 s of frames before ffmpeg's
      // clock-start line, putting the segments' session times late by that much (measured: 1.03 s → 0.05 s).
      return [...NO_PROBE, '-thread_queue_size', '64', '-f', 'x11grab', '-framerate', fps, '-draw_mouse', '1', '-i', cfg.device ?? env.DISPLAY ?? ':0'];
    case 'gdigrab':
      return [...NO_PROBE, '-thread_queue_size', '64', '-f', 'gdigrab', '-framerate', fps, '-draw_mouse', '1', '-i', cfg.device ?? 'desktop'];
    case 'ddagrab':
      return ['-f', 'lavfi', '-i', `ddagrab=output_idx=${Number(cfg.device ?? 0) || 0}:framerate=${fps},hwdownload,format=bgra`];
    case 'dshow': {
      const dev = cfg.device!;
      const spec = /^(video|audio)=/.test(dev) ? dev : `${audio ? 'audio' : 'video'}=${dev}`;
      return audio ? ['-f', 'dshow', '-i', spec] : ['-thread_queue_size', '64', '-f', 'dshow', '-video_size', size, '-framerate', fps, '-i', spec];
    }
    case 'avfoundation':
      return audio
        ? ['-f', 'avfoundation', '-i', cfg.device!.startsWith(':') ? cfg.device! : `:${cfg.device}`]
        : ['-thread_queue_size', '64', '-f', 'avfoundation', '-framerate', fps, '-video_size', size, '-i', cfg.device!];
    case 'pulse':
      return ['-f', 'pulse', '-i', cfg.device!];
    case 'alsa':
      return ['-f', 'alsa', '-i', cfg.device!];
    case 'none':
      throw new KuzetError('SOURCE_DISABLED', `The ${SOURCE_LABEL[id]} is switched off (kind "none").`, { source: id });
  }
}

export interface RunPlan {
  args: string[];
  /** Absolute paths of this run's outputs. */
  dir: string;
  pattern: string;
  listPath: string;
  listName: string;
  ext: 'ts' | 'mp4';
  tap: { width: number; height: number; fps: number } | null;
  audio: boolean;
}

export function listName(run: number): string {
  return `segments-${String(run).padStart(3, '0')}.csv`;
}

export function segmentName(index: number, ext: string): string {
  return `seg-${String(index).padStart(5, '0')}.${ext}`;
}

/**
 * The full ffmpeg command line of one run of one source. `dir` is `<session>/media/<source>`; segments are
 * numbered from `startNumber`, and the run's CSV list is `segments-<run>.csv`.
 */
export function buildRunArgs(p: {
  id: SourceId;
  cfg: SourceConfig;
  config: MachineConfig;
  dir: string;
  run: number;
  startNumber: number;
  env?: NodeJS.ProcessEnv;
}): RunPlan {
  const { id, cfg, config, dir, run, startNumber } = p;
  const rec = config.recording;
  const audio = isAudioSource(id, cfg);
  const ext = segmentExt(config);
  const seg = rec.segmentSeconds;
  const pattern = join(dir, `seg-%05d.${ext}`);
  const lname = listName(run);
  const listPath = join(dir, lname);
  const tapWanted = !audio && rec.tapFps > 0 && (rec.tapSources as string[]).includes(id);
  const tap = tapWanted ? { width: rec.tapWidth, height: rec.tapHeight, fps: rec.tapFps } : null;

  // Log level "info" only for the "Press [q] to stop" line, which marks the moment the stream clock starts (the run's
  // offset in session time); -nostats keeps the periodic progress lines out.
  const args = ['-hide_banner', '-nostats', '-loglevel', 'info', '-n', ...inputArgs(id, cfg, p.env)];

  const fmtOpts = ['flush_packets=1'];
  if (ext === 'mp4') fmtOpts.push('movflags=+frag_keyframe+empty_moov+default_base_moof', 'frag_duration=500000');
  const segmentArgs = [
    '-f', 'segment',
    '-segment_time', String(seg),
    '-segment_format', ext === 'mp4' ? 'mp4' : 'mpegts',
    '-segment_format_options', fmtOpts.join(':'),
    '-segment_list', listPath,
    '-segment_list_type', 'csv',
    '-segment_start_number', String(startNumber),
    '-reset_timestamps', ext === 'mp4' ? '1' : '0',
  ];

  if (audio) {
    args.push('-map', '0:a:0', '-c:a', rec.audioCodec, '-b:a', rec.audioBitrate, '-ac', '1', ...segmentArgs, pattern);
    return { args, dir, pattern, listPath, listName: lname, ext, tap: null, audio };
  }

  // Normalise every video source to the configured size and rate (cameras usually deliver that already; files,
  // grabbed screens and stills need it), then split for the tap.
  const needsScale = cfg.kind === 'file' || cfg.kind === 'x11grab' || cfg.kind === 'gdigrab' || cfg.kind === 'ddagrab';
  // Aspect ratio is kept (letterboxed), so a 4:3 or 16:10 screen is not distorted into the configured 16:9.
  const pre = needsScale
    ? `scale=${cfg.width}:${cfg.height}:force_original_aspect_ratio=decrease:force_divisible_by=2,pad=${cfg.width}:${cfg.height}:-1:-1,setsar=1,fps=${cfg.fps},`
    : '';
  const graph = tap
    ? `[0:v]${pre}format=yuv420p,split=2[rec][tap];[tap]fps=${tap.fps},scale=${tap.width}:${tap.height},format=rgb24[tapout]`
    : `[0:v]${pre}format=yuv420p[rec]`;
  args.push('-filter_complex', graph, '-map', '[rec]', '-c:v', rec.videoCodec);
  if (/^libx26[45]$/.test(rec.videoCodec)) args.push('-preset', rec.preset, '-crf', String(rec.crf));
  // A short look-ahead and two frame threads hold fewer frames inside the encoder, so a kill -9 loses ~0.6 s instead
  // of ~1 s, at the same file size (measured on testsrc2 640x480@15, veryfast, crf 30).
  if (rec.videoCodec === 'libx264') args.push('-threads', '2', '-x264-params', 'rc-lookahead=5:sync-lookahead=0');
  // No B-frames: the segment list's times then match the files exactly, and a crash loses fewer buffered frames.
  args.push(
    '-bf', '0',
    '-pix_fmt', 'yuv420p',
    '-g', String(Math.max(1, Math.round(cfg.fps * seg))),
    '-force_key_frames', `expr:gte(t,n_forced*${seg})`,
    ...segmentArgs,
    '-segment_time_delta', String(Math.round((0.5 / cfg.fps) * 1e6) / 1e6),
    pattern,
  );
  if (tap) args.push('-map', '[tapout]', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  return { args, dir, pattern, listPath, listName: lname, ext, tap, audio };
}

/**
 * The screen source for a demo session: x11grab of `$DISPLAY` when a display is there (e.g. Xvfb), else a
 * synthetic pattern. The session command decides which to use; both are valid `SourceConfig`s.
 */
export function demoScreenSource(env: NodeJS.ProcessEnv = process.env, size = { width: 1280, height: 720, fps: 5 }): SourceConfig {
  if (process.platform === 'linux' && env.DISPLAY) return { kind: 'x11grab', device: env.DISPLAY, ...size };
  return { kind: 'lavfi', pattern: 'testsrc', ...size };
}
