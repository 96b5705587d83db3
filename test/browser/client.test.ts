/// <reference lib="dom" />
// (page.evaluate callbacks run in the browser and use its globals)
/**
 * The built browser client (dist/client/tp-ws-client.js, served by the daemon
 * at /ws/tp-ws-client.js and loaded by a <script> tag) in real headless
 * Chromium, against `tp-ws serve` child processes on MariaDB, through a TCP
 * proxy that can cut the network and follow the daemon to a new port
 * (issue #11, "Done when"). Events come from the ingest socket, or, while the
 * daemon is down, from rows inserted into the events table as TeamPass's PHP
 * does. Every assertion is on what the page's handlers received.
 */
import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { IngestClient } from '../../src/ingest/client.js';
import { chromiumMissing, eventually, launchChromium, servePages, type PageServer } from '../helpers/browser.js';
import { FIX, seedFixture } from '../helpers/fixture.js';
import { createTestDatabase, MYSQL_URL } from '../helpers/mysql.js';
import { describeRequiring } from '../helpers/requires.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { startDaemonProcess, type DaemonProcess } from './daemon-process.js';

const U = FIX.users;
const T = FIX.tokens;
const PREFIX = 'teampass_';

/** One entry of the page's log: every `*` notification of the client, in order. */
interface Got {
  name: string;
  data: any;
}

/** What the test page's `startClient` takes: the client's options, with `getToken` replaced by a flag. */
interface StartOptions {
  url: string;
  token: string;
  minReconnectDelay: number;
  maxReconnectDelay: number;
  /** Give the client a `getToken` that counts its calls and returns `window.__nextToken`. */
  withGetToken?: boolean;
}

interface PageWindow {
  __got: Got[];
  __closes: { code: number; reason: string }[];
  __tokenCalls: number;
  __nextToken: string | null;
  startClient(o: StartOptions): void;
  client: any;
}

/**
 * The test page: loads the client bundle from the daemon (through the proxy
 * on port `ws`) with a plain script tag, as TeamPass would, and records
 * everything the client tells it.
 */
function testPage(url: URL): string {
  const port = url.searchParams.get('ws') ?? '';
  if (!/^\d{1,5}$/.test(port)) return '<!doctype html><title>bad ws port</title>';
  return `<!doctype html>
<meta charset="utf-8"><title>tp-ws client test</title>
<script src="http://127.0.0.1:${port}/ws/tp-ws-client.js"></script>
<script>
window.__got = [];
window.__closes = [];
window.__tokenCalls = 0;
window.__nextToken = null;
window.startClient = function (o) {
  var opts = { url: o.url, token: o.token, minReconnectDelay: o.minReconnectDelay, maxReconnectDelay: o.maxReconnectDelay };
  if (o.withGetToken) opts.getToken = function () { window.__tokenCalls++; return Promise.resolve(window.__nextToken); };
  var c = new window.TeamPassWebSocket(opts);
  c.on('*', function (name, data) { window.__got.push({ name: name, data: data }); });
  c.onClose(function (info) { window.__closes.push({ code: info.code, reason: info.reason }); });
  window.client = c;
  c.connect();
};
</script>`;
}

/** The page's log. */
function log(page: Page): Promise<Got[]> {
  return page.evaluate(() => (window as unknown as PageWindow).__got);
}

/** The `n` tags of the events the page received (test events carry `{ n }`), in order. */
function ns(got: Got[]): number[] {
  return got.filter((g) => typeof g.data?.n === 'number').map((g) => g.data.n as number);
}

