/**
 * Reliability: slow and hostile clients (issue #12). One `tp-ws serve`
 * process, read from outside (RSS and fds from /proc, counters and event-loop
 * lag from /metrics), meets in turn: readers that stop reading while big
 * events flow, slowloris connections, a few thousand connect-and-drop cycles,
 * and failed-login floods from many loopback addresses and through the
 * trusted proxy. Meanwhile one well-behaved browser client receives a steady
 * stream of events: it must get every one, in order, and stay connected; its
 * latency in each phase is measured and printed, not asserted.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { IngestClient } from '../../src/ingest/client.js';
import { scenarioNote, scenarioRandom, withSeed } from '../helpers/reliability.js';
import { until } from '../helpers/until.js';
import { TestClient, type Message } from '../helpers/ws-client.js';
import { startHostileDaemon, type HostileDaemon } from './hostile-daemon.js';

const rng = scenarioRandom();
/**
 * Per-socket cap of unsent bytes (limits.maxBufferedBytes), small so readers
 * that stop reading pass it soon, and above what one event can leave queued
 * for a socket that reads (events are sent one at a time here: a burst fanned
 * out in one go counts whole against every recipient, readers too).
 */
const MAX_BUFFERED = 256 * 1024;
/** server.handshakeTimeoutMs for the slowloris phase. */
const HANDSHAKE_MS = 1500;
const TICK_MS = 20;
const ORIGIN = 'http://teampass.test';

let d: HostileDaemon;
let ticks: IngestClient;
let bulk: IngestClient;
let good: TestClient;
let url: string;

/** Phase the measurements below are filed under. */
let phase = 'baseline';
const latencies = new Map<string, number[]>();
const peaks = new Map<string, { rss: number; lagMs: number; fds: number }>();
const notes: string[] = [];
let sent = 0;
let ackFailures = 0;
let tickTimer: NodeJS.Timeout;
let sampleTimer: NodeJS.Timeout;
const receivedTicks: number[] = [];
let goodClosed: { code: number; reason: string } | null = null;
let heapAtStart = 0;

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

function peak(): { rss: number; lagMs: number; fds: number } {
  let p = peaks.get(phase);
  if (p === undefined) peaks.set(phase, (p = { rss: 0, lagMs: 0, fds: 0 }));
  return p;
}

/** Read the daemon's RSS and fds now, and its event-loop lag since the last scrape (prom-client resets it per scrape). */
async function sample(): Promise<void> {
  const p = peak();
  p.rss = Math.max(p.rss, d.rss());
  p.fds = Math.max(p.fds, d.fds());
  const m = await d.metrics();
  p.lagMs = Math.max(p.lagMs, (m.get('tpws_nodejs_eventloop_lag_max_seconds') ?? 0) * 1000);
}

function metric(m: Map<string, number>, name: string): number {
  return m.get(name) ?? 0;
}

function phaseSummary(name: string): string {
  const l = latencies.get(name) ?? [];
  const p = peaks.get(name);
  return `${name}: good client p50 ${percentile(l, 50).toFixed(1)} ms p99 ${percentile(l, 99).toFixed(1)} ms (${l.length} events), daemon RSS peak ${((p?.rss ?? 0) / 2 ** 20).toFixed(0)} MiB, loop lag max ${(p?.lagMs ?? 0).toFixed(0)} ms, fds peak ${p?.fds ?? 0}`;
}

/** Log in with `token`; `extra` adds client options (localAddress, headers). */
async function login(token: string, extra: WebSocket.ClientOptions = {}): Promise<{ client: TestClient; first: Message }> {
  const client = new TestClient(`${url}?token=${encodeURIComponent(token)}`, extra);
  await client.opened;
  return { client, first: await client.next(() => true, 10_000) };
}

/** One failed-or-refused login: its first message and close. */
async function refusedLogin(token: string, extra: WebSocket.ClientOptions): Promise<{ first: Message; close: { code: number; reason: string } }> {
  const { client, first } = await login(token, extra);
  return { first, close: await client.closed };
}

/** Run `fn(i)` for i in [0, n) with at most `width` at once. */
async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await fn(next++);
  }));
}

