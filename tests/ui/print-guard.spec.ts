/**
 * The exam view's print guard (src/preload/print-guard.ts) in real Chromium, on the demo exam page: window.print()
 * of the page and of same-origin frames (however they are reached) is reported instead of printing, and cannot
 * be put back by the page. In Electron the exam preload installs the same function with executeInMainWorld.
 */
import { expect, test } from '@playwright/test';
import { startDemoExamSite } from '../../src/main/kiosk/demo.js';
import { printGuard } from '../../src/preload/print-guard.js';

test('window.print() is reported, not run — in the page and in its frames', async ({ page }) => {
  const site = await startDemoExamSite();
  try {
    // The reporter stands in for the preload's IPC call. Installed in the top frame only: same-origin about:blank
    // and srcdoc frames get no preload in Electron, so the parent's guard must reach them.
    await page.addInitScript({ content: `if (window === window.top) (${printGuard.toString()})((via) => { (window.__printed ||= []).push(via); });` });
    await page.goto(site.url);
    const printed = await page.evaluate(async () => {
      const w = window as unknown as { __printed?: string[] };
      window.print();
      const f = document.createElement('iframe');
      document.body.appendChild(f);
      f.contentWindow!.print();
      (window[0] as Window).print();
      const g = document.createElement('iframe');
      g.srcdoc = '<p>frame</p>';
      document.body.appendChild(g);
      await new Promise((r) => g.addEventListener('load', r, { once: true }));
      (window[1] as Window).print();
      let restored = true;
      try { (window as { print: unknown }).print = () => 'original'; } catch { restored = false; }
      window.print();
      return { list: w.__printed ?? [], restored: restored && window.print.toString().includes('original') };
    });
    expect(printed.restored).toBe(false);
    expect(printed.list).toHaveLength(5);
    expect(printed.list[0]).toBe('window.print');
    expect(printed.list).toEqual(['window.print', 'frame.print', 'frame.print', 'frame.print', 'window.print']);
  } finally {
    await site.close();
  }
});
