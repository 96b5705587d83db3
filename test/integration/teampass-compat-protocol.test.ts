/**
 * TeamPass compatibility, part 1: authentication (reference §3), the wire
 * protocol and every action's reply (§4), channels (§5) and the fan-out of
 * events written by TeamPass's PHP side (§2.5, §5, §11.13-14), as the
 * unchanged browser client and a real MariaDB with TeamPass's tables see them.
 * Written from the reference, not from tp-ws's code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeMysql } from '../helpers/mysql.js';
import {
  AUTH_FAILED, P, expectHandlerError, expectRefused, hex64, nowSec, startCompat, until,
  type Compat, type Message, type Tab,
} from './teampass-compat-shared.js';

/** TeamPass's fields, then tp-ws's position (docs/protocol.md §Resume), which the TeamPass client ignores. */
const CONNECTED_KEYS = ['config', 'reconnect_token', 'server_time', 'type', 'user_display_name', 'user_id', 'user_login', 'epoch', 'seq'].sort();

describeMysql('TeamPass compatibility: authentication and protocol', () => {
  let c: Compat;

  beforeAll(async () => {
    // Lock release is covered in the presence suite; keep it out of the way here.
    c = await startCompat({ 'teampass.lockReleaseGraceMs': 3_600_000 }, 100);
  });
  afterAll(async () => c?.stop());

  describe('connect and authenticate (§3, §4.3, §11.5-8)', () => {
    it('page token → `connected` with exactly the TeamPass fields and a fresh 64-hex reconnect token', async () => {
      const u = await c.user({ name: '  Alice ', lastname: ' van  Dijk ' });
      const { tab, connected } = await c.tab(u.token);
      expect(Object.keys(connected).sort()).toEqual(CONNECTED_KEYS);
      expect(connected).toMatchObject({ type: 'connected', user_id: u.id, user_login: u.login, user_display_name: 'Alice van Dijk' });
      expect(connected.config.ping_interval).toBe(30);
      expect(Number.isInteger(connected.server_time)).toBe(true);
      expect(Math.abs(connected.server_time - nowSec())).toBeLessThanOrEqual(5);
      expect(connected.reconnect_token).toMatch(/^[a-f0-9]{64}$/);
      expect(connected.reconnect_token).not.toBe(u.token);
      // The reconnect token is a websocket_tokens row of the user: now + 3600 s, used = 0 (§2.4 step 5).
      const [row] = await c.rows<{ user_id: number; used: number; ttl: number }>(
        'SELECT user_id, used, TIMESTAMPDIFF(SECOND, NOW(), expires_at) AS ttl FROM <p>websocket_tokens WHERE token = ?', [connected.reconnect_token]);
      expect(row).toMatchObject({ user_id: u.id, used: 0 });
      expect(Number(row.ttl)).toBeGreaterThan(3500);
      expect(Number(row.ttl)).toBeLessThanOrEqual(3600);
      await tab.close();
    });

    it('display name falls back to the login when name and lastname are empty', async () => {
      const u = await c.user({ name: '', lastname: null });
      const { tab, connected } = await c.tab(u.token);
      expect(connected.user_display_name).toBe(u.login);
      await tab.close();
    });

    it('the reconnect token authenticates (the client swaps it in), and issues another one; the page token stays reusable', async () => {
      const u = await c.user();
      const first = await c.tab(u.token);
      const again = await c.tab(first.connected.reconnect_token);
      expect(Object.keys(again.connected).sort()).toEqual(CONNECTED_KEYS);
      expect(again.connected).toMatchObject({ type: 'connected', user_id: u.id, user_login: u.login });
      expect(again.connected.reconnect_token).toMatch(/^[a-f0-9]{64}$/);
      expect(again.connected.reconnect_token).not.toBe(first.connected.reconnect_token);
      const third = await c.tab(u.token);
      expect(third.connected.user_id).toBe(u.id);
      expect((await third.tab.request({ action: 'get_status' })).auth_method).toBe('ws_token');
      for (const t of [first.tab, again.tab, third.tab]) await t.close();
    });

    it('accepts the upgrade on /ws, /ws/ and / (Apache rewrites to /), with any Origin or none', async () => {
      const u = await c.user();
      for (const path of ['/ws', '/ws/', '/']) {
        const { tab, connected } = await c.tab(u.token, path);
        expect(connected.user_id).toBe(u.id);
        await tab.close();
      }
      for (const origin of ['https://other.example', null]) {
        const t = c.raw(u.token, { origin });
        expect((await t.next()).type).toBe('connected');
        await t.close();
      }
    });

    it.each([
      ['no token', async () => undefined],
      ['an empty token', async () => ''],
      ['an unknown 64-hex token', async () => hex64()],
      ['a token in upper-case hex', async (cc: Compat) => (await cc.user()).token.toUpperCase()],
      ['an expired token', async (cc: Compat) => (await cc.user({ ttlSec: -5 })).token],
      ['the token of a disabled user', async (cc: Compat) => (await cc.user({ disabled: true })).token],
    ])('refuses %s: auth_failed, then close 1000', async (_name, make) => {
      const token = await make(c);
      await expectRefused(c.raw(token), 'auth_failed', AUTH_FAILED);
    });

    it('a user disabled after minting can no longer connect, with either token', async () => {
      const u = await c.user();
      const { tab, connected } = await c.tab(u.token);
      await tab.close();
      await c.sql.execSql(`UPDATE ${P}users SET disabled = 1 WHERE id = ?`, [u.id]);
      await expectRefused(c.raw(u.token), 'auth_failed', AUTH_FAILED);
      await expectRefused(c.raw(connected.reconnect_token), 'auth_failed', AUTH_FAILED);
    });

    it('a sixth browser socket of a user gets max_connections, then close 1000; a freed slot is usable again', async () => {
      const u = await c.user();
      const five = await Promise.all(Array.from({ length: 5 }, () => c.tab(u.token)));
      await expectRefused(c.raw(u.token), 'max_connections', 'Maximum 5 simultaneous connections per user.');
      await five[0].tab.close();
      let again: Message | undefined;
      await until(async () => {
        const t = c.raw(u.token);
        const m = await t.next();
        if (m.type === 'connected') again = m;
        else await t.closed;
        return m.type === 'connected';
      }, 'a slot to be free again');
      expect(again!.user_id).toBe(u.id);
      for (const f of five.slice(1)) await f.tab.close();
    });
  });

  describe('actions (§4.1, §4.2, §4.4)', () => {
    let alice: Tab;
    let admin: Tab;
    let aliceUser: Awaited<ReturnType<Compat['user']>>;
    let adminUser: Awaited<ReturnType<Compat['user']>>;
    let direct: number, viaRole: number, other: number;

    beforeAll(async () => {
      direct = c.folder();
      viaRole = c.folder();
      other = c.folder();
      aliceUser = await c.user({ folders: [direct], roleFolders: [viaRole] });
      adminUser = await c.user({ admin: true });
      alice = (await c.tab(aliceUser.token)).tab;
      admin = (await c.tab(adminUser.token)).tab;
    });

    it('ping → {type:"pong", timestamp, request_id} echoing the request id, null without one', async () => {
      const r = await alice.request({ action: 'ping' });
      expect(r).toMatchObject({ type: 'pong', request_id: expect.stringMatching(/^req_/) });
      expect(Number.isInteger(r.timestamp)).toBe(true);
      alice.send({ action: 'ping' });
      const bare = await alice.next((m) => m.type === 'pong');
      expect(bare).toHaveProperty('request_id', null);
    });

    it('pong gets no reply', async () => {
      alice.send({ action: 'pong' });
      const before = alice.history.length;
      const r = await alice.request({ action: 'ping' });
      expect(r.type).toBe('pong');
      expect(alice.history.slice(before).filter((m) => m.type !== 'ping' && m.type !== 'event')).toEqual([r]);
    });

    it('get_status: the TeamPass fields', async () => {
      const r = await alice.request({ action: 'get_status' });
      expect(r).toMatchObject({
        type: 'status', connected: true, user_id: aliceUser.id, user_login: aliceUser.login, user_display_name: aliceUser.displayName,
        auth_method: 'ws_token', subscriptions: [], request_id: r.request_id,
      });
      expect(Number.isInteger(r.connected_at)).toBe(true);
      expect(Number.isInteger(r.server_time)).toBe(true);
      expect(r.server_time).toBeGreaterThanOrEqual(r.connected_at);
    });

    it('subscribe folder: a directly granted folder', async () => {
      const r = await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: direct } });
      expect(r).toMatchObject({ type: 'response', status: 'success', action: 'subscribed', channel: 'folder', folder_id: direct, request_id: r.request_id });
      expect(r.locked_items).toEqual([]);
      expect(r.viewing_items).toEqual([]);
    });

    it('subscribe folder: a folder reached through a role, with a numeric-string id cast to int', async () => {
      const r = await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: String(viaRole) } });
      expect(r).toMatchObject({ type: 'response', status: 'success', action: 'subscribed', channel: 'folder', folder_id: viaRole });
    });

    it('subscribe folder: every roles_values type grants the folder (no type filter at login, §2.4)', async () => {
      const [r, ndne] = [c.folder(), c.folder()];
      const u = await c.user();
      await c.sql.seedRoles(u.id, [{ roleId: c.roleOf(u.id), folderIds: [r], type: 'R' }, { roleId: c.roleOf(u.id) + 1, folderIds: [ndne], type: 'NDNE' }]);
      const { tab } = await c.tab(u.token);
      for (const f of [r, ndne]) expect(await tab.request({ action: 'subscribe', channel: 'folder', data: { folder_id: f } })).toMatchObject({ action: 'subscribed', folder_id: f });
      await tab.close();
    });

    it('subscribe folder: forbidden outside the accessible folders, and for "abc" (cast to 0)', async () => {
      const r = await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: other } });
      expectHandlerError(r, 'forbidden', 'Access denied to this folder', r.request_id);
      const abc = await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 'abc' } });
      expectHandlerError(abc, 'forbidden', 'Access denied to this folder', abc.request_id);
    });

    it('subscribe folder: admins may subscribe to any folder id', async () => {
      const r = await admin.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 987654 } });
      expect(r).toMatchObject({ type: 'response', status: 'success', action: 'subscribed', channel: 'folder', folder_id: 987654, locked_items: [], viewing_items: [] });
    });

    it('subscribe kb: users when enable_kb = 1; admins refused', async () => {
      const r = await alice.request({ action: 'subscribe', channel: 'kb', data: {} });
      expect(r).toMatchObject({ type: 'response', status: 'success', action: 'subscribed', channel: 'kb', request_id: r.request_id });
      expect(Array.isArray(r.locked_kbs)).toBe(true);
      expect(Array.isArray(r.viewing_kbs)).toBe(true);
      const a = await admin.request({ action: 'subscribe', channel: 'kb', data: {} });
      expectHandlerError(a, 'forbidden', 'Access denied to knowledge base', a.request_id);
    });

    it('subscribe: channel required; an unsupported channel is named', async () => {
      const none = await alice.request({ action: 'subscribe' });
      expectHandlerError(none, 'invalid_request', 'Channel is required', none.request_id);
      const room = await alice.request({ action: 'subscribe', channel: 'room' });
      expectHandlerError(room, 'invalid_channel', "Channel 'room' is not supported", room.request_id);
    });

    it('a reply to a request without request_id carries request_id: null', async () => {
      alice.send({ action: 'subscribe', channel: 'folder', data: { folder_id: direct } });
      const r = await alice.next((m) => m.type === 'response' && m.action === 'subscribed');
      expect(r).toHaveProperty('request_id', null);
      alice.send({ action: 'subscribe', channel: 'folder', data: { folder_id: other } });
      expectHandlerError(await alice.next((m) => m.type === 'error'), 'forbidden', 'Access denied to this folder', null);
    });

    it('get_status lists the subscriptions as "folder:<id>" and "kb:0"', async () => {
      const r = await alice.request({ action: 'get_status' });
      expect([...r.subscriptions].sort()).toEqual([`folder:${direct}`, `folder:${viaRole}`, 'kb:0'].sort());
    });

    it('unsubscribe folder and kb: reply shapes; folder_id required; no channel → invalid_channel', async () => {
      const r = await alice.request({ action: 'unsubscribe', channel: 'folder', data: { folder_id: viaRole } });
      expect(r).toMatchObject({ type: 'response', status: 'success', action: 'unsubscribed', channel: 'folder', folder_id: viaRole, request_id: r.request_id });
      const k = await alice.request({ action: 'unsubscribe', channel: 'kb', data: {} });
      expect(k).toMatchObject({ type: 'response', status: 'success', action: 'unsubscribed', channel: 'kb', request_id: k.request_id });
      const noId = await alice.request({ action: 'unsubscribe', channel: 'folder', data: {} });
      expectHandlerError(noId, 'invalid_request', 'folder_id is required', noId.request_id);
      const noChannel = await alice.request({ action: 'unsubscribe' });
      expectHandlerError(noChannel, 'invalid_channel', "Channel '' is not supported", noChannel.request_id);
      expect((await alice.request({ action: 'get_status' })).subscriptions).toEqual([`folder:${direct}`]);
    });

    it('get_stats: admin only; the stats object, with request_id echoed or null', async () => {
      const f = await alice.request({ action: 'get_stats' });
      expectHandlerError(f, 'forbidden', 'Admin access required', f.request_id);
      const r = await admin.request({ action: 'get_stats' });
      expect(r).toMatchObject({ type: 'stats', request_id: r.request_id });
      expect(Number.isInteger(r.server_time)).toBe(true);
      for (const k of ['total_connections', 'unique_users', 'folder_subscriptions', 'kb_subscriptions']) expect(Number.isInteger(r.stats[k])).toBe(true);
      admin.send({ action: 'get_stats' });
      expect(await admin.next((m) => m.type === 'stats')).toHaveProperty('request_id', null);
    });

    it('get_stats counts sockets, users, folders with a subscriber and KB subscribers', async () => {
      const stats = async () => (await admin.request({ action: 'get_stats' })).stats as Record<string, number>;
      const f = c.folder();
      const u = await c.user({ folders: [f] });
      const base = await stats();
      const t1 = (await c.tab(u.token)).tab;
      await t1.request({ action: 'subscribe', channel: 'folder', data: { folder_id: f } });
      await t1.request({ action: 'subscribe', channel: 'kb', data: {} });
      const t2 = (await c.tab(u.token)).tab;
      await t2.request({ action: 'subscribe', channel: 'folder', data: { folder_id: f } });
      await t2.request({ action: 'subscribe', channel: 'kb', data: {} });
      expect(await stats()).toEqual({
        total_connections: base.total_connections + 2,
        unique_users: base.unique_users + 1,
        folder_subscriptions: base.folder_subscriptions + 1,
        kb_subscriptions: base.kb_subscriptions + 2,
      });
      await t1.close();
      await t2.close();
      let last: Record<string, number> = {};
      await until(async () => (last = await stats()).total_connections === base.total_connections, 'both sockets to be gone');
      expect(last).toEqual(base);
    });

    it('unknown or missing action → unknown_action, with request_id', async () => {
      const r = await alice.request({ action: 'fly' });
      expectHandlerError(r, 'unknown_action', "Action 'fly' is not recognized", r.request_id);
      alice.send({ request_id: 'req_noaction' });
      expectHandlerError(await alice.next((m) => m.request_id === 'req_noaction'), 'unknown_action', "Action '' is not recognized", 'req_noaction');
      alice.send({ action: 'fly' });
      expectHandlerError(await alice.next((m) => m.type === 'error'), 'unknown_action', "Action 'fly' is not recognized", null);
    });

    it('invalid JSON → invalid_json without request_id; the socket stays open', async () => {
      alice.send('{"action":');
      expect(await alice.next((m) => m.type === 'error')).toEqual({ type: 'error', error_code: 'invalid_json', message: 'Message must be valid JSON.' });
      expect((await alice.request({ action: 'ping' })).type).toBe('pong');
    });

    it('a message over 65536 bytes → message_too_large without request_id; the socket stays open', async () => {
      alice.send(JSON.stringify({ action: 'ping', request_id: 'req_big', pad: 'x'.repeat(65_536) }));
      expect(await alice.next((m) => m.type === 'error')).toEqual({ type: 'error', error_code: 'message_too_large', message: 'Message exceeds maximum size of 65536 bytes.' });
      expect((await alice.request({ action: 'ping' })).type).toBe('pong');
    });

    it('non-object JSON and a non-string request_id do not take the daemon down (§10.1 item 1, §11.12)', async () => {
      for (const frame of ['null', '5', '"x"', 'true', '[]', '{"action":"ping","request_id":1}']) alice.send(frame);
      expect((await alice.request({ action: 'ping' })).type).toBe('pong');
      expect((await admin.request({ action: 'ping' })).type).toBe('pong');
    });
  });

  describe('events from the PHP side (§2.5, §5, §11.13-14)', () => {
    let u1: Awaited<ReturnType<Compat['user']>>, u2: Awaited<ReturnType<Compat['user']>>, adm: Awaited<ReturnType<Compat['user']>>;
    let f: number, g: number;
    let tabs: Record<string, Tab>;

    beforeAll(async () => {
      f = c.folder();
      g = c.folder();
      u1 = await c.user({ folders: [f, g] });
      u2 = await c.user({ folders: [f] });
      adm = await c.user({ admin: true });
      const [a1, a2, b, x] = await Promise.all([u1.token, u1.token, u2.token, adm.token].map(async (t) => (await c.tab(t)).tab));
      tabs = { u1a: a1, u1b: a2, u2: b, admin: x };
      // u1a: folder f and the KB; u1b: folder g only; u2: f and KB; admin: f (no KB: admins are refused).
      await a1.request({ action: 'subscribe', channel: 'folder', data: { folder_id: f } });
      await a1.request({ action: 'subscribe', channel: 'kb', data: {} });
      await a2.request({ action: 'subscribe', channel: 'folder', data: { folder_id: g } });
      await b.request({ action: 'subscribe', channel: 'folder', data: { folder_id: f } });
      await b.request({ action: 'subscribe', channel: 'kb', data: {} });
      await x.request({ action: 'subscribe', channel: 'folder', data: { folder_id: f } });
    });

    it('an event reaches the client as {type:"event", event, data: payload, timestamp: unix(created_at)}; the row is marked processed', async () => {
      const payload = { item_id: 42, folder_id: f, label: 'Wi-Fi / Büro "5G"', created_by: u2.login };
      const id = await c.emit({ event: 'item_created', target: 'folder', targetId: f, payload, exclude: u2.id });
      const m = await tabs.u1a.nextNamed('item_created', (d) => d.item_id === 42);
      expect(m).toMatchObject({ type: 'event', event: 'item_created' });
      // data is the stored payload, still with exclude_user_id and server_timestamp (§4.3).
      expect(m.data).toMatchObject({ ...payload, exclude_user_id: u2.id });
      expect(Number.isInteger(m.data.server_timestamp)).toBe(true);
      expect(Number.isInteger(m.timestamp)).toBe(true);
      const [row] = await c.rows<{ created: number }>('SELECT UNIX_TIMESTAMP(created_at) AS created FROM <p>websocket_events WHERE id = ?', [id]);
      expect(m.timestamp).toBe(Number(row.created));
      await until(async () => Number((await c.rows('SELECT processed FROM <p>websocket_events WHERE id = ?', [id]))[0].processed) === 1, 'processed = 1');
      const [done] = await c.rows('SELECT processed_at FROM <p>websocket_events WHERE id = ?', [id]);
      expect(done.processed_at).not.toBeNull();
    });

    it('an event for a user with no socket is not kept: the row is marked processed', async () => {
      const nobody = await c.user();
      const id = await c.emit({ event: 'task_completed', target: 'user', targetId: nobody.id, payload: { task_id: 9 } });
      await until(async () => Number((await c.rows('SELECT processed FROM <p>websocket_events WHERE id = ?', [id]))[0].processed) === 1, 'processed = 1');
    });

    it('user → every socket of that user; exclude_user_id is not applied', async () => {
      expect(await c.deliveredTo(tabs, { event: 'task_completed', target: 'user', targetId: u1.id, payload: { task_id: 1 } })).toEqual(['u1a', 'u1b']);
      expect(await c.deliveredTo(tabs, { event: 'user_keys_ready', target: 'user', targetId: u1.id, exclude: u1.id })).toEqual(['u1a', 'u1b']);
    });

    it('folder → the current subscribers of target_id only (per socket), minus exclude_user_id', async () => {
      expect(await c.deliveredTo(tabs, { event: 'item_updated', target: 'folder', targetId: f })).toEqual(['u1a', 'u2', 'admin']);
      expect(await c.deliveredTo(tabs, { event: 'item_updated', target: 'folder', targetId: f, exclude: u1.id })).toEqual(['u2', 'admin']);
      expect(await c.deliveredTo(tabs, { event: 'item_updated', target: 'folder', targetId: g })).toEqual(['u1b']);
      expect(await c.deliveredTo(tabs, { event: 'item_updated', target: 'folder', targetId: c.folder() })).toEqual([]);
    });

    it('kb (target_id NULL) → KB subscribers, minus exclude_user_id', async () => {
      expect(await c.deliveredTo(tabs, { event: 'kb_updated', target: 'kb', targetId: null, payload: { kb_id: 3 } })).toEqual(['u1a', 'u2']);
      expect(await c.deliveredTo(tabs, { event: 'kb_created', target: 'kb', targetId: null, exclude: u2.id })).toEqual(['u1a']);
      // target_id is ignored for kb.
      expect(await c.deliveredTo(tabs, { event: 'kb_deleted', target: 'kb', targetId: 77 })).toEqual(['u1a', 'u2']);
    });

    it('broadcast → every socket, minus exclude_user_id', async () => {
      expect(await c.deliveredTo(tabs, { event: 'fields_updated', target: 'broadcast', payload: { action: 'field_added' } })).toEqual(['u1a', 'u1b', 'u2', 'admin']);
      expect(await c.deliveredTo(tabs, { event: 'fields_updated', target: 'broadcast', exclude: adm.id })).toEqual(['u1a', 'u1b', 'u2']);
    });

    it('events keep the order they were inserted in', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) ids.push(await c.emit({ event: 'item_updated', target: 'folder', targetId: f, payload: { seq_no: i } }));
      const got: number[] = [];
      for (let i = 0; i < 5; i++) got.push((await tabs.u2.nextNamed('item_updated', (d) => typeof d.seq_no === 'number')).data.seq_no);
      expect(got).toEqual([0, 1, 2, 3, 4]);
    });
  });
});

