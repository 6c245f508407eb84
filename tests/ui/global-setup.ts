import { buildRenderer } from './harness.js';

/** Builds the renderer once for the UI specs. */
export default async function globalSetup(): Promise<void> {
  await buildRenderer();
}
