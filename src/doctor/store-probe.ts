/**
 * A short-lived, read-only look into the store for `tp-ws doctor`: one
 * mysql2 connection (never the daemon's pool), or the SQLite file opened
 * read-only on this thread. It answers the few questions the doctor asks —
 * tables, columns, indexes, the pending backlog, a misc value, the
 * database's clock — and never writes.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config/schema.js';
import { mysqlConnectionOptions } from '../store/mysql-store.js';
import { storePassword } from '../store/open-store.js';
import { parseMysqlUrl, parseStoreUrl, type MysqlTarget } from '../store/store-url.js';

/** One index of a table: its name, whether it is unique, and its columns in order. */
export interface IndexInfo {
  name: string;
  unique: boolean;
  columns: string[];
}

/** Rows of the events table still waiting (`processed = 0`). */
export interface Backlog {
  pending: number;
  /** Age of the oldest pending row by the database's clock, in seconds; null when none is pending. */
  oldestAgeSec: number | null;
  /** Pending rows older than the given age. */
  olderThan: number;
}

export interface StoreProbe {
  readonly kind: 'sqlite' | 'mysql';
  /** Where it is connected, without a password: `user@host:port/db` or the SQLite path. */
  readonly where: string;
  readonly target: MysqlTarget | null;
  /** `<prefix><name>`. */
  table(name: string): string;
  tableExists(name: string): Promise<boolean>;
  columns(name: string): Promise<string[]>;
  indexes(name: string): Promise<IndexInfo[]>;
  /** Tables of the database whose name ends with `suffix` (any prefix). */
  tablesEndingWith(suffix: string): Promise<string[]>;
  /** Names recorded in `<prefix>tpws_migrations`, or null when the table does not exist. */
  appliedMigrations(): Promise<string[] | null>;
  backlog(olderThanSec: number): Promise<Backlog>;
  /** misc `valeur` by `intitule` (as TeamPass's daemon reads it), or null when the row or the table is absent. */
  misc(key: string): Promise<string | null>;
  /** The database's clock minus this machine's, in ms (half the round trip allowed for); null for SQLite (same clock). */
  clockOffsetMs(): Promise<number | null>;
  close(): void;
}

/** Why the store could not be opened. */
export interface ProbeFailure {
  /** The driver's error code (`ER_ACCESS_DENIED_ERROR`, `ECONNREFUSED`, `SQLITE_CANTOPEN`…), or `TIMEOUT`, `NO_FILE`, `MEMORY`. */
  readonly code: string;
  /** In words, naming the store (never the password). */
  readonly message: string;
  /** MySQL's own message (it names the account, never the password), or null. */
  readonly sqlMessage: string | null;
  /** Where MySQL was tried (the password in it is never put in a message), or null for SQLite. */
  readonly target: MysqlTarget | null;
}

/** The opened probe, or why it could not be opened. */
export type ProbeOpening = { probe: StoreProbe; failure: null } | { probe: null; failure: ProbeFailure };

const failed = (code: string, message: string, sqlMessage: string | null = null, target: MysqlTarget | null = null): ProbeOpening =>
  ({ probe: null, failure: { code, message, sqlMessage, target } });

/** Longest one inspection query may take. */
const QUERY_TIMEOUT_MS = 2000;

/**
 * Opens the store `cfg` names, read-only, within `timeoutMs`; a store that
 * cannot be opened is an answer (`failure`, code `TIMEOUT` when nothing
 * answered in time), not an exception.
 *
 * @throws TpWsError `TPWS_ERR_CONFIG_INVALID` when `store.passwordFile` cannot be read
 */
export async function openStoreProbe(cfg: Readonly<Config>, timeoutMs: number): Promise<ProbeOpening> {
  const parsed = parseStoreUrl(cfg.store.url);
  const prefix = cfg.store.tablePrefix;
  if (parsed.kind === 'sqlite') return openSqlite(parsed.path, prefix);
  const password = storePassword(cfg);
  const url = parseMysqlUrl(parsed.url);
  const target = password === null ? url : { ...url, password };
  return openMysql(target, prefix, timeoutMs);
}

