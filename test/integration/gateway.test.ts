import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { mintJwt } from '../../src/auth/jwt.js';
import { describeStores } from '../helpers/stores.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';
import { FIX, seedFixture, type Fixture } from '../helpers/fixture.js';
import { openSeeder } from '../helpers/seed.js';
import { until } from '../helpers/until.js';

/** Expect the TeamPass refusal: one connection-level error, then close 1000 with an empty reason. */
async function expectRefused(url: string, errorCode: string, headers?: Record<string, string>): Promise<void> {
  const c = new TestClient(url, { headers });
  const msg = await c.next();
  expect(msg).toEqual({ type: 'error', error_code: errorCode, message: expect.any(String) });
  expect(msg).not.toHaveProperty('request_id');
  expect(await c.closed).toEqual({ code: 1000, reason: '' });
}

describeStores('gateway (TeamPass dialect)', ({ newStoreUrl }) => {
  let d: TestDaemon;
  let fx: Fixture;
  const clients: TestClient[] = [];
  const login = async (token: string, path?: string) => {
    const r = await TestClient.login(d.url(token, path));
    clients.push(r.client);
    return r;
  };
  const jwt = (claims: { userId: number; login?: string; admin?: boolean; folders?: number[]; ttlSec?: number }) =>
    mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { ttlSec: 3600, ...claims });

  beforeAll(async () => {
    const url = await newStoreUrl();
    d = await startDaemon({ 'store.url': url, 'limits.rateLimitMessages': 1000 });
    fx = await seedFixture(url, 'teampass_');
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await d?.stop();
  });

  describe('authentication', () => {
    it('accepts a TeamPass token and answers `connected` with the TeamPass fields, in order, then the position', async () => {
      const { connected } = await login(FIX.tokens.alice);
      expect(Object.keys(connected)).toEqual(['type', 'user_id', 'user_login', 'user_display_name', 'server_time', 'config', 'reconnect_token', 'epoch', 'seq']);
      expect(connected).toMatchObject({ epoch: d.daemon.pipeline.epoch, seq: expect.any(Number) });
      expect(connected).toMatchObject({ type: 'connected', user_id: FIX.users.alice, user_login: 'alice', user_display_name: 'Alice Martin', config: { ping_interval: 30 } });
      expect(Math.abs(connected.server_time - Date.now() / 1000)).toBeLessThan(5);
      expect(connected.reconnect_token).toMatch(/^[a-f0-9]{64}$/);
    });

    it('issues a new reconnect token per connection, and the reconnect token authenticates', async () => {
      const a = await login(FIX.tokens.alice);
      const b = await login(FIX.tokens.alice);
      expect(a.connected.reconnect_token).not.toBe(b.connected.reconnect_token);
      const again = await login(a.connected.reconnect_token);
      expect(again.connected.user_id).toBe(FIX.users.alice);
      await Promise.all([a, b, again].map((x) => x.client.close()));
    });

    it('accepts upgrades on any path', async () => {
      for (const path of ['/', '/ws/', '/some/where']) {
        const { client, connected } = await login(FIX.tokens.bob, path);
        expect(connected.user_login).toBe('bob');
        await client.close();
      }
    });

    it('falls back to the login when the user has no name', async () => {
      const { client, connected } = await login(FIX.tokens.carol);
      expect(connected.user_display_name).toBe('carol');
      await client.close();
    });

    it.each([
      ['no token', undefined],
      ['an empty token', ''],
      ['a token of the wrong shape', 'not-a-token'],
      ['an unknown token', 'f'.repeat(64)],
      ['upper-case hex', FIX.tokens.alice.toUpperCase()],
      ['an expired token', FIX.tokens.expired],
      ['a disabled user\'s token', FIX.tokens.disabled],
      ['a JWT with a bad signature', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl'],
    ])('refuses %s with auth_failed and close 1000', async (_name, token) => {
      await expectRefused(d.url(token), 'auth_failed');
    });

    it('refuses an expired JWT', async () => {
      const token = await jwt({ userId: 50, ttlSec: -10 });
      await expectRefused(d.url(token), 'auth_failed');
    });

    it('accepts a JWT: identity from claims, no reconnect token', async () => {
      const token = await jwt({ userId: 50, login: 'api-user', folders: [10, 77] });
      const { client, connected } = await login(token);
      expect(connected).toMatchObject({ type: 'connected', user_id: 50, user_login: 'api-user', user_display_name: 'api-user' });
      expect(connected).not.toHaveProperty('reconnect_token');
      expect((await client.request({ action: 'get_status' })).auth_method).toBe('jwt');
      expect((await client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 77 } })).action).toBe('subscribed');
      expect((await client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 12 } })).error_code).toBe('forbidden');
      await client.close();
    });

    it('closes a JWT socket with 4103 when its exp passes', async () => {
      const token = await jwt({ userId: 51, ttlSec: 2 });
      const { client } = await login(token);
      expect(await client.closed).toEqual({ code: 4103, reason: 'token expired: reconnect with a new token' });
    });

    it('refuses a sixth socket of the same user with max_connections', async () => {
      const five = await Promise.all(Array.from({ length: 5 }, () => login(FIX.tokens.dave)));
      await expectRefused(d.url(FIX.tokens.dave), 'max_connections');
      await five[0].client.close();
      const again = await login(FIX.tokens.dave);
      expect(again.connected.user_login).toBe('dave');
      await Promise.all([...five.slice(1), again].map((x) => x.client.close()));
    });

    it('limits failed authentications per client IP behind a trusted proxy', async () => {
      const xff = { 'X-Forwarded-For': '198.51.100.23' };
      for (let i = 0; i < 10; i++) await expectRefused(d.url('0'.repeat(64)), 'auth_failed', xff);
      await expectRefused(d.url(FIX.tokens.alice), 'rate_limited', xff);
      // Another client address behind the same proxy is not affected.
      const other = new TestClient(d.url(FIX.tokens.alice), { headers: { 'X-Forwarded-For': '198.51.100.24' } });
      clients.push(other);
      expect((await other.next()).type).toBe('connected');
      await other.close();
    });

    it('takes the client IP from X-Real-IP when a trusted proxy sends no X-Forwarded-For', async () => {
      const real = { 'X-Real-IP': '198.51.100.33' };
      for (let i = 0; i < 10; i++) await expectRefused(d.url('0'.repeat(64)), 'auth_failed', real);
      await expectRefused(d.url(FIX.tokens.alice), 'rate_limited', real);
      const other = new TestClient(d.url(FIX.tokens.alice), { headers: { 'X-Real-IP': '198.51.100.34' } });
      clients.push(other);
      expect((await other.next()).type).toBe('connected');
      await other.close();
    });

    it('warns once, with the line to add, when a trusted proxy forwards no client address', async () => {
      const warnings = () => d.logs.filter((l) => String(l.msg).startsWith('trusted proxy forwarded no client address'));
      const before = d.daemon.gateway.counters.unforwardedConnections;
      // TeamPass's admin probe and local tools connect straight to the port, without Origin: no warning.
      await expectRefused(d.url('1'.repeat(64)), 'auth_failed');
      expect(warnings()).toHaveLength(0);
      // A browser behind a proxy that forwards nothing: Origin, no X-Forwarded-For / X-Real-IP.
      const browser = { Origin: 'https://teampass.example' };
      for (let i = 0; i < 12; i++) await expectRefused(d.url('2'.repeat(64)), 'auth_failed', browser);
      const ok = new TestClient(d.url(FIX.tokens.alice), { headers: browser });
      clients.push(ok);
      expect((await ok.next()).type).toBe('connected');
      await ok.close();
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatchObject({ level: 'warn', proxy: '127.0.0.1', fix_nginx: 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;' });
      expect(d.daemon.gateway.counters.unforwardedConnections - before).toBe(14);
    });

    it('holds messages sent before the verdict and answers them after `connected`', async () => {
      const c = new TestClient(d.url(FIX.tokens.alice));
      clients.push(c);
      await c.opened;
      c.send({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 }, request_id: 'early' });
      const first = await c.next();
      expect(first.type).toBe('connected');
      expect(await c.next()).toMatchObject({ type: 'response', action: 'subscribed', request_id: 'early' });
      await c.close();
    });
  });

  describe('actions', () => {
    let alice: TestClient;
    let admin: TestClient;

    beforeAll(async () => {
      alice = (await login(FIX.tokens.alice)).client;
      admin = (await login(FIX.tokens.admin)).client;
    });

    it('ping → pong with timestamp and request_id', async () => {
      const r = await alice.request({ action: 'ping' });
      expect(Object.keys(r).sort()).toEqual(['request_id', 'timestamp', 'type']);
      expect(r.type).toBe('pong');
    });

    it('pong gets no reply', async () => {
      alice.send({ action: 'pong' });
      const r = await alice.request({ action: 'ping' });
      expect(r.type).toBe('pong');
      expect(alice.received.filter((m) => m.type !== 'ping')).toEqual([]);
    });

    it('subscribe folder: accessible folder, with the fresh locks of other users', async () => {
      const r = await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } });
      expect(r).toEqual({
        type: 'response', status: 'success', action: 'subscribed', channel: 'folder', folder_id: 10,
        locked_items: [{ item_id: fx.items.lockedByBob, user_login: 'bob', user_display_name: 'Bob' }],
        viewing_items: [], request_id: r.request_id,
      });
    });

    it('subscribe folder: a role folder is accessible, and ids are cast like PHP', async () => {
      const r = await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: '12abc' } });
      expect(r).toMatchObject({ action: 'subscribed', folder_id: 12, locked_items: [] });
    });

    it('subscribe folder: refused outside the accessible folders', async () => {
      const r = await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 99 } });
      expect(r).toEqual({ type: 'error', error_code: 'forbidden', message: 'Access denied to this folder', request_id: r.request_id });
    });

    it('subscribe folder: admins may subscribe to any folder', async () => {
      const r = await admin.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 99 } });
      expect(r).toMatchObject({ action: 'subscribed', folder_id: 99 });
    });

    it('subscribe kb: allowed for users when enable_kb = 1, with locks of others', async () => {
      const r = await alice.request({ action: 'subscribe', channel: 'kb', data: {} });
      expect(r).toEqual({
        type: 'response', status: 'success', action: 'subscribed', channel: 'kb',
        locked_kbs: [{ kb_id: fx.kb.lockedByBob, user_login: 'bob', user_display_name: 'Bob' }],
        viewing_kbs: [], request_id: r.request_id,
      });
    });

    it('subscribe kb: refused for admins (TeamPass rule)', async () => {
      const r = await admin.request({ action: 'subscribe', channel: 'kb' });
      expect(r).toMatchObject({ type: 'error', error_code: 'forbidden', message: 'Access denied to knowledge base' });
    });

    it('subscribe: channel required, unsupported channel named', async () => {
      expect(await alice.request({ action: 'subscribe' })).toMatchObject({ error_code: 'invalid_request', message: 'Channel is required' });
      expect(await alice.request({ action: 'subscribe', channel: 'room' })).toMatchObject({ error_code: 'invalid_channel', message: "Channel 'room' is not supported" });
    });

    it('subscribe folder: folder_id required (invalid_request, as TeamPass), for admins too', async () => {
      for (const c of [alice, admin]) {
        for (const data of [undefined, {}, { folder_id: null }]) {
          expect(await c.request({ action: 'subscribe', channel: 'folder', data })).toMatchObject({ type: 'error', error_code: 'invalid_request', message: 'folder_id is required' });
        }
      }
    });

    it('get_status lists subscriptions', async () => {
      const r = await alice.request({ action: 'get_status' });
      expect(r).toEqual({
        type: 'status', connected: true, user_id: FIX.users.alice, user_login: 'alice', user_display_name: 'Alice Martin',
        auth_method: 'ws_token', subscriptions: ['folder:10', 'folder:12', 'kb:0'],
        connected_at: expect.any(Number), server_time: expect.any(Number), request_id: r.request_id,
      });
    });

    it('unsubscribe folder and kb; folder_id required; unknown channel', async () => {
      expect(await alice.request({ action: 'unsubscribe', channel: 'folder', data: {} })).toMatchObject({ error_code: 'invalid_request', message: 'folder_id is required' });
      const r = await alice.request({ action: 'unsubscribe', channel: 'folder', data: { folder_id: 12 } });
      expect(r).toEqual({ type: 'response', status: 'success', action: 'unsubscribed', channel: 'folder', folder_id: 12, request_id: r.request_id });
      const k = await alice.request({ action: 'unsubscribe', channel: 'kb' });
      expect(k).toEqual({ type: 'response', status: 'success', action: 'unsubscribed', channel: 'kb', request_id: k.request_id });
      expect(await alice.request({ action: 'unsubscribe' })).toMatchObject({ error_code: 'invalid_channel', message: "Channel '' is not supported" });
      expect((await alice.request({ action: 'get_status' })).subscriptions).toEqual(['folder:10']);
    });

    it('get_stats: admins only, answered without a request_id (the PHP admin probe)', async () => {
      expect(await alice.request({ action: 'get_stats' })).toMatchObject({ type: 'error', error_code: 'forbidden', message: 'Admin access required' });
      admin.send({ action: 'get_stats' });
      const s = await admin.next((m) => m.type === 'stats');
      expect(s).toEqual({
        type: 'stats', server_time: expect.any(Number), request_id: null,
        stats: { total_connections: expect.any(Number), unique_users: expect.any(Number), folder_subscriptions: expect.any(Number), kb_subscriptions: expect.any(Number) },
      });
      expect(s.stats.total_connections).toBeGreaterThanOrEqual(2);
    });

    it('unknown action → unknown_action with request_id', async () => {
      const r = await alice.request({ action: 'fly' });
      expect(r).toEqual({ type: 'error', error_code: 'unknown_action', message: "Action 'fly' is not recognized", request_id: r.request_id });
      alice.send({ request_id: 'noaction' });
      expect(await alice.next((m) => m.request_id === 'noaction')).toMatchObject({ error_code: 'unknown_action', message: "Action '' is not recognized" });
    });
  });

  describe('routing', () => {
    let alice: TestClient, alice2: TestClient, bob: TestClient, admin: TestClient;

    beforeAll(async () => {
      [alice, alice2, bob, admin] = (await Promise.all([FIX.tokens.alice, FIX.tokens.alice, FIX.tokens.bob, FIX.tokens.admin].map((t) => login(t)))).map((r) => r.client);
      for (const c of [alice, bob, admin]) await c.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } });
      await alice.request({ action: 'subscribe', channel: 'kb' });
      await bob.request({ action: 'subscribe', channel: 'kb' });
    });

    /** Publish, then a broadcast barrier: whatever a client got before the barrier is what the first event did to it. */
    async function deliveredTo(input: Record<string, unknown>): Promise<string[]> {
      const { id } = d.daemon.publish(input);
      const barrier = d.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
      const named: [string, TestClient][] = [['alice', alice], ['alice2', alice2], ['bob', bob], ['admin', admin]];
      const got: string[] = [];
      for (const [name, c] of named) {
        const first = await c.nextEvent();
        if (first.id === id) {
          got.push(name);
          expect((await c.nextEvent()).id).toBe(barrier.id);
        } else expect(first.id).toBe(barrier.id);
      }
      return got;
    }

    it('user → every socket of that user, exclude_user_id not applied', async () => {
      expect(await deliveredTo({ event_type: 'task_completed', target_type: 'user', target_id: FIX.users.alice, exclude_user_id: FIX.users.alice })).toEqual(['alice', 'alice2']);
    });

    it('folder → current subscribers minus exclude_user_id', async () => {
      expect(await deliveredTo({ event_type: 'item_updated', target_type: 'folder', target_id: 10 })).toEqual(['alice', 'bob', 'admin']);
      expect(await deliveredTo({ event_type: 'item_updated', target_type: 'folder', target_id: 10, exclude_user_id: FIX.users.bob })).toEqual(['alice', 'admin']);
      expect(await deliveredTo({ event_type: 'item_updated', target_type: 'folder', target_id: 11 })).toEqual([]);
    });

    it('kb → KB subscribers minus exclude_user_id', async () => {
      expect(await deliveredTo({ event_type: 'kb_updated', target_type: 'kb' })).toEqual(['alice', 'bob']);
      expect(await deliveredTo({ event_type: 'kb_updated', target_type: 'kb', payload: { exclude_user_id: FIX.users.alice } })).toEqual(['bob']);
    });

    it('broadcast → everyone minus exclude_user_id', async () => {
      expect(await deliveredTo({ event_type: 'fields_updated', target_type: 'broadcast' })).toEqual(['alice', 'alice2', 'bob', 'admin']);
      expect(await deliveredTo({ event_type: 'fields_updated', target_type: 'broadcast', exclude_user_id: FIX.users.alice })).toEqual(['bob', 'admin']);
    });

    it('event messages keep TeamPass fields and add id, seq and epoch', async () => {
      const r = d.daemon.publish({ event_type: 'item_created', target_type: 'user', target_id: FIX.users.bob, payload: { item_id: 5, label: 'x/é' }, created_at: 1_763_769_600_123 });
      const m = await bob.nextEvent();
      expect(m).toEqual({ type: 'event', event: 'item_created', data: { item_id: 5, label: 'x/é' }, timestamp: 1_763_769_600, id: r.id, seq: r.seq, epoch: d.daemon.pipeline.epoch });
      const r2 = d.daemon.publish({ event_type: 'item_created', target_type: 'user', target_id: FIX.users.bob });
      expect((await bob.nextEvent()).seq).toBe(r.seq + 1);
      expect(r2.seq).toBe(r.seq + 1);
    });
  });
});

