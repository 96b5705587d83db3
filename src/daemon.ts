import type { AddressInfo } from 'node:net';
import { AdminServer } from './admin/admin-server.js';
import { Metrics } from './admin/metrics.js';
import { Readiness } from './admin/readiness.js';
import { StatusSampler } from './admin/status.js';
import { SCHEMA } from './config/schema.js';
import { redactStoreUrl } from './store/store-url.js';
import { VERSION } from './version.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './admin/status-page.js';
import type { Authenticator } from './auth/authenticator.js';
import { JwtAuthenticator } from './auth/jwt.js';
import { resolveJwtKey, type JwtKey } from './auth/jwt-key.js';
import { ReconnectTokens } from './auth/reconnect-tokens.js';
import { TeampassTokenAuthenticator } from './auth/teampass-token.js';
import type { Config } from './config/schema.js';
import { TpWsError } from './errors.js';
import { Hub } from './fanout/hub.js';
import { Presence } from './fanout/presence.js';
import { Gateway } from './gateway/gateway.js';
import { createLogger, type Logger, type NotableLine } from './log.js';
import { Deduper } from './pipeline/dedup.js';
import { History } from './pipeline/history.js';
import { Pipeline } from './pipeline/pipeline.js';
import { Intake } from './pipeline/intake.js';
import { Journal } from './pipeline/journal.js';
import { UnixSocketIngest } from './ingest/unix-socket.js';
import { TablePoller, rowPayloadLimit } from './ingest/table-poller.js';
import { loadConfiguredStore } from './store/load-store.js';
import { Retention } from './store/retention.js';
import { EventReactions } from './teampass/event-reactions.js';
import { LockReleaser } from './teampass/lock-release.js';
import { checkListenAgreement } from './teampass/listen-agreement.js';
import type { MigrateResult, Store } from './store/store.js';
import { uuidv7 } from './uuid.js';

export interface PublishResult {
  id: string;
  seq: number;
  duplicate: boolean;
}

export interface DaemonOptions {
  config: Readonly<Config>;
  /** Root logger; default: pino to stdout at `config.log.level` (its warnings and errors then feed the status page). */
  logger?: Logger;
  /** Where the configuration came from, for the status page: a config file, a TeamPass root. */
  configSource?: ConfigSource;
  /** Test hook: reconnect-token refresh interval (default derived from the TTL). */
  tokenRefreshIntervalMs?: number;
  /** Test hook: readiness timings (canary interval, check timeout…). */
  readiness?: ConstructorParameters<typeof Readiness>[1];
}

export interface ConfigSource {
  file: string | null;
  teampassRoot: string | null;
}

/** What a configuration reload did (SIGHUP). */
export interface ReloadResult {
  /** Keys whose new value is in effect. */
  applied: string[];
  /** Keys that changed but take effect only at the next start. */
  restartNeeded: string[];
}

/**
 * Keys a reload applies at once (docs/operations.md §Reloading). Per-socket
 * limits apply to sockets opened after the reload. Every other key needs a
 * restart: listeners, store, auth, ingest socket, dedup and journal sizes.
 */
export const LIVE_KEYS: ReadonlySet<string> = new Set([
  'log.level',
  'server.trustedProxies', 'server.maxConnections',
  'limits.maxMessageBytes', 'limits.rateLimitMessages', 'limits.rateLimitWindowMs', 'limits.floodCloseAfter',
  'limits.maxConnectionsPerUser', 'limits.maxToolConnectionsPerUser', 'limits.authFailuresPerIp', 'limits.authFailureWindowSec',
  'limits.maxBufferedBytes', 'limits.maxPendingBeforeAuth',
  'heartbeat.pingIntervalSec', 'heartbeat.pongTimeoutSec', 'shutdown.timeoutMs',
  'poller.intervalMs', 'poller.idleIntervalMs', 'poller.batchSize', 'poller.maxAgeSec', 'poller.maxBackoffMs',
  'retention.hours', 'retention.intervalSec',
  'teampass.editionLockTimeoutSec', 'teampass.kbLockTimeoutSec', 'teampass.lockReleaseGraceMs',
]);

export interface DaemonAddresses {
  ws: AddressInfo;
  admin: AddressInfo | null;
}

/**
 * The composition root: the only place that builds the infrastructure and
 * wires the stages (store → auth → hub → pipeline → gateway, admin). `start()`
 * brings them up in order; `close()` takes them down in reverse.
 */
