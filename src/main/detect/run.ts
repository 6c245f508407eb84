/**
 * Entry for the package scripts (`npm run detect|eval|bench:detect`) until the kuzet CLI dispatcher registers
 * `kuzet detect`: `tsx src/main/detect/run.ts <detect|eval|bench> [args]`.
 */
const [cmd, ...rest] = process.argv.slice(2);
const table: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  detect: async () => (await import('./cli.js')).detectCommand,
  eval: async () => (await import('./eval.js')).evalCommand,
  bench: async () => (await import('./bench.js')).benchCommand,
};
const load = cmd ? table[cmd] : undefined;
if (!load) {
  console.error('usage: tsx src/main/detect/run.ts <detect|eval|bench> [args]');
  process.exitCode = 2;
} else {
  process.exitCode = await (await load())(rest);
}
