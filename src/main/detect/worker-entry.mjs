// Worker bootstrap: a worker_threads worker cannot load .ts by itself, so register tsx first, then load the
// TypeScript worker. A bundled build points DetectorPool at its compiled worker instead (option workerUrl).
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
