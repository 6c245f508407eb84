/**
 * `kuzet record`: records the configured sources for a while, without an exam, and prints each closed segment.
 * For lab technicians checking cameras and for demos; the folder it writes has the session layout
 * (events.ndjson + media/<source>/seg-*.ts) but is not sealed.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SOURCE_IDS, loadMachineConfig, type SourceId } from '../core/config.js';
import { EventLog, verifyLogText } from '../core/eventlog.js';
import { KuzetError } from '../core/errors.js';
import { ensureHome } from '../core/home.js';
import { num, parse } from '../cli/args.js';
import { UsageError } from '../cli/index.js';
import { demoScreenSource } from './args.js';
import { Recorder } from './recorder.js';

const HELP = `usage: kuzet record [--seconds 10] [--sources face,room,screen,mic] [--out <folder>] [--config <machine.json>]
                    [--screen-from-display] [--json]
Records the sources of the machine config (default: every source whose kind is not "none") into
<out>/media/<source>/seg-NNNNN.ts with a hash-chained events.ndjson, printing each segment as it closes.
  --seconds N              how long to record (default 10; Ctrl+C stops early and still closes the last segment)
  --sources a,b            only these sources
  --out <folder>           where to write (default: $KUZET_HOME/recordings/<time>)
  --config <file>          machine config (default: $KUZET_HOME/config.json, else built-in synthetic sources)
  --screen-from-display    record the screen from $DISPLAY (x11grab) instead of the configured screen source
  --json                   print the log records as JSON lines instead of text
Exit code: 0 recorded, 1 a source could not start or gave up, 2 usage error.`;

export async function recordCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    seconds: { type: 'string' }, sources: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' },
    'screen-from-display': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) { console.log(HELP); return 0; }
  const seconds = num(values.seconds, 'seconds', 10);
  if (seconds <= 0) throw new UsageError('--seconds must be more than 0');
  let sources: SourceId[] | undefined;
  if (values.sources) {
    sources = values.sources.split(',').map((x) => x.trim()).filter(Boolean) as SourceId[];
    const bad = sources.filter((x) => !(SOURCE_IDS as readonly string[]).includes(x));
    if (bad.length) throw new UsageError(`unknown source ${bad.join(', ')} (sources are ${SOURCE_IDS.join(', ')})`);
  }
  const home = ensureHome();
  const config = loadMachineConfig(values.config ?? home.config, !!values.config);
  if (values['screen-from-display']) {
    if (!process.env.DISPLAY) throw new UsageError('--screen-from-display needs $DISPLAY (e.g. an Xvfb display)');
    config.sources.screen = demoScreenSource(process.env, { width: config.sources.screen.width, height: config.sources.screen.height, fps: config.sources.screen.fps });
  }
  const out = values.out ?? join(home.root, 'recordings', new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z'));
  mkdirSync(out, { recursive: true });
  const log = EventLog.open(join(out, 'events.ndjson'));
  const say = (s: string) => { if (!values.json) console.log(s); };
  if (values.json) log.on('record', (r) => console.log(JSON.stringify(r)));
  const rec = new Recorder({ dir: out, log, config, sources });
  rec.on('segment', (s) => say(`${s.source.padEnd(6)} ${s.file}  ${s.duration ?? '?'} s  ${(s.size / 1024).toFixed(0)} KiB  sha256 ${s.sha256.slice(0, 16)}…${s.partial ? '  (partial)' : ''}`));
  rec.on('exited', (e) => { if (!e.expected) say(`${e.source.padEnd(6)} ffmpeg stopped (${e.signal ?? 'exit ' + e.code}); restarting`); });
  rec.on('failed', (e) => say(`${e.source.padEnd(6)} gave up: ${e.reason}`));
  rec.on('problem', (e) => console.error(`kuzet: [${e.code}] ${e.message}`));

  say(`recording ${rec.sources.join(', ')} for ${seconds} s into ${out}`);
  try {
    await rec.start();
  } catch (e) {
    log.close();
    if (e instanceof KuzetError) { console.error(`kuzet: error [${e.code}]: ${e.message}`); return 1; }
    throw e;
  }
  say('all sources started');
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, seconds * 1000);
    const onSig = () => { clearTimeout(timer); say('stopping…'); resolve(); };
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
  });
  await rec.stop();
  log.close();
  const stats = rec.stats();
  let failed = false;
  for (const s of Object.values(stats)) {
    if (s.state === 'failed') failed = true;
    say(`${s.source.padEnd(6)} ${s.segments} segments, ${(s.bytes / 1024 / 1024).toFixed(2)} MiB, ${s.restarts} restarts` +
      (s.tap ? `, tap ${s.tap.produced} frames` : '') + (s.lastError ? `; last error: ${s.lastError}` : ''));
  }
  const check = verifyLogText(readFileSync(join(out, 'events.ndjson'), 'utf8'));
  say(`event log: ${check.count} records, chain ${check.ok ? 'intact' : 'BROKEN'}`);
  return failed || !check.ok ? 1 : 0;
}
