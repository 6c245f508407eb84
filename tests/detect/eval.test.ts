import { describe, it, expect } from 'vitest';
import { headClass, predictLabels, score, formatTable, type LabelEntry } from '../../src/main/detect/eval.js';
import type { FrameAnalysis } from '../../src/main/detect/detector.js';

const analysis = (faces: { yaw: number; pitch: number }[], labels: string[]): FrameAnalysis => ({
  width: 100, height: 100, timings: { face: 0, mesh: 0, iris: 0, objects: 0, total: 0 },
  faces: faces.map((f) => ({ ...f, roll: 0, box: { x: 0, y: 0, w: 10, h: 10 }, score: 0.9, meshScore: 1 })),
  objects: labels.map((label) => ({ label: label as never, score: 0.5, box: { x: 0, y: 0, w: 5, h: 5 } })),
});
const truth = (o: Partial<LabelEntry>): LabelEntry => ({ faces: 1, head: 'frontal', phone: false, book: false, headphones: false, persons: 1, ...o });

describe('eval scoring', () => {
  it('classifies head direction with yaw first, then pitch', () => {
    expect(headClass({ yaw: 25, pitch: 40 })).toBe('right');
    expect(headClass({ yaw: -25, pitch: 0 })).toBe('left');
    expect(headClass({ yaw: 5, pitch: 30 })).toBe('down');
    expect(headClass({ yaw: 5, pitch: 5 })).toBe('frontal');
  });

  it('counts TP/FP/FN for counts, presence and head labels', () => {
    const rows = [
      { truth: truth({ faces: 2, persons: 2, phone: true }), pred: predictLabels(analysis([{ yaw: 0, pitch: 0 }], ['person', 'person', 'person', 'cell phone'])) },
      { truth: truth({ head: 'left' }), pred: predictLabels(analysis([{ yaw: -30, pitch: 0 }, { yaw: -20, pitch: 0 }], ['book'])) },
    ];
    const s = score(rows);
    expect(s.faces).toMatchObject({ tp: 2, fp: 1, fn: 1 });
    expect(s.persons).toMatchObject({ tp: 2, fp: 1, fn: 1 });
    expect(s.phone).toMatchObject({ tp: 1, fp: 0, fn: 0, precision: 1, recall: 1 });
    expect(s.book).toMatchObject({ tp: 0, fp: 1, fn: 0, precision: 0 });
    expect(s['head:left']).toMatchObject({ tp: 1, fp: 0, fn: 0 });
    expect(s['head:frontal']).toMatchObject({ tp: 1, fp: 0, fn: 0 });
    expect(formatTable(s)).toMatch(/phone\s+1\s+0\s+0\s+1\.00\s+1\.00/);
  });
});
