import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { PROCESSED } from '../../src/store/store.js';
import { createTestDatabase, describeMysql } from '../helpers/mysql.js';
import { PrivateMariadb } from '../helpers/private-mariadb.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';
import { until } from '../helpers/until.js';
import { IngestClient } from '../../src/ingest/client.js';

const T = 'teampass_websocket_events';

async function userClient(d: TestDaemon, userId: number): Promise<TestClient> {
  const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId, ttlSec: 600 });
  return (await TestClient.login(d.url(token))).client;
}

const connect = (url: string) => mysql.createConnection({ uri: url });

describeMysql('table poller on MariaDB', () => {
  let db: { url: string; drop(): Promise<void> };
  let d: TestDaemon;
  let client: TestClient;

  beforeAll(async () => {
    db = await createTestDatabase();
    d = await startDaemon({ 'store.url': db.url, 'poller.intervalMs': 20, 'poller.idleIntervalMs': 20 });
    client = await userClient(d, 7);
  });
  afterAll(async () => {
    client?.ws.terminate();
    await d?.stop();
    await db?.drop();
  });

  it('delivers a row whose transaction commits after later rows were polled', async () => {
    const slow = await connect(db.url);
    const fast = await connect(db.url);
    try {
      await slow.beginTransaction();
      await slow.query(`INSERT INTO ${T} (event_type, target_type, target_id, payload) VALUES ('late', 'user', 7, '{}')`);
      const [[{ id: lateId }]] = await slow.query('SELECT LAST_INSERT_ID() AS id') as unknown as [[{ id: number }]];
      await fast.query(`INSERT INTO ${T} (event_type, target_type, target_id, payload) VALUES ('early', 'user', 7, '{}')`);
      // The later row (higher id) is delivered while the earlier id is still uncommitted...
      expect(await client.nextEvent()).toMatchObject({ event: 'early' });
      const polls = d.daemon.poller!.counters.polls;
      await until(() => d.daemon.poller!.counters.polls >= polls + 3, 'more polls past the hole');
      // ...and the late commit is not skipped.
      await slow.commit();
      expect(await client.nextEvent()).toMatchObject({ event: 'late', id: `row-${lateId}` });
    } finally {
      await slow.end();
      await fast.end();
    }
  });

  it('delivers the stored payload text byte for byte (spacing, key order, integers past 2^53)', async () => {
    const text = '{"b": 1,  "a": [12345678901234567890, 1.50], "s": "\\u00e9"}';
    const conn = await connect(db.url);
    try {
      await conn.query(`INSERT INTO ${T} (event_type, target_type, target_id, payload) VALUES ('exact', 'user', 7, ?)`, [text]);
    } finally {
      await conn.end();
    }
    const got = new Promise<string>((resolve) => client.ws.on('message', (m) => { if (m.toString().includes('"exact"')) resolve(m.toString()); }));
    expect(await got).toContain(`"data":${text},`);
    await client.next((m) => m.event === 'exact');
  });

  it('a second daemon on the same table stands by and takes over when the first stops', async () => {
    const d2 = await startDaemon({ 'store.url': db.url, 'poller.intervalMs': 20, 'poller.idleIntervalMs': 20 });
    const client2 = await userClient(d2, 7);
    try {
      await until(() => d2.daemon.poller!.counters.polls > 0, 'second poller started');
      expect(d.daemon.poller!.holdsLock).toBe(true);
      expect(d2.daemon.poller!.holdsLock).toBe(false);
      const conn = await connect(db.url);
      for (let i = 0; i < 20; i++) await conn.query(`INSERT INTO ${T} (event_type, target_type, target_id, payload) VALUES ('first', 'user', 7, ?)`, [JSON.stringify({ i })]);
      for (let i = 0; i < 20; i++) expect((await client.nextEvent()).data).toEqual({ i });
      const barrier = d2.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
      expect((await client2.nextEvent()).id).toBe(barrier.id); // nothing from the table reached daemon 2
      expect(d2.daemon.poller!.counters.rowsDelivered).toBe(0);

      await d.stop();
      await conn.query(`INSERT INTO ${T} (event_type, target_type, target_id, payload) VALUES ('second', 'user', 7, '{}')`);
      expect(await client2.nextEvent(15_000)).toMatchObject({ event: 'second' });
      expect(d2.daemon.poller!.holdsLock).toBe(true);
      await conn.end();
    } finally {
      client2.ws.terminate();
      await d2.stop();
    }
  });
});

describeMysql('MariaDB killed while events flow over the socket', () => {
  let server: PrivateMariadb;
  let d: TestDaemon;

  beforeAll(async () => {
    server = PrivateMariadb.start();
    const c = await connect(server.url);
    await c.query('CREATE DATABASE tpws_kill');
    await c.end();
    d = await startDaemon({ 'store.url': server.url + 'tpws_kill', 'poller.intervalMs': 20, 'poller.idleIntervalMs': 20, 'poller.maxBackoffMs': 300 });
  }, 60_000);
  afterAll(async () => {
    await d?.stop();
    await server?.stop();
  });

  it('keeps delivering and acking, journals everything once the database is back, and the poller resumes', async () => {
    const client = await userClient(d, 3);
    const ingest = await IngestClient.connect(d.daemon.ingest!.path);
    const ids: string[] = [];
    const send = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const id = `kill-${ids.length}`;
        ids.push(id);
        const ack = await ingest.request({ id, event_type: 'flow', target_type: 'user', target_id: 3 });
        expect(ack).toMatchObject({ ok: true, id });
        expect((await client.nextEvent()).id).toBe(id);
      }
    };
    await send(20);
    await server.kill();
    await send(50); // the socket path keeps delivering while the database is gone
    expect(d.daemon.journal.healthy).toBe(false);
    server.restart();
    await send(20);
    await until(() => d.daemon.journal.queued === 0 && d.daemon.journal.healthy, 'journal drained');
    const conn = await connect(server.url + 'tpws_kill');
    const [rows] = await conn.query(`SELECT event_uuid, processed FROM ${T} WHERE event_uuid LIKE 'kill-%'`) as unknown as [{ event_uuid: string; processed: number }[]];
    expect(rows.map((r) => r.event_uuid).sort()).toEqual([...ids].sort());
    expect(rows.every((r) => r.processed === PROCESSED.DELIVERED)).toBe(true);
    // The poller is back too.
    await conn.query(`INSERT INTO ${T} (event_type, target_type, target_id, payload) VALUES ('after_restart', 'user', 3, '{}')`);
    expect(await client.nextEvent(15_000)).toMatchObject({ event: 'after_restart' });
    await conn.end();
    await ingest.close();
    client.ws.terminate();
  }, 90_000);
});
