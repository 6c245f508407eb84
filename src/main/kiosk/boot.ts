/**
 * Start-up of the kiosk, in plain Node (the Electron main process calls it; tests can too): arguments, configs,
 * crash recovery of unfinished sessions (the spine's recover), and in demo mode the embedded server and demo page.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadExamConfig, loadMachineConfig, parseExamConfig, parseMachineConfig, type ExamConfig, type MachineConfig } from '../core/config.js';
import { KuzetError } from '../core/errors.js';
import { ensureHome, type HomeLayout } from '../core/home.js';
import { loadKeyPair, loadOrCreateKeyPair, type KeyPair } from '../core/keys.js';
import { LANGS, type Lang } from '../../shared/bridge.js';
import type { KioskOptions } from './service.js';

export interface KioskBoot {
  options: KioskOptions;
  home: HomeLayout;
  key: KeyPair;
  /** Sessions sealed by crash recovery at this start. */
  recovered: { id: string; bundleDir?: string; error?: string }[];
  /** Stops what boot started (demo server and page). */
  close(): Promise<void>;
}

export const KIOSK_USAGE = `usage: kuzet-kiosk [--demo] [--config <machine.json>] [--exam <exam.json>] [--lang kk|ru|en]
  --demo     synthetic cameras, an embedded evidence server and a demo exam page
  --config   the machine config (default: $KUZET_HOME/config.json)
  --exam     the exam config (url, allow list, fields, duration, exit code hash)`;

export async function bootKiosk(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<KioskBoot> {
  let values: { demo?: boolean; config?: string; exam?: string; lang?: string };
  try {
    // Electron and Chromium add switches of their own: only ours are read, the rest are ignored.
    ({ values } = parseArgs({
      args: argv, strict: false, allowPositionals: true,
      options: { demo: { type: 'boolean' }, config: { type: 'string' }, exam: { type: 'string' }, lang: { type: 'string' } },
    }) as { values: typeof values });
  } catch (e) {
    throw new KuzetError('USAGE', `${(e as Error).message}\n${KIOSK_USAGE}`);
  }
  const demo = !!values.demo || env.KUZET_DEMO === '1';
  if (values.lang && !(LANGS as readonly string[]).includes(values.lang)) throw new KuzetError('USAGE', `--lang must be one of ${LANGS.join(', ')}`);
  const home = ensureHome();
  let machine: MachineConfig = values.config ? loadMachineConfig(resolve(values.config), true) : loadMachineConfig(home.config);
  let exam: ExamConfig = values.exam ? loadExamConfig(resolve(values.exam)) : parseExamConfig({});
  if (!demo && !values.exam) throw new KuzetError('NO_EXAM', `No exam config: start the kiosk with --exam <exam.json> (or --demo).\n${KIOSK_USAGE}`);
  const key = demo ? loadOrCreateKeyPair(home.keys) : loadKeyPair(home.keys);

  const { recoverSessions } = await import('../session/recover.js');
  const recovered = await recoverSessions(home, key);

  let close = async () => {};
  if (demo) {
    const { demoMachineConfig } = await import('../cli/session.js');
    machine = demoMachineConfig(machine, env);
    if (!machine.upload.server || exam.url === 'about:blank') {
      const { startDemoServices } = await import('./demo.js');
      const d = await startDemoServices(home, machine.machine.id ?? undefined);
      close = d.close;
      if (!machine.upload.server) machine = { ...machine, upload: { ...machine.upload, server: d.serverUrl } };
      if (exam.url === 'about:blank') exam = { ...exam, url: d.examUrl, title: exam.title === 'Demo exam' ? 'Demo exam · Демо емтихан' : exam.title };
    }
    machine = parseMachineConfig(machine);
  }
  return {
    options: { machine, exam, demo, home, key, ...(values.lang ? { lang: values.lang as Lang } : {}) },
    home, key, recovered, close,
  };
}
