/**
 * A MySQL server that stops answering on the connections the store holds
 * (a network path gone silent: nothing closed, nothing answered) while new
 * connections still work. Each call must fail within the query timeout and
 * the next ones must go through fresh connections; the poller lock must come
 * back from the silent session that holds it; close() must not hang.
 * Found by the store-outage scenario of the reliability suite (issue #12).
 */
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MysqlStore, mysqlConnectionOptions } from '../../src/store/mysql-store.js';
import { parseMysqlUrl } from '../../src/store/store-url.js';
import { createTestDatabase, describeMysql } from '../helpers/mysql.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const TIMEOUT_MS = 400;

describeMysql('mysql store: a server gone silent on its connections', () => {
  let db: { url: string; drop(): Promise<void> };
  let proxy: TcpProxy;
  let store: MysqlStore;

  beforeAll(async () => {
    db = await createTestDatabase();
    const direct = new MysqlStore({ url: db.url, prefix: 'teampass_' });
    await direct.migrate();
    await direct.close();
    const target = parseMysqlUrl(db.url);
    proxy = await TcpProxy.start(target.port);
    const via = new URL(db.url);
    via.port = String(proxy.port);
    store = new MysqlStore({ url: via.toString(), prefix: 'teampass_', queryTimeoutMs: TIMEOUT_MS });
  });

  afterAll(async () => {
    await store?.close();
    await proxy?.close();
    await db?.drop();
  });

  const event = (n: number) => ({ eventUuid: `silent-${n}`, eventType: 't', targetType: 'broadcast', targetId: null, payload: '{}' });
  /** One call of each shape: a plain query, a transaction, a journal write. */
  const calls = (n: number) => [store.historyFloor(), store.deleteOldEvents(1000), store.releaseUserLocks(999_999), store.journalEvents([event(n)])];

  it('fails the calls caught on silent connections, then serves every later call on fresh ones', async () => {
    // Fill the pool (4 connections) and take the poller lock on its own connection.
    await Promise.all([...calls(1), ...calls(2)]);
    expect(await store.acquirePollerLock()).toBe(true);

    proxy.blackhole();
    const caught = await Promise.allSettled([...calls(3), ...calls(4)]);
    const failed = caught.filter((r) => r.status === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    for (const r of failed) expect((r as PromiseRejectedResult).reason.code).toBe('TPWS_ERR_STORE_UNAVAILABLE');

    // Before the fix every later call queued behind the lost ones and never settled (the test timed out).
    for (let round = 5; round < 8; round++) await Promise.all(calls(round));
    const sql = await createConnection(mysqlConnectionOptions(parseMysqlUrl(db.url)));
    const [rows] = await sql.query("SELECT COUNT(*) AS n FROM teampass_websocket_events WHERE event_uuid IN ('silent-5', 'silent-6', 'silent-7')");
    await sql.end();
    expect(Number((rows as { n: number }[])[0].n)).toBe(3);
  });

  it('takes the poller lock back from its own silent session, and gives it up at close without hanging', async () => {
    // The lock connection was frozen with the others: the server still has that session, holding the lock.
    const holder = async () => {
      const sql = await createConnection(mysqlConnectionOptions(parseMysqlUrl(db.url)));
      const [rows] = await sql.query("SELECT IS_USED_LOCK(CONCAT('tpws_poller_', DATABASE(), '_teampass_')) AS h");
      await sql.end();
      return (rows as { h: number | null }[])[0].h;
    };
    const before = await holder();
    expect(before).not.toBeNull();
    // Its lock connection does not answer: it is dropped, a fresh one ends the silent session and takes the lock.
    expect(await store.acquirePollerLock()).toBe(true);
    const after = await holder();
    expect(after).not.toBeNull();
    expect(after).not.toBe(before);

    proxy.blackhole();
    await store.close();
    expect(await holder()).toBe(after); // a silent session is left to the server, not waited for
  });
});
