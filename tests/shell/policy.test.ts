import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { parseExamConfig } from '../../src/main/core/config.js';
import {
  clipboardKey, compileAllowlist, compilePattern, ExitCodeGuard, exitCodeMatches, FocusTracker, kioskWindowTitle, sebConfigKey, sebHeaders, sha256Hex, shortcutDecision, syncPids, type KeyInput,
} from '../../src/main/shell/policy.js';

describe('allowlist', () => {
  const al = compileAllowlist('https://moodle.kaznu.kz/mod/quiz/view.php?id=7', ['*.platonus.kz', 'lms.example.kz/exam', 'http://127.0.0.1:8080/q*']);

  it('allows the exam host and listed entries', () => {
    expect(al.allowsNavigation('https://moodle.kaznu.kz/login/index.php')).toBe(true);
    expect(al.allowsNavigation('https://a.platonus.kz/')).toBe(true);
    expect(al.allowsNavigation('https://x.y.platonus.kz/test')).toBe(true);
    expect(al.allowsNavigation('https://lms.example.kz/exam')).toBe(true);
    expect(al.allowsNavigation('https://lms.example.kz/exam/3?x=1')).toBe(true);
    expect(al.allowsNavigation('http://127.0.0.1:8080/quiz')).toBe(true);
    expect(al.allowsNavigation('about:blank')).toBe(true);
  });

  it('denies everything else, including look-alikes', () => {
    expect(al.allowsNavigation('https://platonus.kz/')).toBe(false); // *. needs a sub-domain
    expect(al.allowsNavigation('https://lms.example.kz/examples')).toBe(false); // path prefix on segment boundary
    expect(al.allowsNavigation('https://lms.example.kz/')).toBe(false);
    expect(al.allowsNavigation('https://moodle.kaznu.kz.evil.com/')).toBe(false);
    expect(al.allowsNavigation('https://moodle.kaznu.kz@evil.com/')).toBe(false);
    expect(al.allowsNavigation('https://user:pw@moodle.kaznu.kz/')).toBe(false);
    expect(al.allowsNavigation('http://moodle.kaznu.kz/')).toBe(false); // start URL pins the scheme
    expect(al.allowsNavigation('https://moodle.kaznu.kz:8443/')).toBe(false); // and the port
    expect(al.allowsNavigation('https://127.0.0.1:8080/quiz')).toBe(false); // entry pins http
    expect(al.allowsNavigation('http://127.0.0.1:8081/quiz')).toBe(false);
    expect(al.allowsNavigation('https://google.com/')).toBe(false);
    expect(al.allowsNavigation('file:///etc/passwd')).toBe(false);
    expect(al.allowsNavigation('javascript:alert(1)')).toBe(false);
    expect(al.allowsNavigation('data:text/html,hi')).toBe(false);
    expect(al.allowsNavigation('not a url')).toBe(false);
  });

  it('lets data: and blob: subresources through at the network layer but not off-list hosts', () => {
    expect(al.allowsRequest('data:image/png;base64,AAAA')).toBe(true);
    expect(al.allowsRequest('https://moodle.kaznu.kz/theme/image.php')).toBe(true);
    expect(al.allowsRequest('https://cdn.evil.com/x.js')).toBe(false);
    expect(al.allowsRequest('ws://moodle.kaznu.kz/')).toBe(false);
  });

  it('names a bad entry', () => {
    expect(() => compilePattern('exa mple.kz')).toThrow(/exa mple\.kz/);
    expect(() => compilePattern('  ')).toThrow(/empty/);
  });
});

const key = (code: string, mods: Partial<KeyInput> = {}, k = ''): KeyInput =>
  ({ type: 'keyDown', key: k || code, code, control: false, meta: false, alt: false, shift: false, ...mods });

