import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createConnection } from 'mysql2/promise';
import { isTpWsError } from '../../src/errors.js';
import { mysqlConnectionOptions } from '../../src/store/mysql-store.js';
import { parseMysqlUrl } from '../../src/store/store-url.js';
import { openStore, parseStoreUrl, redactStoreUrl } from '../../src/store/open-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { PROCESSED, type EventInsert, type Store } from '../../src/store/store.js';
import { createTestDatabase, describeMysql } from '../helpers/mysql.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';
import { describeStores } from '../helpers/stores.js';
import { teampass317Tables } from '../helpers/teampass-317.js';

const PREFIX = 'teampass_';
const TOKEN = (c: string) => c.repeat(64);

function event(id: string, extra: Partial<EventInsert> = {}): EventInsert {
  return { eventUuid: id, eventType: 'item_updated', targetType: 'folder', targetId: 7, payload: '{"item_id":1}', ...extra };
}

/** A TCP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describeStores('Store', ({ kind, newStoreUrl }) => {
  let url: string;
  let store: Store;
  let seed: Seeder;
  /** SQL giving a datetime column as epoch seconds, per dialect. */
  const epoch = (col: string) => (kind === 'sqlite' ? `CAST(strftime('%s', ${col}) AS INTEGER)` : `UNIX_TIMESTAMP(${col})`);
  /** SQL giving the database's now as epoch seconds. */
  const epochNow = () => (kind === 'sqlite' ? `CAST(strftime('%s', 'now') AS INTEGER)` : 'UNIX_TIMESTAMP()');

  beforeAll(async () => {
    url = await newStoreUrl();
    store = openStore(url, PREFIX);
    await store.migrate();
    seed = await openSeeder(url, PREFIX);
    await seed.seedUsers([
      { id: 1, login: 'alice', name: 'Alice', lastname: 'Anders', admin: true },
      { id: 2, login: 'bob', name: 'Bob' },
      { id: 3, login: 'carol', disabled: true },
      { id: 4, login: 'dave' },
      { id: 6, login: 'frank' },
      { id: 7, login: 'grace' },
      { id: 8, login: 'heidi' },
      { id: 9, login: 'ivan' },
    ]);
  });

  afterAll(async () => {
    await seed?.close();
    await store?.close();
  });

  describe('#migrate', () => {
    it('creates the schema once; a second run applies nothing', async () => {
      const fresh = openStore(await newStoreUrl(), PREFIX);
      try {
        const first = await fresh.migrate();
        expect(first.mode).toBe('full');
        expect(first.applied).toEqual(kind === 'sqlite' ? ['001_schema.sql', '002_history.sql'] : ['001_full_schema.sql', '002_teampass_additions.sql', '003_history.sql']);
        const second = await fresh.migrate();
        expect(second).toEqual({ applied: [], mode: 'full' });
      } finally {
        await fresh.close();
      }
    });

    it('keeps tables of another prefix apart in the same database (MySQL asks for force beside TeamPass tables)', async () => {
      const other = openStore(url, 'other_');
      try {
        if (kind === 'mysql') {
          await expect(other.migrate()).rejects.toMatchObject({ code: 'TPWS_ERR_MIGRATION', message: expect.stringContaining('holds TeamPass tables with prefix "teampass_"') });
        }
        expect((await other.migrate({ force: true })).applied.length).toBeGreaterThan(0);
        await seed.execSql(`INSERT INTO ${kind === 'sqlite' ? '"other_misc"' : '`other_misc`'} (type, intitule, valeur) VALUES ('admin', 'k', 'other')`);
        await seed.seedMisc({ k: 'main' });
        expect(await other.getMisc('k')).toBe('other');
        expect(await store.getMisc('k')).toBe('main');
      } finally {
        await other.close();
      }
    });
  });

  describe('#ping', () => {
    it('resolves on a reachable store', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });

  describe('#findTokenUser', () => {
    beforeAll(async () => {
      await seed.seedToken(1, TOKEN('a'), 3600);
      await seed.seedToken(1, TOKEN('b'), -10);
      await seed.seedToken(3, TOKEN('c'), 3600);
    });

    it('returns the enabled user of a valid token, with the expiry from the database clock', async () => {
      const found = await store.findTokenUser(TOKEN('a'));
      expect(found?.user).toEqual({ id: 1, login: 'alice', name: 'Alice', lastname: 'Anders', isAdmin: true, disabled: false });
      expect(Math.abs(found!.expiresAt - (Date.now() + 3600_000))).toBeLessThan(5_000);
    });

    it('returns null for an expired token', async () => {
      expect(await store.findTokenUser(TOKEN('b'))).toBeNull();
    });

    it('returns null when the user is disabled', async () => {
      expect(await store.findTokenUser(TOKEN('c'))).toBeNull();
    });

    it('returns null for an unknown token', async () => {
      expect(await store.findTokenUser(TOKEN('d'))).toBeNull();
    });
  });

  describe('#findUser', () => {
    it('returns an enabled user and null for disabled or unknown ids', async () => {
      expect(await store.findUser(2)).toEqual({ id: 2, login: 'bob', name: 'Bob', lastname: null, isAdmin: false, disabled: false });
      expect(await store.findUser(3)).toBeNull();
      expect(await store.findUser(999)).toBeNull();
    });
  });

  describe('#accessibleFolders', () => {
    it('is the sorted union of direct grants and the folders of the user\'s roles', async () => {
      await seed.seedGroups(2, [5, 3]);
      await seed.seedRoles(2, [
        { roleId: 10, folderIds: [3, 7] },
        { roleId: 11, folderIds: [9], type: 'ND' },
      ]);
      await seed.seedRoles(1, [{ roleId: 12, folderIds: [100] }]);
      expect(await store.accessibleFolders(2)).toEqual([3, 5, 7, 9]);
    });

    it('is empty for a user without grants or roles', async () => {
      expect(await store.accessibleFolders(4)).toEqual([]);
    });

    it('comes with the token user, the same list (one round trip per connect)', async () => {
      await store.insertTokens([{ userId: 2, token: 'f0'.repeat(32) }, { userId: 4, token: 'f1'.repeat(32) }], 60);
      expect((await store.findTokenUser('f0'.repeat(32)))?.folders).toEqual(await store.accessibleFolders(2));
      expect((await store.findTokenUser('f1'.repeat(32)))?.folders).toEqual([]);
    });

    it('comes whole with the token user when the list is long (thousands of folders)', async () => {
      // 1,200 six-digit ids: 8 KB of list, past MySQL's default group_concat_max_len (1 KB).
      const many = Array.from({ length: 1200 }, (_, i) => 100_000 + i);
      await seed.seedUsers([{ id: 5, login: 'erin' }]);
      await seed.seedGroups(5, many);
      await store.insertTokens([{ userId: 5, token: 'f2'.repeat(32) }], 60);
      expect((await store.findTokenUser('f2'.repeat(32)))?.folders).toEqual(many);
    });
  });

  describe('#insertTokens and #extendTokens', () => {
    it('inserts every token of a batch, in one call', async () => {
      const batch = ['a1', 'a2', 'a3'].map((k) => ({ userId: 2, token: k.repeat(32) }));
      await store.insertTokens(batch, 60);
      for (const t of batch) expect((await store.findTokenUser(t.token))?.user.id).toBe(2);
      await expect(store.insertTokens([], 60)).resolves.toBeUndefined();
    });

    it('inserts a token valid for ttlSec from now', async () => {
      await store.insertTokens([{ userId: 2, token: TOKEN('e') }], 60);
      const found = await store.findTokenUser(TOKEN('e'));
      expect(found?.user.login).toBe('bob');
      expect(Math.abs(found!.expiresAt - (Date.now() + 60_000))).toBeLessThan(5_000);
    });

    it('revives a token that just expired and pushes expiries forward', async () => {
      await seed.seedToken(2, TOKEN('f'), -5);
      await store.insertTokens([{ userId: 2, token: TOKEN('0') }], 60);
      expect(await store.findTokenUser(TOKEN('f'))).toBeNull();

      await store.extendTokens([TOKEN('f'), TOKEN('0')], 3600);
      for (const tok of [TOKEN('f'), TOKEN('0')]) {
        const found = await store.findTokenUser(tok);
        expect(Math.abs(found!.expiresAt - (Date.now() + 3600_000))).toBeLessThan(5_000);
      }
    });

    it('never shortens a token and accepts an empty list', async () => {
      await store.insertTokens([{ userId: 2, token: TOKEN('1') }], 7200);
      await store.extendTokens([TOKEN('1')], 60);
      await store.extendTokens([], 60);
      const found = await store.findTokenUser(TOKEN('1'));
      expect(Math.abs(found!.expiresAt - (Date.now() + 7200_000))).toBeLessThan(5_000);
    });
  });

  describe('#getMisc', () => {
    it('reads misc.valeur by intitule, or null', async () => {
      await seed.seedMisc({ websocket_enabled: '1', enable_kb: '0' });
      expect(await store.getMisc('websocket_enabled')).toBe('1');
      expect(await store.getMisc('enable_kb')).toBe('0');
      expect(await store.getMisc('jwt_secret')).toBeNull();
    });
  });

  describe('#lockedItems and #lockedKbs', () => {
    beforeAll(async () => {
      await seed.seedItemLock({ itemId: 200, folderId: 20, userId: 2 });
      await seed.seedItemLock({ itemId: 201, folderId: 20, userId: 1 });
      await seed.seedItemLock({ itemId: 202, folderId: 20, userId: 2, ageSec: 400 });
      await seed.seedItemLock({ itemId: 210, folderId: 21, userId: 2 });
      await seed.seedKbLock({ kbId: 30, userId: 2 });
      await seed.seedKbLock({ kbId: 31, userId: 2, deleted: true });
      await seed.seedKbLock({ kbId: 32, userId: 2, ageSec: 400 });
      await seed.seedKbLock({ kbId: 33, userId: 1 });
    });

    it('lists fresh item locks of the folder held by other users', async () => {
      expect(await store.lockedItems(20, 1, 300)).toEqual([{ id: 200, userLogin: 'bob', userName: 'Bob', userLastname: null }]);
      expect(await store.lockedItems(20, 2, 300)).toEqual([{ id: 201, userLogin: 'alice', userName: 'Alice', userLastname: 'Anders' }]);
    });

    it('counts a lock as fresh within timeoutSec', async () => {
      expect((await store.lockedItems(20, 1, 500)).map((l) => l.id)).toEqual([200, 202]);
      expect(await store.lockedItems(22, 1, 300)).toEqual([]);
    });

    it('lists fresh KB locks of other users on articles that are not deleted', async () => {
      expect(await store.lockedKbs(1, 300)).toEqual([{ id: 30, userLogin: 'bob', userName: 'Bob', userLastname: null }]);
      expect((await store.lockedKbs(2, 300)).map((l) => l.id)).toEqual([33]);
      expect((await store.lockedKbs(1, 500)).map((l) => l.id)).toEqual([30, 32]);
    });
  });

  describe('#renewItemLock, #renewKbLock, #releaseUserLocks, #itemFolder, #kbExists', () => {
    const lockTimes = async (table: 'items_edition' | 'kb_edition', col: 'item_id' | 'kb_id', userId: number) =>
      seed.execSql<{ id: number; age: number }>(`SELECT ${col} AS id, ${epochNow()} - timestamp AS age FROM {{prefix}}${table} WHERE user_id = ? ORDER BY ${col}`, [userId]);

    beforeAll(async () => {
      await seed.seedItemLock({ itemId: 400, folderId: 40, userId: 6, ageSec: 120 });
      await seed.seedItemLock({ itemId: 401, folderId: 41, userId: 6, ageSec: 120 });
      await seed.seedItemLock({ itemId: 402, folderId: 40, userId: 7 });
      await seed.seedKbLock({ kbId: 50, userId: 6, ageSec: 120 });
      await seed.seedKbLock({ kbId: 51, userId: 7, deleted: true });
      // A lock on an item whose row is gone: released with no folder.
      await seed.execSql(`INSERT INTO {{prefix}}items_edition (item_id, user_id, timestamp) VALUES (499, 6, ${epochNow()})`);
    });

    it('renews a lock the user holds to now, twice in the same second too, and refuses one they do not hold', async () => {
      expect(await store.renewItemLock(400, 6)).toBe(true);
      expect(await store.renewItemLock(400, 6)).toBe(true);
      expect((await lockTimes('items_edition', 'item_id', 6)).find((r) => r.id === 400)?.age).toBeLessThanOrEqual(1);
      expect(await store.renewItemLock(402, 6)).toBe(false);
      expect(await store.renewItemLock(999, 6)).toBe(false);
      expect(await store.renewKbLock(50, 6)).toBe(true);
      expect(await store.renewKbLock(50, 6)).toBe(true);
      expect(await store.renewKbLock(51, 6)).toBe(false);
    });

    it('looks up an item\'s folder and whether a KB article exists', async () => {
      expect(await store.itemFolder(400)).toBe(40);
      expect(await store.itemFolder(123456)).toBeNull();
      await seed.execSql(`INSERT INTO {{prefix}}items (id, id_tree, label) VALUES (480, '12abc', 'odd')`);
      expect(await store.itemFolder(480)).toBe(12);
      expect(await store.kbExists(50)).toBe(true);
      expect(await store.kbExists(51)).toBe(false);
      expect(await store.kbExists(123456)).toBe(false);
    });

    it('releases every lock of one user and returns them with folders and timestamps; a second release finds none', async () => {
      const released = await store.releaseUserLocks(6);
      expect(released.items.map((l) => [l.itemId, l.folderId])).toEqual([[400, 40], [401, 41], [499, null]]);
      expect(released.kbs.map((l) => l.kbId)).toEqual([50]);
      for (const l of [...released.items, ...released.kbs]) expect(l.timestamp).toBeGreaterThan(1_600_000_000);
      expect(await lockTimes('items_edition', 'item_id', 6)).toEqual([]);
      expect(await lockTimes('kb_edition', 'kb_id', 6)).toEqual([]);
      expect((await lockTimes('items_edition', 'item_id', 7)).map((r) => r.id)).toEqual([402]);
      expect(await store.releaseUserLocks(6)).toEqual({ items: [], kbs: [] });
    });
  });

  describe('#revokeUserTokens', () => {
    it('deletes the tokens of the user created up to a time, and no other', async () => {
      await seed.seedToken(8, '8'.repeat(64), 3600);
      await seed.seedToken(8, '9'.repeat(63) + '8', -10);
      await seed.seedToken(9, '9'.repeat(64), 3600);
      const now = Number((await seed.execSql<{ t: number }>(`SELECT ${epochNow()} AS t`))[0].t);
      expect(await store.revokeUserTokens(8, now - 60)).toBe(0);
      expect(await store.findTokenUser('8'.repeat(64))).not.toBeNull();
      expect(await store.revokeUserTokens(8, now + 1)).toBe(2);
      expect(await store.findTokenUser('8'.repeat(64))).toBeNull();
      expect(await store.revokeUserTokens(8, now + 1)).toBe(0);
      const left = await seed.execSql<{ n: number }>('SELECT COUNT(*) AS n FROM {{prefix}}websocket_tokens WHERE user_id = 9');
      expect(Number(left[0].n)).toBe(1);
    });
  });

  describe('events table', () => {
    beforeEach(async () => {
      await seed.execSql('DELETE FROM {{prefix}}websocket_events');
    });

    const rows = () =>
      seed.execSql<{ event_uuid: string; processed: number; has_processed_at: number; created: number }>(
        `SELECT event_uuid, processed, CASE WHEN processed_at IS NULL THEN 0 ELSE 1 END AS has_processed_at,
                ${epoch('created_at')} AS created
         FROM {{prefix}}websocket_events ORDER BY id`,
      );

    it('journals events as delivered, keeping their creation time to the second', async () => {
      const createdAt = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
      await store.journalEvents([event('j-1', { createdAt }), event('j-2', { targetType: 'broadcast', targetId: null })]);
      const got = await rows();
      expect(got.map((r) => [r.event_uuid, Number(r.processed), Number(r.has_processed_at)])).toEqual([
        ['j-1', 1, 1],
        ['j-2', 1, 1],
      ]);
      expect(Number(got[0].created)).toBe(Math.floor(createdAt / 1000));
      expect(Math.abs(Number(got[1].created) * 1000 - Date.now())).toBeLessThan(5_000);
    });

    it('does not duplicate an event id; a pending row with that id becomes delivered', async () => {
      await store.journalEvents([event('d-1')]);
      await store.journalEvents([event('d-1')]);
      await store.insertPendingEvent(event('d-2'));
      const rejected = await store.insertPendingEvent(event('d-3'));
      await store.markProcessed([rejected], PROCESSED.REJECTED);
      expect((await store.fetchPending(10)).map((r) => r.eventUuid)).toEqual(['d-2']);

      await store.journalEvents([event('d-2'), event('d-3'), event('d-4')]);
      const got = await rows();
      expect(got.map((r) => [r.event_uuid, Number(r.processed), Number(r.has_processed_at)])).toEqual([
        ['d-1', 1, 1],
        ['d-2', 1, 1],
        ['d-3', PROCESSED.REJECTED, 1],
        ['d-4', 1, 1],
      ]);
      expect(await store.fetchPending(10)).toEqual([]);
    });

    it('journals a large batch in one call', async () => {
      const many = Array.from({ length: 1200 }, (_, i) => event(`big-${i}`, { payload: JSON.stringify({ i, pad: 'x'.repeat(2000) }) }));
      await store.journalEvents(many);
      const [{ n }] = await seed.execSql<{ n: number }>('SELECT COUNT(*) AS n FROM {{prefix}}websocket_events WHERE processed = 1');
      expect(Number(n)).toBe(1200);
    });

    it('fetches pending rows oldest id first, with database times', async () => {
      const createdAt = Date.now() - 60_000;
      const ids = [
        await store.insertPendingEvent(event('p-1', { createdAt, payload: '{"msg":"héllo ✓"}' })),
        await store.insertPendingEvent(event('p-2', { targetType: 'broadcast', targetId: null })),
        await store.insertPendingEvent(event('p-3', { targetType: 'user', targetId: 4 })),
      ];
      await store.journalEvents([event('p-journaled')]);

      const pending = await store.fetchPending(10);
      expect(pending.map((r) => r.rowId)).toEqual(ids);
      const [first, second, third] = pending;
      expect(first).toMatchObject({ eventUuid: 'p-1', eventType: 'item_updated', targetType: 'folder', targetId: 7 });
      expect(JSON.parse(first.payload)).toEqual({ msg: 'héllo ✓' });
      expect(first.createdAt).toBe(Math.floor(createdAt / 1000) * 1000);
      expect(Math.abs(first.readAt - Date.now())).toBeLessThan(5_000);
      expect(second.targetId).toBeNull();
      expect(third).toMatchObject({ targetType: 'user', targetId: 4 });
      expect((await store.fetchPending(2)).map((r) => r.rowId)).toEqual(ids.slice(0, 2));
    });

    it('marks rows processed with a status and a processed_at', async () => {
      const a = await store.insertPendingEvent(event('m-1'));
      const b = await store.insertPendingEvent(event('m-2'));
      const c = await store.insertPendingEvent(event('m-3'));
      await store.markProcessed([a, c], PROCESSED.EXPIRED);
      await store.markProcessed([], PROCESSED.DELIVERED);
      expect((await store.fetchPending(10)).map((r) => r.rowId)).toEqual([b]);
      const got = await rows();
      expect(got.map((r) => [r.event_uuid, Number(r.processed), Number(r.has_processed_at)])).toEqual([
        ['m-1', PROCESSED.EXPIRED, 1],
        ['m-2', 0, 0],
        ['m-3', PROCESSED.EXPIRED, 1],
      ]);
    });

    it('deletes processed rows older than the retention, never pending ones', async () => {
      await store.journalEvents([event('o-old'), event('o-recent')]);
      const rejected = await store.insertPendingEvent(event('o-rejected'));
      await store.markProcessed([rejected], PROCESSED.REJECTED);
      await store.insertPendingEvent(event('o-pending'));
      await seed.execSql(
        `UPDATE {{prefix}}websocket_events SET processed_at = ${seed.timeSql(-30 * 3600)} WHERE event_uuid IN ('o-old', 'o-rejected')`,
      );
      await seed.execSql(
        `UPDATE {{prefix}}websocket_events SET created_at = ${seed.timeSql(-30 * 3600)} WHERE event_uuid = 'o-pending'`,
      );

      expect(await store.deleteOldEvents(24)).toBe(2);
      expect((await rows()).map((r) => r.event_uuid)).toEqual(['o-recent', 'o-pending']);
      expect(await store.deleteOldEvents(24)).toBe(0);
    });
  });

  describe('#deleteExpiredTokens', () => {
    it('deletes expired tokens only and returns their count', async () => {
      await seed.seedToken(4, TOKEN('7'), -60);
      await seed.seedToken(4, TOKEN('8'), 600);
      const countExpired = async () =>
        Number((await seed.execSql<{ n: number }>(
          `SELECT COUNT(*) AS n FROM {{prefix}}websocket_tokens WHERE expires_at < ${seed.timeSql(0)}`,
        ))[0].n);
      const expired = await countExpired();
      expect(expired).toBeGreaterThanOrEqual(1);
      expect(await store.deleteExpiredTokens()).toBe(expired);
      expect(await countExpired()).toBe(0);
      expect((await store.findTokenUser(TOKEN('8')))?.user.login).toBe('dave');
    });
  });

  describe('#acquirePollerLock', () => {
    let a: Store;
    let b: Store;
    beforeEach(() => {
      a = openStore(url, PREFIX);
      b = openStore(url, PREFIX);
    });
    afterEach(async () => {
      await a.close();
      await b.close();
    });

    it('is held by one store at a time until released', async () => {
      expect(await a.acquirePollerLock()).toBe(true);
      expect(await b.acquirePollerLock()).toBe(false);
      expect(await a.acquirePollerLock()).toBe(true);
      expect(await b.acquirePollerLock()).toBe(false);
      await a.releasePollerLock();
      expect(await b.acquirePollerLock()).toBe(true);
      expect(await a.acquirePollerLock()).toBe(false);
    });

    it('passes to another store when the holder closes', async () => {
      expect(await b.acquirePollerLock()).toBe(true);
      expect(await a.acquirePollerLock()).toBe(false);
      await b.close();
      expect(await a.acquirePollerLock()).toBe(true);
    });
  });

  describe('#close', () => {
    it('is idempotent, and later calls reject with TPWS_ERR_STORE_UNAVAILABLE', async () => {
      const s = openStore(url, PREFIX);
      await s.ping();
      await s.close();
      await s.close();
      const err = await s.getMisc('x').catch((e: unknown) => e);
      expect(isTpWsError(err, 'TPWS_ERR_STORE_UNAVAILABLE')).toBe(true);
    });
  });
});

