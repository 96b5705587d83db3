/**
 * The one storage interface. Two implementations hold the TeamPass-shaped
 * tables: `SqliteStore` (embedded default, no server needed) and `MysqlStore`
 * (mysql2, a real TeamPass database). Nothing above this file knows which one
 * it talks to.
 *
 * Contracts shared by both implementations:
 * - every table name is `<tablePrefix><name>`;
 * - times that TeamPass compares with `NOW()` (token expiry, `processed_at`) are
 *   computed by the database itself, never from the daemon's clock;
 * - methods reject with `TpWsError('TPWS_ERR_STORE_UNAVAILABLE')` when the
 *   database cannot be reached; callers retry or degrade, they never crash.
 */

/** A user as the auth layer needs it. */
export interface UserRecord {
  id: number;
  login: string;
  name: string | null;
  lastname: string | null;
  isAdmin: boolean;
  disabled: boolean;
}

/** A `websocket_tokens` row joined to its (enabled) user, and what that user may read. */
export interface TokenUser {
  user: UserRecord;
  /** When the token expires, as epoch milliseconds (from the database clock). */
  expiresAt: number;
  /** The user's folders as `accessibleFolders` gives them, read with the token (one round trip per connect). */
  folders: number[];
}

/** A token to insert for a user (`Store.insertTokens`). */
export interface NewToken {
  userId: number;
  token: string;
}

/** An item or KB edit lock held by another user. */
export interface LockHolder {
  /** item_id for item locks, kb_id for KB locks. */
  id: number;
  userLogin: string;
  userName: string | null;
  userLastname: string | null;
}

/** Edit locks deleted by `releaseUserLocks`. `timestamp` is the lock's Unix seconds. */
export interface ReleasedLocks {
  items: { itemId: number; folderId: number | null; timestamp: number }[];
  kbs: { kbId: number; timestamp: number }[];
}

/** Values of `websocket_events.processed`. 0 and 1 are TeamPass's; 2 and 3 are tp-ws's. */
export const PROCESSED = {
  PENDING: 0,
  DELIVERED: 1,
  REJECTED: 2,
  EXPIRED: 3,
} as const;

/** A `websocket_events` row as read by the poller. Payload stays raw text: the caller validates. */
export interface EventRow {
  rowId: number;
  eventUuid: string | null;
  eventType: string;
  targetType: string;
  targetId: number | null;
  payload: string;
  /** epoch ms (second resolution, TeamPass's TIMESTAMP column). */
  createdAt: number;
  /** Database clock at read time, epoch ms — ages are computed against it, not the daemon clock. */
  readAt: number;
}

/** An event to be written to `websocket_events` (journal or emitter fallback). */
export interface EventInsert {
  eventUuid: string;
  eventType: string;
  targetType: string;
  targetId: number | null;
  /** Payload JSON text, written as is. */
  payload: string;
  /** epoch ms; the database default (now) when absent. */
  createdAt?: number;
  /**
   * The event's delivery position (`tpws_pos`, src/pipeline/position.ts), or
   * null/absent for an event not fanned out (a duplicate). A row that holds a
   * position already keeps it.
   */
  pos?: number | null;
}

/** A delivered row read back for a resume (docs/protocol.md §Resume): an event row and its position. */
export interface HistoryRow extends Omit<EventRow, 'readAt'> {
  /** `tpws_pos`: epoch number × 2^32 + seq. */
  pos: number;
}

/** A poller row fanned out at `pos` (`Store.markDelivered`). */
export interface DeliveredRow {
  rowId: number;
  pos: number;
}

/** A target `tp-ws replay` selects: one user's or one folder's events, or every `kb` / `broadcast` event. */
export type ReplayTarget = { type: 'user' | 'folder'; id: number } | { type: 'kb' | 'broadcast' };

/**
 * Which `websocket_events` rows `tp-ws replay` selects. Every field narrows
 * the selection; an absent (or empty) field sets no condition.
 */
export interface ReplayFilter {
  /** Lowest row id, inclusive. */
  fromId?: number | null;
  /** Highest row id, inclusive. */
  toId?: number | null;
  /** `created_at` at or after this time (epoch ms; the column has second resolution). */
  since?: number | null;
  /** `created_at` before this time (epoch ms), so that consecutive windows do not overlap. */
  until?: number | null;
  /** `event_type` is one of these. */
  eventTypes?: readonly string[];
  /** The row's target is one of these. */
  targets?: readonly ReplayTarget[];
  /** `processed` is one of these (`PROCESSED` values). */
  statuses?: readonly number[];
}