describe('shortcut policy', () => {
  it('blocks window, browser, devtools and system keys and names them', () => {
    const blocked: [KeyInput, string][] = [
      [key('Tab', { alt: true }), 'Alt+Tab'],
      [key('F4', { alt: true }), 'Alt+F4'],
      [key('KeyW', { control: true }), 'Ctrl+W'],
      [key('KeyQ', { meta: true }), 'Meta+Q'],
      [key('KeyN', { control: true }), 'Ctrl+N'],
      [key('KeyT', { control: true }), 'Ctrl+T'],
      [key('KeyR', { control: true, shift: true }), 'Ctrl+Shift+R'],
      [key('KeyI', { control: true, shift: true }), 'Ctrl+Shift+I'],
      [key('KeyP', { control: true }), 'Ctrl+P'],
      [key('F5'), 'F5'],
      [key('F11'), 'F11'],
      [key('F12'), 'F12'],
      [key('PrintScreen'), 'PrintScreen'],
      [key('Equal', { control: true }), 'Ctrl+Equal'],
      [key('Digit0', { control: true }), 'Ctrl+0'],
      [key('ArrowLeft', { alt: true }), 'Alt+ArrowLeft'],
      [key('MetaLeft', { meta: true }), 'Meta+MetaLeft'],
    ];
    for (const [input, name] of blocked) expect(shortcutDecision(input), name).toEqual({ block: true, name });
  });

  it('uses the physical key, so Ctrl+W on a Russian or Kazakh layout is still blocked', () => {
    expect(shortcutDecision(key('KeyW', { control: true }, 'ц')).block).toBe(true);
    expect(shortcutDecision(key('KeyQ', { control: true }, 'й')).block).toBe(true);
  });

  it('keeps typing and text editing usable', () => {
    for (const input of [key('KeyA', {}, 'a'), key('KeyC', { control: true }), key('KeyV', { control: true }), key('KeyX', { control: true }),
      key('KeyA', { control: true }), key('KeyZ', { control: true }), key('Tab'), key('Enter'), key('Backspace'), key('ArrowLeft'),
      key('KeyA', { shift: true }, 'A'), key('Digit1', { shift: true }, '!'), key('KeyV', { meta: true })]) {
      expect(shortcutDecision(input), JSON.stringify(input)).toEqual({ block: false });
    }
  });

  it('decides on key-down only', () => {
    expect(shortcutDecision({ ...key('F12'), type: 'keyUp' }).block).toBe(false);
  });
});

describe('exit code', () => {
  const hash = sha256Hex('4821-proctor');
  it('matches the hashed code (trimmed) and nothing else', () => {
    expect(exitCodeMatches('4821-proctor', hash)).toBe(true);
    expect(exitCodeMatches(' 4821-proctor\n', hash)).toBe(true);
    expect(exitCodeMatches('4821-Proctor', hash)).toBe(false);
    expect(exitCodeMatches('', hash)).toBe(false);
    expect(exitCodeMatches('', '')).toBe(false);
  });

  it('locks out after repeated wrong codes, then lets the right code through', () => {
    const g = new ExitCodeGuard(hash, 3, 60_000);
    expect(g.attempt('a', 0)).toMatchObject({ ok: false, reason: 'wrong', attempts: 1 });
    expect(g.attempt('b', 1)).toMatchObject({ ok: false, reason: 'wrong', attempts: 2 });
    expect(g.attempt('c', 2)).toMatchObject({ ok: false, reason: 'wrong', attempts: 3, retryInMs: 60_000 });
    expect(g.attempt('4821-proctor', 10)).toMatchObject({ ok: false, reason: 'locked' });
    expect(g.attempt('4821-proctor', 60_002)).toEqual({ ok: true });
  });

  it('is disabled without a configured hash', () => {
    expect(new ExitCodeGuard('').attempt('anything')).toMatchObject({ ok: false, reason: 'disabled' });
  });
});

describe('focus tracker', () => {
  it('counts losses and time away, ignoring repeated blur/focus', () => {
    const f = new FocusTracker();
    expect(f.regained(5)).toBeNull();
    expect(f.lost(100)).toEqual({ n: 1, at: 100 });
    expect(f.lost(150)).toBeNull();
    expect(f.snapshot(400)).toEqual({ losses: 1, totalAwayMs: 300, longestAwayMs: 300, away: true });
    expect(f.regained(600)).toEqual({ n: 1, at: 600, awayMs: 500, totalAwayMs: 500 });
    expect(f.lost(1000)).toEqual({ n: 2, at: 1000 });
    expect(f.regained(1200)).toEqual({ n: 2, at: 1200, awayMs: 200, totalAwayMs: 700 });
    expect(f.snapshot(2000)).toEqual({ losses: 2, totalAwayMs: 700, longestAwayMs: 500, away: false });
  });
});