describe('MysqlStore without a server', () => {
  it('rejects with TPWS_ERR_STORE_UNAVAILABLE and never shows the password', async () => {
    const port = await closedPort();
    const s = openStore(`mysql://tpws:s3cr%40t-pw@127.0.0.1:${port}/teampass`, PREFIX);
    try {
      for (const attempt of [() => s.ping(), () => s.acquirePollerLock(), () => s.migrate()]) {
        const err = await attempt().catch((e: unknown) => e);
        expect(isTpWsError(err, 'TPWS_ERR_STORE_UNAVAILABLE')).toBe(true);
        expect(String((err as Error).message)).not.toMatch(/s3cr/);
      }
    } finally {
      await s.close();
    }
  });
});

describe('parseStoreUrl and redactStoreUrl', () => {
  it('parses sqlite and mysql URLs', () => {
    expect(parseStoreUrl('sqlite:/var/lib/tp-ws/tp-ws.db')).toEqual({ kind: 'sqlite', path: '/var/lib/tp-ws/tp-ws.db' });
    expect(parseStoreUrl('sqlite:///var/lib/x.db')).toEqual({ kind: 'sqlite', path: '/var/lib/x.db' });
    expect(parseStoreUrl('mysql://tp%40user:p%2Fw@db.example:3307/teampass')).toEqual({
      kind: 'mysql',
      url: 'mysql://tp%40user:p%2Fw@db.example:3307/teampass',
      host: 'db.example',
      port: 3307,
      user: 'tp@user',
      database: 'teampass',
      hasPassword: true,
    });
    expect(parseStoreUrl('mysql://tp@db/teampass')).toMatchObject({ user: 'tp', hasPassword: false });
    expect(parseStoreUrl('mysql://u:p@localhost/tp?socket=/run/mysqld/mysqld.sock')).toMatchObject({
      port: 3306,
      socketPath: '/run/mysqld/mysqld.sock',
    });
  });

  it('rejects bad URLs with TPWS_ERR_STORE_URL without echoing the password', () => {
    for (const bad of ['postgres://u:hunter2@h/db', 'mysql://u:hunter2@h/', 'mysql://u:hunter2@h/db?ssl=1', 'sqlite:', 'mysql://u:hunter2@h:99999/db']) {
      let err: unknown;
      try {
        parseStoreUrl(bad);
      } catch (e) {
        err = e;
      }
      expect(isTpWsError(err, 'TPWS_ERR_STORE_URL'), bad).toBe(true);
      expect((err as Error).message).not.toMatch(/hunter2/);
    }
  });

  it('redacts the password, even a malformed one', () => {
    expect(redactStoreUrl('mysql://tp:secret@db:3306/teampass')).toBe('mysql://tp:***@db:3306/teampass');
    expect(redactStoreUrl('mysql://tp:se/cr@t@db/teampass')).toBe('mysql://tp:***@db/teampass');
    expect(redactStoreUrl('mysql://tp@db/teampass')).toBe('mysql://tp@db/teampass');
    expect(redactStoreUrl('sqlite:/var/lib/tp-ws.db')).toBe('sqlite:/var/lib/tp-ws.db');
  });
});