export class Daemon {
  readonly log: Logger;
  readonly hub = new Hub();
  readonly presence = new Presence(this.hub);
  readonly metrics: Metrics;
  readonly readiness: Readiness;
  readonly status: StatusSampler;
  /** Child loggers by component, so a reload can change their level. */
  private readonly loggers: Logger[] = [];
  private configSource: ConfigSource;
  readonly pipeline: Pipeline;
  readonly history: History;
  readonly reactions: EventReactions;
  readonly locks: LockReleaser;
  readonly store: Store;
  readonly gateway: Gateway;
  readonly reconnectTokens: ReconnectTokens;
  readonly jwtKey: JwtKey | null;
  readonly journal: Journal;
  readonly intake: Intake;
  readonly ingest: UnixSocketIngest | null;
  readonly poller: TablePoller | null;
  readonly retention: Retention;
  private readonly pollerAbort = new AbortController();
  private pollerDone: Promise<void> | null = null;
  private admin: AdminServer | null = null;
  private addresses: DaemonAddresses | null = null;
  private closing: Promise<void> | null = null;
  migration: MigrateResult | null = null;
  readonly startedAt = Date.now();

  private _config: Readonly<Config>;

  /** The configuration in effect (replaced by a reload). */
  get config(): Readonly<Config> {
    return this._config;
  }

  private constructor(config: Readonly<Config>, opts: DaemonOptions, store: Store) {
    this._config = config;
    this.configSource = opts.configSource ?? { file: null, teampassRoot: config.teampass.root };
    let onNotable = (_line: NotableLine): void => {};
    this.log = opts.logger ?? createLogger(config.log.level, undefined, (line) => onNotable(line));
    this.store = store;
    this.reactions = new EventReactions({ hub: this.hub, presence: this.presence, store: this.store, log: this.child('teampass') });
    this.status = new StatusSampler({
      events: () => this.pipeline.counters.bySource,
      deliveries: () => this.pipeline.counters.deliveries,
      connections: () => this.hub.size,
    });
    onNotable = (line) => this.status.logged(line);
    this.metrics = new Metrics(this.metricsSources());
    this.history = new History(uuidv7(), this.store, {
      ringSize: config.resume.ringSize, ringMaxAgeMs: config.resume.ringMaxAgeSec * 1000, maxEvents: config.resume.maxEvents,
      dedupWindow: { size: config.dedup.windowSize, ageSec: config.dedup.windowSec },
    });
    this.pipeline = new Pipeline(this.hub, new Deduper(config.dedup.windowSize, config.dedup.windowSec * 1000), this.history, {
      observers: [this.reactions, this.metrics, this.status],
      onCanary: (id) => this.readiness.canaryArrived(id),
      onFanout: (ms) => this.metrics.fannedOut(ms),
    });
    this.journal = new Journal(this.store, this.child('journal'), {
      batchSize: config.journal.batchSize, flushMs: config.journal.flushMs, maxQueue: config.journal.maxQueue, maxBackoffMs: config.poller.maxBackoffMs,
    });
    this.intake = new Intake(this.pipeline, this.journal, config.ingest.maxPayloadBytes);
    const locksLog = this.child('edit-locks');
    this.locks = new LockReleaser({ graceMs: config.teampass.lockReleaseGraceMs }, {
      store: this.store,
      connected: (userId) => this.hub.userSessions(userId).size > 0,
      publish: (event) => {
        const r = this.intake.accept(event, 'daemon');
        if (!r.ok) locksLog.error({ err: r.error, id: r.id }, 'lock release event refused');
        return r.ok;
      },
      log: locksLog,
    });
    this.ingest = config.ingest.socket === '' ? null : new UnixSocketIngest({
      path: config.ingest.socket, mode: config.ingest.socketMode, group: config.ingest.socketGroup,
      maxFrameBytes: config.ingest.maxFrameBytes, maxBatchEvents: config.ingest.maxBatchEvents, ackAfter: config.ingest.ackAfter,
    }, this.intake, this.child('ingest'));
    this.poller = !config.poller.enabled ? null : new TablePoller(this.store, this.pipeline, this.child('table-poller'), {
      intervalMs: config.poller.intervalMs, idleIntervalMs: config.poller.idleIntervalMs, batchSize: config.poller.batchSize,
      maxAgeSec: config.poller.maxAgeSec, maxBackoffMs: config.poller.maxBackoffMs, maxPayloadBytes: rowPayloadLimit(config.limits.maxBufferedBytes),
    });
    this.readiness = new Readiness({ store: this.store, poller: this.poller, ingestPath: this.ingest?.path ?? null, log: this.child('readiness') }, opts.readiness);
    // Of several daemons on one table, the poller-lock holder cleans up; without a poller, this one does.
    this.retention = new Retention(this.store, this.child('retention'), {
      hours: config.retention.hours, intervalMs: config.retention.intervalSec * 1000, leader: () => this.poller?.holdsLock ?? true,
    });
    const authenticators: Authenticator[] = [];
    let jwtKey: JwtKey | null = null;
    for (const m of config.auth.methods) {
      if (m === 'teampass-token') {
        authenticators.push(new TeampassTokenAuthenticator(this.store, { reconnectTokenTtlSec: config.auth.reconnectTokenTtlSec }));
      } else if (m === 'jwt') {
        jwtKey = resolveJwtKey(config, true);
        authenticators.push(new JwtAuthenticator(jwtKey, config.auth.jwt));
      }
    }
    this.jwtKey = jwtKey;
    this.reconnectTokens = new ReconnectTokens(this.store, this.child('reconnect-tokens'), {
      ttlSec: config.auth.reconnectTokenTtlSec, intervalMs: opts.tokenRefreshIntervalMs,
    });
    this.gateway = new Gateway({
      config, hub: this.hub, store: this.store, authenticators, reconnectTokens: this.reconnectTokens,
      presence: this.presence, departures: this.locks, history: this.history,
      log: this.child('gateway'),
    });
  }

