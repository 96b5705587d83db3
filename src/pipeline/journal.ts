import type { BridgeEvent } from '../event.js';
import type { Logger } from '../log.js';
import type { EventInsert, Store } from '../store/store.js';

/** Overflow drops are logged at most this often (with the count since the last line). */
const DROP_LOG_INTERVAL_MS = 5000;

export interface JournalOptions {
  /** Rows per INSERT. */
  batchSize: number;
  /** Extra wait to gather a batch when idle (0: write at once). */
  flushMs: number;
  /**
   * Most events held in memory, the batch being written included; past it
   * the oldest waiting events are dropped from the history (logged, counted).
   */
  maxQueue: number;
  /** Backoff cap while the store is down. */
  maxBackoffMs: number;
  /**
   * A write still running after this long settles its waiters as `pending`
   * (the events stay queued), so a slow database does not hold senders' acks
   * past their timeouts. Default 250.
   */
  slowWriteMs?: number;
  /** Told the ids of events given up (overflow or shutdown), once each. */
  onDropped?: (ids: readonly string[]) => void;
}

export interface JournalCounters {
  /** Events whose write the store confirmed. */
  written: number;
  /** Writes (batches) that failed. */
  writeErrors: number;
  /**
   * Events given up, never retried: not confirmed written. One whose write the
   * database's crash cut off may be in the table all the same (the write
   * committed, its answer was lost); at most one batch, as one write runs at a time.
   */
  dropped: number;
}

/** `written`: in the table; `pending`: not yet, kept in memory and retried; `dropped`: lost from the history. */
export type JournalOutcome = 'written' | 'pending' | 'dropped';

interface Pending {
  row: EventInsert;
  /** Called once with the first outcome; null afterwards. */
  done: ((outcome: JournalOutcome) => void) | null;
}

/**
 * Writes socket events to the events table (docs/ingest.md §Acks): the table keeps
 * the full history, and an emitter's fallback insert of the same id becomes a
 * harmless duplicate key.
 *
 * Group commit: at most one write is in flight; whatever arrives meanwhile
 * waits for the next write, so a busy socket gets big batches and an idle one
 * waits for a single INSERT. The batch being written is taken out of the
 * waiting queue for the length of the write: overflow can drop only waiting
 * events, never one whose write is under way, and the write's outcome is
 * applied to exactly the events it carried. A failed batch goes back to the
 * front of the queue and is retried with exponential backoff and jitter;
 * `healthy` tells the ingest socket not to hold its acks for it.
 *
 * Every event ends exactly once as written (counted in `written`) or dropped
 * (counted in `dropped`, reported to `onDropped`); its promise settles with
 * its first outcome.
 */
export class Journal {
  readonly counters: JournalCounters = { written: 0, writeErrors: 0, dropped: 0 };
  /** Events waiting for a write, oldest first. */
  private waiting: Pending[] = [];
  /** The batch of the write under way; empty when none is. */
  private inFlight: Pending[] = [];
  private writing = false;
  /** The write under way has taken longer than `slowWriteMs`. */
  private slowNow = false;

  /** True while the write under way has taken longer than `slowWriteMs` (acks say `pending`). */
  get slow(): boolean {
    return this.slowNow;
  }
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  /** `closing`: new events refused, queued ones still written; `closed`: nothing more is tried. */
  private state: 'open' | 'closing' | 'closed' = 'open';
  private idleWaiters: (() => void)[] = [];
  /** When the last overflow line was logged. */
  private lastDropLog = 0;
  /** Overflow drops since that line, and the timer that logs them. */
  private dropsUnlogged = 0;
  private dropLogTimer: NodeJS.Timeout | null = null;

  constructor(private readonly store: Pick<Store, 'journalEvents'>, private readonly log: Logger, private readonly o: JournalOptions) {}

  /** False while the last write failed (the store is unreachable). */
  get healthy(): boolean {
    return this.failures === 0;
  }

  /** Events held in memory: waiting, and being written. */
  get queued(): number {
    return this.waiting.length + this.inFlight.length;
  }

  /**
   * Queue an event, with its delivery position (null for a duplicate: the
   * row keeps the position it has). Resolves `written` once it is in the table; `pending` as
   * soon as a write fails or is slow (the event stays queued and is retried,
   * so a sender is not held while the database is down); `dropped` when it
   * had to be given up (queue overflow, or shutdown).
   */
  write(event: BridgeEvent, pos: number | null = null): Promise<JournalOutcome> {
    return new Promise((done) => {
      if (this.state !== 'open') return this.drop([{ row: toRow(event, pos), done }], 'shutdown');
      const pending: Pending = { row: toRow(event, pos), done };
      this.waiting.push(pending);
      // The store is down, or the write under way is already slow: say so at
      // once rather than after the next retry or the end of that write.
      if (!this.healthy || this.slowNow) settle(pending, 'pending');
      this.trim();
      this.schedule(this.o.flushMs);
    });
  }

  /** Drop the oldest waiting events while more than `maxQueue` are held. */
  private trim(): void {
    const over = Math.min(this.queued - this.o.maxQueue, this.waiting.length);
    if (over <= 0) return;
    this.drop(this.waiting.splice(0, over), 'overflow');
  }