describe('clipboard keys in the exam view', () => {
  const k = (code: string, mods: Partial<KeyInput> = {}): KeyInput => ({ type: 'rawKeyDown', key: '', code, control: false, meta: false, alt: false, shift: false, ...mods });

  it('holds back every paste combination, on any keyboard layout (physical key codes)', () => {
    expect(clipboardKey(k('KeyV', { control: true, key: 'м' }))).toBe('paste'); // Russian layout: Ctrl+"м"
    expect(clipboardKey(k('KeyV', { meta: true }))).toBe('paste');
    expect(clipboardKey(k('KeyV', { control: true, shift: true }))).toBe('paste');
    expect(clipboardKey(k('Insert', { shift: true }))).toBe('paste');
  });

  it('notes copies and cuts, and leaves other keys alone', () => {
    expect(clipboardKey(k('KeyC', { control: true }))).toBe('copy');
    expect(clipboardKey(k('KeyX', { meta: true }))).toBe('copy');
    expect(clipboardKey(k('Insert', { control: true }))).toBe('copy');
    expect(clipboardKey(k('Delete', { shift: true }))).toBe('copy');
    expect(clipboardKey(k('KeyC', { control: true, shift: true }))).toBeNull(); // devtools inspect, blocked elsewhere
    expect(shortcutDecision(k('KeyC', { control: true, shift: true })).block).toBe(true);
    expect(clipboardKey(k('KeyV'))).toBeNull();
    expect(clipboardKey(k('KeyV', { control: true, alt: true }))).toBeNull();
    expect(clipboardKey(k('KeyV', { control: true, type: 'keyUp' }))).toBeNull();
  });
});

describe('the kiosk identity the monitors read', () => {
  it('keeps a live pid list in place, distinct and valid', () => {
    const live = [1];
    const same = live;
    expect(syncPids(live, [1, 20, 20, 30, 0, -4, 1.5])).toBe(true);
    expect(same).toEqual([1, 20, 30]);
    expect(syncPids(live, [1, 20, 30])).toBe(false);
  });

  it('has one fixed window title', () => {
    expect(kioskWindowTitle('Mathematics 101 — final')).toBe('Kuzet — Mathematics 101 — final');
  });
});

describe('Safe Exam Browser headers (exam config "seb")', () => {
  // An independent oracle for RFC 8785 on this data (strings, integers, booleans, arrays, objects): sorted keys.
  const sorted = (v: unknown): string => Array.isArray(v) ? `[${v.map(sorted).join(',')}]`
    : v && typeof v === 'object' ? `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${sorted((v as Record<string, unknown>)[k])}`).join(',')}}`
    : JSON.stringify(v);
  const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
  const base = { examId: 'MATH-101', title: 'Математика 101', url: 'https://moodle.example.kz/mod/quiz/view.php?id=7', allow: ['moodle.example.kz'] };

  it('is off unless the exam asks for it', () => {
    expect(sebConfigKey(parseExamConfig(base))).toBeNull();
    expect(sebConfigKey(parseExamConfig({ ...base, seb: { enabled: false } }))).toBeNull();
  });

  it('derives the config key from the exam config\'s canonical JSON (without the seb section), or takes the given one', () => {
    const exam = parseExamConfig({ ...base, seb: {} });
    const { seb: _seb, ...settings } = exam;
    expect(sebConfigKey(exam)).toBe(sha(sorted(settings)));
    expect(sebConfigKey(parseExamConfig({ ...base, seb: { enabled: true } }))).toBe(sebConfigKey(exam));
    expect(sebConfigKey(parseExamConfig({ ...base, url: 'https://moodle.example.kz/mod/quiz/view.php?id=8', seb: {} }))).not.toBe(sebConfigKey(exam));
    const given = 'ab'.repeat(32);
    expect(sebConfigKey(parseExamConfig({ ...base, seb: { configKey: given } }))).toBe(given);
    expect(() => parseExamConfig({ ...base, seb: { configKey: 'not-hex' } })).toThrow(/seb\.configKey/);
  });

  it('hashes the absolute URL (fragment dropped) followed by the key, as Moodle\'s SEB rule checks it', () => {
    const key = sebConfigKey(parseExamConfig({ ...base, seb: {} }))!;
    const url = 'https://moodle.example.kz/mod/quiz/view.php?id=7';
    const h = sebHeaders(`${url}#q3`, key);
    expect(Object.keys(h)).toEqual(['X-SafeExamBrowser-ConfigKeyHash']);
    expect(h['X-SafeExamBrowser-ConfigKeyHash']).toBe(sha(url + key)); // Moodle: hash('sha256', $url . $configkey)
    expect(sebHeaders('https://moodle.example.kz/mod/quiz/attempt.php?attempt=1', key)['X-SafeExamBrowser-ConfigKeyHash']).not.toBe(h['X-SafeExamBrowser-ConfigKeyHash']);
  });
});
