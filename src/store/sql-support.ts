/**
 * What `SqliteStore` and `MysqlStore` share: reading the numbered SQL files of
 * `migrations/<dialect>/`, mapping rows to the `Store` types, and wrapping
 * driver errors. No driver is imported here, so neither store loads the other's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TpWsError } from '../errors.js';
import { phpInt } from '../int.js';
import type { EventInsert, LockHolder, ReleasedLocks, UserRecord } from './store.js';

/**
 * The repository's `migrations/` folder. This file compiles to `dist/store/`, and
 * vitest runs it from `src/store/`: two levels up is the package root either way.
 */
const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url);

export interface MigrationFile {
  /** File name, e.g. `001_schema.sql`; the key recorded in `<prefix>tpws_migrations`. */
  name: string;
  /** SQL text with `{{prefix}}` already replaced. */
  sql: string;
}

/** The `.sql` files of one dialect folder, in name order, with the table prefix substituted. */
export function loadMigrations(dialect: 'sqlite' | 'mysql', prefix: string): MigrationFile[] {
  const dir = new URL(`${dialect}/`, MIGRATIONS_DIR);
  return readdirSync(fileURLToPath(dir))
    .filter((name) => name.endsWith('.sql'))
    .sort()
    .map((name) => ({ name, sql: readFileSync(new URL(name, dir), 'utf8').replaceAll('{{prefix}}', prefix) }));
}

/**
 * Split a migration into statements: a statement ends with `;` at the end of a
 * line (our files' convention, so a `;` inside a string or comment mid-line is
 * safe). Whole-line `--` comments and blank statements are dropped.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  for (const line of sql.split(/\r?\n/)) {
    if (/^\s*--/.test(line)) continue;
    current.push(line);
    if (/;\s*$/.test(line)) {
      const stmt = current.join('\n').trim().replace(/;$/, '').trim();
      if (stmt) out.push(stmt);
      current = [];
    }
  }
  const rest = current.join('\n').trim();
  if (rest) out.push(rest);
  return out;
}

// --- row mapping shared by both stores -------------------------------------

/** The `users` columns both stores select for a `UserRecord`. */
export interface UserRow {
  id: number | string;
  login: string;
  name: string | null;
  lastname: string | null;
  admin: number | string;
  disabled: number | string;
}

export function toUser(r: UserRow): UserRecord {
  return {
    id: Number(r.id),
    login: r.login,
    name: r.name,
    lastname: r.lastname,
    // TeamPass's daemon compares `admin === '1'` on its string rows.
    isAdmin: Number(r.admin) === 1,
    disabled: Number(r.disabled) === 1,
  };
}

/** Columns of the lock queries (`subscribe` to a folder or the KB, docs/protocol.md §subscribe). */
export interface LockRow {
  id: number | string;
  user_login: string;
  user_name: string | null;
  user_lastname: string | null;
}

export function toLockHolder(r: LockRow): LockHolder {
  return { id: Number(r.id), userLogin: r.user_login, userName: r.user_name, userLastname: r.user_lastname };
}

/** Sorted, de-duplicated integers from driver values (numbers or numeric strings). */
export function sortedUniqueInts(values: readonly (number | string)[]): number[] {
  return [...new Set(values.map(Number).filter(Number.isInteger))].sort((a, b) => a - b);
}

/** `createdAt` (epoch ms) as whole seconds, TeamPass's TIMESTAMP resolution; null when absent. */
export function createdSeconds(e: EventInsert): number | null {
  return e.createdAt === undefined ? null : Math.floor(e.createdAt / 1000);
}

/** The `tpws_state` row holding the highest position retention deleted (`Store.historyFloor`). */
export const HISTORY_FLOOR = 'history_floor';

/**
 * A row id or a delivery position as a SQL value: a positive safe integer.
 * Checked, not truncated: a fraction or NaN here is a caller's bug, and a
 * position written wrong would be replayed wrong.
 */
