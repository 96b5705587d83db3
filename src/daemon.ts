import type { AddressInfo } from 'node:net';
import { AdminServer } from './admin/admin-server.js';
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
import { createLogger, type Logger } from './log.js';
import { Deduper } from './pipeline/dedup.js';
import { Pipeline } from './pipeline/pipeline.js';
import { Intake } from './pipeline/intake.js';
import { Journal } from './pipeline/journal.js';
import { UnixSocketIngest } from './ingest/unix-socket.js';
import { TablePoller } from './ingest/table-poller.js';
import { openConfiguredStore } from './store/open-store.js';
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
  /** Root logger; default: pino to stdout at `config.log.level`. */
  logger?: Logger;
  /** Test hook: reconnect-token refresh interval (default derived from the TTL). */
  tokenRefreshIntervalMs?: number;
}

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
  readonly pipeline: Pipeline;
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

  private constructor(readonly config: Readonly<Config>, opts: DaemonOptions) {
    this.log = opts.logger ?? createLogger(config.log.level);
    this.store = openConfiguredStore(config);
    this.reactions = new EventReactions({ hub: this.hub, presence: this.presence, store: this.store, log: this.log.child({ component: 'teampass' }) });
    this.pipeline = new Pipeline(this.hub, new Deduper(config.dedup.windowSize, config.dedup.windowSec * 1000), uuidv7(), this.reactions);
    this.journal = new Journal(this.store, this.log.child({ component: 'journal' }), {
      batchSize: config.journal.batchSize, flushMs: config.journal.flushMs, maxQueue: config.journal.maxQueue, maxBackoffMs: config.poller.maxBackoffMs,
    });
    this.intake = new Intake(this.pipeline, this.journal, config.ingest.maxPayloadBytes);
    const locksLog = this.log.child({ component: 'edit-locks' });
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
    }, this.intake, this.log.child({ component: 'ingest' }));
    this.poller = !config.poller.enabled ? null : new TablePoller(this.store, this.pipeline, this.log.child({ component: 'table-poller' }), {
      intervalMs: config.poller.intervalMs, idleIntervalMs: config.poller.idleIntervalMs, batchSize: config.poller.batchSize,
      maxAgeSec: config.poller.maxAgeSec, maxBackoffMs: config.poller.maxBackoffMs, maxPayloadBytes: config.ingest.maxPayloadBytes,
    });
    // Of several daemons on one table, the poller-lock holder cleans up; without a poller, this one does.
    this.retention = new Retention(this.store, this.log.child({ component: 'retention' }), {
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
    this.reconnectTokens = new ReconnectTokens(this.store, this.log.child({ component: 'reconnect-tokens' }), {
      ttlSec: config.auth.reconnectTokenTtlSec, intervalMs: opts.tokenRefreshIntervalMs,
    });
    this.gateway = new Gateway({
      config, hub: this.hub, store: this.store, authenticators, reconnectTokens: this.reconnectTokens,
      presence: this.presence, departures: this.locks,
      log: this.log.child({ component: 'gateway' }),
    });
  }

  /** Build and start a daemon. On failure everything already opened is closed again. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(opts.config, opts);
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
    if (this.jwtKey?.source === 'development') {
      this.log.warn({ path: this.jwtKey.path }, 'using a development JWT secret from the state directory; set auth.jwt.secret or auth.jwt.publicKeyFile in production');
    }
    const ws = await this.gateway.listen();
    await this.warnOnListenDisagreement(ws.port);
    this.reconnectTokens.start();
    await this.ingest?.listen();
    if (this.poller !== null) this.pollerDone = this.poller.run(this.pollerAbort.signal);
    this.retention.start();
    let admin: AddressInfo | null = null;
    if (cfg.admin.port >= 0) {
      this.admin = new AdminServer({
        health: () => ({ uptime_s: Math.round((Date.now() - this.startedAt) / 1000), connections: this.hub.size }),
        ready: async () => {
          await this.store.ping();
          return {
            store: this.store.kind,
            journal_queued: this.journal.queued,
            poller_lock: this.poller?.holdsLock ?? false,
            poller_last_poll_ms_ago: this.poller && this.poller.lastPollAt > 0 ? Date.now() - this.poller.lastPollAt : null,
          };
        },
      });
      admin = await this.admin.listen(cfg.admin.host, cfg.admin.port);
    }
    this.addresses = { ws, admin };
    this.log.info({ host: ws.address, port: ws.port, admin_port: admin?.port ?? null, socket: this.ingest?.path ?? null, store: this.store.kind, epoch: this.pipeline.epoch }, 'tp-ws started');
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
      await this.admin?.close();
      await this.store.close();
      this.log.info('stopped');
    })();
    return this.closing;
  }
}

