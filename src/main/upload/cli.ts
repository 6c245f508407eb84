import { hostname } from 'node:os';
import { ensureHome } from '../core/home.js';
import { loadMachineConfig } from '../core/config.js';
import { loadOrCreateKeyPair } from '../core/keys.js';
import { parse } from '../cli/args.js';
import { UsageError } from '../cli/index.js';
import { ServerClient, saveEnrolment, normalizeServerUrl } from './client.js';
import { uploadBundle } from './bundle.js';
import { lang, progressLine, t } from './messages.js';

export async function enrollCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { server: { type: 'string' }, token: { type: 'string' }, 'machine-id': { type: 'string' }, help: { type: 'boolean' } }, false);
  if (values.help) {
    console.log('usage: kuzet enroll --server <url> --token <one-time token> [--machine-id <id>]\nBinds this machine\'s device key ($KUZET_HOME/keys/device.key, made if missing) to the evidence server.');
    return 0;
  }
  if (!values.server || !values.token) throw new UsageError('enroll needs --server <url> and --token <token> (from `kuzet admin token` on the server).');
  const home = ensureHome();
  const cfg = loadMachineConfig(home.config);
  const key = loadOrCreateKeyPair(home.keys);
  const client = new ServerClient(normalizeServerUrl(values.server), key);
  const machineId = values['machine-id'] ?? cfg.machine.id ?? `host-${hostname()}`;
  const e = await client.enroll(values.token, machineId);
  const p = saveEnrolment(home, e);
  console.log(`${t('enrolled')}: ${e.machineId}${e.lab ? ` (${e.lab})` : ''}`);
  console.log(`device key ${e.keyid}`);
  console.log(`server key ${e.serverKeyId} (pinned)`);
  console.log(p);
  return 0;
}

export async function uploadCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { server: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean' } });
  if (values.help) {
    console.log('usage: kuzet upload <bundle-dir> [--server <url>] [--quiet]\nUploads a sealed bundle (resuming anything already sent), waits for the server\'s signed receipt, verifies it and prints its path last. Exit 0 only with a valid receipt.');
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('upload needs exactly one bundle folder.');
  const home = ensureHome();
  const cfg = loadMachineConfig(home.config);
  const server = values.server ?? cfg.upload.server;
  if (!server) throw new UsageError('upload needs --server <url> (or upload.server in the machine config).');
  const l = lang();
  const tty = process.stderr.isTTY;
  let lastLine = '';
  let lastPrint = 0;
  const show = (line: string, force = false) => {
    if (values.quiet) return;
    if (tty) { process.stderr.write(`\r${line.padEnd(lastLine.length)}`); lastLine = line; return; }
    const now = Date.now();
    if (force || now - lastPrint > 2000) { process.stderr.write(line + '\n'); lastPrint = now; }
  };
  const ac = new AbortController();
  const onSig = () => ac.abort();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  try {
    const r = await uploadBundle(positionals[0]!, server, {
      home, upload: cfg.upload, signal: ac.signal,
      onProgress: (p) => show(progressLine(p, l)),
      onWarning: (w) => { if (tty && lastLine) process.stderr.write('\n'); console.error(`warning: ${w}`); lastLine = ''; },
    });
    show(progressLine({ bytesDone: r.payload.totalBytes, bytesTotal: r.payload.totalBytes, filesDone: r.payload.files.length, filesTotal: r.payload.files.length, filesRejected: 0, rateBps: 0, etaSeconds: 0, active: [], retrying: null }, l), true);
    if (tty && !values.quiet) process.stderr.write('\n');
    for (const d of r.deleted) console.error(`${t('deleted', l)}: ${d}`);
    console.error(`${t('receipt', l)}: session ${r.sessionId}, ${r.payload.files.length} files, manifest ${r.payload.manifestSha256.slice(0, 16)}…`);
    console.log(r.receiptPath);
    return 0;
  } catch (e) {
    if (tty && !values.quiet && lastLine) process.stderr.write('\n');
    console.error(t('kept', l));
    throw e;
  } finally {
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
  }
}