describeMysql('TeamPass compatibility: default message rate limit and heartbeat (§4.1, §4.5)', () => {
  let c: Compat;

  beforeAll(async () => {
    c = await startCompat({ 'limits.rateLimitMessages': 10, 'heartbeat.pingIntervalSec': 1, 'heartbeat.pongTimeoutSec': 2, 'teampass.lockReleaseGraceMs': 3_600_000 }, 150);
  });
  afterAll(async () => c?.stop());

  it('the 11th message within a second → rate_limited with its request_id; pong is exempt; the socket stays open', async () => {
    const u = await c.user();
    const { tab } = await c.tab(u.token);
    for (let i = 0; i < 20; i++) tab.send({ action: 'pong' });
    for (let i = 0; i < 11; i++) tab.send({ action: 'ping', request_id: `req_p${i}` });
    for (let i = 0; i < 10; i++) expect((await tab.next((m) => m.request_id === `req_p${i}`)).type).toBe('pong');
    expectHandlerError(await tab.next((m) => m.request_id === 'req_p10'), 'rate_limited', 'Too many requests, please slow down', 'req_p10');
    await until(async () => {
      tab.send({ action: 'ping', request_id: 'req_later' });
      const m = await tab.next((x) => x.request_id === 'req_later');
      return m.type === 'pong';
    }, 'the window to pass');
  });

  it('server pings are {type:"ping", timestamp} (plus the position); a tab answering {"action":"pong"} stays connected past the pong timeout', async () => {
    const u = await c.user();
    const { tab } = await c.tab(u.token);
    const ping = await tab.next((m) => m.type === 'ping', 3000);
    expect(Object.keys(ping)).toEqual(['type', 'timestamp', 'epoch', 'seq']);
    expect(Number.isInteger(ping.timestamp)).toBe(true);
    // Three more pings: well past the 2 s pong timeout, and the tab (answering each) is still there.
    for (let i = 0; i < 3; i++) await tab.next((m) => m.type === 'ping', 3000);
    expect(tab.ws.readyState).toBe(1);
    expect((await tab.request({ action: 'ping' })).type).toBe('pong');
  });
});
