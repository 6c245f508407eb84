import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Detector } from '../../src/main/detect/detector.js';
import { decodeImage } from '../../src/main/detect/image.js';
import { COCO_LABELS } from '../../src/main/detect/objects.js';
import { iou, nms } from '../../src/main/detect/geometry.js';
import { SHARED, makePhoneScenes, tmp } from './helpers.js';

let det: Detector;
let scenes: { phone: string; blank: string };
beforeAll(async () => {
  det = await Detector.create({ load: ['nanodet-416'] });
  scenes = makePhoneScenes(tmp());
});
const only = { faces: false, tiles: 0 } as const;

describe('NanoDet objects', () => {
  it('has the 80 COCO labels in order', () => {
    expect(COCO_LABELS).toHaveLength(80);
    expect(COCO_LABELS[0]).toBe('person');
    expect(COCO_LABELS[67]).toBe('cell phone');
    expect(COCO_LABELS[73]).toBe('book');
  });

  it('finds a phone on a desk (composed with ffmpeg) where the phone is', async () => {
    const a = await det.analyze(await decodeImage(scenes.phone), only);
    const phone = a.objects.find((o) => o.label === 'cell phone');
    expect(phone, JSON.stringify(a.objects)).toBeDefined();
    expect(phone!.score).toBeGreaterThanOrEqual(0.3);
    // the drawn phone spans roughly x 250..370, y 160..320 after rotation
    expect(iou(phone!.box, { x: 250, y: 158, w: 118, h: 160 })).toBeGreaterThan(0.5);
  });

  it('finds no phone in the same desk without it, even at a low threshold', async () => {
    const a = await det.analyze(await decodeImage(scenes.blank), { ...only, objectScore: 0.15, objectLabelThresholds: {} });
    expect(a.objects.filter((o) => o.label === 'cell phone')).toHaveLength(0);
  });

  it('tiling keeps people from the whole frame only and still finds the phone', async () => {
    const img = await decodeImage(scenes.phone);
    const t0 = await det.analyze(img, { ...only, tiles: 0 });
    const t2 = await det.analyze(img, { ...only, tiles: 2 });
    expect(t2.objects.filter((o) => o.label === 'person').length).toBe(t0.objects.filter((o) => o.label === 'person').length);
    expect(t2.objects.some((o) => o.label === 'cell phone')).toBe(true);
  });

  it('nms keeps the best of overlapping boxes', () => {
    const kept = nms([
      { box: { x: 0, y: 0, w: 10, h: 10 }, score: 0.9 },
      { box: { x: 1, y: 1, w: 10, h: 10 }, score: 0.8 },
      { box: { x: 50, y: 50, w: 10, h: 10 }, score: 0.7 },
    ], 0.5);
    expect(kept.map((k) => k.score)).toEqual([0.9, 0.7]);
  });

  it.runIf(existsSync(SHARED))('shared fixtures (skipped when /work/shared is absent): phone in hand and on a desk', async () => {
    for (const f of ['phone_in_hand_head_down_1.jpg', 'empty_desk_phone_book_headphones_1.jpg']) {
      const a = await det.analyze(await decodeImage(join(SHARED, f), { maxSide: 1920 }), { faces: false, tiles: 2 });
      expect(a.objects.some((o) => o.label === 'cell phone'), f).toBe(true);
    }
  });
});

describe('missing models', () => {
  it('a detector without NanoDet reports objects as unavailable instead of failing', async () => {
    const d = await Detector.create({ load: ['blazeface-front-128'] });
    const a = await d.analyze({ data: new Uint8Array(64 * 48 * 3), width: 64, height: 48 }, { faceModel: 'back-256' });
    expect(a.objects).toEqual([]);
    expect(a.unavailable).toEqual(['pose', 'objects']);
    expect(a.faces).toEqual([]);
  });
});
