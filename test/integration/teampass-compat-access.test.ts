/**
 * TeamPass compatibility, part 3: access changes while connected
 * (`folder_permission_changed`, reference §5 "Permission resync", §11.15),
 * `session_expired` (§6, §3.5), the per-user connection caps (§3 step 4) and
 * TeamPass's PHP admin probe (§8.3, §11.9) run by real `php` against the daemon
 * while the admin has five browser tabs open.
 * Written from the reference, not from tp-ws's code.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeMysql } from '../helpers/mysql.js';
import { describeRequiring } from '../helpers/requires.js';
import {
  AUTH_FAILED, expectHandlerError, expectRefused, startCompat, until, untilSubscriptions,
  type Compat, type Tab, type TpUser,
} from './teampass-compat-shared.js';

const PROBE = join(fileURLToPath(new URL('../php/', import.meta.url)), 'admin_probe.php');
const php = spawnSync('php', ['-r', 'echo extension_loaded("pdo_mysql") ? "ok" : "no";'], { encoding: 'utf8' });
const PHP_MISSING = php.status !== 0 ? 'php is not installed' : php.stdout !== 'ok' ? 'php lacks pdo_mysql' : undefined;
const PHP_DIAGNOSTIC = /PHP (Warning|Notice|Deprecated|Fatal error|Parse error)|^(Warning|Notice|Deprecated|Fatal error):/m;

interface ProbeResult {
  token: string | null;
  handshake: string | null;
  frames: { opcode: number; fin: boolean; json: any }[];
  stats: Record<string, number> | null;
}

/** Run test/php/admin_probe.php as the admin `userId`; its stdout is one JSON line. */
function runProbe(c: Compat, userId: number): Promise<ProbeResult> {
  const db = new URL(c.dbUrl);
  const { port } = c.d.daemon.address.ws;
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    TPWS_HOST: '127.0.0.1',
    TPWS_PORT: String(port),
    TPWS_DSN: `mysql:host=${db.hostname};port=${db.port || 3306};dbname=${db.pathname.slice(1)};charset=utf8mb4`,
    TPWS_DB_USER: decodeURIComponent(db.username),
    TPWS_DB_PASSWORD: decodeURIComponent(db.password),
    TPWS_PREFIX: 'teampass_',
    TPWS_USER_ID: String(userId),
  };
  return new Promise((resolve, reject) => {
    const child = spawn('php', ['-d', 'error_reporting=-1', '-d', 'display_errors=stderr', PROBE], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      if (PHP_DIAGNOSTIC.test(err)) return reject(new Error(`admin_probe.php reported:\n${err}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as ProbeResult);
      } catch {
        reject(new Error(`admin_probe.php exited ${code} without a JSON line:\n${out}\n${err}`));
      }
    });
  });
}

describeMysql('TeamPass compatibility: access changes, session expiry, connection caps', () => {
  let c: Compat;
  const subscribe = (t: Tab, folderId: number) => t.request({ action: 'subscribe', channel: 'folder', data: { folder_id: folderId } });
  const open = async (u: TpUser) => (await c.tab(u.token)).tab;
  /** Two users subscribed to a new folder `f` (`tl`, `tk`); the first then loses it in the database (no event yet). */
  const oneLosesFolder = async () => {
    const f = c.folder();
    const losing = await c.user({ folders: [f] });
    const keeping = await c.user({ folders: [f] });
    const tl = await open(losing);
    const tk = await open(keeping);
    await subscribe(tl, f);
    await subscribe(tk, f);
    await c.sql.execSql('DELETE FROM teampass_users_groups WHERE user_id = ? AND group_id = ?', [losing.id, f]);
    return { f, tl, tk };
  };
  const sorted = (xs: string[]) => [...xs].sort();

  beforeAll(async () => {
    c = await startCompat({ 'teampass.lockReleaseGraceMs': 3_600_000 }, 300);
  });
  afterAll(async () => c?.stop());

  describe('folder_permission_changed (§5 permission resync, §11.15)', () => {
    it('user target: delivered, then subscriptions to folders no longer allowed are dropped; direct grants kept; revoked folder refused; new folder allowed', async () => {
      const [direct, keep, revoked, granted] = [c.folder(), c.folder(), c.folder(), c.folder()];
      const u = await c.user({ folders: [direct], roleFolders: [keep, revoked] });
      const obsUser = await c.user({ admin: true });
      const t1 = await open(u);
      const t2 = await open(u);
      const obs = await open(obsUser);
      for (const f of [direct, keep, revoked]) expect((await subscribe(t1, f)).action).toBe('subscribed');
      expect((await subscribe(t2, revoked)).action).toBe('subscribed');
      await subscribe(obs, revoked);

      // An admin takes `revoked` away from the role and grants `granted` (roles.queries.php change_access_right_on_folder).
      const role = c.roleOf(u.id);
      await c.sql.execSql('DELETE FROM teampass_roles_values WHERE role_id = ? AND folder_id = ?', [role, revoked]);
      await c.sql.execSql("INSERT INTO teampass_roles_values (role_id, folder_id, type) VALUES (?, ?, 'W')", [role, granted]);
      const payload = { role_id: role, folders: [revoked], access: '' };
      await c.emit({ event: 'folder_permission_changed', target: 'user', targetId: u.id, payload });
      for (const t of [t1, t2]) expect((await t.nextNamed('folder_permission_changed')).data).toMatchObject(payload);

      expect(sorted(await untilSubscriptions(t1, (s) => !s.includes(`folder:${revoked}`), 'revoked folder dropped on tab 1')))
        .toEqual(sorted([`folder:${direct}`, `folder:${keep}`]));
      expect(await untilSubscriptions(t2, (s) => s.length === 0, 'revoked folder dropped on tab 2')).toEqual([]);
      // Dropped silently: no reply message for it.
      for (const t of [t1, t2]) expect(t.history.filter((m) => m.action === 'unsubscribed')).toEqual([]);

      // A later folder event no longer reaches them; the kept folders still do.
      expect(await c.deliveredTo({ t1, t2, obs }, { event: 'item_created', target: 'folder', targetId: revoked })).toEqual(['obs']);
      expect(await c.deliveredTo({ t1, t2, obs }, { event: 'item_created', target: 'folder', targetId: direct })).toEqual(['t1']);
      expect(await c.deliveredTo({ t1, t2, obs }, { event: 'item_created', target: 'folder', targetId: keep })).toEqual(['t1']);

      const again = await subscribe(t2, revoked);
      expectHandlerError(again, 'forbidden', 'Access denied to this folder', again.request_id);
      // The replaced ACL also guards presence (§4.2 start_item_view: canAccessFolder).
      const item = await c.item(revoked);
      const view = await t2.request({ action: 'start_item_view', data: { item_id: item } });
      expectHandlerError(view, 'forbidden', 'Access denied to this item folder', view.request_id);
      expect(await subscribe(t2, granted)).toMatchObject({ type: 'response', status: 'success', action: 'subscribed', folder_id: granted });
      expect((await subscribe(t2, direct)).action).toBe('subscribed');
    });

    it('user target: an event queued right behind it for the revoked folder no longer reaches the user', async () => {
      // TeamPass dispatches the rows of a poll one by one and resyncs right after
      // delivering folder_permission_changed (§2.4 poll, §5 resync), so the next row
      // already sees the reduced subscriptions.
      const [revoked, kept] = [c.folder(), c.folder()];
      const u = await c.user({ folders: [kept], roleFolders: [revoked] });
      const t = await open(u);
      await subscribe(t, revoked);
      await subscribe(t, kept);
      await c.sql.execSql('DELETE FROM teampass_roles_values WHERE role_id = ?', [c.roleOf(u.id)]);
      const ts = Math.floor(Date.now() / 1000);
      // Rows in one statement: the same poll batch.
      await c.sql.execSql(
        `INSERT INTO teampass_websocket_events (event_type, target_type, target_id, payload) VALUES
           ('folder_permission_changed', 'user', ?, ?), ('item_created', 'folder', ?, ?), ('task_completed', 'user', ?, ?), ('item_created', 'folder', ?, ?)`,
        [u.id, JSON.stringify({ role_id: c.roleOf(u.id), folders: [revoked], access: '', server_timestamp: ts }),
          revoked, JSON.stringify({ item_id: 1, folder_id: revoked, label: 'secret', server_timestamp: ts }),
          u.id, JSON.stringify({ task_id: 3, server_timestamp: ts }),
          kept, JSON.stringify({ item_id: 2, folder_id: kept, label: 'visible', server_timestamp: ts })]);
      await t.nextNamed('item_created', (d) => d.folder_id === kept);
      expect(t.events('item_created', (m) => m.data.folder_id === revoked)).toEqual([]);
      // Everything else still arrives, in insertion order (§11.13).
      expect(t.history.filter((m) => m.type === 'event').map((m) => m.event)).toEqual(['folder_permission_changed', 'task_completed', 'item_created']);
    });

    it('folder target: an event for that folder queued right behind it no longer reaches a user who lost the folder', async () => {
      const { f, tl, tk } = await oneLosesFolder();
      const ts = Math.floor(Date.now() / 1000);
      await c.sql.execSql(
        `INSERT INTO teampass_websocket_events (event_type, target_type, target_id, payload) VALUES
           ('folder_permission_changed', 'folder', ?, ?), ('item_created', 'folder', ?, ?)`,
        [f, JSON.stringify({ folders: [f], server_timestamp: ts }), f, JSON.stringify({ item_id: 5, folder_id: f, label: 'secret', server_timestamp: ts })]);
      await tk.nextNamed('item_created', (d) => d.item_id === 5);
      await c.barrier([tl, tk]);
      expect(tl.events('folder_permission_changed')).toHaveLength(1);
      expect(tl.events('item_created')).toEqual([]);
    });

    it('user target after a direct grant is removed (users.queries.php store_user_changes): that folder is dropped too', async () => {
      const [a, b] = [c.folder(), c.folder()];
      const u = await c.user({ folders: [a, b] });
      const t = await open(u);
      await subscribe(t, a);
      await subscribe(t, b);
      await c.sql.execSql('DELETE FROM teampass_users_groups WHERE user_id = ? AND group_id = ?', [u.id, a]);
      await c.emit({ event: 'folder_permission_changed', target: 'user', targetId: u.id, payload: { source: 'direct_grant' } });
      await t.nextNamed('folder_permission_changed', (d) => d.source === 'direct_grant');
      expect(await untilSubscriptions(t, (s) => !s.includes(`folder:${a}`), 'folder a dropped')).toEqual([`folder:${b}`]);
      const r = await subscribe(t, a);
      expectHandlerError(r, 'forbidden', 'Access denied to this folder', r.request_id);
    });

    it('user target for a user with no socket: marked processed, nothing else happens', async () => {
      const u = await c.user();
      const id = await c.emit({ event: 'folder_permission_changed', target: 'user', targetId: u.id, payload: { source: 'direct_grant' } });
      await until(async () => Number((await c.rows('SELECT processed FROM <p>websocket_events WHERE id = ?', [id]))[0].processed) === 1, 'processed = 1', 5000);
      // The user connects afterwards with the folders of the database.
      const f = c.folder();
      await c.sql.seedGroups(u.id, [f]);
      const t = await open(u);
      expect((await subscribe(t, f)).action).toBe('subscribed');
    });

    it('user target for an admin: nothing is dropped (admins reach every folder)', async () => {
      const f = c.folder();
      const adm = await c.user({ admin: true });
      const t = await open(adm);
      await subscribe(t, f);
      await c.emit({ event: 'folder_permission_changed', target: 'user', targetId: adm.id, payload: { source: 'direct_grant' } });
      await t.nextNamed('folder_permission_changed');
      await c.barrier([t]);
      expect((await t.request({ action: 'get_status' })).subscriptions).toEqual([`folder:${f}`]);
    });

    it('folder target: delivered to the folder\'s subscribers, then each receiver\'s access is recomputed', async () => {
      const { f, tl, tk } = await oneLosesFolder();
      expect(await c.deliveredTo({ tl, tk }, { event: 'folder_permission_changed', target: 'folder', targetId: f, payload: { folders: [f] } })).toEqual(['tl', 'tk']);
      expect(await untilSubscriptions(tl, (s) => s.length === 0, 'the losing user unsubscribed')).toEqual([]);
      await c.barrier([tk]);
      expect((await tk.request({ action: 'get_status' })).subscriptions).toEqual([`folder:${f}`]);
      expect(await c.deliveredTo({ tl, tk }, { event: 'item_created', target: 'folder', targetId: f })).toEqual(['tk']);
    });
  });

  describe('session_expired (§6; tp-ws closes the sockets)', () => {
    it('delivered to every socket of the user, which are then closed 4001; the user\'s tokens are gone', async () => {
      const u = await c.user();
      const other = await c.user();
      const first = await c.tab(u.token);
      const second = await c.tab(u.token);
      const bystander = await open(other);
      const before = await c.rows('SELECT id FROM <p>websocket_tokens WHERE user_id = ?', [u.id]);
      expect(before.length).toBeGreaterThanOrEqual(3); // the page token and two reconnect tokens

      await c.emit({ event: 'session_expired', target: 'user', targetId: u.id, payload: { reason: 'account_disabled' } });
      for (const t of [first.tab, second.tab]) {
        const m = await t.nextNamed('session_expired');
        expect(m.data).toMatchObject({ reason: 'account_disabled' });
        expect(await t.closed).toEqual({ code: 4001, reason: 'session expired: log in again' });
        // The event came before the close.
        expect(t.history.some((x) => x.event === 'session_expired')).toBe(true);
      }
      await until(async () => (await c.rows('SELECT id FROM <p>websocket_tokens WHERE user_id = ?', [u.id])).length === 0, 'the user\'s tokens to be deleted', 5000);

      // The client reconnects with its reconnect token; after a reload, with the page token: both refused.
      await expectRefused(c.raw(first.connected.reconnect_token), 'auth_failed', AUTH_FAILED);
      await expectRefused(c.raw(u.token), 'auth_failed', AUTH_FAILED);
      // Other users are not touched.
      expect((await bystander.request({ action: 'ping' })).type).toBe('pong');
    });

    it('any reason (session_timeout): same handling; the closed socket\'s item view ends', async () => {
      const f = c.folder();
      const u = await c.user({ folders: [f] });
      const o = await c.user({ folders: [f] });
      const item = await c.item(f);
      const obs = await open(o);
      await subscribe(obs, f);
      const { tab, connected } = await c.tab(u.token);
      await tab.request({ action: 'start_item_view', data: { item_id: item } });
      await obs.nextNamed('item_viewers_changed', (d) => d.item_id === item && d.viewers.length === 1);
      await c.emit({ event: 'session_expired', target: 'user', targetId: u.id, payload: { reason: 'session_timeout' } });
      expect((await tab.nextNamed('session_expired')).data.reason).toBe('session_timeout');
      expect((await tab.closed).code).toBe(4001);
      await obs.nextNamed('item_viewers_changed', (d) => d.item_id === item && d.viewers.length === 0);
      await until(async () => (await c.rows('SELECT id FROM <p>websocket_tokens WHERE user_id = ?', [u.id])).length === 0, 'tokens deleted', 5000);
      await expectRefused(c.raw(connected.reconnect_token), 'auth_failed', AUTH_FAILED);
    });
  });

  describe('connection caps: browsers and tools counted apart (§3 step 4, §10.1 item 10)', () => {
    it('sockets without Origin have their own cap of 5', async () => {
      const u = await c.user();
      const tools: Tab[] = [];
      for (let i = 0; i < 5; i++) {
        const t = c.raw(u.token, { origin: null });
        expect((await t.next()).type).toBe('connected');
        tools.push(t);
      }
      await expectRefused(c.raw(u.token, { origin: null }), 'max_connections', 'Maximum 5 simultaneous connections per user.');
      // Browser slots are untouched by the tools.
      const browser = await open(u);
      expect((await browser.request({ action: 'ping' })).type).toBe('pong');
      for (const t of [...tools, browser]) await t.close();
    });

    describeRequiring('the PHP admin probe (php + pdo_mysql)', { missing: PHP_MISSING, needs: 'php with pdo_mysql', hint: 'apt-get install php-cli php-mysql' }, () => {
      it('gets its stats while the admin has 5 browser tabs open; a 6th tab gets max_connections', async () => {
        const adm = await c.user({ admin: true });
        const f = c.folder();
        const tabs: Tab[] = [];
        for (let i = 0; i < 5; i++) tabs.push(await open(adm));
        await subscribe(tabs[0], f);
        await expectRefused(c.raw(adm.token), 'max_connections', 'Maximum 5 simultaneous connections per user.');

        const r = await runProbe(c, adm.id);
        expect(r.token).toMatch(/^[a-f0-9]{64}$/);
        expect(r.handshake).toMatch(/^HTTP\/1\.1 101/);
        expect(r.frames.length).toBeLessThanOrEqual(5);
        expect(r.frames.every((fr) => fr.fin && fr.opcode === 1)).toBe(true);
        const last = r.frames[r.frames.length - 1].json;
        expect(last).toMatchObject({ type: 'stats' });
        expect(Number.isInteger(last.server_time)).toBe(true);
        // The connected message may come first (§8.3).
        if (r.frames.length > 1) expect(r.frames[0].json).toMatchObject({ type: 'connected', user_id: adm.id });
        expect(r.stats).not.toBeNull();
        for (const k of ['total_connections', 'unique_users', 'folder_subscriptions', 'kb_subscriptions']) expect(Number.isInteger(r.stats![k])).toBe(true);
        // Its own socket is counted, with the admin's five tabs.
        expect(r.stats!.total_connections).toBeGreaterThanOrEqual(6);
        expect(r.stats!.unique_users).toBeGreaterThanOrEqual(1);
        expect(r.stats!.folder_subscriptions).toBeGreaterThanOrEqual(1);

        // The probe's 30 s token (generateWebSocketToken(…, 30)).
        const [row] = await c.rows<{ ttl: number }>('SELECT TIMESTAMPDIFF(SECOND, NOW(), expires_at) AS ttl FROM <p>websocket_tokens WHERE token = ?', [r.token]);
        expect(Number(row.ttl)).toBeGreaterThan(20);
        expect(Number(row.ttl)).toBeLessThanOrEqual(30);

        // The tabs are unaffected, and a second probe works as well (the first one's socket is released).
        expect((await tabs[4].request({ action: 'ping' })).type).toBe('pong');
        expect((await runProbe(c, adm.id)).stats).not.toBeNull();
      });

      it('a non-admin probe gets no stats (forbidden)', async () => {
        const u = await c.user();
        const r = await runProbe(c, u.id);
        expect(r.stats).toBeNull();
        const err = r.frames.find((fr) => fr.json?.type === 'error');
        expect(err?.json).toEqual({ type: 'error', error_code: 'forbidden', message: 'Admin access required', request_id: null });
      });
    });
  });
});
