import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ENDPOINTS } from '../../src/admin/admin-server.js';
import { CLIENT_FILES } from '../../src/gateway/client-files.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** README.md and every docs/*.md, by name. */
const DOCS = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
  .map((name) => ({ name, text: readFileSync(join(ROOT, name), 'utf8') }));
/**
 * Paths of the public WebSocket port: the gateway takes any path (gateway.test.ts
 * proves it for these), and serves the browser client's files (resume.test.ts).
 */
const WS_PATHS = new Set(['/', '/ws', ...CLIENT_FILES.map((f) => `/${f}`)]);

describe('admin listener', () => {
  let d: TestDaemon;
  let base: string;

  beforeAll(async () => {
    d = await startDaemon({ 'admin.port': 0 });
    base = `http://127.0.0.1:${d.daemon.address.admin!.port}`;
  });
  afterAll(async () => d?.stop());

  it('is a separate listener on loopback', () => {
    expect(d.daemon.address.admin).toMatchObject({ address: '127.0.0.1' });
    expect(d.daemon.address.admin!.port).not.toBe(d.daemon.address.ws.port);
  });

  it('/healthz answers while the process runs', async () => {
    const r = await fetch(`${base}/healthz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: 'ok', connections: 0 });
  });

  it('/readyz checks the store and reports the journal and the poller', async () => {
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: 'ready', store: 'sqlite', journal_queued: 0, poller_lock: expect.any(Boolean) });
  });

  it('refuses other paths and methods', async () => {
    expect((await fetch(`${base}/metrics-nope`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
  });

  it('is not reachable on the public WebSocket port', async () => {
    const r = await fetch(`http://127.0.0.1:${d.daemon.address.ws.port}/healthz`);
    expect(r.status).toBe(426);
  });

  it('serves every HTTP path that README.md or docs/ name, and the docs name every path it serves', async () => {
    // `/x`, `GET /x` and http://host:port/x, one path segment: files such as /usr/include are not endpoints.
    const named = new Map<string, string>();
    for (const { name, text } of DOCS) {
      for (const m of text.matchAll(/`(?:GET |HEAD )?(\/[A-Za-z0-9_.-]*)`|https?:\/\/[^\s/`)]+(\/[A-Za-z0-9_.-]*)/g)) {
        const path = m[1] ?? m[2];
        if (!WS_PATHS.has(path) && !existsSync(path)) named.set(path, name);
      }
    }
    // `/` (the status page) is also a WebSocket path, so docs naming it are not counted here; it is tested below.
    expect([...named.keys()].sort()).toEqual(ADMIN_ENDPOINTS.filter((p) => !WS_PATHS.has(p)).sort());
    for (const [path, doc] of named) {
      expect((await fetch(`${base}${path}`)).status, `${path}, named in ${doc}`).not.toBe(404);
    }
  });
});

