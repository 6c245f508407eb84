/**
 * The `kuzet` CLI: one dispatcher over the same headless services the Electron shell uses. Each command lives in
 * its module and is loaded on demand, so `kuzet verify` does not pay for onnxruntime or the server.
 * Exit codes: 0 success, 1 the thing checked is bad / the job failed, 2 usage error.
 */
import { KuzetError } from '../core/errors.js';

export type Command = (argv: string[]) => Promise<number>;

interface Entry { summary: string; load: () => Promise<Command> }

const commands: Record<string, Entry> = {
  keygen: { summary: 'make this machine\'s Ed25519 device key', load: async () => (await import('./keygen.js')).keygenCommand },
  session: { summary: 'run an exam session headless (--demo: synthetic cameras)', load: async () => (await import('./session.js')).sessionCommand },
  verify: { summary: 'verify a sealed evidence bundle offline', load: async () => (await import('./verify.js')).verifyCommand },
  recover: { summary: 'seal any unfinished (crashed) session', load: async () => (await import('./recover.js')).recoverCommand },
  config: { summary: 'print or check the machine config', load: async () => (await import('./config.js')).configCommand },
};

/** Other modules add their commands here (detect, monitor, serve, admin, enroll, upload). */
export function registerCommand(name: string, summary: string, load: () => Promise<Command>): void {
  commands[name] = { summary, load };
}

export function usage(): string {
  const w = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    'kuzet — lockdown exam client and evidence tools',
    '',
    'usage: kuzet <command> [options]   (kuzet <command> --help for its options)',
    '',
    ...Object.entries(commands).map(([k, v]) => `  ${k.padEnd(w)}  ${v.summary}`),
    '',
    'Machine state lives in KUZET_HOME (default: per-OS data directory).',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  await import('./commands.js');
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    const { APP_VERSION } = await import('../core/version.js');
    console.log(APP_VERSION);
    return 0;
  }
  const entry = commands[name];
  if (!entry) {
    console.error(`kuzet: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    const cmd = await entry.load();
    return await cmd(rest);
  } catch (e) {
    return reportError(e);
  }
}

export class UsageError extends Error {}

export function reportError(e: unknown): number {
  if (e instanceof UsageError) {
    console.error(`kuzet: ${e.message}`);
    return 2;
  }
  if (e instanceof KuzetError) {
    console.error(`kuzet: error [${e.code}]: ${e.message}`);
    return 1;
  }
  console.error(`kuzet: unexpected error: ${(e as Error)?.stack ?? String(e)}`);
  return 1;
}
