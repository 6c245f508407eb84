import { spawn } from 'node:child_process';
import type { Emit, WindowInfo } from './events.js';
import { errMsg, hasTool, preview, run, sha256 } from './util.js';
import { SourceUnavailable } from './foreground.js';

/**
 * The system clipboard (text). The Electron shell passes one backed by Electron's `clipboard` module; headless,
 * X11 uses xclip (or xsel).
 */
export interface ClipboardSource {
  readonly name: string;
  readText(): Promise<string>;
  clear(): Promise<void>;
}

export class XclipSource implements ClipboardSource {
  readonly name = 'xclip';
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  async readText(): Promise<string> {
    const r = await run('xclip', ['-selection', 'clipboard', '-o'], { env: this.env, timeoutMs: 3000 });
    if (r.ok) return r.stdout;
    if (r.missing) throw new SourceUnavailable('xclip is not installed (Debian: apt-get install xclip)');
    if (/Can't open display/i.test(r.stderr + r.error)) throw new SourceUnavailable('no X display for the clipboard');
    return ''; // "target STRING not available": the clipboard is empty or holds no text
  }

  /** Takes the clipboard over with empty content (xclip stays as its owner until another program copies). */
  clear(): Promise<void> {
    return new Promise((resolve, reject) => {
      // stdout/stderr ignored: the background xclip would otherwise hold our pipes open.
      const c = spawn('xclip', ['-selection', 'clipboard', '-i'], { env: this.env, stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      c.on('error', (e) => reject((e as NodeJS.ErrnoException).code === 'ENOENT' ? new SourceUnavailable('xclip is not installed') : e));
      // xclip forks into the background once it owns the selection; the foreground process then exits 0.
      c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`xclip exited with code ${code}`))));
      c.stdin!.end('');
    });
  }
}

export function defaultClipboardSource(env: NodeJS.ProcessEnv = process.env): ClipboardSource | null {
  if (process.platform === 'linux' && env.DISPLAY && hasTool('xclip')) return new XclipSource(env);
  return null;
}

export type ClipboardPolicy = 'off' | 'clear' | 'isolate';

export interface PasteDecision { allow: boolean; reason: 'empty' | 'internal' | 'outside-blocked' | 'outside-allowed' | 'off' | 'unavailable' }

/**
 * Clipboard policy. `clear`: emptied at start and end. `isolate` (also): text that entered the clipboard from
 * outside the exam cannot be pasted in — the kiosk asks `checkPaste()` on every paste and blocks it when the
 * content was not copied inside the exam. Copies are attributed by the foreground monitor: what the clipboard
 * holds when the student comes back from another window was copied outside (`monitor.clipboard.outside_copy`).
 * Only a hash, the length and a short preview are logged, never the whole text.
 */
export class ClipboardMonitor {
  private readonly internal = new Set<string>();
  private lastHash: string | null = null;
  private unavailable: string | null = null;

  constructor(private readonly o: { emit: Emit; source: ClipboardSource | null; policy: ClipboardPolicy; previewChars: number }) {}

  stats() {
    return { source: this.o.source?.name ?? 'none', policy: this.o.policy, internalCopies: this.internal.size, unavailable: this.unavailable };
  }

  async start(): Promise<void> {
    if (this.o.policy === 'off') return;
    if (!this.o.source) { this.markUnavailable('no clipboard access in this process (the kiosk shell provides it)'); return; }
    await this.clear('start');
  }

  async stop(): Promise<void> {
    if (this.o.policy === 'off' || !this.o.source) return;
    await this.clear('end');
  }

  private markUnavailable(reason: string): void {
    if (this.unavailable === reason) return;
    this.unavailable = reason;
    this.o.emit('monitor.source_unavailable', { monitor: 'clipboard', source: this.o.source?.name ?? 'none', reason });
  }

  private async clear(at: 'start' | 'end' | 'blocked-paste'): Promise<void> {
    try {
      await this.o.source!.clear();
      this.lastHash = sha256('');
      this.o.emit('monitor.clipboard.cleared', { at, ok: true });
    } catch (e) {
      if (e instanceof SourceUnavailable) this.markUnavailable(e.message);
      this.o.emit('monitor.clipboard.cleared', { at, ok: false, error: errMsg(e) });
    }
  }

  private async read(): Promise<string | null> {
    if (!this.o.source) return null;
    try { return await this.o.source.readText(); } catch (e) {
      this.markUnavailable(errMsg(e));
      return null;
    }
  }

  /** The kiosk calls this after a copy inside the exam: the current content may be pasted back. */
  async noteInternalCopy(text?: string): Promise<void> {
    const t = text ?? await this.read();
    if (t === null) return;
    const h = sha256(t);
    this.internal.add(h);
    this.lastHash = h;
  }

  /**
   * Called when the student returns to the kiosk (and usable any time): a clipboard that changed while another
   * window had the focus was filled outside the exam.
   */
  async checkAfterAway(copiedWhileIn: WindowInfo | null): Promise<void> {
    if (this.o.policy === 'off') return;
    const t = await this.read();
    if (t === null) return;
    const h = sha256(t);
    if (h === this.lastHash || t === '' || this.internal.has(h)) { this.lastHash = h; return; }
    this.lastHash = h;
    this.o.emit('monitor.clipboard.outside_copy', { length: t.length, sha256: h, preview: preview(t, this.o.previewChars), copiedWhileIn });
  }

  /** The kiosk asks before every paste. */
  async checkPaste(): Promise<PasteDecision> {
    if (this.o.policy === 'off') return { allow: true, reason: 'off' };
    const t = await this.read();
    if (t === null) return { allow: this.o.policy !== 'isolate', reason: 'unavailable' };
    if (t === '') return { allow: true, reason: 'empty' };
    const h = sha256(t);
    if (this.internal.has(h)) return { allow: true, reason: 'internal' };
    const ev = { length: t.length, sha256: h, preview: preview(t, this.o.previewChars) };
    if (this.o.policy === 'isolate') {
      this.o.emit('monitor.clipboard.paste_blocked', ev);
      await this.clear('blocked-paste');
      return { allow: false, reason: 'outside-blocked' };
    }
    this.o.emit('monitor.clipboard.paste_outside', ev);
    return { allow: true, reason: 'outside-allowed' };
  }
}
