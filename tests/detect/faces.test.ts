import { describe, it, expect, beforeAll } from 'vitest';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { Detector } from '../../src/main/detect/detector.js';
import { decodeImage, mirrorImage } from '../../src/main/detect/image.js';
import { poseFromMesh } from '../../src/main/detect/faces.js';
import { headClass } from '../../src/main/detect/eval.js';
import { FIXTURES, SHARED, ffmpeg, tmp } from './helpers.js';

let det: Detector;
beforeAll(async () => { det = await Detector.create({ load: ['blazeface-front-128', 'blazeface-back-256', 'facemesh', 'iris'] }); });

const only = { objects: false } as const;

describe('head pose from 3-D points (sign conventions)', () => {
  // a crude face: eyes, forehead, chin, nose tip in face coordinates (x to the subject's left = image right when
  // frontal, y down, z toward the back of the head), turned by R = Rz(roll) · Ry(yaw) · Rx(pitch)
  const face: Record<number, [number, number, number]> = { 33: [-30, 0, 0], 263: [30, 0, 0], 10: [0, -50, 5], 152: [0, 50, 5], 1: [0, 10, -30] };
  const rad = Math.PI / 180;
  const rotate = (p: [number, number, number], yawDeg: number, pitchDeg: number, rollDeg = 0): [number, number, number] => {
    let [x, y, z] = p;
    // pitch about the horizontal axis: positive turns the nose (-z) toward +y (down)
    const t = pitchDeg * rad;
    [y, z] = [y * Math.cos(t) - z * Math.sin(t), y * Math.sin(t) + z * Math.cos(t)];
    // yaw about the vertical axis: positive turns the nose (-z) toward +x (image right)
    const w = yawDeg * rad;
    [x, z] = [x * Math.cos(w) - z * Math.sin(w), x * Math.sin(w) + z * Math.cos(w)];
    // roll in the image plane: positive turns the eye line clockwise (image-right eye lower)
    const r = rollDeg * rad;
    [x, y] = [x * Math.cos(r) - y * Math.sin(r), x * Math.sin(r) + y * Math.cos(r)];
    return [x, y, z];
  };
  for (const [yaw, pitch, roll] of [[0, 0, 0], [30, 0, 0], [-40, 0, 0], [0, 25, 0], [20, -15, 0], [0, 25, 30], [35, 0, -25], [-20, 20, 40]] as [number, number, number][]) {
    it(`recovers yaw ${yaw}°, pitch ${pitch}°, roll ${roll}°`, () => {
      const p = poseFromMesh((i) => rotate(face[i]!, yaw, pitch, roll));
      expect(p.yaw).toBeCloseTo(yaw, 6);
      expect(p.pitch).toBeCloseTo(pitch, 6);
      expect(p.roll).toBeCloseTo(roll, 6);
    });
  }
  it('a head tilted in the image plane keeps its yaw and pitch (roll does not leak into them)', () => {
    const upright = poseFromMesh((i) => rotate(face[i]!, 10, 28, 0));
    const tilted = poseFromMesh((i) => rotate(face[i]!, 10, 28, 35));
    expect(tilted.pitch).toBeCloseTo(upright.pitch, 6);
    expect(tilted.yaw).toBeCloseTo(upright.yaw, 6);
    expect(tilted.roll - upright.roll).toBeCloseTo(35, 6);
  });
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

describe('head pose on transformed photos (images made by the test with ffmpeg)', () => {
  const rotated = (src: string, deg: number, out: string): string => {
    // positive = clockwise; the canvas grows so no corner of the photo is cut off
    const a = `${deg}*PI/180`;
    ffmpeg(['-i', src, '-vf', `rotate=${a}:ow=rotw(${a}):oh=roth(${a}):c=gray,format=rgb24`, '-frames:v', '1', out]);
    return out;
  };

  for (const name of ['face_frontal.jpg', 'face_turned.jpg']) {
    it(`rotating ${name} in the image plane (±30°) keeps yaw and pitch and moves roll by the rotation`, async () => {
      const dir = tmp();
      const base = (await det.analyze(await decodeImage(join(FIXTURES, name)), only)).faces;
      expect(base).toHaveLength(1);
      for (const deg of [-30, 30]) {
        const f = (await det.analyze(await decodeImage(rotated(join(FIXTURES, name), deg, join(dir, `r${deg}.png`))), only)).faces;
        expect(f, `${deg}°`).toHaveLength(1);
        expect(Math.abs(f[0]!.yaw - base[0]!.yaw), `yaw at ${deg}°`).toBeLessThan(5);
        expect(Math.abs(f[0]!.pitch - base[0]!.pitch), `pitch at ${deg}°`).toBeLessThan(5);
        expect(Math.abs(f[0]!.roll - base[0]!.roll - deg), `roll at ${deg}°`).toBeLessThan(6);
      }
    });
  }

  it('a frontal face shifted down (grey band on top) or with its lower part cropped still reads frontal', async () => {
    const dir = tmp();
    const src = join(FIXTURES, 'face_frontal.jpg');
    const base = (await det.analyze(await decodeImage(src), only)).faces[0]!;
    const shifted = join(dir, 'shifted.png');
    const cropped = join(dir, 'cropped.png');
    ffmpeg(['-i', src, '-vf', 'pad=iw:ih+70:0:70:color=gray,format=rgb24', '-frames:v', '1', shifted]);
    ffmpeg(['-i', src, '-vf', 'crop=iw:ih-50:0:0,format=rgb24', '-frames:v', '1', cropped]);
    for (const file of [shifted, cropped]) {
      const f = (await det.analyze(await decodeImage(file), only)).faces;
      expect(f).toHaveLength(1);
      expect(Math.abs(f[0]!.yaw), file).toBeLessThan(12);
      expect(Math.abs(f[0]!.pitch - base.pitch), file).toBeLessThan(6);
      expect(headClass(f[0]!), file).toBe('frontal');
    }
  });

  it('a face in dim blue light is re-read in grayscale when FaceMesh rejects the colour crop', async () => {
    const dir = tmp();
    const src = join(FIXTURES, 'face_frontal.jpg');
    const blue = join(dir, 'blue.png');
    ffmpeg(['-i', src, '-vf', 'colorchannelmixer=rr=0.1:gg=0.3:bb=0.9,eq=gamma=0.7,format=rgb24', '-frames:v', '1', blue]);
    const img = await decodeImage(blue);
    const base = (await det.analyze(await decodeImage(src), only)).faces[0]!;
    const colourOnly = (await det.analyze(img, { ...only, meshGrayRetry: 0 })).faces[0]!;
    const withRetry = (await det.analyze(img, only)).faces[0]!;
    expect(colourOnly.meshScore).toBeLessThan(0.5);
    expect(withRetry.meshScore).toBeGreaterThan(0.9);
    expect(Math.abs(withRetry.yaw - base.yaw)).toBeLessThan(6);
    expect(Math.abs(withRetry.pitch - base.pitch)).toBeLessThan(8);
  });
});
