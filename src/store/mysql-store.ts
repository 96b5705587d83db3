/**
 * The TeamPass store: the real TeamPass database (MySQL 8 / MariaDB 10.6+)
 * through a small mysql2 pool, or an empty database given tp-ws's full schema.
 * The queries are those of TeamPass 3.2's own daemon; the contract is `store.ts`.
 */
import { createHash } from 'node:crypto';
import {
  createConnection,
  createPool,
  type Connection,
  type ConnectionOptions,
  type Pool,
  type PoolConnection,
  type ResultSetHeader,
  type RowDataPacket,
} from 'mysql2/promise';
import { TpWsError } from '../errors.js';
import { phpInt } from '../int.js';
import { parseMysqlUrl, type MysqlTarget } from './store-url.js';
import {
  createdSeconds,
  HISTORY_FLOOR,
  insertPosition,
  loadMigrations,
  migrationError,
  positiveInt,
  recentIds,
  sortedUniqueInts,
  splitStatements,
  storeError as driverError,
  toLockHolder,
  toUser,
  releasedLocks,
  type LockRow,
  type UserRow,
} from './sql-support.js';
import {
  PROCESSED,
  type DeliveredRow,
  type EventInsert,
  type EventRow,
  type HistoryRow,
  type LockHolder,
  type MigrateOptions,
  type NewToken,
  type MigrateResult,
  type ReleasedLocks,
  type ReplayFilter,
  type ReplayRow,
  type ReplayScope,
  type Store,
  type TokenUser,
  type UserRecord,
} from './store.js';
import { MYSQL_REPLAY, replayWhere } from './replay-query.js';

/** Longest a single query may take by default before it fails (and its connection is dropped). */
const QUERY_TIMEOUT_MS = 10_000;

/** mysql2 options shared by the pool, the lock connection and the test helpers. */
export function mysqlConnectionOptions(target: MysqlTarget): ConnectionOptions {
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    ...(target.database ? { database: target.database } : {}),
    ...(target.socketPath ? { socketPath: target.socketPath } : {}),
    charset: 'utf8mb4_unicode_ci',
    supportBigNumbers: true,
    // Times leave the server as numbers (UNIX_TIMESTAMP); any other date column stays text.
    dateStrings: true,
    enableKeepAlive: true,
    connectTimeout: 5000,
  };
}

export interface MysqlStoreOptions {
  /** `mysql://user:pass@host:port/db[?socket=PATH]` */
  url: string;
  /** The password, when the URL holds none (`store.password`, `store.passwordFile`); any characters. */
  password?: string | null;
  /** Table prefix (TeamPass `DB_PREFIX`), already validated as `[A-Za-z0-9_]{0,32}`. */
  prefix: string;
  /** Longest a query may take before it fails and its connection is destroyed (default 10 s; tests shorten it). */
  queryTimeoutMs?: number;
}

/** Migration files whose name contains this apply only to a database without TeamPass. */
const FULL_ONLY = '_full_';
/** Rows per multi-row INSERT, and the byte budget of one statement (max_allowed_packet is ≥ 4 MB). */
const INSERT_CHUNK_ROWS = 500;
const INSERT_CHUNK_BYTES = 2 * 1024 * 1024;
/** Ids or tokens per `IN (…)` list. */
const IN_CHUNK = 1000;
/**
 * What tp-ws adds to TeamPass's events table: the event id (the dedup key) and
 * the position a delivered event was fanned out at (`tpws_pos`, epoch number ×
 * 2^32 + seq; BIGINT, as positions pass 2^32 from the first epoch on). NULL is
 * allowed any number of times by a unique index: TeamPass's own rows have neither.
 */
const EVENT_COLUMNS = [
  { column: 'event_uuid', type: 'VARCHAR(64)', index: 'idx_event_uuid' },
  { column: 'tpws_pos', type: 'BIGINT', index: 'idx_tpws_pos' },
] as const;

type Queryable = Pick<Connection, 'query'>;

/**
 * True when `err` leaves its connection unusable: a query that timed out is
 * still the connection's current command (mysql2 gives up waiting, not the
 * query), so everything sent on it later would queue behind an answer that
 * may never come; a fatal error has closed it.
 */
function connectionLost(err: unknown): boolean {
  const e = err as { code?: unknown; fatal?: unknown } | null;
  return e?.code === 'PROTOCOL_SEQUENCE_TIMEOUT' || e?.fatal === true;
}

/**
 * `Store` on MySQL/MariaDB. A pool of 4 connections (each set to
 * `time_zone = '+00:00'`) serves queries; one more connection, outside the
 * pool, exists only while this instance holds or seeks the poller lock, a
 * `GET_LOCK` that the server releases by itself if this process dies.
 *
 * All SQL is parameterized; table names are `<prefix><name>` in backticks.
 */