export function positiveInt(op: string, what: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new TpWsError('TPWS_ERR_INTERNAL', `${op}: ${what} ${String(v)} is not a positive safe integer`);
  return v;
}

/** `EventInsert.pos` as a SQL value: null when absent, else a checked position. */
export function insertPosition(op: string, e: EventInsert): number | null {
  return e.pos == null ? null : positiveInt(op, 'position', e.pos);
}

/** A driver error's code (`SQLITE_BUSY`, `ECONNREFUSED`, `ER_NO_SUCH_TABLE`…), never its SQL or values. */
/**
 * `recentEventIds`' answer from rows read newest first with a `recent` flag:
 * the ids of the newest rows up to the first that is not recent, oldest
 * first. An id is the row's `event_uuid`, else `row-<id>` (the poller's id
 * for rows TeamPass wrote).
 */
export function recentIds(rows: readonly { event_uuid: string | null; id: number | string; recent: number | string | bigint | null }[]): string[] {
  const ids: string[] = [];
  for (const r of rows) {
    if (Number(r.recent) !== 1) break;
    ids.push(r.event_uuid ?? `row-${Number(r.id)}`);
  }
  return ids.reverse();
}

export function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'unknown error';
}

/** What common driver error codes mean, for the operator reading the message. */
const CODE_HINTS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'nothing listens at that host and port',
  ENOTFOUND: 'unknown host name',
  EAI_AGAIN: 'the host name could not be resolved',
  ETIMEDOUT: 'no answer from the server',
  ENOENT: 'no such socket or file',
  EACCES: 'permission denied',
  ER_ACCESS_DENIED_ERROR: 'wrong user or password, or this user may not connect from here',
  ER_DBACCESS_DENIED_ERROR: 'this user has no rights on that database',
  ER_BAD_DB_ERROR: 'no such database',
  PROTOCOL_CONNECTION_LOST: 'the server closed the connection',
  SQLITE_BUSY: 'another process holds the database file locked',
  SQLITE_CANTOPEN: 'the file cannot be opened (directory missing or not writable?)',
  SQLITE_READONLY: 'the file is read-only for this user',
};

/**
 * Wrap a driver failure as `TPWS_ERR_STORE_UNAVAILABLE`. The message names the
 * store (`where`: `user@host:port/db` for MySQL — never the password), the
 * operation and the driver's error code with what it usually means: driver
 * messages can quote SQL values (a token in a duplicate-key message), so
 * they stay in `cause`.
 */
export function storeError(kind: 'sqlite' | 'mysql', op: string, err: unknown, where?: string): TpWsError {
  if (err instanceof TpWsError) return err;
  const code = errorCode(err);
  const hint = CODE_HINTS[code] === undefined ? '' : `: ${CODE_HINTS[code]}`;
  return new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `${kind} store${where === undefined ? '' : ` ${where}`}: ${op} failed (${code}${hint})`, { cause: err });
}

/**
 * A failed migration file. Unlike `storeError`, the driver message is kept: DDL
 * carries no secrets, and the operator needs to see what the server refused.
 */
export function migrationError(kind: 'sqlite' | 'mysql', file: string, err: unknown): TpWsError {
  if (err instanceof TpWsError) return err;
  const detail = err instanceof Error ? `${errorCode(err)}: ${err.message}` : errorCode(err);
  return new TpWsError('TPWS_ERR_MIGRATION', `${kind} migration ${file} failed (${detail})`, { cause: err });
}

/** `Store.releaseUserLocks` result from the selected rows (ids and timestamps may come back as strings). */
export function releasedLocks(
  items: readonly { item_id: number | string; id_tree: string | number | null; ts: number | string }[],
  kbs: readonly { kb_id: number | string; ts: number | string }[],
): ReleasedLocks {
  return {
    items: items.map((r) => ({ itemId: Number(r.item_id), folderId: r.id_tree === null ? null : phpInt(r.id_tree), timestamp: phpInt(r.ts) })),
    kbs: kbs.map((r) => ({ kbId: Number(r.kb_id), timestamp: phpInt(r.ts) })),
  };
}
