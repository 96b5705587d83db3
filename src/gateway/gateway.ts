import { createServer, type IncomingMessage, type Server } from 'node:http';
import { isUtf8 } from 'node:buffer';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Authenticator, Identity } from '../auth/authenticator.js';
import { FolderSets } from '../auth/folder-sets.js';
import type { ReconnectTokens } from '../auth/reconnect-tokens.js';
import type { Config } from '../config/schema.js';
import type { Hub } from '../fanout/hub.js';
import type { Presence } from '../fanout/presence.js';
import { textFrame } from '../fanout/frame.js';
import { Session } from '../fanout/session.js';
import { listen } from '../listen.js';
import { sessionLogger, type Logger } from '../log.js';
import { CloseCode } from '../protocol/close-codes.js';
import { ACTIONS, ErrorCode, Msg, connectedMessage, connectionError, pingMessage, requestError } from '../protocol/messages.js';
import type { Store } from '../store/store.js';
import { handleAction, type ActionContext, type ClientMessage, type ResumeOutcome } from './actions.js';
import type { History } from '../pipeline/history.js';
import { serveClientFile } from './client-files.js';
import { clientAddress, countsAuthFailures } from './client-ip.js';
import { AuthFailureLimiter, SlidingLog } from './rate-limit.js';

const ACTION_SET: ReadonlySet<string> = new Set(ACTIONS);
/**
 * Sockets handled per event-loop turn by the heartbeat and the shutdown, so
 * ten thousand sockets do not stall the loop (events keep flowing between turns).
 */
const SOCKETS_PER_TURN = 500;

export interface GatewayOptions {
  config: Readonly<Config>;
  hub: Hub;
  store: Store;
  authenticators: Authenticator[];
  log: Logger;
  /** Told when a socket with a reconnect token opens and closes (they are kept valid). */
  reconnectTokens: ReconnectTokens;
  presence: Presence;
  /** Told when a user's first socket opens and their last one closes (edit-lock release). */
  departures: Departures;
  /** The daemon's positions and recent events (`connected`, `ping`, `resume`). */
  history: History;
}

/** What the gateway tells about users coming and going (src/teampass/lock-release.ts). */
export interface Departures {
  userArrived(userId: number): void;
  userLeft(user: { userId: number; login: string; displayName: string }): void;
}

export interface GatewayCounters {
  connectionsOpened: number;
  authFailures: number;
  authRateLimited: number;
  maxConnectionsRefused: number;
  messagesReceived: number;
  messagesRejected: number;
  heartbeatTimeouts: number;
  tokenExpiryCloses: number;
  /** Connections from a trusted proxy that forwarded no client address. */
  unforwardedConnections: number;
  /** Authentications refused because the store could not answer (not the client's fault). */
  authStoreDown: number;
  /** Events sent again by `resume` replays. */
  resumeReplayed: number;
}

/** One WebSocket upgrade as `/upgrades` shows it (doctor's proxy check): where it came from, never its token. */
export interface UpgradeRecord {
  time: number;
  /** TCP peer. */
  peer: string;
  /** The client address the daemon took (docs/protocol.md §Client address). */
  ip: string;
  /** The header `ip` came from, or null for the peer's own. */
  forwarded: 'x-forwarded-for' | 'x-real-ip' | null;
  /** The path, without its query. */
  path: string;
  origin: boolean;
  /** The `tpws_probe` query parameter (`tp-ws doctor`'s marker), or null. */
  probe: string | null;
}

/** Upgrades remembered for `/upgrades`. */
const UPGRADES_KEPT = 50;

/**
 * Per-socket state that exists before and after authentication. Kept small:
 * at ten thousand idle sockets every field counts (docs/performance.md).
 */
