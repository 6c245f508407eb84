import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { loadExamConfig, loadMachineConfig, parseExamConfig, parseMachineConfig, type ExamConfig, type MachineConfig } from '../core/config.js';
import { ensureHome, type HomeLayout } from '../core/home.js';
import type { LogRecord } from '../core/eventlog.js';
import { ExamSession, moveSealed } from '../session/exam-session.js';
import { recoverSessions } from '../session/recover.js';
import { loadOrCreateKeyPair, loadKeyPair, type KeyPair } from '../core/keys.js';
import { UsageError } from './index.js';
import { num, parse } from './args.js';

const HELP = `usage: kuzet session [--demo] [--duration <s>] [--out <dir>] [--config <machine.json>] [--exam <exam.json>] [--student <id>]
                     [--serve | --server <url>]
Runs an exam session headless and seals it into a signed bundle; prints the bundle path last.
  --demo        synthetic cameras (lavfi); the screen from $DISPLAY (x11grab) when set, else synthetic
  --duration    seconds to record (default: until Ctrl-C)
  --out         move the sealed bundle into this folder (default: $KUZET_HOME/bundles)
  --serve       start the embedded evidence server on loopback, enrol this machine, upload live and wait
                for the server's signed receipt (the demo's full path)
  --server      upload live to this evidence server (this machine must be enrolled: kuzet enroll)
Unfinished sessions from a crash are recovered first.`;

/** Demo sources: synthetic cameras, and the real X screen when there is one. */
export function demoMachineConfig(base: MachineConfig, env = process.env): MachineConfig {
  const cfg = structuredClone(base);
  cfg.sources.face = { ...cfg.sources.face, kind: 'lavfi', pattern: 'testsrc2' };
  cfg.sources.room = { ...cfg.sources.room, kind: 'lavfi', pattern: 'smptebars' };
  cfg.sources.screen = env.DISPLAY
    ? { ...cfg.sources.screen, kind: 'x11grab', device: env.DISPLAY }
    : { ...cfg.sources.screen, kind: 'lavfi', pattern: 'testsrc' };
  return cfg;
}

function describe(rec: LogRecord): string | null {
  const d = rec.data as Record<string, unknown>;
  switch (rec.type) {
    case 'session.step.started': return `step ${d.step} started (${d.ms} ms)`;
    case 'session.step.failed': return `step ${d.step} FAILED: ${d.error}`;
    case 'segment.closed': return `segment ${d.file} closed (${((d.size as number) / 1024).toFixed(0)} KiB)`;
    case 'recorder.exited': return `recorder ${d.source} exited (${d.code ?? d.signal}); restarting`;
    case 'recorder.failed': return `recorder ${d.source} gave up: ${d.reason}`;
    default:
      if (rec.type.startsWith('episode.') || rec.type.startsWith('monitor.') && !rec.type.endsWith('.tick')) return `${rec.type} ${JSON.stringify(d).slice(0, 160)}`;
      return null;
  }
}

export async function sessionCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    demo: { type: 'boolean' }, duration: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' },
    exam: { type: 'string' }, student: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean' },
    serve: { type: 'boolean' }, server: { type: 'string' },
  }, false);
  if (values.help) { console.log(HELP); return 0; }
  const duration = num(values.duration, 'duration', 0);
  if (!values.demo && !values.config) throw new UsageError('a real session needs --config <machine.json> (or use --demo)');
  const home = ensureHome();
  let machine = values.config ? loadMachineConfig(resolve(values.config), true) : loadMachineConfig(home.config);
  if (values.demo) machine = demoMachineConfig(machine);
  machine = parseMachineConfig(machine);
  const exam = values.exam ? loadExamConfig(resolve(values.exam)) : parseExamConfig({ examId: values.demo ? 'demo-exam' : undefined });
  const key = values.demo ? loadOrCreateKeyPair(home.keys) : loadKeyPair(home.keys);
  const outDir = values.out ? resolve(values.out) : undefined;
  const log = (s: string) => { if (!values.quiet) console.error(s); };

  if (values.serve && values.server) throw new UsageError('use either --serve (embedded server) or --server <url>, not both');
  let demo: { serverUrl: string; close(): Promise<void> } | null = null;
  if (values.serve) {
    const { startDemoServices } = await import('../kiosk/demo.js');
    demo = await startDemoServices(home, machine.machine.id);
    log(`evidence server ${demo.serverUrl} (data in ${home.root}/demo-server); this machine is enrolled`);
  }
  const serverUrl = demo?.serverUrl ?? values.server ?? machine.upload.server;
  if (serverUrl) machine = parseMachineConfig({ ...machine, upload: { ...machine.upload, server: serverUrl } });
  try {
    return await runSession({ home, machine, exam, key, outDir, serverUrl, duration, log, studentId: values.student ?? (values.demo ? 'demo-student' : ''), demo: !!values.demo });
  } finally {
    await demo?.close();
  }
}

