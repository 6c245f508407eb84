/**
 * Chromium UI test harness: the REAL KioskService (real ExamSession, recorder, ffmpeg, sealing, upload) runs in the
 * test process; a loopback HTTP server serves the built renderer and exposes the bridge (POST /bridge/invoke/<m>,
 * Server-Sent Events for state and previews); web-preload.ts implements `window.kuzet` over it in the page.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import ts from 'typescript';
import { BRIDGE_METHODS, BRIDGE_VERSION, type Lang } from '../../src/shared/bridge.js';
import { ensureHome, type HomeLayout } from '../../src/main/core/home.js';
import { parseExamConfig, parseMachineConfig, type ExamConfig, type MachineConfig } from '../../src/main/core/config.js';
import { KioskService, type KioskOptions } from '../../src/main/kiosk/service.js';
import { startDemoServices } from '../../src/main/kiosk/demo.js';
import { uiDisplay } from './xdisplay.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const RENDERER_OUT = join(ROOT, 'artifacts', 'ui-build');
export const SHOTS = join(ROOT, 'artifacts', 'ui');

/** Builds the renderer once (vite, same config as electron-vite's renderer). */
export async function buildRenderer(): Promise<void> {
  const { build } = await import('vite');
  const react = (await import('@vitejs/plugin-react')).default;
  await build({
    root: join(ROOT, 'src/renderer'), base: './', logLevel: 'warn', configFile: false,
    plugins: [react()], build: { outDir: RENDERER_OUT, emptyOutDir: true },
  });
}

let preloadJs: string | null = null;
export function webPreload(): string {
  preloadJs ??= ts.transpileModule(readFileSync(join(ROOT, 'tests/ui/web-preload.ts'), 'utf8'), {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, removeComments: true },
  }).outputText.replace(/^export \{\};?\s*$/m, '').replace(/__BRIDGE_VERSION__/g, String(BRIDGE_VERSION)).replace(/__BRIDGE_METHODS__/g, JSON.stringify(BRIDGE_METHODS));
  return preloadJs;
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };

export interface Kiosk {
  url: string;
  service: KioskService;
  home: HomeLayout;
  close(): Promise<void>;
}

/** A synthetic lab machine: lavfi cameras, a synthetic screen, small and fast. */
export function testMachine(over: Record<string, unknown> = {}): MachineConfig {
  return parseMachineConfig({
    machine: { id: 'lab-pc-07', lab: 'A-214' },
    sources: {
      face: { kind: 'lavfi', pattern: 'testsrc2', width: 320, height: 240, fps: 10 },
      room: { kind: 'lavfi', pattern: 'smptebars', width: 320, height: 240, fps: 10 },
      screen: { kind: 'lavfi', pattern: 'testsrc', width: 640, height: 360, fps: 5 },
    },
    recording: { segmentSeconds: 2, preset: 'ultrafast', tapFps: 2 },
    detection: { enabled: false },
    ...over,
  });
}

export function testExam(over: Partial<ExamConfig> = {}): ExamConfig {
  return parseExamConfig({ examId: 'MATH-101-final', title: 'Mathematics 101 — final', durationMinutes: 90, url: 'https://moodle.example.kz/mod/quiz/view.php?id=7', ...over });
}

/**
 * A kiosk on a fresh KUZET_HOME. `withServer`: the embedded evidence server (real, on loopback) with this machine
 * enrolled, and the demo exam page as the exam URL — what `npm start` runs.
 */
export async function startKiosk(o: { machine?: MachineConfig; exam?: ExamConfig; lang?: Lang; withServer?: boolean; extra?: Partial<KioskOptions> } = {}): Promise<Kiosk> {
  const homeDir = mkdtempSync(join(tmpdir(), 'kuzet-ui-'));
  const home = ensureHome(homeDir);
  process.env.KUZET_HOME = homeDir;
  process.env.KUZET_MIN_FREE_BYTES ??= String(64 * 1024 * 1024);
  let machine = o.machine ?? testMachine();
  let exam = o.exam ?? testExam();
  const demo = o.withServer ? await startDemoServices(home, 'lab-pc-07') : null;
  if (demo) {
    machine = parseMachineConfig({ ...machine, upload: { ...machine.upload, server: demo.serverUrl } });
    exam = parseExamConfig({ ...exam, url: demo.examUrl });
  }
  // On the UI tests' X display the kiosk UI is Chromium's window: that is "ours" for the foreground monitor (the
  // Electron shell passes its own pids, window title and class the same way).
  const monitors = uiDisplay() ? { ours: { pids: [process.pid], classes: ['chromium'] } } : undefined;
  const service = new KioskService({ machine, exam, demo: true, home, lang: o.lang, ...(monitors ? { monitors } : {}), ...o.extra });
  const clients = new Set<ServerResponse>();
  const send = (event: string, data: unknown) => { const msg = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`; for (const c of clients) c.write(msg); };
  service.on('state', (s) => send('state', s));
  service.on('preview', (f) => send('preview', f));

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/bridge/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(': hello\n\n');
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    const m = /^\/bridge\/invoke\/([A-Za-z]+)$/.exec(url.pathname);
    if (req.method === 'POST' && m) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let args: unknown;
        try { args = JSON.parse(Buffer.concat(chunks).toString('utf8') || '[]'); } catch { args = null; }
        void service.invoke(m[1]!, args).then((r) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(r)); });
      });
      return;
    }
    const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname.slice(1));
    const file = normalize(join(RENDERER_OUT, rel));
    if (!file.startsWith(RENDERER_OUT + sep) || !existsSync(file) || !statSync(file).isFile()) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}/`,
    service,
    home,
    async close() {
      for (const c of clients) c.end();
      await service.close('test-end');
      await demo?.close();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      rmSync(homeDir, { recursive: true, force: true });
    },
  };
}

export function shotPath(name: string): string {
  mkdirSync(SHOTS, { recursive: true });
  return join(SHOTS, `${name}.png`);
}