  /** A child logger for a component, remembered so a reload can set its level. */
  private child(component: string): Logger {
    const l = this.log.child({ component });
    this.loggers.push(l);
    return l;
  }

  private metricsSources(): ConstructorParameters<typeof Metrics>[0] {
    return {
      connections: () => this.hub.size,
      users: () => this.hub.stats().unique_users,
      folderSubscriptions: () => this.hub.stats().folder_subscriptions,
      kbSubscriptions: () => this.hub.stats().kb_subscriptions,
      presenceViews: () => this.presence.size,
      events: () => this.pipeline.counters.bySource,
      deliveries: () => this.pipeline.counters.deliveries,
      duplicates: () => this.pipeline.counters.duplicates,
      canaries: () => this.pipeline.counters.canaries,
      tableRows: () => {
        const c = this.poller?.counters;
        return { delivered: c?.rowsDelivered ?? 0, duplicate: c?.rowsDuplicate ?? 0, rejected: c?.rowsRejected ?? 0, expired: c?.rowsExpired ?? 0 };
      },
      pollerErrors: () => this.poller?.counters.errors ?? 0,
      pollerLagSeconds: () => (this.poller === null ? null : this.poller.lastLagMs / 1000),
      pollerBacklog: () => this.poller?.lastBacklog ?? null,
      pollerHoldsLock: () => this.poller?.holdsLock ?? false,
      journal: () => ({ queued: this.journal.queued, ...this.journal.counters, slow: this.journal.slow }),
      ingestAcks: () => {
        const c = this.ingest?.counters;
        return { ok: c?.eventsAccepted ?? 0, duplicate: c?.duplicates ?? 0, ...(c?.errors ?? {}) };
      },
      ingestConnections: () => this.ingest?.counters.connections ?? 0,
      closes: () => this.gateway.closes,
      authFailures: () => {
        const g = this.gateway.counters;
        return {
          invalid_token: g.authFailures - g.authStoreDown, store_unavailable: g.authStoreDown, ip_rate_limited: g.authRateLimited,
          max_connections: g.maxConnectionsRefused, token_expired: g.tokenExpiryCloses,
        };
      },
      messagesReceived: () => this.gateway.counters.messagesReceived,
      messagesRejected: () => this.gateway.counters.messagesRejected,
      lockReleases: () => this.locks.counters,
      accessRechecks: () => {
        const r = this.reactions.counters;
        return { rechecks: r.accessRechecks, subscriptionsRevoked: r.subscriptionsRevoked, failures: r.recheckFailures };
      },
      sessionExpiryCloses: () => this.reactions.counters.sessionExpiryCloses,
      resumes: () => this.gateway.resumes,
      resumeReplayed: () => this.gateway.counters.resumeReplayed,
      historyRing: () => this.history.size,
      ready: () => this.readiness.last.ready,
    };
  }

