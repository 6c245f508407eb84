import { buildRenderer } from './harness.js';
import { startUiDisplay } from './xdisplay.js';

/** Builds the renderer once for the UI specs and starts their X display (workers inherit DISPLAY). */
export default async function globalSetup(): Promise<() => Promise<void>> {
  const [, x] = await Promise.all([buildRenderer(), startUiDisplay()]);
  return async () => { await x?.stop(); };
}
