import { performance } from 'node:perf_hooks';
import type { BridgeEvent } from '../event.js';
import { flushQueue } from '../fanout/flush-queue.js';
import { textFrame } from '../fanout/frame.js';
import type { Hub } from '../fanout/hub.js';
import { encodeEventMessage } from '../protocol/messages.js';
import { Deduper } from './dedup.js';
import type { History } from './history.js';
import { position } from './position.js';

/** Where an event came from: a sender, the table, `tp-ws replay`, the programmatic API, or the daemon itself (released edit locks). */
export type EventSource = 'socket' | 'table' | 'replay' | 'api' | 'daemon';

/**
 * The event type of the readiness canary (docs/operations.md §Readiness):
 * reserved, never fanned out, only reported to `onCanary`.
 */
export const CANARY_EVENT_TYPE = 'tpws.canary';

/** Told of every event right after its fan-out (never of a duplicate). */
export interface DeliveryObserver {
  /** `fanoutMs`: time spent queueing it for its recipients; the writes follow once the work at hand is done (`PipelineOptions.onFanout`). */
  delivered(event: BridgeEvent, source: EventSource, recipients: number, fanoutMs: number): void;
}

export interface AcceptResult {
  /** False when the id was seen within the dedup window: nothing was sent. */
  delivered: boolean;
  /** Daemon sequence number of the event (0 for a duplicate). */
  seq: number;
  /** The event's position (src/pipeline/position.ts), null for a duplicate or a canary: what the journal stores. */
  pos: number | null;
  /** Sockets the event was written to. */
  recipients: number;
}

export interface PipelineCounters {
  duplicates: number;
  deliveries: number;
  /** Events fanned out, by where they came from. */
  bySource: Record<EventSource, number>;
  /** Readiness canaries seen (not fanned out, not in `bySource`). */
  canaries: number;
}

export interface PipelineOptions {
  /** Told of every delivered event, in order. */
  observers?: DeliveryObserver[];
  /** Told of each readiness canary's id. */
  onCanary?: (id: string) => void;
  /**
   * Told, for every event with recipients, the time from its acceptance to
   * the write of its frame to the last recipient's socket (the end of the
   * coalesced flush, src/fanout/flush-queue.ts), in ms.
   */
  onFanout?: (ms: number) => void;
}

/**
 * dedup → seq → route → fan-out → history. Every source (ingest socket,
 * table poller, programmatic API) hands validated events to `accept`; this is
 * the one sink of events. Serializes and frames each event once, sends the
 * same Buffer to every recipient and keeps it in the history ring for
 * resumes (src/pipeline/history.ts).
 */
export class Pipeline {
  readonly counters: PipelineCounters = { duplicates: 0, deliveries: 0, bySource: { socket: 0, table: 0, replay: 0, api: 0, daemon: 0 }, canaries: 0 };
  /** Changes at every start: `seq` values are comparable only within one epoch. */
  readonly epoch: string;

  private readonly observers: DeliveryObserver[];
  private readonly onCanary: ((id: string) => void) | null;
  private readonly onFanout: ((ms: number) => void) | null;

  constructor(private readonly hub: Hub, private readonly dedup: Deduper, readonly history: History, options: PipelineOptions = {}) {
    this.epoch = history.epoch;
    this.observers = options.observers ?? [];
    this.onCanary = options.onCanary ?? null;
    this.onFanout = options.onFanout ?? null;
  }

  /** Enter ids of events fanned out before this start (the history's newest) into the dedup window. */
  rememberDelivered(ids: readonly string[], now = Date.now()): void {
    for (const id of ids) this.dedup.check(id, now);
  }

  /** True when the id is inside the dedup window (already fanned out). */
  seen(id: string, now = Date.now()): boolean {
    return this.dedup.has(id, now);
  }

  accept(event: BridgeEvent, source: EventSource, now = Date.now()): AcceptResult {
    if (!this.dedup.check(event.id, now)) {
      this.counters.duplicates++;
      return { delivered: false, seq: 0, pos: null, recipients: 0 };
    }
    if (event.eventType === CANARY_EVENT_TYPE) {
      this.counters.canaries++;
      this.onCanary?.(event.id);
      return { delivered: true, seq: 0, pos: null, recipients: 0 };
    }
    const seq = this.history.next();
    this.counters.bySource[source]++;
    const t0 = performance.now();
    const frame = textFrame(encodeEventMessage({ eventType: event.eventType, payloadJson: event.payloadJson, createdAtMs: event.createdAt, id: event.id, seq, epoch: this.epoch }));
    const recipients = this.hub.deliver(event, frame);
    this.history.add(event, seq, frame, now);
    const fanoutMs = performance.now() - t0;
    const onFanout = this.onFanout;
    if (onFanout !== null && recipients > 0) flushQueue.afterFlush(() => onFanout(performance.now() - t0));
    this.counters.deliveries += recipients;
    for (const o of this.observers) o.delivered(event, source, recipients, fanoutMs);
    return { delivered: true, seq, pos: position(this.history.epochNo, seq), recipients };
  }
}