  /** The snapshot of `/status.json` (docs/operations.md §Status page). */
  async statusSnapshot(): Promise<Record<string, unknown>> {
    // A page polls every second: checks at most every 2 s (each opens the ingest socket and pings the store).
    const ready = this.readiness.lastAt > Date.now() - 2000 ? this.readiness.last : await this.readiness.check();
    const stats = this.hub.stats();
    const cfg = this.config;
    const p = this.poller;
    return {
      version: VERSION,
      now: Date.now(),
      started_at: this.startedAt,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      config: {
        file: this.configSource.file,
        teampass_root: this.configSource.teampassRoot,
        store: redactStoreUrl(cfg.store.url),
        store_kind: this.store.kind,
        listen: this.addresses === null ? null : `${cfg.server.host}:${this.addresses.ws.port}`,
        ingest_socket: this.ingest?.path ?? null,
      },
      connections: stats.total_connections,
      users: stats.unique_users,
      folder_subscriptions: stats.folder_subscriptions,
      kb_subscriptions: stats.kb_subscriptions,
      events: { ...this.pipeline.counters.bySource },
      deliveries: this.pipeline.counters.deliveries,
      duplicates: this.pipeline.counters.duplicates,
      latency_ms: this.status.latency(),
      poller: p === null
        ? { enabled: false, holds_lock: null, last_poll_ms_ago: null, backlog: null, lag_ms: null }
        : { enabled: true, holds_lock: p.holdsLock, last_poll_ms_ago: p.lastPollAt > 0 ? Date.now() - p.lastPollAt : null, backlog: p.lastBacklog, lag_ms: p.lastLagMs },
      journal: { queued: this.journal.queued, written: this.journal.counters.written, write_errors: this.journal.counters.writeErrors, dropped: this.journal.counters.dropped, slow: this.journal.slow },
      event_loop_lag_ms: this.readiness.eventLoopLag,
      ready,
      recent_errors: this.status.recentErrors,
      history: this.status.buckets,
    };
  }

