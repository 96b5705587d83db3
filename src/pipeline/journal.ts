import type { BridgeEvent } from '../event.js';
import type { Logger } from '../log.js';
import type { EventInsert, Store } from '../store/store.js';

export interface JournalOptions {
  /** Rows per INSERT. */
  batchSize: number;
  /** Extra wait to gather a batch when idle (0: write at once). */
  flushMs: number;
  /** Events held in memory while the store is down; past it the oldest are dropped (logged, counted). */
  maxQueue: number;
  /** Backoff cap while the store is down. */
  maxBackoffMs: number;
  /**
   * A write still running after this long settles its waiters as `pending`
   * (the events stay queued), so a slow database does not hold senders' acks
   * past their timeouts. Default 250.
   */
  slowWriteMs?: number;
}

export interface JournalCounters {
  written: number;
  writeErrors: number;
  dropped: number;
}

/** `written`: in the table; `pending`: the store is down, kept in memory and retried; `dropped`: lost from the history. */
export type JournalOutcome = 'written' | 'pending' | 'dropped';

interface Pending {
  row: EventInsert;
  /** Called once with the first outcome; null afterwards. */
  done: ((outcome: JournalOutcome) => void) | null;
}

/**
 * Writes socket events to the events table (design §3.3): the table keeps
 * the full history, and an emitter's fallback insert of the same id becomes a
 * harmless duplicate key.
 *
 * Group commit: at most one write is in flight; whatever arrives meanwhile
 * goes in the next write, so a busy socket gets big batches and an idle one
 * waits for a single INSERT. While the store is down the queue is kept (up to
 * `maxQueue`) and retried with exponential backoff and jitter; `healthy` tells
 * the ingest socket not to hold its acks for it.
 */
export class Journal {
  readonly counters: JournalCounters = { written: 0, writeErrors: 0, dropped: 0 };
  private queue: Pending[] = [];
  private writing = false;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly store: Store, private readonly log: Logger, private readonly o: JournalOptions) {}

  /** False while the last write failed (the store is unreachable). */
  get healthy(): boolean {
    return this.failures === 0;
  }

  get queued(): number {
    return this.queue.length;
  }

  /**
   * Queue an event. Resolves `written` once it is in the table; `pending` as
   * soon as a write fails (the event stays queued and is retried, so a sender
   * is not held while the database is down); `dropped` when it had to be given
   * up (queue overflow while the store was down, or shutdown).
   */
  write(event: BridgeEvent): Promise<JournalOutcome> {
    return new Promise((done) => {
      if (this.closed) return done('dropped');
      const pending: Pending = {
        row: { eventUuid: event.id, eventType: event.eventType, targetType: event.targetType, targetId: event.targetId, payload: event.payloadJson, createdAt: event.createdAt },
        done,
      };
      this.queue.push(pending);
      // The store is down: say so at once rather than after the next retry.
      if (!this.healthy) settle(pending, 'pending');
      if (this.queue.length > this.o.maxQueue) {
        const lost = this.queue.splice(0, this.queue.length - this.o.maxQueue);
        this.counters.dropped += lost.length;
        this.log.error({ dropped: lost.length }, 'journal queue full while the store is down; oldest events dropped from the history (they were delivered)');
        for (const p of lost) settle(p, 'dropped');
      }
      this.schedule(this.o.flushMs);
    });
  }

  private schedule(delayMs: number): void {
    if (this.writing || this.timer !== null || this.queue.length === 0) return;
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
    const batch = this.queue.slice(0, this.o.batchSize);
    const slow = setTimeout(() => { for (const p of this.queue) settle(p, 'pending'); }, this.o.slowWriteMs ?? 250);
    try {
      await this.store.journalEvents(batch.map((p) => p.row));
      this.queue.splice(0, batch.length);
      this.counters.written += batch.length;
      if (this.failures > 0) this.log.info({ after_failures: this.failures, queued: this.queue.length }, 'journal writes resumed');
      this.failures = 0;
      for (const p of batch) settle(p, 'written');
    } catch (err) {
      this.counters.writeErrors++;
      this.failures++;
      for (const p of this.queue) settle(p, 'pending');
      if (this.failures === 1 || this.failures % 20 === 0) this.log.warn({ err, queued: this.queue.length, failures: this.failures }, 'journal write failed; events kept in memory, retrying');
    } finally {
      clearTimeout(slow);
      this.writing = false;
    }
    if (this.queue.length === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    if (this.closed && this.failures > 0) return;
    this.schedule(this.failures === 0 ? 0 : backoff(this.failures, this.o.maxBackoffMs));
  }

  /**
   * Write what is queued, waiting at most `timeoutMs`; then refuse new
   * events. Returns how many events could not be written.
   */
  async close(timeoutMs: number): Promise<number> {
    this.closed = true;
    if (this.queue.length > 0 || this.writing) {
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
    if (this.timer !== null) clearTimeout(this.timer);
    const left = this.queue.splice(0);
    if (left.length > 0) this.log.error({ lost: left.length }, 'journal not fully written at shutdown');
    for (const p of left) settle(p, 'dropped');
    return left.length;
  }
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
