// ESLint flat config. The layering rules are the point: only the Electron shell (src/main/shell, src/main/index.ts)
// and the preload import `electron`; the renderer imports no Node module, no electron and no main-process code —
// only src/shared and browser packages. A slip fails `npm run lint`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const NODE_BUILTINS = [
  'assert', 'buffer', 'child_process', 'cluster', 'crypto', 'dgram', 'dns', 'events', 'fs', 'fs/promises', 'http', 'http2', 'https',
  'module', 'net', 'os', 'path', 'perf_hooks', 'process', 'readline', 'stream', 'timers', 'tls', 'url', 'util', 'v8', 'vm',
  'worker_threads', 'zlib',
];

const electronOnlyInShell = {
  paths: [{ name: 'electron', message: 'Only the Electron shell (src/main/shell, src/main/index.ts) and src/preload import electron.' }],
  patterns: [{ group: ['electron/*'], message: 'Only the Electron shell and the preload import electron.' }],
};

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', 'artifacts/**', 'test-results/**', 'playwright-report/**', 'models/**', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  // Everything outside the shell and preload: no electron.
  {
    files: ['src/**/*.ts', 'src/**/*.tsx'],
    ignores: ['src/main/shell/**', 'src/main/index.ts', 'src/preload/**'],
    rules: { 'no-restricted-imports': ['error', electronOnlyInShell] },
  },
  // The renderer: src/shared and browser packages only.
  {
    files: ['src/renderer/**/*.ts', 'src/renderer/**/*.tsx'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'The renderer talks to main only through window.kuzet (src/shared/bridge.ts).' }, ...NODE_BUILTINS.map((name) => ({ name, message: 'The renderer imports no Node module.' }))],
        patterns: [
          { group: ['node:*'], message: 'The renderer imports no Node module.' },
          { group: ['**/main/**', '**/preload/**'], message: 'The renderer imports only src/shared, never main-process or preload code.' },
        ],
      }],
    },
  },
  // The preload: electron and src/shared only.
  {
    files: ['src/preload/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['node:*', '**/main/**', '**/renderer/**'], message: 'The preload imports only electron and src/shared.' }],
      }],
    },
  },
  // src/shared crosses the bridge: nothing but other src/shared files.
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'src/shared is imported by the renderer: no electron.' }],
        patterns: [{ group: ['node:*', '**/main/**', '**/renderer/**', '**/preload/**'], message: 'src/shared imports only other src/shared files.' }],
      }],
    },
  },
);
