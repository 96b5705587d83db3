/**
 * The embedded store: the TeamPass-shaped tables in one SQLite file, so
 * `tp-ws serve` runs on a machine with no MySQL. Same contract as `MysqlStore`
 * (see `store.ts`); the SQL (in `sqlite-db.ts`) differs only where the
 * dialects do.
 *
 * better-sqlite3 is synchronous, so the connection lives in a worker thread
 * (`sqlite-worker.ts`) and this class only posts requests to it: the daemon's
 * event loop keeps running while a write waits for another process's lock or
 * a 100k-token refresh runs.
 */
import { Worker } from 'node:worker_threads';
import { TpWsError } from '../errors.js';
import { leaseOwner } from './lease-owner.js';
import { errorCode } from './sql-support.js';
import type { SqliteOp, SqliteOpArgs, SqliteOpResult, SqliteReply, SqliteRequest, SqliteWorkerInit, WireError } from './sqlite-worker.js';
import type {
  DeliveredRow,
  EventInsert,
  EventRow,
  HistoryRow,
  LockHolder,
  MigrateResult,
  NewToken,
  ReleasedLocks,
  ReplayFilter,
  ReplayRow,
  ReplayScope,
  Store,
  TokenUser,
  UserRecord,
} from './store.js';

export interface SqliteStoreOptions {
  /** Database file; its parent directory is created when missing. `:memory:` works for one instance. */
  path: string;
  /** Table prefix (`store.tablePrefix`), already validated as `[A-Za-z0-9_]{0,32}`. */
  prefix: string;
}

// A worker thread is plain Node: it cannot load TypeScript. Built, this file is
// dist/store/sqlite-store.js and starts its sibling dist/store/sqlite-worker.js.
// Vitest runs it from src/store/sqlite-store.ts; then it starts the built
// worker in dist/ (`npm test` runs `npm run build` before vitest, so dist is
// current; run the build yourself before `npx vitest`).
const WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/store/sqlite-worker.js', import.meta.url)
  : new URL('./sqlite-worker.js', import.meta.url);

/** Test hook: the store's `Worker` (null when it could not be started). Not part of the API. */
export const kWorker = Symbol('tp-ws.sqlite-store.worker');

interface Call {
  op: SqliteOp;
  resolve: (value: never) => void;
  reject: (err: TpWsError) => void;
}

