/**
 * One daemon connection kept alive across sockets: it opens a socket,
 * reconnects after closes as the close code says, answers and sends pings,
 * correlates requests with replies, resumes from the stream position, and
 * hands everything it learns to a `ConnectionSink`. The tab that owns it (a
 * tab alone, or the leader of shared tabs) decides who hears what.
 */
import { Backoff } from './backoff.js';
import { decideAfterClose } from './close-decision.js';
import { PositionTracker, readPosition, type StreamPosition } from './position-tracker.js';
import type { RecentIds } from './recent-ids.js';
import { resumeSubscriptions, subscriptionMessage } from './subscriptions.js';
import type { CloseInfo, RequestError, ResumeResult, ServerMessage, StopReason, WebSocketConstructor, WebSocketLike } from './types.js';

const OPEN = 1;

export interface ConnectionSink {
  open(): void;
  close(info: CloseInfo): void;
  error(event: unknown): void;
  reconnecting(attempt: number, delay: number): void;
  /** An event from the daemon (`id` when it has one) or a lifecycle notification (`connected`, `resumed`, …). */
  emit(name: string, data: unknown, id?: string): void;
  /** The position or the reconnect token changed. */
  shared(): void;
  /** A resume left these subscriptions out: the user may no longer read them. */
  denied(folders: number[], kb: boolean): void;
}

export interface ConnectionOptions {
  url: string;
  WebSocket: WebSocketConstructor;
  pingInterval: number;
  requestTimeout: number;
  maxReconnectAttempts: number;
  minReconnectDelay: number;
  maxReconnectDelay: number;
  getToken?: () => Promise<string | null> | string | null;
  random?: () => number;
  log: (message: string, detail?: unknown) => void;
}

export interface ConnectionStart {
  token: string | null;
  /** Tried once when `token` is refused, before `getToken` (a new leader's own page token). */
  fallbackToken?: string | null;
  position: StreamPosition | null;
  seen: RecentIds;
  /** The subscription keys the socket must hold (the union of the tabs' sets). */
  subscriptions: () => Iterable<string>;
}

export interface ReplyHandlers {
  resolve(message: ServerMessage): void;
  reject(error: RequestError): void;
}

interface Pending extends ReplyHandlers {
  timer: ReturnType<typeof setTimeout>;
}

/** An Error with TeamPass's message and a code to branch on. */
export function requestError(message: string, code: string, response?: ServerMessage): RequestError {
  const err = new Error(message) as RequestError;
  err.code = code;
  if (response) err.response = response;
  return err;
}

/** TeamPass's request id shape: `req_` and random base-36 characters. */
export function requestId(): string {
  return `req_${Math.random().toString(36).slice(2, 15)}${Math.random().toString(36).slice(2, 15)}`;
}

