/** The system Chromium for the UI specs (never `npx playwright install`). */
export const CHROMIUM = process.env.KUZET_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-gpu'];
