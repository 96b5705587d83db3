/**
 * The worker thread behind `SqliteStore`: it owns the better-sqlite3
 * connection (`SqliteDb`) and answers one reply per request, so the daemon's
 * event loop never waits on SQLite (on the main thread, a write waiting for
 * another process's write lock blocked it for up to `busy_timeout`, 5 s).
 *
 * Wire protocol (structured clone, one `postMessage` each way):
 *   request  `{ id, op, args }`
 *   reply    `{ id, ok: true, value }` or `{ id, ok: false, error: WireError }`
 * Errors cross as plain data (`WireError`) and the store rebuilds the
 * `TpWsError`, keeping its code, message and the driver error's code in
 * `cause`, so a caller can branch on it (`SQLITE_CONSTRAINT_UNIQUE`: the row exists).
 *
 * A request that cannot be handled as data (not an object) is a bug in the
 * store, not a database failure: it throws and kills the thread, and the store
 * turns that into `TPWS_ERR_STORE_UNAVAILABLE` for every pending and later call.
 */
import { watch, type FSWatcher } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { TpWsError, type TpWsErrorCode } from '../errors.js';
import { SqliteDb, type SqliteDbOptions } from './sqlite-db.js';
import { storeError } from './sql-support.js';
import type { DeliveredRow, EventInsert, NewToken, ReplayFilter } from './store.js';

/** `workerData` of the thread. */
export type SqliteWorkerInit = SqliteDbOptions;

/**
 * Rows or tokens per statement in bulk calls. A 1,000-token UPDATE takes a few
 * ms; between chunks the worker yields to its loop, so requests that arrived
 * meanwhile (an auth lookup, a journal write) run before the next chunk.
 */
export const CHUNK = 1000;

/** A `TpWsError` as data, for the trip back to the store's thread. */
export interface WireError {
  code: TpWsErrorCode;
  message: string;
  /** The driver error (name, message, code such as `SQLITE_BUSY`), when there was one. */
  cause?: { name: string; message: string; code?: string };
}

export interface SqliteRequest {
  id: number;
  op: SqliteOp;
  args: unknown[];
}

export type SqliteReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

/** Every operation the thread answers: the `Store` methods (bulk ones chunked) and `close`. */
/**
 * Idle polls waiting in this thread (`waitForPending`), so while nothing is
 * committed the daemon's thread is not woken at every poll interval. A wait
 * watches the WAL file (inotify): another connection's commit writes it, and
 * only then is `pendingMayExist` checked; this thread sleeps meanwhile. Where
 * the file cannot be watched (`:memory:`, no WAL yet, no inotify), it checks
 * every `intervalMs` instead. Either way it ends by `maxWaitMs`.
 */
class PendingWaits {
  readonly #ends = new Set<() => void>();

  constructor(private readonly db: SqliteDb, private readonly walPath: string | null) {}