/** The URL with the token as TeamPass's client appends it. */
export function socketUrl(url: string, token: string | null): string {
  if (token === null || token === '') return url;
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

export class Connection {
  private readonly backoff: Backoff;
  private readonly tracker: PositionTracker;
  private readonly pending = new Map<string, Pending>();
  private tokenNow: string | null;
  private fallbackToken: string | null;
  private ws: WebSocketLike | null = null;
  private opened = false;
  /** `connected` arrived on the current socket. */
  private authenticated = false;
  /** The daemon's `auth_failed` message on the current socket, before `connected`. */
  private authFailure: string | null = null;
  private intentional = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  /** Drops a socket that is not `connected` within requestTimeout (a black-holed handshake can hang for minutes). */
  private handshakeTimer: ReturnType<typeof setTimeout> | null = null;
  private stopReason: StopReason | null = null;
  private lastRecovered: boolean | null = null;

  constructor(
    private readonly options: ConnectionOptions,
    start: ConnectionStart,
    private readonly sink: ConnectionSink,
  ) {
    this.backoff = new Backoff({ minDelayMs: options.minReconnectDelay, maxDelayMs: options.maxReconnectDelay, random: options.random });
    this.tracker = new PositionTracker(start.seen, start.position);
    this.tokenNow = start.token;
    this.fallbackToken = start.fallbackToken && start.fallbackToken !== start.token ? start.fallbackToken : null;
    this.subscriptions = start.subscriptions;
  }

  private readonly subscriptions: () => Iterable<string>;

  /** The socket is open (TeamPass's `isConnected`: true from `onopen`, before `connected`). */
  get isOpen(): boolean {
    return this.opened;
  }

  get token(): string | null {
    return this.tokenNow;
  }

  get position(): StreamPosition | null {
    return this.tracker.position;
  }

  get attempts(): number {
    return this.backoff.attempts;
  }

  get stopped(): StopReason | null {
    return this.stopReason;
  }

  get recovered(): boolean | null {
    return this.lastRecovered;
  }

  /** Open a socket, unless one is open or opening. */
  connect(): void {
    if (this.ws || this.retryTimer) return;
    this.intentional = false;
    this.stopReason = null;
    this.backoff.reset();
    this.openSocket();
  }

  /** Close for good (TeamPass: code 1000 "Client disconnect"); no reconnect. */
  disconnect(): void {
    this.intentional = true;
    this.stopReason = 'disconnected';
    this.clearRetry();
    const ws = this.ws;
    if (!ws) return;
    try {
      ws.close(1000, 'Client disconnect');
    } catch {
      // already closing
    }
  }

  /** A reconnect is waiting for its delay: go now (the browser is back online, or the page visible again). */
  retryNow(): void {
    if (!this.retryTimer) return;
    this.clearRetry();
    this.options.log('retrying now');
    this.openSocket();
  }

  /** Send a request and route its reply, or its failure (TeamPass's errors: Not connected, Request timeout, Connection closed). */
  request(payload: Record<string, unknown>, handlers: ReplyHandlers): void {
    const ws = this.ws;
    if (!ws || !this.opened || ws.readyState !== OPEN) {
      handlers.reject(requestError('Not connected', 'not_connected'));
      return;
    }
    const rid = typeof payload.request_id === 'string' && payload.request_id !== '' ? payload.request_id : requestId();
    const timer = setTimeout(() => {
      if (this.pending.delete(rid)) handlers.reject(requestError('Request timeout', 'timeout'));
    }, this.options.requestTimeout);
    this.pending.set(rid, { ...handlers, timer });
    this.write({ ...payload, request_id: rid });
  }

  private write(message: Record<string, unknown>): void {
    try {
      this.ws?.send(JSON.stringify(message));
    } catch (err) {
      this.options.log('send failed', err);
    }
  }

  private openSocket(): void {
    const url = socketUrl(this.options.url, this.tokenNow);
    let ws: WebSocketLike;
    try {
      ws = new this.options.WebSocket(url);
    } catch (err) {
      // An invalid URL will not become valid by waiting, but backing off keeps this from spinning.
      // The error's name only: a browser's message quotes the URL, token included.
      this.options.log('cannot open a socket', err instanceof Error ? err.name : typeof err);
      this.afterClose({ code: 1006, reason: 'cannot open a socket', wasClean: false });
      return;
    }
    this.ws = ws;
    this.opened = false;
    this.authenticated = false;
    this.authFailure = null;
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = null;
      if (this.ws === ws && !this.authenticated) this.drop('no connected message');
    }, this.options.requestTimeout);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.opened = true;
      this.startPing();
      this.sink.open();
    };
    ws.onmessage = (event) => {
      if (this.ws === ws && typeof event.data === 'string') this.receive(event.data);
    };
    ws.onerror = (event) => {
      if (this.ws === ws) this.sink.error(event);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.afterClose({ code: event.code, reason: event.reason, wasClean: event.wasClean });
    };
  }

  /**
   * Give up on the current socket without waiting for its close handshake
   * (a cut network can take minutes to report 1006) and go on as after an
   * abnormal close: reconnect with backoff.
   */
  private drop(reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.options.log(`dropping the socket: ${reason}`);
    this.detach(ws);
    try {
      ws.close(1000, reason);
    } catch {
      // already closing
    }
    this.afterClose({ code: 1006, reason, wasClean: false });
  }

  private detach(ws: WebSocketLike): void {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  }

  private afterClose(info: CloseInfo): void {
    if (this.ws) this.detach(this.ws);
    this.ws = null;
    this.opened = false;
    this.stopPing();
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    for (const [rid, p] of this.pending) {
      this.pending.delete(rid);
      clearTimeout(p.timer);
      p.reject(requestError('Connection closed', 'closed'));
    }
    this.tracker.disconnected();
    const authFailed = this.authFailure !== null;
    const serverMessage = this.authFailure;
    this.sink.close(info);
    const decision = decideAfterClose({ code: info.code, intentional: this.intentional, authFailed });
    this.options.log(`closed ${info.code}: ${decision}`);
    switch (decision) {
      case 'stop':
        return;
      case 'terminal':
        this.stopReason = 'terminated';
        this.sink.emit('terminated', { code: info.code, reason: info.reason });
        return;
      case 'refresh':
        void this.refresh(info.code, serverMessage);
        return;
      default:
        this.schedule(decision);
    }
  }

  private schedule(kind: 'now' | 'backoff'): void {
    if (this.intentional) return;
    if (this.backoff.attempts >= this.options.maxReconnectAttempts) {
      this.stopReason = 'reconnect_failed';
      this.sink.emit('reconnect_failed', { attempts: this.backoff.attempts });
      return;
    }
    const delay = kind === 'now' ? this.backoff.nextSoon() : this.backoff.next();
    this.sink.reconnecting(this.backoff.attempts, delay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.openSocket();
    }, delay);
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /**
   * The token was refused: try the fallback token once, else ask the
   * application for a new one. A token equal to the refused one, none, or a
   * failing callback stops with `auth_failed` instead of looping.
   */
  private async refresh(code: number, serverMessage: string | null): Promise<void> {
    const refused = this.tokenNow;
    let next: string | null = null;
    if (this.fallbackToken !== null) {
      next = this.fallbackToken;
      this.fallbackToken = null;
    } else if (this.options.getToken) {
      try {
        const token = await this.options.getToken();
        if (typeof token === 'string' && token !== '' && token !== refused) next = token;
      } catch (err) {
        this.options.log('getToken failed', err);
      }
    }
    if (this.intentional) return;
    if (next === null) {
      this.stopReason = 'auth_failed';
      this.sink.emit('auth_failed', { code, message: serverMessage });
      return;
    }
    this.tokenNow = next;
    this.sink.shared();
    this.schedule('backoff');
  }

  private startPing(): void {
    this.stopPing();
    this.pingTimer = setInterval(() => {
      const ws = this.ws;
      this.request(
        { action: 'ping' },
        {
          resolve: () => undefined,
          reject: (err) => {
            if (err.code === 'timeout' && this.ws === ws) this.drop('no pong');
          },
        },
      );
    }, this.options.pingInterval);
  }

  private stopPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  private receive(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      this.options.log('unparsable message dropped');
      return;
    }
    if (message === null || typeof message !== 'object' || Array.isArray(message)) return;
    const msg = message as ServerMessage;
    const rid = msg.request_id;
    if (typeof rid === 'string') {
      const pending = this.pending.get(rid);
      if (pending) {
        this.pending.delete(rid);
        clearTimeout(pending.timer);
        if (msg.type === 'error') {
          const text = typeof msg.message === 'string' ? msg.message : 'Request failed';
          pending.reject(requestError(text, typeof msg.error_code === 'string' ? msg.error_code : 'error', msg));
        } else pending.resolve(msg);
        return;
      }
    }
    switch (msg.type) {
      case 'event':
        this.onEvent(msg);
        break;
      case 'ping':
        this.write({ action: 'pong' });
        if (this.tracker.ping(msg)) this.sink.shared();
        break;
      case 'connected':
        this.onConnected(msg);
        break;
      case 'error':
        if (!this.authenticated && msg.error_code === 'auth_failed') {
          this.authFailure = typeof msg.message === 'string' ? msg.message : '';
        }
        this.sink.emit('server_error', msg);
        break;
      default:
        break;
    }
  }

  private onEvent(msg: ServerMessage): void {
    if (typeof msg.event !== 'string') return;
    const before = this.positionKey();
    if (this.tracker.event(msg)) {
      this.sink.emit(msg.event, msg.data, typeof msg.id === 'string' ? msg.id : undefined);
    }
    // After the event: a tab that learns the new position has already received the event.
    if (this.positionKey() !== before) this.sink.shared();
  }

  private positionKey(): string {
    const p = this.tracker.position;
    return p ? `${p.epoch}:${p.seq}` : '';
  }

  private onConnected(msg: ServerMessage): void {
    this.authenticated = true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    if (typeof msg.reconnect_token === 'string' && msg.reconnect_token !== '') this.tokenNow = msg.reconnect_token;
    let step = this.tracker.connected(msg);
    let unsupported = false;
    if (step === 'resume' && readPosition(msg) === null) {
      // A daemon without positions (TeamPass's own) cannot resume: subscribe as its client does.
      this.tracker.forget();
      step = 'subscribe';
      unsupported = true;
    }
    // The resume (or the subscribes) go before the app hears `connected`, so resume is the first message after it.
    if (step === 'resume') this.resume();
    else {
      this.backoff.reset();
      this.resubscribe();
    }
    this.sink.shared();
    this.sink.emit('connected', msg);
    if (unsupported) this.announce({ recovered: false, reason: 'unsupported', replayed: 0 });
  }

  private resubscribe(): void {
    for (const key of this.subscriptions()) {
      const message = subscriptionMessage('subscribe', key);
      if (message) this.request(message, { resolve: () => undefined, reject: (err) => this.options.log(`resubscribe ${key} failed: ${err.message}`) });
    }
  }

  private resume(): void {
    const position = this.tracker.position!;
    const subs = resumeSubscriptions(this.subscriptions());
    const ws = this.ws;
    this.tracker.resumeSent();
    this.request(
      { action: 'resume', data: { epoch: position.epoch, seq: position.seq, folders: subs.folders, kb: subs.kb } },
      {
        resolve: (reply) => this.onResumed(reply, subs.kb),
        reject: (err) => {
          // Refused (rate limit, …) or unanswered: this socket has no subscriptions; start over with backoff.
          if (this.ws === ws) this.drop(`resume failed: ${err.message}`);
        },
      },
    );
  }

  private onResumed(reply: ServerMessage, askedKb: boolean): void {
    const at = readPosition(reply);
    const replayed = reply.replayed;
    if (reply.action !== 'resumed' || typeof reply.recovered !== 'boolean' || at === null || typeof replayed !== 'number' || !Number.isInteger(replayed) || replayed < 0) {
      this.drop('invalid resumed reply');
      return;
    }
    this.tracker.resumed({ recovered: reply.recovered, epoch: at.epoch, seq: at.seq, replayed });
    this.backoff.reset();
    const denied = Array.isArray(reply.denied) ? reply.denied.filter((id): id is number => Number.isSafeInteger(id) && (id as number) > 0) : [];
    const kbDenied = askedKb && reply.kb !== true;
    if (denied.length > 0 || kbDenied) this.sink.denied(denied, kbDenied);
    this.sink.shared();
    const result: ResumeResult = { recovered: reply.recovered, replayed };
    if (!reply.recovered && typeof reply.reason === 'string') result.reason = reply.reason;
    this.announce(result);
  }

  private announce(result: ResumeResult): void {
    this.lastRecovered = result.recovered;
    this.sink.emit('resumed', result);
  }
}
