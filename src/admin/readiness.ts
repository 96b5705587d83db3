import { connect } from 'node:net';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { TpWsError } from '../errors.js';
import type { Logger } from '../log.js';
import { CANARY_EVENT_TYPE } from '../pipeline/pipeline.js';
import type { Store } from '../store/store.js';

/**
 * Interval of the readiness check's event-loop delay sampler: every sample
 * wakes an idle daemon (about 0.6 ms of CPU each on the project machine).
 * A stall shorter than this may be missed or read short; the readiness
 * threshold (1 s) is about longer ones, which are read in full.
 */
const EVENT_LOOP_SAMPLE_MS = 1000;

/** The delay in ms, rounded to 0.01, of a sampler's reading: the interval between two samples, less the sampling interval. */
function delayMs(ns: number): number {
  return Math.max(0, Math.round(ns / 1e4) / 100 - EVENT_LOOP_SAMPLE_MS);
}

export interface ReadinessCheck {
  name: 'store' | 'poller' | 'ingest' | 'event_loop' | 'canary';
  ok: boolean;
  detail: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: ReadinessCheck[];
}

export interface ReadinessOptions {
  /** Longest time one check may take; the whole report takes about as long. Default 1000. */
  checkTimeoutMs?: number;
  /** Event-loop delay (p99 over the last interval) above which the daemon is not ready. Default 1000. */
  maxLagMs?: number;
  /** Interval of the table canary. Default 10000. */
  canaryIntervalMs?: number;
  /** A canary not seen back within this is a failure. Default 10000. */
  canaryTimeoutMs?: number;
  /** How stale the last successful poll may be before the poller counts as stuck. Default 10000. */
  pollerStaleMs?: number;
}

export interface ReadinessDeps {
  store: Pick<Store, 'ping' | 'insertPendingEvent'>;
  /** Null when the poller is disabled. */
  poller: { readonly holdsLock: boolean; readonly lastPollAt: number; readonly failing: number; readonly counters: { readonly polls: number } } | null;
  /** Ingest socket path, or null when disabled. */
  ingestPath: string | null;
  log: Logger;
}

/**
 * `/readyz` that cannot lie (docs/operations.md §Readiness): the store
 * answers, the poller polls, the ingest socket accepts, the event loop is not
 * stalled, and a canary row inserted into the events table comes back
 * through the poller and the pipeline. Every check has a time bound, so the
 * answer comes within about `checkTimeoutMs` even when the database hangs.
 *
 * The canary is a `tpws.canary` row (never fanned out) inserted every
 * `canaryIntervalMs` by the daemon that holds the poller lock; other daemons
 * (standing by) skip it. Its rows are marked processed and removed by the
 * retention like any other.
 */
export class Readiness {
  private readonly o: Required<ReadinessOptions>;
  private readonly lag: IntervalHistogram;
  private lagP99Ms = 0;
  private lagMaxMs = 0;
  private lagP50Ms = 0;
  private lagTimer: NodeJS.Timeout | null = null;
  private canaryTimer: NodeJS.Timeout | null = null;
  private canarySeq = 0;
  /** Canaries inserted and not seen back: id → when inserted (a few at most). */
  private readonly canariesOut = new Map<string, number>();
  /** When the oldest canary still not seen back was inserted. */
  private canaryPendingSince: number | null = null;
  private canaryLastOkAt = 0;
  private canaryLastRoundTripMs: number | null = null;
  private canaryError: string | null = null;
  private readonly epoch = Date.now().toString(36);
  last: ReadinessReport = { ready: false, checks: [] };
  /** When `last` was made (0: never). */
  lastAt = 0;

  constructor(private readonly d: ReadinessDeps, options: ReadinessOptions = {}) {
    this.o = {
      checkTimeoutMs: options.checkTimeoutMs ?? 1000,
      maxLagMs: options.maxLagMs ?? 1000,
      canaryIntervalMs: options.canaryIntervalMs ?? 10_000,
      canaryTimeoutMs: options.canaryTimeoutMs ?? 10_000,
      pollerStaleMs: options.pollerStaleMs ?? 10_000,
    };
    this.lag = monitorEventLoopDelay({ resolution: EVENT_LOOP_SAMPLE_MS });
  }

  start(): void {
    this.lag.enable();
    this.lagTimer = setInterval(() => this.sampleLag(), 5000);
    this.lagTimer.unref();
    if (this.d.poller !== null) {
      this.canaryTimer = setInterval(() => void this.sendCanary(), this.o.canaryIntervalMs);
      this.canaryTimer.unref();
    }
  }

  close(): void {
    this.lag.disable();
    if (this.lagTimer) clearInterval(this.lagTimer);
    if (this.canaryTimer) clearInterval(this.canaryTimer);
  }

  /** Event-loop delay over the last sampling interval (5 s), milliseconds. */
  get eventLoopLag(): { p50: number; p99: number; max: number } {
    return { p50: this.lagP50Ms, p99: this.lagP99Ms, max: this.lagMaxMs };
  }

  /** The pipeline saw a canary come back. */
  canaryArrived(id: string): void {
    const at = this.canariesOut.get(id);
    if (at === undefined) return;
    this.canaryLastRoundTripMs = Date.now() - at;
    this.canaryLastOkAt = Date.now();
    this.canariesOut.clear();
    this.canaryPendingSince = null;
  }