describeStores('reconnect after the opening token expired', ({ newStoreUrl }) => {
  let d: TestDaemon;
  let url: string;

  beforeAll(async () => {
    url = await newStoreUrl();
    d = await startDaemon({ 'store.url': url }, { tokenRefreshIntervalMs: 100 });
    await seedFixture(url, 'teampass_');
  });
  afterAll(async () => d?.stop());

  it('keeps the reconnect token of an open socket valid, so the client reconnects after a drop', async () => {
    const { client, connected } = await TestClient.login(d.url(FIX.tokens.alice));
    const reconnect = connected.reconnect_token as string;
    const sql = await openSeeder(url, 'teampass_');
    try {
      // An hour later in TeamPass terms: both the page token and the reconnect token have expired.
      await sql.execSql(`UPDATE {{prefix}}websocket_tokens SET expires_at = ${sql.timeSql(-5)} WHERE user_id = ?`, [FIX.users.alice]);
      await expectRefused(d.url(FIX.tokens.alice), 'auth_failed');
      // The daemon pushes the open socket's reconnect token forward again.
      const valid = async () => (await sql.execSql(`SELECT token FROM {{prefix}}websocket_tokens WHERE token = ? AND expires_at > ${sql.timeSql(0)}`, [reconnect])).length === 1;
      for (let i = 0; i < 100 && !(await valid()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await valid()).toBe(true);
    } finally {
      await sql.close();
    }
    client.ws.terminate(); // a network drop: no close handshake
    await client.closed;
    const again = await TestClient.login(d.url(reconnect));
    expect(again.connected.user_id).toBe(FIX.users.alice);
    await again.client.close();
  });
});

describe('gateway limits and lifecycle', () => {
  let d: TestDaemon;
  const token = (o: { userId: number; ttlSec?: number }) => mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { ttlSec: 3600, ...o });

  beforeAll(async () => {
    d = await startDaemon({
      'limits.floodCloseAfter': 50,
      'limits.maxBufferedBytes': 65536,
      'heartbeat.pingIntervalSec': 1,
      'heartbeat.pongTimeoutSec': 2,
    });
  });
  afterAll(async () => d?.stop());

  it('answers message_too_large and keeps the socket', async () => {
    const { client } = await TestClient.login(d.url(await token({ userId: 1 })));
    client.send(JSON.stringify({ action: 'ping', pad: 'x'.repeat(65536) }));
    expect(await client.next((m) => m.type === 'error')).toEqual({ type: 'error', error_code: 'message_too_large', message: 'Message exceeds maximum size of 65536 bytes.' });
    expect((await client.request({ action: 'ping' })).type).toBe('pong');
    await client.close();
  });

  it('closes with 1009 past the hard frame cap', async () => {
    const { client } = await TestClient.login(d.url(await token({ userId: 1 })));
    client.send('x'.repeat(1_048_577));
    expect((await client.closed).code).toBe(1009);
  });

  it('rate-limits the 11th message in a second, but never pong', async () => {
    const { client } = await TestClient.login(d.url(await token({ userId: 2 })));
    for (let i = 0; i < 20; i++) client.send({ action: 'pong' });
    for (let i = 0; i < 11; i++) client.send({ action: 'ping', request_id: `p${i}` });
    for (let i = 0; i < 10; i++) expect((await client.next((m) => m.request_id === `p${i}`)).type).toBe('pong');
    expect(await client.next((m) => m.request_id === 'p10')).toEqual({ type: 'error', error_code: 'rate_limited', message: 'Too many requests, please slow down', request_id: 'p10' });
    await client.close();
  });

  it('closes a flooding socket with 4101', async () => {
    const { client } = await TestClient.login(d.url(await token({ userId: 3 })));
    for (let i = 0; i < 200; i++) client.send({ action: 'ping' });
    expect((await client.closed).code).toBe(4101);
  });

  it('pings every interval and closes a socket that never answers (4102)', async () => {
    const { client } = await TestClient.login(d.url(await token({ userId: 4 })));
    expect(await client.next((m) => m.type === 'ping')).toEqual({ type: 'ping', timestamp: expect.any(Number), epoch: expect.any(String), seq: expect.any(Number) });
    expect(await client.closed).toEqual({ code: 4102, reason: 'heartbeat timeout' });
  });

  it('keeps a socket that answers pings alive past the timeout', async () => {
    const { client } = await TestClient.login(d.url(await token({ userId: 5 })));
    client.ws.on('message', (data) => { if (JSON.parse(data.toString()).type === 'ping') client.send({ action: 'pong' }); });
    for (let i = 0; i < 4; i++) await client.next((m) => m.type === 'ping', 3000);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
    await client.close();
  });

  it('closes a slow consumer with 4100 instead of buffering without bound', async () => {
    const { client } = await TestClient.login(d.url(await token({ userId: 6 })));
    const raw = (client.ws as unknown as { _socket: import('node:net').Socket })._socket;
    raw.pause();
    const payload = { blob: 'y'.repeat(60_000) };
    let closedCode: number | null = null;
    void client.closed.then((c) => { closedCode = c.code; });
    const serverSide = () => [...d.daemon.hub.userSessions(6)][0];
    for (let i = 0; i < 2000 && serverSide() && !serverSide().closed; i++) {
      d.daemon.publish({ event_type: 'big', target_type: 'user', target_id: 6, payload });
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(serverSide()?.closed ?? true).toBe(true);
    raw.resume();
    const { code } = await client.closed;
    expect(closedCode ?? code).toBe(4100);
  });
});

describe('server.maxConnections', () => {
  it('answers HTTP 503 to upgrades past the cap, and accepts again once a socket closes', async () => {
    const d = await startDaemon({ 'server.maxConnections': 2 });
    try {
      const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId: 1, ttlSec: 60 });
      const a = await TestClient.login(d.url(token));
      await TestClient.login(d.url(token));
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(d.url(token));
        ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
        ws.on('open', () => reject(new Error('a third socket was accepted')));
        ws.on('error', () => {});
      });
      expect(status).toBe(503);
      await a.client.close();
      await until(() => d.daemon.hub.size === 1, 'the closed socket to be gone');
      expect((await TestClient.login(d.url(token))).connected.user_id).toBe(1);
    } finally {
      await d.stop();
    }
  });
});

describe('shutdown', () => {
  it('closes every socket with 4200, refuses new upgrades, and resolves', async () => {
    const d = await startDaemon();
    const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId: 1, ttlSec: 60 });
    const a = await TestClient.login(d.url(token));
    const b = await TestClient.login(d.url(token));
    const url = d.url(token);
    await d.stop();
    expect(await a.client.closed).toEqual({ code: 4200, reason: 'server shutting down: reconnect' });
    expect((await b.client.closed).code).toBe(4200);
    const late = new TestClient(url);
    await expect(late.opened).rejects.toThrow();
  });
});