function openSqlite(path: string, prefix: string): ProbeOpening {
  if (path === ':memory:') return failed('MEMORY', 'sqlite::memory: lives inside one process; there is no store to inspect');
  if (!existsSync(path)) return failed('NO_FILE', `no SQLite file at ${path}`);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 1000 });
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'SQLITE_ERROR';
    return failed(code, `cannot open ${path} (${code})`);
  }
  const q = (name: string): string => `"${(prefix + name).replace(/"/g, '""')}"`;
  const all = <T>(sql: string, ...params: unknown[]): T[] => db.prepare(sql).all(...params) as T[];
  const exists = (name: string): boolean => all<{ n: number }>(`SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?`, prefix + name)[0].n > 0;
  const probe: StoreProbe = {
    kind: 'sqlite',
    where: path,
    target: null,
    table: (name) => prefix + name,
    tableExists: async (name) => exists(name),
    columns: async (name) => all<{ name: string }>(`SELECT name FROM pragma_table_info(?)`, prefix + name).map((r) => r.name),
    indexes: async (name) => {
      const list = all<{ name: string; unique: number }>(`SELECT name, "unique" FROM pragma_index_list(?)`, prefix + name);
      return list.map((ix) => ({
        name: ix.name,
        unique: ix.unique === 1,
        columns: all<{ name: string | null }>(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`, ix.name).map((c) => c.name ?? ''),
      }));
    },
    tablesEndingWith: async (suffix) => all<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, -?) = ?`, suffix.length, suffix).map((r) => r.name),
    appliedMigrations: async () => (exists('tpws_migrations') ? all<{ name: string }>(`SELECT name FROM ${q('tpws_migrations')}`).map((r) => r.name) : null),
    backlog: async (olderThanSec) => {
      const now = `CAST(strftime('%s', 'now') AS INTEGER)`;
      const r = all<{ n: number; oldest: number | null; old: number | null }>(
        `SELECT COUNT(*) AS n, ${now} - MIN(CAST(strftime('%s', created_at) AS INTEGER)) AS oldest,
                SUM(CAST(strftime('%s', created_at) AS INTEGER) < ${now} - ?) AS old
         FROM ${q('websocket_events')} WHERE processed = 0`,
        olderThanSec,
      )[0];
      return { pending: Number(r.n), oldestAgeSec: r.oldest === null ? null : Number(r.oldest), olderThan: Number(r.old ?? 0) };
    },
    misc: async (key) => {
      if (!exists('misc')) return null;
      const rows = all<{ valeur: string | null }>(`SELECT valeur FROM ${q('misc')} WHERE intitule = ? ORDER BY increment_id LIMIT 1`, key);
      return rows[0]?.valeur ?? null;
    },
    clockOffsetMs: async () => null,
    close: () => db.close(),
  };
  return { probe, failure: null };
}

async function openMysql(target: MysqlTarget, prefix: string, timeoutMs: number): Promise<ProbeOpening> {
  const where = `${target.user}@${target.socketPath ?? `${target.host}:${target.port}`}/${target.database}`;
  const pending = createConnection({ ...mysqlConnectionOptions(target), connectTimeout: timeoutMs, enableKeepAlive: false });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  let conn: Connection;
  try {
    const first = await Promise.race([pending, late]);
    if (first === 'late') {
      // A connection that completes after the deadline is closed at once.
      pending.then((c) => c.destroy(), () => undefined);
      return failed('TIMEOUT', `no answer from ${where} within ${timeoutMs / 1000} s`, null, target);
    }
    conn = first;
  } catch (err) {
    const e = err as { code?: string; sqlMessage?: string };
    return failed(e.code ?? 'ERROR', `cannot connect to ${where} (${e.code ?? 'error'})`, e.sqlMessage ?? null, target);
  } finally {
    clearTimeout(timer);
  }
  // An idle connection that breaks emits 'error'; without a listener that would crash the process.
  conn.on('error', () => undefined);

  const t = (name: string): string => `\`${(prefix + name).replace(/`/g, '``')}\``;
  const all = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => {
    const [rows] = await conn.query<RowDataPacket[]>({ sql, values: params, timeout: QUERY_TIMEOUT_MS });
    return rows as unknown as T[];
  };
  const exists = async (name: string): Promise<boolean> =>
    (await all<{ n: number }>(`SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, [prefix + name]))[0].n > 0;
  const probe: StoreProbe = {
    kind: 'mysql',
    where,
    target,
    table: (name) => prefix + name,
    tableExists: exists,
    columns: async (name) =>
      (await all<{ c: string }>(
        `SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
        [prefix + name],
      )).map((r) => r.c),
    indexes: async (name) => {
      const rows = await all<{ name: string; non_unique: number | string; col: string }>(
        `SELECT INDEX_NAME AS name, NON_UNIQUE AS non_unique, COLUMN_NAME AS col FROM information_schema.STATISTICS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
        [prefix + name],
      );
      const byName = new Map<string, IndexInfo>();
      for (const r of rows) {
        let ix = byName.get(r.name);
        if (ix === undefined) byName.set(r.name, (ix = { name: r.name, unique: Number(r.non_unique) === 0, columns: [] }));
        ix.columns.push(r.col);
      }
      return [...byName.values()];
    },
    tablesEndingWith: async (suffix) =>
      (await all<{ n: string }>(
        `SELECT TABLE_NAME AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND RIGHT(TABLE_NAME, ?) = ?`,
        [suffix.length, suffix],
      )).map((r) => r.n),
    appliedMigrations: async () => ((await exists('tpws_migrations')) ? (await all<{ name: string }>(`SELECT name FROM ${t('tpws_migrations')}`)).map((r) => r.name) : null),
    backlog: async (olderThanSec) => {
      const r = (await all<{ n: number | string; oldest: number | string | null; old: number | string | null }>(
        `SELECT COUNT(*) AS n, UNIX_TIMESTAMP() - UNIX_TIMESTAMP(MIN(created_at)) AS oldest,
                SUM(UNIX_TIMESTAMP(created_at) < UNIX_TIMESTAMP() - ?) AS old
         FROM ${t('websocket_events')} WHERE processed = 0`,
        [olderThanSec],
      ))[0];
      return { pending: Number(r.n), oldestAgeSec: r.oldest === null ? null : Number(r.oldest), olderThan: Number(r.old ?? 0) };
    },
    misc: async (key) => {
      if (!(await exists('misc'))) return null;
      const rows = await all<{ valeur: string | null }>(`SELECT valeur FROM ${t('misc')} WHERE intitule = ? ORDER BY increment_id LIMIT 1`, [key]);
      return rows[0]?.valeur ?? null;
    },
    clockOffsetMs: async () => {
      const before = Date.now();
      const rows = await all<{ t: string | number }>('SELECT UNIX_TIMESTAMP(NOW(6)) AS t');
      const after = Date.now();
      return Number(rows[0].t) * 1000 - (before + after) / 2;
    },
    close: () => conn.destroy(),
  };
  return { probe, failure: null };
}
