import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';

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
});
