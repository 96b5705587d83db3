/**
 * Real headless Chromium for browser tests: Debian's /usr/bin/chromium driven
 * by playwright-core (nothing is downloaded), and a tiny HTTP server for the
 * test pages, so that a page has a real http:// origin (BroadcastChannel and
 * Web Locks are per origin).
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Without the background-networking flags Chromium keeps trying Google's
 * hosts, which this machine's closed network refuses.
 */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Why Chromium cannot run here, or undefined (for `describeRequiring`). */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface PageServer {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  close(): Promise<void>;
}

/** Serve `html(url)` as text/html for every GET (the URL's path and query pick what the page does). */
export async function servePages(html: (url: URL) => string): Promise<PageServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname === '/favicon.ico') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html(url));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('page server is not listening');
  return {
    origin: `http://127.0.0.1:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Read some state (a page's log, through page.evaluate) every 50 ms until
 * `ok` holds for it, and return it. After `timeoutMs` it fails with `what`
 * and the last state read, so a failure shows what the page had.
 */
export async function eventually<S>(read: () => Promise<S>, ok: (s: S) => boolean, what: string, timeoutMs = 15_000): Promise<S> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await read();
    if (ok(s)) return s;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last state: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
