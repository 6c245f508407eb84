/**
 * The kiosk window and the locked exam view. Thin on purpose: every decision is a plain function in policy.ts
 * (unit-tested headless); this file only wires them to Electron events and reports what it blocked to the
 * KioskService, which writes it to the session's hash-chained log.
 */
import { BrowserWindow, WebContentsView, ipcMain, powerSaveBlocker, session as electronSession, type IpcMainEvent, type WebContents } from 'electron';
import { CHANNELS, STATUS_BAR_HEIGHT } from '../../shared/bridge.js';
import type { KioskService } from '../kiosk/service.js';
import {
  clipboardKey, compileAllowlist, FocusTracker, kioskWindowTitle, permissionAllowed, sebConfigKey, sebHeaders, shortcutDecision, type Allowlist,
} from './policy.js';

export interface ShellOptions {
  /** The built renderer's index.html, or the dev server URL. */
  renderer: { file: string } | { url: string };
  /** The preload script (CommonJS, sandboxed). */
  preload: string;
  /** The exam view's preload (print guard; exposes nothing to the page). */
  examPreload: string;
  /** Lockdown off for development only (`--dev-unlocked`): a normal window with devtools. */
  unlocked?: boolean;
}

export interface KioskShell {
  window: BrowserWindow;
  /** Allows the window to close (after release) and closes it. */
  release(): void;
}

/** Collapses blocked sub-resource requests per host so a busy page cannot flood the log. */
function requestNoter(service: KioskService) {
  const seen = new Map<string, number>();
  return (url: string, resourceType: string) => {
    let host = url;
    try { host = new URL(url).host || url.slice(0, 40); } catch { /* keep the raw prefix */ }
    const n = (seen.get(host) ?? 0) + 1;
    seen.set(host, n);
    if (n === 1 || n === 10 || n === 100 || n % 1000 === 0) service.note('kiosk.request_blocked', { url: url.slice(0, 500), resourceType, countForHost: n });
  };
}

/** Locks one webContents: navigation, pop-ups, keys, zoom, devtools, drops. `allowlist` null: no navigation at all. */
function lockContents(wc: WebContents, service: KioskService, allowlist: Allowlist | null, label: 'ui' | 'exam'): void {
  const allowed = (url: string) => (allowlist ? allowlist.allowsNavigation(url) : false);
  const blockNav = (e: { preventDefault(): void }, url: string, via: string) => {
    if (allowed(url)) return;
    e.preventDefault();
    service.note('kiosk.navigation_blocked', { url: url.slice(0, 500), via, view: label });
  };
  wc.on('will-navigate', (e) => blockNav(e, e.url, 'will-navigate'));
  wc.on('will-frame-navigate', (e) => { if (!e.isMainFrame) blockNav(e, e.url, 'frame'); });
  wc.on('will-redirect', (e) => blockNav(e, e.url, 'redirect'));
  wc.setWindowOpenHandler(({ url }) => {
    service.note('kiosk.window_open_blocked', { url: url.slice(0, 500), view: label });
    return { action: 'deny' };
  });
  wc.on('before-input-event', (e, input) => {
    const d = shortcutDecision(input);
    if (d.block) {
      e.preventDefault();
      service.note('kiosk.shortcut_blocked', { combo: d.name, view: label });
      return;
    }
    if (label !== 'exam') return;
    // Clipboard: a paste waits for the clipboard monitor's decision (isolate policy); a copy is noted as internal.
    const c = clipboardKey(input);
    if (c === 'paste') {
      e.preventDefault();
      void service.checkPaste().then((r) => { if (r.allow && !wc.isDestroyed()) wc.paste(); });
    } else if (c === 'copy') {
      setTimeout(() => { void service.noteInternalCopy(); }, 150);
    }
  });
  wc.on('devtools-opened', () => {
    wc.closeDevTools();
    service.note('kiosk.devtools_blocked', { view: label });
  });
  wc.on('zoom-changed', () => { wc.setZoomFactor(1); });
  void wc.setVisualZoomLevelLimits(1, 1);
  wc.on('context-menu', (e) => e.preventDefault());
  wc.on('render-process-gone', (_e, d) => service.note('kiosk.renderer_gone', { view: label, reason: d.reason, exitCode: d.exitCode }));
}