beforeAll(async () => {
  d = await startHostileDaemon({
    TPWS_MAX_BUFFERED_BYTES: String(MAX_BUFFERED),
    TPWS_HANDSHAKE_TIMEOUT_MS: String(HANDSHAKE_MS),
    // Only 127.0.0.1 is a proxy: the other loopback addresses are clients whose headers are ignored.
    TPWS_TRUSTED_PROXIES: '127.0.0.1',
    TPWS_INGEST_ACK_AFTER: 'delivery',
  });
  url = `ws://127.0.0.1:${d.port}/ws`;
  ticks = await IngestClient.connect(d.socket);
  bulk = await IngestClient.connect(d.socket);
  good = new TestClient(`${url}?token=${await d.token(1)}`, { headers: { origin: ORIGIN } });
  await good.opened;
  expect((await good.next()).type).toBe('connected');
  good.ws.on('close', (code, reason) => { goodClosed = { code, reason: reason.toString() }; });
  good.ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as Message;
    if (m.type === 'ping') good.send({ action: 'pong' });
    if (m.type !== 'event' || m.event !== 'tick') return;
    receivedTicks.push(m.data.n as number);
    const l = latencies.get(m.data.phase as string) ?? [];
    l.push(performance.now() - (m.data.t as number));
    latencies.set(m.data.phase as string, l);
  });
  tickTimer = setInterval(() => {
    const n = ++sent;
    ticks.request({ event_type: 'tick', target_type: 'user', target_id: 1, payload: { n, t: performance.now(), phase } })
      .then((ack) => { if (!('ok' in ack) || ack.ok !== true) ackFailures++; }, () => { ackFailures++; });
  }, TICK_MS);
  sampleTimer = setInterval(() => void sample().catch(() => undefined), 250);
  await until(() => (latencies.get('baseline')?.length ?? 0) >= 50, 'baseline ticks');
  await sample();
  heapAtStart = metric(await d.metrics(), 'tpws_nodejs_heap_size_used_bytes');
}, 60_000);

afterAll(async () => {
  clearInterval(tickTimer);
  clearInterval(sampleTimer);
  good?.ws.terminate();
  await ticks?.close().catch(() => undefined);
  await bulk?.close().catch(() => undefined);
  await d?.stop();
});

