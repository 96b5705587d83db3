import { EventInvalid, parseEvent, type BridgeEvent } from '../event.js';
import type { Logger } from '../log.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { backoff } from '../pipeline/journal.js';
import { PROCESSED, type DeliveredRow, type EventRow, type Store } from '../store/store.js';

export interface TablePollerOptions {
  intervalMs: number;
  idleIntervalMs: number;
  batchSize: number;
  maxAgeSec: number;
  maxBackoffMs: number;
  /** Largest row payload delivered, in bytes (`rowPayloadLimit`); a larger row is rejected. */
  maxPayloadBytes: number;
}

/**
 * The largest payload a row may have: half of `limits.maxBufferedBytes`.
 * TeamPass's column is unbounded, so rows are not held to the ingest
 * socket's `ingest.maxPayloadBytes`; but a row no socket can take would
 * close every recipient as a slow consumer (4100) — every socket, for a
 * broadcast — and a resume could never replay it (a replay may use half
 * of the socket's budget, docs/protocol.md §Resume).
 */
export function rowPayloadLimit(maxBufferedBytes: number): number {
  return Math.floor(maxBufferedBytes / 2);
}

export interface PollerCounters {
  polls: number;
  rowsDelivered: number;
  rowsDuplicate: number;
  rowsRejected: number;
  rowsExpired: number;
  errors: number;
}

/**
 * How often the holder renews the poller lock. SQLite's lease lasts 15 s; on
 * MySQL a lost lock (its connection died) is noticed within this. Between
 * renewals an idle poll is a single store call.
 */
const LOCK_RENEW_MS = 5000;

/** Row ids of one batch by the status they get. */
interface Marks {
  /** Rows fanned out now, with their positions (`tpws_pos`). */
  positioned: DeliveredRow[];
  /** Rows whose event was fanned out before (a duplicate): marked, their position left as it is. */
  delivered: number[];
  rejected: number[];
  expired: number[];
}

/** Id of a row's event: its `event_uuid`, or a stable id derived from the row id for rows TeamPass wrote. */
export function rowEventId(row: EventRow): string {
  return row.eventUuid ?? `row-${row.rowId}`;
}

/**
 * Drains `websocket_events` rows with `processed = 0` (docs/ingest.md §When the socket is down): rows that
 * TeamPass's PHP inserts, and those our emitters write while the socket is down.
 *
 * - Reads by the flag in id order. While a backlog drains (full batches),
 *   the next batch is read after the last id of the one before, so a batch
 *   costs the same however deep into the backlog it is; the first poll after
 *   a partial batch reads by the flag alone again, so a row whose transaction
 *   commits late under a lower id is still delivered.
 * - A batch is marked processed while the next one is read and fanned out
 *   (at most one marking in flight; every marking is done before a read by
 *   the flag alone, so such a read never sees rows already delivered).
 * - A full batch polls again at once; a partial one after `intervalMs`; an
 *   empty one after `idleIntervalMs`; a failure backs off exponentially with
 *   jitter (the socket path keeps delivering meanwhile).
 * - Poison rows (bad JSON, unknown target) are marked rejected (2), stale rows
 *   (older than `maxAgeSec` on first sight) expired (3), each logged and counted.
 * - Only the holder of the store's poller lock polls; others stand by.
 */