  /** Run every check (in parallel, each bounded) and keep the result in `last`. */
  async check(): Promise<ReadinessReport> {
    const checks = await Promise.all([this.checkStore(), this.checkPoller(), this.checkIngest(), this.checkLag(), this.checkCanary()]);
    const list = checks.filter((c): c is ReadinessCheck => c !== null);
    this.last = { ready: list.every((c) => c.ok), checks: list };
    this.lastAt = Date.now();
    return this.last;
  }

  private sampleLag(): void {
    this.lagP50Ms = delayMs(this.lag.percentile(50));
    this.lagP99Ms = delayMs(this.lag.percentile(99));
    this.lagMaxMs = delayMs(this.lag.max);
    this.lag.reset();
  }

  private async checkStore(): Promise<ReadinessCheck> {
    try {
      await bounded(this.d.store.ping(), this.o.checkTimeoutMs, 'no answer');
      return { name: 'store', ok: true, detail: 'answers' };
    } catch (err) {
      return { name: 'store', ok: false, detail: `not reachable: ${(err as Error).message}` };
    }
  }

  private async checkPoller(): Promise<ReadinessCheck | null> {
    const p = this.d.poller;
    if (p === null) return null;
    if (p.failing > 0) return { name: 'poller', ok: false, detail: `${p.failing} failed poll(s) in a row` };
    if (p.counters.polls === 0) return { name: 'poller', ok: false, detail: 'has not polled yet' };
    if (!p.holdsLock) return { name: 'poller', ok: true, detail: 'standing by (another daemon polls this table)' };
    const age = Date.now() - p.lastPollAt;
    if (p.lastPollAt === 0 || age > this.o.pollerStaleMs) return { name: 'poller', ok: false, detail: p.lastPollAt === 0 ? 'has not polled yet' : `last poll ${age} ms ago` };
    return { name: 'poller', ok: true, detail: `last poll ${age} ms ago` };
  }

  private async checkIngest(): Promise<ReadinessCheck | null> {
    const path = this.d.ingestPath;
    if (path === null) return null;
    try {
      await bounded(new Promise<void>((resolve, reject) => {
        const s = connect(path, () => { s.destroy(); resolve(); });
        s.once('error', reject);
      }), this.o.checkTimeoutMs, 'no answer');
      return { name: 'ingest', ok: true, detail: `${path} accepts connections` };
    } catch (err) {
      return { name: 'ingest', ok: false, detail: `${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
  }

  private async checkLag(): Promise<ReadinessCheck> {
    const p99 = Math.max(this.lagP99Ms, this.lag.count > 0 ? delayMs(this.lag.percentile(99)) : 0);
    const ok = p99 <= this.o.maxLagMs;
    return { name: 'event_loop', ok, detail: `p99 delay ${Math.round(p99)} ms (limit ${this.o.maxLagMs} ms)` };
  }

  private async checkCanary(): Promise<ReadinessCheck | null> {
    const p = this.d.poller;
    if (p === null) return null;
    if (p.counters.polls === 0) return { name: 'canary', ok: false, detail: 'the poller has not started yet' };
    if (!p.holdsLock) return { name: 'canary', ok: true, detail: 'not sent: another daemon polls this table' };
    if (this.canaryError !== null) return { name: 'canary', ok: false, detail: `could not insert: ${this.canaryError}` };
    const since = this.canaryPendingSince;
    if (since !== null && Date.now() - since > this.o.canaryTimeoutMs) {
      return { name: 'canary', ok: false, detail: `inserted ${Date.now() - since} ms ago and not delivered by the poller` };
    }
    if (this.canaryLastOkAt === 0) return { name: 'canary', ok: true, detail: since === null ? 'first canary not sent yet' : 'first canary on its way' };
    return { name: 'canary', ok: true, detail: `last round trip ${this.canaryLastRoundTripMs} ms, ${Date.now() - this.canaryLastOkAt} ms ago` };
  }

  private async sendCanary(): Promise<void> {
    const p = this.d.poller;
    if (p === null || !p.holdsLock) return;
    // One canary on its way at a time; past the timeout another goes (the first may have
    // expired in the table while the poller was down), and the failure keeps counting
    // from the first.
    const newest = Math.max(0, ...this.canariesOut.values());
    if (this.canariesOut.size > 0 && Date.now() - newest < this.o.canaryTimeoutMs) return;
    const id = `tpws-canary-${this.epoch}-${++this.canarySeq}`;
    const at = Date.now();
    try {
      await bounded(this.d.store.insertPendingEvent({ eventUuid: id, eventType: CANARY_EVENT_TYPE, targetType: 'broadcast', targetId: null, payload: '{}' }), this.o.checkTimeoutMs * 5, 'insert did not finish');
      this.canaryError = null;
      if (this.canariesOut.size >= 8) this.canariesOut.delete(this.canariesOut.keys().next().value as string);
      this.canariesOut.set(id, at);
      this.canaryPendingSince ??= at;
    } catch (err) {
      if (this.canaryError === null) this.d.log.warn({ err }, 'readiness canary could not be inserted into the events table');
      this.canaryError = (err as Error).message;
    }
  }
}

/** `p`, or a rejection with `what` after `ms`. */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TpWsError('TPWS_ERR_UNAVAILABLE', `${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
