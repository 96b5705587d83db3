/**
 * Store outages under load (issue #12): a steady stream of socket events to
 * three WebSocket clients, and rows inserted by SQL, while the daemon's own
 * MariaDB is hung (SIGSTOP), resumed, killed and restarted on its data
 * directory. The socket path must not depend on the store; the journal must
 * hold at most `journal.maxQueue` events and drop (count, log) the rest; the
 * journal, the poller and /readyz must recover. test/mysql/readiness-mysql
 * and poller-mysql check each fault alone, without load.
 */
import mysql, { type ResultSetHeader } from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { IngestClient } from '../../src/ingest/client.js';
import { PROCESSED } from '../../src/store/store.js';
import { describeMysql } from '../helpers/mysql.js';
import { PrivateMariadb } from '../helpers/private-mariadb.js';
import { scenarioNote, scenarioRandom, withSeed } from '../helpers/reliability.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { until } from '../helpers/until.js';
import { TestClient } from '../helpers/ws-client.js';
import { EventStream, ReadinessWatch, Received, type SentEvent, type Target } from './outage-load.js';
import { hang, restartMariadb, resume } from './outage-mariadb.js';

const TABLE = 'teampass_websocket_events';
const MAX_QUEUE = 300;
const BATCH_SIZE = 100;
/** docs/ingest.md §Acks: a journal write taking longer than this makes acks say `pending`. */
const SLOW_WRITE_MS = 250;
const USERS = [1, 2, 3];
/** The overflow line of src/pipeline/journal.ts. */
const OVERFLOW_LOG = /journal queue full/;

