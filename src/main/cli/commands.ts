/**
 * Commands contributed by the other service modules. One line each; keep it sorted.
 * (Lives apart from index.ts so adding a command does not touch the dispatcher.)
 */
import { registerCommand } from './index.js';
registerCommand('admin', 'evidence server administration: enrolment tokens, accounts, devices, revocation', async () => (await import('../server/cli.js')).adminCommand);
registerCommand('detect', 'run the detectors on image or video files (--json for machine-readable results)', async () => (await import('../detect/cli.js')).detectCommand);
registerCommand('enroll', 'enrol this machine with an evidence server (one-time token)', async () => (await import('../upload/cli.js')).enrollCommand);
registerCommand('eval', 'precision/recall of the detectors on a labelled folder (labels.json)', async () => (await import('../detect/eval.js')).evalCommand);
registerCommand('monitor', 'run the system monitors alone and print their events (--preflight: the pre-exam checklist)', async () => (await import('../monitors/cli.js')).monitorCommand);
registerCommand('record', 'record the cameras and screen alone into segments (camera check, demo)', async () => (await import('../recorder/cli.js')).recordCommand);
registerCommand('serve', 'run the evidence server (tus uploads, verification, receipts, review API)', async () => (await import('../server/cli.js')).serveCommand);
registerCommand('upload', 'upload a sealed bundle and wait for the server\'s signed receipt', async () => (await import('../upload/cli.js')).uploadCommand);