export function createKioskShell(service: KioskService, opts: ShellOptions): KioskShell {
  const locked = !opts.unlocked;
  const exam = service.examConfig;
  const allowlist = compileAllowlist(exam.url, exam.allow);

  const win = new BrowserWindow({
    title: kioskWindowTitle(exam.title),
    show: false, backgroundColor: '#f3f5f8',
    kiosk: locked, fullscreen: locked, alwaysOnTop: locked, frame: !locked,
    closable: !locked, minimizable: !locked, maximizable: !locked, resizable: !locked, movable: !locked, skipTaskbar: locked,
    autoHideMenuBar: true,
    webPreferences: {
      preload: opts.preload, contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true,
      devTools: !locked, spellcheck: false, navigateOnDragDrop: false, safeDialogs: true,
    },
  });
  win.removeMenu();
  // A fixed title: the foreground monitor recognises the kiosk window by it (besides its pid and class).
  win.on('page-title-updated', (e) => e.preventDefault());
  if (locked) win.setAlwaysOnTop(true, 'screen-saver');
  // Content protection would blank Kuzet's own screen recording: it stays off while the screen is recorded.
  win.setContentProtection(false);
  const powerBlock = powerSaveBlocker.start('prevent-display-sleep');

  // --- the UI (renderer) --------------------------------------------------------------------------------------
  lockContents(win.webContents, service, null, 'ui');
  win.webContents.session.setPermissionRequestHandler((_wc, permission, cb) => cb(permissionAllowed(permission)));
  win.webContents.session.setPermissionCheckHandler(() => false);
  if ('file' in opts.renderer) void win.loadFile(opts.renderer.file);
  else void win.loadURL(opts.renderer.url);
  win.once('ready-to-show', () => { win.show(); win.focus(); });

  // --- the exam view: own non-persistent partition (no cookies survive to the next student) ---------------------
  const partition = `kuzet-exam-${Date.now()}`;
  const examSession = electronSession.fromPartition(partition, { cache: false });
  examSession.setPermissionRequestHandler((_wc, permission, cb) => {
    const ok = permissionAllowed(permission);
    if (!ok) service.note('kiosk.permission_denied', { permission });
    cb(ok);
  });
  examSession.setPermissionCheckHandler(() => false);
  const noteRequest = requestNoter(service);
  // Only the last onBeforeRequest listener counts: this is the one.
  examSession.webRequest.onBeforeRequest((details, cb) => {
    if (allowlist.allowsRequest(details.url)) return cb({});
    noteRequest(details.url, details.resourceType);
    cb({ cancel: true });
  });
  // Safe Exam Browser headers (exam config `seb`) on the allowed hosts only: LMS rules that require SEB accept Kuzet.
  const sebKey = sebConfigKey(exam);
  if (sebKey) {
    examSession.webRequest.onBeforeSendHeaders((details, cb) => {
      if (!allowlist.allowsRequest(details.url)) return cb({ requestHeaders: details.requestHeaders });
      cb({ requestHeaders: { ...details.requestHeaders, ...sebHeaders(details.url, sebKey) } });
    });
  }
  examSession.on('will-download', (e, item) => {
    if (exam.allowDownloads) { service.note('kiosk.download', { url: item.getURL().slice(0, 500), file: item.getFilename() }); return; }
    e.preventDefault();
    service.note('kiosk.download_blocked', { url: item.getURL().slice(0, 500), file: item.getFilename() });
  });

  let view: WebContentsView | null = null;
  const layout = () => {
    if (!view) return;
    const [w, h] = win.getContentSize() as [number, number];
    view.setBounds({ x: 0, y: STATUS_BAR_HEIGHT, width: w, height: Math.max(0, h - STATUS_BAR_HEIGHT) });
  };
  service.on('exam-view', ({ show, url }) => {
    if (show && !view) {
      view = new WebContentsView({
        webPreferences: {
          partition, preload: opts.examPreload, nodeIntegrationInSubFrames: true, // the print guard in every frame
          contextIsolation: true, sandbox: true, nodeIntegration: false, devTools: !locked, spellcheck: false, navigateOnDragDrop: false, safeDialogs: true,
        },
      });
      lockContents(view.webContents, service, allowlist, 'exam');
      view.webContents.on('did-navigate', (_e, u) => service.note('kiosk.exam_navigated', { url: u.slice(0, 500) }));
      win.contentView.addChildView(view);
      layout();
      if (allowlist.allowsNavigation(url)) void view.webContents.loadURL(url);
      else service.note('kiosk.navigation_blocked', { url, via: 'start-url', view: 'exam' });
      view.webContents.focus();
    } else if (!show && view) {
      win.contentView.removeChildView(view);
      view.webContents.close();
      view = null;
      win.webContents.focus();
    }
  });
  win.on('resize', layout);
  // window.print() in the exam page (or a frame of it): the guard swallowed it; the attempt is logged here.
  const onPrint = (e: IpcMainEvent, via: unknown) => {
    if (!view || e.sender !== view.webContents) return;
    service.notePrintBlocked({ url: e.senderFrame?.url ?? '', via: typeof via === 'string' ? via : 'window.print' });
  };
  ipcMain.on(CHANNELS.examPrint, onPrint);

  // --- staying in front ---------------------------------------------------------------------------------------
  const focus = new FocusTracker();
  let released = false;
  win.on('blur', () => {
    if (!locked || released) return;
    const l = focus.lost(Date.now());
    if (l) service.noteFocusLost({ n: l.n, at: l.at });
    setTimeout(() => { if (!released && !win.isDestroyed()) { win.setAlwaysOnTop(true, 'screen-saver'); win.moveTop(); win.focus(); } }, 50);
  });
  win.on('focus', () => {
    const r = focus.regained(Date.now());
    if (r) service.note('kiosk.focus_regained', { ...r });
  });
  win.on('minimize', () => { if (locked && !released) win.restore(); });
  win.on('leave-full-screen', () => { if (locked && !released) win.setFullScreen(true); });
  win.on('close', (e) => {
    if (!locked || released) return;
    e.preventDefault();
    service.note('kiosk.close_blocked', {});
  });
  win.on('closed', () => {
    if (powerSaveBlocker.isStarted(powerBlock)) powerSaveBlocker.stop(powerBlock);
    ipcMain.off(CHANNELS.examPrint, onPrint);
  });

  return {
    window: win,
    release() {
      released = true;
      win.setClosable(true);
      win.setKiosk(false);
      win.close();
    },
  };
}
