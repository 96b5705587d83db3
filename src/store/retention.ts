import type { Logger } from '../log.js';
import type { Store } from './store.js';

export interface RetentionOptions {
  /** Processed events older than this are deleted (`retention.hours`). */
  hours: number;
  /** Interval of the cleanup (`retention.intervalSec`, in ms). */
  intervalMs: number;
  /**
   * True when this daemon should clean up: the holder of the poller lock,
   * so that of several daemons on one table only one deletes.
   */
  leader: () => boolean;
}

export interface RetentionCounters {
  runs: number;
  failures: number;
  eventsDeleted: number;
  tokensDeleted: number;
}

/**
 * The periodic cleanup of the events table and the token table (design
 * §3.4, TeamPass's hourly cleanup): processed events older than `hours`
 * and expired tokens are deleted. Pending rows are never deleted. A failure
 * is logged and retried at the next interval.
 */
export class Retention {
  readonly counters: RetentionCounters = { runs: 0, failures: 0, eventsDeleted: 0, tokensDeleted: 0 };
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  private o: RetentionOptions;

  constructor(private readonly store: Pick<Store, 'deleteOldEvents' | 'deleteExpiredTokens'>, private readonly log: Logger, options: RetentionOptions) {
    this.o = { ...options };
  }

  start(): void {
    this.timer = setInterval(() => void this.run(), this.o.intervalMs);
    this.timer.unref();
  }

  /** Take new hours and interval (configuration reload); a running timer is re-armed when the interval changed. */
  setOptions(options: Pick<RetentionOptions, 'hours' | 'intervalMs'>): void {
    const rearm = this.timer !== null && options.intervalMs !== this.o.intervalMs;
    this.o = { ...this.o, ...options };
    if (rearm) {
      clearInterval(this.timer as NodeJS.Timeout);
      this.start();
    }
  }

  /** One cleanup, when this daemon is the leader and none is running. */
  run(): Promise<void> {
    if (this.running !== null || !this.o.leader()) return this.running ?? Promise.resolve();
    this.running = this.cleanup().finally(() => { this.running = null; });
    return this.running;
  }

  private async cleanup(): Promise<void> {
    this.counters.runs++;
    try {
      const events = await this.store.deleteOldEvents(this.o.hours);
      const tokens = await this.store.deleteExpiredTokens();
      this.counters.eventsDeleted += events;
      this.counters.tokensDeleted += tokens;
      if (events + tokens > 0) this.log.info({ events, tokens }, 'retention cleanup');
    } catch (err) {
      this.counters.failures++;
      this.log.warn({ err }, 'retention cleanup failed; will retry next interval');
    }
  }

  /** Stop; wait for a cleanup under way. Idempotent. */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
