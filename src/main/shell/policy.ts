/**
 * The kiosk's lockdown decisions as plain functions (no electron import), so they are unit-tested headless:
 * URL allowlist, keyboard shortcut policy, proctor exit-code check with lock-out, focus-loss accounting.
 * The Electron shell (window.ts) only wires these to Electron events.
 */
import { timingSafeEqual } from 'node:crypto';
import { canonicalize, sha256Hex } from '../core/canonical.js';
import type { ExamConfig } from '../core/config.js';

// ---------------------------------------------------------------------------------------------------------------
// URL allowlist

interface CompiledPattern { source: string; scheme: string | null; host: RegExp; port: string | null; path: RegExp | null }

function globToRegex(glob: string, star: string): string {
  return glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join(star);
}

const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * One allowlist entry: `host`, `host/path-prefix`, `*.host`, `host:port/path`, optionally with a scheme
 * (`https://host/path`). `*` in the host matches within and across labels (`*.kaznu.kz` matches `a.b.kaznu.kz`,
 * not `kaznu.kz`); a path prefix matches on segment boundaries (`/mod/quiz` matches `/mod/quiz/view.php`, not
 * `/mod/quizzes`); `*` in the path matches anything. No port in the pattern means the scheme's default port.
 */
export function compilePattern(pattern: string): CompiledPattern {
  let rest = pattern.trim();
  if (!rest) throw new Error('empty allowlist entry');
  let scheme: string | null = null;
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (m) { scheme = m[1]!.toLowerCase() + ':'; rest = rest.slice(m[0].length); }
  const slash = rest.indexOf('/');
  let hostPort = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? null : rest.slice(slash);
  let port: string | null = null;
  const pm = /:(\d+)$/.exec(hostPort);
  if (pm) { port = pm[1]!; hostPort = hostPort.slice(0, pm.index); }
  if (!/^[a-z0-9*.[\]:-]+$/i.test(hostPort)) throw new Error(`allowlist entry "${pattern}" has an invalid host`);
  const host = new RegExp('^' + globToRegex(hostPort.toLowerCase(), '[a-z0-9.-]*') + '$');
  let pathRe: RegExp | null = null;
  if (path && path !== '/') {
    const base = path.endsWith('/') ? path.slice(0, -1) : path;
    pathRe = new RegExp('^' + globToRegex(base, '.*') + (path.endsWith('*') ? '' : '(?:[/?#]|$)'));
  }
  return { source: pattern, scheme, host, port, path: pathRe };
}

export interface Allowlist {
  /** True when `url` is an allowed http(s) page (main frame or sub-frame navigation). */
  allowsNavigation(url: string): boolean;
  /** True when a network request (any resource type) to `url` is allowed. data:/blob: are not network requests. */
  allowsRequest(url: string): boolean;
  readonly patterns: readonly string[];
}

/**
 * The exam's allowlist: its own start URL (host, port and path prefix of its directory) plus `allow` entries.
 * Throws on an invalid entry, naming it (the exam config is checked before an exam starts).
 */
