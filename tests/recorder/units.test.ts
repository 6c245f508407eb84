/** Pure parts: the ffmpeg command line, the segment list parser, tap backpressure, failure classification. */
import { describe, expect, it } from 'vitest';
import { Recorder, buildRunArgs, checkSource, demoScreenSource, inputArgs, parseListLine, TapHub, FrameSplitter, classifyFailure } from '../../src/main/recorder/index.js';
import { reasonOf } from '../../src/main/recorder/recorder.js';
import { parseMachineConfig } from '../../src/main/core/config.js';
import type { Frame } from '../../src/main/core/context.js';
import type { EventLog } from '../../src/main/core/eventlog.js';

const cfg = parseMachineConfig({});

function argAfter(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

describe('ffmpeg command line', () => {
  it('segments crash-safely with aligned keyframes, a CSV list per run, continued numbering and a tap on stdout', () => {
    const p = buildRunArgs({ id: 'face', cfg: cfg.sources.face, config: cfg, dir: '/s/media/face', run: 2, startNumber: 17 });
    const a = p.args;
    expect(argAfter(a, '-f')).toBe('lavfi');
    expect(argAfter(a, '-i')).toBe('testsrc2=size=640x480:rate=15');
    expect(argAfter(a, '-segment_format_options')).toBe('flush_packets=1');
    expect(argAfter(a, '-force_key_frames')).toBe('expr:gte(t,n_forced*6)');
    expect(argAfter(a, '-g')).toBe('90');
    expect(argAfter(a, '-segment_time')).toBe('6');
    expect(argAfter(a, '-segment_list')).toBe(p.listPath);
    expect(p.listPath.replace(/\\/g, '/')).toBe('/s/media/face/segments-002.csv');
    expect(argAfter(a, '-segment_list_type')).toBe('csv');
    expect(argAfter(a, '-segment_start_number')).toBe('17');
    expect(a).toContain(p.pattern);
    expect(p.pattern.replace(/\\/g, '/')).toBe('/s/media/face/seg-%05d.ts');
    expect(argAfter(a, '-filter_complex')).toBe('[0:v]format=yuv420p,split=2[rec][tap];[tap]fps=2,scale=320:240,format=rgb24[tapout]');
    expect(a.slice(-7)).toEqual(['-map', '[tapout]', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1']);
    expect(p.tap).toEqual({ width: 320, height: 240, fps: 2 });
    expect(a).not.toContain('-nostdin'); // "q" on stdin is the graceful stop
  });

  it('fMP4 segments carry fragment flags; the screen has no tap by default; the mic records AAC', () => {
    const mp4 = parseMachineConfig({ recording: { container: 'mp4' } });
    const p = buildRunArgs({ id: 'screen', cfg: mp4.sources.screen, config: mp4, dir: '/d', run: 0, startNumber: 0 });
    expect(argAfter(p.args, '-segment_format')).toBe('mp4');
    expect(argAfter(p.args, '-segment_format_options')).toMatch(/^flush_packets=1:movflags=\+frag_keyframe\+empty_moov\+default_base_moof:frag_duration=\d+$/);
    expect(p.pattern.endsWith('seg-%05d.mp4')).toBe(true);
    expect(p.tap).toBeNull();
    expect(p.args).not.toContain('pipe:1');
    const x11 = buildRunArgs({ id: 'screen', cfg: { kind: 'x11grab', device: ':3', width: 1280, height: 720, fps: 5 }, config: cfg, dir: '/d', run: 0, startNumber: 0 });
    expect(argAfter(x11.args, '-filter_complex')).toBe('[0:v]scale=1280:720:force_original_aspect_ratio=decrease:force_divisible_by=2,pad=1280:720:-1:-1,setsar=1,fps=5,format=yuv420p[rec]');
    const mic = parseMachineConfig({ sources: { mic: { kind: 'pulse', device: 'default' } } });
    const m = buildRunArgs({ id: 'mic', cfg: mic.sources.mic, config: mic, dir: '/d', run: 0, startNumber: 0 });
    expect(m.audio).toBe(true);
    expect(argAfter(m.args, '-c:a')).toBe('aac');
    expect(argAfter(m.args, '-f')).toBe('pulse');
    expect(m.args).not.toContain('-filter_complex');
  });

  it('builds inputs for every OS capture kind and synthetic sources', () => {
    const base = { width: 640, height: 480, fps: 15 };
    expect(inputArgs('face', { kind: 'v4l2', device: '/dev/video0', ...base })).toEqual(['-thread_queue_size', '64', '-f', 'v4l2', '-framerate', '15', '-video_size', '640x480', '-i', '/dev/video0']);
    expect(inputArgs('screen', { kind: 'x11grab', ...base }, { DISPLAY: ':5' })).toContain(':5');
    expect(inputArgs('face', { kind: 'dshow', device: 'Integrated Camera', ...base })).toContain('video=Integrated Camera');
    expect(inputArgs('mic', { kind: 'dshow', device: 'Microphone (Realtek)', ...base })).toContain('audio=Microphone (Realtek)');
    expect(inputArgs('screen', { kind: 'gdigrab', ...base })).toContain('desktop');
    expect(inputArgs('screen', { kind: 'x11grab', ...base }, { DISPLAY: ':5' }).slice(0, 4)).toEqual(['-probesize', '32', '-analyzeduration', '0']);
    expect(inputArgs('screen', { kind: 'ddagrab', device: '1', ...base }).at(-1)).toBe('ddagrab=output_idx=1:framerate=15,hwdownload,format=bgra');
    expect(inputArgs('face', { kind: 'avfoundation', device: '0', ...base }).at(-1)).toBe('0');
    expect(inputArgs('mic', { kind: 'avfoundation', device: '0', ...base }).at(-1)).toBe(':0');
    expect(inputArgs('mic', { kind: 'alsa', device: 'hw:0', ...base })).toEqual(['-f', 'alsa', '-i', 'hw:0']);
    expect(inputArgs('room', { kind: 'file', file: '/x/desk.jpg', ...base })).toEqual(['-loop', '1', '-framerate', '15', '-re', '-i', '/x/desk.jpg']);
    expect(inputArgs('room', { kind: 'file', file: '/x/desk.mp4', ...base })).toEqual(['-stream_loop', '-1', '-re', '-i', '/x/desk.mp4']);
    expect(inputArgs('face', { kind: 'lavfi', pattern: 'testsrc2=alpha=0,hue=s=0', ...base }).at(-1)).toBe('testsrc2=alpha=0:size=640x480:rate=15,hue=s=0');
    expect(inputArgs('mic', { kind: 'lavfi', ...base }).at(-1)).toMatch(/^sine=/);
  });

  it('checks sources before spawning: wrong OS, missing file, missing device node', () => {
    const base = { width: 640, height: 480, fps: 15 };
    expect(() => checkSource('face', { kind: 'avfoundation', device: '0', ...base }, 'linux')).toThrow(/only on darwin/);
    expect(() => checkSource('room', { kind: 'file', file: '/no/such.mp4', ...base })).toThrow(/does not exist/);
    expect(() => checkSource('face', { kind: 'v4l2', device: '/dev/video99', ...base }, 'linux')).toThrow(/\/dev\/video99 does not exist/);
    expect(() => checkSource('face', { kind: 'lavfi', ...base }, 'win32')).not.toThrow();
  });

  it('demo screen: x11grab of $DISPLAY when there is one, else a pattern', () => {
    expect(demoScreenSource({ DISPLAY: ':99' }).kind).toBe(process.platform === 'linux' ? 'x11grab' : 'lavfi');
    expect(demoScreenSource({})).toMatchObject({ kind: 'lavfi', width: 1280, height: 720 });
  });
});

describe('ffmpeg resolution', () => {
  it('a Recorder without a usable ffmpeg is a clear NO_FFMPEG error', () => {
    expect(() => new Recorder({ dir: '/tmp', log: { path: '/nonexistent' } as EventLog, config: cfg, env: { KUZET_FFMPEG: '/nonexistent/ffmpeg' } }))
      .toThrow(expect.objectContaining({ code: 'NO_FFMPEG', message: expect.stringContaining('/nonexistent/ffmpeg') }));
  });
});

describe('segment list and failures', () => {
  it('parses CSV list lines, rejecting junk', () => {
    expect(parseListLine('seg-00003.ts,18.000000,24.000000')).toEqual({ name: 'seg-00003.ts', index: 3, start: 18, end: 24 });
    expect(parseListLine('/abs/dir/seg-00004.mp4,1.5,3')).toMatchObject({ name: 'seg-00004.mp4', index: 4 });
    expect(parseListLine('')).toBeNull();
    expect(parseListLine('seg-00003.ts,18.0')).toBeNull();
    expect(parseListLine('other.ts,1,2')).toBeNull();
    expect(parseListLine('seg-00001.ts,x,2')).toBeNull();
  });

  it('classifies ffmpeg failures and picks the telling stderr lines', () => {
    expect(classifyFailure('av_interleaved_write_frame(): No space left on device').code).toBe('DISK_FULL');
    expect(classifyFailure('/dev/video0: Device or resource busy').code).toBe('SOURCE_BUSY');
    expect(classifyFailure('/dev/video3: No such file or directory').code).toBe('SOURCE_NOT_FOUND');
    expect(classifyFailure('/dev/video0: Permission denied').code).toBe('NO_PERMISSION');
    expect(classifyFailure('something odd').code).toBe('SOURCE_FAILED');
    expect(reasonOf(['Input #0, lavfi, from x:', '  Stream #0:0: Video', '[x11grab @ 0x1] Cannot open display :9, error 1.', ':9: Input/output error', '[libx264 @ 0x2] frame I:1'])).toBe('[x11grab @ 0x1] Cannot open display :9, error 1. | :9: Input/output error');
    expect(reasonOf([])).toBe('(ffmpeg printed nothing)');
  });
});

describe('frame tap', () => {
  const frame = (i: number): Frame => ({ source: 'face', width: 2, height: 1, data: Buffer.from([i, i, i, i, i, i]), pts: i, wall: i });

  it('cuts a byte stream into frames whatever the chunking, with pts from the rate and offset', () => {
    const got: Frame[] = [];
    const s = new FrameSplitter('room', 2, 2, 4, () => 10, (f) => got.push(f));
    const bytes = Buffer.from(Array.from({ length: 12 * 3 + 5 }, (_, i) => i % 251));
    let off = 0;
    for (const n of [1, 0, 7, 13, 2, 18]) { s.push(bytes.subarray(off, off + n)); off += n; }
    expect(got.map((f) => f.pts)).toEqual([10, 10.25, 10.5]);
    expect(got.every((f) => f.data.length === 12 && f.source === 'room')).toBe(true);
    expect([...got[1]!.data]).toEqual(Array.from({ length: 12 }, (_, i) => (i + 12) % 251));
  });

  it('keeps only the newest frames for a slow subscriber and counts drops; others are unaffected; end() finishes', async () => {
    const hub = new TapHub(3);
    const slow = hub.iterable()[Symbol.asyncIterator]();
    const fastGot: number[] = [];
    const fast = (async () => { for await (const f of hub.iterable()) fastGot.push(f.pts); })();
    await Promise.resolve();
    for (let i = 0; i < 10; i++) { hub.push(frame(i)); await Promise.resolve(); }
    expect(hub.stats()).toMatchObject({ produced: 10, dropped: 7, subscribers: 2 });
    expect(((await slow.next()).value as Frame).pts).toBe(7);
    expect(((await slow.next()).value as Frame).pts).toBe(8);
    hub.end();
    expect(((await slow.next()).value as Frame).pts).toBe(9); // queued frames are still handed out
    expect((await slow.next()).done).toBe(true);
    await fast;
    expect(fastGot).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('an iterator that breaks out unsubscribes', async () => {
    const hub = new TapHub(2);
    const p = (async () => { for await (const f of hub.iterable()) { if (f.pts >= 1) break; } })();
    await Promise.resolve();
    hub.push(frame(0)); hub.push(frame(1));
    await p;
    expect(hub.stats().subscribers).toBe(0);
  });
});
