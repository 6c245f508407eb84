import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../../src/main/core/eventlog.js';
import { warningFor } from '../../src/main/kiosk/service.js';

const rec = (type: string, data: Record<string, unknown> = {}): LogRecord => ({ seq: 0, prev: '', mono: 0, wall: 0, type, data, hash: '' });

describe('which session events the student sees as warnings', () => {
  it('maps detector episodes by their type', () => {
    expect(warningFor(rec('episode.started', { type: 'face.absent' }))).toBe('face_missing');
    expect(warningFor(rec('episode.started', { type: 'face.multiple' }))).toBe('multiple_faces');
    expect(warningFor(rec('episode.started', { type: 'head.away.repeated' }))).toBe('head_away');
    expect(warningFor(rec('episode.started', { type: 'object.phone' }))).toBe('phone');
    expect(warningFor(rec('episode.started', { type: 'person.extra' }))).toBe('extra_person');
    expect(warningFor(rec('episode.started', { type: 'something.new' }))).toBe('generic');
    expect(warningFor(rec('episode.ended', { type: 'face.absent' }))).toBeNull();
  });

  it('maps monitor findings and ignores their bookkeeping', () => {
    expect(warningFor(rec('monitor.foreground.away'))).toBe('window');
    expect(warningFor(rec('monitor.process.found'))).toBe('process');
    expect(warningFor(rec('monitor.display.changed'))).toBe('display');
    expect(warningFor(rec('monitor.device.added'))).toBe('device');
    expect(warningFor(rec('monitor.clipboard.paste_blocked'))).toBe('clipboard');
    for (const t of ['monitor.started', 'monitor.stopped', 'monitor.display.snapshot', 'monitor.foreground.back', 'monitor.vm.signal', 'monitor.process.exited']) {
      expect(warningFor(rec(t)), t).toBeNull();
    }
  });

  it('warns about a camera that died, not one stopped on purpose, and about the shell\'s blocks', () => {
    expect(warningFor(rec('recorder.exited', { expected: false }))).toBe('recorder');
    expect(warningFor(rec('recorder.exited', { expected: true }))).toBeNull();
    expect(warningFor(rec('recorder.failed'))).toBe('recorder');
    expect(warningFor(rec('kiosk.focus_lost'))).toBe('focus_lost');
    expect(warningFor(rec('kiosk.shortcut_blocked'))).toBe('shortcut');
    expect(warningFor(rec('kiosk.window_open_blocked'))).toBe('navigation');
    expect(warningFor(rec('segment.closed'))).toBeNull();
  });
});
