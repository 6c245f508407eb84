/**
 * The bridge's main-process side: one ipcMain handler per contract method, each checking that the request comes
 * from the kiosk UI's own main frame (never from the exam page or a sub-frame), then handing the untrusted
 * arguments to KioskService.invoke, which validates them. State and previews go back on the event channels.
 */
import { ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import { BRIDGE_METHODS, CHANNELS } from '../../shared/bridge.js';
import type { KioskService } from '../kiosk/service.js';

/** True when `url` is the kiosk UI: the built index.html (file:) or the dev server's origin. */
export function isUiUrl(url: string, ui: { file: string } | { url: string }): boolean {
  try {
    const u = new URL(url);
    if ('file' in ui) return u.protocol === 'file:' && decodeURIComponent(u.pathname).endsWith(ui.file.replace(/\\/g, '/'));
    return u.origin === new URL(ui.url).origin;
  } catch {
    return false;
  }
}

export function wireBridge(win: BrowserWindow, service: KioskService, ui: { file: string } | { url: string }): () => void {
  const fromUi = (e: IpcMainInvokeEvent) => e.sender === win.webContents && e.senderFrame === win.webContents.mainFrame && isUiUrl(e.senderFrame?.url ?? '', ui);
  for (const m of BRIDGE_METHODS) {
    ipcMain.handle(CHANNELS.invoke(m), (e, ...args: unknown[]) => {
      if (!fromUi(e)) {
        service.note('kiosk.ipc_rejected', { method: m, url: (e.senderFrame?.url ?? '').slice(0, 300) });
        return { ok: false, error: { code: 'FORBIDDEN', message: 'Bridge calls are accepted from the kiosk UI only' } };
      }
      return service.invoke(m, args);
    });
  }
  const onState = (s: unknown) => { if (!win.isDestroyed()) win.webContents.send(CHANNELS.state, s); };
  const onPreview = (f: unknown) => { if (!win.isDestroyed()) win.webContents.send(CHANNELS.preview, f); };
  service.on('state', onState);
  service.on('preview', onPreview);
  return () => {
    for (const m of BRIDGE_METHODS) ipcMain.removeHandler(CHANNELS.invoke(m));
    service.off('state', onState);
    service.off('preview', onPreview);
  };
}