export function compileAllowlist(examUrl: string, allow: readonly string[]): Allowlist {
  const entries: string[] = [];
  if (/^https?:\/\//i.test(examUrl)) {
    const u = new URL(examUrl);
    entries.push(`${u.protocol}//${u.host}`);
  }
  entries.push(...allow);
  const compiled = entries.map(compilePattern);
  const matches = (raw: string): boolean => {
    let u: URL;
    try { u = new URL(raw); } catch { return false; }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
    if (u.username || u.password) return false;
    const host = u.hostname.toLowerCase();
    const port = u.port || DEFAULT_PORT[u.protocol]!;
    const path = u.pathname + u.search;
    return compiled.some((c) => {
      if (c.scheme && c.scheme !== u.protocol) return false;
      if (!c.host.test(host)) return false;
      if ((c.port ?? DEFAULT_PORT[u.protocol]) !== port) return false;
      return !c.path || c.path.test(path);
    });
  };
  return {
    patterns: entries,
    allowsNavigation: (url) => url === 'about:blank' || matches(url),
    allowsRequest: (url) => /^(data|blob):/i.test(url) || matches(url),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Keyboard shortcuts

/** The part of Electron's `Input` (before-input-event) the policy reads. `code` is the physical key, so a
 * Kazakh or Russian layout (where Ctrl+W arrives with key "ц") is handled like a Latin one. */
export interface KeyInput {
  type: 'keyDown' | 'keyUp' | 'rawKeyDown' | 'char' | string;
  key: string;
  code: string;
  control: boolean;
  meta: boolean;
  alt: boolean;
  shift: boolean;
}

export interface ShortcutDecision { block: boolean; name?: string }

const CTRL_LETTERS = new Set(['KeyW', 'KeyQ', 'KeyN', 'KeyT', 'KeyR', 'KeyP', 'KeyS', 'KeyO', 'KeyU', 'KeyJ', 'KeyH', 'KeyD', 'KeyL', 'KeyG', 'KeyE', 'KeyK', 'KeyM']);
const ZOOM_CODES = new Set(['Equal', 'Minus', 'Digit0', 'NumpadAdd', 'NumpadSubtract', 'Numpad0']);

function comboName(i: KeyInput, code: string): string {
  const mods = [i.control && 'Ctrl', i.meta && 'Meta', i.alt && 'Alt', i.shift && 'Shift'].filter(Boolean);
  return [...mods, code.replace(/^Key|^Digit/, '')].join('+');
}

/**
 * Which keys the kiosk swallows. Text editing (Ctrl+C/V/X/A/Z/Y, arrows, Tab, Enter) stays usable; window,
 * browser, reload, devtools, print, save, zoom, history and system keys are blocked and named for the log.
 * Keys the OS handles before any window sees them (Alt+Tab on Windows, Ctrl+Alt+Del) cannot be blocked here:
 * focus-loss accounting is the backstop for those.
 */
export function shortcutDecision(i: KeyInput): ShortcutDecision {
  if (i.type !== 'keyDown' && i.type !== 'rawKeyDown') return { block: false };
  const code = i.code || i.key;
  const block = (): ShortcutDecision => ({ block: true, name: comboName(i, code) });
  const primary = i.control || i.meta;
  if (/^F([1-9]|1[0-9]|2[0-4])$/.test(code)) return block(); // F1 help, F5 reload, F11 fullscreen, F12 devtools …
  if (code === 'PrintScreen' || i.key === 'PrintScreen' || code === 'ScrollLock' || code === 'Pause') return block();
  if (code === 'MetaLeft' || code === 'MetaRight' || code === 'OSLeft' || code === 'OSRight' || code === 'ContextMenu') return block();
  if (code === 'BrowserBack' || code === 'BrowserForward' || code === 'BrowserRefresh' || code === 'BrowserHome' || code === 'BrowserSearch') return block();
  if (i.alt && ['Tab', 'F4', 'ArrowLeft', 'ArrowRight', 'Home', 'Space', 'Escape'].includes(code)) return block();
  if (primary) {
    if (CTRL_LETTERS.has(code)) return block();
    if (ZOOM_CODES.has(code)) return block();
    if (code === 'Tab' || code === 'PageUp' || code === 'PageDown' || code === 'Escape' || code === 'Backquote') return block();
    if (i.shift && (code === 'KeyI' || code === 'KeyC' || code === 'Delete' || code === 'KeyB')) return block();
    if (i.alt && code === 'Delete') return block();
    if (i.meta && (code === 'KeyC' || code === 'KeyV' || code === 'KeyX' || code === 'KeyA' || code === 'KeyZ')) return { block: false };
    if (/^Digit[1-9]$/.test(code)) return block(); // tab switching
  }
  return { block: false };
}

// ---------------------------------------------------------------------------------------------------------------
// Proctor exit code

export { sha256Hex };

/** Compares `code` (trimmed) with the configured sha256 hex in constant time. An empty hash disables exit codes. */
export function exitCodeMatches(code: string, sha256: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(sha256)) return false;
  const got = Buffer.from(sha256Hex(code.trim()), 'hex');
  return timingSafeEqual(got, Buffer.from(sha256, 'hex'));
}

export type ExitAttempt = { ok: true } | { ok: false; reason: 'wrong' | 'locked' | 'disabled'; retryInMs?: number; attempts: number };

/** Exit-code attempts with lock-out: after `maxTries` wrong codes, no attempt is even checked for `lockMs`. */
export class ExitCodeGuard {
  private wrong = 0;
  private lockedUntil = 0;
  constructor(private readonly sha256: string, private readonly maxTries = 5, private readonly lockMs = 60_000) {}

  attempt(code: string, now = Date.now()): ExitAttempt {
    if (!/^[0-9a-f]{64}$/.test(this.sha256)) return { ok: false, reason: 'disabled', attempts: this.wrong };
    if (now < this.lockedUntil) return { ok: false, reason: 'locked', retryInMs: this.lockedUntil - now, attempts: this.wrong };
    if (exitCodeMatches(code, this.sha256)) { this.wrong = 0; return { ok: true }; }
    this.wrong++;
    if (this.wrong % this.maxTries === 0) this.lockedUntil = now + this.lockMs;
    return { ok: false, reason: 'wrong', attempts: this.wrong, ...(this.lockedUntil > now ? { retryInMs: this.lockedUntil - now } : {}) };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Focus-loss accounting

export interface FocusLoss { n: number; at: number }
export interface FocusRegain { n: number; at: number; awayMs: number; totalAwayMs: number }

/**
 * Counts every loss of focus and how long each lasted. `lost` while already lost is ignored (Electron may fire
 * blur twice); `regained` without a loss is ignored. `snapshot(now)` includes a loss still in progress.
 */
export class FocusTracker {
  private count = 0;
  private awayTotal = 0;
  private longest = 0;
  private since: number | null = null;

  lost(at: number): FocusLoss | null {
    if (this.since !== null) return null;
    this.since = at;
    this.count++;
    return { n: this.count, at };
  }

  regained(at: number): FocusRegain | null {
    if (this.since === null) return null;
    const away = Math.max(0, at - this.since);
    this.since = null;
    this.awayTotal += away;
    this.longest = Math.max(this.longest, away);
    return { n: this.count, at, awayMs: away, totalAwayMs: this.awayTotal };
  }

  get isAway(): boolean { return this.since !== null; }

  snapshot(now: number): { losses: number; totalAwayMs: number; longestAwayMs: number; away: boolean } {
    const cur = this.since === null ? 0 : Math.max(0, now - this.since);
    return { losses: this.count, totalAwayMs: this.awayTotal + cur, longestAwayMs: Math.max(this.longest, cur), away: this.since !== null };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Permissions

/** Permissions the exam page may get: none by default. Fullscreen requests from the page are refused too (the
 * kiosk already is). Clipboard writes within the page work without a permission. */
export function permissionAllowed(_permission: string): boolean {
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// Clipboard keys in the exam view

/**
 * Which clipboard action a key press in the exam page is: a paste (Ctrl/Cmd+V, Ctrl+Shift+V, Shift+Insert) is held
 * back until the clipboard monitor allows it; a copy or cut (Ctrl/Cmd+C/X, Ctrl+Insert, Shift+Delete) goes through
 * and is then noted as an internal copy, so that text may be pasted back. Devtools combinations (Ctrl+Shift+C) are
 * not copies: shortcutDecision blocks them first.
 */
export function clipboardKey(i: KeyInput): 'paste' | 'copy' | null {
  if (i.type !== 'keyDown' && i.type !== 'rawKeyDown') return null;
  const code = i.code || i.key;
  const primary = (i.control || i.meta) && !i.alt;
  if (primary && code === 'KeyV') return 'paste';
  if (!primary && !i.alt && i.shift && code === 'Insert') return 'paste';
  if (primary && !i.shift && (code === 'KeyC' || code === 'KeyX' || code === 'Insert')) return 'copy';
  if (!primary && !i.alt && i.shift && code === 'Delete') return 'copy';
  return null;
}

/** Keeps `target` (a live list the monitors read) equal to the distinct pids of `next`, in place. */
export function syncPids(target: number[], next: readonly number[]): boolean {
  const want = [...new Set(next.filter((p) => Number.isInteger(p) && p > 0))];
  if (want.length === target.length && want.every((p, i) => target[i] === p)) return false;
  target.splice(0, target.length, ...want);
  return true;
}

/** The kiosk window's title (fixed: page titles do not change it); the foreground monitor knows it as ours. */
export function kioskWindowTitle(examTitle: string): string {
  return `Kuzet — ${examTitle}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Safe Exam Browser compatibility (exam config `seb`)

/**
 * The config key Kuzet announces for an exam (Safe Exam Browser's "Config Key"): the configured one, else the
 * sha256 of the exam config's RFC 8785 canonical JSON without its `seb` section (the key describes the exam's
 * settings, not how it is announced). null when the exam does not ask for SEB headers. The technician enters this
 * key in the LMS (Moodle: quiz → Safe Exam Browser → config keys); the kiosk logs it at exam start.
 */
export function sebConfigKey(exam: ExamConfig): string | null {
  if (!exam.seb?.enabled) return null;
  if (exam.seb.configKey) return exam.seb.configKey;
  const settings: Record<string, unknown> = { ...exam };
  delete settings.seb;
  return sha256Hex(canonicalize(settings));
}

/**
 * The request header an LMS checks: `X-SafeExamBrowser-ConfigKeyHash` = hex sha256 of the absolute request URL
 * (without its #fragment) followed by the config key — what Moodle's quizaccess_seb compares for each page.
 */
export function sebHeaders(url: string, configKey: string): Record<string, string> {
  const hash = url.indexOf('#');
  return { 'X-SafeExamBrowser-ConfigKeyHash': sha256Hex((hash < 0 ? url : url.slice(0, hash)) + configKey) };
}
