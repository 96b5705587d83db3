import { run, type Run } from '../helpers/run.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { VERSION } from '../../src/version.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { until } from '../helpers/until.js';
import { TestClient } from '../helpers/ws-client.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/tp-ws.js');

/** Run `tp-ws status …` to its end; the state dir is a temp one, so no user file is read. */
function status(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run(process.execPath, [BIN, 'status', ...args], { cwd: ROOT, env: { ...process.env, ...env } });
}

/** A loopback port where nothing listens (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('tp-ws status', () => {
  let d: TestDaemon;
  let base: string;
  let port: number;
  let stateDir: string;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    d = await startDaemon({ 'admin.port': 0 });
    port = d.daemon.address.admin!.port;
    base = `http://127.0.0.1:${port}`;
    stateDir = mkdtempSync(join(tmpdir(), 'tpws-status-cli-'));
    // Ready once the poller has polled and every check passes.
    await until(async () => (await fetch(`${base}/readyz`)).status === 200, 'the daemon to be ready');
    const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId: 1, ttlSec: 3600 });
    clients.push((await TestClient.login(d.url(token))).client);
    d.daemon.publish({ event_type: 'hello', target_type: 'broadcast', payload: {} });
    await clients[0].nextEvent();
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await d?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('prints the table and exits 0 when the daemon is ready', async () => {
    const r = await status(['--url', base]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`tp-ws ${VERSION} at ${base}/status.json: ready`);
    expect(r.stdout).toMatch(/^ {2}connections +1 \(1 users;/m);
    expect(r.stdout).toMatch(/^ {2}events +1 since start: socket 0, table 0, replay 0, api 1, daemon 0$/m);
    expect(r.stdout).toMatch(/^ {2}deliveries +1 since start/m);
    expect(r.stdout).toMatch(/^ {2}latency +p50 [\d.]+ ms, p99 [\d.]+ ms \(1 events in the last minute/m);
    expect(r.stdout).toMatch(/^ {2}poller +polling \(holds the lock\)/m);
    expect(r.stdout).toMatch(/^ {2}journal +queued \d+, written \d+, write errors 0, dropped 0$/m);
    expect(r.stdout).toMatch(/^ {2}readiness +ready \(\d+ checks pass\)$/m);
    expect(r.stdout).toMatch(/^ {2}store +sqlite:/m);
  });

  it('--json prints the daemon\'s status document', async () => {
    const r = await status(['--url', `${base}/status.json`, '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(s).toMatchObject({ version: VERSION, connections: 1, users: 1, events: { api: 1 }, deliveries: 1, ready: { ready: true } });
    expect(r.stdout).toContain('\n  "version"'); // pretty
  });

  it('finds the daemon through the configuration (admin.host, admin.port) without --url', async () => {
    const r = await status(['--admin-port', String(port)], { TPWS_STATE_DIR: stateDir });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`tp-ws ${VERSION} at ${base}/status.json: ready`);
    const env = await status([], { TPWS_STATE_DIR: stateDir, TPWS_ADMIN_HOST: '0.0.0.0', TPWS_ADMIN_PORT: String(port) });
    expect(env.code).toBe(0);
    expect(env.stdout.split('\n')[0]).toBe(`tp-ws ${VERSION} at ${base}/status.json: ready`);
  });

  it('exits 2 with TPWS_ERR_CONNECT naming the URL when nothing listens', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/status.json`;
    const r = await status(['--url', url]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^TPWS_ERR_CONNECT: /);
    expect(r.stderr).toContain(url);
    expect(r.stderr).toContain('Is the daemon running?');
    expect(r.stderr).toContain('admin.port');
  });

  it('exits 2 when the admin listener is disabled or the URL is not http', async () => {
    const off = await status(['--admin-port', '-1'], { TPWS_STATE_DIR: stateDir });
    expect(off.code).toBe(2);
    expect(off.stderr).toMatch(/^TPWS_ERR_CONNECT: .*admin\.port is -1/);
    const ws = await status(['--url', `ws://127.0.0.1:${d.daemon.address.ws.port}/ws`]);
    expect(ws.code).toBe(2);
    expect(ws.stderr).toMatch(/^TPWS_ERR_CONFIG_INVALID: in --url: /);
  });

  it('exits 2 when the URL answers but is not a tp-ws admin listener', async () => {
    const r = await status(['--url', `${base}/nothing-here.json`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^TPWS_ERR_CONNECT: cannot read .*nothing-here\.json: 404/);
  });

  // Last: it breaks the daemon's ingest socket.
  it('exits 1 and names the failing check when the daemon runs but is not ready', async () => {
    rmSync(d.daemon.ingest!.path); // the socket file gone (a tmp cleaner, a second daemon's start…)
    const r = await status(['--url', base]);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')[0]).toBe(`tp-ws ${VERSION} at ${base}/status.json: NOT READY`);
    expect(r.stdout).toMatch(/^ {2}readiness +NOT READY: 1 of \d+ checks fail$/m);
    expect(r.stdout).toMatch(/^ {2}\s+FAIL ingest: .*ENOENT/m);
    const json = await status(['--url', base, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ready: { ready: false } });
  });
});
