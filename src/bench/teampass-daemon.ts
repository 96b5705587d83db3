/**
 * A tp-ws daemon run for a benchmark as TeamPass runs it: `node bin/tp-ws.js
 * serve` in its own process, authenticating TeamPass tokens
 * (`websocket_tokens`) against a real store: a fresh MariaDB database when
 * TPWS_BENCH_MYSQL_URL or TPWS_TEST_MYSQL_URL names a server, else the
 * embedded SQLite store in a temp state directory. Users 1..N are seeded with
 * one 64-hex token each and access to one folder, so every socket of a
 * scenario is a real TeamPass user that may subscribe to that folder.
 *
 *   const d = await TeampassDaemon.start({ users: 1000 });
 *   // d.wsUrl, d.tokens[i] (user i + 1), d.ingestSocket, d.pid, d.adminUrl
 *   const h0 = await d.fanoutHistogram(); … const h = histogramDelta(h0, await d.fanoutHistogram());
 *   await d.kill('SIGKILL'); await d.insertEvents([…]); await d.restart(); // same store, new process
 *   await d.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createConnection, type Connection } from 'mysql2/promise';
import { openStore } from '../store/open-store.js';
import { mysqlConnectionOptions } from '../store/mysql-store.js';
import { parseMysqlUrl } from '../store/store-url.js';
import { fdSoftLimit } from './proc.js';

const BIN = fileURLToPath(new URL('../../bin/tp-ws.js', import.meta.url));
const PREFIX = 'teampass_';
/** Rows per INSERT while seeding (10,000 users take ~30 statements on MariaDB). */
const SEED_CHUNK = 1000;

export type BenchStoreKind = 'sqlite' | 'mariadb';

export interface TeampassDaemonOptions {
  /** Users 1..users, each with one token and access to `folderId`. */
  users: number;
  /** Folder every user may read (through `users_groups`). Default 1. */
  folderId?: number;
  /** The folder user `id` may read instead of `folderId` (one per user; a positive integer). */
  folderOf?: (userId: number) => number;
  /** Extra environment for the daemon (`TPWS_*` overrides), applied last. */
  env?: Record<string, string>;
  /** Raise the daemon's soft fd limit to this (or to the hard limit with 'max') before exec. */
  fdLimit?: number | 'max';
  /** 'auto' (default): MariaDB when a server URL is in the environment, else SQLite. */
  store?: 'auto' | BenchStoreKind;
  /** Milliseconds to wait for the banner. Default 30,000. */
  startTimeoutMs?: number;
}

/** The MySQL/MariaDB server of the benchmarks, if any (`mysql://user:pass@host:port/`). */
/**
 * Node options for the daemon process only, from `TPWS_BENCH_DAEMON_NODE_ARGS`
 * (space-separated), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` for the
 * profile of a scenario (NODE_OPTIONS refuses `--cpu-prof`, and would
 * profile the clients too).
 */
