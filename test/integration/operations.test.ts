/**
 * The admin listener's operator endpoints on a real daemon: /metrics parsed
 * by a Prometheus text-format parser with counters that move as events flow,
 * /status.json, /readyz with its checks and canary, /upgrades, and the
 * configuration reload.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// No types ship with it; it returns the families of the exposition text.
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { mintJwt } from '../../src/auth/jwt.js';
import { loadConfig } from '../../src/config/load.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';
import { until } from '../helpers/until.js';

interface Family { name: string; type: string; metrics: { value?: string; labels?: Record<string, string>; count?: string; buckets?: Record<string, string> }[] }

describe('admin listener: metrics, status, readiness', () => {
  let d: TestDaemon;
  let base: string;
  const clients: TestClient[] = [];
  const token = (userId: number) => mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId, ttlSec: 3600 });
  const scrape = async (): Promise<Map<string, Family>> => {
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parsePrometheusTextFormat(await r.text()) as Family[];
    return new Map(families.map((f) => [f.name, f]));
  };
  const value = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}): number => {
    const f = m.get(name);
    if (f === undefined) throw new Error(`no metric ${name}`);
    const row = f.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
    return row === undefined ? 0 : Number(row.value ?? row.count);
  };
  /** Observations of a histogram, all label sets together (the parser keeps only the buckets of a histogram). */
  const observations = (m: Map<string, Family>, name: string): number =>
    (m.get(name)?.metrics ?? []).reduce((n, x) => n + Number(x.buckets?.['+Inf'] ?? 0), 0);

  beforeAll(async () => {
    d = await startDaemon({ 'admin.port': 0, 'poller.idleIntervalMs': 20 }, { readiness: { canaryIntervalMs: 100, canaryTimeoutMs: 2000 } });
    base = `http://127.0.0.1:${d.daemon.address.admin!.port}`;
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await d?.stop();
  });

  it('/metrics: connections, events by source, deliveries and the latency histogram move as events flow', async () => {
    const before = await scrape();
    expect(before.get('tpws_connections')?.type).toBe('GAUGE');
    expect(before.get('tpws_events_total')?.type).toBe('COUNTER');
    expect(before.get('tpws_event_latency_seconds')?.type).toBe('HISTOGRAM');
    expect(before.has('tpws_process_resident_memory_bytes')).toBe(true);
    expect(before.has('tpws_nodejs_eventloop_lag_seconds')).toBe(true);
    const a = await TestClient.login(d.url(await token(1)));
    const b = await TestClient.login(d.url(await token(2)));
    clients.push(a.client, b.client);
    for (let i = 0; i < 3; i++) d.daemon.publish({ event_type: 'hello', target_type: 'broadcast', payload: { i } });
    await a.client.nextEvent();
    const after = await scrape();
    expect(value(after, 'tpws_connections')).toBe(value(before, 'tpws_connections') + 2);
    expect(value(after, 'tpws_events_total', { source: 'api' })).toBe(value(before, 'tpws_events_total', { source: 'api' }) + 3);
    expect(value(after, 'tpws_deliveries_total')).toBe(value(before, 'tpws_deliveries_total') + 6);
    expect(observations(after, 'tpws_event_latency_seconds')).toBe(observations(before, 'tpws_event_latency_seconds') + 3);
    expect(observations(after, 'tpws_fanout_seconds')).toBe(observations(before, 'tpws_fanout_seconds') + 3);
  });

  it('/metrics: refused logins and daemon closes are counted by reason and code', async () => {
    const before = await scrape();
    const bad = new TestClient(d.url('not-a-token'));
    clients.push(bad);
    expect((await bad.next()).error_code).toBe('auth_failed');
    const after = await scrape();
    expect(value(after, 'tpws_auth_failures_total', { reason: 'invalid_token' })).toBe(value(before, 'tpws_auth_failures_total', { reason: 'invalid_token' }) + 1);
  });

  it('/metrics: ingest results by code', async () => {
    const before = await scrape();
    const sock = connect(d.daemon.ingest!.path);
    const acks: string[] = [];
    sock.on('data', (b) => acks.push(...b.toString().split('\n').filter(Boolean)));
    sock.write('{"event_type":"hello","target_type":"broadcast"}\n{not json\n{"event_type":"x","target_type":"nowhere"}\n');
    await until(() => acks.length === 3, 'three acks');
    sock.destroy();
    const after = await scrape();
    for (const [result, n] of [['ok', 1], ['TPWS_ERR_BAD_FRAME', 1], ['TPWS_ERR_INVALID_EVENT', 1]] as const) {
      expect(value(after, 'tpws_ingest_acks_total', { result }), result).toBe(value(before, 'tpws_ingest_acks_total', { result }) + n);
    }
  });

  it('/status.json: numbers, config source, readiness and history', async () => {
    d.daemon.status.sample();
    const r = await fetch(`${base}/status.json`);
    expect(r.status).toBe(200);
    const s = await r.json();
    expect(s).toMatchObject({
      version: expect.any(String),
      connections: expect.any(Number),
      events: { socket: expect.any(Number), table: expect.any(Number), replay: expect.any(Number), api: expect.any(Number), daemon: expect.any(Number) },
      config: { store_kind: 'sqlite', file: null, teampass_root: null, ingest_socket: expect.any(String) },
      poller: { enabled: true },
      journal: { queued: expect.any(Number), dropped: 0 },
      ready: { ready: expect.any(Boolean), checks: expect.any(Array) },
    });
    expect(s.events.api).toBeGreaterThanOrEqual(3);
    expect(s.latency_ms.count).toBeGreaterThanOrEqual(3);
    expect(s.history.length).toBeGreaterThanOrEqual(1);
    expect(s.history.at(-1)).toMatchObject({ t: expect.any(Number), api: expect.any(Number), connections: expect.any(Number) });
    expect(JSON.stringify(s)).not.toMatch(/token/i);
  });

  it('/readyz: every check passes once a canary came back through the events table, never fanned out', async () => {
    const watcher = await TestClient.login(d.url(await token(3)));
    clients.push(watcher.client);
    await until(() => d.daemon.pipeline.counters.canaries >= 2, 'canaries through the poller');
    const r = await fetch(`${base}/readyz`);
    const body = await r.json();
    expect(r.status, JSON.stringify(body)).toBe(200);
    expect(body.checks.map((c: { name: string }) => c.name).sort()).toEqual(['canary', 'event_loop', 'ingest', 'poller', 'store']);
    expect(body.checks.find((c: { name: string }) => c.name === 'canary').detail).toMatch(/round trip/);
    d.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
    expect((await watcher.client.nextEvent()).event).toBe('barrier');
  });

  it('/readyz: not ready when the ingest socket stops accepting, ready again when it is back', async () => {
    await d.daemon.ingest!.close();
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect((await r.json()).checks.find((c: { name: string }) => c.name === 'ingest')).toMatchObject({ ok: false });
    await d.daemon.ingest!.listen();
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('/upgrades: the client address the daemon took and the doctor probe marker, never the token', async () => {
    const c = new TestClient(`${d.url()}?token=secret-token-value&tpws_probe=abc123`, { headers: { Origin: 'https://x.example' } });
    clients.push(c);
    await c.next();
    const u = await (await fetch(`${base}/upgrades`)).json();
    const mine = u.upgrades.find((x: { probe: string | null }) => x.probe === 'abc123');
    expect(mine).toMatchObject({ peer: expect.stringMatching(/127\.0\.0\.1/), ip: '127.0.0.1', forwarded: null, path: '/ws', origin: true });
    expect(JSON.stringify(u)).not.toContain('secret-token-value');
  });

  it('/: the status page, with a policy that loads nothing from elsewhere', async () => {
    const r = await fetch(`${base}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    expect(r.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(r.headers.get('content-security-policy')).not.toMatch(/unsafe-inline/);
    expect(await r.text()).toMatch(/<html/i);
  });
});

describe('configuration reload', () => {
  it('applies live keys at once and lists the keys that need a restart', async () => {
    const d = await startDaemon({ 'limits.maxConnectionsPerUser': 5 });
    try {
      const next = loadConfig({ env: { ...envOf(d), TPWS_MAX_CONNECTIONS_PER_USER: '1', TPWS_LOG_LEVEL: 'warn', TPWS_DEDUP_WINDOW_SIZE: '10' } });
      const r = d.daemon.reload(next);
      expect(r.applied.sort()).toEqual(['limits.maxConnectionsPerUser', 'log.level']);
      expect(r.restartNeeded).toEqual(['dedup.windowSize']);
      expect(d.daemon.config.limits.maxConnectionsPerUser).toBe(1);
      expect(d.daemon.config.dedup.windowSize).toBe(100_000);
      const jwt = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId: 9, ttlSec: 3600 });
      const first = await TestClient.login(d.url(jwt));
      const second = new TestClient(d.url(jwt), { headers: { Origin: 'https://x.example' } });
      const third = new TestClient(d.url(jwt), { headers: { Origin: 'https://x.example' } });
      expect((await second.next()).type).toBe('connected');
      expect((await third.next()).error_code).toBe('max_connections');
      for (const c of [first.client, second, third]) c.ws.terminate();
    } finally {
      await d.stop();
    }
  });
});

/** The environment a test daemon was started with, rebuilt from its config (for a reload with changes). */
function envOf(d: TestDaemon): Record<string, string> {
  return { TPWS_STATE_DIR: d.stateDir, TPWS_PORT: '0', TPWS_ADMIN_PORT: '-1', TPWS_SOCKET: d.daemon.config.ingest.socket, TPWS_LOG_LEVEL: 'debug', TPWS_MAX_CONNECTIONS_PER_USER: '5' };
}