/** A row selected for replay: an `EventRow` and its `processed` status (null when TeamPass left the column NULL). */
export interface ReplayRow extends EventRow {
  processed: number | null;
}

/** What a replay selection covers when it starts (`Store.countReplayEvents`). */
export interface ReplayScope {
  /** Newest row id of the events table then (0 when empty): the selection stops there. */
  headId: number;
  /** Rows matching the filter with ids up to `headId`. */
  count: number;
}

export interface MigrateOptions {
  /**
   * MySQL: create tp-ws's full schema even when the database holds TeamPass
   * tables under another prefix (refused otherwise, as a wrong
   * `store.tablePrefix` most likely). Default false.
   */
  force?: boolean;
}

export interface MigrateResult {
  /** Names of the migration files applied in this run (empty when already up to date). */
  applied: string[];
  /** `full` when the whole schema was created, `teampass` when an existing TeamPass DB was extended. */
  mode: 'full' | 'teampass';
}

export interface Store {
  readonly kind: 'sqlite' | 'mysql';
  /** Table prefix in use. */
  readonly prefix: string;

  /** Create or upgrade the schema; idempotent. */
  migrate(options?: MigrateOptions): Promise<MigrateResult>;
  /** Cheap round trip; rejects when the database is unreachable. */
  ping(): Promise<void>;

  // --- authentication (docs/protocol.md §Authentication) ---------------------
  /** The unexpired token's enabled user and the user's folders, in one round trip; or null. */
  findTokenUser(token: string): Promise<TokenUser | null>;
  /**
   * `findTokenUser` for many tokens in one round trip (the connects of a
   * storm): the tokens found, each with its user and folders.
   */
  findTokenUsers(tokens: readonly string[]): Promise<Map<string, TokenUser>>;
  /** An enabled user by id, or null. */
  findUser(userId: number): Promise<UserRecord | null>;
  /** users_groups ∪ folders of the user's roles (roles_values), sorted, unique. */
  accessibleFolders(userId: number): Promise<number[]>;
  /**
   * Insert tokens valid for `ttlSec` from the database's now, all in one
   * statement (one commit): the reconnect tokens of a burst of connects.
   * All or none are written.
   */
  insertTokens(tokens: readonly NewToken[], ttlSec: number): Promise<void>;
  /** Push the expiry of these tokens to now + `ttlSec` (keeps reconnect tokens of open sockets alive). */
  extendTokens(tokens: readonly string[], ttlSec: number): Promise<void>;
  /** `misc.valeur` by `intitule`, or null. */
  getMisc(key: string): Promise<string | null>;

  // --- TeamPass edit locks -------------------------------------------------
  /** Item locks in a folder fresher than `timeoutSec`, held by users other than `exceptUserId`. */
  lockedItems(folderId: number, exceptUserId: number, timeoutSec: number): Promise<LockHolder[]>;
  /** KB locks on non-deleted articles fresher than `timeoutSec`, held by others. */
  lockedKbs(exceptUserId: number, timeoutSec: number): Promise<LockHolder[]>;
  /**
   * Set `timestamp` = now (Unix seconds) on the user's lock of this item;
   * true when the user holds one (a row matched, even if the timestamp was
   * already now), false otherwise.
   */
  renewItemLock(itemId: number, userId: number): Promise<boolean>;
  /** As `renewItemLock`, for `kb_edition`. */
  renewKbLock(kbId: number, userId: number): Promise<boolean>;
  /**
   * Delete every item and KB edit lock of the user, in one transaction, and
   * return what was deleted: item locks with the item's folder (`items.id_tree`
   * cast like PHP `(int)`; null when the item row is gone) and KB locks.
   */
  releaseUserLocks(userId: number): Promise<ReleasedLocks>;

  // --- TeamPass lookups -------------------------------------------------------
  /** `items.id_tree` of the item, cast like PHP `(int)`, or null when the item does not exist. */
  itemFolder(itemId: number): Promise<number | null>;
  /** True when the KB article exists and is not deleted (`deleted_at IS NULL`). */
  kbExists(kbId: number): Promise<boolean>;
  /**
   * Delete the user's `websocket_tokens` rows (page and reconnect tokens)
   * created at or before `createdUpToSec` (Unix seconds); returns the count.
   * Tokens minted later (a new login) are kept.
   */
  revokeUserTokens(userId: number, createdUpToSec: number): Promise<number>;