describeMysql('store outages under load', () => {
  const rng = scenarioRandom();
  let db: PrivateMariadb;
  let url: string;
  let d: TestDaemon;
  let ingest: IngestClient | undefined;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    db = PrivateMariadb.start();
    const admin = await mysql.createConnection({ uri: db.url });
    await admin.query('CREATE DATABASE tpws_outage');
    await admin.end();
    url = `${db.url}tpws_outage`;
    d = await startDaemon({
      'store.url': url, 'admin.port': 0,
      'journal.maxQueue': MAX_QUEUE, 'journal.batchSize': BATCH_SIZE,
      'poller.intervalMs': 20, 'poller.idleIntervalMs': 20, 'poller.maxBackoffMs': 200,
    }, { readiness: { canaryIntervalMs: 100, canaryTimeoutMs: 1500, checkTimeoutMs: 500, pollerStaleMs: 1500 } });
  }, 30_000);

  afterAll(async () => {
    if (db !== undefined) resume(db);
    for (const c of clients) c.ws.terminate();
    ingest?.destroy();
    await d?.stop();
    await db?.stop();
  }, 30_000);

  it('keeps delivering and acking while MariaDB hangs and is down, holds at most journal.maxQueue events, and recovers journal, poller and readiness', () => withSeed(rng, async () => {
    const t0 = Date.now();
    const pickTarget = (): Target => (rng.chance(0.5) ? { type: 'broadcast' } : { type: 'user', id: rng.pick(USERS) });
    const received: Received[] = [];
    for (const userId of USERS) {
      const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId, ttlSec: 600 });
      const { client } = await TestClient.login(d.url(token));
      clients.push(client);
      received.push(new Received(userId, client));
    }
    const readiness = new ReadinessWatch(`http://127.0.0.1:${d.daemon.address.admin!.port}/readyz`);
    readiness.start();
    const isReady = () => readiness.reports.at(-1)?.ready === true;
    await until(isReady, 'ready before the first fault', 20_000);

    // The journal's queue and the test process's RSS (the daemon runs in it), sampled throughout.
    let maxQueued = 0;
    let maxRss = 0;
    const sample = () => {
      maxQueued = Math.max(maxQueued, d.daemon.journal.queued);
    };
    const sampler = setInterval(() => {
      sample();
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
    }, 1);

    // Table rows inserted by SQL, as TeamPass's PHP does (the poller path).
    const rows: { id: string; target: Target; phase: string }[] = [];
    const insertRows = async (phase: string, count: number) => {
      const conn = await mysql.createConnection({ uri: url });
      try {
        for (let i = 0; i < count; i++) {
          const target = pickTarget();
          const [res] = await conn.query<ResultSetHeader>(
            `INSERT INTO ${TABLE} (event_type, target_type, target_id, payload) VALUES ('outage_row', ?, ?, ?)`,
            [target.type, target.type === 'user' ? target.id : null, JSON.stringify({ phase, i })],
          );
          rows.push({ id: `row-${res.insertId}`, target, phase });
        }
      } finally {
        await conn.end();
      }
    };

    ingest = await IngestClient.connect(d.daemon.ingest!.path, { timeoutMs: 10_000 });
    const stream = new EventStream(ingest, rng, pickTarget, 'healthy', sample);
    const acked = (phase: string, n: number) => () => stream.inPhase(phase).filter((e) => e.ack !== null).length >= n;
    const allAcked = (phase: string) => () => stream.error !== null || stream.inPhase(phase).every((e) => e.ack !== null);
    /** Every event of `events` reached every client it targets. */
    const delivered = (events: { id: string; target: Target }[]) => () =>
      events.every((e) => received.every((r) => !r.wants(e.target) || r.count.has(e.id)));
    const failingAt = (since: number) => readiness.first(since, (r) => !r.ready);
    const failing = (since: number, check: string) => () => failingAt(since)?.failing.includes(check) === true;
    const readyAt = (since: number) => readiness.first(since, (r) => r.ready);
    const marks: Record<string, number> = {};
    const noStreamError = () => {
      if (stream.error !== null) throw stream.error;
    };
    stream.start();

    // Healthy: events flow and are written; rows reach the clients through the poller.
    await insertRows('healthy', 5);
    await until(acked('healthy', 100), '100 acks while healthy');
    await until(() => stream.inPhase('healthy').some((e) => e.ack?.journal === 'written'), 'an ack saying written');
    noStreamError();

    // Hung: rows committed just before, then SIGSTOP. Acks must come back (saying pending)
    // and events must reach every client while the server is still stopped.
    await insertRows('before hang', 5);
    stream.phase = 'hanging';
    await hang(db);
    marks.hung = Date.now();
    stream.phase = 'hung';
    await until(failing(marks.hung, 'store'), 'not ready (store) while hung');
    await until(acked('hung', 100), '100 acks while hung');
    stream.phase = 'hung-end';
    await until(allAcked('hung'), 'every ack of the hung phase while still hung');
    noStreamError();
    await until(delivered(stream.inPhase('hung')), 'the hung phase\'s events delivered while still hung');
    const hungDrops = d.daemon.journal.counters.dropped;
    marks.resumed = Date.now();
    resume(db);
    stream.phase = 'resumed';

    // Resumed: ready again, the journal writes again, the rows from before the hang arrive.
    await until(() => readyAt(marks.resumed) !== undefined, 'ready after SIGCONT', 20_000);
    await until(() => stream.inPhase('resumed').some((e) => e.ack?.journal === 'written'), 'an ack saying written after SIGCONT');
    // The journal writes oldest first: once this event is written, so is every earlier one not dropped.
    const firstWrittenAfterHang = stream.inPhase('resumed').find((e) => e.ack?.journal === 'written')!;
    const dropsByThen = d.daemon.journal.counters.dropped;
    await insertRows('resumed', 5);
    await until(delivered(rows), 'the rows delivered after SIGCONT');
    noStreamError();

    // Down: rows committed just before, then SIGKILL. More events than journal.maxQueue while down.
    await insertRows('before kill', 5);
    stream.phase = 'killing';
    const dropsBeforeKill = d.daemon.journal.counters.dropped;
    await db.kill();
    marks.killed = Date.now();
    stream.phase = 'down';
    await until(failing(marks.killed, 'store'), 'not ready (store) while down');
    await until(acked('down', MAX_QUEUE + 150), `${MAX_QUEUE + 150} acks while down`, 30_000);
    stream.phase = 'down-end';
    await until(allAcked('down'), 'every ack of the down phase while still down');
    noStreamError();
    await until(delivered(stream.inPhase('down')), 'the down phase\'s events delivered while down');
    const downDrops = d.daemon.journal.counters.dropped - dropsBeforeKill;

    // Restarted on the same data directory (the stream goes on meanwhile).
    stream.phase = 'restarting';
    marks.restarting = Date.now();
    await restartMariadb(db);
    marks.restarted = Date.now();
    stream.phase = 'recovered';
    await until(() => readyAt(marks.restarted) !== undefined, 'ready after the restart', 20_000);
    await until(() => stream.inPhase('recovered').some((e) => e.ack?.journal === 'written'), 'an ack saying written after the restart');
    await insertRows('recovered', 5);
    await until(delivered(rows), 'every row delivered after the restart', 20_000);

    await stream.stop();
    clearInterval(sampler);
    await until(() => d.daemon.journal.queued === 0 && d.daemon.journal.healthy, 'the journal drained');
    const journal = { ...d.daemon.journal.counters };
    await until(delivered(stream.sent), 'every socket event delivered');
    await readiness.stop();
    if (readiness.error !== null) throw readiness.error;

    // Every ack arrived; in the phases where the server was hung or gone, none said written.
    const sent = stream.sent;
    expect(sent.every((e) => e.ack !== null)).toBe(true);
    for (const phase of ['hung', 'down']) {
      const notWritten = stream.inPhase(phase).filter((e) => e.ack!.journal !== 'written');
      expect(notWritten.length, `acks of the ${phase} phase saying pending or dropped`).toBe(stream.inPhase(phase).length);
    }

    // Every event, socket or table, reached every client it targets exactly once; socket
    // events in the order they were sent; nothing else arrived.
    const expected = [...sent, ...rows];
    for (const r of received) {
      const mine = expected.filter((e) => r.wants(e.target)).map((e) => e.id);
      const twice = [...r.count].filter(([, n]) => n !== 1).map(([id]) => id);
      expect(twice, `events user ${r.userId} received more than once`).toEqual([]);
      expect([...r.count.keys()].sort(), `events of user ${r.userId}`).toEqual([...mine].sort());
      const socketOrder = r.order.filter((id) => id.startsWith('outage-'));
      expect(socketOrder, `socket events of user ${r.userId} in send order`).toEqual(sent.filter((e) => r.wants(e.target)).map((e) => e.id));
    }

    // The journal never held more than journal.maxQueue events.
    expect(maxQueued).toBeLessThanOrEqual(MAX_QUEUE);
    expect(downDrops, 'events dropped while down (more than maxQueue were sent)').toBeGreaterThan(0);

    // The table after recovery: each acked event once, except exactly the counted drops; the
    // events acked as written among them; every row inserted by SQL processed.
    const conn = await mysql.createConnection({ uri: url });
    const [inTable] = await conn.query(`SELECT event_uuid, COUNT(*) AS n, MIN(processed) AS lo, MAX(processed) AS hi FROM ${TABLE} WHERE event_uuid LIKE 'outage-%' GROUP BY event_uuid`) as unknown as [{ event_uuid: string; n: number; lo: number; hi: number }[]];
    const [tableRows] = await conn.query(`SELECT id, processed FROM ${TABLE} WHERE event_type = 'outage_row'`) as unknown as [{ id: number; processed: number }[]];
    await conn.end();
    expect(inTable.filter((r) => Number(r.n) !== 1), 'event_uuid more than once').toEqual([]);
    expect(inTable.filter((r) => r.lo !== PROCESSED.DELIVERED || r.hi !== PROCESSED.DELIVERED), 'journaled rows not processed = 1').toEqual([]);
    const stored = new Set(inTable.map((r) => r.event_uuid));
    const sentIds = new Set(sent.map((e) => e.id));
    expect([...stored].filter((id) => !sentIds.has(id)), 'rows of events never sent').toEqual([]);
    const missing: SentEvent[] = sent.filter((e) => !stored.has(e.id));
    // Each missing event was counted dropped. A counted one may be in the table all the same:
    // the batch whose write the kill cut off after its commit (one write at a time, so at most
    // journal.batchSize events) failed as far as the daemon knows, and the oldest go first.
    const droppedYetStored = journal.dropped - missing.length;
    expect(droppedYetStored, 'events counted dropped but in the table (the write cut off by the kill)').toBeGreaterThanOrEqual(0);
    expect(droppedYetStored).toBeLessThanOrEqual(BATCH_SIZE);
    expect(missing.filter((e) => e.ack!.journal === 'written').map((e) => e.id), 'acked as written but not in the table').toEqual([]);
    // Nothing dropped before the server came back from the hang: every event sent until then is in the table.
    if (dropsByThen === 0) expect(sent.slice(0, sent.indexOf(firstWrittenAfterHang)).filter((e) => !stored.has(e.id)).map((e) => e.id)).toEqual([]);
    expect(tableRows.filter((r) => r.processed !== PROCESSED.DELIVERED), 'rows inserted by SQL left unprocessed').toEqual([]);
    expect(tableRows.length).toBe(rows.length);

    // Every drop was logged: the overflow lines' counts add up to the counter.
    await until(() => logged() === journal.dropped, 'the drops logged', 10_000);
    function logged(): number {
      return d.logs.filter((l) => OVERFLOW_LOG.test(String(l.msg))).reduce((sum, l) => sum + Number(l.dropped), 0);
    }

    // Readiness: not ready (store) while hung and while down, ready again after each.
    for (const [since, check] of [[marks.hung, 'store'], [marks.killed, 'store']] as const) expect(failingAt(since)?.failing).toContain(check);
    expect(readyAt(marks.resumed)).toBeDefined();
    expect(readyAt(marks.restarted)).toBeDefined();

    const count = (phase: string) => stream.inPhase(phase).length;
    const pending = (phase: string) => stream.inPhase(phase).filter((e) => e.ack!.journal === 'pending').length;
    const maxMs = (phase: string) => Math.max(0, ...stream.inPhase(phase).map((e) => e.ack!.ms));
    const after = (since: number, r: { at: number } | undefined) => (r === undefined ? '?' : `${r.at - since} ms`);
    const phases = ['healthy', 'hanging', 'hung', 'hung-end', 'resumed', 'killing', 'down', 'down-end', 'restarting', 'recovered'];
    scenarioNote('store-outage',
      `MariaDB SIGSTOPped ${marks.resumed - marks.hung} ms, then SIGKILLed and restarted on its datadir ${marks.restarted - marks.killed} ms later (restart ${marks.restarted - marks.restarting} ms), `
      + `under ${sent.length} socket events (${phases.map((p) => `${p} ${count(p)}`).join(', ')}) and ${rows.length} SQL rows to ${USERS.length} clients: `
      + `each event to each of its clients exactly once, socket events in order; every ack back, pending while hung ${pending('hung')}/${count('hung')} and down ${pending('down')}/${count('down')} `
      + `(max ack latency healthy ${maxMs('healthy')} ms, hung ${maxMs('hung')} ms, down ${maxMs('down')} ms, recovered ${maxMs('recovered')} ms; bound ${SLOW_WRITE_MS} ms + the write's start); `
      + `journal queue max ${maxQueued}/${MAX_QUEUE}, dropped ${journal.dropped} (in the table anyway ${droppedYetStored}; hung ${hungDrops}, down ${downDrops}, logged ${logged()}), written ${journal.written}, write errors ${journal.writeErrors}; `
      + `table ${stored.size} rows = ${sent.length} acked - ${journal.dropped} dropped, no duplicate event_uuid; `
      + `readiness ${readiness.transitions().join(' -> ')}: not ready ${after(marks.hung, failingAt(marks.hung))} after SIGSTOP, ready ${after(marks.resumed, readyAt(marks.resumed))} after SIGCONT, `
      + `not ready ${after(marks.killed, failingAt(marks.killed))} after SIGKILL, ready ${after(marks.restarted, readyAt(marks.restarted))} after the restart; `
      + `rss max ${Math.round(maxRss / 2 ** 20)} MB (test process with the daemon in it); ${Date.now() - t0} ms`,
      rng.seed);
  }), 55_000);
});