/**
 * `Store` on a local SQLite file (better-sqlite3 in a worker thread; WAL
 * journal, `busy_timeout` 5000 ms so that two processes on one file wait for
 * each other rather than fail).
 *
 * Every call is one message to the thread and one back. The thread runs
 * calls in the order they were made; bulk calls (`extendTokens`,
 * `markProcessed`, `markDelivered`, retention deletes) run 1,000 rows per
 * statement and let calls made meanwhile run between their chunks. A write waiting for the file's
 * lock holds up the calls behind it (one connection), but not this thread.
 *
 * Opening the file happens in the thread: the constructor never throws, and a
 * file that cannot be opened makes every call reject with the
 * `TPWS_ERR_STORE_UNAVAILABLE` the open gave. If the thread dies, every pending
 * and later call rejects with `TPWS_ERR_STORE_UNAVAILABLE`. The thread does not
 * keep the process alive while no call is pending.
 *
 * The poller lock is a lease row in `<prefix>tpws_lease`: the holder must call
 * `acquirePollerLock()` again within 15 s to keep it (each call renews it);
 * `releasePollerLock()` and `close()` give it up. A lease whose holder is a
 * process of this host that no longer exists (killed with SIGKILL) is taken
 * at once (src/store/lease-owner.ts).
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly prefix: string;
  readonly #worker: Worker | null = null;
  readonly #calls = new Map<number, Call>();
  #nextId = 1;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** Why the thread is gone (it died or could not start); every later call rejects with this. */
  #death: string | null = null;

  constructor(options: SqliteStoreOptions) {
    this.prefix = options.prefix;
    const init: SqliteWorkerInit = { path: options.path, prefix: options.prefix, owner: leaseOwner() };
    try {
      this.#worker = new Worker(WORKER_URL, { workerData: init, execArgv: workerExecArgv() });
    } catch (err) {
      this.#death = `worker did not start: ${errorCode(err)}`;
      return;
    }
    // Idle, the thread must not keep the process alive (as the synchronous store
    // did not); it is ref'd while a call waits for its reply.
    this.#worker.unref();
    this.#worker.on('message', (reply: SqliteReply) => this.#workerOnMessage(reply));
    // 'error' (an exception the thread did not catch, or a worker file that
    // does not load) is always followed by 'exit'; listening keeps it from
    // becoming an uncaught exception of this process.
    this.#worker.on('error', (err) => this.#workerOnExit(`worker failed: ${errorCode(err)}`));
    this.#worker.on('exit', (code) => this.#workerOnExit(`worker stopped with exit code ${code}`));
  }

  /** Test hook, see `kWorker`. */
  get [kWorker](): Worker | null {
    return this.#worker;
  }

  #workerOnMessage(reply: SqliteReply): void {
    const call = this.#calls.get(reply.id);
    if (call === undefined) return;
    this.#forget(reply.id);
    if (reply.ok) call.resolve(reply.value as never);
    else call.reject(fromWire(reply.error));
  }

  #workerOnExit(reason: string): void {
    this.#death ??= reason;
    for (const [id, call] of this.#calls) {
      this.#forget(id);
      call.reject(this.#deathError(call.op));
    }
  }

  #deathError(op: string): TpWsError {
    return new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `sqlite store: ${op} failed (${this.#death})`);
  }

  #forget(id: number): void {
    this.#calls.delete(id);
    if (this.#calls.size === 0) this.#worker?.unref();
  }

  /** A store operation: refused after `close()`. */
  #call<K extends SqliteOp>(op: K, ...args: SqliteOpArgs<K>): Promise<SqliteOpResult<K>> {
    if (this.#closed) return Promise.reject(new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `sqlite store: ${op} after close()`));
    return this.#send(op, args);
  }

  /** One request to the thread and its reply. */
  #send<K extends SqliteOp>(op: K, args: SqliteOpArgs<K>): Promise<SqliteOpResult<K>> {
    const worker = this.#worker;
    if (worker === null || this.#death !== null) return Promise.reject(this.#deathError(op));
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      const request: SqliteRequest = { id, op, args };
      try {
        worker.postMessage(request);
      } catch (err) {
        reject(new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `sqlite store: ${op} failed (${errorCode(err)})`, { cause: err }));
        return;
      }
      this.#calls.set(id, { op, resolve, reject });
      if (this.#calls.size === 1) worker.ref();
    });
  }

  migrate(): Promise<MigrateResult> {
    return this.#call('migrate');
  }

  ping(): Promise<void> {
    return this.#call('ping');
  }

  findTokenUser(token: string): Promise<TokenUser | null> {
    return this.#call('findTokenUser', token);
  }

  findTokenUsers(tokens: readonly string[]): Promise<Map<string, TokenUser>> {
    return this.#call('findTokenUsers', tokens);
  }

  findUser(userId: number): Promise<UserRecord | null> {
    return this.#call('findUser', userId);
  }

  accessibleFolders(userId: number): Promise<number[]> {
    return this.#call('accessibleFolders', userId);
  }

  insertTokens(tokens: readonly NewToken[], ttlSec: number): Promise<void> {
    return this.#call('insertTokens', tokens, ttlSec);
  }

  extendTokens(tokens: readonly string[], ttlSec: number): Promise<void> {
    return this.#call('extendTokens', tokens, ttlSec);
  }

  getMisc(key: string): Promise<string | null> {
    return this.#call('getMisc', key);
  }

  lockedItems(folderId: number, exceptUserId: number, timeoutSec: number): Promise<LockHolder[]> {
    return this.#call('lockedItems', folderId, exceptUserId, timeoutSec);
  }

  lockedKbs(exceptUserId: number, timeoutSec: number): Promise<LockHolder[]> {
    return this.#call('lockedKbs', exceptUserId, timeoutSec);
  }

  renewItemLock(itemId: number, userId: number): Promise<boolean> {
    return this.#call('renewItemLock', itemId, userId);
  }

  renewKbLock(kbId: number, userId: number): Promise<boolean> {
    return this.#call('renewKbLock', kbId, userId);
  }

  releaseUserLocks(userId: number): Promise<ReleasedLocks> {
    return this.#call('releaseUserLocks', userId);
  }

  itemFolder(itemId: number): Promise<number | null> {
    return this.#call('itemFolder', itemId);
  }

  kbExists(kbId: number): Promise<boolean> {
    return this.#call('kbExists', kbId);
  }

  revokeUserTokens(userId: number, createdUpToSec: number): Promise<number> {
    return this.#call('revokeUserTokens', userId, createdUpToSec);
  }

  journalEvents(events: readonly EventInsert[]): Promise<void> {
    return this.#call('journalEvents', events);
  }

  insertPendingEvent(event: EventInsert): Promise<number> {
    return this.#call('insertPendingEvent', event);
  }

  fetchPending(limit: number, afterId?: number): Promise<EventRow[]> {
    return this.#call('fetchPending', limit, afterId);
  }

  markProcessed(rowIds: readonly number[], status: number): Promise<void> {
    return this.#call('markProcessed', rowIds, status);
  }

  markDelivered(rows: readonly DeliveredRow[]): Promise<void> {
    return this.#call('markDelivered', rows);
  }

  deleteOldEvents(hours: number): Promise<number> {
    return this.#call('deleteOldEvents', hours);
  }

  registerEpoch(epoch: string): Promise<number> {
    return this.#call('registerEpoch', epoch);
  }

  findEpoch(epoch: string): Promise<number | null> {
    return this.#call('findEpoch', epoch);
  }

  epochName(epochNo: number): Promise<string | null> {
    return this.#call('epochName', epochNo);
  }

  readHistory(afterPos: number, beforePos: number, limit: number): Promise<HistoryRow[]> {
    return this.#call('readHistory', afterPos, beforePos, limit);
  }

  readHistoryTail(limit: number): Promise<HistoryRow[]> {
    return this.#call('readHistoryTail', limit);
  }

  recentEventIds(limit: number, maxAgeSec: number): Promise<string[]> {
    return this.#call('recentEventIds', limit, maxAgeSec);
  }

  historyFloor(): Promise<number> {
    return this.#call('historyFloor');
  }

  deleteExpiredTokens(): Promise<number> {
    return this.#call('deleteExpiredTokens');
  }

  countReplayEvents(filter: ReplayFilter): Promise<ReplayScope> {
    return this.#call('countReplayEvents', filter);
  }

  selectReplayEvents(filter: ReplayFilter, afterId: number, throughId: number, limit: number): Promise<ReplayRow[]> {
    return this.#call('selectReplayEvents', filter, afterId, throughId, limit);
  }

  /**
   * The wait runs in the thread, which checks `PRAGMA data_version` every
   * `intervalMs` and answers only when something may be pending or at
   * `maxWaitMs`: an idle daemon's own thread sleeps meanwhile.
   */
  async waitForPending(intervalMs: number, maxWaitMs: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const cancel = () => void this.#call('cancelWaits').catch(() => undefined);
    signal.addEventListener('abort', cancel, { once: true });
    try {
      await this.#call('waitForPending', intervalMs, maxWaitMs);
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  acquirePollerLock(): Promise<boolean> {
    return this.#call('acquirePollerLock');
  }

  releasePollerLock(): Promise<void> {
    return this.#call('releasePollerLock');
  }

  /**
   * Let the calls already made finish, give up the poller lease, close the
   * file and stop the thread. Idempotent: every call returns the same promise.
   * Calls made after it reject with `TPWS_ERR_STORE_UNAVAILABLE`.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    if (this.#worker === null) return;
    // Best effort: a thread that died has no lease and no file left to close.
    await this.#send('close', []).catch(() => undefined);
    await this.#worker.terminate();
  }
}

/**
 * This process's Node flags for the thread (memory limits, source maps…),
 * but not `--input-type`: Node refuses it for a worker started from a file
 * (`node --input-type=module -e` embedding the store would lose every call).
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--input-type') i++;
    else if (!argv[i].startsWith('--input-type=')) out.push(argv[i]);
  }
  return out;
}

/** The `TpWsError` a reply carried, rebuilt on this thread (driver code kept in `cause.code`). */
function fromWire(w: WireError): TpWsError {
  if (w.cause === undefined) return new TpWsError(w.code, w.message);
  const cause = Object.assign(new Error(w.cause.message), { name: w.cause.name }, w.cause.code === undefined ? {} : { code: w.cause.code });
  return new TpWsError(w.code, w.message, { cause });
}
