/**
 * The exam page's print guard. Runs in the page's own world (contextBridge.executeInMainWorld serialises it, so it
 * must stay self-contained: no imports, no outer variables). `window.print()` of the page and of its same-origin
 * frames is replaced by a call to `report`, which the exam preload forwards to the main process for the log.
 * Ctrl+P is blocked separately (shortcut policy); cross-origin frames get their own preload
 * (nodeIntegrationInSubFrames), so their print() is guarded there.
 */
export function printGuard(report: (via: string) => void): void {
  const locked = new WeakSet<object>();
  const lock = (w: Window | null | undefined, via: string): void => {
    if (!w || locked.has(w)) return;
    try {
      Object.defineProperty(w, 'print', { value: function print(): void { report(via); }, writable: false, configurable: false });
      locked.add(w);
    } catch { /* a cross-origin frame: not reachable from here (its own preload guards it) */ }
  };
  lock(window, 'window.print');
  const ctors = [window.HTMLIFrameElement, window.HTMLFrameElement, window.HTMLObjectElement].filter(Boolean);
  for (const C of ctors) {
    const d = Object.getOwnPropertyDescriptor(C.prototype, 'contentWindow');
    const get = d?.get;
    if (!d || !get) continue;
    Object.defineProperty(C.prototype, 'contentWindow', {
      configurable: false, enumerable: d.enumerable,
      get(this: Element) { const w = get.call(this) as Window | null; lock(w, 'frame.print'); return w; },
    });
  }
  // Frames reached without contentWindow (window[0], window.frames[i]) are locked as soon as they are added.
  const lockFrames = () => { for (let i = 0; i < window.length; i++) { try { lock(window[i] as Window, 'frame.print'); } catch { /* cross-origin */ } } };
  new MutationObserver(lockFrames).observe(document, { childList: true, subtree: true });
  window.addEventListener('load', lockFrames, true);
}
