import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BridgeEvent } from '../event.js';
import type { DeliveryObserver, EventSource } from '../pipeline/pipeline.js';

/**
 * What the metrics read when scraped: each component's own counters, read
 * at scrape time (nothing is counted twice, and the hot paths keep their
 * plain integer increments).
 */
export interface MetricsSources {
  connections(): number;
  users(): number;
  folderSubscriptions(): number;
  kbSubscriptions(): number;
  presenceViews(): { items: number; kbs: number };
  events(): Record<EventSource, number>;
  deliveries(): number;
  duplicates(): number;
  canaries(): number;
  /** Table rows by outcome. */
  tableRows(): { delivered: number; duplicate: number; rejected: number; expired: number };
  pollerErrors(): number;
  /** Age of the oldest row the last poll found still pending (0 when none), seconds; null without a poller. */
  pollerLagSeconds(): number | null;
  /** Rows the last poll found pending (a full batch means more wait). */
  pollerBacklog(): number | null;
  pollerHoldsLock(): boolean;
  journal(): { queued: number; written: number; writeErrors: number; dropped: number; slow: boolean };
  /** Ingest acks by outcome (`ok`, `duplicate`, or a TPWS_ERR_* code). */
  ingestAcks(): Record<string, number>;
  ingestConnections(): number;
  /** Closes by the daemon, by WebSocket close code. */
  closes(): ReadonlyMap<number, number>;
  /** Failed authentications by reason. */
  authFailures(): Record<string, number>;
  messagesReceived(): number;
  messagesRejected(): number;
  lockReleases(): { releases: number; locksReleased: number; cancelled: number; failures: number };
  accessRechecks(): { rechecks: number; subscriptionsRevoked: number; failures: number };
  sessionExpiryCloses(): number;
  /** Client resumes answered, by outcome (`recovered`, or why not). */
  resumes(): ReadonlyMap<string, number>;
  /** Events sent again by resumes. */
  resumeReplayed(): number;
  /** Events held in the resume ring. */
  historyRing(): number;
  ready(): boolean;
}

/** Event latency buckets, seconds: sub-millisecond socket delivery up to a slow poll backlog. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Fan-out time buckets, seconds: one recipient to tens of thousands. */
const FANOUT_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The Prometheus metrics of one daemon (`GET /metrics` on the admin
 * listener; docs/operations.md §Metrics), in their own registry. Two
 * histograms are observed as events flow (it is also a `DeliveryObserver`):
 * the latency from an event's creation to its fan-out, by source, and the
 * time the fan-out itself took in this process.
 */
export class Metrics implements DeliveryObserver {
  readonly registry = new Registry();
  private readonly latency: Histogram<'source'>;
  private readonly fanout: Histogram;