interface RunOptions {
  home: HomeLayout;
  machine: MachineConfig;
  exam: ExamConfig;
  key: KeyPair;
  studentId: string;
  demo: boolean;
  duration: number;
  outDir?: string;
  serverUrl?: string;
  log: (s: string) => void;
}

async function runSession(o: RunOptions): Promise<number> {
  const { home, key, log } = o;
  for (const r of await recoverSessions(home, key, { outDir: o.outDir })) {
    if (r.bundleDir) log(`recovered unfinished session ${r.id} → ${r.bundleDir}`);
    else if (r.error) log(`could not recover ${r.id}: ${r.error}`);
  }

  const session = await ExamSession.open({ machine: o.machine, exam: o.exam, studentId: o.studentId, demo: o.demo, home, key });
  log(`session ${session.ctx.id} in ${session.ctx.dir}`);
  session.on('event', (rec) => { const s = describe(rec); if (s) log(`[${(rec.mono / 1000).toFixed(1).padStart(6)} s] ${s}`); });
  session.on('warning', (w) => console.error(`WARNING [${w.code}]: ${w.message}`));

  // Ctrl-C or a TERM finishes the exam properly (stop, seal); the first signal only.
  let stopRequested: string | null = null;
  let wake: () => void = () => {};
  const onSignal = (sig: string) => { stopRequested = sig; wake(); };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));

  await session.start();
  log(o.duration ? `recording for ${o.duration} s (Ctrl-C finishes early)…` : 'recording until Ctrl-C…');
  await new Promise<void>((res) => {
    wake = res;
    if (stopRequested) res();
    if (o.duration) setTimeout(res, o.duration * 1000);
  });
  const result = await session.finish(stopRequested ? 'signal' : 'finished', stopRequested ? { signal: stopRequested } : {});
  let bundleDir = result.bundleDir;
  log(`sealed: manifest sha256 ${result.manifestSha256}`);
  let code = 0;
  if (o.serverUrl) {
    try {
      const receiptPath = await uploadRest(bundleDir, o.serverUrl, o);
      log(`receipt: ${receiptPath}`);
      if (!existsSync(bundleDir)) { console.log(receiptPath); return 0; } // retention 0: deleted after the receipt
    } catch (e) {
      // The bundle is sealed and kept; the upload can be finished later.
      log(`upload not finished: ${(e as Error).message}\nThe bundle is kept; finish with: kuzet upload ${bundleDir} --server ${o.serverUrl}`);
      code = 1;
    }
  }
  if (o.outDir && !existsSync(resolve(o.outDir, session.ctx.id))) bundleDir = await moveSealed(bundleDir, o.outDir);
  console.log(bundleDir);
  return code;
}

async function uploadRest(bundleDir: string, serverUrl: string, o: RunOptions): Promise<string> {
  const { uploadBundle } = await import('../upload/bundle.js');
  const { progressLine } = await import('../upload/messages.js');
  o.log(`uploading the rest of the bundle to ${serverUrl} …`);
  let last = 0;
  const up = await uploadBundle(bundleDir, serverUrl, {
    home: o.home, upload: o.machine.upload,
    onProgress: (p) => {
      if (Date.now() - last < 1000 && p.filesDone < p.filesTotal) return; // once a second, and always the last one
      last = Date.now();
      o.log(progressLine(p, 'en'));
    },
    onRetry: (why, delay) => o.log(`retrying in ${Math.round(delay / 1000)} s: ${why}`),
  });
  return up.receiptPath;
}
