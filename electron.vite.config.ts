import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import react from '@vitejs/plugin-react';

/**
 * Main: ESM, one output file per source module under out/main (same depth as src/main), so the services'
 * `import.meta.url`-relative paths (package.json, models/) resolve in the build as they do from source.
 * The detector's worker gets a compiled entry next to it. Preload: CommonJS (sandboxed preloads cannot be ESM), each preload a
 * standalone file (isolatedEntries): the kiosk UI's bridge and the exam view's print guard.
 */
export default defineConfig({
  main: {
    build: {
      outDir: 'out',
      emptyOutDir: false,
      rolldownOptions: {
        input: { 'main/index': resolve('src/main/index.ts'), 'main/detect/worker': resolve('src/main/detect/worker.ts') },
        output: { format: 'es', preserveModules: true, preserveModulesRoot: 'src', entryFileNames: '[name].js' },
      },
    },
    plugins: [{
      name: 'kuzet-detect-worker-entry',
      generateBundle() {
        this.emitFile({ type: 'asset', fileName: 'main/detect/worker-entry.mjs', source: "await import('./worker.js');\n" });
      },
    }],
  },
  preload: {
    build: {
      // Sandboxed preloads can require nothing but electron: each entry is one standalone file (no shared chunk).
      isolatedEntries: true,
      rolldownOptions: {
        input: { index: resolve('src/preload/index.ts'), exam: resolve('src/preload/exam.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: 'src/renderer',
    build: { rolldownOptions: { input: { index: resolve('src/renderer/index.html') } } },
    plugins: [react()],
  },
});