  // --- events table ----------------------------------------------------------
  /**
   * Journal: insert rows with `processed = 1`. A row whose `event_uuid` already
   * exists is not duplicated; it is marked processed instead.
   */
  journalEvents(events: readonly EventInsert[]): Promise<void>;
  /** Fallback inbox: insert one row with `processed = 0` (what an emitter does when the socket is down). */
  insertPendingEvent(event: EventInsert): Promise<number>;
  /**
   * Up to `limit` rows with `processed = 0`, oldest id first; with `afterId`,
   * only rows whose id is above it. The poller passes `afterId` while it
   * drains a backlog batch after batch, so each read is a range scan of the
   * primary key rather than a scan (or sort) of every pending row; it reads
   * without it again before it goes idle, so a row that committed late under
   * a lower id is still found.
   */
  fetchPending(limit: number, afterId?: number): Promise<EventRow[]>;
  /** Set `processed = status, processed_at = now` on these row ids (a position already set is kept). */
  markProcessed(rowIds: readonly number[], status: number): Promise<void>;
  /**
   * Set `processed = 1, processed_at = now` and `tpws_pos` on rows the poller
   * fanned out; a row that holds a position already (delivered earlier
   * through the socket and journaled) keeps it.
   */
  markDelivered(rows: readonly DeliveredRow[]): Promise<void>;
  /**
   * Delete processed (non-zero) rows whose processed_at is older than `hours`;
   * returns the count. Before deleting, raises the history floor
   * (`historyFloor`) to the highest position among the rows deleted, in the
   * same transaction, so a resume never replays across a pruned hole.
   */
  deleteOldEvents(hours: number): Promise<number>;

  // --- delivery history (docs/protocol.md §Resume) ------------------------------
  /**
   * Record a new epoch (one per daemon start) in `tpws_epochs`; returns its
   * number, greater than every number given before on this database.
   */
  registerEpoch(epoch: string): Promise<number>;
  /** The number of a recorded epoch, or null when this database never saw it. */
  findEpoch(epoch: string): Promise<number | null>;
  /** The epoch id (uuid) of a recorded epoch number, or null. */
  epochName(epochNo: number): Promise<string | null>;
  /**
   * Rows with `afterPos < tpws_pos < beforePos`, ascending position, at most
   * `limit`, whatever their `processed` status.
   */
  readHistory(afterPos: number, beforePos: number, limit: number): Promise<HistoryRow[]>;
  /** The `limit` rows with the highest positions, in ascending position (the ring is filled from them at start). */
  readHistoryTail(limit: number): Promise<HistoryRow[]>;
  /**
   * Event ids (`event_uuid`, else `row-<id>`) of the rows among the `limit`
   * with the highest positions that were processed within the last
   * `maxAgeSec`, in ascending position: what the dedup window held before a
   * restart.
   */
  recentEventIds(limit: number, maxAgeSec: number): Promise<string[]>;
  /** The highest position retention has deleted (0 when none): history below it is incomplete. */
  historyFloor(): Promise<number>;
  /** Delete expired tokens; returns the count. */
  deleteExpiredTokens(): Promise<number>;

  // --- replay (`tp-ws replay`) -------------------------------------------------
  /**
   * The newest row id of the events table, and how many rows up to it match
   * `filter`. A replay reads up to that `headId` only: the rows its own
   * events add to the table (the journal) are never selected again.
   */
  countReplayEvents(filter: ReplayFilter): Promise<ReplayScope>;
  /**
   * One page of a keyset scan: up to `limit` rows matching `filter` with
   * `afterId < id ≤ throughId`, ascending id, whatever their `processed`
   * status unless `filter.statuses` says otherwise. The payload is the stored
   * text, untouched. Read-only; never holds more than one page in memory.
   */
  selectReplayEvents(filter: ReplayFilter, afterId: number, throughId: number, limit: number): Promise<ReplayRow[]>;

  /**
   * Optional: resolve once rows with `processed = 0` may be waiting (checked
   * every `intervalMs`), after `maxWaitMs` at the latest, or at once when
   * `signal` aborts. For a store that can tell cheaply whether anything was
   * committed (SQLite's `PRAGMA data_version`), so an idle poller does not wake
   * the daemon's thread at every interval. Without it the poller just sleeps
   * `intervalMs` and reads.
   */
  waitForPending?(intervalMs: number, maxWaitMs: number, signal: AbortSignal): Promise<void>;

  /**
   * Try to become the only poller of this events table. Returns true when held.
   * MySQL: `GET_LOCK` on a connection kept for the lock (released by the server
   * if that connection dies). SQLite: a lease row that expires 15 s after the
   * last call, so the holder must call this again within 15 s (each call renews).
   */
  acquirePollerLock(): Promise<boolean>;
  releasePollerLock(): Promise<void>;

  close(): Promise<void>;
}
