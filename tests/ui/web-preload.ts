/**
 * TEST-ONLY preload for the Chromium UI tests: implements `window.kuzet` (the same KuzetApi contract the Electron
 * preload implements over IPC) by calling the real KioskService through the loopback adapter in harness.ts.
 * Transpiled on the fly and injected with page.addInitScript, so it runs before the UI like a real preload.
 * Self-contained on purpose: only type imports.
 */
import type { BridgeMethod, KioskState, KuzetApi, PreviewFrame } from '../../src/shared/bridge.js';

/** Replaced with BRIDGE_VERSION and BRIDGE_METHODS from the contract when the harness injects this script. */
declare const __BRIDGE_VERSION__: number;
declare const __BRIDGE_METHODS__: BridgeMethod[];

(() => {
  const methods = __BRIDGE_METHODS__;
  const stateSubs = new Set<(s: KioskState) => void>();
  const previewSubs = new Set<(f: PreviewFrame) => void>();
  const es = new EventSource('/bridge/events');
  es.addEventListener('state', (e) => { const s = JSON.parse((e as MessageEvent).data) as KioskState; stateSubs.forEach((cb) => cb(s)); });
  es.addEventListener('preview', (e) => { const f = JSON.parse((e as MessageEvent).data) as PreviewFrame; previewSubs.forEach((cb) => cb(f)); });
  const api: Record<string, unknown> = {
    bridgeVersion: __BRIDGE_VERSION__,
    onState: (cb: (s: KioskState) => void) => { stateSubs.add(cb); return () => stateSubs.delete(cb); },
    onPreview: (cb: (f: PreviewFrame) => void) => { previewSubs.add(cb); return () => previewSubs.delete(cb); },
  };
  for (const m of methods) {
    api[m] = async (...args: unknown[]) => {
      const res = await fetch(`/bridge/invoke/${m}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(args) });
      return res.json();
    };
  }
  Object.defineProperty(window, 'kuzet', { value: Object.freeze(api as unknown as KuzetApi), writable: false, configurable: false });
})();
