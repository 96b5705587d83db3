/**
 * The embedded store's SQL: one better-sqlite3 connection and the synchronous
 * statements behind every `Store` method. The daemon builds one only inside
 * `sqlite-worker.ts`'s thread, so none of these calls runs on its event loop
 * (a write waiting for another process's lock used to block the loop for up
 * to `busy_timeout`); a short-lived command with no loop to keep free
 * (`tp-ws-emit`'s fallback, `command-store.ts`) opens one on its own thread.
 *
 * Bulk methods work on one chunk per call (`extendTokensChunk`,
 * `markProcessedChunk`, `deleteOldEventsChunk`, …): the worker loops over the
 * chunks and yields to its own event loop in between, so a 100k-token
 * refresh never holds the connection (or the write lock) for long in one go.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { phpInt } from '../int.js';
import {
  createdSeconds,
  HISTORY_FLOOR,
  insertPosition,
  loadMigrations,
  migrationError,
  positiveInt,
  recentIds,
  releasedLocks,
  sortedUniqueInts,
  storeError,
  toLockHolder,
  toUser,
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
  type MigrateResult,
  type NewToken,
  type ReleasedLocks,
  type ReplayFilter,
  type ReplayRow,
  type ReplayScope,
  type TokenUser,
  type UserRecord,
} from './store.js';
import { ownerIsGone } from './lease-owner.js';
import { SQLITE_REPLAY, replayWhere } from './replay-query.js';

export interface SqliteDbOptions {
  /** Database file; its parent directory is created when missing. `:memory:` works for one instance. */
  path: string;
  /** Table prefix (`store.tablePrefix`), already validated as `[A-Za-z0-9_]{0,32}`. */
  prefix: string;
  /** Lease owner id of the store that owns this connection. */
  owner: string;
}

/** How long a poller lease lasts without renewal; the holder renews it on every `acquirePollerLock()`. */
const LEASE_SECONDS = 15;

// Times are stored as SQLite's 'YYYY-MM-DD HH:MM:SS' UTC text; these turn them into epoch ms.
const NOW_SEC = `CAST(strftime('%s', 'now') AS INTEGER)`;
const epochMs = (col: string) => `CAST(strftime('%s', ${col}) AS INTEGER) * 1000`;

/** SQLite modifier for `datetime('now', ?)`: `+30 seconds`, `-5 seconds`. */
function secondsModifier(sec: number): string {
  return `${sec >= 0 ? '+' : ''}${Math.trunc(sec)} seconds`;
}

/**
 * The synchronous half of `SqliteStore` (WAL journal, `busy_timeout` 5000 ms
 * so that two processes on one file wait for each other rather than fail).
 * Every method throws `TpWsError` (`TPWS_ERR_STORE_UNAVAILABLE`, or
 * `TPWS_ERR_MIGRATION` from `migrate`), never a raw driver error.
 *
 * Statements are prepared on first use and cached, so the connection can be
 * opened before `migrate()` created the tables.
 */
export class SqliteDb {
  readonly #db: Database.Database;
  readonly #prefix: string;
  readonly #owner: string;
  readonly #statements = new Map<string, Database.Statement>();
  /** `PRAGMA data_version` when the last full `fetchPending` found no row; null when it found some. */
  #emptyAt: number | null = null;

  /** Opens (and creates) the file; throws `TPWS_ERR_STORE_UNAVAILABLE`. */
  constructor(options: SqliteDbOptions) {
    this.#prefix = options.prefix;
    this.#owner = options.owner;
    try {
      // The file holds users and live tokens: a new one is private to the
      // daemon's user (SQLite gives its -wal and -shm files the same mode).
      const onDisk = options.path !== ':memory:';
      const created = onDisk && !existsSync(options.path);
      if (onDisk) mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
      this.#db = new Database(options.path);
      if (created) chmodSync(options.path, 0o600);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('busy_timeout = 5000');
    } catch (err) {
      throw storeError('sqlite', 'open', err);
    }
  }

