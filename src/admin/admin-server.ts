import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listen } from '../listen.js';

export interface HealthSource {
  /** Liveness facts (cheap, no I/O). */
  health(): Record<string, unknown>;
  /** Readiness: resolves with details, rejects with the reason the daemon is not ready. */
  ready(): Promise<Record<string, unknown>>;
}

/** The paths the admin listener serves (docs name no other; test/integration/admin.test.ts holds them to it). */
export const ADMIN_ENDPOINTS = ['/healthz', '/readyz'] as const;

/**
 * The admin listener, separate from the public WebSocket port and on
 * loopback by default: `/healthz` (the process answers) and `/readyz` (the
 * store answers). Anything else is 404.
 */
export class AdminServer {
  private readonly server: Server;

  constructor(private readonly source: HealthSource) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(body) + '\n');
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'method not allowed' });
      if (path === '/healthz') return send(200, { status: 'ok', ...this.source.health() });
      if (path === '/readyz') {
        this.source.ready().then(
          (details) => send(200, { status: 'ready', ...details }),
          (err: unknown) => send(503, { status: 'not ready', reason: err instanceof Error ? err.message : String(err) }),
        );
        return;
      }
      send(404, { error: 'not found', endpoints: ADMIN_ENDPOINTS });
    });
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