interface Conn {
  ws: ConnSocket;
  ip: string;
  /** Failed authentications count against `ip` (not loopback, not a proxy's own address). */
  countsFailures: boolean;
  /** The upgrade carried `Origin`: a browser (per-user cap `limits.maxConnectionsPerUser`, else `limits.maxToolConnectionsPerUser`). */
  browser: boolean;
  session: Session | null;
  /** The limits in effect when the socket opened (a reload applies to sockets opened later). */
  limits: Readonly<Config['limits']>;
  /** Made at the first rate-limited message; dropped again by the heartbeat once idle. */
  limiter: SlidingLog | null;
  /** Messages received while authentication was still running. */
  pending: RawFrame[] | null;
  /** Serializes handling so replies leave in the order requests arrived; null when nothing is queued. */
  chain: Promise<void> | null;
  expiryTimer: NodeJS.Timeout | null;
}

/**
 * The socket class the server makes, carrying its `Conn`: listeners are
 * shared by every socket and find their connection through `this`, so no
 * socket holds closures of its own (nor, through them, its upgrade request).
 */
class ConnSocket extends WebSocket {
  conn: Conn | null = null;
}

/** Shared by every upgrade socket: a socket error ends that socket. */
function socketOnError(this: Duplex): void {
  this.destroy();
}

/** The connection of a socket the server made (null before `wsOnOpen`). */
function connOf(ws: WebSocket): Conn | null {
  return (ws as ConnSocket).conn;
}

/** An RFC 6455 ping or pong from the client: it is alive. */
function wsOnAlive(this: WebSocket): void {
  const s = connOf(this)?.session;
  if (s) s.lastSeen = Date.now();
}

const RESOLVED: Promise<void> = Promise.resolve();

interface RawFrame {
  data: RawData;
  isBinary: boolean;
  /** Set for a message held before authentication that is too large to answer but with an error: its length (its data is not kept). */
  tooLarge?: number;
}

const NO_DATA = Buffer.alloc(0);

/**
 * The public WebSocket listener speaking TeamPass's dialect (docs/protocol.md).
 *
 * The upgrade is accepted on any path before authentication, because TeamPass
 * clients expect the auth verdict in-band (an `error` message, then close
 * 1000), not as an HTTP status. Messages that arrive while authentication is
 * running (the TeamPass client re-subscribes in `onopen`) are held and
 * handled in order once the session exists.
 */
export class Gateway {
  readonly counters: GatewayCounters = {
    connectionsOpened: 0, authFailures: 0, authRateLimited: 0, maxConnectionsRefused: 0,
    messagesReceived: 0, messagesRejected: 0, heartbeatTimeouts: 0, tokenExpiryCloses: 0, unforwardedConnections: 0, authStoreDown: 0, resumeReplayed: 0,
  };
  /** Closes by the daemon, by close code (every session shares it). */
  readonly closes = new Map<number, number>();
  /** Resumes answered, by outcome (`recovered`, or why not). */
  readonly resumes = new Map<ResumeOutcome, number>((['recovered', 'unknown_epoch', 'gap', 'too_many', 'store_unavailable'] as const).map((o) => [o, 0]));
  /** The last upgrades, oldest first. */
  readonly upgrades: UpgradeRecord[] = [];

  private cfg: Readonly<Config>;
  private readonly log: Logger;
  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Conn>();
  private authLimiter: AuthFailureLimiter;
  private trusted: ReadonlySet<string>;
  private actions: ActionContext;
  /** Trusted proxies already warned about for forwarding no client address. */
  private readonly warnedProxies = new Set<string>();
  /** Identical folder lists of identities share one set. */
  private readonly folderSets = new FolderSets();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  /** A heartbeat sweep still running (it yields to the event loop between batches). */
  private heartbeatRunning = false;
  private closing = false;
  private nextSessionId = 1;
  /** Listeners of every socket (`this` is the socket). */
  private readonly wsOn: {
    message(this: WebSocket, data: RawData, isBinary: boolean): void;
    close(this: WebSocket): void;
    error(this: WebSocket, err: Error): void;
  };