  /** `<prefix><name>`, quoted. */
  #t(name: string): string {
    return `"${this.#prefix}${name}"`;
  }

  #stmt(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  /** Run `fn` as one store operation, mapping driver errors. */
  #run<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw storeError('sqlite', op, err);
    }
  }

  migrate(): MigrateResult {
    const files = loadMigrations('sqlite', this.#prefix);
    const table = `${this.#prefix}tpws_migrations`;
    const done = this.#run('migrate', () => {
      const exists = this.#db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table);
      if (!exists) return new Set<string>();
      const rows = this.#db.prepare(`SELECT name FROM ${this.#t('tpws_migrations')}`).all() as { name: string }[];
      return new Set(rows.map((r) => r.name));
    });
    const applied: string[] = [];
    for (const file of files) {
      if (done.has(file.name)) continue;
      try {
        // SQLite DDL is transactional: a failing file leaves nothing behind.
        this.#db.transaction(() => {
          this.#db.exec(file.sql);
          this.#db.prepare(`INSERT INTO ${this.#t('tpws_migrations')} (name) VALUES (?)`).run(file.name);
        })();
      } catch (err) {
        throw migrationError('sqlite', file.name, err);
      }
      applied.push(file.name);
    }
    this.#ensureEventColumns();
    return { applied, mode: 'full' };
  }

  /**
   * The events table's `tpws_pos` (a delivered event's position, epoch number ×
   * 2^32 + seq) with a unique index that allows any number of NULLs, added
   * when `PRAGMA table_info` shows it missing: a file created by an earlier
   * tp-ws has the table without it, and SQLite has no `ADD COLUMN IF NOT EXISTS`.
   */
  #ensureEventColumns(): void {
    const table = `${this.#prefix}websocket_events`;
    try {
      this.#db.transaction(() => {
        const cols = this.#db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(table) as string[];
        if (!cols.includes('tpws_pos')) this.#db.exec(`ALTER TABLE ${this.#t('websocket_events')} ADD COLUMN tpws_pos INTEGER NULL`);
        this.#db.exec(`CREATE UNIQUE INDEX IF NOT EXISTS "${table}_idx_tpws_pos" ON ${this.#t('websocket_events')} (tpws_pos)`);
      })();
    } catch (err) {
      throw migrationError('sqlite', 'tpws_pos', err);
    }
  }

  ping(): void {
    this.#run('ping', () => this.#stmt('SELECT 1').get());
  }

  findTokenUser(token: string): TokenUser | null {
    return this.#run('findTokenUser', () => {
      const row = this.#stmt(
        `SELECT u.id, u.login, u.name, u.lastname, u.admin, u.disabled, ${epochMs('wt.expires_at')} AS expires_ms
         FROM ${this.#t('websocket_tokens')} wt JOIN ${this.#t('users')} u ON wt.user_id = u.id
         WHERE wt.token = ? AND wt.expires_at > datetime('now') AND u.disabled = 0 LIMIT 1`,
      ).get(token) as (UserRow & { expires_ms: number }) | undefined;
      // The folders in the same call: one trip to this thread per connect.
      return row ? { user: toUser(row), expiresAt: row.expires_ms, folders: this.accessibleFolders(Number(row.id)) } : null;
    });
  }

  findTokenUsers(tokens: readonly string[]): Map<string, TokenUser> {
    const found = new Map<string, TokenUser>();
    for (const token of tokens) {
      const f = this.findTokenUser(token);
      if (f !== null) found.set(token, f);
    }
    return found;
  }

  findUser(userId: number): UserRecord | null {
    return this.#run('findUser', () => {
      const row = this.#stmt(
        `SELECT id, login, name, lastname, admin, disabled FROM ${this.#t('users')} WHERE id = ? AND disabled = 0`,
      ).get(userId) as UserRow | undefined;
      return row ? toUser(row) : null;
    });
  }

  accessibleFolders(userId: number): number[] {
    return this.#run('accessibleFolders', () => {
      // Reference §2.4 steps 2-4: direct grants ∪ every folder of the user's roles, no `type` filter.
      const rows = this.#stmt(
        `SELECT group_id AS f FROM ${this.#t('users_groups')} WHERE user_id = ?
         UNION
         SELECT rv.folder_id FROM ${this.#t('roles_values')} rv
           JOIN ${this.#t('users_roles')} ur ON rv.role_id = ur.role_id WHERE ur.user_id = ?`,
      ).all(userId, userId) as { f: number | string }[];
      return sortedUniqueInts(rows.map((r) => r.f));
    });
  }

  insertTokens(tokens: readonly NewToken[], ttlSec: number): void {
    this.#run('insertTokens', () => {
      const stmt = this.#stmt(
        `INSERT INTO ${this.#t('websocket_tokens')} (user_id, token, expires_at, used) VALUES (?, ?, datetime('now', ?), 0)`,
      );
      const expiry = secondsModifier(ttlSec);
      // One transaction: one commit for the batch, all or none.
      this.#db.transaction(() => {
        for (const t of tokens) stmt.run(t.userId, t.token, expiry);
      })();
    });
  }

  /** One chunk of `Store.extendTokens`. */
  extendTokensChunk(tokens: readonly string[], ttlSec: number): void {
    this.#run('extendTokens', () => {
      if (tokens.length === 0) return;
      // json_each keeps one cached statement for any number of tokens; max() never shortens a token.
      this.#stmt(
        `UPDATE ${this.#t('websocket_tokens')} SET expires_at = max(expires_at, datetime('now', ?))
         WHERE token IN (SELECT value FROM json_each(?))`,
      ).run(secondsModifier(ttlSec), JSON.stringify(tokens));
    });
  }

  getMisc(key: string): string | null {
    return this.#run('getMisc', () => {
      const row = this.#stmt(
        `SELECT valeur FROM ${this.#t('misc')} WHERE intitule = ? ORDER BY increment_id LIMIT 1`,
      ).get(key) as { valeur: string | null } | undefined;
      return row ? row.valeur : null;
    });
  }

  lockedItems(folderId: number, exceptUserId: number, timeoutSec: number): LockHolder[] {
    return this.#run('lockedItems', () =>
      (this.#stmt(
        `SELECT ie.item_id AS id, u.login AS user_login, u.name AS user_name, u.lastname AS user_lastname
         FROM ${this.#t('items_edition')} ie
           JOIN ${this.#t('items')} i ON ie.item_id = i.id
           JOIN ${this.#t('users')} u ON ie.user_id = u.id
         WHERE i.id_tree = ? AND ie.timestamp >= ${NOW_SEC} - ? AND ie.user_id <> ?
         ORDER BY ie.item_id`,
      ).all(String(folderId), timeoutSec, exceptUserId) as LockRow[]).map(toLockHolder),
    );
  }

  lockedKbs(exceptUserId: number, timeoutSec: number): LockHolder[] {
    return this.#run('lockedKbs', () =>
      (this.#stmt(
        `SELECT ke.kb_id AS id, u.login AS user_login, u.name AS user_name, u.lastname AS user_lastname
         FROM ${this.#t('kb_edition')} ke
           JOIN ${this.#t('kb')} k ON ke.kb_id = k.id
           JOIN ${this.#t('users')} u ON ke.user_id = u.id
         WHERE k.deleted_at IS NULL AND ke.timestamp >= ${NOW_SEC} - ? AND ke.user_id <> ?
         ORDER BY ke.kb_id`,
      ).all(timeoutSec, exceptUserId) as LockRow[]).map(toLockHolder),
    );
  }

  renewItemLock(itemId: number, userId: number): boolean {
    return this.#run('renewItemLock', () =>
      this.#stmt(`UPDATE ${this.#t('items_edition')} SET timestamp = ${NOW_SEC} WHERE item_id = ? AND user_id = ?`).run(itemId, userId).changes > 0,
    );
  }

  renewKbLock(kbId: number, userId: number): boolean {
    return this.#run('renewKbLock', () =>
      this.#stmt(`UPDATE ${this.#t('kb_edition')} SET timestamp = ${NOW_SEC} WHERE kb_id = ? AND user_id = ?`).run(kbId, userId).changes > 0,
    );
  }

  releaseUserLocks(userId: number): ReleasedLocks {
    return this.#run('releaseUserLocks', () =>
      this.#db.transaction((): ReleasedLocks => {
        const items = this.#stmt(
          `SELECT ie.item_id AS item_id, i.id_tree AS id_tree, ie.timestamp AS ts
           FROM ${this.#t('items_edition')} ie LEFT JOIN ${this.#t('items')} i ON ie.item_id = i.id
           WHERE ie.user_id = ? ORDER BY ie.increment_id`,
        ).all(userId) as { item_id: number; id_tree: string | null; ts: number | string }[];
        const kbs = this.#stmt(
          `SELECT kb_id, timestamp AS ts FROM ${this.#t('kb_edition')} WHERE user_id = ? ORDER BY increment_id`,
        ).all(userId) as { kb_id: number; ts: number | string }[];
        this.#stmt(`DELETE FROM ${this.#t('items_edition')} WHERE user_id = ?`).run(userId);
        this.#stmt(`DELETE FROM ${this.#t('kb_edition')} WHERE user_id = ?`).run(userId);
        return releasedLocks(items, kbs);
      })(),
    );
  }

  itemFolder(itemId: number): number | null {
    return this.#run('itemFolder', () => {
      const row = this.#stmt(`SELECT id_tree FROM ${this.#t('items')} WHERE id = ?`).get(itemId) as { id_tree: string | null } | undefined;
      return row === undefined ? null : phpInt(row.id_tree);
    });
  }

  kbExists(kbId: number): boolean {
    return this.#run('kbExists', () =>
      this.#stmt(`SELECT 1 FROM ${this.#t('kb')} WHERE id = ? AND deleted_at IS NULL`).get(kbId) !== undefined,
    );
  }

  revokeUserTokens(userId: number, createdUpToSec: number): number {
    return this.#run('revokeUserTokens', () =>
      this.#stmt(`DELETE FROM ${this.#t('websocket_tokens')} WHERE user_id = ? AND created_at <= datetime(?, 'unixepoch')`).run(userId, createdUpToSec).changes,
    );
  }

  /**
   * All rows in one transaction. Not chunked: the journal already caps a
   * write at `journal.batchSize` rows, and one transaction per batch is what
   * makes its ack mean "in the table".
   */
  journalEvents(events: readonly EventInsert[]): void {
    this.#run('journalEvents', () => {
      if (events.length === 0) return;
      // A row already holding this event_uuid is not duplicated. If it still waits in
      // the inbox (processed = 0, e.g. the emitter's fallback insert), the socket already
      // delivered it: mark it delivered. Rejected/expired rows keep their status. A row
      // keeps the position it has (the event was fanned out then), else takes this one.
      const stmt = this.#stmt(
        `INSERT INTO ${this.#t('websocket_events')}
           (event_uuid, event_type, target_type, target_id, payload, created_at, tpws_pos, processed, processed_at)
         VALUES (?, ?, ?, ?, ?, coalesce(datetime(?, 'unixepoch'), CURRENT_TIMESTAMP), ?, ${PROCESSED.DELIVERED}, datetime('now'))
         ON CONFLICT (event_uuid) DO UPDATE SET
           processed = CASE WHEN processed = ${PROCESSED.PENDING} THEN ${PROCESSED.DELIVERED} ELSE processed END,
           processed_at = CASE WHEN processed = ${PROCESSED.PENDING} THEN datetime('now') ELSE processed_at END,
           tpws_pos = coalesce(tpws_pos, excluded.tpws_pos)
         WHERE processed = ${PROCESSED.PENDING} OR (tpws_pos IS NULL AND excluded.tpws_pos IS NOT NULL)`,
      );
      const rows = events.map((e) => [...insertParams(e), insertPosition('journalEvents', e)]);
      this.#db.transaction(() => {
        for (const r of rows) stmt.run(...r);
      })();
    });
  }

  insertPendingEvent(event: EventInsert): number {
    // This connection's own commit does not change data_version: the next poll must read.
    this.#emptyAt = null;
    return this.#run('insertPendingEvent', () => {
      const info = this.#stmt(
        `INSERT INTO ${this.#t('websocket_events')}
           (event_uuid, event_type, target_type, target_id, payload, created_at, processed)
         VALUES (?, ?, ?, ?, ?, coalesce(datetime(?, 'unixepoch'), CURRENT_TIMESTAMP), ${PROCESSED.PENDING})`,
      ).run(...insertParams(event));
      return Number(info.lastInsertRowid);
    });
  }

  /**
   * `Store.fetchPending`. An idle poll costs one `PRAGMA data_version` read:
   * when the last full read (no `afterId`) found nothing and no connection has
   * committed since (data_version changes only for other connections' commits;
   * this one's own pending inserts clear `#emptyAt`), nothing can be pending.
   */
  fetchPending(limit: number, afterId?: number): EventRow[] {
    return this.#run('fetchPending', () => {
      if (afterId !== undefined) {
        // The rowid range from afterId. NOT INDEXED: through an index on `processed` the
        // planner would collect and sort every pending row for each batch.
        const rows = this.#stmt(
          `SELECT id, event_uuid, event_type, target_type, target_id, payload,
                  ${epochMs('created_at')} AS created_ms, ${NOW_SEC} * 1000 AS now_ms
           FROM ${this.#t('websocket_events')} NOT INDEXED WHERE id > ? AND processed = ${PROCESSED.PENDING} ORDER BY id LIMIT ?`,
        ).all(afterId, limit) as PendingRow[];
        return rows.map(toEventRow);
      }
      // Read before the SELECT: a commit between the two is seen by the SELECT or changes the version.
      const version = this.#stmt('PRAGMA data_version').pluck().get() as number;
      if (version === this.#emptyAt) return [];
      const rows = this.#stmt(
        `SELECT id, event_uuid, event_type, target_type, target_id, payload,
                ${epochMs('created_at')} AS created_ms, ${NOW_SEC} * 1000 AS now_ms
         FROM ${this.#t('websocket_events')} WHERE processed = ${PROCESSED.PENDING} ORDER BY id LIMIT ?`,
      ).all(limit) as PendingRow[];
      this.#emptyAt = rows.length === 0 ? version : null;
      return rows.map(toEventRow);
    });
  }

  /**
   * False only when a full `fetchPending` found nothing and no connection has
   * committed since (nor this one inserted a pending row): then the next read
   * would find nothing either.
   */
  pendingMayExist(): boolean {
    if (this.#emptyAt === null) return true;
    return this.#run('fetchPending', () => this.#stmt('PRAGMA data_version').pluck().get() as number) !== this.#emptyAt;
  }

  /** One chunk of `Store.markProcessed`. */
  markProcessedChunk(rowIds: readonly number[], status: number): void {
    this.#run('markProcessed', () => {
      if (rowIds.length === 0) return;
      this.#stmt(
        `UPDATE ${this.#t('websocket_events')} SET processed = ?, processed_at = datetime('now')
         WHERE id IN (SELECT value FROM json_each(?))`,
      ).run(status, JSON.stringify(rowIds));
    });
  }

  /** One chunk of `Store.markDelivered`: one statement, each row's position joined by id. */
  markDeliveredChunk(rows: readonly DeliveredRow[]): void {
    this.#run('markDelivered', () => {
      if (rows.length === 0) return;
      const pairs = rows.map((r) => [positiveInt('markDelivered', 'row id', r.rowId), positiveInt('markDelivered', 'position', r.pos)]);
      // coalesce keeps a position the row has (journaled after a socket delivery), as the journal does.
      this.#stmt(
        `UPDATE ${this.#t('websocket_events')}
         SET processed = ${PROCESSED.DELIVERED}, processed_at = datetime('now'), tpws_pos = coalesce(tpws_pos, d.pos)
         FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS pos FROM json_each(?)) AS d
         WHERE ${this.#t('websocket_events')}.id = d.id`,
      ).run(JSON.stringify(pairs));
    });
  }

  /** The database's `datetime('now', '-N hours')`: the retention cutoff, taken once for all chunks. */
  retentionCutoff(hours: number): string {
    return this.#run('deleteOldEvents', () =>
      (this.#stmt(`SELECT datetime('now', ?) AS t`).get(`-${hours} hours`) as { t: string }).t,
    );
  }

  /**
   * One chunk of `Store.deleteOldEvents`: at most `limit` processed rows older
   * than `cutoff`; returns the count. The history floor is raised to the
   * highest position among exactly those rows, in the same transaction
   * (IMMEDIATE: it reads, then writes, and must not lose its snapshot between).
   */
  deleteOldEventsChunk(cutoff: string, limit: number): number {
    return this.#run('deleteOldEvents', () =>
      this.#db.transaction((): number => {
        const t = this.#t('websocket_events');
        const rows = this.#stmt(
          `SELECT id, tpws_pos FROM ${t} WHERE processed <> ${PROCESSED.PENDING} AND processed_at < ? LIMIT ?`,
        ).all(cutoff, limit) as { id: number; tpws_pos: number | null }[];
        if (rows.length === 0) return 0;
        let top: number | null = null;
        for (const r of rows) if (r.tpws_pos !== null && (top === null || r.tpws_pos > top)) top = r.tpws_pos;
        if (top !== null) {
          this.#stmt(
            `INSERT INTO ${this.#t('tpws_state')} (name, value) VALUES ('${HISTORY_FLOOR}', ?)
             ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`,
          ).run(top);
        }
        return this.#stmt(`DELETE FROM ${t} WHERE id IN (SELECT value FROM json_each(?))`).run(JSON.stringify(rows.map((r) => r.id))).changes;
      }).immediate(),
    );
  }

  /** One chunk of `Store.deleteExpiredTokens`: at most `limit` expired tokens; returns the count. */
  deleteExpiredTokensChunk(limit: number): number {
    return this.#run('deleteExpiredTokens', () => {
      const t = this.#t('websocket_tokens');
      return this.#stmt(
        `DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} WHERE expires_at < datetime('now') LIMIT ?)`,
      ).run(limit).changes;
    });
  }

  registerEpoch(epoch: string): number {
    return this.#run('registerEpoch', () =>
      Number(this.#stmt(`INSERT INTO ${this.#t('tpws_epochs')} (epoch) VALUES (?)`).run(epoch).lastInsertRowid),
    );
  }

  findEpoch(epoch: string): number | null {
    return this.#run('findEpoch', () => {
      const no = this.#stmt(`SELECT epoch_no FROM ${this.#t('tpws_epochs')} WHERE epoch = ?`).pluck().get(epoch) as number | undefined;
      return no === undefined ? null : Number(no);
    });
  }

  epochName(epochNo: number): string | null {
    return this.#run('epochName', () =>
      (this.#stmt(`SELECT epoch FROM ${this.#t('tpws_epochs')} WHERE epoch_no = ?`).pluck().get(Math.trunc(epochNo)) as string | undefined) ?? null,
    );
  }

  readHistory(afterPos: number, beforePos: number, limit: number): HistoryRow[] {
    return this.#run('readHistory', () => {
      if (!(limit >= 1)) return [];
      // A range of the tpws_pos index: a resume reads only the rows it replays.
      const rows = this.#stmt(
        `SELECT ${HISTORY_COLUMNS} FROM ${this.#t('websocket_events')}
         WHERE tpws_pos > ? AND tpws_pos < ? ORDER BY tpws_pos LIMIT ?`,
      ).all(Math.trunc(afterPos), Math.trunc(beforePos), Math.trunc(limit)) as (EventColumns & { tpws_pos: number; id: number })[];
      return rows.map(toHistoryRow);
    });
  }

  readHistoryTail(limit: number): HistoryRow[] {
    return this.#run('readHistoryTail', () => {
      if (!(limit >= 1)) return [];
      const rows = this.#stmt(
        `SELECT ${HISTORY_COLUMNS} FROM ${this.#t('websocket_events')}
         WHERE tpws_pos IS NOT NULL ORDER BY tpws_pos DESC LIMIT ?`,
      ).all(Math.trunc(limit)) as (EventColumns & { tpws_pos: number; id: number })[];
      return rows.map(toHistoryRow).reverse();
    });
  }

  recentEventIds(limit: number, maxAgeSec: number): string[] {
    return this.#run('recentEventIds', () => {
      if (!(limit >= 1)) return [];
      // Bounded by `limit` rows of the position index, newest first; the age is a flag (see recentIds).
      const rows = this.#stmt(
        `SELECT event_uuid, id, processed_at >= datetime('now', ?) AS recent FROM ${this.#t('websocket_events')}
         WHERE tpws_pos IS NOT NULL ORDER BY tpws_pos DESC LIMIT ?`,
      ).all(secondsModifier(-maxAgeSec), Math.trunc(limit)) as { event_uuid: string | null; id: number; recent: number | null }[];
      return recentIds(rows);
    });
  }

  historyFloor(): number {
    return this.#run('historyFloor', () => {
      const v = this.#stmt(`SELECT value FROM ${this.#t('tpws_state')} WHERE name = '${HISTORY_FLOOR}'`).pluck().get() as number | undefined;
      return v === undefined ? 0 : Number(v);
    });
  }

  countReplayEvents(filter: ReplayFilter): ReplayScope {
    return this.#run('countReplayEvents', () => {
      const t = this.#t('websocket_events');
      // One read transaction: the count is taken on the same snapshot as the head.
      return this.#db.transaction((): ReplayScope => {
        const headId = Number((this.#stmt(`SELECT coalesce(max(id), 0) AS head FROM ${t}`).get() as { head: number }).head);
        const where = replayWhere(filter, 0, headId, SQLITE_REPLAY);
        const count = Number((this.#stmt(`SELECT count(*) AS n FROM ${t} WHERE ${where.sql}`).get(...where.params) as { n: number }).n);
        return { headId, count };
      })();
    });
  }

  selectReplayEvents(filter: ReplayFilter, afterId: number, throughId: number, limit: number): ReplayRow[] {
    return this.#run('selectReplayEvents', () => {
      const where = replayWhere(filter, afterId, throughId, SQLITE_REPLAY);
      const rows = this.#stmt(
        `SELECT id, event_uuid, event_type, target_type, target_id, payload, processed,
                ${epochMs('created_at')} AS created_ms, ${NOW_SEC} * 1000 AS now_ms
         FROM ${this.#t('websocket_events')} WHERE ${where.sql} ORDER BY id LIMIT ?`,
      ).all(...where.params, Math.trunc(limit)) as (PendingRow & { processed: number | null })[];
      return rows.map((r) => ({ ...toEventRow(r), processed: r.processed === null ? null : Number(r.processed) }));
    });
  }

  acquirePollerLock(): boolean {
    return this.#run('acquirePollerLock', () => {
      // Take the lease when it is absent, expired, or already ours (then it is renewed).
      const { changes } = this.#stmt(
        `INSERT INTO ${this.#t('tpws_lease')} (name, owner, expires_at) VALUES ('poller', ?, datetime('now', ?))
         ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
         WHERE owner = excluded.owner OR expires_at <= datetime('now')`,
      ).run(this.#owner, secondsModifier(LEASE_SECONDS));
      if (changes === 1) return true;
      // Held by a process of this host that is gone (a daemon killed with SIGKILL never
      // gives its lease up): take it now, not when it lapses. The owner in the WHERE
      // makes this a compare-and-swap, so of two daemons starting at once one wins.
      const held = this.#stmt(`SELECT owner FROM ${this.#t('tpws_lease')} WHERE name = 'poller'`).get() as { owner: string } | undefined;
      if (held === undefined || !ownerIsGone(held.owner)) return false;
      return this.#stmt(`UPDATE ${this.#t('tpws_lease')} SET owner = ?, expires_at = datetime('now', ?) WHERE name = 'poller' AND owner = ?`)
        .run(this.#owner, secondsModifier(LEASE_SECONDS), held.owner).changes === 1;
    });
  }

  releasePollerLock(): void {
    this.#run('releasePollerLock', () => {
      this.#stmt(`DELETE FROM ${this.#t('tpws_lease')} WHERE name = 'poller' AND owner = ?`).run(this.#owner);
    });
  }

  /** Give up the lease (best effort) and close the connection. */
  close(): void {
    try {
      // An unmigrated file has no lease table, and then no lease to give up.
      this.#db.prepare(`DELETE FROM ${this.#t('tpws_lease')} WHERE name = 'poller' AND owner = ?`).run(this.#owner);
    } catch {
      /* nothing held */
    }
    this.#statements.clear();
    this.#db.close();
  }
}

