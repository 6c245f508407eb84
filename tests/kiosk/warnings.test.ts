import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../../src/main/core/eventlog.js';
import { warningDetail, warningFor } from '../../src/main/kiosk/service.js';

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

  it('names what fired (program, window, device, key) and maps print, clipboard and detector outages', () => {
    expect(warningFor(rec('kiosk.print_blocked'))).toBe('print');
    expect(warningFor(rec('monitor.clipboard.outside_copy'))).toBe('clipboard_outside');
    expect(warningFor(rec('detect.unavailable'))).toBe('detector_off');
    expect(warningDetail(rec('monitor.process.found', { entry: 'AnyDesk', name: 'anydesk' }))).toBe('AnyDesk');
    expect(warningDetail(rec('monitor.foreground.away', { window: { title: 'Notes', owner: { name: 'gedit' } } }))).toBe('Notes');
    expect(warningDetail(rec('monitor.foreground.away', { window: { title: null, owner: { name: 'gedit' } } }))).toBe('gedit');
    expect(warningDetail(rec('monitor.foreground.away', { window: null, reason: 'no-focus' }))).toBeUndefined();
    expect(warningDetail(rec('monitor.device.added', { device: { product: 'USB Keyboard' } }))).toBe('USB Keyboard');
    expect(warningDetail(rec('kiosk.navigation_blocked', { url: 'https://example.com/x' }))).toBe('example.com');
    expect(warningDetail(rec('episode.started', { type: 'face.absent' }))).toBeUndefined();
  });
});