  constructor(private readonly o: GatewayOptions) {
    this.cfg = o.config;
    this.log = o.log;
    const l = this.cfg.limits;
    this.authLimiter = new AuthFailureLimiter(l.authFailuresPerIp, l.authFailureWindowSec * 1000);
    this.trusted = new Set(this.cfg.server.trustedProxies);
    this.actions = {
      hub: o.hub, presence: o.presence, store: o.store, log: o.log,
      editionLockTimeoutSec: this.cfg.teampass.editionLockTimeoutSec,
      kbLockTimeoutSec: this.cfg.teampass.kbLockTimeoutSec,
      history: o.history,
      maxBufferedBytes: this.cfg.limits.maxBufferedBytes,
      resumed: (outcome, replayed) => {
        this.resumes.set(outcome, (this.resumes.get(outcome) ?? 0) + 1);
        this.counters.resumeReplayed += replayed;
      },
    };
    // An unfinished request (slowloris: headers a byte at a time, or none) is cut at
    // server.handshakeTimeoutMs (408 and close); Node checks its connections every checking
    // interval, so that is kept a fraction of the timeout. Upgraded sockets leave this list.
    const handshakeMs = this.cfg.server.handshakeTimeoutMs;
    this.server = createServer({
      headersTimeout: handshakeMs,
      requestTimeout: handshakeMs,
      connectionsCheckingInterval: Math.min(1000, Math.ceil(handshakeMs / 4)),
    }, (req, res) => {
      // The browser client is served here too, on the path the proxy already forwards (docs/client.md).
      if (serveClientFile(req, res)) return;
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
      res.end('tp-ws: WebSocket endpoint; connect with a WebSocket client\n');
    });
    this.server.on('upgrade', (req, socket, head) => this.serverOnUpgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: l.maxFrameBytes,
      perMessageDeflate: false,
      // UTF-8 is checked here, so invalid text gets an error reply instead of a 1007 close.
      skipUTF8Validation: true,
      clientTracking: false,
      WebSocket: ConnSocket,
    });
    const gw = this;
    this.wsOn = {
      message(data, isBinary) {
        const conn = connOf(this);
        if (conn !== null) gw.connOnMessage(conn, { data, isBinary });
      },
      close() {
        const conn = connOf(this);
        if (conn !== null) gw.connOnClose(conn);
      },
      error(err) {
        gw.connOnError(connOf(this), err);
      },
    };
  }

  /** Bind the listener; resolves with the bound address (port 0 → a free port). */
  async listen(): Promise<AddressInfo> {
    const { host, port } = this.cfg.server;
    await listen(this.server, { host, port, setting: 'server.port', flag: '--port' });
    const hb = this.cfg.heartbeat.pingIntervalSec * 1000;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), hb);
    this.heartbeatTimer.unref();
    return this.server.address() as AddressInfo;
  }

  // --- upgrade and authentication --------------------------------------------

  private serverOnUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', socketOnError);
    if (this.closing || this.conns.size >= this.cfg.server.maxConnections) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wsOnOpen(ws as ConnSocket, req));
  }

  private wsOnOpen(ws: ConnSocket, req: IncomingMessage): void {
    const addr = clientAddress(req.socket.remoteAddress, req.headers, this.trusted);
    if (addr.unforwarded) this.proxyForwardedNoAddress(addr.ip, req);
    this.recordUpgrade(req, addr);
    const conn: Conn = {
      ws,
      ip: addr.ip,
      countsFailures: countsAuthFailures(addr),
      browser: req.headers.origin !== undefined,
      session: null,
      limits: this.cfg.limits,
      limiter: null,
      pending: [],
      chain: null,
      expiryTimer: null,
    };
    ws.conn = conn;
    this.conns.add(conn);
    this.counters.connectionsOpened++;
    ws.on('error', this.wsOn.error);
    ws.on('close', this.wsOn.close);
    ws.on('message', this.wsOn.message);
    ws.on('ping', wsOnAlive);
    ws.on('pong', wsOnAlive);
    this.authenticate(conn, tokenFromUrl(req.url)).catch((err: unknown) => this.authenticateCrashed(conn, err));
  }

  private authenticateCrashed(conn: Conn, err: unknown): void {
    this.log.error({ err }, 'authentication crashed; closing socket');
    conn.ws.terminate();
  }

  /**
   * A trusted proxy sent a connection without the client's address. A
   * browser's upgrade carries `Origin`; TeamPass's admin probe and local
   * tools connecting straight to the port do not, and are not proxied: only
   * the former earns the operator a warning, once per proxy address.
   */
  private proxyForwardedNoAddress(proxy: string, req: IncomingMessage): void {
    this.counters.unforwardedConnections++;
    if (req.headers.origin === undefined || this.warnedProxies.has(proxy)) return;
    this.warnedProxies.add(proxy);
    this.log.warn(
      { proxy, fix_nginx: 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;', fix_apache: 'ProxyAddHeaders On' },
      'trusted proxy forwarded no client address (X-Forwarded-For or X-Real-IP): its clients share its address, so the failed-auth limit cannot tell them apart and does not apply to them. Add to the proxy configuration: nginx "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" (Apache mod_proxy sends it unless ProxyAddHeaders is Off)',
    );
  }

  private recordUpgrade(req: IncomingMessage, addr: { ip: string; via: UpgradeRecord['forwarded'] }): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    let probe: string | null = null;
    if (q >= 0) {
      try {
        probe = new URLSearchParams(url.slice(q + 1)).get('tpws_probe')?.slice(0, 64) ?? null;
      } catch {
        probe = null;
      }
    }
    if (this.upgrades.length >= UPGRADES_KEPT) this.upgrades.shift();
    this.upgrades.push({
      time: Date.now(), peer: req.socket.remoteAddress ?? '', ip: addr.ip, forwarded: addr.via,
      path: (q >= 0 ? url.slice(0, q) : url).slice(0, 200), origin: req.headers.origin !== undefined, probe,
    });
  }

  /**
   * Take a reloaded configuration (SIGHUP). Limits, the heartbeat, trusted
   * proxies and lock timeouts apply at once (per-socket limits to sockets
   * opened from now on); the listener's address and `limits.maxFrameBytes`
   * need a restart (the daemon says which keys did).
   */
  applyConfig(cfg: Readonly<Config>): void {
    const old = this.cfg;
    this.cfg = cfg;
    const l = cfg.limits;
    if (l.authFailuresPerIp !== old.limits.authFailuresPerIp || l.authFailureWindowSec !== old.limits.authFailureWindowSec) {
      this.authLimiter = new AuthFailureLimiter(l.authFailuresPerIp, l.authFailureWindowSec * 1000);
    }
    this.trusted = new Set(cfg.server.trustedProxies);
    this.actions = {
      ...this.actions, editionLockTimeoutSec: cfg.teampass.editionLockTimeoutSec, kbLockTimeoutSec: cfg.teampass.kbLockTimeoutSec, maxBufferedBytes: cfg.limits.maxBufferedBytes,
    };
    if (cfg.heartbeat.pingIntervalSec !== old.heartbeat.pingIntervalSec && this.heartbeatTimer !== null) {
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = setInterval(() => void this.heartbeat(), cfg.heartbeat.pingIntervalSec * 1000);
      this.heartbeatTimer.unref();
    }
  }

  private async authenticate(conn: Conn, token: string | null): Promise<void> {
    const now = Date.now();
    const exempt = !conn.countsFailures;
    if (!exempt && this.authLimiter.isBlocked(conn.ip, now)) {
      this.counters.authRateLimited++;
      this.log.warn({ ip: conn.ip }, 'auth rate limit exceeded by IP');
      this.refuse(conn, ErrorCode.RATE_LIMITED, Msg.authRateLimited);
      return;
    }
    let identity: Identity | null = null;
    let storeDown = false;
    if (token !== null && token.length <= 8192) {
      for (const a of this.o.authenticators) {
        try {
          identity = await a.authenticate(token);
        } catch (err) {
          storeDown = true;
          this.log.error({ err, method: a.name }, 'authenticator could not decide (store unavailable?)');
        }
        if (identity !== null) break;
      }
    }
    if (conn.ws.readyState !== conn.ws.OPEN) return; // the client left while we were checking
    if (identity === null) {
      this.counters.authFailures++;
      if (storeDown) this.counters.authStoreDown++;
      // A store outage is not the client's fault: it does not count against the IP.
      if (!exempt && !storeDown) this.authLimiter.recordFailure(conn.ip, Date.now());
      this.log.warn({ code: 'TPWS_ERR_AUTH_FAILED', ip: conn.ip, has_token: token !== null, store_down: storeDown }, 'authentication failed');
      this.refuse(conn, ErrorCode.AUTH_FAILED, Msg.authFailed);
      return;
    }
    // Browsers and tools (no Origin: TeamPass's dashboard probe, scripts) have a cap each, so
    // the probe is answered while the admin's tabs use every browser slot, and no tab waits on it.
    const max = conn.browser ? this.cfg.limits.maxConnectionsPerUser : this.cfg.limits.maxToolConnectionsPerUser;
    let same = 0;
    for (const s of this.o.hub.userSessions(identity.userId)) if (s.browser === conn.browser) same++;
    if (same >= max) {
      this.counters.maxConnectionsRefused++;
      this.log.warn({ user_id: identity.userId, ip: conn.ip, browser: conn.browser }, 'connection limit exceeded');
      this.refuse(conn, ErrorCode.MAX_CONNECTIONS, Msg.maxConnections(max));
      return;
    }
    if (identity.expiresAt !== null && identity.expiresAt <= Date.now()) {
      this.refuse(conn, ErrorCode.AUTH_FAILED, Msg.authFailed);
      return;
    }
    identity.folders = this.folderSets.share(identity.folders);
    const session = new Session(this.nextSessionId++, conn.ws, identity, conn.ip, Date.now(), this.cfg.limits.maxBufferedBytes, conn.browser, this.closes);
    conn.session = session;
    this.o.hub.add(session);
    this.o.departures.userArrived(identity.userId);
    if (identity.reconnectToken !== null) this.o.reconnectTokens.opened(identity.reconnectToken);
    if (identity.expiresAt !== null) this.armExpiry(conn, identity.expiresAt);
    this.sessionLog(session).info({ user_login: identity.login, auth_method: identity.authMethod, ip: conn.ip, total_connections: this.o.hub.size }, 'connection established');
    session.send(connectedMessage({
      userId: identity.userId,
      userLogin: identity.login,
      userDisplayName: identity.displayName,
      serverTime: Math.floor(Date.now() / 1000),
      pingInterval: this.cfg.heartbeat.pingIntervalSec,
      reconnectToken: identity.reconnectToken,
      epoch: this.o.history.epoch,
      seq: this.o.history.seq,
    }));
    const held = conn.pending ?? [];
    conn.pending = null;
    for (const frame of held) this.handleFrame(conn, session, frame);
  }

  /** TeamPass refusal: a connection-level error, then close 1000 with an empty reason. */
  private refuse(conn: Conn, code: (typeof ErrorCode)[keyof typeof ErrorCode], message: string): void {
    conn.pending = null;
    conn.ws.send(JSON.stringify(connectionError(code, message)));
    conn.ws.close(CloseCode.NORMAL, '');
    const timer = setTimeout(() => conn.ws.terminate(), 5000);
    timer.unref();
    conn.ws.once('close', () => clearTimeout(timer));
  }

  private armExpiry(conn: Conn, expiresAt: number): void {
    const delay = Math.min(expiresAt - Date.now(), 2 ** 31 - 1);
    conn.expiryTimer = setTimeout(this.connOnExpiry, Math.max(0, delay), conn, expiresAt);
    conn.expiryTimer.unref();
  }

  /** A socket's credentials reached `expiresAt` (one function for every socket's timer). */
  private readonly connOnExpiry = (conn: Conn, expiresAt: number): void => {
    const s = conn.session;
    if (s === null) return;
    if (Date.now() < expiresAt) return this.armExpiry(conn, expiresAt);
    this.counters.tokenExpiryCloses++;
    this.sessionLog(s).info({ code: 'TPWS_ERR_AUTH_EXPIRED' }, 'credentials expired; closing socket');
    s.close(CloseCode.TOKEN_EXPIRED);
  };

  private sessionLog(s: Session): Logger {
    return sessionLogger(this.log, s);
  }

  // --- messages ----------------------------------------------------------------

  private connOnMessage(conn: Conn, frame: RawFrame): void {
    this.counters.messagesReceived++;
    if (conn.session === null) {
      if (conn.pending === null) return; // refused; closing
      if (conn.pending.length >= this.cfg.limits.maxPendingBeforeAuth) {
        this.counters.messagesRejected++;
        conn.ws.send(JSON.stringify(connectionError(ErrorCode.RATE_LIMITED, 'Too many messages before authentication completed')));
        return;
      }
      // Held messages are kept small: one over limits.maxMessageBytes only ever gets
      // `message_too_large`, so its length stands in for it, and a socket waiting for its
      // verdict (the store slow or down) holds at most maxPendingBeforeAuth × maxMessageBytes.
      const size = rawLength(frame.data);
      conn.pending.push(size > this.cfg.limits.maxMessageBytes ? { data: NO_DATA, isBinary: frame.isBinary, tooLarge: size } : frame);
      return;
    }
    this.handleFrame(conn, conn.session, frame);
  }

  /**
   * Pre-processing of every client frame (docs/protocol.md §Message handling):
   * size → text/UTF-8 → JSON → object → request_id → rate limit (pong exempt)
   * → action allow-list → handler. Every failure is an `error` reply; the
   * socket stays open (except a flood past `limits.floodCloseAfter`).
   */
  private handleFrame(conn: Conn, session: Session, frame: RawFrame): void {
    if (session.closed) return;
    const buf = toBuffer(frame.data);
    const now = Date.now();
    const parsed = this.parseFrame(buf, frame.isBinary, frame.tooLarge ?? buf.length);
    const isPong = parsed.ok && parsed.msg.action === 'pong';
    const limiter = isPong ? null : (conn.limiter ??= new SlidingLog(conn.limits.rateLimitMessages, conn.limits.rateLimitWindowMs));
    if (limiter !== null && !limiter.take(now)) {
      this.counters.messagesRejected++;
      if (limiter.rejections >= this.cfg.limits.floodCloseAfter) {
        this.sessionLog(session).warn({ ip: conn.ip }, 'message flood; closing socket');
        session.close(CloseCode.FLOOD);
        return;
      }
      if (limiter.rejections === 1) this.sessionLog(session).warn('rate limit exceeded');
      this.replyInOrder(conn, session, requestError(ErrorCode.RATE_LIMITED, Msg.rateLimited, parsed.ok ? parsed.msg.requestId : null));
      return;
    }
    if (!parsed.ok) {
      this.counters.messagesRejected++;
      // Per rejected message, and garbage can come fast: no child logger unless the line is written.
      if (this.log.isLevelEnabled('debug')) this.sessionLog(session).debug({ error_code: parsed.error.error_code, reason: parsed.error.message }, 'client message rejected');
      this.replyInOrder(conn, session, parsed.error);
      return;
    }
    const msg = parsed.msg;
    if (!ACTION_SET.has(msg.action)) {
      this.counters.messagesRejected++;
      this.replyInOrder(conn, session, requestError(ErrorCode.UNKNOWN_ACTION, Msg.unknownAction(msg.action.slice(0, 100)), msg.requestId));
      return;
    }
    // Every socket answers every heartbeat ping: a pong has no reply (TeamPass), so
    // nothing waits behind it in the reply queue and it skips the queue's promises.
    if (msg.action === 'pong') {
      session.lastSeen = now;
      return;
    }
    const queued: Promise<void> = (conn.chain ?? RESOLVED)
      .then(() => this.runAction(session, msg))
      .then(() => { if (conn.chain === queued) conn.chain = null; });
    conn.chain = queued;
  }

  /**
   * Send an error reply that needs no handler, behind the replies still
   * being worked out for earlier messages (a subscribe reading the store), so
   * replies leave in the order the messages arrived (docs/protocol.md
   * §Message handling), as TeamPass's daemon, which handled one message at
   * a time, sent them.
   */
  private replyInOrder(conn: Conn, session: Session, reply: Record<string, unknown>): void {
    if (conn.chain === null) {
      session.send(reply);
      return;
    }
    const queued: Promise<void> = conn.chain
      .then(() => { session.send(reply); })
      .then(() => { if (conn.chain === queued) conn.chain = null; });
    conn.chain = queued;
  }

  private async runAction(session: Session, msg: ClientMessage): Promise<void> {
    if (session.closed) return;
    let reply: Record<string, unknown> | null;
    try {
      reply = await handleAction(this.actions, session, msg, Date.now());
    } catch (err) {
      this.sessionLog(session).error({ err, action: msg.action }, 'action handler failed');
      reply = requestError(ErrorCode.SERVER_ERROR, Msg.serverError, msg.requestId);
    }
    if (reply !== null) session.send(reply);
  }

  private parseFrame(buf: Buffer, isBinary: boolean, size: number): { ok: true; msg: ClientMessage } | { ok: false; error: Record<string, unknown> } {
    const max = this.cfg.limits.maxMessageBytes;
    if (size > max) return { ok: false, error: connectionError(ErrorCode.MESSAGE_TOO_LARGE, Msg.messageTooLarge(max)) };
    if (isBinary) return { ok: false, error: connectionError(ErrorCode.INVALID_JSON, Msg.binaryFrame) };
    if (!isUtf8(buf)) return { ok: false, error: connectionError(ErrorCode.INVALID_JSON, Msg.invalidUtf8) };
    let value: unknown;
    try {
      value = JSON.parse(buf.toString('utf8'));
    } catch {
      return { ok: false, error: connectionError(ErrorCode.INVALID_JSON, Msg.invalidJson) };
    }
    // TeamPass's daemon died on these two (docs/protocol.md §Message handling); we answer instead.
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { ok: false, error: requestError(ErrorCode.INVALID_REQUEST, Msg.notObject, null) };
    }
    const o = value as Record<string, unknown>;
    const rid = o.request_id;
    if (rid !== undefined && rid !== null && typeof rid !== 'string') {
      return { ok: false, error: requestError(ErrorCode.INVALID_REQUEST, Msg.badRequestId, null) };
    }
    const action = typeof o.action === 'string' ? o.action : Array.isArray(o.action) ? 'Array' : o.action === undefined || o.action === null ? '' : String(o.action);
    const data = typeof o.data === 'object' && o.data !== null && !Array.isArray(o.data) ? (o.data as Record<string, unknown>) : {};
    return { ok: true, msg: { action, requestId: (rid as string | undefined) ?? null, channel: o.channel, data } };
  }

  // --- lifecycle -------------------------------------------------------------------

  /**
   * A frame that breaks RFC 6455 or the size limits (docs/protocol.md §Close
   * codes): `ws` has already sent the close (1002, 1008 or 1009); the
   * rejection is counted under that code and logged with `ws`'s error code.
   * One line per socket: the socket is closing.
   */
  private connOnError(conn: Conn | null, err: Error): void {
    const closeCode = wsCloseCode(err);
    if (closeCode === null) {
      this.log.debug({ err: err.message, ip: conn?.ip }, 'websocket error');
      return;
    }
    this.closes.set(closeCode, (this.closes.get(closeCode) ?? 0) + 1);
    const fields = { code: (err as NodeJS.ErrnoException).code, close_code: closeCode, reason: err.message.slice(0, 200), ip: conn?.ip };
    const s = conn?.session;
    if (s) this.sessionLog(s).info(fields, 'websocket protocol error; socket closed');
    else this.log.info(fields, 'websocket protocol error; socket closed');
  }

  private connOnClose(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    if (conn.expiryTimer !== null) clearTimeout(conn.expiryTimer);
    conn.pending = null;
    const s = conn.session;
    if (s === null) return;
    s.closed = true;
    this.o.presence.clear(s);
    this.o.hub.remove(s);
    // Sockets closed by our own shutdown come back to the next daemon: no lock release for them.
    if (!this.closing && this.o.hub.userSessions(s.userId).size === 0) {
      this.o.departures.userLeft({ userId: s.userId, login: s.identity.login, displayName: s.identity.displayName });
    }
    // The reconnect token stays good for its full TTL after the drop (docs/protocol.md §Reconnect tokens).
    if (s.identity.reconnectToken !== null) this.o.reconnectTokens.closed(s.identity.reconnectToken);
    this.sessionLog(s).info({ duration_seconds: Math.round((Date.now() - s.connectedAt) / 1000), remaining_connections: this.o.hub.size }, 'connection closed');
  }

  /**
   * Server ping to every session; sockets silent past the pong timeout are
   * closed (4102). Walks the sockets `SOCKETS_PER_TURN` at a time, yielding
   * between batches; also drops the rate limiters of sockets gone quiet.
   */
  private async heartbeat(): Promise<void> {
    if (this.heartbeatRunning) return;
    this.heartbeatRunning = true;
    try {
      const now = Date.now();
      const timeout = this.cfg.heartbeat.pongTimeoutSec * 1000;
      // One frame for every socket (src/fanout/frame.ts).
      const ping = textFrame(JSON.stringify(pingMessage(now, this.o.history.epoch, this.o.history.seq)));
      let inTurn = 0;
      for (const conn of this.conns) {
        if (++inTurn > SOCKETS_PER_TURN) {
          await new Promise((r) => setImmediate(r));
          if (this.closing) return;
          inTurn = 1;
        }
        if (conn.limiter !== null && conn.limiter.idle(now)) conn.limiter = null;
        const s = conn.session;
        if (s === null || s.closed) continue;
        if (now - s.lastSeen > timeout) {
          this.counters.heartbeatTimeouts++;
          this.sessionLog(s).info('heartbeat timeout; closing');
          s.close(CloseCode.HEARTBEAT_TIMEOUT);
          continue;
        }
        s.sendFrame(ping);
      }
      this.authLimiter.sweep(now);
    } finally {
      this.heartbeatRunning = false;
    }
  }

  /**
   * Stop accepting, close every socket with 4200 (reconnect) in batches, wait
   * for them up to `shutdown.timeoutMs`, then cut the rest. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const all = [...this.conns];
    const closed = Promise.all(all.map((c) => new Promise<void>((resolve) => {
      if (c.ws.readyState === c.ws.CLOSED) return resolve();
      c.ws.once('close', () => resolve());
    })));
    for (let i = 0; i < all.length; i += SOCKETS_PER_TURN) {
      for (const c of all.slice(i, i + SOCKETS_PER_TURN)) {
        if (c.session !== null) c.session.close(CloseCode.SHUTDOWN);
        else c.ws.close(CloseCode.SHUTDOWN, 'server shutting down: reconnect');
      }
      await new Promise((r) => setImmediate(r));
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), this.cfg.shutdown.timeoutMs); });
    const outcome = await Promise.race([closed.then(() => 'closed' as const), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') for (const c of this.conns) c.ws.terminate();
    this.server.closeAllConnections?.();
    await serverClosed;
  }
}

/** The close code `ws` sent for a frame it refused (its error's status code), or null for other errors (a socket reset). */
function wsCloseCode(err: Error): number | null {
  const sym = Object.getOwnPropertySymbols(err).find((k) => k.description === 'status-code');
  const code: unknown = sym === undefined ? undefined : (err as unknown as Record<symbol, unknown>)[sym];
  return typeof code === 'number' ? code : null;
}

function rawLength(data: RawData): number {
  if (Buffer.isBuffer(data)) return data.length;
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** `?token=` of the upgrade URL; PHP's parse_str keeps the last of repeated keys. */
export function tokenFromUrl(url: string | undefined): string | null {
  if (url === undefined) return null;
  const q = url.indexOf('?');
  if (q < 0) return null;
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(url.slice(q + 1));
  } catch {
    return null;
  }
  const all = params.getAll('token');
  return all.length === 0 ? null : all[all.length - 1];
}
