/**
 * THE config schema (machine config and exam config), versioned. Every other module reads its settings through the
 * types exported here; nothing else defines config fields. Bump CONFIG_VERSION on an incompatible change and add a
 * migration in `migrate`.
 */
import { readFileSync, existsSync } from 'node:fs';
import { z } from 'zod';
import { canonicalHash } from './canonical.js';
import { KuzetError } from './errors.js';

export const CONFIG_VERSION = 1;

const Kind = z.enum(['none', 'lavfi', 'file', 'v4l2', 'x11grab', 'pulse', 'alsa', 'dshow', 'gdigrab', 'ddagrab', 'avfoundation']);

export const SourceSchema = z.object({
  kind: Kind,
  /** Device for the kind: /dev/video0, ":0.0", "video=Integrated Camera", "1", a PulseAudio source … */
  device: z.string().optional(),
  /** lavfi: the filter graph used as a synthetic camera, e.g. "testsrc2" (size and rate are added). */
  pattern: z.string().optional(),
  /** file: a video or still played as a camera (looped). */
  file: z.string().optional(),
  width: z.number().int().min(16).max(7680).default(640),
  height: z.number().int().min(16).max(4320).default(480),
  fps: z.number().min(1).max(60).default(15),
}).refine((s) => s.kind !== 'file' || !!s.file, { message: 'a "file" source needs "file": the path of a video or image' })
  .refine((s) => !['v4l2', 'dshow', 'avfoundation', 'pulse', 'alsa'].includes(s.kind) || !!s.device, { message: 'a camera or microphone source needs "device"' });
export type SourceConfig = z.infer<typeof SourceSchema>;

export const SOURCE_IDS = ['face', 'room', 'screen', 'mic'] as const;
export type SourceId = (typeof SOURCE_IDS)[number];

const RecordingSchema = z.object({
  /** Segment length in seconds (keyframes are forced on the boundaries). */
  segmentSeconds: z.number().min(2).max(30).default(6),
  container: z.enum(['mpegts', 'mp4']).default('mpegts'),
  videoCodec: z.string().default('libx264'),
  preset: z.string().default('veryfast'),
  crf: z.number().int().min(0).max(51).default(30),
  /** Raw-frame tap for the detectors: rate and size (rgb24). 0 disables the tap for that source. */
  tapFps: z.number().min(0).max(15).default(2),
  tapWidth: z.number().int().min(32).max(1920).default(320),
  tapHeight: z.number().int().min(32).max(1080).default(240),
  /** A source whose ffmpeg dies is restarted after `restartDelayMs`, at most `maxRestarts` times a session. */
  restartDelayMs: z.number().int().min(0).max(60000).default(1000),
  maxRestarts: z.number().int().min(0).max(100).default(10),
  /** Which sources get a raw-frame tap (video sources only; the detectors read face and room). */
  tapSources: z.array(z.enum(['face', 'room', 'screen'])).default(['face', 'room']),
  /** A source that has written no bytes this long after its ffmpeg started fails start-up with a clear error. */
  startTimeoutMs: z.number().int().min(1000).max(120000).default(15000),
  /** Graceful stop ("q" to ffmpeg) waits this long for the last segment before ffmpeg is killed. */
  stopTimeoutMs: z.number().int().min(500).max(120000).default(8000),
  /** Microphone encoding (only when sources.mic is not "none"). */
  audioCodec: z.string().default('aac'),
  audioBitrate: z.string().regex(/^\d+k?$/).default('64k'),
});

