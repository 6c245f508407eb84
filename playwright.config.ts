import { defineConfig } from '@playwright/test';
import { CHROMIUM, CHROMIUM_ARGS } from './tests/ui/chromium.js';

/**
 * Browser suites: tests/ui (the React kiosk UI in the system Chromium, driving the real services headless) and
 * tests/e2e (the Electron shell, skipped with its reason where no Electron binary is installed).
 * Never `npx playwright install`: /usr/bin/chromium (Debian) is the browser; KUZET_CHROMIUM overrides it.
 */
export default defineConfig({
  testDir: 'tests',
  testMatch: ['ui/**/*.spec.ts', 'e2e/**/*.spec.ts'],
  globalSetup: './tests/ui/global-setup.ts',
  outputDir: 'test-results/playwright',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 20_000 },
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    viewport: { width: 1280, height: 800 },
    // Headless by default; the UI flow specs switch to a real window on their private Xvfb when global-setup
    // started one (tests/ui/xdisplay.ts), so the kiosk UI is the focused window the foreground monitor watches.
    launchOptions: { executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, '--headless'] },
  },
});
