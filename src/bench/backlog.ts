/**
 * `backlog-100k`: how fast the table poller drains a backlog. A daemon runs
 * with one WebSocket subscriber (user 1, in a client process); this process
 * inserts `rows` user-targeted rows into `websocket_events` (processed = 0)
 * in ONE transaction, as a burst of TeamPass writes or rows left behind while
 * the daemon was down would, and measures from the commit to the last event
 * the subscriber received. Daemon CPU over that window comes from /proc.
 *
 * Every payload carries the same `t0` (hrtime before the inserts): the client
 * reports now − t0 per event, so the drain time is the largest latency minus
 * (commit − t0).
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ClientProcess, DaemonProcess, sleep } from './harness.js';
import { cpuSeconds } from './proc.js';
import { benchMysqlServerUrl } from './teampass-daemon.js';

export interface BacklogOptions {
  /** Rows in the one transaction. */
  rows: number;
  /** `mysql://user:pass@host:port/` for MariaDB (a fresh database is made and dropped); null for the embedded SQLite store. */
  mysqlServerUrl: string | null;
  /** Longest wait for the last event, ms. Default 60,000. */
  timeoutMs?: number;
}

const COLUMNS = '(event_type, target_type, target_id, payload, processed)';
/** Rows per multi-row INSERT (inside the one transaction). */
const INSERT_CHUNK = 1000;

export async function benchBacklog(o: BacklogOptions): Promise<Record<string, unknown>> {
  if (!Number.isInteger(o.rows) || o.rows < 1 || o.rows > 10_000_000) throw new Error(`rows must be 1..10000000, got ${o.rows}`);
  const timeoutMs = o.timeoutMs ?? 60_000;
  // Set just before the inserts; every row carries it.
  let t0 = 0n;
  const payload = (n: number) => JSON.stringify({ t0: t0.toString(), n, text: 'backlog row' });

  let cleanup: (() => Promise<void>) | null = null;
  let insertAll: () => Promise<void>;
  let daemon: DaemonProcess;
  const store = o.mysqlServerUrl === null ? 'sqlite' : 'mariadb';
  if (o.mysqlServerUrl !== null) {
    const mysql = (await import('mysql2/promise')).default;
    const dbName = `tpws_bench_backlog_${process.pid}_${Date.now()}`;
    const admin = await mysql.createConnection({ uri: o.mysqlServerUrl });
    await admin.query(`CREATE DATABASE \`${dbName}\``);
    const url = new URL(o.mysqlServerUrl);
    url.pathname = `/${dbName}`;
    daemon = await DaemonProcess.start({ TPWS_STORE: url.toString() });
    const conn = await mysql.createConnection({ uri: url.toString() });
    cleanup = async () => {
      await conn.end();
      await admin.query(`DROP DATABASE \`${dbName}\``);
      await admin.end();
    };
    insertAll = async () => {
      await conn.beginTransaction();
      for (let i = 0; i < o.rows; i += INSERT_CHUNK) {
        const n = Math.min(INSERT_CHUNK, o.rows - i);
        const values: unknown[] = [];
        for (let j = 0; j < n; j++) values.push(['bench', 'user', 1, payload(i + j), 0]);
        await conn.query(`INSERT INTO teampass_websocket_events ${COLUMNS} VALUES ?`, [values]);
      }
      await conn.commit();
    };
  } else {
    daemon = await DaemonProcess.start();
    const db = new Database(join(daemon.stateDir, 'tp-ws.db'));
    db.pragma('busy_timeout = 5000');
    cleanup = async () => void db.close();
    const insert = db.prepare(`INSERT INTO teampass_websocket_events ${COLUMNS} VALUES ('bench', 'user', 1, ?, 0)`);
    insertAll = async () => {
      db.transaction(() => {
        for (let i = 0; i < o.rows; i++) insert.run(payload(i));
      })();
    };
  }

  let clients: ClientProcess | null = null;
  try {
    clients = await ClientProcess.start(daemon, 1);
    await clients.report(); // forget anything before the burst
    const pid = daemon.child.pid!;
    t0 = process.hrtime.bigint();
    await insertAll();
    const committed = process.hrtime.bigint();
    const cpu0 = cpuSeconds(pid);
    const commitAfterT0Ms = Number(committed - t0) / 1e6;

    let received = 0;
    let maxLatencyMs = 0;
    const deadline = Date.now() + timeoutMs;
    while (received < o.rows && Date.now() < deadline) {
      await sleep(100);
      const r = await clients.report();
      received += r.received;
      for (const us of r.latenciesUs) if (us / 1000 > maxLatencyMs) maxLatencyMs = us / 1000;
    }
    const cpu = cpuSeconds(pid) - cpu0;
    const drainMs = received === 0 ? null : Math.round((maxLatencyMs - commitAfterT0Ms) * 10) / 10;
    return {
      name: 'backlog',
      store,
      rows: o.rows,
      subscribers: 1,
      delivered: received,
      insert_ms: Math.round(commitAfterT0Ms),
      commit_to_last_event_ms: drainMs,
      rows_per_s: drainMs === null || drainMs <= 0 ? null : Math.round(received / (drainMs / 1000)),
      daemon_cpu_s: Math.round(cpu * 100) / 100,
      poller: daemon.poller,
      timed_out: received < o.rows,
    };
  } finally {
    await clients?.stop();
    await daemon.stop();
    await cleanup?.();
  }
}

/**
 * The `backlog-100k` scenario: 100,000 rows (quick: 1,000), on MariaDB when
 * TPWS_BENCH_MYSQL_URL or TPWS_TEST_MYSQL_URL names a server, else on SQLite;
 * `store` forces one.
 */
export function backlog100k(quick: boolean, store: 'auto' | 'sqlite' | 'mariadb' = 'auto'): Promise<Record<string, unknown>> {
  const server = benchMysqlServerUrl();
  if (store === 'mariadb' && server === null) return Promise.resolve({ name: 'backlog', store, skipped: 'set TPWS_BENCH_MYSQL_URL' });
  return benchBacklog({ rows: quick ? 1000 : 100_000, mysqlServerUrl: store === 'sqlite' ? null : server, timeoutMs: quick ? 30_000 : 60_000 });
}