export class TablePoller {
  readonly counters: PollerCounters = { polls: 0, rowsDelivered: 0, rowsDuplicate: 0, rowsRejected: 0, rowsExpired: 0, errors: 0 };
  /** Epoch ms of the last successful poll (readiness). */
  lastPollAt = 0;
  holdsLock = false;
  /** Rows the last poll found pending (a full batch means more are waiting). */
  lastBacklog = 0;
  /** Age of the oldest row the last poll found pending, ms by the database clock (0 when none). */
  lastLagMs = 0;
  private failures = 0;
  private o: TablePollerOptions;
  /** When the lock was last taken or renewed (epoch ms). */
  private lockRenewedAt = 0;
  /** Last row id of the previous full batch: the next read starts after it. Undefined: read by the flag alone. */
  private cursor: number | undefined = undefined;
  /** The marking under way (never rejects: its failure is kept in `markError`). */
  private marking: Promise<void> | null = null;
  private markError: unknown = null;
  /**
   * Positions of rows fanned out whose marking failed: the rows come back as
   * duplicates (the dedup window), and their positions are written with the
   * next marking, so the history has no hole. Bounded by the dedup window's
   * worth of rows; cleared once written.
   */
  private unmarked: DeliveredRow[] = [];

  constructor(
    private readonly store: Store,
    private readonly pipeline: Pipeline,
    private readonly log: Logger,
    options: TablePollerOptions,
  ) {
    this.o = { ...options };
  }

  /** Consecutive failed polls (0 when the last one succeeded). */
  get failing(): number {
    return this.failures;
  }

  /** New intervals, batch size and ages for the next polls (configuration reload). */
  setOptions(options: TablePollerOptions): void {
    this.o = { ...options };
  }

  /** Poll until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let delay: number;
      try {
        delay = await this.tick();
        if (this.failures > 0) this.log.info({ after_failures: this.failures }, 'table poller recovered');
        this.failures = 0;
      } catch (err) {
        this.failures++;
        this.counters.errors++;
        this.holdsLock = false;
        this.cursor = undefined;
        delay = backoff(this.failures, this.o.maxBackoffMs);
        if (this.failures === 1 || this.failures % 20 === 0) this.log.warn({ err, failures: this.failures, retry_ms: delay }, 'table poll failed; backing off');
      }
      // Idle (nothing found, lock held): a store that can watch for commits waits on its
      // side, and this thread sleeps until rows may be there or the lock is due.
      if (delay === this.o.idleIntervalMs && this.lastBacklog === 0 && this.holdsLock && this.failures === 0 && this.store.waitForPending) {
        await this.store.waitForPending(delay, Math.max(delay, LOCK_RENEW_MS - (Date.now() - this.lockRenewedAt)), signal).catch(() => {});
      } else await this.sleep(delay, signal);
    }
    await this.settleMarking().catch(() => {});
    if (this.holdsLock) await this.store.releasePollerLock().catch(() => {});
    this.holdsLock = false;
  }

  /** One poll; returns the delay before the next one. */
  async tick(): Promise<number> {
    const now = Date.now();
    if (!this.holdsLock || now - this.lockRenewedAt >= LOCK_RENEW_MS) {
      const held = await this.store.acquirePollerLock();
      if (!held) {
        if (this.holdsLock || this.counters.polls === 0) this.log.info('another daemon polls this events table; standing by');
        this.holdsLock = false;
        this.cursor = undefined;
        this.counters.polls++;
        return this.o.idleIntervalMs * 4;
      }
      if (!this.holdsLock) this.log.info('table poller lock acquired');
      this.holdsLock = true;
      this.lockRenewedAt = now;
    }
    this.counters.polls++;
    // A read by the flag alone must not see rows whose marking is still under way.
    if (this.cursor === undefined) await this.settleMarking();
    const rows = await this.store.fetchPending(this.o.batchSize, this.cursor);
    this.lastPollAt = Date.now();
    if (this.cursor === undefined || rows.length > 0) {
      this.lastBacklog = rows.length;
      this.lastLagMs = rows.length === 0 ? 0 : Math.max(0, rows[0].readAt - rows[0].createdAt);
    }
    if (rows.length > 0) {
      const marks = this.dispatch(rows);
      // Mark after dispatch: if marking fails the rows come back at the next read by
      // the flag, and the dedup window keeps them from being delivered twice.
      await this.settleMarking();
      this.marking = this.mark(marks).catch((err: unknown) => {
        this.markError = err;
      });
    }
    if (rows.length >= this.o.batchSize) {
      this.cursor = rows[rows.length - 1].rowId;
      return 0;
    }
    // The end of a drain: the next poll reads by the flag alone (late commits under lower ids).
    const draining = this.cursor !== undefined;
    this.cursor = undefined;
    // After a drain the flag read comes at once: it finds the rows committed meanwhile, or nothing.
    if (draining) return 0;
    return rows.length > 0 ? this.o.intervalMs : this.o.idleIntervalMs;
  }

