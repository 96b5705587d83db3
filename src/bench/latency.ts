import { join } from 'node:path';
import Database from 'better-sqlite3';
import { IngestClient } from '../ingest/client.js';
import { ClientProcess, DaemonProcess, percentiles, sleep } from './harness.js';

export interface LatencyOptions {
  clients: number;
  ratePerSec: number;
  seconds: number;
}

/**
 * Socket ingest → browser latency: a daemon process, `clients` WebSocket
 * clients (one user each) in a second process, and this process writing
 * `ratePerSec` user-targeted events to the ingest socket (NDJSON, pipelined,
 * each to the next user in turn) for `seconds`. Latency is measured in the
 * client process from the sender's hrtime stamp, so it includes the client's
 * own parsing.
 */
export async function benchSocketLatency(o: LatencyOptions): Promise<Record<string, unknown>> {
  const daemon = await DaemonProcess.start();
  const clients = await ClientProcess.start(daemon, o.clients);
  try {
    const client = await IngestClient.connect(daemon.socket, { timeoutMs: 60_000 });
    const total = o.ratePerSec * o.seconds;
    let acks = 0;
    // A connection that fails shows as `acked` < `events`.
    const reader = (async () => {
      while (acks < total) acks += (await client.nextAcks()).length;
    })().catch(() => undefined);
    const tickMs = 10;
    const perTick = Math.max(1, Math.round((o.ratePerSec * tickMs) / 1000));
    const start = Date.now();
    let sent = 0;
    while (sent < total) {
      const frames = [];
      for (let i = 0; i < perTick && sent < total; i++, sent++) {
        frames.push({ event_type: 'bench', target_type: 'user', target_id: (sent % o.clients) + 1, payload: { t0: process.hrtime.bigint().toString(), n: sent } });
      }
      client.sendAll(frames); // one write per tick
      const next = start + (sent / o.ratePerSec) * 1000;
      await sleep(Math.max(0, next - Date.now()));
    }
    const deadline = Date.now() + 10_000;
    while (acks < total && Date.now() < deadline) await sleep(20);
    await sleep(200);
    const r = await clients.report();
    await client.close();
    await reader;
    return {
      name: 'socket-ingest-to-client-latency',
      clients: o.clients,
      rate_per_s: o.ratePerSec,
      events: total,
      acked: acks,
      delivered: r.received,
      latency_ms: percentiles(r.latenciesUs.map((u) => u / 1000)),
    };
  } finally {
    await clients.stop();
    await daemon.stop();
  }
}

type InsertRow = (userId: number, payloadJson: string) => unknown;

/**
 * Insert `ratePerSec` user-targeted rows for `seconds` with `insert` (each
 * payload carries the sender's hrtime stamp), let the poller deliver them,
 * and report the insert → client latency seen by `clients`.
 */
async function measureTablePath(o: LatencyOptions, store: string, daemon: DaemonProcess, clients: ClientProcess, insert: InsertRow): Promise<Record<string, unknown>> {
  const total = o.ratePerSec * o.seconds;
  const start = Date.now();
  for (let n = 0; n < total; n++) {
    await insert((n % o.clients) + 1, JSON.stringify({ t0: process.hrtime.bigint().toString(), n }));
    const next = start + ((n + 1) / o.ratePerSec) * 1000;
    await sleep(Math.max(0, next - Date.now()));
  }
  await sleep(1500);
  const r = await clients.report();
  return {
    name: 'table-insert-to-client-latency',
    store,
    clients: o.clients,
    rate_per_s: o.ratePerSec,
    events: total,
    delivered: r.received,
    poller: daemon.poller,
    latency_ms: percentiles(r.latenciesUs.map((u) => u / 1000)),
  };
}

const INSERT_SQL = "INSERT INTO teampass_websocket_events (event_type, target_type, target_id, payload) VALUES ('bench', 'user', ?, ?)";

/**
 * Table path on MariaDB/MySQL: the same as benchTableLatency, with the
 * daemon on a fresh database of the server at `serverUrl`
 * (`mysql://user:pass@host:port/`) and rows inserted with mysql2, as
 * TeamPass's PHP inserts them.
 */
export async function benchTableLatencyMysql(o: LatencyOptions & { serverUrl: string }): Promise<Record<string, unknown>> {
  const mysql = (await import('mysql2/promise')).default;
  const dbName = `tpws_bench_${Date.now()}`;
  const admin = await mysql.createConnection({ uri: o.serverUrl });
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(o.serverUrl);
  url.pathname = `/${dbName}`;
  const daemon = await DaemonProcess.start({ TPWS_STORE: url.toString() });
  const clients = await ClientProcess.start(daemon, o.clients);
  const conn = await mysql.createConnection({ uri: url.toString() });
  try {
    return await measureTablePath(o, 'mariadb', daemon, clients, (userId, payload) => conn.query(INSERT_SQL, [userId, payload]));
  } finally {
    await conn.end();
    await clients.stop();
    await daemon.stop();
    await admin.query(`DROP DATABASE ${dbName}`);
    await admin.end();
  }
}

/**
 * Table path: rows inserted into the embedded store by another connection
 * (as PHP would insert into MySQL) at `ratePerSec`, delivered by the poller
 * at its default intervals. Measures insert → client latency.
 */
export async function benchTableLatency(o: LatencyOptions): Promise<Record<string, unknown>> {
  const daemon = await DaemonProcess.start();
  const clients = await ClientProcess.start(daemon, o.clients);
  const db = new Database(join(daemon.stateDir, 'tp-ws.db'));
  db.pragma('busy_timeout = 5000');
  try {
    const insert = db.prepare(INSERT_SQL);
    return await measureTablePath(o, 'sqlite', daemon, clients, (userId, payload) => insert.run(userId, payload));
  } finally {
    db.close();
    await clients.stop();
    await daemon.stop();
  }
}
