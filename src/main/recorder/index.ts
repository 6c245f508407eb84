/** The recorder's public API (see README.md in this folder). */
export { Recorder, classifyFailure, type RecorderOptions, type RecorderStats, type RecorderEvents, type SourceStats } from './recorder.js';
export { recorderStep } from './step.js';
export { closeDanglingSegments, probeDuration, hashFile, parseListLine, type SegmentClosed } from './segments.js';
export { buildRunArgs, checkSource, demoScreenSource, describeSource, inputArgs, SOURCE_LABEL } from './args.js';
export { TapHub, FrameSplitter, type TapStats } from './tap.js';