/** The event's own columns, as every read of the events table maps them. */
interface EventColumns {
  event_uuid: string | null;
  event_type: string;
  target_type: string;
  /** A number, or whatever SQL wrote where the column's affinity could not make one (text, a blob). */
  target_id: number | string | Buffer | null;
  payload: string;
  created_ms: number;
}

function eventFields(r: EventColumns): Omit<EventRow, 'rowId' | 'readAt'> {
  return {
    eventUuid: r.event_uuid,
    eventType: r.event_type,
    targetType: r.target_type,
    // SQLite already turned every decimal text into a number; what is left ('0x1f', a blob
    // of '7') is not an id, and Number() would make one of it: NaN, so the row is rejected.
    targetId: r.target_id === null ? null : typeof r.target_id === 'number' ? r.target_id : Number.NaN,
    payload: typeof r.payload === 'string' ? r.payload : String(r.payload),
    createdAt: r.created_ms,
  };
}

interface PendingRow extends EventColumns {
  id: number;
  now_ms: number;
}

function toEventRow(r: PendingRow): EventRow {
  return { rowId: r.id, ...eventFields(r), readAt: r.now_ms };
}

/** What a resume needs of a delivered row. */
const HISTORY_COLUMNS = `tpws_pos, id, event_uuid, event_type, target_type, target_id, payload, ${epochMs('created_at')} AS created_ms`;

function toHistoryRow(r: EventColumns & { tpws_pos: number; id: number }): HistoryRow {
  return { pos: r.tpws_pos, rowId: r.id, ...eventFields(r) };
}

function insertParams(e: EventInsert): [string, string, string, number | null, string, number | null] {
  return [e.eventUuid, e.eventType, e.targetType, e.targetId, e.payload, createdSeconds(e)];
}
