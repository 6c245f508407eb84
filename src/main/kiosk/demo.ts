/**
 * Demo mode for the kiosk (`npm start`, and the UI tests): an embedded evidence server on loopback with this
 * machine enrolled, and a small demo exam page to lock. Everything real — only the cameras are synthetic.
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { HomeLayout } from '../core/home.js';
import { loadOrCreateKeyPair } from '../core/keys.js';

export interface DemoServices {
  /** The evidence server (this machine is enrolled with it). */
  serverUrl: string;
  /** The demo exam page (put it in the exam config's `url`). */
  examUrl: string;
  close(): Promise<void>;
}

const DEMO_PAGE = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo exam</title>
<style>body{font:18px/1.5 "DejaVu Sans",sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#17202b}
fieldset{border:1px solid #ccd;border-radius:8px;margin:1rem 0;padding:1rem}button{font:inherit;padding:.5em 1.2em}</style></head>
<body><h1>Demo exam · Демо емтихан · Демо-экзамен</h1>
<p>This page stands in for Platonus or Moodle. Try to leave it: the link, a new window and the keys below are blocked and logged.</p>
<form id="quiz"><fieldset><legend>1. 7 × 8 = ?</legend>
<label><input type="radio" name="q1" value="54"> 54</label> <label><input type="radio" name="q1" value="56"> 56</label>
<label><input type="radio" name="q1" value="58"> 58</label></fieldset>
<fieldset><legend>2. Қазақстанның астанасы? / Столица Казахстана? / Capital of Kazakhstan?</legend>
<input name="q2" autocomplete="off"></fieldset><button type="submit">Save answers</button> <span id="saved"></span></form>
<p><a id="off" href="https://example.com/">An off-list link (blocked)</a> ·
<a id="popup" href="https://example.org/" target="_blank">A new window (blocked)</a></p>
<script>document.getElementById('quiz').addEventListener('submit',function(e){e.preventDefault();document.getElementById('saved').textContent='✓ saved';});</script>
</body></html>`;

/** A loopback site with the demo exam page at `/exam`. */
export async function startDemoExamSite(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/exam' || req.url === '/exam/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(DEMO_PAGE);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/exam`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/**
 * Starts the embedded evidence server under `<home>/demo-server` and enrols this machine's device key with it
 * (a one-time token made on the spot), plus the demo exam site.
 */
export async function startDemoServices(home: HomeLayout, machineId = `demo-${hostname()}`): Promise<DemoServices> {
  const { startServer, createEnrolToken } = await import('../server/app.js');
  const { ServerClient, saveEnrolment } = await import('../upload/client.js');
  const server = await startServer({ dataDir: join(home.root, 'demo-server'), host: '127.0.0.1', port: 0 });
  try {
    const { token } = createEnrolToken(server.db, { hours: 1, by: 'kuzet-demo', machineId });
    const enrolment = await new ServerClient(server.url, loadOrCreateKeyPair(home.keys)).enroll(token, machineId);
    saveEnrolment(home, enrolment);
  } catch (e) {
    await server.close();
    throw e;
  }
  const site = await startDemoExamSite();
  return {
    serverUrl: server.url,
    examUrl: site.url,
    async close() {
      await site.close();
      await server.close();
    },
  };
}
