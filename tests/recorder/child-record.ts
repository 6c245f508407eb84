/**
 * Child process for crash.test.ts: records the face source into argv[2] until it is killed. Prints one JSON line
 * `{"ready":true,...}` once recording runs.
 */
import { join } from 'node:path';
import { EventLog } from '../../src/main/core/eventlog.js';
import { parseMachineConfig } from '../../src/main/core/config.js';
import { Recorder } from '../../src/main/recorder/index.js';

const dir = process.argv[2]!;
const log = EventLog.open(join(dir, 'events.ndjson'));
const config = parseMachineConfig({
  sources: { face: { kind: 'lavfi', pattern: 'testsrc2', width: 320, height: 240, fps: 15 }, room: { kind: 'none' }, screen: { kind: 'none' }, mic: { kind: 'none' } },
  recording: { segmentSeconds: 3 },
});
const rec = new Recorder({ dir, log, config });
rec.on('segment', (s) => process.stdout.write(JSON.stringify({ segment: s }) + '\n'));
await rec.start();
process.stdout.write(JSON.stringify({ ready: true, pid: rec.stats().face!.pid, t0: rec.t0 }) + '\n');
setInterval(() => {}, 1000);
