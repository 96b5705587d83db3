import type { BridgeEvent } from '../event.js';
import type { NotableLine } from '../log.js';
import type { DeliveryObserver, EventSource } from '../pipeline/pipeline.js';

/** Event sources in the order the status page shows them. */
export const STATUS_SOURCES: readonly EventSource[] = ['socket', 'table', 'replay', 'api', 'daemon'];

/** One `history` entry: what happened in one bucket, and the connections at its end. */
export interface StatusBucket extends Record<EventSource, number> {
  t: number;
  deliveries: number;
  connections: number;
}

export interface StatusSamplerOptions {
  /** Bucket length. Default 5000. */
  bucketMs?: number;
  /** Buckets kept (default 120: ten minutes of 5 s). */
  buckets?: number;
  /** Latency samples kept per bucket (a reservoir beyond it). Default 1000. */
  latencySamples?: number;
  /** Warnings and errors kept. Default 20. */
  notableLines?: number;
}

export interface StatusCounters {
  events(): Record<EventSource, number>;
  deliveries(): number;
  connections(): number;
}

/**
 * What `/status.json` needs over time (docs/operations.md §Status page):
 * per-bucket deltas of events by source and deliveries for the last minutes,
 * delivery latency over the last minute, and the last warnings and errors
 * logged. Memory stays fixed: a ring of buckets, a bounded sample per bucket.
 */
export class StatusSampler implements DeliveryObserver {
  private readonly o: Required<StatusSamplerOptions>;
  private readonly history: StatusBucket[] = [];
  private readonly latencies: number[][] = [[]];
  private seenInBucket = 0;
  private prev: { events: Record<EventSource, number>; deliveries: number } | null = null;
  private readonly notable: NotableLine[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly c: StatusCounters, options: StatusSamplerOptions = {}) {
    this.o = { bucketMs: options.bucketMs ?? 5000, buckets: options.buckets ?? 120, latencySamples: options.latencySamples ?? 1000, notableLines: options.notableLines ?? 20 };
  }

  start(): void {
    this.prev = { events: { ...this.c.events() }, deliveries: this.c.deliveries() };
    this.timer = setInterval(() => this.sample(), this.o.bucketMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  delivered(event: BridgeEvent, source: EventSource): void {
    if (source === 'replay') return; // keeps its original creation time: not a delivery latency
    const ms = Math.max(0, Date.now() - event.createdAt);
    const bucket = this.latencies[this.latencies.length - 1];
    this.seenInBucket++;
    if (bucket.length < this.o.latencySamples) bucket.push(ms);
    else {
      // Reservoir sampling keeps an unbiased sample of a busy bucket.
      const j = Math.floor(Math.random() * this.seenInBucket);
      if (j < bucket.length) bucket[j] = ms;
    }
  }

  /** A warning or error was logged (from the root logger's hook). */
  logged(line: NotableLine): void {
    if (this.notable.length >= this.o.notableLines) this.notable.shift();
    this.notable.push(line);
  }

  /** Close the current bucket (every `bucketMs`; tests call it directly). */
  sample(now = Date.now()): void {
    const events = this.c.events();
    const deliveries = this.c.deliveries();
    const prev = this.prev ?? { events: Object.fromEntries(STATUS_SOURCES.map((k) => [k, 0])) as Record<EventSource, number>, deliveries: 0 };
    const bucket = { t: now, deliveries: deliveries - prev.deliveries, connections: this.c.connections() } as StatusBucket;
    for (const k of STATUS_SOURCES) bucket[k] = (events[k] ?? 0) - (prev.events[k] ?? 0);
    this.prev = { events: { ...events }, deliveries };
    if (this.history.length >= this.o.buckets) this.history.shift();
    this.history.push(bucket);
    this.latencies.push([]);
    this.seenInBucket = 0;
    const keep = Math.max(1, Math.ceil(60_000 / this.o.bucketMs)) + 1;
    while (this.latencies.length > keep) this.latencies.shift();
  }

  /** Buckets, oldest first. */
  get buckets(): readonly StatusBucket[] {
    return this.history;
  }

  get recentErrors(): readonly NotableLine[] {
    return this.notable;
  }

  /** Delivery latency (creation → fan-out) over about the last minute, ms. */
  latency(): { count: number; p50: number | null; p99: number | null } {
    const all = this.latencies.flat().sort((a, b) => a - b);
    if (all.length === 0) return { count: 0, p50: null, p99: null };
    const at = (q: number) => all[Math.min(all.length - 1, Math.floor(q * all.length))];
    return { count: all.length, p50: at(0.5), p99: at(0.99) };
  }
}