  wait(intervalMs: number, maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        // A failing check ends the wait: the poller's read then reports the error.
        let may = true;
        try {
          may = this.db.pendingMayExist();
        } catch {
          /* see above */
        }
        if (may) end();
      };
      // The file changes before a commit is visible: the last frame is written, then the
      // shared-memory index. A check at the change can come too early, so two more
      // follow each change: soon, and at `intervalMs` (never later than polling was).
      let soon: NodeJS.Timeout | null = null;
      let late: NodeJS.Timeout | null = null;
      const onChange = () => {
        check();
        if (!this.#ends.has(end)) return;
        if (soon !== null) clearTimeout(soon);
        if (late !== null) clearTimeout(late);
        soon = setTimeout(check, 10);
        late = setTimeout(check, intervalMs);
      };
      const watcher = this.#watch(onChange);
      const timer = watcher === null ? setInterval(check, intervalMs) : null;
      const limit = setTimeout(() => end(), maxWaitMs);
      const end = () => {
        watcher?.close();
        if (timer !== null) clearInterval(timer);
        if (soon !== null) clearTimeout(soon);
        if (late !== null) clearTimeout(late);
        clearTimeout(limit);
        this.#ends.delete(end);
        resolve();
      };
      this.#ends.add(end);
      // This connection's own pending insert does not touch the file after the wait began: check once now.
      check();
    });
  }

  #watch(onChange: () => void): FSWatcher | null {
    if (this.walPath === null) return null;
    try {
      const w = watch(this.walPath, { persistent: false }, onChange);
      w.on('error', onChange);
      return w;
    } catch {
      return null;
    }
  }

  /** End every wait now (the poller stops, or the store closes). */
  cancelAll(): void {
    for (const end of [...this.#ends]) end();
  }
}

function operations(db: SqliteDb, running: Set<Promise<unknown>>, walPath: string | null) {
  const waits = new PendingWaits(db, walPath);
  return {
    migrate: () => db.migrate(),
    ping: () => db.ping(),
    findTokenUser: (token: string) => db.findTokenUser(token),
    findTokenUsers: (tokens: readonly string[]) => db.findTokenUsers(tokens),
    findUser: (userId: number) => db.findUser(userId),
    accessibleFolders: (userId: number) => db.accessibleFolders(userId),
    insertTokens: (tokens: readonly NewToken[], ttlSec: number) => db.insertTokens(tokens, ttlSec),
    extendTokens: (tokens: readonly string[], ttlSec: number) => inChunks(tokens, (c) => db.extendTokensChunk(c, ttlSec)),
    getMisc: (key: string) => db.getMisc(key),
    lockedItems: (folderId: number, exceptUserId: number, timeoutSec: number) => db.lockedItems(folderId, exceptUserId, timeoutSec),
    lockedKbs: (exceptUserId: number, timeoutSec: number) => db.lockedKbs(exceptUserId, timeoutSec),
    renewItemLock: (itemId: number, userId: number) => db.renewItemLock(itemId, userId),
    renewKbLock: (kbId: number, userId: number) => db.renewKbLock(kbId, userId),
    releaseUserLocks: (userId: number) => db.releaseUserLocks(userId),
    itemFolder: (itemId: number) => db.itemFolder(itemId),
    kbExists: (kbId: number) => db.kbExists(kbId),
    revokeUserTokens: (userId: number, createdUpToSec: number) => db.revokeUserTokens(userId, createdUpToSec),
    journalEvents: (events: readonly EventInsert[]) => db.journalEvents(events),
    insertPendingEvent: (event: EventInsert) => db.insertPendingEvent(event),
    fetchPending: (limit: number, afterId?: number) => db.fetchPending(limit, afterId),
    markProcessed: (rowIds: readonly number[], status: number) => inChunks(rowIds, (c) => db.markProcessedChunk(c, status)),
    markDelivered: (rows: readonly DeliveredRow[]) => inChunks(rows, (c) => db.markDeliveredChunk(c)),
    deleteOldEvents: (hours: number) => {
      const cutoff = db.retentionCutoff(hours);
      return deleteInChunks(() => db.deleteOldEventsChunk(cutoff, CHUNK));
    },
    deleteExpiredTokens: () => deleteInChunks(() => db.deleteExpiredTokensChunk(CHUNK)),
    registerEpoch: (epoch: string) => db.registerEpoch(epoch),
    findEpoch: (epoch: string) => db.findEpoch(epoch),
    epochName: (epochNo: number) => db.epochName(epochNo),
    readHistory: (afterPos: number, beforePos: number, limit: number) => db.readHistory(afterPos, beforePos, limit),
    readHistoryTail: (limit: number) => db.readHistoryTail(limit),
    recentEventIds: (limit: number, maxAgeSec: number) => db.recentEventIds(limit, maxAgeSec),
    historyFloor: () => db.historyFloor(),
    countReplayEvents: (filter: ReplayFilter) => db.countReplayEvents(filter),
    selectReplayEvents: (filter: ReplayFilter, afterId: number, throughId: number, limit: number) => db.selectReplayEvents(filter, afterId, throughId, limit),
    waitForPending: (intervalMs: number, maxWaitMs: number) => waits.wait(intervalMs, maxWaitMs),
    cancelWaits: () => waits.cancelAll(),
    acquirePollerLock: () => db.acquirePollerLock(),
    releasePollerLock: () => db.releasePollerLock(),
    /** Let chunked calls asked for before `close` finish, then give up the lease and close the file. */
    close: async () => {
      waits.cancelAll();
      await Promise.allSettled([...running]);
      db.close();
    },
  };
}

type Operations = ReturnType<typeof operations>;
export type SqliteOp = keyof Operations;
export type SqliteOpArgs<K extends SqliteOp> = Parameters<Operations[K]>;
export type SqliteOpResult<K extends SqliteOp> = Awaited<ReturnType<Operations[K]>>;

/** `step` on each `CHUNK`-sized slice, yielding to this thread's loop between slices. */
async function inChunks<T>(items: readonly T[], step: (chunk: readonly T[]) => void): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) {
    if (i > 0) await nextTurn();
    step(items.slice(i, i + CHUNK));
  }
}