const DetectionSchema = z.object({
  enabled: z.boolean().default(true),
  /** What to do when a model file is missing or its hash is wrong: refuse to start, or run without that detector. */
  onModelProblem: z.enum(['refuse', 'continue']).default('continue'),
  faceHz: z.number().min(0).max(15).default(5),
  objectHz: z.number().min(0).max(15).default(2),
  thresholds: z.object({
    faceScore: z.number().min(0).max(1).default(0.5),
    objectScore: z.number().min(0).max(1).default(0.35),
    noFaceSeconds: z.number().min(0).default(5),
    multiFaceSeconds: z.number().min(0).default(2),
    headAwayYawDeg: z.number().min(0).max(90).default(30),
    headDownPitchDeg: z.number().min(0).max(90).default(25),
    headAwaySeconds: z.number().min(0).default(5),
    phoneVotes: z.object({ k: z.number().int().min(1).default(3), n: z.number().int().min(1).default(6) }).prefault({}),
    extraPersonSeconds: z.number().min(0).default(3),
  }).prefault({}),
});

const DenyEntry = z.object({
  name: z.string().min(1),
  /** Executable names (case-insensitive, without .exe) and optional path fragments that identify it. */
  match: z.array(z.string().min(1)).min(1),
  paths: z.array(z.string()).default([]),
  category: z.enum(['remote', 'messenger', 'capture', 'browser', 'vm', 'other']).default('other'),
  policy: z.enum(['flag', 'terminate']).default('flag'),
});
export type DenyEntryConfig = z.infer<typeof DenyEntry>;

const MonitorsSchema = z.object({
  enabled: z.boolean().default(true),
  foregroundPollMs: z.number().int().min(100).max(10000).default(400),
  processScanMs: z.number().int().min(250).max(60000).default(2000),
  devicePollMs: z.number().int().min(250).max(60000).default(2000),
  /** Replaces the built-in deny list when given; `denyExtra` adds to it. */
  deny: z.array(DenyEntry).optional(),
  denyExtra: z.array(DenyEntry).default([]),
  clipboard: z.enum(['off', 'clear', 'isolate']).default('clear'),
  /** Characters of clipboard text kept in clipboard events (0: only hash and length). */
  clipboardPreviewChars: z.number().int().min(0).max(1000).default(80),
  displayPollMs: z.number().int().min(250).max(60000).default(5000),
  /** Remote sessions (inbound SSH/RDP/VNC connections, network logins) are re-checked this often during the exam. */
  remoteCheckMs: z.number().int().min(1000).max(600000).default(5000),
  /** SIGTERM → wait this long → SIGKILL, for deny entries with policy "terminate". */
  terminateGraceMs: z.number().int().min(0).max(30000).default(1500),
  /** Preflight: "block" refuses to start only on a "likely" VM verdict (never on one weak signal). */
  vm: z.enum(['flag', 'block']).default('flag'),
  /** Preflight: Kuzet itself running in an RDP/SSH/forwarded-X session. */
  remoteSession: z.enum(['flag', 'block']).default('block'),
  /** Preflight: more active displays than `maxDisplays`, mirrored or virtual displays. */
  displays: z.enum(['flag', 'block']).default('flag'),
  maxDisplays: z.number().int().min(1).max(16).default(1),
  /** Windows besides the kiosk's own process that count as "the exam" (exact titles, WM classes / app names). */
  allowWindows: z.object({ titles: z.array(z.string()).default([]), classes: z.array(z.string()).default([]) }).prefault({}),
});

const UploadSchema = z.object({
  /** Evidence server base URL, e.g. http://127.0.0.1:7420. Unset: bundles stay local until `kuzet upload`. */
  server: z.string().url().optional(),
  live: z.boolean().default(true),
  /** After a valid signed receipt: keep local evidence this many days (0 = delete at once; -1 = never delete). */
  keepDaysAfterReceipt: z.number().int().min(-1).default(7),
  chunkBytes: z.number().int().min(64 * 1024).default(8 * 1024 * 1024),
  /** Files uploaded at once; a request that sends or receives nothing for `stallMs` is dropped and resumed. */
  concurrency: z.number().int().min(1).max(16).default(2),
  stallMs: z.number().int().min(500).max(600000).default(20000),
  /** Retry backoff (exponential with jitter) between these bounds; evidence uploads are retried without limit. */
  retryMinMs: z.number().int().min(10).default(500),
  retryMaxMs: z.number().int().min(10).default(30000),
});

