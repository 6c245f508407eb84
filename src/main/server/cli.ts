import { join } from 'node:path';
import { kuzetHome } from '../core/home.js';
import { parse, num } from '../cli/args.js';
import { UsageError } from '../cli/index.js';
import { addAccount, createEnrolToken, loadServerConfig, openDataDir, revokeDevices, startServer } from './app.js';

function dataDirOf(v: string | undefined): string {
  return v ?? process.env.KUZET_SERVER_DATA ?? join(kuzetHome(), 'server');
}

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { data: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, quiet: { type: 'boolean' }, help: { type: 'boolean' } }, false);
  if (values.help) {
    console.log('usage: kuzet serve [--data <dir>] [--port <n>] [--host <addr>]\nRuns the evidence server (tus uploads, verification, receipts, review API). Prints its URL when ready.\nDefaults: --data $KUZET_HOME/server, --port 7420, --host 127.0.0.1; settings in <data>/server.json.');
    return 0;
  }
  const dataDir = dataDirOf(values.data);
  const config = loadServerConfig(dataDir);
  const srv = await startServer({
    dataDir, config, port: values.port !== undefined ? num(values.port, 'port', config.port) : undefined, host: values.host,
    onLog: values.quiet ? undefined : (line) => console.error(`[${new Date().toISOString()}] ${line}`),
  });
  console.log(srv.url);
  console.error(`evidence server ready: data ${dataDir}, store ${srv.config.store.kind}, server key ${srv.key.keyid.slice(0, 16)}…`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await srv.close();
  return 0;
}

async function readPassword(): Promise<string> {
  if (process.env.KUZET_PASSWORD) return process.env.KUZET_PASSWORD;
  if (process.stdin.isTTY) throw new UsageError('give the password on stdin (echo … | kuzet admin account …) or in KUZET_PASSWORD.');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const ADMIN_USAGE = `usage: kuzet admin <what> [--data <dir>] …
  token [--lab <name>] [--machine <id>] [--hours <n>]   print a one-time enrolment token
  account --user <name> --role admin|proctor            add or reset an account (password on stdin or KUZET_PASSWORD)
  devices                                               list enrolled devices
  revoke <machine-id | key-id> [--reason <text>]        revoke a device key (it can no longer upload)
  sessions [--status receiving|verified|quarantined]    list sessions and their verdicts`;

export async function adminCommand(argv: string[]): Promise<number> {
  const [what, ...rest] = argv;
  if (!what || what === '--help' || what === 'help') { console.log(ADMIN_USAGE); return what ? 0 : 2; }
  const { values, positionals } = parse(rest, {
    data: { type: 'string' }, lab: { type: 'string' }, machine: { type: 'string' }, hours: { type: 'string' },
    user: { type: 'string' }, role: { type: 'string' }, reason: { type: 'string' }, status: { type: 'string' }, json: { type: 'boolean' },
  });
  const dataDir = dataDirOf(values.data);
  const config = loadServerConfig(dataDir);
  const { db } = openDataDir(dataDir);
  try {
    switch (what) {
      case 'token': {
        const t = createEnrolToken(db, { lab: values.lab, machineId: values.machine, hours: num(values.hours, 'hours', config.enrolTokenHours), by: `cli:${process.env.USER ?? 'admin'}` });
        console.log(t.token);
        console.error(`one-time enrolment token ${t.id}${t.lab ? ` for lab ${t.lab}` : ''}${t.machineId ? `, machine ${t.machineId}` : ''}; expires ${new Date(t.expiresAt).toISOString()}`);
        return 0;
      }
      case 'account': {
        if (!values.user || !values.role) throw new UsageError('admin account needs --user and --role admin|proctor');
        await addAccount(db, values.user, await readPassword(), values.role);
        console.log(`account ${values.user} (${values.role}) saved`);
        return 0;
      }
      case 'devices': {
        const rows = db.listDevices();
        if (values.json) console.log(JSON.stringify(rows.map((d) => ({ ...d, public_key_pem: undefined })), null, 2));
        else for (const d of rows) console.log(`${d.status.padEnd(8)} ${d.machine_id.padEnd(24)} ${(d.lab ?? '-').padEnd(12)} ${d.keyid.slice(0, 16)}…  enrolled ${new Date(d.enrolled_at).toISOString()}${d.revoked_reason ? `  (${d.revoked_reason})` : ''}`);
        return 0;
      }
      case 'revoke': {
        if (positionals.length !== 1) throw new UsageError('admin revoke needs one machine id or key id');
        const n = revokeDevices(db, positionals[0]!, values.reason ?? 'revoked by administrator');
        console.log(`revoked ${n} key(s)`);
        return 0;
      }
      case 'sessions': {
        const rows = db.listSessions({ status: values.status, limit: 1000, offset: 0 });
        if (values.json) console.log(JSON.stringify(rows, null, 2));
        else for (const s of rows) console.log(`${s.status.padEnd(11)} ${s.id.padEnd(32)} ${s.machine_id.padEnd(20)} ${s.student_id ?? '-'}${s.reasons ? `  ${(JSON.parse(s.reasons) as string[])[0]}` : ''}`);
        return 0;
      }
      default:
        throw new UsageError(`unknown admin action "${what}"\n${ADMIN_USAGE}`);
    }
  } finally {
    db.close();
  }
}
