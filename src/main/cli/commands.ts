/**
 * Commands contributed by the other service modules. One line each; keep it sorted.
 * (Lives apart from index.ts so adding a command does not touch the dispatcher.)
 */
export {};
