import type { AddressInfo } from 'node:net';
import { AdminServer } from './admin/admin-server.js';
import type { Authenticator } from './auth/authenticator.js';
import { JwtAuthenticator } from './auth/jwt.js';
import { resolveJwtKey, type JwtKey } from './auth/jwt-key.js';
import { TeampassTokenAuthenticator } from './auth/teampass-token.js';
import type { Config } from './config/schema.js';
import { EventInvalid, parseEvent } from './event.js';
import { TpWsError } from './errors.js';
import { Hub } from './fanout/hub.js';
import { Gateway } from './gateway/gateway.js';
import { createLogger, type Logger } from './log.js';
import { Deduper } from './pipeline/dedup.js';
import { Pipeline, type AcceptResult } from './pipeline/pipeline.js';
import { openStore } from './store/open-store.js';
import type { MigrateResult, Store } from './store/store.js';
import { uuidv7 } from './uuid.js';

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
  readonly pipeline: Pipeline;
  readonly store: Store;
  readonly gateway: Gateway;
  readonly jwtKey: JwtKey | null;
  private admin: AdminServer | null = null;
  private addresses: DaemonAddresses | null = null;
  private closing: Promise<void> | null = null;
  migration: MigrateResult | null = null;
  readonly startedAt = Date.now();

  private constructor(readonly config: Readonly<Config>, opts: DaemonOptions) {
    this.log = opts.logger ?? createLogger(config.log.level);
    this.store = openStore(config.store.url, config.store.tablePrefix);
    this.pipeline = new Pipeline(this.hub, new Deduper(config.dedup.windowSize, config.dedup.windowSec * 1000), uuidv7());
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
    this.gateway = new Gateway({
      config, hub: this.hub, store: this.store, authenticators,
      log: this.log.child({ component: 'gateway' }),
      tokenRefreshIntervalMs: opts.tokenRefreshIntervalMs,
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
    let admin: AddressInfo | null = null;
    if (cfg.admin.port >= 0) {
      this.admin = new AdminServer({
        health: () => ({ uptime_s: Math.round((Date.now() - this.startedAt) / 1000), connections: this.hub.size }),
        ready: async () => {
          await this.store.ping();
          return { store: this.store.kind };
        },
      });
      admin = await this.admin.listen(cfg.admin.host, cfg.admin.port);
    }
    this.addresses = { ws, admin };
    this.log.info({ host: ws.address, port: ws.port, admin_port: admin?.port ?? null, store: this.store.kind, epoch: this.pipeline.epoch }, 'tp-ws started');
  }

  get address(): DaemonAddresses {
    if (this.addresses === null) throw new TpWsError('TPWS_ERR_INTERNAL', 'daemon not started');
    return this.addresses;
  }

  /**
   * Publish one event through the pipeline (programmatic API). `input` uses the
   * wire names of docs/ingest.md; throws EventInvalid naming the bad field.
   */
  publish(input: unknown): AcceptResult & { id: string } {
    const event = parseEvent(input, { maxPayloadBytes: this.config.ingest.maxPayloadBytes }, uuidv7);
    return { id: event.id, ...this.pipeline.accept(event, 'api') };
  }

  /** Stop accepting, close sockets (4200), close the store. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.log.info('shutting down');
      await this.gateway.close();
      await this.admin?.close();
      await this.store.close();
      this.log.info('stopped');
    })();
    return this.closing;
  }
}

export { EventInvalid };