function named(got: Got[], name: string): any[] {
  return got.filter((g) => g.name === name).map((g) => g.data);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** A fresh 64-hex token (TeamPass's shape). */
function newToken(): string {
  return randomBytes(32).toString('hex');
}

describeRequiring('browser client in headless Chromium against tp-ws on MariaDB (issue #11)', {
  missing: chromiumMissing() ?? (MYSQL_URL ? undefined : 'TPWS_TEST_MYSQL_URL is not set'),
  needs: 'Debian chromium and MariaDB (TPWS_TEST_MYSQL_URL)',
  hint: 'apt-get install chromium; eval "$(bash test/helpers/start-mariadb.sh)"',
}, () => {
  let db: { url: string; drop(): Promise<void> };
  let daemon: DaemonProcess;
  let ingest: IngestClient;
  let seed: Seeder;
  let pages: PageServer;
  let browser: Browser;
  /** Per test: closed in afterEach. */
  let contexts: BrowserContext[] = [];
  let proxies: TcpProxy[] = [];
  /** Every daemon started (the killed one too), stopped in afterAll. */
  const daemons: DaemonProcess[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    daemon = await startDaemonProcess(db.url); // migrates the schema
    daemons.push(daemon);
    await seedFixture(db.url, PREFIX);
    seed = await openSeeder(db.url, PREFIX);
    ingest = await IngestClient.connect(daemon.socket);
    pages = await servePages(testPage);
    browser = await launchChromium();
  });

  afterEach(async () => {
    for (const c of contexts.splice(0)) await c.close();
    for (const p of proxies.splice(0)) await p.close();
    expect(pageErrors.splice(0), 'errors thrown in the pages').toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await pages?.close();
    ingest?.destroy();
    await seed?.close();
    for (const d of daemons) await d.stop();
    await db?.drop();
  });

  /** A proxy in front of `to` (the current daemon by default), closed after the test. */
  async function proxyTo(to: DaemonProcess = daemon): Promise<TcpProxy> {
    const p = await TcpProxy.start(to.port);
    proxies.push(p);
    return p;
  }

  async function newContext(): Promise<BrowserContext> {
    const c = await browser.newContext();
    contexts.push(c);
    return c;
  }

  /**
   * Load the test page and check that the script tag defined the client. The
   * daemon reads dist/client/ once and keeps a miss: a daemon started while
   * `npm run build` had removed dist/client/ serves 404 until it restarts.
   */
  async function loadPage(page: Page, proxy: TcpProxy): Promise<void> {
    let bundle = 'no response';
    page.on('response', (r) => {
      if (r.url().endsWith('/ws/tp-ws-client.js')) bundle = `HTTP ${r.status()}`;
    });
    await page.goto(`${pages.origin}/?ws=${proxy.port}`);
    const loaded = await page.evaluate(() => typeof (window as unknown as { TeamPassWebSocket?: unknown }).TeamPassWebSocket === 'function');
    if (!loaded) throw new Error(`the page has no window.TeamPassWebSocket: /ws/tp-ws-client.js from the daemon gave ${bundle} (was dist/client/ built when the daemon started?)`);
  }

  /** Open the test page in `ctx` and start a client through `proxy` (fast backoff so the test is quick). */
  async function openTab(ctx: BrowserContext, proxy: TcpProxy, token: string, extra: Partial<StartOptions> = {}): Promise<Page> {
    const page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await loadPage(page, proxy);
    const opts: StartOptions = { url: `ws://127.0.0.1:${proxy.port}/ws`, token, minReconnectDelay: 100, maxReconnectDelay: 1000, ...extra };
    await page.evaluate((o) => (window as unknown as PageWindow).startClient(o), opts);
    return page;
  }

  /** Wait until the page's log satisfies `ok`; returns the log. */
  function pageHas(page: Page, ok: (got: Got[]) => boolean, what: string, timeoutMs?: number): Promise<Got[]> {
    return eventually(() => log(page), ok, what, timeoutMs);
  }

  /** Send events through the daemon's ingest socket; each must be accepted. */
  async function emit(...events: Record<string, unknown>[]): Promise<void> {
    for (const e of events) expect(await ingest.request(e)).toMatchObject({ ok: true });
  }

  const toFolder = (folder: number, n: number, extra: Record<string, unknown> = {}) => ({ event_type: 'item_created', target_type: 'folder', target_id: folder, payload: { n, folder_id: folder, ...extra } });
  const toUser = (user: number, n: number) => ({ event_type: 'task_completed', target_type: 'user', target_id: user, payload: { n } });
  const toAll = (n: number) => ({ event_type: 'fields_updated', target_type: 'broadcast', payload: { n } });

  /** Cut the network and wait until the page saw its socket close. */
  async function cutAndWaitClosed(proxy: TcpProxy, page: Page): Promise<void> {
    const before = await page.evaluate(() => (window as unknown as PageWindow).__closes.length);
    proxy.cut();
    await eventually(() => page.evaluate(() => (window as unknown as PageWindow).__closes.length), (n) => n > before, 'the page to see its socket close');
  }

  /** Wait until the page tried to reconnect `n` times while cut: it is retrying by itself. */
  function refusedAttempts(proxy: TcpProxy, n: number): Promise<unknown> {
    return eventually(async () => proxy.webSocketAttempts().filter((c) => c.refused).length, (k) => k >= n, `${n} reconnect attempts refused by the cut network`);
  }

  it('1. connects, subscribes to a folder, and receives folder, user and broadcast events meant for it', async () => {
    const proxy = await proxyTo();
    const page = await openTab(await newContext(), proxy, T.alice);
    await pageHas(page, (g) => named(g, 'connected').length === 1, 'connected');
    const reply = await page.evaluate(() => (window as unknown as PageWindow).client.subscribeToFolder(10));
    expect(reply).toMatchObject({ type: 'response', status: 'success', action: 'subscribed', folder_id: 10 });
    await emit(
      toFolder(10, 1),
      toFolder(11, 2), // alice may read 11 but is not subscribed
      toUser(U.alice, 3),
      toUser(U.bob, 4),
      toAll(5),
      toFolder(10, 6, { exclude_user_id: U.alice }), // her own change
      toAll(7),
    );
    const got = await pageHas(page, (g) => ns(g).includes(7), 'the last event');
    expect(ns(got)).toEqual([1, 3, 5, 7]);
    expect(got.filter((g) => typeof g.data?.n === 'number').map((g) => g.name)).toEqual(['item_created', 'task_completed', 'fields_updated', 'fields_updated']);
    expect(named(got, 'connected')[0]).toMatchObject({ type: 'connected', user_id: U.alice, epoch: expect.any(String), seq: expect.any(Number) });
    expect(named(got, 'resumed')).toEqual([]);
    expect(proxy.webSocketAttempts()).toHaveLength(1);
  });

  it('2. a network cut while events are emitted: reconnects by itself and has every missed event once, in order, recovered', async () => {
    const proxy = await proxyTo();
    const page = await openTab(await newContext(), proxy, T.alice);
    await pageHas(page, (g) => named(g, 'connected').length === 1, 'connected');
    await page.evaluate(() => (window as unknown as PageWindow).client.subscribeToFolder(10));
    await emit(toFolder(10, 1));
    await pageHas(page, (g) => ns(g).includes(1), 'the event before the cut');

    await cutAndWaitClosed(proxy, page);
    await emit(toFolder(10, 2), toFolder(11, 3), toUser(U.alice, 4), toUser(U.bob, 5), toAll(6), toFolder(10, 7, { exclude_user_id: U.alice }), toFolder(10, 8), toAll(9));
    await refusedAttempts(proxy, 2);
    proxy.restore();

    await pageHas(page, (g) => named(g, 'resumed').length === 1 && ns(g).includes(9), 'the resume and the missed events');
    await emit(toAll(10));
    const got = await pageHas(page, (g) => ns(g).includes(10), 'a live event after the resume');
    expect(ns(got)).toEqual([1, 2, 4, 6, 8, 9, 10]);
    expect(named(got, 'resumed')).toEqual([{ recovered: true, replayed: 5 }]);
    expect(proxy.webSocketAttempts().filter((c) => !c.refused)).toHaveLength(2);
  });

  it('3. a gap longer than the history (resume.maxEvents = 5): recovered false, then live events', async () => {
    const small = await createTestDatabase();
    let d: DaemonProcess | undefined;
    let smallIngest: IngestClient | undefined;
    try {
      d = await startDaemonProcess(small.url, { TPWS_RESUME_MAX_EVENTS: '5' });
      await seedFixture(small.url, PREFIX);
      smallIngest = await IngestClient.connect(d.socket);
      const send = async (e: Record<string, unknown>) => expect(await smallIngest!.request(e)).toMatchObject({ ok: true });
      const proxy = await proxyTo(d);
      const page = await openTab(await newContext(), proxy, T.alice);
      await pageHas(page, (g) => named(g, 'connected').length === 1, 'connected');

      await cutAndWaitClosed(proxy, page);
      for (let n = 1; n <= 8; n++) await send(toAll(n));
      await refusedAttempts(proxy, 1);
      proxy.restore();

      await pageHas(page, (g) => named(g, 'resumed').length === 1, 'the resume');
      await send(toAll(9));
      const got = await pageHas(page, (g) => ns(g).includes(9), 'a live event after the resume');
      expect(named(got, 'resumed')).toEqual([{ recovered: false, reason: 'too_many', replayed: 0 }]);
      expect(ns(got)).toEqual([9]);
      expect(await page.evaluate(() => (window as unknown as PageWindow).client.recovered)).toBe(false);
    } finally {
      smallIngest?.destroy();
      await d?.stop();
      await small.drop();
    }
  });

  it('4. the daemon SIGKILLed mid-stream and restarted on another port: every event once, in order, never recovered false', async () => {
    const proxy = await proxyTo();
    const page = await openTab(await newContext(), proxy, T.alice);
    await pageHas(page, (g) => named(g, 'connected').length === 1, 'connected');

    // A producer that emits alice's events one after another, as TeamPass's PHP with the tp-ws emitter would:
    // through the socket while the daemon answers, then into the table.
    const run = randomBytes(4).toString('hex');
    let next = 1;
    let stop = false;
    let inTable = 0;
    let viaSocket = true;
    const insertRow = async (n: number, uuid: string | null) => {
      // A row the daemon may already hold (delivered and journaled, ack lost): the id makes it one event.
      if (uuid !== null) {
        await seed.execSql(`INSERT IGNORE INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload, event_uuid) VALUES ('task_completed', 'user', ?, ?, ?)`, [U.alice, JSON.stringify({ n }), uuid]);
      } else {
        // Exactly TeamPass's INSERT: processed defaults to 0.
        await seed.execSql(`INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload) VALUES ('task_completed', 'user', ?, ?)`, [U.alice, JSON.stringify({ n })]);
      }
    };
    const producer = (async () => {
      const sender = ingest;
      while (!stop) {
        const n = next++;
        if (viaSocket) {
          const id = `${run}-${n}`;
          let ack: Record<string, unknown> | null = null;
          try {
            ack = (await sender.request({ id, ...toUser(U.alice, n) })) as unknown as Record<string, unknown>;
          } catch {
            viaSocket = false; // the daemon is gone
          }
          if (ack && ack.ok !== true) throw new Error(`event ${n} refused: ${JSON.stringify(ack)}`);
          if (ack === null || ack.journal !== undefined) await insertRow(n, id);
          if (ack === null) inTable++;
        } else {
          await insertRow(n, null);
          inTable++;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    try {
      await pageHas(page, (g) => ns(g).length >= 20, '20 streamed events before the kill');
      await daemon.kill();
      await eventually(async () => inTable, (k) => k >= 10, '10 events written to the table while the daemon is down');
      daemon = await startDaemonProcess(db.url);
      daemons.push(daemon);
      proxy.retarget(daemon.port);
      await eventually(async () => inTable, (k) => k >= 20, '20 events written to the table');
      stop = true;
      await producer;
    } finally {
      stop = true;
      await producer.catch(() => undefined);
    }
    const last = next - 1;
    await eventually(
      () => seed.execSql<{ c: number }>('SELECT COUNT(*) AS c FROM {{prefix}}websocket_events WHERE processed = 0'),
      (rows) => Number(rows[0].c) === 0,
      'the restarted daemon to deliver the rows written while it was down',
    );
    // Then live again, through the new daemon's socket.
    ingest.destroy();
    ingest = await IngestClient.connect(daemon.socket);
    await emit(...range(last + 1, last + 3).map((n) => toUser(U.alice, n)));
    // A sender retrying, on the new daemon, an event the page got from the old one (same id). The new daemon's
    // dedup window does not reach back before its start, so it sends it again; the page must not show it twice.
    expect(await ingest.request({ id: `${run}-1`, ...toUser(U.alice, 1) })).toMatchObject({ ok: true });
    await emit(...range(last + 4, last + 5).map((n) => toUser(U.alice, n)));

    const got = await pageHas(page, (g) => ns(g).includes(last + 5), `all ${last + 5} events`, 20_000);
    expect(ns(got)).toEqual(range(1, last + 5));
    const resumed = named(got, 'resumed');
    expect(resumed.length).toBeGreaterThanOrEqual(1);
    expect(resumed.filter((r) => r.recovered !== true)).toEqual([]);
  }, 60_000);

  it('5a. a reconnect refused for its token calls getToken once and goes on with the new token, resumed; no loop', async () => {
    const proxy = await proxyTo();
    const page = await openTab(await newContext(), proxy, T.bob, { withGetToken: true });
    await pageHas(page, (g) => named(g, 'connected').length === 1, 'connected');
    await page.evaluate(() => (window as unknown as PageWindow).client.subscribeToFolder(10));
    await emit(toFolder(10, 1));
    await pageHas(page, (g) => ns(g).includes(1), 'the event before the cut');

    // Bob's page and reconnect tokens are revoked; the next reconnect is refused.
    await seed.execSql('DELETE FROM {{prefix}}websocket_tokens WHERE user_id = ?', [U.bob]);
    await cutAndWaitClosed(proxy, page);
    await emit(toUser(U.bob, 2), toFolder(10, 3));
    const fresh = newToken();
    await seed.seedToken(U.bob, fresh, 3600);
    await page.evaluate((t) => { (window as unknown as PageWindow).__nextToken = t; }, fresh);
    await refusedAttempts(proxy, 1);
    const fromRestore = proxy.connections.length;
    proxy.restore();

    const got = await pageHas(page, (g) => named(g, 'resumed').length === 1 && ns(g).includes(3), 'the resume after the token refresh');
    expect(ns(got)).toEqual([1, 2, 3]);
    expect(named(got, 'resumed')).toEqual([{ recovered: true, replayed: 2 }]);
    expect(await page.evaluate(() => (window as unknown as PageWindow).__tokenCalls)).toBe(1);
    expect(named(got, 'server_error').map((e) => e.error_code)).toEqual(['auth_failed']);
    expect(named(got, 'auth_failed')).toEqual([]);
    // After the restore: the refused reconnect, then the one with the fresh token. Nothing more.
    const after = proxy.webSocketAttempts().filter((c) => c.n > fromRestore);
    expect(after).toHaveLength(2);
    expect(after[1].head).toContain(`token=${fresh}`);
  });

  it('5b. an expired token: with getToken it is called once and the page connects; without, auth_failed and no retry', async () => {
    const proxy = await proxyTo();
    const ctx = await newContext();
    const fresh = newToken();
    await seed.seedToken(U.alice, fresh, 3600);
    const withCb = await ctx.newPage();
    withCb.on('pageerror', (e) => pageErrors.push(e.message));
    await loadPage(withCb, proxy);
    await withCb.evaluate((t) => { (window as unknown as PageWindow).__nextToken = t; }, fresh);
    await withCb.evaluate((o) => (window as unknown as PageWindow).startClient(o), { url: `ws://127.0.0.1:${proxy.port}/ws`, token: T.expired, minReconnectDelay: 100, maxReconnectDelay: 1000, withGetToken: true });
    const got = await pageHas(withCb, (g) => named(g, 'connected').length === 1, 'connected with the fresh token');
    expect(named(got, 'connected')[0]).toMatchObject({ user_id: U.alice });
    expect(await withCb.evaluate(() => (window as unknown as PageWindow).__tokenCalls)).toBe(1);
    expect(proxy.webSocketAttempts()).toHaveLength(2);

    // Without a callback, in a browser of its own (no tab to share with): it stops.
    const alone = await proxyTo();
    const page = await openTab(await newContext(), alone, T.expired);
    const failed = await pageHas(page, (g) => named(g, 'auth_failed').length === 1, 'auth_failed');
    expect(named(failed, 'auth_failed')[0]).toMatchObject({ code: 1000 });
    expect(await page.evaluate(() => (window as unknown as PageWindow).client.getState().stopped)).toBe('auth_failed');
    // A looping client would try again within its 1 s backoff cap; give it three.
    await new Promise((r) => setTimeout(r, 2500));
    expect(alone.webSocketAttempts()).toHaveLength(1);
    expect(named(await log(page), 'connected')).toEqual([]);
  });

  it('6. a terminal close (4001 after session_expired) stops retrying', async () => {
    const proxy = await proxyTo();
    const page = await openTab(await newContext(), proxy, T.dave);
    await pageHas(page, (g) => named(g, 'connected').length === 1, 'connected');
    await emit({ event_type: 'session_expired', target_type: 'user', target_id: U.dave, payload: { reason: 'logout' } });
    const got = await pageHas(page, (g) => named(g, 'terminated').length === 1, 'the terminated notification');
    expect(named(got, 'terminated')).toEqual([{ code: 4001, reason: 'session expired: log in again' }]);
    expect(named(got, 'session_expired')).toEqual([{ reason: 'logout' }]);
    expect(await page.evaluate(() => (window as unknown as PageWindow).client.getState().stopped)).toBe('terminated');
    // A client that retried would do so within its 1 s backoff cap; give it three.
    await new Promise((r) => setTimeout(r, 2500));
    expect(proxy.webSocketAttempts()).toHaveLength(1);
  });

  it('7. three tabs share one socket and all get every event; closing the leader hands over without loss', async () => {
    const proxy = await proxyTo();
    const ctx = await newContext();
    const tabs: Page[] = [];
    for (let i = 0; i < 3; i++) tabs.push(await openTab(ctx, proxy, T.alice));
    const roles = () => Promise.all(tabs.map((p) => p.evaluate(() => (window as unknown as PageWindow).client.role as string)));
    await eventually(roles, (r) => r.filter((x) => x === 'leader').length === 1 && r.filter((x) => x === 'follower').length === 2, 'one leader and two followers');
    for (const p of tabs) await pageHas(p, (g) => named(g, 'connected').length === 1, 'connected in every tab');

    await emit(toAll(1), toUser(U.alice, 2));
    for (const p of tabs) await pageHas(p, (g) => ns(g).includes(2), 'the first events in every tab');
    expect(proxy.webSocketAttempts()).toHaveLength(1);

    // A stream of events while the leader tab closes.
    let next = 3;
    let stop = false;
    const producer = (async () => {
      while (!stop) {
        const n = next++;
        await emit(n % 2 ? toAll(n) : toUser(U.alice, n));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      const leaderAt = (await roles()).indexOf('leader');
      const leader = tabs[leaderAt];
      const rest = tabs.filter((_, i) => i !== leaderAt);
      await pageHas(rest[0], (g) => ns(g).length >= 10, 'streamed events before the handover');
      await leader.close();
      await eventually(async () => Promise.all(rest.map((p) => p.evaluate(() => (window as unknown as PageWindow).client.role as string))), (r) => r.includes('leader'), 'a new leader');
      await eventually(async () => proxy.webSocketAttempts().length, (k) => k === 2, 'the new leader\'s socket');
      const handover = next;
      await pageHas(rest[0], (g) => ns(g).some((n) => n >= handover + 10), 'streamed events after the handover');
      stop = true;
      await producer;
      const last = next - 1;
      for (const p of rest) {
        const got = await pageHas(p, (g) => ns(g).includes(last), `event ${last} in every remaining tab`);
        expect(ns(got)).toEqual(range(1, last));
        // The new leader resumed from the last position the old one shared.
        expect(named(got, 'resumed')).toMatchObject([{ recovered: true }]);
      }
      expect(proxy.webSocketAttempts()).toHaveLength(2);
    } finally {
      stop = true;
      await producer.catch(() => undefined);
    }
  }, 45_000);

  it('8. access revoked while disconnected: the revoked folder\'s missed events are not replayed, the rest is', async () => {
    await seed.seedGroups(U.carol, [20]);
    const proxy = await proxyTo();
    const page = await openTab(await newContext(), proxy, T.carol);
    await pageHas(page, (g) => named(g, 'connected').length === 1, 'connected');
    const reply = await page.evaluate(() => (window as unknown as PageWindow).client.subscribeToFolder(20));
    expect(reply).toMatchObject({ action: 'subscribed', folder_id: 20 });
    await emit(toFolder(20, 1));
    await pageHas(page, (g) => ns(g).includes(1), 'the folder event before the cut');

    await cutAndWaitClosed(proxy, page);
    await emit(toFolder(20, 2), toUser(U.carol, 3));
    await seed.execSql('DELETE FROM {{prefix}}users_groups WHERE user_id = ? AND group_id = ?', [U.carol, 20]);
    await emit(toFolder(20, 4), toUser(U.carol, 5));
    await refusedAttempts(proxy, 1);
    proxy.restore();

    const got = await pageHas(page, (g) => named(g, 'resumed').length === 1 && ns(g).includes(5), 'the resume');
    await emit(toFolder(20, 6), toAll(7));
    const after = await pageHas(page, (g) => ns(g).includes(7), 'a live event after the resume');
    expect(named(got, 'resumed')).toEqual([{ recovered: true, replayed: 2 }]);
    expect(ns(after)).toEqual([1, 3, 5, 7]);
    expect(await page.evaluate(() => (window as unknown as PageWindow).client.getSubscriptions())).toEqual([]);
  });
});
