import { describe, expect, it } from 'vitest';
import { EpisodeRules, type EpisodeEvent, type FrameResult } from '../../src/main/episodes/rules.js';

/** Feeds a timeline at `hz` frames per second built from segments [seconds, frame factory]. */
function run(rules: EpisodeRules, hz: number, segments: [number, (t: number) => Omit<FrameResult, 't'>][]): EpisodeEvent[] {
  const out: EpisodeEvent[] = [];
  let t = 0;
  for (const [secs, make] of segments) {
    const end = t + secs;
    for (; t < end - 1e-9; t = Math.round((t + 1 / hz) * 1000) / 1000) out.push(...rules.push({ ...make(t), t }));
  }
  out.push(...rules.flush());
  return out;
}

const frontal = () => ({ camera: 'face' as const, faces: [{ score: 0.9, yaw: 2, pitch: 3 }] });
const turned = (yaw: number) => () => ({ camera: 'face' as const, faces: [{ score: 0.9, yaw, pitch: 0 }] });
const none = () => ({ camera: 'face' as const, faces: [] });

describe('episode rules', () => {
  it('a head turned away for 8 s is one head.away episode with its start, end and direction', () => {
    const ev = run(new EpisodeRules(), 5, [[10, frontal], [8, turned(-50)], [10, frontal]]);
    const ends = ev.filter((e) => e.kind === 'end');
    expect(ends).toHaveLength(1);
    const e = ends[0]!;
    expect(e).toMatchObject({ type: 'head.away', camera: 'face', detail: { direction: 'left' } });
    if (e.kind !== 'end') throw new Error('unreachable');
    expect(e.start).toBeCloseTo(10, 0);
    expect(e.end).toBeCloseTo(17.8, 0);
    expect(e.peakScore).toBeGreaterThan(1.5);
  });

  it('a glance shorter than the threshold is not an episode, and one dropped frame does not split an episode', () => {
    expect(run(new EpisodeRules(), 5, [[5, frontal], [3, turned(45)], [5, frontal]])).toEqual([]);
    const ev = run(new EpisodeRules(), 5, [[2, frontal], [4, turned(45)], [0.2, frontal], [4, turned(45)], [3, frontal]]);
    expect(ev.filter((e) => e.kind === 'start')).toHaveLength(1);
  });

  it('head down counts by pitch, and small yaw is frontal', () => {
    const ev = run(new EpisodeRules(), 5, [[7, () => ({ camera: 'face', faces: [{ score: 0.9, yaw: 10, pitch: 35 }] })]]);
    expect(ev[0]).toMatchObject({ kind: 'start', type: 'head.away', detail: { direction: 'down' } });
    expect(run(new EpisodeRules(), 5, [[20, turned(20)]])).toEqual([]);
  });

  it('judges pitch against the student\'s own baseline: a camera below the screen does not hide looking down', () => {
    // The camera sits low: looking at the screen reads pitch −15°, looking down at notes reads +12° (27° more).
    const atScreen = () => ({ camera: 'face' as const, faces: [{ score: 0.9, yaw: 3, pitch: -15 }] });
    const atNotes = () => ({ camera: 'face' as const, faces: [{ score: 0.9, yaw: 3, pitch: 12 }] });
    const ev = run(new EpisodeRules(), 5, [[10, atScreen], [8, atNotes], [5, atScreen]]);
    expect(ev.filter((e) => e.kind === 'start')).toEqual([expect.objectContaining({ type: 'head.away', detail: expect.objectContaining({ direction: 'down', baseline: { yaw: 3, pitch: -15 } }) })]);
    // Without the baseline the same session shows nothing: +12° is under the 25° threshold.
    expect(run(new EpisodeRules({ baselineFrames: 0 }), 5, [[10, atScreen], [8, atNotes], [5, atScreen]])).toEqual([]);
  });

  it('the baseline is clamped: a student who looks down from the very start is still caught', () => {
    const down = () => ({ camera: 'face' as const, faces: [{ score: 0.9, yaw: 0, pitch: 40 }] });
    const ev = run(new EpisodeRules(), 5, [[12, down]]);
    expect(ev[0]).toMatchObject({ type: 'head.away', detail: { direction: 'down' } });
  });

  it('repeated short glances make a head.away.repeated episode', () => {
    const segs: [number, (t: number) => Omit<FrameResult, 't'>][] = [];
    for (let i = 0; i < 5; i++) segs.push([4, frontal], [2, turned(60)]);
    const ev = run(new EpisodeRules({ repeatedCount: 4 }), 5, segs);
    expect(ev.filter((e) => e.type === 'head.away.repeated' && e.kind === 'start')).toHaveLength(1);
    expect(ev.filter((e) => e.type === 'head.away')).toHaveLength(0);
  });

  it('no face for longer than noFaceSeconds, and several faces', () => {
    const ev = run(new EpisodeRules({ noFaceSeconds: 5 }), 5, [[3, frontal], [9, none], [3, frontal]]);
    expect(ev.map((e) => `${e.kind} ${e.type}`)).toEqual(['start face.absent', 'end face.absent']);
    const two = run(new EpisodeRules(), 5, [[5, () => ({ camera: 'face', faces: [{ score: 0.9 }, { score: 0.8 }] })]]);
    expect(two[0]).toMatchObject({ type: 'face.multiple', detail: { faces: 2 } });
    // low-score faces are not faces
    expect(run(new EpisodeRules(), 5, [[4, () => ({ camera: 'face', faces: [{ score: 0.9 }, { score: 0.2 }] })]])).toEqual([]);
  });

  it('a phone in k of n frames opens object.phone from its first sighting; a lone false positive does not', () => {
    const phoneAt = (from: number, to: number) => (t: number) => ({ camera: 'room' as const, objects: t >= from && t < to ? [{ label: 'cell phone', score: 0.5 }] : [] });
    const ev = run(new EpisodeRules({ phoneVotes: { k: 3, n: 6 } }), 2, [[30, phoneAt(10, 16)]]);
    const start = ev.find((e) => e.kind === 'start')!;
    expect(start).toMatchObject({ type: 'object.phone', camera: 'room', start: 10 });
    const end = ev.find((e) => e.kind === 'end')!;
    if (end.kind !== 'end') throw new Error('unreachable');
    expect(end.end).toBe(15.5);
    expect(run(new EpisodeRules(), 2, [[10, phoneAt(4, 4.5)]])).toEqual([]);
  });

  it('an extra person and a book on the room camera', () => {
    const ev = run(new EpisodeRules(), 2, [[6, () => ({ camera: 'room', objects: [{ label: 'person', score: 0.8 }, { label: 'person', score: 0.7 }, { label: 'book', score: 0.6 }] })]]);
    expect(new Set(ev.map((e) => e.type))).toEqual(new Set(['person.extra', 'object.book']));
  });
});