/** `kuzet serve`: the evidence server's settings (`<data>/server.json`; CLI flags override). */
export const ServerConfigSchema = z.object({
  configVersion: z.literal(CONFIG_VERSION).default(CONFIG_VERSION),
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(7420),
  /** Public base URL when behind a reverse proxy (used in upload Location headers). */
  publicUrl: z.string().url().optional(),
  limits: z.object({
    maxFileBytes: z.number().int().min(1).default(2 * 1024 ** 3),
    maxSessionBytes: z.number().int().min(1).default(20 * 1024 ** 3),
    maxFilesPerSession: z.number().int().min(1).default(20000),
  }).prefault({}),
  deviceTokenMinutes: z.number().min(1).max(24 * 60).default(30),
  accountTokenHours: z.number().min(0.1).max(24 * 7).default(12),
  enrolTokenHours: z.number().min(0.1).max(24 * 365).default(72),
  /**
   * At completion, read every stored byte again and re-hash it (true), or trust the sha256 the server computed of
   * each upload's bytes as they arrived and check sizes (false, default: exam end → receipt without a second pass).
   */
  rehashOnComplete: z.boolean().default(false),
  /** Where upload bytes go: the data dir (default) or an S3-compatible bucket (index and keys stay in the data dir). */
  store: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('file') }),
    z.object({
      kind: z.literal('s3'),
      bucket: z.string().min(1),
      region: z.string().default('us-east-1'),
      endpoint: z.string().url().optional(),
      forcePathStyle: z.boolean().default(true),
      /** Credentials: from these fields, else the AWS_* environment variables the AWS SDK reads. */
      accessKeyId: z.string().optional(),
      secretAccessKey: z.string().optional(),
      partSize: z.number().int().min(5 * 1024 ** 2).default(8 * 1024 ** 2),
      /**
       * The AWS SDK's own CRC checksums on requests: only where the API requires them (default; many S3-compatible
       * servers do not understand the chunked checksum trailers, and Kuzet checks every upload's SHA-256 itself) or
       * wherever supported (AWS S3).
       */
      checksums: z.enum(['when_required', 'when_supported']).default('when_required'),
    }),
  ]).default({ kind: 'file' }),
});
export type ServerConfig = z.infer<typeof ServerConfigSchema>;

export function parseServerConfig(raw: unknown, file = 'server config'): ServerConfig {
  const r = ServerConfigSchema.safeParse(migrate(raw ?? {}));
  if (!r.success) throw new KuzetError('CONFIG_INVALID', `Invalid server config:\n${describeIssues(file, r.error)}`);
  return r.data;
}

export const MachineConfigSchema = z.object({
  configVersion: z.literal(CONFIG_VERSION).default(CONFIG_VERSION),
  machine: z.object({ id: z.string().min(1).optional(), lab: z.string().optional() }).prefault({}),
  sources: z.object({
    face: SourceSchema.prefault({ kind: 'lavfi', pattern: 'testsrc2' }),
    room: SourceSchema.prefault({ kind: 'lavfi', pattern: 'smptebars' }),
    screen: SourceSchema.prefault({ kind: 'lavfi', pattern: 'testsrc', width: 1280, height: 720, fps: 5 }),
    mic: SourceSchema.prefault({ kind: 'none' }),
  }).prefault({}),
  recording: RecordingSchema.prefault({}),
  detection: DetectionSchema.prefault({}),
  monitors: MonitorsSchema.prefault({}),
  upload: UploadSchema.prefault({}),
});
export type MachineConfig = z.infer<typeof MachineConfigSchema>;