  /** Wait for the marking under way; rethrow its failure. */
  private async settleMarking(): Promise<void> {
    const m = this.marking;
    if (m === null) return;
    await m;
    if (this.marking === m) this.marking = null;
    const err = this.markError;
    this.markError = null;
    if (err !== null) throw err;
  }

  private async mark(m: Marks): Promise<void> {
    const positioned = this.unmarked.length === 0 ? m.positioned : this.unmarked.concat(m.positioned);
    this.unmarked = positioned;
    if (positioned.length > 0) await this.store.markDelivered(positioned);
    this.unmarked = [];
    if (m.delivered.length > 0) await this.store.markProcessed(m.delivered, PROCESSED.DELIVERED);
    if (m.rejected.length > 0) await this.store.markProcessed(m.rejected, PROCESSED.REJECTED);
    if (m.expired.length > 0) await this.store.markProcessed(m.expired, PROCESSED.EXPIRED);
  }

  /** Classify and fan out a batch, in order; returns which rows get which status. */
  private dispatch(rows: EventRow[]): Marks {
    const positioned: DeliveredRow[] = [];
    const delivered: number[] = [];
    const rejected: number[] = [];
    const expired: number[] = [];
    for (const row of rows) {
      const outcome = this.classify(row);
      if (outcome.kind === 'rejected') {
        rejected.push(row.rowId);
        this.counters.rowsRejected++;
        this.log.warn({ code: 'TPWS_ERR_INVALID_EVENT', row_id: row.rowId, event_type: row.eventType, reason: outcome.reason }, 'events table row rejected');
        continue;
      }
      if (outcome.kind === 'expired') {
        expired.push(row.rowId);
        this.counters.rowsExpired++;
        this.log.info({ row_id: row.rowId, event_type: row.eventType, age_s: outcome.ageSec }, 'events table row too old; marked expired, not delivered');
        continue;
      }
      const r = this.pipeline.accept(outcome.event, 'table');
      if (r.pos !== null) positioned.push({ rowId: row.rowId, pos: r.pos });
      else delivered.push(row.rowId);
      if (r.delivered) this.counters.rowsDelivered++;
      else this.counters.rowsDuplicate++;
    }
    return { positioned, delivered, rejected, expired };
  }

  private classify(row: EventRow): { kind: 'event'; event: BridgeEvent } | { kind: 'rejected'; reason: string } | { kind: 'expired'; ageSec: number } {
    const id = rowEventId(row);
    let event: BridgeEvent;
    try {
      event = parseEvent(
        // The stored text is passed as is: parsed once to validate, fanned out byte for byte.
        { id, event_type: row.eventType, target_type: row.targetType, target_id: row.targetId, payload: row.payload, created_at: row.createdAt },
        // Not ingest.maxPayloadBytes: TeamPass's column is unbounded; only what no socket could take is refused.
        { maxPayloadBytes: this.o.maxPayloadBytes },
        () => id,
      );
    } catch (err) {
      if (err instanceof EventInvalid) return { kind: 'rejected', reason: err.message };
      throw err;
    }
    // A duplicate of an event already delivered by the socket is marked, not aged.
    if (this.pipeline.seen(id)) return { kind: 'event', event };
    const ageSec = Math.floor((row.readAt - row.createdAt) / 1000);
    if (ageSec > this.o.maxAgeSec) return { kind: 'expired', ageSec };
    return { kind: 'event', event };
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (ms <= 0 || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
    });
  }
}