describe('slow and hostile clients', () => {
  it('readers that never read are closed with 4100 past limits.maxBufferedBytes; the daemon holds no backlog for them', () => withSeed(rng, async () => {
    phase = 'slow-readers';
    const before = await d.metrics();
    const rssBefore = d.rss();
    const readers = rng.int(8, 14);
    const FOLDER = 77;
    const subscribe = async (c: TestClient) => expect((await c.request({ action: 'subscribe', channel: 'folder', data: { folder_id: FOLDER } })).status).toBe('success');
    const stalled: TestClient[] = [];
    for (let i = 0; i < readers; i++) {
      const { client, first } = await login(await d.token(200 + i, [FOLDER]));
      expect(first.type).toBe('connected');
      await subscribe(client);
      stalled.push(client);
    }
    // One subscriber of the same folder that reads: it must get every big event.
    const { client: reader, first } = await login(await d.token(300, [FOLDER]));
    expect(first.type).toBe('connected');
    await subscribe(reader);
    let bigReceived = 0;
    reader.ws.on('message', (data) => { if ((JSON.parse(data.toString()) as Message).event === 'big') bigReceived++; });
    // The stalled ones stop reading: the kernel buffers fill, then the daemon's.
    for (const c of stalled) (c.ws as unknown as { _socket: Socket })._socket.pause();

    const blob = 'x'.repeat(rng.int(40_000, 60_000));
    let bigSent = 0;
    let closed = 0;
    while (bigSent < 3000) {
      const ack = await bulk.request({ event_type: 'big', target_type: 'folder', target_id: FOLDER, payload: { blob, n: ++bigSent } });
      expect('ok' in ack && ack.ok).toBe(true);
      if (bigSent % 10 !== 0) continue;
      closed = metric(await d.metrics(), 'tpws_closes_total{code="4100"}') - metric(before, 'tpws_closes_total{code="4100"}');
      if (closed >= readers) break;
    }
    expect(closed, `4100 closes after ${bigSent} events of ${blob.length} bytes`).toBe(readers);
    await until(() => bigReceived === bigSent, `the reading subscriber gets all ${bigSent} big events`);
    const rssGrowth = peak().rss - rssBefore;
    // Unbounded, each stalled reader would hold every event: readers × bigSent × blob.
    expect(rssGrowth, `RSS grew by ${rssGrowth} bytes`).toBeLessThan(96 * 2 ** 20);

    // Reading again, each finds the close the daemon sent after what was already in flight
    // (4100), or the cut it makes when the close handshake does not finish within 5 s (1006).
    for (const c of stalled) (c.ws as unknown as { _socket: Socket })._socket.resume();
    const codes = await Promise.all(stalled.map((c) => c.closed.then((x) => x.code)));
    expect(codes.every((c) => c === 4100 || c === 1006), `codes ${codes.join(',')}`).toBe(true);
    expect(reader.ws.readyState).toBe(WebSocket.OPEN);
    await reader.close();
    await until(async () => metric(await d.metrics(), 'tpws_connections') === 1, 'only the good client left');
    const after = await d.metrics();
    expect(metric(after, 'tpws_closes_total{code="4100"}') - metric(before, 'tpws_closes_total{code="4100"}')).toBe(readers);
    notes.push(`${readers} stalled readers + 1 reading subscriber, ${bigSent} folder events of ${(blob.length / 1000).toFixed(0)} KB: ${readers} closes 4100 (daemon metric; on resuming reads ${codes.filter((c) => c === 4100).length} saw 4100, ${codes.filter((c) => c === 1006).length} had been cut after the 5 s close grace), the reader got all ${bigSent}, daemon RSS +${(rssGrowth / 2 ** 20).toFixed(1)} MiB`);
  }), 60_000);

  it('slowloris connections are cut at server.handshakeTimeoutMs and do not keep others from connecting', () => withSeed(rng, async () => {
    phase = 'slowloris';
    const fdsBefore = d.fds();
    const request = `GET /ws?token=${await d.token(2)} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    const count = rng.int(120, 180);
    const kinds = ['silent', 'drip', 'half'] as const;
    const lifetimes: number[] = [];
    const byKind = new Map<string, number>();
    const sockets = await Promise.all(Array.from({ length: count }, (_, i) => new Promise<{ done: Promise<void> }>((resolve) => {
      const kind = kinds[i % 3];
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      const s = tcpConnect({ host: '127.0.0.1', port: d.port, localAddress: `127.0.0.${2 + (i % 200)}` });
      s.on('error', () => undefined);
      const t0 = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const done = new Promise<void>((r) => s.once('close', () => { clearInterval(timer); lifetimes.push(performance.now() - t0); r(); }));
      s.once('connect', () => {
        if (kind === 'half') s.write(request.slice(0, rng.int(5, request.length - 5)));
        if (kind === 'drip') {
          let at = 0;
          // A byte every 100 ms, never the end of the headers.
          timer = setInterval(() => { if (at < request.length - 4) s.write(request[at++]); }, 100);
        }
        resolve({ done });
      });
    })));
    // Others still get in while those hang.
    for (let i = 0; i < 5; i++) {
      const { client, first } = await login(await d.token(3 + i), { headers: { origin: ORIGIN } });
      expect(first.type).toBe('connected');
      await client.close();
    }
    expect(sockets).toHaveLength(count);
    // Well past the timeout and Node's check interval (a quarter of it), on a loaded machine.
    await until(() => lifetimes.length === count, `the daemon to cut all ${count} slowloris sockets (${lifetimes.length} cut)`, 10 * HANDSHAKE_MS);
    await until(() => d.fds() <= fdsBefore + 2, `daemon fds back to ${fdsBefore} (now ${d.fds()})`);
    notes.push(`${count} slowloris sockets (${[...byKind].map(([k, n]) => `${n} ${k}`).join(', ')}) from ${Math.min(count, 200)} addresses, all cut by the daemon after ${(percentile(lifetimes, 0) / 1000).toFixed(1)}-${(Math.max(...lifetimes) / 1000).toFixed(1)} s (handshake timeout ${HANDSHAKE_MS / 1000} s) while 5 clients logged in`);
  }), 60_000);

  it('connections opened and dropped in a loop leave no socket, session, subscription or fd behind', () => withSeed(rng, async () => {
    phase = 'connect-drop';
    const before = await d.metrics();
    const fdsBefore = d.fds();
    const cycles = rng.int(1500, 2000);
    const kinds = ['tcp', 'half-request', 'upgrade', 'auth', 'subscribed', 'viewing'] as const;
    // Items 500-504 in folders 50-54: a 'viewing' socket opens an item view (presence) before it drops.
    d.addItems(new Map(Array.from({ length: 5 }, (_, k) => [500 + k, 50 + k])));
    const done = new Map<string, number>();
    let views = 0;
    const tokens = await Promise.all(Array.from({ length: 300 }, (_, u) => d.token(1000 + u, [50 + (u % 5)])));
    await pool(cycles, 24, async (i) => {
      const kind = rng.pick(kinds);
      done.set(kind, (done.get(kind) ?? 0) + 1);
      const u = i % tokens.length;
      if (kind === 'tcp' || kind === 'half-request') {
        await new Promise<void>((resolve) => {
          const s = tcpConnect({ host: '127.0.0.1', port: d.port });
          s.on('error', () => resolve());
          s.once('connect', () => {
            if (kind === 'half-request') s.write(`GET /ws?token=${tokens[u]} HTTP/1.1\r\nHost: x\r\nUpg`);
            s.destroy();
            resolve();
          });
        });
        return;
      }
      const ws = new WebSocket(`${url}?token=${tokens[u]}`);
      ws.on('error', () => undefined);
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        if (kind === 'upgrade') ws.once('upgrade', () => { ws.terminate(); });
        else {
          ws.once('message', (data) => {
            const refused = (JSON.parse(data.toString()) as Message).type !== 'connected';
            if (kind === 'subscribed') ws.send(JSON.stringify({ action: 'subscribe', channel: 'folder', data: { folder_id: 50 + (u % 5) }, request_id: 'r' }));
            if (kind === 'viewing' && !refused) {
              ws.send(JSON.stringify({ action: 'start_item_view', data: { item_id: 500 + (u % 5) }, request_id: 'v' }));
              // Dropped once the view is open (its reply seen), without a close frame.
              ws.on('message', (m) => {
                const r = JSON.parse(m.toString()) as Message;
                if (r.request_id !== 'v') return;
                if (r.status === 'success') views++;
                ws.terminate();
              });
              return;
            }
            // terminate(): no close frame, the TCP connection just goes.
            setImmediate(() => ws.terminate());
          });
        }
      });
    });
    await until(async () => {
      const m = await d.metrics();
      return metric(m, 'tpws_connections') === 1 && metric(m, 'tpws_users') === 1 && metric(m, 'tpws_folder_subscriptions') === 0 && metric(m, 'tpws_presence_views') === 0;
    }, 'connections, users, subscriptions and item views back to the good client alone');
    expect(views, 'item views opened before their socket dropped').toBeGreaterThan(0);
    await until(() => d.fds() <= fdsBefore + 2, `daemon fds back to ${fdsBefore} (now ${d.fds()})`);
    const after = await d.metrics();
    const refused = metric(after, 'tpws_auth_failures_total{reason="max_connections"}') - metric(before, 'tpws_auth_failures_total{reason="max_connections"}');
    notes.push(`${cycles} connect/drop cycles, 24 at a time (${[...done].map(([k, n]) => `${n} ${k}`).join(', ')}): ${views} of them with an item view open: connections, users, folder subscriptions and presence views back to the good client alone, daemon fds ${fdsBefore} → ${d.fds()} (${refused} logins refused max_connections while a drop of the same user was still being noticed)`);
  }), 60_000);

  it('failed-login floods: loopback addresses are exempt, forwarded addresses are limited one by one, every refusal is close 1000 with an empty reason', () => withSeed(rng, async () => {
    phase = 'auth-flood';
    const before = await d.metrics();
    const limit = 10;
    const direct = rng.int(40, 70);
    const attempts = limit + 2;
    const garbage = () => rng.pick(['', 'x', 'a'.repeat(64), 'eyJhbGciOiJIUzI1NiJ9.e30.sig', '0'.repeat(rng.int(1, 200))]);
    // From 127.0.0.2…: loopback, exempt from the limit as in TeamPass (docs/protocol.md §Authentication).
    const directResults: { first: Message; close: { code: number; reason: string } }[] = [];
    await pool(direct, 20, async (a) => {
      for (let k = 0; k < attempts; k++) directResults.push(await refusedLogin(garbage(), { localAddress: `127.0.0.${2 + a}` }));
    });
    expect(directResults.filter((r) => r.first.error_code === 'auth_failed')).toHaveLength(direct * attempts);
    // Through the trusted proxy (127.0.0.1): each forwarded address has its own count.
    const forwarded = rng.int(25, 40);
    const proxied: { addr: number; k: number; first: Message; close: { code: number; reason: string } }[] = [];
    await pool(forwarded, 20, async (a) => {
      for (let k = 0; k < attempts; k++) {
        const r = await refusedLogin(garbage(), { headers: { 'x-forwarded-for': `198.51.100.${a + 1}` } });
        proxied.push({ addr: a, k, ...r });
      }
    });
    for (const p of proxied) expect(p.first.error_code, `198.51.100.${p.addr + 1} attempt ${p.k + 1}`).toBe(p.k < limit ? 'auth_failed' : 'rate_limited');
    for (const r of [...directResults, ...proxied]) expect(r.close).toEqual({ code: 1000, reason: '' });
    // A good token from a limited address is refused too (the IP check comes first); from another one it logs in.
    const limited = await refusedLogin(await d.token(5), { headers: { 'x-forwarded-for': '198.51.100.1', origin: ORIGIN } });
    expect(limited.first.error_code).toBe('rate_limited');
    const fresh = await login(await d.token(5), { headers: { 'x-forwarded-for': '198.51.100.250', origin: ORIGIN } });
    expect(fresh.first.type).toBe('connected');
    await fresh.client.close();
    // A peer that is not a trusted proxy is taken at its own address, whatever it forwards.
    const spoof = await refusedLogin('x', { localAddress: '127.0.0.9', headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(spoof.first.error_code).toBe('auth_failed');
    const { upgrades } = (await (await fetch(`http://127.0.0.1:${d.adminPort}/upgrades`)).json()) as { upgrades: { peer: string; ip: string; forwarded: string | null }[] };
    expect(upgrades.at(-1)).toMatchObject({ peer: '127.0.0.9', ip: '127.0.0.9', forwarded: null });

    const after = await d.metrics();
    const delta = (name: string) => metric(after, name) - metric(before, name);
    expect(delta('tpws_auth_failures_total{reason="ip_rate_limited"}')).toBe(forwarded * (attempts - limit) + 1);
    expect(delta('tpws_auth_failures_total{reason="invalid_token"}')).toBe(direct * attempts + forwarded * limit + 1);
    notes.push(`failed logins from ${direct} loopback addresses × ${attempts} (all auth_failed: loopback exempt) and ${forwarded} addresses forwarded by the trusted proxy × ${attempts} (10 auth_failed then rate_limited, per address; a good token from a limited address refused, from a fresh one accepted), every refusal close 1000 with empty reason; X-Forwarded-For from an untrusted peer ignored`);
  }), 60_000);

  it('the well-behaved client got every event in order, stayed connected, and its latency is printed per phase', () => withSeed(rng, async () => {
    phase = 'after';
    clearInterval(tickTimer);
    const total = sent;
    await until(() => receivedTicks.length >= total - ackFailures, `the good client gets all ${total} ticks`);
    expect(ackFailures).toBe(0);
    expect(receivedTicks).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(goodClosed).toBeNull();
    expect(good.ws.readyState).toBe(WebSocket.OPEN);
    const heapAtEnd = metric(await d.metrics(), 'tpws_nodejs_heap_size_used_bytes');
    notes.push(`daemon heap used ${(heapAtStart / 2 ** 20).toFixed(1)} MiB after start, ${(heapAtEnd / 2 ** 20).toFixed(1)} MiB at the end (no forced GC)`);
    scenarioNote('hostile-clients', `${notes.join('; ')}; the good browser client got all ${total} events (one per ${TICK_MS} ms) in order and stayed connected; ${['baseline', 'slow-readers', 'slowloris', 'connect-drop', 'auth-flood'].map(phaseSummary).join('; ')} (clients and attackers share the test's process: the slow-readers p99 includes the moment the stalled readers read their backlog in it)`, rng.seed);
  }), 60_000);
});