export const ExamConfigSchema = z.object({
  configVersion: z.literal(CONFIG_VERSION).default(CONFIG_VERSION),
  examId: z.string().min(1).default('demo-exam'),
  title: z.string().default('Demo exam'),
  /** The LMS page the kiosk opens, and the URL patterns it may navigate to (host or host/path prefix, * wildcard). */
  url: z.string().default('about:blank'),
  allow: z.array(z.string()).default([]),
  allowDownloads: z.boolean().default(false),
  durationMinutes: z.number().min(1).max(24 * 60).default(90),
  /** What the student types in on the first screen. */
  fields: z.array(z.object({ id: z.string(), label: z.record(z.string(), z.string()).optional(), pattern: z.string().optional() }))
    .default([{ id: 'studentId', pattern: '^[A-Za-z0-9_-]{3,32}$' }, { id: 'examCode' }]),
  /** sha256 (hex) of the proctor exit code; empty disables the exit code. */
  exitCodeSha256: z.string().regex(/^([0-9a-f]{64})?$/).default(''),
  languages: z.array(z.enum(['kk', 'ru', 'en'])).default(['kk', 'ru', 'en']),
  /** Overrides for detection thresholds and monitors for this exam. */
  detection: DetectionSchema.partial().optional(),
  monitors: MonitorsSchema.partial().optional(),
  /** Kiosk: send Safe Exam Browser request headers, for LMS rules that require SEB (Moodle's quiz access rule). */
  seb: z.object({
    enabled: z.boolean().default(true),
    /** The config key to announce (64 hex). Default: sha256 of this exam config's canonical JSON (RFC 8785). */
    configKey: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  }).optional(),
});
export type ExamConfig = z.infer<typeof ExamConfigSchema>;

function describeIssues(file: string, err: z.ZodError): string {
  return err.issues.map((i) => `${file}: ${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`).join('\n');
}

function parseJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new KuzetError('CONFIG_UNREADABLE', `Cannot read the ${what} ${path}: ${(e as Error).message}`, { path });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new KuzetError('CONFIG_INVALID', `The ${what} ${path} is not valid JSON: ${(e as Error).message}`, { path });
  }
}

function migrate(raw: unknown): unknown {
  if (raw && typeof raw === 'object' && 'configVersion' in raw) {
    const v = (raw as { configVersion: unknown }).configVersion;
    if (v !== CONFIG_VERSION) {
      throw new KuzetError('CONFIG_VERSION', `configVersion ${JSON.stringify(v)} is not supported; this Kuzet reads version ${CONFIG_VERSION}.`);
    }
  }
  return raw;
}

export function parseMachineConfig(raw: unknown, file = 'machine config'): MachineConfig {
  const r = MachineConfigSchema.safeParse(migrate(raw ?? {}));
  if (!r.success) throw new KuzetError('CONFIG_INVALID', `Invalid machine config:\n${describeIssues(file, r.error)}`);
  return r.data;
}

export function parseExamConfig(raw: unknown, file = 'exam config'): ExamConfig {
  const r = ExamConfigSchema.safeParse(migrate(raw ?? {}));
  if (!r.success) throw new KuzetError('CONFIG_INVALID', `Invalid exam config:\n${describeIssues(file, r.error)}`);
  return r.data;
}

/** Loads the machine config. A missing file at the default location means defaults; an explicit path must exist. */
export function loadMachineConfig(path: string, explicit = false): MachineConfig {
  if (!existsSync(path)) {
    if (explicit) throw new KuzetError('CONFIG_MISSING', `Config file ${path} does not exist.`, { path });
    return parseMachineConfig({});
  }
  return parseMachineConfig(parseJsonFile(path, 'machine config'), path);
}

export function loadExamConfig(path: string): ExamConfig {
  if (!existsSync(path)) throw new KuzetError('CONFIG_MISSING', `Exam config ${path} does not exist.`, { path });
  return parseExamConfig(parseJsonFile(path, 'exam config'), path);
}

/** The config hash recorded in every bundle: sha256 over RFC 8785 JSON of the effective configs. */
export function configHash(machine: MachineConfig, exam: ExamConfig): string {
  return canonicalHash({ machine, exam });
}
