/**
 * What the Electron shell gives the monitors (src/main/monitors is plain Node and never imports electron): the
 * kiosk's own identity (`ours`: the main process, which owns the windows, plus its renderer/GPU/utility processes,
 * the kiosk window's title and class), Electron's clipboard, and Electron's screen API as the display source.
 */
import { app, clipboard, screen } from 'electron';
import { basename } from 'node:path';
import { electronDisplaySource, type ClipboardSource, type DisplaySource, type MonitorsOptions } from '../monitors/index.js';
import { syncPids } from './policy.js';

export function electronClipboardSource(): ClipboardSource {
  return {
    name: 'electron-clipboard',
    readText: async () => clipboard.readText('clipboard'),
    clear: async () => { clipboard.clear('clipboard'); },
  };
}

/** Electron's screen list, with change notifications (display added/removed/moved) instead of polling. */
export function electronScreenSource(): DisplaySource {
  const base = electronDisplaySource(() => screen.getAllDisplays(), () => screen.getPrimaryDisplay().id);
  let off: (() => void) | null = null;
  return {
    ...base,
    watch(onChange) {
      const h = () => onChange();
      screen.on('display-added', h);
      screen.on('display-removed', h);
      screen.on('display-metrics-changed', h);
      off = () => { screen.off('display-added', h); screen.off('display-removed', h); screen.off('display-metrics-changed', h); };
      return true;
    },
    close() { off?.(); off = null; },
  };
}

export interface KioskMonitorIdentity {
  options: MonitorsOptions;
  /** Re-reads the app's process list now (the shell also refreshes it every few seconds). */
  refresh(): void;
  stop(): void;
}

/**
 * The monitors options for the kiosk. `pids` is a live list (the monitors read it on every check): renderer
 * processes come and go (the exam view gets its own), so it is refreshed from app.getAppMetrics().
 */
export function kioskMonitors(windowTitle: string): KioskMonitorIdentity {
  const pids: number[] = [process.pid];
  const refresh = () => { syncPids(pids, [process.pid, ...app.getAppMetrics().map((m) => m.pid)]); };
  refresh();
  const timer = setInterval(refresh, 5000);
  timer.unref();
  const onGone = () => refresh();
  app.on('child-process-gone', onGone);
  app.on('web-contents-created', onGone);
  return {
    options: {
      ours: { pids, titles: [windowTitle], classes: [...new Set([app.getName(), basename(process.execPath).replace(/\.exe$/i, '')])] },
      sources: { clipboard: electronClipboardSource(), displays: electronScreenSource() },
    },
    refresh,
    stop() { clearInterval(timer); app.off('child-process-gone', onGone); app.off('web-contents-created', onGone); },
  };
}