export function daemonNodeArgs(): string[] {
  return (process.env.TPWS_BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}

export function benchMysqlServerUrl(): string | null {
  return process.env.TPWS_BENCH_MYSQL_URL || process.env.TPWS_TEST_MYSQL_URL || null;
}

/** Cumulative buckets of a Prometheus histogram, as read from /metrics. */
export interface HistogramSnapshot {
  /** [upper bound in seconds, cumulative count]; the last bound is +Infinity. */
  buckets: [number, number][];
  count: number;
  sum: number;
}

/** A histogram over a window: what happened between two snapshots. */
export interface HistogramWindow {
  count: number;
  /** Estimates from the buckets (linear within a bucket, as Prometheus' histogram_quantile). */
  p50_ms: number | null;
  p99_ms: number | null;
  mean_ms: number | null;
  /** Observations above the last finite bucket (`top_bucket_ms`): a quantile that falls there is reported as that bound, a floor. */
  above_top_bucket: number;
  top_bucket_ms: number | null;
}

/** Events observed between `before` and `after` (two snapshots of the same histogram). */
export function histogramDelta(before: HistogramSnapshot, after: HistogramSnapshot): HistogramWindow {
  const prev = new Map(before.buckets);
  const buckets = after.buckets.map(([le, c]): [number, number] => [le, c - (prev.get(le) ?? 0)]);
  const count = after.count - before.count;
  const sum = after.sum - before.sum;
  const q = (p: number): number | null => {
    if (count <= 0) return null;
    const rank = p * count;
    let lower = 0;
    let below = 0;
    for (const [le, c] of buckets) {
      if (c >= rank) {
        // Past the last finite bound the histogram knows nothing better than that bound.
        if (!Number.isFinite(le)) return round3(lower * 1000);
        const inBucket = c - below;
        const frac = inBucket > 0 ? (rank - below) / inBucket : 1;
        return round3((lower + (le - lower) * frac) * 1000);
      }
      lower = le;
      below = c;
    }
    return null;
  };
  const finite = buckets.filter(([le]) => Number.isFinite(le));
  const top = finite.length > 0 ? finite[finite.length - 1] : null;
  return {
    count, p50_ms: q(0.5), p99_ms: q(0.99), mean_ms: count > 0 ? round3((sum / count) * 1000) : null,
    above_top_bucket: top === null ? count : count - top[1], top_bucket_ms: top === null ? null : round3(top[0] * 1000),
  };
}

/** Parse histogram `name` out of a Prometheus exposition text (no labels). */
export function parseHistogram(text: string, name: string): HistogramSnapshot {
  const buckets: [number, number][] = [];
  let count = 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_bucket{`)) {
      const m = /le="([^"]+)"\}\s+(\S+)/.exec(line);
      if (m) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
    } else if (line.startsWith(`${name}_count `)) {
      count = Number(line.slice(name.length + 7));
    } else if (line.startsWith(`${name}_sum `)) {
      sum = Number(line.slice(name.length + 5));
    }
  }
  if (buckets.length === 0) throw new Error(`no histogram ${name} in /metrics`);
  return { buckets: buckets.sort((a, b) => a[0] - b[0]), count, sum };
}

/** A database the daemon uses, and how to remove it. */
interface BenchStore {
  kind: BenchStoreKind;
  url: string;
  drop(): Promise<void>;
}

async function onServer(serverUrl: string, sql: string): Promise<void> {
  const conn = await createConnection(mysqlConnectionOptions(parseMysqlUrl(serverUrl, { requireDatabase: false })));
  try {
    await conn.query(sql);
  } finally {
    await conn.end();
  }
}

async function makeStore(kind: BenchStoreKind, stateDir: string): Promise<BenchStore> {
  if (kind === 'sqlite') return { kind, url: `sqlite:${join(stateDir, 'tp-ws.db')}`, drop: async () => undefined };
  const server = benchMysqlServerUrl();
  if (server === null) throw new Error('store mariadb needs TPWS_BENCH_MYSQL_URL or TPWS_TEST_MYSQL_URL');
  const name = `tpws_bench_${randomBytes(6).toString('hex')}`;
  await onServer(server, `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  return { kind, url: url.toString(), drop: () => onServer(server, `DROP DATABASE IF EXISTS \`${name}\``) };
}

/**
 * Users 1..n (`bench<id>`), each reading `folderOf(id)` through `users_groups`
 * and holding the token `tokens[id - 1]` for two hours. Written with plain
 * SQL in multi-row INSERTs: the daemon's schema is TeamPass's, so this is
 * what TeamPass's own tables would hold.
 */
async function seed(store: BenchStore, tokens: string[], folderOf: (userId: number) => number): Promise<void> {
  const ids = tokens.map((_, i) => i + 1);
  const chunks = <T>(xs: T[]) => Array.from({ length: Math.ceil(xs.length / SEED_CHUNK) }, (_, i) => xs.slice(i * SEED_CHUNK, (i + 1) * SEED_CHUNK));
  if (store.kind === 'sqlite') {
    const db = new Database(store.url.slice('sqlite:'.length));
    try {
      db.pragma('busy_timeout = 5000');
      const user = db.prepare(`INSERT INTO "${PREFIX}users" (id, login) VALUES (?, ?)`);
      const group = db.prepare(`INSERT INTO "${PREFIX}users_groups" (user_id, group_id) VALUES (?, ?)`);
      const token = db.prepare(`INSERT INTO "${PREFIX}websocket_tokens" (user_id, token, expires_at, used) VALUES (?, ?, datetime('now', '+7200 seconds'), 0)`);
      db.transaction(() => {
        for (const id of ids) {
          user.run(id, `bench${id}`);
          group.run(id, folderOf(id));
          token.run(id, tokens[id - 1]);
        }
      })();
    } finally {
      db.close();
    }
    return;
  }
  const conn: Connection = await createConnection(mysqlConnectionOptions(parseMysqlUrl(store.url)));
  try {
    for (const part of chunks(ids)) {
      await conn.query(`INSERT INTO \`${PREFIX}users\` (id, login) VALUES ?`, [part.map((id) => [id, `bench${id}`])]);
      await conn.query(`INSERT INTO \`${PREFIX}users_groups\` (user_id, group_id) VALUES ?`, [part.map((id) => [id, folderOf(id)])]);
      await conn.query(
        `INSERT INTO \`${PREFIX}websocket_tokens\` (user_id, token, expires_at, used) VALUES ${part.map(() => '(?, ?, DATE_ADD(NOW(), INTERVAL 7200 SECOND), 0)').join(', ')}`,
        part.flatMap((id) => [id, tokens[id - 1]]),
      );
    }
  } finally {
    await conn.end();
  }
}

/** A row of the events table as TeamPass's PHP writes it (`processed = 0`, left to the poller). */
export interface EventRow {
  eventType: string;
  targetType: 'user' | 'folder' | 'kb' | 'broadcast';
  targetId: number | null;
  payload: Record<string, unknown>;
}

const EVENT_COLUMNS = '(event_type, target_type, target_id, payload, processed)';

async function insertEventRows(store: BenchStore, rows: EventRow[]): Promise<void> {
  const values = rows.map((r) => [r.eventType, r.targetType, r.targetId, JSON.stringify(r.payload), 0]);
  if (store.kind === 'sqlite') {
    const db = new Database(store.url.slice('sqlite:'.length));
    try {
      db.pragma('busy_timeout = 5000');
      const insert = db.prepare(`INSERT INTO "${PREFIX}websocket_events" ${EVENT_COLUMNS} VALUES (?, ?, ?, ?, ?)`);
      db.transaction(() => {
        for (const v of values) insert.run(...v);
      })();
    } finally {
      db.close();
    }
    return;
  }
  const conn: Connection = await createConnection(mysqlConnectionOptions(parseMysqlUrl(store.url)));
  try {
    await conn.beginTransaction();
    for (let i = 0; i < values.length; i += SEED_CHUNK) {
      await conn.query(`INSERT INTO \`${PREFIX}websocket_events\` ${EVENT_COLUMNS} VALUES ?`, [values.slice(i, i + SEED_CHUNK)]);
    }
    await conn.commit();
  } finally {
    await conn.end();
  }
}

async function execStatement(store: BenchStore, sql: string, params: unknown[]): Promise<void> {
  if (store.kind === 'sqlite') {
    const db = new Database(store.url.slice('sqlite:'.length));
    try {
      db.pragma('busy_timeout = 5000');
      db.prepare(sql).run(...params);
    } finally {
      db.close();
    }
    return;
  }
  const conn: Connection = await createConnection(mysqlConnectionOptions(parseMysqlUrl(store.url)));
  try {
    await conn.query(sql, params);
  } finally {
    await conn.end();
  }
}

async function countPendingRows(store: BenchStore): Promise<number> {
  if (store.kind === 'sqlite') {
    const db = new Database(store.url.slice('sqlite:'.length), { readonly: true });
    try {
      db.pragma('busy_timeout = 5000');
      return (db.prepare(`SELECT COUNT(*) AS n FROM "${PREFIX}websocket_events" WHERE processed = 0`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  }
  const conn: Connection = await createConnection(mysqlConnectionOptions(parseMysqlUrl(store.url)));
  try {
    const [rows] = await conn.query(`SELECT COUNT(*) AS n FROM \`${PREFIX}websocket_events\` WHERE processed = 0`);
    return Number((rows as { n: number | string }[])[0].n);
  } finally {
    await conn.end();
  }
}

/** Last lines a child wrote, kept to explain a failure. */
class Tail {
  readonly lines: string[] = [];
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 30) this.lines.shift();
  }
}

/** One `tp-ws serve` process: what a restart replaces. */
interface ServeProcess {
  child: ChildProcess;
  pid: number;
  wsUrl: string;
  adminUrl: string;
  fdLimit: number | null;
}

/**
 * Start `tp-ws serve` with `env` and wait for its banner. The soft fd limit
 * is raised first when `fd` is given (`exec` keeps the pid: the pid read in
 * /proc is node's, not the shell's).
 */
async function spawnServe(env: Record<string, string>, fd: number | 'max' | undefined, output: Tail, timeoutMs: number): Promise<ServeProcess> {
  const raise = fd === undefined ? '' : `ulimit -n ${fd === 'max' ? '"$(ulimit -Hn)"' : fd} 2>/dev/null || echo "tp-ws bench: could not raise the fd limit to ${fd}" >&2; `;
  const child = spawn('/bin/sh', ['-c', `${raise}exec "$0" "$@"`, process.execPath, ...daemonNodeArgs(), BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stdout! }).on('line', (l) => output.push(l));
  try {
    const banner = await readBanner(child, output, timeoutMs);
    const pid = child.pid!;
    return { child, pid, wsUrl: banner.wsUrl, adminUrl: banner.adminUrl, fdLimit: fdSoftLimit(pid) };
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  }
}

/**
 * A `tp-ws serve` process on a seeded TeamPass store. `kill()` and
 * `restart()` replace the process on the same store and state directory (a
 * daemon killed or restarted by its operator); `child`, `pid`, `wsUrl`,
 * `adminUrl` and `fdLimit` then name the new one.
 */
export class TeampassDaemon {
  #proc: ServeProcess;

  private constructor(
    proc: ServeProcess,
    readonly ingestSocket: string,
    /** `tokens[i]` authenticates user i + 1. */
    readonly tokens: string[],
    readonly store: BenchStoreKind,
    readonly folderId: number,
    private readonly env: Record<string, string>,
    private readonly fd: number | 'max' | undefined,
    private readonly startTimeoutMs: number,
    private readonly stateDir: string,
    private readonly dbStore: BenchStore,
    private readonly output: Tail,
  ) {
    this.#proc = proc;
  }

  get child(): ChildProcess {
    return this.#proc.child;
  }

  get pid(): number {
    return this.#proc.pid;
  }

  get wsUrl(): string {
    return this.#proc.wsUrl;
  }

  get adminUrl(): string {
    return this.#proc.adminUrl;
  }

  /** Soft fd limit the daemon runs with (null: unlimited or unknown). */
  get fdLimit(): number | null {
    return this.#proc.fdLimit;
  }

  static async start(o: TeampassDaemonOptions): Promise<TeampassDaemon> {
    if (!Number.isInteger(o.users) || o.users < 1 || o.users > 1_000_000) throw new Error(`users must be an integer in 1..1000000, got ${o.users}`);
    const folderId = o.folderId ?? 1;
    if (!Number.isInteger(folderId) || folderId < 1) throw new Error(`folderId must be a positive integer, got ${folderId}`);
    const folderOf = (id: number): number => {
      const f = o.folderOf === undefined ? folderId : o.folderOf(id);
      if (!Number.isInteger(f) || f < 1) throw new Error(`folderOf(${id}) must be a positive integer, got ${f}`);
      return f;
    };
    const fd = o.fdLimit;
    if (fd !== undefined && fd !== 'max' && !(Number.isInteger(fd) && fd > 0)) throw new Error(`fdLimit must be a positive integer or 'max', got ${fd}`);
    const kind: BenchStoreKind = (o.store ?? 'auto') === 'auto' ? (benchMysqlServerUrl() ? 'mariadb' : 'sqlite') : (o.store as BenchStoreKind);

    const stateDir = mkdtempSync(join(tmpdir(), 'tpws-bench-'));
    const dbStore = await makeStore(kind, stateDir).catch((err: unknown) => {
      rmSync(stateDir, { recursive: true, force: true });
      throw err;
    });
    try {
      // The daemon's own migrations create TeamPass's tables on an empty database.
      const store = openStore(dbStore.url, PREFIX);
      try {
        await store.migrate();
      } finally {
        await store.close();
      }
      const tokens = Array.from({ length: o.users }, () => randomBytes(32).toString('hex'));
      await seed(dbStore, tokens, folderOf);

      const ingestSocket = join(stateDir, 'ingest.sock');
      const env: Record<string, string> = {
        ...process.env as Record<string, string>,
        TPWS_STORE: dbStore.url,
        TPWS_STATE_DIR: stateDir,
        TPWS_PORT: '0',
        TPWS_ADMIN_PORT: '0',
        TPWS_SOCKET: ingestSocket,
        TPWS_AUTH_METHODS: 'teampass-token',
        TPWS_LOG_LEVEL: 'warn',
        ...o.env,
      };
      const output = new Tail();
      const startTimeoutMs = o.startTimeoutMs ?? 30_000;
      const proc = await spawnServe(env, fd, output, startTimeoutMs);
      return new TeampassDaemon(proc, ingestSocket, tokens, kind, folderId, env, fd, startTimeoutMs, stateDir, dbStore, output);
    } catch (err) {
      await dbStore.drop().catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The /metrics text of the admin listener. */
  async metrics(): Promise<string> {
    const res = await fetch(`${this.adminUrl}metrics`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`GET /metrics: HTTP ${res.status}`);
    return res.text();
  }

  /** Current buckets of `tpws_fanout_seconds` (time to write one event to all its recipients, in the daemon). */
  async fanoutHistogram(): Promise<HistogramSnapshot> {
    return parseHistogram(await this.metrics(), 'tpws_fanout_seconds');
  }

  /** The daemon's last output lines (NDJSON logs and banner), for a failure report. */
  get recentOutput(): string[] {
    return [...this.output.lines];
  }

  /** Send `signal` to the daemon and wait until it has exited; the store and state directory stay. */
  async kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const child = this.#proc.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  /** Start a new `tp-ws serve` on the same store, state directory and environment, once the last one has exited; resolves at its banner. */
  async restart(): Promise<void> {
    const child = this.#proc.child;
    if (child.exitCode === null && child.signalCode === null) throw new Error('restart: the daemon is still running; kill() it first');
    this.#proc = await spawnServe(this.env, this.fd, this.output, this.startTimeoutMs);
  }

  /** INSERT `rows` into the events table in one transaction, as TeamPass's PHP does (`processed = 0`: the poller delivers them). */
  insertEvents(rows: EventRow[]): Promise<void> {
    return insertEventRows(this.dbStore, rows);
  }

  /**
   * Run one statement on the daemon's database from another connection, as
   * TeamPass's PHP changes its own tables (an admin granting or revoking a
   * folder). `{p}` in `sql` is the table prefix (write plain identifiers, the
   * same SQL for SQLite and MariaDB); `?` placeholders take `params`.
   */
  execSql(sql: string, params: unknown[] = []): Promise<void> {
    return execStatement(this.dbStore, sql.replaceAll('{p}', PREFIX), params);
  }

  /** Rows of the events table the poller has not handled yet (`processed = 0`), read by another connection: costs the daemon nothing. */
  pendingEventRows(): Promise<number> {
    return countPendingRows(this.dbStore);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; drops the database and the state directory. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.#proc.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    }
    await this.dbStore.drop();
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** Wait for the serve banner on stderr: the WebSocket URL and the admin URL with their bound ports. */
function readBanner(child: ChildProcess, output: Tail, timeoutMs: number): Promise<{ wsUrl: string; adminUrl: string }> {
  return new Promise((resolve, reject) => {
    let wsUrl: string | null = null;
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`${why}; last output:\n${output.lines.join('\n')}`));
    };
    const timer = setTimeout(() => fail(`tp-ws serve printed no banner within ${timeoutMs} ms`), timeoutMs);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      output.push(line);
      const ws = /listening on (ws:\/\/\S+)/.exec(line);
      if (ws) wsUrl = ws[1];
      if (/^\s*admin:\s+disabled/.test(line)) fail('the admin listener is disabled (TPWS_ADMIN_PORT=-1): the benchmarks read /metrics from it');
      const admin = /^\s*admin:\s+(http:\/\/\S+\/)/.exec(line);
      if (admin && wsUrl !== null) {
        clearTimeout(timer);
        resolve({ wsUrl, adminUrl: admin[1] });
      }
    });
    child.once('exit', (code, signal) => fail(`tp-ws serve exited (${signal ?? code}) before listening`));
  });
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
