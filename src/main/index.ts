/**
 * Electron main process: single instance, boot (configs, crash recovery, demo services), the KioskService over
 * the headless services, the kiosk window and the bridge. Quits only after the service has released (receipt
 * shown, or sealed locally, or a proctor exit) — or on a signal, after sealing what was recorded.
 */
import { app, dialog } from 'electron';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootKiosk, type KioskBoot } from './kiosk/boot.js';
import { KioskService } from './kiosk/service.js';
import { createKioskShell } from './shell/window.js';
import { wireBridge } from './shell/ipc.js';
import { kioskWindowTitle } from './shell/policy.js';
import { kioskMonitors } from './shell/sources.js';

const here = dirname(fileURLToPath(import.meta.url));

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  void main();
}

async function main(): Promise<void> {
  app.commandLine.appendSwitch('disable-features', 'Translate,MediaRouter');
  await app.whenReady();
  let boot: KioskBoot;
  try {
    boot = await bootKiosk(process.argv.slice(app.isPackaged ? 1 : 2));
  } catch (e) {
    dialog.showErrorBox('Kuzet', (e as Error).message);
    app.exit(1);
    return;
  }
  // The monitors see the kiosk's own processes and window as "ours", and read the clipboard and the displays
  // through Electron (works on every OS and sees what the kiosk window sees).
  const identity = kioskMonitors(kioskWindowTitle(boot.options.exam.title));
  const service = new KioskService({ ...boot.options, monitors: identity.options });
  for (const r of boot.recovered) service.note('kiosk.recovered_previous', { id: r.id, bundleDir: r.bundleDir ?? null, error: r.error ?? null });
  const rendererUrl = process.env.ELECTRON_RENDERER_URL;
  const ui = rendererUrl ? { url: rendererUrl } : { file: join(here, '../renderer/index.html') };
  const shell = createKioskShell(service, {
    renderer: ui, preload: join(here, '../preload/index.cjs'), examPreload: join(here, '../preload/exam.cjs'),
    unlocked: process.argv.includes('--dev-unlocked') && !app.isPackaged,
  });
  const unwire = wireBridge(shell.window, service, ui);
  app.on('second-instance', () => { shell.window.show(); shell.window.focus(); });

  let quitting = false;
  const shutdown = async (reason: string) => {
    if (quitting) return;
    quitting = true;
    await service.close(reason);
    identity.stop();
    unwire();
    await boot.close();
    app.exit(0);
  };
  service.on('quit', () => { shell.release(); void shutdown('released'); });
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  app.on('window-all-closed', () => void shutdown('window-closed'));
}
