import { describe, it, expect, beforeAll } from 'vitest';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { Detector } from '../../src/main/detect/detector.js';
import { decodeImage, mirrorImage } from '../../src/main/detect/image.js';
import { poseFromMesh } from '../../src/main/detect/faces.js';
import { FIXTURES, SHARED, ffmpeg, tmp } from './helpers.js';

let det: Detector;
beforeAll(async () => { det = await Detector.create({ load: ['blazeface-front-128', 'blazeface-back-256', 'facemesh', 'iris'] }); });

const only = { objects: false } as const;

describe('head pose from 3-D points (sign conventions)', () => {
  // a crude face: eyes, forehead, chin, nose tip in face coordinates (x to the subject's left = image right when
  // frontal, y down, z toward the back of the head), rotated by a known yaw/pitch
  const face: Record<number, [number, number, number]> = { 33: [-30, 0, 0], 263: [30, 0, 0], 10: [0, -50, 5], 152: [0, 50, 5], 1: [0, 10, -30] };
  const rotate = (p: [number, number, number], yawDeg: number, pitchDeg: number): [number, number, number] => {
    const y = (yawDeg * Math.PI) / 180; const t = (pitchDeg * Math.PI) / 180;
    // yaw about the image's vertical axis: positive turns the nose (-z) toward +x
    let [x, yy, z] = p;
    [x, z] = [x * Math.cos(y) - z * Math.sin(y), x * Math.sin(y) + z * Math.cos(y)];
    // pitch about the horizontal axis: positive turns the nose (-z) toward +y (down)
    [yy, z] = [yy * Math.cos(t) - z * Math.sin(t), yy * Math.sin(t) + z * Math.cos(t)];
    return [x, yy, z];
  };
  for (const [yaw, pitch] of [[0, 0], [30, 0], [-40, 0], [0, 25], [20, -15]] as [number, number][]) {
    it(`recovers yaw ${yaw}°, pitch ${pitch}°`, () => {
      const p = poseFromMesh((i) => rotate(face[i]!, yaw, pitch));
      // single-axis turns are exact; combined ones differ slightly by Euler order
      const tol = yaw && pitch ? 1.5 : 0.01;
      expect(Math.abs(p.yaw - yaw)).toBeLessThan(tol);
      expect(Math.abs(p.pitch - pitch)).toBeLessThan(tol);
      expect(Math.abs(p.roll)).toBeLessThan(1e-6 + (yaw && pitch ? 10 : 0));
    });
  }
  it('nose to the image right is positive yaw (nose tip x moves right)', () => {
    const turned = (i: number) => rotate(face[i]!, 30, 0);
    expect(turned(1)[0]).toBeGreaterThan(0);
    expect(poseFromMesh(turned).yaw).toBeGreaterThan(0);
  });
});

describe('faces on photos from @vladmandic/human assets', () => {
  it('finds one frontal face in a webcam portrait', async () => {
    const a = await det.analyze(await decodeImage(join(FIXTURES, 'face_frontal.jpg')), only);
    expect(a.faces).toHaveLength(1);
    const f = a.faces[0]!;
    expect(f.score).toBeGreaterThan(0.5);
    expect(Math.abs(f.yaw)).toBeLessThan(12);
    expect(Math.abs(f.pitch)).toBeLessThan(15);
    expect(f.meshScore).toBeGreaterThan(0.9);
    // the face sits in the left-middle of the crop
    expect(f.box.x).toBeGreaterThan(20); expect(f.box.x + f.box.w).toBeLessThan(160);
  });

  it('counts five faces in a row of portraits; back-256 finds at least as many as front-128', async () => {
    const img = await decodeImage(join(FIXTURES, 'faces_row.jpg'));
    const back = await det.analyze(img, { ...only, faceModel: 'back-256' });
    const front = await det.analyze(img, { ...only, faceModel: 'front-128' });
    expect(back.faces).toHaveLength(5);
    expect(front.faces.length).toBeLessThanOrEqual(back.faces.length);
    const xs = back.faces.map((f) => f.box.x).sort((a, b) => a - b);
    for (let i = 1; i < xs.length; i++) expect(xs[i]! - xs[i - 1]!).toBeGreaterThan(60);
  });

  it('a turned head has |yaw| > 17° and mirroring the image with ffmpeg flips the sign', async () => {
    const src = join(FIXTURES, 'face_turned.jpg');
    const mirrored = join(tmp(), 'mirrored.png');
    ffmpeg(['-i', src, '-vf', 'hflip', mirrored]);
    const a = (await det.analyze(await decodeImage(src), only)).faces;
    const b = (await det.analyze(await decodeImage(mirrored), only)).faces;
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(1);
    expect(a[0]!.yaw).toBeGreaterThan(17);
    expect(b[0]!.yaw).toBeLessThan(-17);
    expect(Math.abs(a[0]!.yaw + b[0]!.yaw)).toBeLessThan(8);
    expect(Math.sign(a[0]!.roll)).toBe(-Math.sign(b[0]!.roll) || Math.sign(a[0]!.roll));
  });

  it('mirroring in memory (mirrorImage) flips the frontal face yaw only slightly', async () => {
    const img = await decodeImage(join(FIXTURES, 'face_frontal.jpg'));
    const a = (await det.analyze(img, only)).faces[0]!;
    const b = (await det.analyze(mirrorImage(img), only)).faces[0]!;
    expect(Math.abs(a.yaw + b.yaw)).toBeLessThan(5);
  });

  it('gaze is reported for a large face and not for a small one', async () => {
    const img = await decodeImage(join(FIXTURES, 'face_frontal.jpg'));
    const big = (await det.analyze(img, { ...only, irisMinFacePx: 50 })).faces[0]!;
    expect(big.gaze).toBeDefined();
    expect(Math.abs(big.gaze!.x)).toBeLessThan(0.3);
    const small = (await det.analyze(img, { ...only, irisMinFacePx: 500 })).faces[0]!;
    expect(small.gaze).toBeUndefined();
  });

  it('finds no face in a blank scene', async () => {
    const blank = { data: new Uint8Array(320 * 240 * 3).fill(128), width: 320, height: 240 };
    expect((await det.analyze(blank, only)).faces).toHaveLength(0);
  });

  it.runIf(existsSync(SHARED))('shared fixtures (skipped when /work/shared is absent): turned-left photo reads negative yaw', async () => {
    const a = (await det.analyze(await decodeImage(join(SHARED, 'face_turned_left_1.jpg'), { maxSide: 1920 }), only)).faces;
    expect(a).toHaveLength(1);
    expect(a[0]!.yaw).toBeLessThan(-17);
  });
});
