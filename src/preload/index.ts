/**
 * The one typed bridge: exposes `window.kuzet` (KuzetApi from src/shared/bridge.ts) to the sandboxed,
 * context-isolated kiosk UI. Only the contract's methods and two event subscriptions cross; the IPC event object
 * never reaches the page.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { BRIDGE_METHODS, BRIDGE_VERSION, CHANNELS, type KioskState, type KuzetApi, type PreviewFrame } from '../shared/bridge.js';

function subscribe<T>(channel: string, cb: (v: T) => void): () => void {
  const listener = (_e: IpcRendererEvent, v: T) => cb(v);
  ipcRenderer.on(channel, listener);
  return () => { ipcRenderer.removeListener(channel, listener); };
}

const api: Record<string, unknown> = {
  bridgeVersion: BRIDGE_VERSION,
  onState: (cb: (s: KioskState) => void) => subscribe(CHANNELS.state, cb),
  onPreview: (cb: (f: PreviewFrame) => void) => subscribe(CHANNELS.preview, cb),
};
for (const m of BRIDGE_METHODS) api[m] = (...args: unknown[]) => ipcRenderer.invoke(CHANNELS.invoke(m), ...args);

contextBridge.exposeInMainWorld('kuzet', api as KuzetApi);
