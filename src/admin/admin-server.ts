import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listen } from '../listen.js';

/** What the admin listener serves; the daemon provides each part. */
export interface AdminSources {
  /** Liveness facts (cheap, no I/O). */
  health(): Record<string, unknown>;
  /** Readiness, bounded in time: `ready` decides 200 or 503; the rest is the body. */
  ready(): Promise<{ ready: boolean } & Record<string, unknown>>;
  /** Prometheus exposition. */
  metrics(): Promise<{ body: string; contentType: string }>;
  /** The snapshot the status page and `tp-ws status` read. */
  status(): Promise<Record<string, unknown>>;
  /** The last WebSocket upgrades (peer, client address, header used; never a token). */
  upgrades(): readonly unknown[];
  /** The status page, a complete HTML document. */
  page(): string;
  /** Its Content-Security-Policy header. */
  pageCsp(): string;
}

/** The paths the admin listener serves (docs name no other; test/integration/admin.test.ts holds them to it). */
export const ADMIN_ENDPOINTS = ['/', '/healthz', '/readyz', '/metrics', '/status.json', '/upgrades'] as const;

/**
 * The admin listener, separate from the public WebSocket port and on
 * loopback by default (docs/operations.md): the status page at `/`,
 * `/healthz` (the process answers), `/readyz` (every readiness check passes,
 * answered within about a second whatever hangs), `/metrics` (Prometheus),
 * `/status.json` and `/upgrades`. Anything else is 404.
 */
export class AdminServer {
  private readonly server: Server;

  constructor(private readonly source: AdminSources) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'method not allowed' });
      switch (path) {
        case '/':
          res.writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            // The page loads nothing but itself and /status.json (hashes of its inline style and script).
            'content-security-policy': this.source.pageCsp(),
            'x-content-type-options': 'nosniff',
          });
          res.end(this.source.page());
          return;
        case '/healthz':
          return json(res, 200, { status: 'ok', ...this.source.health() });
        case '/readyz':
          return void this.respond(res, async () => {
            const r = await this.source.ready();
            return [r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not ready', ...r }];
          });
        case '/metrics':
          return void this.respond(res, async () => {
            const m = await this.source.metrics();
            res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
            res.end(m.body);
            return null;
          });
        case '/status.json':
          return void this.respond(res, async () => [200, await this.source.status()]);
        case '/upgrades':
          return json(res, 200, { upgrades: this.source.upgrades() });
        default:
          return json(res, 404, { error: 'not found', endpoints: ADMIN_ENDPOINTS });
      }
    });
  }

  /** Run a handler; one that throws answers 500 with the message, never crashes the daemon. */
  private async respond(res: ServerResponse, handler: () => Promise<[number, unknown] | null>): Promise<void> {
    try {
      const r = await handler();
      if (r !== null) json(res, r[0], r[1]);
    } catch (err) {
      if (!res.headersSent) json(res, 500, { error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    }
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await listen(this.server, { host, port, setting: 'admin.port', flag: '--admin-port' });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body) + '\n');
}