  constructor(private readonly s: MetricsSources) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'tpws_', eventLoopMonitoringPrecision: 100 });
    const gauge = (name: string, help: string, read: () => number | null) =>
      new Gauge({ name, help, registers: [r], collect() { const v = read(); if (v !== null) this.set(v); } });
    /** A counter whose total lives in a component: set to it at each scrape. */
    const total = (name: string, help: string, read: () => number) =>
      new Counter({ name, help, registers: [r], collect() { this.reset(); this.inc(read()); } });
    const totals = <L extends string>(name: string, help: string, label: L, read: () => Iterable<[string, number]>) =>
      new Counter<L>({
        name, help, labelNames: [label], registers: [r],
        collect() {
          this.reset();
          for (const [k, v] of read()) this.inc({ [label]: k } as Record<L, string>, v);
        },
      });

    gauge('tpws_connections', 'Open WebSocket connections (authenticated).', () => s.connections());
    gauge('tpws_users', 'Distinct users with at least one open connection.', () => s.users());
    gauge('tpws_folder_subscriptions', 'Folders with at least one subscriber.', () => s.folderSubscriptions());
    gauge('tpws_kb_subscriptions', 'Connections subscribed to the knowledge-base channel.', () => s.kbSubscriptions());
    gauge('tpws_presence_views', 'Item and KB views open (presence).', () => { const v = s.presenceViews(); return v.items + v.kbs; });
    totals('tpws_events_total', 'Events fanned out, by source (socket, table, replay, api, daemon).', 'source', () => Object.entries(s.events()));
    total('tpws_deliveries_total', 'Event messages written to sockets.', () => s.deliveries());
    total('tpws_dedup_hits_total', 'Events dropped because their id was already delivered.', () => s.duplicates());
    total('tpws_canaries_total', 'Readiness canaries that went through the events table.', () => s.canaries());
    totals('tpws_table_rows_total', 'Events table rows handled by the poller, by outcome (delivered, duplicate, rejected, expired).', 'outcome', () => Object.entries(s.tableRows()));
    total('tpws_poller_errors_total', 'Failed polls of the events table.', () => s.pollerErrors());
    gauge('tpws_poller_lag_seconds', 'Age of the oldest row the last poll found pending (0 when none).', () => s.pollerLagSeconds());
    gauge('tpws_poller_backlog_rows', 'Rows the last poll found pending; at poller.batchSize, more are waiting.', () => s.pollerBacklog());
    gauge('tpws_poller_lock_held', '1 when this daemon holds the poller lock (polls the table).', () => (s.pollerHoldsLock() ? 1 : 0));
    gauge('tpws_journal_queue', 'Socket events waiting to be written to the events table.', () => s.journal().queued);
    total('tpws_journal_written_total', 'Socket events written to the events table.', () => s.journal().written);
    total('tpws_journal_write_errors_total', 'Failed journal writes (retried).', () => s.journal().writeErrors);
    total('tpws_journal_dropped_total', 'Socket events dropped from the history (delivered, never written) when the queue was full.', () => s.journal().dropped);
    gauge('tpws_journal_slow', '1 while a journal write takes longer than the ack bound (acks say pending).', () => (s.journal().slow ? 1 : 0));
    totals('tpws_ingest_acks_total', 'Ingest socket acks by result: ok, duplicate, or the error code.', 'result', () => Object.entries(s.ingestAcks()));
    total('tpws_ingest_connections_total', 'Connections accepted on the ingest socket.', () => s.ingestConnections());
    totals('tpws_closes_total', 'Connections closed by the daemon, by WebSocket close code (4100 slow consumer, 4101 flood, 4102 heartbeat, ...).', 'code', () => [...s.closes()].map(([c, n]) => [String(c), n]));
    totals('tpws_auth_failures_total', 'Refused WebSocket authentications by reason.', 'reason', () => Object.entries(s.authFailures()));
    total('tpws_client_messages_total', 'Messages received from WebSocket clients.', () => s.messagesReceived());
    total('tpws_client_messages_rejected_total', 'Client messages answered with an error.', () => s.messagesRejected());
    totals('tpws_lock_releases_total', 'Edit-lock releases of users who left: done, locks released, cancelled (user came back), failures.', 'outcome', () => {
      const l = s.lockReleases();
      return [['done', l.releases], ['locks', l.locksReleased], ['cancelled', l.cancelled], ['failed', l.failures]];
    });
    totals('tpws_access_rechecks_total', 'Folder access re-read after folder_permission_changed: done, subscriptions revoked, failures.', 'outcome', () => {
      const a = s.accessRechecks();
      return [['done', a.rechecks], ['subscriptions_revoked', a.subscriptionsRevoked], ['failed', a.failures]];
    });
    total('tpws_session_expiry_closes_total', 'Connections closed by session_expired (4001).', () => s.sessionExpiryCloses());
    totals('tpws_resumes_total', 'Client resumes answered, by outcome: recovered, or why not (unknown_epoch, gap, too_many, store_unavailable).', 'outcome', () => [...s.resumes()]);
    total('tpws_resume_replayed_events_total', 'Events sent again to clients by resumes.', () => s.resumeReplayed());
    gauge('tpws_history_ring_events', 'Recent events held in memory for resumes (resume.ringSize).', () => s.historyRing());
    gauge('tpws_ready', '1 when the last readiness check passed.', () => (s.ready() ? 1 : 0));

    this.latency = new Histogram({
      name: 'tpws_event_latency_seconds', help: 'From an event\'s creation (created_at) to its fan-out, by source (replayed events, which keep their original time, excepted). Table rows have one-second created_at.',
      labelNames: ['source'], buckets: LATENCY_BUCKETS, registers: [r],
    });
    this.fanout = new Histogram({
      name: 'tpws_fanout_seconds', help: 'From accepting an event to writing it to the socket of its last recipient (events with recipients), in the daemon.',
      buckets: FANOUT_BUCKETS, registers: [r],
    });
  }

  delivered(event: BridgeEvent, source: EventSource): void {
    // A replayed event keeps its original creation time: its age is not a delivery latency.
    if (source !== 'replay') this.latency.observe({ source }, Math.max(0, Date.now() - event.createdAt) / 1000);
  }

  /** One event's fan-out, accepted to written (`PipelineOptions.onFanout`). */
  fannedOut(ms: number): void {
    this.fanout.observe(ms / 1000);
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
