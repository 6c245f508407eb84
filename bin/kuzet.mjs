#!/usr/bin/env node
// The `kuzet` CLI: runs the TypeScript sources through tsx so a fresh clone needs no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main/cli/index.ts');
process.exitCode = await main(process.argv.slice(2));
// The command is done: a stray handle (a child that ignores its pipe, a timer) must not keep the CLI alive.
setTimeout(() => process.exit(), 3000).unref();