  /**
   * Apply a reloaded configuration (SIGHUP; docs/operations.md §Reloading):
   * the keys of `LIVE_KEYS` take effect now, the others are reported as
   * needing a restart and keep their running value.
   */
  reload(next: Readonly<Config>, source?: ConfigSource): ReloadResult {
    const old = this.config;
    const applied: string[] = [];
    const restartNeeded: string[] = [];
    const get = (c: Readonly<Config>, key: string): unknown => key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], c);
    for (const spec of SCHEMA) {
      if (JSON.stringify(get(old, spec.key)) === JSON.stringify(get(next, spec.key))) continue;
      (LIVE_KEYS.has(spec.key) ? applied : restartNeeded).push(spec.key);
    }
    // Keys needing a restart keep their running value in the config in effect.
    const merged = structuredClone(old) as Config;
    for (const key of applied) {
      const parts = key.split('.');
      let o = merged as unknown as Record<string, unknown>;
      for (const k of parts.slice(0, -1)) o = o[k] as Record<string, unknown>;
      o[parts[parts.length - 1]] = structuredClone(get(next, key));
    }
    const cfg = deepFreeze(merged);
    this._config = cfg;
    if (source !== undefined) this.configSource = source;
    if (applied.includes('log.level')) {
      this.log.level = cfg.log.level;
      for (const l of this.loggers) l.level = cfg.log.level;
    }
    this.gateway.applyConfig(cfg);
    this.poller?.setOptions({
      intervalMs: cfg.poller.intervalMs, idleIntervalMs: cfg.poller.idleIntervalMs, batchSize: cfg.poller.batchSize,
      maxAgeSec: cfg.poller.maxAgeSec, maxBackoffMs: cfg.poller.maxBackoffMs, maxPayloadBytes: rowPayloadLimit(cfg.limits.maxBufferedBytes),
    });
    this.retention.setOptions({ hours: cfg.retention.hours, intervalMs: cfg.retention.intervalSec * 1000 });
    this.locks.setGraceMs(cfg.teampass.lockReleaseGraceMs);
    return { applied, restartNeeded };
  }

  /** Build and start a daemon. On failure everything already opened is closed again. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(opts.config, opts, await loadConfiguredStore(opts.config));
    try {
      await d.startParts();
    } catch (err) {
      await d.close().catch(() => {});
      throw err;
    }
    return d;
  }

  private async startParts(): Promise<void> {
    const cfg = this.config;
    this.migration = await this.store.migrate();
    if (this.migration.applied.length > 0) this.log.info({ applied: this.migration.applied, mode: this.migration.mode }, 'schema migrated');
    // Before the listener: the first reconnects after a restart resume from the ring.
    this.pipeline.rememberDelivered(await this.history.start());
    if (this.jwtKey?.source === 'development') {
      this.log.warn({ path: this.jwtKey.path }, 'using a development JWT secret from the state directory; set auth.jwt.secret or auth.jwt.publicKeyFile in production');
    }
    const ws = await this.gateway.listen();
    await this.warnOnListenDisagreement(ws.port);
    this.reconnectTokens.start();
    await this.ingest?.listen();
    if (this.poller !== null) this.pollerDone = this.poller.run(this.pollerAbort.signal);
    this.retention.start();
    this.readiness.start();
    this.status.start();
    let admin: AddressInfo | null = null;
    if (cfg.admin.port >= 0) {
      this.admin = new AdminServer({
        health: () => ({ uptime_s: Math.round((Date.now() - this.startedAt) / 1000), connections: this.hub.size }),
        ready: async () => {
          const r = await this.readiness.check();
          return {
            ...r,
            store: this.store.kind,
            journal_queued: this.journal.queued,
            poller_lock: this.poller?.holdsLock ?? false,
            poller_last_poll_ms_ago: this.poller && this.poller.lastPollAt > 0 ? Date.now() - this.poller.lastPollAt : null,
          };
        },
        metrics: () => this.metrics.render(),
        status: () => this.statusSnapshot(),
        upgrades: () => this.gateway.upgrades,
        page: () => STATUS_PAGE_HTML,
        pageCsp: () => STATUS_PAGE_CSP,
      });
      admin = await this.admin.listen(cfg.admin.host, cfg.admin.port);
    }
    this.addresses = { ws, admin };
    this.log.info({ host: ws.address, port: ws.port, admin_port: admin?.port ?? null, socket: this.ingest?.path ?? null, store: this.store.kind, epoch: this.pipeline.epoch, epoch_no: this.history.epochNo, history_ring: this.history.size }, 'tp-ws started');
  }

  /**
   * TeamPass's PHP side finds the daemon through misc websocket_host/port, not
   * through its websocket.php (TeamPass issue #5218): say so when they do not
   * reach this listener. A store that cannot answer is not a reason to stop.
   */
  private async warnOnListenDisagreement(port: number): Promise<void> {
    try {
      const w = await checkListenAgreement((k) => this.store.getMisc(k), { host: this.config.server.host, port });
      if (w !== null) this.log.warn({ misc_host: w.misc_host, misc_port: w.misc_port, host: w.host, port: w.port, fix: w.fix }, w.message);
    } catch (err) {
      this.log.debug({ err }, 'could not read misc websocket_host/websocket_port');
    }
  }

  get address(): DaemonAddresses {
    if (this.addresses === null) throw new TpWsError('TPWS_ERR_INTERNAL', 'daemon not started');
    return this.addresses;
  }

  /**
   * Publish one event as the ingest socket would (programmatic API): validate,
   * fan out, journal. `input` uses the wire names of docs/ingest.md; throws
   * EventInvalid naming the bad field.
   */
  publish(input: unknown): PublishResult {
    const r = this.intake.accept(input, 'api');
    if (!r.ok) throw r.error;
    return { id: r.event.id, seq: r.seq, duplicate: r.duplicate };
  }

  /** Stop accepting, close sockets (4200), close the store. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.log.info('shutting down');
      await this.ingest?.close();
      this.pollerAbort.abort();
      await this.pollerDone;
      await this.retention.close();
      await this.gateway.close();
      this.locks.close();
      await this.reactions.close();
      await this.reconnectTokens.close();
      const lost = await this.journal.close(this.config.shutdown.timeoutMs);
      if (lost > 0) this.log.error({ lost }, 'events delivered but not journaled at shutdown');
      this.readiness.close();
      this.status.close();
      await this.admin?.close();
      await this.store.close();
      this.log.info('stopped');
    })();
    return this.closing;
  }
}


function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
