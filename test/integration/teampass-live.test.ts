/**
 * The TeamPass behaviours that change state while sockets are open: presence,
 * edit-lock release after the grace period, live access changes, session
 * expiry, and the separate cap for sockets without Origin. On both stores.
 * (The black-box compatibility suite, teampass-compat*.test.ts, checks the
 * wire shapes against the reference; this file checks the mechanisms,
 * including their failure paths.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStores } from '../helpers/stores.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient, type Message } from '../helpers/ws-client.js';
import { FIX, seedFixture } from '../helpers/fixture.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';
import { until } from '../helpers/until.js';

const BROWSER = { headers: { Origin: 'https://teampass.example' } };
const GRACE_MS = 300;

describeStores('TeamPass live state', ({ newStoreUrl }) => {
  let d: TestDaemon;
  let seed: Seeder;
  const clients: TestClient[] = [];
  const open = async (token: string, browser = true): Promise<{ client: TestClient; connected: Message }> => {
    const client = new TestClient(d.url(token), browser ? BROWSER : undefined);
    clients.push(client);
    const connected = await client.next();
    if (connected.type !== 'connected') throw new Error(`expected connected, got ${JSON.stringify(connected)}`);
    return { client, connected };
  };
  const refusal = async (token: string, browser = true): Promise<Message> => {
    const c = new TestClient(d.url(token), browser ? BROWSER : undefined);
    clients.push(c);
    const m = await c.next();
    expect((await c.closed).code).toBe(1000);
    return m;
  };
  const subscribe = (c: TestClient, folderId: number) => c.request({ action: 'subscribe', channel: 'folder', data: { folder_id: folderId } });
  const viewersOf = (m: Message) => (m.data.viewers as { user_login: string }[]).map((v) => v.user_login);

  beforeAll(async () => {
    const url = await newStoreUrl();
    d = await startDaemon({ 'store.url': url, 'limits.rateLimitMessages': 1000, 'teampass.lockReleaseGraceMs': GRACE_MS });
    await seedFixture(url, 'teampass_');
    seed = await openSeeder(url, 'teampass_');
    await seed.execSql(`INSERT INTO {{prefix}}items (id, id_tree, label) VALUES (110, '10', 'db'), (111, '10', 'ssh'), (120, '12', 'vpn')`);
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await seed?.close();
    await d?.stop();
  });

  describe('presence', () => {
    it('tells the folder who views an item, one entry per user, and forgets a closed tab', async () => {
      const bob = (await open(FIX.tokens.bob)).client;
      await subscribe(bob, 10);
      const alice1 = (await open(FIX.tokens.alice)).client;
      const alice2 = (await open(FIX.tokens.alice)).client;

      const started = await alice1.request({ action: 'start_item_view', data: { item_id: 110, folder_id: 999 } });
      expect(started).toMatchObject({ type: 'response', status: 'success', action: 'item_view_started', item_id: 110, folder_id: 10 });
      expect(started.viewers).toEqual([{ user_id: FIX.users.alice, user_login: 'alice', user_display_name: 'Alice Martin' }]);
      const seen = await bob.nextEvent();
      expect(seen).toMatchObject({ type: 'event', event: 'item_viewers_changed', data: { item_id: 110, folder_id: 10 } });
      expect(viewersOf(seen)).toEqual(['alice']);

      await alice2.request({ action: 'start_item_view', data: { item_id: 110 } });
      expect(viewersOf(await bob.nextEvent())).toEqual(['alice']);
      const both = await bob.request({ action: 'start_item_view', data: { item_id: 110 } });
      expect(both.viewers.map((v: Message) => v.user_login)).toEqual(['alice', 'bob']);
      expect(viewersOf(await bob.nextEvent())).toEqual(['alice', 'bob']);

      const again = await subscribe(bob, 10);
      expect(again.viewing_items).toEqual([{ item_id: 110, viewers: both.viewers }]);

      await alice1.close();
      expect(viewersOf(await bob.nextEvent())).toEqual(['alice', 'bob']); // alice still views it in her other tab
      await alice2.close();
      expect(viewersOf(await bob.nextEvent())).toEqual(['bob']);
      await bob.request({ action: 'stop_item_view', data: { item_id: 110 } });
      expect(viewersOf(await bob.nextEvent())).toEqual([]);
      expect((await subscribe(bob, 10)).viewing_items).toEqual([]);
      await bob.close();
    });

    it('moves a view: the old item is told first, then the new one; unsubscribing the folder ends it', async () => {
      const bob = (await open(FIX.tokens.bob)).client;
      await subscribe(bob, 10);
      await bob.request({ action: 'start_item_view', data: { item_id: 110 } });
      await bob.nextEvent();
      await bob.request({ action: 'start_item_view', data: { item_id: 111 } });
      const [first, second] = [await bob.nextEvent(), await bob.nextEvent()];
      expect([first.data.item_id, viewersOf(first)]).toEqual([110, []]);
      expect([second.data.item_id, viewersOf(second)]).toEqual([111, ['bob']]);
      const watcher = (await open(FIX.tokens.alice)).client;
      await subscribe(watcher, 10);
      await bob.request({ action: 'unsubscribe', channel: 'folder', data: { folder_id: 10 } });
      const ended = await watcher.nextEvent();
      expect([ended.event, ended.data.item_id, viewersOf(ended)]).toEqual(['item_viewers_changed', 111, []]);
      await Promise.all([bob.close(), watcher.close()]);
    });

    it('tabs sharing one socket (data.tab) each keep their own view; stop, unsubscribe and close end theirs', async () => {
      const alice = (await open(FIX.tokens.alice)).client; // one socket shared by tabs A and B
      await subscribe(alice, 10);
      const bob = (await open(FIX.tokens.bob)).client;
      await subscribe(bob, 10);
      const viewing = async () => Object.fromEntries(((await subscribe(bob, 10)).viewing_items as Message[]).map((v) => [v.item_id, v.viewers.map((x: Message) => x.user_login)]));

      await alice.request({ action: 'start_item_view', data: { item_id: 110, tab: 'tab-A' } });
      await alice.request({ action: 'start_item_view', data: { item_id: 111, tab: 'tab-B' } });
      expect(await viewing()).toEqual({ 110: ['alice'], 111: ['alice'] }); // B's view did not end A's
      await alice.request({ action: 'stop_item_view', data: { item_id: 110, tab: 'tab-B' } }); // not B's item: nothing ends
      expect(await viewing()).toEqual({ 110: ['alice'], 111: ['alice'] });
      await alice.request({ action: 'stop_item_view', data: { tab: 'tab-B' } });
      expect(await viewing()).toEqual({ 110: ['alice'] });
      await alice.request({ action: 'start_item_view', data: { item_id: 111, tab: 'tab-B' } });
      // Leaving the folder ends every tab's view in it.
      await alice.request({ action: 'unsubscribe', channel: 'folder', data: { folder_id: 10 } });
      expect(await viewing()).toEqual({});
      await subscribe(alice, 10);
      await alice.request({ action: 'start_item_view', data: { item_id: 110, tab: 'tab-A' } });
      await alice.request({ action: 'start_item_view', data: { item_id: 111 } }); // the socket's own view (no tab: TeamPass's client)
      expect(await viewing()).toEqual({ 110: ['alice'], 111: ['alice'] });
      for (const tab of ['', 'a b', 'x'.repeat(65), 5]) {
        expect(await alice.request({ action: 'start_item_view', data: { item_id: 110, tab } }), String(tab)).toMatchObject({ type: 'error', error_code: 'invalid_request', message: 'tab must be 1-64 characters [A-Za-z0-9_-]' });
      }
      await alice.close();
      await until(async () => JSON.stringify(await viewing()) === '{}', 'every view of the closed socket to end');
      await bob.close();
    });

    it('refuses a view of an item in a folder the user may not read, and of an item that does not exist', async () => {
      const bob = (await open(FIX.tokens.bob)).client;
      expect(await bob.request({ action: 'start_item_view', data: { item_id: 120 } })).toMatchObject({ type: 'error', error_code: 'forbidden', message: 'Access denied to this item folder' });
      expect(await bob.request({ action: 'start_item_view', data: { item_id: 987654 } })).toMatchObject({ type: 'error', error_code: 'not_found', message: 'Item not found' });
      expect(await bob.request({ action: 'start_item_view', data: {} })).toMatchObject({ type: 'error', error_code: 'invalid_request', message: 'item_id is required' });
      await bob.close();
    });
  });

  describe('edit locks of a user who left', () => {
    const bobLocks = async () => Number((await seed.execSql<{ n: number }>('SELECT COUNT(*) AS n FROM {{prefix}}items_edition WHERE user_id = ?', [FIX.users.bob]))[0].n);

    /** Bob's earlier sockets released his fixture locks: once every release has run, give him fresh ones. */
    const freshBobLocks = async () => {
      await until(() => d.daemon.locks.pending === 0, 'earlier releases to settle');
      await seed.execSql('DELETE FROM {{prefix}}items_edition WHERE user_id = ?', [FIX.users.bob]);
      await seed.execSql('DELETE FROM {{prefix}}kb_edition WHERE user_id = ?', [FIX.users.bob]);
      await seed.seedItemLock({ itemId: 100, folderId: 10, userId: FIX.users.bob });
      await seed.seedItemLock({ itemId: 101, folderId: 10, userId: FIX.users.bob, ageSec: 3600 });
      await seed.seedKbLock({ kbId: 7, userId: FIX.users.bob });
    };

    it('are kept when the user is back within the grace period (a page navigation)', async () => {
      await freshBobLocks();
      const first = (await open(FIX.tokens.bob)).client;
      await first.close();
      expect(d.daemon.locks.pending).toBe(1);
      const second = (await open(FIX.tokens.bob)).client;
      expect(d.daemon.locks.pending).toBe(0);
      await new Promise((r) => setTimeout(r, GRACE_MS * 3));
      expect(await bobLocks()).toBe(2);
      await second.close();
    });

    it('are released after the grace period, as journaled *_edition_stopped events with reason "disconnected"', async () => {
      await freshBobLocks();
      const alice = (await open(FIX.tokens.alice)).client;
      await subscribe(alice, 10);
      await alice.request({ action: 'subscribe', channel: 'kb' });
      const closedAt = Date.now();
      const bob = (await open(FIX.tokens.bob)).client;
      await bob.close();
      const events = [await alice.nextEvent(), await alice.nextEvent(), await alice.nextEvent()];
      expect(Date.now() - closedAt).toBeGreaterThanOrEqual(GRACE_MS);
      const who = { user_login: 'bob', user_display_name: 'Bob', user_id: FIX.users.bob, reason: 'disconnected' };
      expect(events.map((e) => e.event).sort()).toEqual(['item_edition_stopped', 'item_edition_stopped', 'kb_edition_stopped']);
      expect(events.find((e) => e.data.item_id === 100)?.data).toEqual({ item_id: 100, folder_id: 10, ...who, server_timestamp: expect.any(Number) });
      expect(events.find((e) => e.event === 'kb_edition_stopped')?.data).toEqual({ kb_id: 7, ...who, server_timestamp: expect.any(Number) });
      expect(await bobLocks()).toBe(0);
      const id = events.find((e) => e.data.item_id === 100)?.id as string;
      expect(id).toMatch(/^tpws-unlock-item-100-2-\d+$/);
      await until(async () => (await seed.execSql(`SELECT 1 FROM {{prefix}}websocket_events WHERE event_type = 'item_edition_stopped' AND processed = 1 AND event_uuid = ?`, [id])).length === 1, 'the release journaled');
      await alice.close();
    });
  });

  describe('live access changes', () => {
    it('re-reads a user\'s folders after folder_permission_changed: revoked role folders are dropped, direct grants kept, new grants usable', async () => {
      const alice = (await open(FIX.tokens.alice)).client;
      for (const f of [10, 11, 12]) expect((await subscribe(alice, f)).action).toBe('subscribed');
      await alice.request({ action: 'start_item_view', data: { item_id: 120 } });
      expect((await alice.nextEvent()).event).toBe('item_viewers_changed');
      await seed.execSql('DELETE FROM {{prefix}}users_roles WHERE user_id = ?', [FIX.users.alice]);
      await seed.seedGroups(FIX.users.alice, [13]);
      d.daemon.publish({ event_type: 'folder_permission_changed', target_type: 'user', target_id: FIX.users.alice, payload: { role_id: 1, folders: [12], access: '' } });
      expect((await alice.nextEvent()).event).toBe('folder_permission_changed');
      await d.daemon.reactions.idle();
      expect((await alice.request({ action: 'get_status' })).subscriptions.sort()).toEqual(['folder:10', 'folder:11']);
      expect(await subscribe(alice, 12)).toMatchObject({ type: 'error', error_code: 'forbidden', message: 'Access denied to this folder' });
      expect((await subscribe(alice, 13)).action).toBe('subscribed');
      // A folder-12 event no longer reaches her; a folder-13 one does.
      d.daemon.publish({ event_type: 'item_updated', target_type: 'folder', target_id: 12, payload: { item_id: 120 } });
      d.daemon.publish({ event_type: 'item_updated', target_type: 'folder', target_id: 13, payload: { item_id: 130 } });
      expect((await alice.nextEvent()).data.item_id).toBe(130);
      await alice.close();
    });

    it('re-reads the access of every subscriber of a folder that receives folder_permission_changed', async () => {
      const bob = (await open(FIX.tokens.bob)).client;
      await subscribe(bob, 10);
      await seed.execSql('DELETE FROM {{prefix}}users_groups WHERE user_id = ?', [FIX.users.bob]);
      d.daemon.publish({ event_type: 'folder_permission_changed', target_type: 'folder', target_id: 10, payload: { folders: [10] } });
      await bob.nextEvent();
      await d.daemon.reactions.idle();
      expect((await bob.request({ action: 'get_status' })).subscriptions).toEqual([]);
      await seed.seedGroups(FIX.users.bob, [10]);
      await bob.close();
    });

    it('closes the user\'s sockets with 4104 when the access cannot be re-read', async () => {
      const bob = (await open(FIX.tokens.bob)).client;
      await seed.execSql('ALTER TABLE {{prefix}}users_roles RENAME TO {{prefix}}users_roles_away');
      try {
        d.daemon.publish({ event_type: 'folder_permission_changed', target_type: 'user', target_id: FIX.users.bob, payload: {} });
        expect((await bob.closed).code).toBe(4104);
        expect(d.daemon.reactions.counters.recheckFailures).toBe(1);
      } finally {
        await seed.execSql('ALTER TABLE {{prefix}}users_roles_away RENAME TO {{prefix}}users_roles');
      }
    });
  });

  describe('session_expired', () => {
    it('is delivered, then closes every socket of the user with 4001 and revokes their tokens', async () => {
      const a = await open(FIX.tokens.dave);
      const b = await open(FIX.tokens.dave, false);
      const other = (await open(FIX.tokens.carol)).client;
      d.daemon.publish({ event_type: 'session_expired', target_type: 'user', target_id: FIX.users.dave, payload: { reason: 'session_timeout' } });
      for (const c of [a.client, b.client]) {
        expect(await c.nextEvent()).toMatchObject({ event: 'session_expired', data: { reason: 'session_timeout' } });
        expect(await c.closed).toEqual({ code: 4001, reason: 'session expired: log in again' });
      }
      await d.daemon.reactions.idle();
      expect((await refusal(a.connected.reconnect_token)).error_code).toBe('auth_failed');
      expect((await refusal(FIX.tokens.dave)).error_code).toBe('auth_failed');
      expect((await other.request({ action: 'ping' })).type).toBe('pong');
      await other.close();
    });

    it('leaves alone a login made after the expiry event', async () => {
      const fresh = 'f'.repeat(63) + '6';
      await seed.seedToken(FIX.users.dave, fresh, 3600);
      const late = (await open(fresh)).client;
      d.daemon.publish({ event_type: 'session_expired', target_type: 'user', target_id: FIX.users.dave, payload: { reason: 'account_disabled' }, created_at: Date.now() - 60_000 });
      expect((await late.nextEvent()).event).toBe('session_expired');
      await d.daemon.reactions.idle();
      expect((await late.request({ action: 'ping' })).type).toBe('pong');
      await late.close();
    });
  });

  describe('per-user caps', () => {
    it('counts sockets without Origin apart, so the admin probe is answered while five tabs are open', async () => {
      for (let i = 0; i < 5; i++) await open(FIX.tokens.admin);
      expect(await refusal(FIX.tokens.admin)).toMatchObject({ error_code: 'max_connections', message: 'Maximum 5 simultaneous connections per user.' });
      const probe = new TestClient(d.url(FIX.tokens.admin, '/'));
      clients.push(probe);
      expect((await probe.next()).type).toBe('connected');
      probe.send({ action: 'get_stats' });
      const stats = await probe.next((m) => m.type === 'stats');
      expect(stats).toMatchObject({ stats: { total_connections: expect.any(Number) }, request_id: null });
      expect(stats.stats.total_connections).toBeGreaterThanOrEqual(6);
      await probe.close();
    });
  });
});

describeStores('TeamPass misc websocket_host/port', ({ newStoreUrl }) => {
  it('warns at start when misc websocket_port does not reach the listener, with the fix', async () => {
    const url = await newStoreUrl();
    const first = await startDaemon({ 'store.url': url });
    const seed = await openSeeder(url, 'teampass_');
    await seed.seedMisc({ websocket_host: '127.0.0.1', websocket_port: '1' });
    await seed.close();
    await first.stop();
    const d = await startDaemon({ 'store.url': url });
    try {
      const warning = d.logs.find((l) => l.level === 'warn' && l.misc_port === '1');
      expect(warning).toMatchObject({ misc_host: '127.0.0.1', port: d.daemon.address.ws.port, fix: expect.any(String) });
    } finally {
      await d.stop();
    }
  });
});