export class MysqlStore implements Store {
  readonly kind = 'mysql' as const;
  readonly prefix: string;
  readonly #target: MysqlTarget;
  readonly #pool: Pool;
  readonly #lockName: string;
  #lockConn: Connection | null = null;
  /** Server id of the lock connection while it holds the lock. */
  #heldBy: number | null = null;
  /** Server id of a lock connection dropped because it stopped answering while it held the lock. */
  #silentHolder: number | null = null;
  readonly #timeoutMs: number;
  /** Serializes lock operations, so two overlapping calls never open two lock connections. */
  #lockChain: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: MysqlStoreOptions) {
    this.prefix = options.prefix;
    const target = parseMysqlUrl(options.url);
    this.#target = options.password == null ? target : { ...target, password: options.password };
    this.#timeoutMs = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
    // maxPreparedStatements: mysql2's default (16,000) preallocates about 0.5 MB of cache per pool
    // connection; the daemon prepares a few dozen statements.
    this.#pool = createPool({ ...mysqlConnectionOptions(this.#target), connectionLimit: 4, maxIdle: 4, queueLimit: 0, maxPreparedStatements: 100 });
    // TIMESTAMP columns and FROM_UNIXTIME are read and written in the session time zone: pin it to UTC.
    // The listener receives mysql2's callback connection, whatever the promise typings say.
    this.#pool.on('connection', (conn: PoolConnection) => {
      (conn as unknown as { query(sql: string, cb: (err: unknown) => void): void }).query(
        // group_concat_max_len: findTokenUser reads a user's folders as one list (default 1 KB).
        "SET time_zone = '+00:00', group_concat_max_len = 16777216",
        () => undefined,
      );
    });
    // GET_LOCK names are limited to 64 characters on MySQL; hash long ones.
    const name = `tpws_poller_${this.#target.database}_${this.prefix}`;
    this.#lockName = name.length <= 64 ? name : `tpws_poller_${createHash('sha1').update(name).digest('hex')}`;
  }

  /** A driver failure, naming `user@host:port/db` (never the password). */
  #fail(op: string, err: unknown): TpWsError {
    const t = this.#target;
    return driverError('mysql', op, scrub(err), `${t.user}@${t.socketPath ?? `${t.host}:${t.port}`}/${t.database}`);
  }

  /** `<prefix><name>` in backticks. */
  #t(name: string): string {
    return `\`${this.prefix}${name}\``;
  }

  async #q<T = RowDataPacket[]>(op: string, sql: string, params: unknown[] = [], via?: Queryable): Promise<T> {
    if (this.#closed) throw new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `mysql store: ${op} after close()`);
    if (via === undefined) return this.#onConnection(op, false, (conn) => this.#q<T>(op, sql, params, conn));
    try {
      // A server that accepts the connection but stops answering must not hang
      // the poller or the journal forever; migrations may legitimately run long.
      const [rows] = await via.query({ sql, values: params, timeout: op === 'migrate' ? undefined : this.#timeoutMs });
      return rows as T;
    } catch (err) {
      throw this.#fail(op, err);
    }
  }

  /**
   * Run `fn` on a pool connection, in a transaction when `tx`. A connection
   * whose query timed out or broke is destroyed instead of returned: a server
   * (or a network path) that went silent on it would otherwise hold every later
   * query behind the lost one, and the pool would never open a fresh one.
   */
  async #onConnection<T>(op: string, tx: boolean, fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
    if (this.#closed) throw new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `mysql store: ${op} after close()`);
    let conn: PoolConnection;
    try {
      conn = await this.#pool.getConnection();
    } catch (err) {
      throw this.#fail(op, err);
    }
    let lost = false;
    try {
      if (tx) await conn.query({ sql: 'START TRANSACTION', timeout: this.#timeoutMs });
      const result = await fn(conn);
      if (tx) await conn.query({ sql: 'COMMIT', timeout: this.#timeoutMs });
      return result;
    } catch (err) {
      lost = connectionLost(err) || connectionLost((err as { cause?: unknown }).cause);
      if (tx && !lost) {
        await conn.query({ sql: 'ROLLBACK', timeout: this.#timeoutMs }).catch((e: unknown) => {
          lost = true;
          return e;
        });
      }
      throw this.#fail(op, err);
    } finally {
      if (lost) conn.destroy();
      else conn.release();
    }
  }

  async migrate(options: MigrateOptions = {}): Promise<MigrateResult> {
    const files = loadMigrations('mysql', this.prefix);
    let conn: PoolConnection;
    try {
      conn = await this.#pool.getConnection();
    } catch (err) {
      throw this.#fail('migrate', err);
    }
    try {
      const done = new Set<string>();
      if (await this.#tableExists(conn, 'tpws_migrations')) {
        const rows = await this.#q<{ name: string }[]>('migrate', `SELECT name FROM ${this.#t('tpws_migrations')}`, [], conn);
        for (const r of rows) done.add(r.name);
      }
      // An empty database gets the full schema; a TeamPass one only our additions. Once the
      // full schema went in, `users` exists but the database stays a `full` one.
      const full = [...done].some((n) => n.includes(FULL_ONLY)) || !(await this.#tableExists(conn, 'users'));
      if (full && done.size === 0 && options.force !== true) await this.#refuseBesideOtherPrefix(conn);
      const applied: string[] = [];
      for (const file of files) {
        if (done.has(file.name) || (file.name.includes(FULL_ONLY) && !full)) continue;
        // MySQL commits each DDL statement: a failure stops here, with the earlier ones applied.
        for (const stmt of splitStatements(file.sql)) {
          try {
            await conn.query(stmt);
          } catch (err) {
            throw migrationError('mysql', file.name, scrub(err));
          }
        }
        await this.#q('migrate', `INSERT IGNORE INTO ${this.#t('tpws_migrations')} (name) VALUES (?)`, [file.name], conn);
        applied.push(file.name);
      }
      await this.#ensureEventColumns(conn);
      return { applied, mode: full ? 'full' : 'teampass' };
    } finally {
      conn.release();
    }
  }

  /**
   * A database that holds TeamPass tables (`users` and `misc`) under another
   * prefix, and none under ours, almost always means a wrong
   * `store.tablePrefix`: a full schema here would be a second, empty set of
   * tables beside TeamPass's, and the daemon would deliver nothing. Refuse,
   * naming the prefix found.
   */
  async #refuseBesideOtherPrefix(conn: Queryable): Promise<void> {
    const rows = await this.#q<{ name: string }[]>(
      'migrate',
      `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND (TABLE_NAME LIKE '%users' OR TABLE_NAME LIKE '%misc')`,
      [],
      conn,
    );
    const names = new Set(rows.map((r) => r.name));
    const prefixes = [...names].filter((n) => n.endsWith('users')).map((n) => n.slice(0, -'users'.length)).filter((p) => names.has(`${p}misc`) && p !== this.prefix);
    if (prefixes.length === 0) return;
    const found = prefixes.map((p) => `"${p}"`).join(', ');
    throw new TpWsError(
      'TPWS_ERR_MIGRATION',
      `refusing to create tables with prefix "${this.prefix}": this database holds TeamPass tables with prefix ${found} (${prefixes[0]}users, ${prefixes[0]}misc) and none with "${this.prefix}". ` +
        `Give --table-prefix ${prefixes[0]} (TeamPass's DB_PREFIX in settings.php), or run tp-ws migrate --force to create a separate "${this.prefix}" schema beside them`,
    );
  }

  async #tableExists(conn: Queryable, name: string): Promise<boolean> {
    const rows = await this.#q<{ n: number }[]>(
      'migrate',
      'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
      [this.prefix + name],
      conn,
    );
    return Number(rows[0]?.n) > 0;
  }

  /**
   * The changes to a TeamPass table (`EVENT_COLUMNS`): nullable columns, each
   * with a unique index, checked through information_schema so that this runs
   * on MySQL 8 as on MariaDB (`ADD COLUMN IF NOT EXISTS` is MariaDB-only).
   */
  async #ensureEventColumns(conn: Queryable): Promise<void> {
    const table = this.prefix + 'websocket_events';
    const step = async (column: string, sql: string) => {
      try {
        await conn.query(sql);
      } catch (err) {
        throw migrationError('mysql', column, scrub(err));
      }
    };
    for (const { column, type, index } of EVENT_COLUMNS) {
      const cols = await this.#q<{ n: number }[]>(
        'migrate',
        `SELECT COUNT(*) AS n FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?`,
        [table, column],
        conn,
      );
      if (Number(cols[0]?.n) === 0) {
        await step(column, `ALTER TABLE ${this.#t('websocket_events')} ADD COLUMN \`${column}\` ${type} NULL DEFAULT NULL`);
      }
      const idx = await this.#q<{ non_unique: number }[]>(
        'migrate',
        `SELECT NON_UNIQUE AS non_unique FROM information_schema.STATISTICS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?`,
        [table, index],
        conn,
      );
      if (idx.length === 0) {
        await step(column, `ALTER TABLE ${this.#t('websocket_events')} ADD UNIQUE INDEX \`${index}\` (\`${column}\`)`);
      } else if (idx.some((r) => Number(r.non_unique) !== 0)) {
        // Without uniqueness the journal would duplicate rows instead of marking them,
        // and two rows could claim one position.
        throw new TpWsError('TPWS_ERR_MIGRATION', `mysql migration: index ${index} on ${table} exists but is not UNIQUE`);
      }
    }
  }

  async ping(): Promise<void> {
    await this.#q('ping', 'SELECT 1');
  }

  async findTokenUser(token: string): Promise<TokenUser | null> {
    return (await this.findTokenUsers([token])).get(token) ?? null;
  }

  async findTokenUsers(tokens: readonly string[]): Promise<Map<string, TokenUser>> {
    const found = new Map<string, TokenUser>();
    for (const chunk of chunks(tokens, IN_CHUNK)) {
      // Reference §2.4 query 1, for a list of tokens. The folders come in the same query
      // (accessibleFolders' two sets, as lists): a connect costs a share of one round
      // trip. group_concat_max_len is raised on every pool connection, so a user with
      // thousands of folders is not cut short.
      const rows = await this.#q<(UserRow & { token: string; expires_ts: number | string; direct: string | null; via_roles: string | null })[]>(
        'findTokenUser',
        `SELECT wt.token, u.id, u.login, u.name, u.lastname, u.admin, u.disabled, UNIX_TIMESTAMP(wt.expires_at) AS expires_ts,
                (SELECT CAST(GROUP_CONCAT(ug.group_id) AS CHAR) FROM ${this.#t('users_groups')} ug WHERE ug.user_id = u.id) AS direct,
                (SELECT CAST(GROUP_CONCAT(rv.folder_id) AS CHAR) FROM ${this.#t('roles_values')} rv
                   JOIN ${this.#t('users_roles')} ur ON rv.role_id = ur.role_id WHERE ur.user_id = u.id) AS via_roles
         FROM ${this.#t('websocket_tokens')} wt JOIN ${this.#t('users')} u ON wt.user_id = u.id
         WHERE wt.token IN (?) AND wt.expires_at > NOW() AND u.disabled = 0`,
        [chunk],
      );
      for (const row of rows) {
        if (found.has(row.token)) continue;
        const folders = sortedUniqueInts([...intList(row.direct), ...intList(row.via_roles)]);
        found.set(row.token, { user: toUser(row), expiresAt: Number(row.expires_ts) * 1000, folders });
      }
    }
    return found;
  }

  async findUser(userId: number): Promise<UserRecord | null> {
    const rows = await this.#q<UserRow[]>(
      'findUser',
      `SELECT id, login, name, lastname, admin, disabled FROM ${this.#t('users')} WHERE id = ? AND disabled = 0`,
      [userId],
    );
    return rows[0] ? toUser(rows[0]) : null;
  }

  async accessibleFolders(userId: number): Promise<number[]> {
    // Reference §2.4 steps 2-4: direct grants ∪ every folder of the user's roles, no `type` filter.
    const rows = await this.#q<{ f: number | string }[]>(
      'accessibleFolders',
      `SELECT group_id AS f FROM ${this.#t('users_groups')} WHERE user_id = ?
       UNION
       SELECT rv.folder_id FROM ${this.#t('roles_values')} rv
         JOIN ${this.#t('users_roles')} ur ON rv.role_id = ur.role_id WHERE ur.user_id = ?`,
      [userId, userId],
    );
    return sortedUniqueInts(rows.map((r) => r.f));
  }

  async insertTokens(tokens: readonly NewToken[], ttlSec: number): Promise<void> {
    if (tokens.length === 0) return;
    // One statement, so all or none; a connect burst is a few hundred rows at most.
    const ttl = Math.trunc(ttlSec);
    await this.#q(
      'insertTokens',
      `INSERT INTO ${this.#t('websocket_tokens')} (user_id, token, expires_at, used)
       VALUES ${tokens.map(() => '(?, ?, DATE_ADD(NOW(), INTERVAL ? SECOND), 0)').join(', ')}`,
      tokens.flatMap((t) => [t.userId, t.token, ttl]),
    );
  }

  async extendTokens(tokens: readonly string[], ttlSec: number): Promise<void> {
    for (const chunk of chunks(tokens, IN_CHUNK)) {
      // GREATEST: extending never shortens a token that already lives longer.
      await this.#q(
        'extendTokens',
        `UPDATE ${this.#t('websocket_tokens')}
         SET expires_at = GREATEST(expires_at, DATE_ADD(NOW(), INTERVAL ? SECOND)) WHERE token IN (?)`,
        [Math.trunc(ttlSec), chunk],
      );
    }
  }

  async getMisc(key: string): Promise<string | null> {
    const rows = await this.#q<{ valeur: string | null }[]>(
      'getMisc',
      `SELECT valeur FROM ${this.#t('misc')} WHERE intitule = ? ORDER BY increment_id LIMIT 1`,
      [key],
    );
    return rows[0] ? rows[0].valeur : null;
  }

  async lockedItems(folderId: number, exceptUserId: number, timeoutSec: number): Promise<LockHolder[]> {
    // id_tree is varchar(10): compare with a string so the comparison stays a string one.
    const rows = await this.#q<LockRow[]>(
      'lockedItems',
      `SELECT ie.item_id AS id, u.login AS user_login, u.name AS user_name, u.lastname AS user_lastname
       FROM ${this.#t('items_edition')} ie
         JOIN ${this.#t('items')} i ON ie.item_id = i.id
         JOIN ${this.#t('users')} u ON ie.user_id = u.id
       WHERE i.id_tree = ? AND ie.timestamp >= UNIX_TIMESTAMP() - ? AND ie.user_id <> ?
       ORDER BY ie.item_id`,
      [String(folderId), timeoutSec, exceptUserId],
    );
    return rows.map(toLockHolder);
  }

  async lockedKbs(exceptUserId: number, timeoutSec: number): Promise<LockHolder[]> {
    const rows = await this.#q<LockRow[]>(
      'lockedKbs',
      `SELECT ke.kb_id AS id, u.login AS user_login, u.name AS user_name, u.lastname AS user_lastname
       FROM ${this.#t('kb_edition')} ke
         JOIN ${this.#t('kb')} k ON ke.kb_id = k.id
         JOIN ${this.#t('users')} u ON ke.user_id = u.id
       WHERE k.deleted_at IS NULL AND ke.timestamp >= UNIX_TIMESTAMP() - ? AND ke.user_id <> ?
       ORDER BY ke.kb_id`,
      [timeoutSec, exceptUserId],
    );
    return rows.map(toLockHolder);
  }

  async renewItemLock(itemId: number, userId: number): Promise<boolean> {
    // mysql2 connects with CLIENT_FOUND_ROWS: affectedRows counts matched rows, so a
    // second renewal within the same second still succeeds (TeamPass said no_lock).
    const r = await this.#q<ResultSetHeader>(
      'renewItemLock',
      `UPDATE ${this.#t('items_edition')} SET timestamp = UNIX_TIMESTAMP() WHERE item_id = ? AND user_id = ?`,
      [itemId, userId],
    );
    return r.affectedRows > 0;
  }

  async renewKbLock(kbId: number, userId: number): Promise<boolean> {
    const r = await this.#q<ResultSetHeader>(
      'renewKbLock',
      `UPDATE ${this.#t('kb_edition')} SET timestamp = UNIX_TIMESTAMP() WHERE kb_id = ? AND user_id = ?`,
      [kbId, userId],
    );
    return r.affectedRows > 0;
  }

  async releaseUserLocks(userId: number): Promise<ReleasedLocks> {
    return this.#onConnection('releaseUserLocks', true, async (conn) => {
      // FOR UPDATE: of two daemons releasing the same user, the second sees nothing left.
      const [items] = await conn.query<RowDataPacket[]>({
        sql: `SELECT ie.item_id AS item_id, i.id_tree AS id_tree, ie.timestamp AS ts
              FROM ${this.#t('items_edition')} ie LEFT JOIN ${this.#t('items')} i ON ie.item_id = i.id
              WHERE ie.user_id = ? ORDER BY ie.increment_id FOR UPDATE`,
        values: [userId], timeout: this.#timeoutMs,
      });
      const [kbs] = await conn.query<RowDataPacket[]>({
        sql: `SELECT kb_id, timestamp AS ts FROM ${this.#t('kb_edition')} WHERE user_id = ? ORDER BY increment_id FOR UPDATE`,
        values: [userId], timeout: this.#timeoutMs,
      });
      await conn.query({ sql: `DELETE FROM ${this.#t('items_edition')} WHERE user_id = ?`, values: [userId], timeout: this.#timeoutMs });
      await conn.query({ sql: `DELETE FROM ${this.#t('kb_edition')} WHERE user_id = ?`, values: [userId], timeout: this.#timeoutMs });
      return releasedLocks(items as { item_id: number; id_tree: string | null; ts: number | string }[], kbs as { kb_id: number; ts: number | string }[]);
    });
  }

  async itemFolder(itemId: number): Promise<number | null> {
    const rows = await this.#q<{ id_tree: string | null }[]>('itemFolder', `SELECT id_tree FROM ${this.#t('items')} WHERE id = ?`, [itemId]);
    return rows[0] === undefined ? null : phpInt(rows[0].id_tree);
  }

  async kbExists(kbId: number): Promise<boolean> {
    const rows = await this.#q<RowDataPacket[]>('kbExists', `SELECT 1 FROM ${this.#t('kb')} WHERE id = ? AND deleted_at IS NULL`, [kbId]);
    return rows.length > 0;
  }

  async revokeUserTokens(userId: number, createdUpToSec: number): Promise<number> {
    const r = await this.#q<ResultSetHeader>(
      'revokeUserTokens',
      `DELETE FROM ${this.#t('websocket_tokens')} WHERE user_id = ? AND created_at <= FROM_UNIXTIME(?)`,
      [userId, Math.trunc(createdUpToSec)],
    );
    return r.affectedRows;
  }

  async journalEvents(events: readonly EventInsert[]): Promise<void> {
    if (events.length === 0) return;
    if (this.#closed) throw new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', 'mysql store: journalEvents after close()');
    const statements = [...byteChunks(events)].map((batch) => this.#journalInsert(batch));
    // One statement is atomic by itself: no BEGIN/COMMIT round trips (a socket event
    // arriving alone is journaled by one query, not three).
    if (statements.length === 1) {
      await this.#q('journalEvents', statements[0].sql, statements[0].params);
      return;
    }
    await this.#onConnection('journalEvents', true, async (conn) => {
      for (const st of statements) await conn.query({ sql: st.sql, values: st.params, timeout: this.#timeoutMs });
    });
  }

  /** The INSERT of one journal batch. */
  #journalInsert(batch: readonly EventInsert[]): { sql: string; params: unknown[] } {
    const params: unknown[] = [];
    for (const e of batch) {
      params.push(e.eventUuid, e.eventType, e.targetType, e.targetId, e.payload, createdSeconds(e), insertPosition('journalEvents', e));
    }
    const row = `(?, ?, ?, ?, ?, COALESCE(FROM_UNIXTIME(?), CURRENT_TIMESTAMP), ?, ${PROCESSED.DELIVERED}, NOW())`;
    // A duplicate event_uuid is not inserted again. A row still pending (the emitter's
    // fallback insert) was delivered by the socket: mark it. processed_at is assigned
    // first because MySQL evaluates the SET list left to right on the updated row.
    // A row keeps the position it has (the event was fanned out then), else takes this one.
    const sql = `INSERT INTO ${this.#t('websocket_events')}
         (event_uuid, event_type, target_type, target_id, payload, created_at, tpws_pos, processed, processed_at)
       VALUES ${batch.map(() => row).join(', ')}
       ON DUPLICATE KEY UPDATE
         processed_at = IF(processed = ${PROCESSED.PENDING}, NOW(), processed_at),
         processed = IF(processed = ${PROCESSED.PENDING}, ${PROCESSED.DELIVERED}, processed),
         tpws_pos = COALESCE(tpws_pos, VALUES(tpws_pos))`;
    return { sql, params };
  }

  async insertPendingEvent(event: EventInsert): Promise<number> {
    const res = await this.#q<ResultSetHeader>(
      'insertPendingEvent',
      `INSERT INTO ${this.#t('websocket_events')}
         (event_uuid, event_type, target_type, target_id, payload, created_at, processed)
       VALUES (?, ?, ?, ?, ?, COALESCE(FROM_UNIXTIME(?), CURRENT_TIMESTAMP), ${PROCESSED.PENDING})`,
      [event.eventUuid, event.eventType, event.targetType, event.targetId, event.payload, createdSeconds(event)],
    );
    return Number(res.insertId);
  }

  async fetchPending(limit: number, afterId?: number): Promise<EventRow[]> {
    // No FOR UPDATE: the poller lock guarantees a single reader. With afterId the
    // primary key is read from there on: a backlog's batches cost the same however
    // many rows before them are already processed.
    const after = afterId === undefined ? '' : ' AND id > ?';
    const rows = await this.#q<PendingRow[]>(
      'fetchPending',
      // CAST: the driver would parse a JSON column and re-encode it (spacing lost, big
      // integers rounded); the stored text goes to clients byte for byte.
      `SELECT id, event_uuid, event_type, target_type, target_id, CAST(payload AS CHAR) AS payload,
              UNIX_TIMESTAMP(created_at) AS created, UNIX_TIMESTAMP() AS now_ts
       FROM ${this.#t('websocket_events')} WHERE processed = ${PROCESSED.PENDING}${after} ORDER BY id LIMIT ?`,
      afterId === undefined ? [Math.trunc(limit)] : [Math.trunc(afterId), Math.trunc(limit)],
    );
    return rows.map(toEventRow);
  }

  async markProcessed(rowIds: readonly number[], status: number): Promise<void> {
    // A backlog's ids are mostly consecutive: a run of them is one `id BETWEEN a AND b`
    // term, which InnoDB updates as one range (about half the time of the same ids in
    // an IN list). Every id of a run is in `rowIds`, so the set updated is the same.
    for (const chunk of chunks(idTerms(rowIds), IN_CHUNK)) {
      const singles = chunk.filter((t): t is number => typeof t === 'number');
      const ranges = chunk.filter((t): t is [number, number] => typeof t !== 'number');
      const where = [...ranges.map(() => 'id BETWEEN ? AND ?'), ...(singles.length > 0 ? ['id IN (?)'] : [])].join(' OR ');
      await this.#q(
        'markProcessed',
        `UPDATE ${this.#t('websocket_events')} SET processed = ?, processed_at = NOW() WHERE ${where}`,
        [status, ...ranges.flat(), ...(singles.length > 0 ? [singles] : [])],
      );
    }
  }

  async markDelivered(rows: readonly DeliveredRow[]): Promise<void> {
    for (const chunk of chunks(rows, IN_CHUNK)) {
      // One statement per chunk: each row's position by a CASE on its id. COALESCE keeps a
      // position the row has (journaled after a socket delivery), as the journal does.
      const ids = chunk.map((r) => positiveInt('markDelivered', 'row id', r.rowId));
      const params: unknown[] = chunk.flatMap((r, i) => [ids[i], positiveInt('markDelivered', 'position', r.pos)]);
      params.push(ids);
      await this.#q(
        'markDelivered',
        `UPDATE ${this.#t('websocket_events')}
         SET processed = ${PROCESSED.DELIVERED}, processed_at = NOW(),
             tpws_pos = COALESCE(tpws_pos, CASE id ${chunk.map(() => 'WHEN ? THEN ?').join(' ')} END)
         WHERE id IN (?)`,
        params,
      );
    }
  }

  async deleteOldEvents(hours: number): Promise<number> {
    if (this.#closed) throw new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', 'mysql store: deleteOldEvents after close()');
    const t = this.#t('websocket_events');
    const old = `processed <> ${PROCESSED.PENDING} AND processed_at < ?`;
    return this.#onConnection('deleteOldEvents', true, async (conn) => {
      // NOW() is per statement: the cutoff is taken once, so the rows whose highest
      // position raises the floor are exactly the rows deleted. FOR UPDATE locks them
      // (the range the DELETE locks anyway): none gets a position before the DELETE.
      const [cut] = await conn.query<RowDataPacket[]>({ sql: 'SELECT DATE_SUB(NOW(), INTERVAL ? HOUR) AS cutoff', values: [hours], timeout: this.#timeoutMs });
      const cutoff = cut[0]?.cutoff as string;
      const [top] = await conn.query<RowDataPacket[]>({ sql: `SELECT MAX(tpws_pos) AS top FROM ${t} WHERE ${old} FOR UPDATE`, values: [cutoff], timeout: this.#timeoutMs });
      if (top[0]?.top != null) {
        const floor = Number(top[0].top);
        await conn.query({
          sql: `INSERT INTO ${this.#t('tpws_state')} (name, value) VALUES ('${HISTORY_FLOOR}', ?)
                ON DUPLICATE KEY UPDATE value = GREATEST(value, ?)`,
          values: [floor, floor], timeout: this.#timeoutMs,
        });
      }
      const [res] = await conn.query<ResultSetHeader>({ sql: `DELETE FROM ${t} WHERE ${old}`, values: [cutoff], timeout: this.#timeoutMs });
      return res.affectedRows;
    });
  }

  async registerEpoch(epoch: string): Promise<number> {
    const res = await this.#q<ResultSetHeader>('registerEpoch', `INSERT INTO ${this.#t('tpws_epochs')} (epoch) VALUES (?)`, [epoch]);
    return Number(res.insertId);
  }

  async findEpoch(epoch: string): Promise<number | null> {
    const rows = await this.#q<{ no: number | string }[]>('findEpoch', `SELECT epoch_no AS no FROM ${this.#t('tpws_epochs')} WHERE epoch = ?`, [epoch]);
    return rows[0] === undefined ? null : Number(rows[0].no);
  }

  async epochName(epochNo: number): Promise<string | null> {
    const rows = await this.#q<{ epoch: string }[]>('epochName', `SELECT epoch FROM ${this.#t('tpws_epochs')} WHERE epoch_no = ?`, [Math.trunc(epochNo)]);
    return rows[0] === undefined ? null : rows[0].epoch;
  }

  async readHistory(afterPos: number, beforePos: number, limit: number): Promise<HistoryRow[]> {
    if (!(limit >= 1)) return [];
    // A range scan of idx_tpws_pos: a resume reads only the rows it replays.
    const rows = await this.#q<HistorySqlRow[]>(
      'readHistory',
      `SELECT ${HISTORY_COLUMNS} FROM ${this.#t('websocket_events')}
       WHERE tpws_pos > ? AND tpws_pos < ? ORDER BY tpws_pos LIMIT ?`,
      [Math.trunc(afterPos), Math.trunc(beforePos), Math.trunc(limit)],
    );
    return rows.map(toHistoryRow);
  }

  async readHistoryTail(limit: number): Promise<HistoryRow[]> {
    if (!(limit >= 1)) return [];
    // Read backwards from the end of idx_tpws_pos (NULLs sort first, so they are never reached).
    const rows = await this.#q<HistorySqlRow[]>(
      'readHistoryTail',
      `SELECT ${HISTORY_COLUMNS} FROM ${this.#t('websocket_events')}
       WHERE tpws_pos IS NOT NULL ORDER BY tpws_pos DESC LIMIT ?`,
      [Math.trunc(limit)],
    );
    return rows.map(toHistoryRow).reverse();
  }

  async recentEventIds(limit: number, maxAgeSec: number): Promise<string[]> {
    if (!(limit >= 1)) return [];
    // Bounded by `limit` rows of idx_tpws_pos, newest first; the age is a flag, not a filter, so
    // the read stops there even when few rows are recent (positions follow processing time).
    const rows = await this.#q<{ event_uuid: string | null; id: number; recent: number | string }[]>(
      'recentEventIds',
      `SELECT event_uuid, id, processed_at >= NOW() - INTERVAL ? SECOND AS recent FROM ${this.#t('websocket_events')}
       WHERE tpws_pos IS NOT NULL ORDER BY tpws_pos DESC LIMIT ?`,
      [Math.trunc(maxAgeSec), Math.trunc(limit)],
    );
    return recentIds(rows);
  }

  async historyFloor(): Promise<number> {
    const rows = await this.#q<{ value: number | string }[]>('historyFloor', `SELECT value FROM ${this.#t('tpws_state')} WHERE name = '${HISTORY_FLOOR}'`);
    return rows[0] === undefined ? 0 : Number(rows[0].value);
  }

  async deleteExpiredTokens(): Promise<number> {
    const res = await this.#q<ResultSetHeader>(
      'deleteExpiredTokens',
      `DELETE FROM ${this.#t('websocket_tokens')} WHERE expires_at < NOW()`,
    );
    return res.affectedRows;
  }

  async countReplayEvents(filter: ReplayFilter): Promise<ReplayScope> {
    const t = this.#t('websocket_events');
    // MAX(id) is read off the primary key; the count is taken up to it, so a row
    // inserted between the two queries changes neither.
    const head = await this.#q<{ head: number | string | null }[]>('countReplayEvents', `SELECT MAX(id) AS head FROM ${t}`);
    const headId = Number(head[0]?.head ?? 0);
    const where = replayWhere(filter, 0, headId, MYSQL_REPLAY);
    const rows = await this.#q<{ n: number | string }[]>('countReplayEvents', `SELECT COUNT(*) AS n FROM ${t} WHERE ${where.sql}`, where.params);
    return { headId, count: Number(rows[0]?.n ?? 0) };
  }

  async selectReplayEvents(filter: ReplayFilter, afterId: number, throughId: number, limit: number): Promise<ReplayRow[]> {
    // A range scan of the primary key from afterId: each page costs the same however deep into the table it is.
    // The payload as text: mysql2 parses a JSON column (MariaDB flags it as JSON), and
    // re-encoding would change its bytes; a replay sends it exactly as stored.
    const where = replayWhere(filter, afterId, throughId, MYSQL_REPLAY);
    const rows = await this.#q<(PendingRow & { processed: number | string | null })[]>(
      'selectReplayEvents',
      `SELECT id, event_uuid, event_type, target_type, target_id, CAST(payload AS CHAR) AS payload, processed,
              UNIX_TIMESTAMP(created_at) AS created, UNIX_TIMESTAMP() AS now_ts
       FROM ${this.#t('websocket_events')} WHERE ${where.sql} ORDER BY id LIMIT ?`,
      [...where.params, Math.trunc(limit)],
    );
    return rows.map((r) => ({ ...toEventRow(r), processed: r.processed === null ? null : Number(r.processed) }));
  }

  acquirePollerLock(): Promise<boolean> {
    return this.#serialLock(async () => {
      if (this.#closed) throw new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', 'mysql store: acquirePollerLock after close()');
      if (this.#lockConn) {
        try {
          return await this.#tryLock(this.#lockConn);
        } catch (err) {
          // The lock connection died (server restart, network): the server dropped the lock
          // with it. Start over on a fresh connection. One that only stopped answering may
          // still hold the lock on the server: remember it, so the fresh one can end it.
          const silent = (err as { code?: unknown }).code === 'PROTOCOL_SEQUENCE_TIMEOUT' ? this.#heldBy : null;
          this.#dropLockConn();
          this.#silentHolder = silent;
        }
      }
      let conn: Connection;
      try {
        conn = await createConnection(mysqlConnectionOptions(this.#target));
      } catch (err) {
        throw this.#fail('acquirePollerLock', err);
      }
      // An idle connection that breaks emits 'error'; without a listener that would crash the process.
      conn.on('error', () => {
        if (this.#lockConn === conn) this.#dropLockConn();
      });
      this.#lockConn = conn;
      try {
        return await this.#tryLock(conn);
      } catch (err) {
        this.#dropLockConn();
        throw this.#fail('acquirePollerLock', err);
      }
    });
  }

  /**
   * True when `conn` holds the lock: already ours (still alive), or just taken
   * with GET_LOCK. When the holder is this instance's previous lock connection,
   * dropped because it stopped answering (a network path gone silent), the
   * server may keep that session, and the lock, for hours: it is ended with
   * KILL (allowed on one's own sessions) and the lock taken.
   */
  async #tryLock(conn: Connection): Promise<boolean> {
    const ask = async (sql: string, values: unknown[]) => (await conn.query<RowDataPacket[]>({ sql, values, timeout: this.#timeoutMs }))[0][0];
    const row = (await ask('SELECT IS_USED_LOCK(?) AS holder, CONNECTION_ID() AS me', [this.#lockName])) as { holder: number | string | null; me: number | string } | undefined;
    const holder = row?.holder == null ? null : Number(row.holder);
    const me = Number(row?.me);
    let got: boolean;
    if (holder === me) {
      got = true;
    } else if (holder !== null && holder === this.#silentHolder) {
      await conn.query({ sql: `KILL ${Math.trunc(holder)}`, timeout: this.#timeoutMs });
      // The lock is freed as the killed session ends: wait for that briefly rather than stand by.
      const waitSec = Math.min(2, this.#timeoutMs / 2000);
      got = Number((await ask('SELECT GET_LOCK(?, ?) AS got', [this.#lockName, waitSec]))?.got) === 1;
    } else {
      got = Number((await ask('SELECT GET_LOCK(?, 0) AS got', [this.#lockName]))?.got) === 1;
    }
    this.#silentHolder = null;
    this.#heldBy = got ? me : null;
    return got;
  }

  releasePollerLock(): Promise<void> {
    return this.#serialLock(async () => {
      const conn = this.#lockConn;
      if (!conn) return;
      this.#lockConn = null;
      // Closing the session releases the lock; RELEASE_LOCK first makes it immediate for the next owner.
      // A connection that does not answer it is destroyed (the server ends the session when it notices).
      const released = await conn.query({ sql: 'SELECT RELEASE_LOCK(?)', values: [this.#lockName], timeout: this.#timeoutMs }).then(() => true, () => false);
      if (released) await conn.end().catch(() => conn.destroy());
      else conn.destroy();
    });
  }

  #dropLockConn(): void {
    const conn = this.#lockConn;
    this.#lockConn = null;
    this.#heldBy = null;
    conn?.destroy();
  }

  #serialLock<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#lockChain.then(fn, fn);
    this.#lockChain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.releasePollerLock();
    this.#closed = true;
    await this.#pool.end().catch(() => undefined);
  }
}

/** A GROUP_CONCAT list of integers (null when empty). */
function intList(v: string | null): string[] {
  return v === null || v === '' ? [] : v.split(',');
}

/** The event's own columns, as every read of the events table maps them. */
interface EventColumns {
  event_uuid: string | null;
  event_type: string;
  target_type: string;
  target_id: number | string | null;
  payload: unknown;
  created: number | string;
}

function eventFields(r: EventColumns): Omit<EventRow, 'rowId' | 'readAt'> {
  return {
    eventUuid: r.event_uuid ?? null,
    eventType: r.event_type,
    targetType: r.target_type,
    targetId: r.target_id === null ? null : Number(r.target_id),
    payload: payloadText(r.payload),
    createdAt: Number(r.created) * 1000,
  };
}

interface PendingRow extends EventColumns {
  id: number | string;
  now_ts: number | string;
}

function toEventRow(r: PendingRow): EventRow {
  return { rowId: Number(r.id), ...eventFields(r), readAt: Number(r.now_ts) * 1000 };
}

/** What a resume needs of a delivered row; the payload as stored text (see `fetchPending`). */
const HISTORY_COLUMNS =
  'tpws_pos, id, event_uuid, event_type, target_type, target_id, CAST(payload AS CHAR) AS payload, UNIX_TIMESTAMP(created_at) AS created';

type HistorySqlRow = EventColumns & { tpws_pos: number | string; id: number };

function toHistoryRow(r: HistorySqlRow): HistoryRow {
  // A number: supportBigNumbers hands BIGINTs below 2^53 over as exact numbers (a string above).
  return { pos: Number(r.tpws_pos), rowId: Number(r.id), ...eventFields(r) };
}

/** MariaDB returns JSON columns as text; MySQL's JSON type comes back parsed. The poller wants text. */
function payloadText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return JSON.stringify(v);
}

/** Runs shorter than this stay single ids. */
const MIN_RUN = 3;

/**
 * Row ids as terms of a WHERE: sorted, unique, each run of at least `MIN_RUN`
 * consecutive ids as `[first, last]`, the others as single ids.
 */
export function idTerms(rowIds: readonly number[]): (number | [number, number])[] {
  const ids = [...new Set(rowIds.map((id) => Math.trunc(id)))].sort((a, b) => a - b);
  const terms: (number | [number, number])[] = [];
  for (let i = 0; i < ids.length;) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j] + 1) j++;
    if (j - i + 1 >= MIN_RUN) terms.push([ids[i], ids[j]]);
    else for (let k = i; k <= j; k++) terms.push(ids[k]);
    i = j + 1;
  }
  return terms;
}

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** Batches of events that keep one INSERT under both the row and the byte budget. */
function* byteChunks(events: readonly EventInsert[]): Generator<EventInsert[]> {
  let batch: EventInsert[] = [];
  let bytes = 0;
  for (const e of events) {
    const size = Buffer.byteLength(e.payload) + 256;
    if (batch.length > 0 && (batch.length >= INSERT_CHUNK_ROWS || bytes + size > INSERT_CHUNK_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(e);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

/** mysql2 puts the full SQL text, values included, on query errors: drop it before it can reach a log. */
function scrub(err: unknown): unknown {
  if (err && typeof err === 'object' && 'sql' in err) delete (err as { sql?: unknown }).sql;
  return err;
}