/** Repeat a `LIMIT CHUNK` delete until it removes fewer than `CHUNK` rows; the total count. */
async function deleteInChunks(step: () => number): Promise<number> {
  let total = 0;
  for (;;) {
    const n = step();
    total += n;
    if (n < CHUNK) return total;
    await nextTurn();
  }
}

function toWire(op: string, err: unknown): WireError {
  const e = err instanceof TpWsError ? err : storeError('sqlite', op, err);
  const wire: WireError = { code: e.code, message: e.message };
  if (e.cause instanceof Error) {
    const code = (e.cause as { code?: unknown }).code;
    wire.cause = { name: e.cause.name, message: e.cause.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return wire;
}

function main(): void {
  const port = parentPort!;
  const init = workerData as SqliteWorkerInit;
  const running = new Set<Promise<unknown>>();
  // An open failure (bad path, unreadable file) is not a crash: every call
  // answers with it, as the old synchronous constructor threw it.
  let ops: Operations | null = null;
  let openError: WireError | null = null;
  try {
    ops = operations(new SqliteDb(init), running, init.path === ':memory:' ? null : `${init.path}-wal`);
  } catch (err) {
    openError = toWire('open', err);
  }

  const reply = (id: number, op: string, outcome: { value: unknown } | { err: unknown }): void => {
    const msg: SqliteReply = 'err' in outcome ? { id, ok: false, error: toWire(op, outcome.err) } : { id, ok: true, value: outcome.value };
    port.postMessage(msg);
  };

  port.on('message', (req: SqliteRequest) => {
    const { id, op, args } = req;
    if (ops === null) {
      if (op === 'close') reply(id, op, { value: undefined });
      else port.postMessage({ id, ok: false, error: openError! } satisfies SqliteReply);
      return;
    }
    const fn = Object.hasOwn(ops, op) ? (ops[op] as (...a: unknown[]) => unknown) : null;
    if (fn === null) {
      reply(id, String(op), { err: new TpWsError('TPWS_ERR_INTERNAL', `sqlite store: unknown operation ${JSON.stringify(op)}`) });
      return;
    }
    let value: unknown;
    try {
      value = fn(...args);
    } catch (err) {
      reply(id, op, { err });
      return;
    }
    if (!(value instanceof Promise)) {
      reply(id, op, { value });
      return;
    }
    running.add(value);
    value.then(
      (v: unknown) => reply(id, op, { value: v }),
      (err: unknown) => reply(id, op, { err }),
    ).finally(() => running.delete(value));
  });
}

// Imported for its types by `sqlite-store.ts`, run only as a worker thread.
if (!isMainThread && parentPort !== null) main();