  private drop(lost: Pending[], why: 'overflow' | 'shutdown' | 'failed at shutdown'): void {
    this.counters.dropped += lost.length;
    for (const p of lost) settle(p, 'dropped');
    this.o.onDropped?.(lost.map((p) => p.row.eventUuid));
    if (why !== 'overflow') {
      this.logOverflow();
      this.log.error({ dropped: lost.length, reason: why, total_dropped: this.counters.dropped }, 'journal stopping; events dropped from the history (they were delivered)');
      return;
    }
    // One line per few seconds, not one per event: overflow happens per write while the
    // store is down. The drops since the last line are logged when the interval is over,
    // whether more follow or not, so the lines add up to the counter.
    this.dropsUnlogged += lost.length;
    const wait = this.lastDropLog + DROP_LOG_INTERVAL_MS - Date.now();
    if (wait <= 0) this.logOverflow();
    else if (this.dropLogTimer === null) {
      this.dropLogTimer = setTimeout(() => this.logOverflow(), wait);
      this.dropLogTimer.unref();
    }
  }

  /** Log the overflow drops not logged yet, with their count. */
  private logOverflow(): void {
    if (this.dropLogTimer !== null) clearTimeout(this.dropLogTimer);
    this.dropLogTimer = null;
    if (this.dropsUnlogged === 0) return;
    this.lastDropLog = Date.now();
    this.log.error({ dropped: this.dropsUnlogged, reason: 'overflow', total_dropped: this.counters.dropped },
      'journal queue full (store down or slow); oldest events dropped from the history (they were delivered)');
    this.dropsUnlogged = 0;
  }

  private schedule(delayMs: number): void {
    if (this.writing || this.timer !== null || this.waiting.length === 0) return;
    if (delayMs <= 0 && this.healthy) {
      this.writing = true;
      queueMicrotask(() => void this.writeBatch());
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.writing = true;
      void this.writeBatch();
    }, delayMs);
  }

  private async writeBatch(): Promise<void> {
    const batch = this.waiting.splice(0, this.o.batchSize);
    this.inFlight = batch;
    const slowTimer = setTimeout(() => {
      this.slowNow = true;
      for (const p of batch) settle(p, 'pending');
      for (const p of this.waiting) settle(p, 'pending');
    }, this.o.slowWriteMs ?? 250);
    try {
      await this.store.journalEvents(batch.map((p) => p.row));
      this.counters.written += batch.length;
      if (this.failures > 0) this.log.info({ after_failures: this.failures, queued: this.waiting.length }, 'journal writes resumed');
      this.failures = 0;
      for (const p of batch) settle(p, 'written');
    } catch (err) {
      this.counters.writeErrors++;
      this.failures++;
      for (const p of batch) settle(p, 'pending');
      for (const p of this.waiting) settle(p, 'pending');
      if (this.state === 'closed') this.drop(batch, 'failed at shutdown');
      else {
        // Back to the front, oldest first; if the queue filled up meanwhile, the oldest go.
        this.waiting.unshift(...batch);
        if (this.failures === 1 || this.failures % 20 === 0) this.log.warn({ err, queued: this.waiting.length, failures: this.failures }, 'journal write failed; events kept in memory, retrying');
      }
    } finally {
      clearTimeout(slowTimer);
      this.slowNow = false;
      this.inFlight = [];
      this.writing = false;
    }
    this.trim();
    if (this.waiting.length === 0 || this.state === 'closed') {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    this.schedule(this.failures === 0 ? 0 : backoff(this.failures, this.o.maxBackoffMs));
  }

  /**
   * Write what is queued, waiting at most `timeoutMs`, and refuse new events.
   * What is still waiting then is dropped; a write still under way settles
   * on its own (the store's close ends it). Returns how many events were not
   * confirmed written: dropped now, or still in flight.
   */
  async close(timeoutMs: number): Promise<number> {
    if (this.state !== 'open') return 0;
    this.state = 'closing';
    if (this.queued > 0) {
      if (this.timer !== null) {
        clearTimeout(this.timer);
        this.timer = null;
        this.schedule(0);
      }
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.idleWaiters.push(r)),
        new Promise<void>((r) => { t = setTimeout(r, timeoutMs); }),
      ]);
      clearTimeout(t);
    }
    this.state = 'closed';
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const left = this.waiting.splice(0);
    if (left.length > 0) this.drop(left, 'shutdown');
    this.logOverflow();
    return left.length + this.inFlight.length;
  }
}

function toRow(event: BridgeEvent, pos: number | null): EventInsert {
  return { eventUuid: event.id, eventType: event.eventType, targetType: event.targetType, targetId: event.targetId, payload: event.payloadJson, createdAt: event.createdAt, pos };
}

function settle(p: Pending, outcome: JournalOutcome): void {
  const done = p.done;
  p.done = null;
  done?.(outcome);
}

/** Exponential backoff with full jitter: random in [0, min(cap, 100 ms · 2^n)), at least 10 ms. */
export function backoff(failures: number, capMs: number): number {
  const ceiling = Math.min(capMs, 100 * 2 ** Math.min(failures, 20));
  return Math.max(10, Math.floor(Math.random() * ceiling));
}
