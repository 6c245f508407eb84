import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMachineConfig, parseMachineConfig, parseExamConfig, configHash } from '../../src/main/core/config.js';
import { resolveFfmpeg } from '../../src/main/core/ffmpeg.js';
import { kuzetHome } from '../../src/main/core/home.js';
import { cleanup, tmpDir } from '../helpers/tmp.js';

const dir = tmpDir();
afterAll(() => cleanup(dir));

describe('config schema', () => {
  it('fills defaults for an empty config', () => {
    const c = parseMachineConfig({});
    expect(c.configVersion).toBe(1);
    expect(c.recording.segmentSeconds).toBeGreaterThanOrEqual(2);
    expect(c.sources.face.kind).toBe('lavfi');
    expect(c.sources.mic.kind).toBe('none');
  });

  it('names the file and field of a bad value', () => {
    const p = join(dir, 'bad.json');
    writeFileSync(p, JSON.stringify({ sources: { face: { kind: 'v4l2', fps: 'fast' } } }));
    expect(() => loadMachineConfig(p, true)).toThrow(/bad\.json: sources\.face\.fps/);
  });

  it('explains invalid JSON, a missing explicit file and a wrong version', () => {
    const p = join(dir, 'broken.json');
    writeFileSync(p, '{"sources": ');
    expect(() => loadMachineConfig(p, true)).toThrow(/broken\.json is not valid JSON/);
    expect(() => loadMachineConfig(join(dir, 'nope.json'), true)).toThrow(/nope\.json does not exist/);
    expect(loadMachineConfig(join(dir, 'nope.json'), false).configVersion).toBe(1);
    expect(() => parseMachineConfig({ configVersion: 9 })).toThrow(/configVersion 9 is not supported/);
  });

  it('needs a device for a real camera and a file for a file source', () => {
    expect(() => parseMachineConfig({ sources: { room: { kind: 'v4l2' } } })).toThrow(/sources\.room.*needs "device"/);
    expect(() => parseMachineConfig({ sources: { room: { kind: 'file' } } })).toThrow(/needs "file"/);
  });

  it('hashes the effective config so a changed threshold changes the hash', () => {
    const a = configHash(parseMachineConfig({}), parseExamConfig({}));
    const b = configHash(parseMachineConfig({ detection: { thresholds: { headAwaySeconds: 9 } } }), parseExamConfig({}));
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
  });
});

describe('data directory and ffmpeg resolution', () => {
  it('honours KUZET_HOME', () => {
    expect(kuzetHome({ KUZET_HOME: dir })).toBe(dir);
    expect(kuzetHome({ HOME: '/home/x', XDG_DATA_HOME: '/data' })).toMatch(/kuzet$/i);
  });

  it('resolves env override, then PATH, and names all options when none exists', () => {
    expect(() => resolveFfmpeg({ KUZET_FFMPEG: join(dir, 'nope') })).toThrow(/KUZET_FFMPEG points to .*nope/);
    const onPath = resolveFfmpeg({ PATH: process.env.PATH, KUZET_NO_FFMPEG_STATIC: '1' });
    expect(onPath.via).toBe('PATH');
    expect(() => resolveFfmpeg({ PATH: dir, KUZET_NO_FFMPEG_STATIC: '1' })).toThrow(/ffmpeg not found: set KUZET_FFMPEG.*ffmpeg-static.*PATH/);
  });
});