describeMysql('MysqlStore on an existing TeamPass database', () => {
  let db: { url: string; drop(): Promise<void> };
  let raw: Awaited<ReturnType<typeof createConnection>>;
  let store: Store;

  const columns = async (table: string) => {
    const [rows] = await raw.query(
      `SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT FROM information_schema.COLUMNS
       WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [table],
    );
    return rows as { COLUMN_NAME: string }[];
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    raw = await createConnection(mysqlConnectionOptions(parseMysqlUrl(db.url)));
    await raw.query("SET time_zone = '+00:00'");
    // TeamPass 3.1.7's tables, as its upgrade script creates them: no 'kb', no event_uuid.
    for (const sql of teampass317Tables('teampass_')) await raw.query(sql);
    await raw.query(`INSERT INTO teampass_users (id, login, pw) VALUES (1, 'admin', 'x')`);
    await raw.query(
      `INSERT INTO teampass_websocket_events (created_at, event_type, target_type, target_id, payload)
       VALUES ('2024-05-06 07:08:09', 'item_created', 'folder', 3, '{"item_id": 42}')`,
    );
    store = openStore(db.url, PREFIX);
  });

  afterAll(async () => {
    await store?.close();
    await raw?.end();
    await db?.drop();
  });

  it('adds event_uuid with a unique index and leaves TeamPass\'s columns and rows alone', async () => {
    const eventsBefore = await columns('teampass_websocket_events');
    const usersBefore = await columns('teampass_users');
    const [rowsBefore] = await raw.query('SELECT * FROM teampass_websocket_events');

    expect(await store.migrate()).toEqual({ applied: ['002_teampass_additions.sql', '003_history.sql'], mode: 'teampass' });

    const eventsAfter = await columns('teampass_websocket_events');
    expect(eventsAfter.slice(0, eventsBefore.length)).toEqual(eventsBefore);
    expect(eventsAfter.slice(eventsBefore.length)).toEqual([
      // MariaDB spells a NULL default 'NULL', MySQL null.
      { COLUMN_NAME: 'event_uuid', COLUMN_TYPE: 'varchar(64)', IS_NULLABLE: 'YES', COLUMN_DEFAULT: expect.toSatisfy((d) => d === null || d === 'NULL') },
      // MariaDB says bigint(20), MySQL 8 bigint.
      { COLUMN_NAME: 'tpws_pos', COLUMN_TYPE: expect.stringMatching(/^bigint/), IS_NULLABLE: 'YES', COLUMN_DEFAULT: expect.toSatisfy((d) => d === null || d === 'NULL') },
    ]);
    expect(await columns('teampass_users')).toEqual(usersBefore);
    const [idx] = await raw.query(
      `SELECT NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS
       WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'teampass_websocket_events' AND INDEX_NAME = 'idx_event_uuid'`,
    );
    expect(idx).toEqual([{ NON_UNIQUE: 0, COLUMN_NAME: 'event_uuid' }]);
    const [rowsAfter] = await raw.query('SELECT id, created_at, event_type, target_type, target_id, payload, processed, processed_at FROM teampass_websocket_events');
    expect(rowsAfter).toEqual(rowsBefore);

    // Tables TeamPass 3.1.7 may lack are created; the full schema's are not.
    const [tables] = await raw.query(
      `SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME`,
    );
    expect((tables as { t: string }[]).map((r) => r.t)).toEqual([
      'teampass_tpws_epochs',
      'teampass_tpws_migrations',
      'teampass_tpws_state',
      'teampass_users',
      'teampass_websocket_events',
      'teampass_websocket_tokens',
    ]);
  });

  it('applies nothing the second time, and the old row is still pending for the poller', async () => {
    expect(await store.migrate()).toEqual({ applied: [], mode: 'teampass' });
    const pending = await store.fetchPending(10);
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ eventUuid: null, eventType: 'item_created', targetType: 'folder', targetId: 3 });
    expect(JSON.parse(pending[0].payload)).toEqual({ item_id: 42 });
    expect(pending[0].createdAt).toBe(Date.UTC(2024, 4, 6, 7, 8, 9));
  });
});

describeMysql('MysqlStore poller lock on a lost connection', () => {
  let db: { url: string; drop(): Promise<void> };
  let seed: Seeder;
  let a: Store;
  let b: Store;

  beforeAll(async () => {
    db = await createTestDatabase();
    a = openStore(db.url, PREFIX);
    b = openStore(db.url, PREFIX);
    await a.migrate();
    seed = await openSeeder(db.url, PREFIX);
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await seed?.close();
    await db?.drop();
  });

  it('loses the lock with its connection, and gets it back on a new one once free', async () => {
    expect(await a.acquirePollerLock()).toBe(true);
    const holder = async () =>
      (await seed.execSql<{ id: number | null }>(`SELECT IS_USED_LOCK(CONCAT('tpws_poller_', DATABASE(), '_${PREFIX}')) AS id`))[0].id;
    const first = await holder();
    expect(first).not.toBeNull();

    // The server ends the lock session (as on a network cut): the lock goes with it.
    await seed.execSql(`KILL CONNECTION ${Number(first)}`);
    // KILL returns before the killed session has ended; wait for the server to free the lock.
    for (let i = 0; i < 500 && (await holder()) !== null; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await b.acquirePollerLock()).toBe(true);
    expect(await a.acquirePollerLock()).toBe(false);

    await b.releasePollerLock();
    expect(await a.acquirePollerLock()).toBe(true);
    expect(await holder()).not.toBe(first);
  });
});

describe('SqliteStore file permissions', () => {
  it('creates a new database file readable by its owner only, in a private directory', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tpws-perm-'));
    const path = join(root, 'state', 'tp-ws.db');
    const store = new SqliteStore({ path, prefix: 'teampass_' });
    await store.migrate();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, 'state')).mode & 0o777).toBe(0o700);
    await store.close();
    rmSync(root, { recursive: true, force: true });
  });
});
