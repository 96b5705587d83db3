/**
 * `TeamPassWebSocket`: TeamPass's browser client API (its init script works
 * unchanged), on a connection that reconnects by close code with jittered
 * backoff, refreshes tokens, resumes from its stream position without loss or
 * duplicates, and is shared by the tabs of a browser (docs/client.md).
 *
 * A tab is `solo` (its own socket), `leader` (holds the socket and relays
 * everything to the other tabs) or `follower` (hears the leader, sends
 * through it). What the app sees is the same in all three.
 */
import { Connection, requestError, requestId, type ConnectionOptions, type ConnectionSink, type ReplyHandlers } from './connection.js';
import { readPosition, type StreamPosition } from './position-tracker.js';
import { stopViewsOf, TabViews, withTab } from './presence.js';
import { RecentIds } from './recent-ids.js';
import { folderId, folderKey, KB_KEY, subscriptionMessage, unsubscribeKey, validKeys } from './subscriptions.js';
import { TabChannel, type BroadcastChannelConstructor, type LockManagerLike, type TabMessage } from './tab-channel.js';
import type {
  ClientRequest,
  ClientState,
  CloseInfo,
  EventHandler,
  RequestError,
  ServerMessage,
  StopReason,
  TabRole,
  TeamPassWebSocketOptions,
  WebSocketConstructor,
  WildcardHandler,
} from './types.js';

/** What the client takes from the page; each defaults to the browser global. Tests pass their own. */
export interface ClientEnvironment {
  WebSocket?: WebSocketConstructor;
  locks?: LockManagerLike;
  BroadcastChannel?: BroadcastChannelConstructor;
  /** Receives `online` (the window). */
  window?: EventTargetLike;
  /** Receives `visibilitychange` and has `visibilityState` (the document). */
  document?: EventTargetLike & { visibilityState?: string };
  location?: { protocol: string; host: string };
}

interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

/** The options after defaults: the connection's own, and what the client keeps for itself. */
interface ResolvedOptions extends Pick<ConnectionOptions, 'url' | 'pingInterval' | 'requestTimeout' | 'maxReconnectAttempts' | 'minReconnectDelay' | 'maxReconnectDelay' | 'getToken'> {
  token: string | null;
  debug: boolean;
  shareTabs: boolean;
  dedupSize: number;
}

interface Forwarded extends ReplyHandlers {
  timer: ReturnType<typeof setTimeout>;
}

/** Notifications the client itself emits, as opposed to the daemon's event names. */
const STOP_EVENTS: Record<string, StopReason> = { terminated: 'terminated', auth_failed: 'auth_failed', reconnect_failed: 'reconnect_failed' };

function positiveNumber(name: string, value: unknown, fallback: number, allowInfinity = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!allowInfinity && !Number.isFinite(value))) {
    throw new TypeError(`TeamPassWebSocket: option ${name} must be a number ≥ 0`);
  }
  return value;
}

function globalEnv(): ClientEnvironment {
  const g = globalThis as Record<string, any>;
  return {
    WebSocket: g.WebSocket,
    locks: g.navigator?.locks,
    BroadcastChannel: g.BroadcastChannel,
    window: typeof g.addEventListener === 'function' ? (g as unknown as EventTargetLike) : undefined,
    document: g.document,
    location: g.location,
  };
}

export class TeamPassWebSocket {
  private readonly options: ResolvedOptions;
  private readonly env: ClientEnvironment;
  private readonly handlers = new Map<string, Set<EventHandler | WildcardHandler>>();
  private readonly callbacks: {
    open?: () => void;
    close?: (info: CloseInfo) => void;
    error?: (event: unknown) => void;
    reconnecting?: (attempt: number, delay: number) => void;
  } = {};
  private readonly seen: RecentIds;
  /** This tab's subscription keys (TeamPass's `subscriptions`). */
  private readonly subscriptions = new Set<string>();
  /** The other tabs' keys, by tab id. */
  private readonly otherTabs = new Map<string, Set<string>>();
  private connection: Connection | null = null;
  private tabs: TabChannel | null = null;
  private tabRole: TabRole | null = null;
  // What a follower knows of the leader's socket.
  private leaderOpen = false;
  private sharedPosition: StreamPosition | null = null;
  private sharedToken: string | null = null;
  private lastConnected: ServerMessage | null = null;
  private readonly forwarded = new Map<string, Forwarded>();
  private lastRecovered: boolean | null = null;
  /** This tab's item and KB views, started again after every resume. */
  private readonly views = new TabViews();
  private stopReason: StopReason | null = null;
  /** `online`, or the page visible again: a reconnect waiting for its delay goes now (the leader's, asked by any tab). */
  private readonly onOnline = (): void => this.retry();
  private readonly onVisibility = (): void => {
    if (this.env.document?.visibilityState === 'visible') this.retry();
  };

  constructor(options: TeamPassWebSocketOptions = {}, env: ClientEnvironment = globalEnv()) {
    if (options === null || typeof options !== 'object') throw new TypeError('TeamPassWebSocket: options must be an object');
    this.env = env;
    let url = options.url;
    if (url === undefined || url === null || url === '') {
      const loc = env.location;
      if (!loc) throw new TypeError('TeamPassWebSocket: option url is required outside a page');
      url = `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
    }
    if (typeof url !== 'string') throw new TypeError('TeamPassWebSocket: option url must be a string');
    const token = options.token ?? null;
    if (token !== null && typeof token !== 'string') throw new TypeError('TeamPassWebSocket: option token must be a string or null');
    if (options.getToken !== undefined && typeof options.getToken !== 'function') {
      throw new TypeError('TeamPassWebSocket: option getToken must be a function');
    }
    const maxReconnectDelay = positiveNumber('maxReconnectDelay', options.maxReconnectDelay, 20_000);
    const minReconnectDelay = positiveNumber('minReconnectDelay', options.minReconnectDelay, Math.min(500, maxReconnectDelay));
    if (minReconnectDelay > maxReconnectDelay) throw new TypeError('TeamPassWebSocket: minReconnectDelay must be ≤ maxReconnectDelay');
    const dedupSize = positiveNumber('dedupSize', options.dedupSize, 10_000);
    if (!Number.isInteger(dedupSize) || dedupSize < 1) throw new TypeError('TeamPassWebSocket: option dedupSize must be an integer ≥ 1');
    this.options = {
      url,
      token,
      debug: options.debug === true,
      pingInterval: positiveNumber('pingInterval', options.pingInterval, 25_000) || 25_000,
      requestTimeout: positiveNumber('requestTimeout', options.requestTimeout, 10_000),
      maxReconnectAttempts: positiveNumber('maxReconnectAttempts', options.maxReconnectAttempts, Infinity, true),
      minReconnectDelay,
      maxReconnectDelay,
      getToken: options.getToken,
      shareTabs: options.shareTabs !== false,
      dedupSize,
    };
    if (options.WebSocket !== undefined) this.env = { ...env, WebSocket: options.WebSocket };
    this.seen = new RecentIds(dedupSize);
  }

  // ---- TeamPass's API -------------------------------------------------------------------------

  /** Open the connection (or join the tabs' shared one). Calling it again while connected does nothing. */
  connect(): void {
    if (this.tabRole !== null) {
      this.connection?.connect();
      return;
    }
    if (!this.env.WebSocket) throw new TypeError('TeamPassWebSocket: no WebSocket implementation');
    this.stopReason = null;
    this.env.window?.addEventListener('online', this.onOnline);
    this.env.document?.addEventListener('visibilitychange', this.onVisibility);
    if (this.options.shareTabs && this.env.locks && this.env.BroadcastChannel) this.joinTabs(this.env.locks, this.env.BroadcastChannel);
    else {
      this.tabRole = 'solo';
      this.startConnection();
    }
  }

  /** Close with 1000 "Client disconnect" and stop reconnecting; a leader tab hands the socket to another tab. */
  disconnect(): void {
    this.env.window?.removeEventListener('online', this.onOnline);
    this.env.document?.removeEventListener('visibilitychange', this.onVisibility);
    this.tabs?.stop();
    this.tabs = null;
    this.otherTabs.clear();
    this.rejectForwarded('Connection closed', 'closed');
    this.leaderOpen = false;
    const c = this.connection;
    if (c) {
      // Kept for a later connect(): it resumes from here.
      this.sharedPosition = c.position;
      this.sharedToken = c.token;
      this.lastRecovered = c.recovered;
      c.disconnect();
    }
    this.connection = null;
    this.tabRole = null;
    this.stopReason = 'disconnected';
  }

  /** Add a handler for an event name, `connected`, `server_error`, the client's own notifications, or `*` (called with name and data). */
  on(event: '*', handler: WildcardHandler): this;
  on(event: string, handler: EventHandler): this;
  on(event: string, handler: EventHandler | WildcardHandler): this {
    if (typeof handler !== 'function') throw new TypeError('TeamPassWebSocket: handler must be a function');
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return this;
  }

  /** Remove one handler, or every handler of the event when none is given. */
  off(event: string, handler?: EventHandler | WildcardHandler): this {
    if (handler) this.handlers.get(event)?.delete(handler);
    else this.handlers.delete(event);
    return this;
  }

  onOpen(callback: () => void): this {
    this.callbacks.open = callback;
    return this;
  }

  onClose(callback: (info: CloseInfo) => void): this {
    this.callbacks.close = callback;
    return this;
  }

  onError(callback: (event: unknown) => void): this {
    this.callbacks.error = callback;
    return this;
  }

  onReconnecting(callback: (attempt: number, delay: number) => void): this {
    this.callbacks.reconnecting = callback;
    return this;
  }

  /** Send an action; resolves with its reply, rejects with the daemon's error, `Not connected`, `Request timeout` or `Connection closed`. */
  send(payload: ClientRequest): Promise<ServerMessage> {
    if (payload === null || typeof payload !== 'object' || typeof payload.action !== 'string' || payload.action === '') {
      return Promise.reject(new TypeError('TeamPassWebSocket: send() needs an object with an action'));
    }
    const message = { ...payload, request_id: requestId() };
    const refused = this.views.note(message);
    return new Promise((resolve, reject) =>
      this.route(message, this.tabs?.tab ?? '', {
        resolve,
        reject: (err: RequestError) => {
          if (err.response) refused?.();
          reject(err);
        },
      }),
    );
  }

  subscribeToFolder(id: number | string): Promise<ServerMessage> {
    const folder = folderId(id);
    if (folder === null) return Promise.reject(new TypeError('TeamPassWebSocket: a folder id is a positive integer'));
    this.changeSubscriptions(folderKey(folder), true);
    return this.send({ action: 'subscribe', channel: 'folder', data: { folder_id: folder } });
  }

  unsubscribeFromFolder(id: number | string): Promise<ServerMessage> {
    const folder = folderId(id);
    if (folder === null) return Promise.reject(new TypeError('TeamPassWebSocket: a folder id is a positive integer'));
    this.changeSubscriptions(folderKey(folder), false);
    return this.send({ action: 'unsubscribe', channel: 'folder', data: { folder_id: folder } });
  }

  subscribeToKb(): Promise<ServerMessage> {
    this.changeSubscriptions(KB_KEY, true);
    return this.send({ action: 'subscribe', channel: 'kb', data: {} });
  }

  unsubscribeFromKb(): Promise<ServerMessage> {
    this.changeSubscriptions(KB_KEY, false);
    return this.send({ action: 'unsubscribe', channel: 'kb', data: {} });
  }

  /** The daemon's `get_status` reply. */
  getStatus(): Promise<ServerMessage> {
    return this.send({ action: 'get_status' });
  }

  isConnectedNow(): boolean {
    return this.connection ? this.connection.isOpen : this.leaderOpen;
  }

  /** This tab's subscription keys (`folder:<id>`, `kb:0`). */
  getSubscriptions(): string[] {
    return [...this.subscriptions];
  }

  // ---- Presence calls (TeamPass's init script sends these with send()) -------------------------

  startItemView(itemId: number, folderIdValue?: number): Promise<ServerMessage> {
    return this.send({ action: 'start_item_view', data: { item_id: itemId, folder_id: folderIdValue } });
  }

  stopItemView(itemId?: number): Promise<ServerMessage> {
    return this.send({ action: 'stop_item_view', data: itemId === undefined ? {} : { item_id: itemId } });
  }

  startKbView(kbId: number): Promise<ServerMessage> {
    return this.send({ action: 'start_kb_view', data: { kb_id: kbId } });
  }

  stopKbView(kbId?: number): Promise<ServerMessage> {
    return this.send({ action: 'stop_kb_view', data: kbId === undefined ? {} : { kb_id: kbId } });
  }

  // ---- tp-ws additions -------------------------------------------------------------------------

  /** Result of the last resume: false means events may be lost, reload the page's state; null before any resume. */
  get recovered(): boolean | null {
    return this.connection?.recovered ?? this.lastRecovered;
  }

  get role(): TabRole | null {
    return this.tabRole;
  }

  getState(): ClientState {
    const c = this.connection;
    return {
      role: this.tabRole,
      connected: this.isConnectedNow(),
      position: c ? c.position : this.sharedPosition,
      recovered: this.recovered,
      reconnectAttempts: c ? c.attempts : 0,
      stopped: c?.stopped ?? this.stopReason,
      subscriptions: this.getSubscriptions(),
    };
  }

  // ---- internals --------------------------------------------------------------------------------

  private log(message: string, detail?: unknown): void {
    if (this.options.debug) console.log(`[tp-ws] ${message}`, detail ?? '');
  }

  private emitLocal(name: string, data: unknown): void {
    for (const handler of this.handlers.get(name) ?? []) this.call(() => (handler as EventHandler)(data));
    for (const handler of this.handlers.get('*') ?? []) this.call(() => (handler as WildcardHandler)(name, data));
    if (name === 'resumed') this.restartViews();
  }

  /** A resume means a new socket, which has none of this tab's views: start them again. */
  private restartViews(): void {
    for (const start of this.views.starts()) {
      this.send(start).catch((err: Error) => this.log(`${start.action} after resume failed: ${err.message}`));
    }
  }

  /** A throwing handler must not stop the others nor the stream. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      console.error('[tp-ws] handler failed', err);
    }
  }

  private fire(name: 'open' | 'close' | 'error' | 'reconnecting', ...args: unknown[]): void {
    const cb = this.callbacks[name] as ((...a: unknown[]) => void) | undefined;
    if (cb) this.call(() => cb(...args));
  }

  private retry(): void {
    if (this.connection) this.connection.retryNow();
    else this.tabs?.post('retry');
  }

  /** Every tab's keys: what the socket must be subscribed to. */
  private union(exceptTab?: string): Set<string> {
    const all = new Set<string>(exceptTab === (this.tabs?.tab ?? '') ? [] : this.subscriptions);
    for (const [tab, keys] of this.otherTabs) if (tab !== exceptTab) for (const k of keys) all.add(k);
    return all;
  }

  private changeSubscriptions(key: string, add: boolean): void {
    if (add) this.subscriptions.add(key);
    else this.subscriptions.delete(key);
    this.tabs?.post('subs', { subs: [...this.subscriptions] });
  }

  /**
   * Own the socket. The token is the last reconnect token known (shared by
   * a previous leader, or kept from before disconnect()), with the page's
   * own token as the fallback; the position is the last one known, so the
   * socket resumes from it.
   */
  private startConnection(): void {
    const own = this.options.token;
    const token = this.sharedToken ?? own;
    const fallbackToken = this.sharedToken !== null ? own : null;
    const position = this.sharedPosition;
    const sink: ConnectionSink = {
      open: () => {
        this.fire('open');
        this.tabs?.post('open');
      },
      close: (info) => {
        this.fire('close', info);
        this.tabs?.post('close', { info });
      },
      error: (event) => {
        this.fire('error', event);
        this.tabs?.post('error');
      },
      reconnecting: (attempt, delay) => {
        this.fire('reconnecting', attempt, delay);
        this.tabs?.post('reconnecting', { attempt, delay });
      },
      emit: (name, data, id) => {
        if (name === 'connected') this.lastConnected = data as ServerMessage;
        this.emitLocal(name, data);
        this.tabs?.post('emit', { name, data, id });
      },
      shared: () => this.tabs?.post('state', this.leaderState()),
      denied: (folders, kb) => {
        this.applyDenied(folders, kb);
        this.tabs?.post('denied', { folders, kb });
      },
    };
    this.connection = new Connection(
      {
        url: this.options.url,
        WebSocket: this.env.WebSocket!,
        pingInterval: this.options.pingInterval,
        requestTimeout: this.options.requestTimeout,
        maxReconnectAttempts: this.options.maxReconnectAttempts,
        minReconnectDelay: this.options.minReconnectDelay,
        maxReconnectDelay: this.options.maxReconnectDelay,
        getToken: this.options.getToken,
        log: (m, d) => this.log(m, d),
      },
      { token, fallbackToken, position, seen: this.seen, subscriptions: () => this.union() },
      sink,
    );
    this.connection.connect();
  }

  private leaderState(): Record<string, unknown> {
    const c = this.connection;
    return { open: c?.isOpen === true, position: c?.position ?? null, token: c?.token ?? null, connected: this.lastConnected };
  }

  /** A resume left these out: drop them from this tab's set (only those refused, not what was subscribed since). */
  private applyDenied(folders: unknown, kb: unknown): void {
    if (Array.isArray(folders)) for (const id of folders) if (folderId(id) !== null) this.subscriptions.delete(folderKey(id as number));
    if (kb === true) this.subscriptions.delete(KB_KEY);
    this.tabs?.post('subs', { subs: [...this.subscriptions] });
  }

  /**
   * Send `message` for tab `from` (this tab: ''/its id). A follower forwards
   * to the leader; the socket's owner sends, except an `unsubscribe` of a
   * key another tab still holds, which is answered here as the daemon would.
   * A leader names the sending tab in presence actions (presence.ts).
   */
  private route(request: Record<string, unknown>, from: string, handlers: ReplyHandlers): void {
    const message = this.tabRole === 'leader' ? withTab(request, from) : request;
    const rid = message.request_id as string;
    if (this.tabRole === 'follower') {
      if (!this.leaderOpen || !this.tabs) {
        handlers.reject(requestError('Not connected', 'not_connected'));
        return;
      }
      const timer = setTimeout(() => {
        if (this.forwarded.delete(rid)) handlers.reject(requestError('Request timeout', 'timeout'));
      }, this.options.requestTimeout);
      this.forwarded.set(rid, { ...handlers, timer });
      this.tabs.post('request', { payload: message });
      return;
    }
    if (!this.connection) {
      handlers.reject(requestError('Not connected', 'not_connected'));
      return;
    }
    const key = unsubscribeKey(message);
    if (key !== null && this.connection.isOpen && this.union(from).has(key)) {
      const reply: ServerMessage = { type: 'response', status: 'success', action: 'unsubscribed', channel: message.channel as string };
      if (key !== KB_KEY) reply.folder_id = folderId((message.data as Record<string, unknown>).folder_id);
      reply.request_id = rid;
      handlers.resolve(reply);
      return;
    }
    this.connection.request(message, handlers);
  }

  private rejectForwarded(text: string, code: string): void {
    for (const [rid, f] of this.forwarded) {
      this.forwarded.delete(rid);
      clearTimeout(f.timer);
      f.reject(requestError(text, code));
    }
  }

  // ---- tab sharing -------------------------------------------------------------------------------

  private joinTabs(locks: LockManagerLike, Channel: BroadcastChannelConstructor): void {
    this.tabRole = 'follower';
    const tabs = new TabChannel(this.options.url, locks, Channel, {
      ready: () => tabs.post('hello', { subs: [...this.subscriptions] }),
      leader: () => this.becomeLeader(),
      gone: (tab) => this.tabGone(tab),
      message: (msg) => this.onTabMessage(msg),
    });
    this.tabs = tabs;
    tabs.start();
  }

  /**
   * The previous leader is gone (its lock is ours). Connect with the last
   * reconnect token it shared (our own token as the fallback) and resume
   * from the last position it shared: every event up to there reached this
   * tab, the rest is replayed, and the ids this tab saw drop the repeats.
   */
  private becomeLeader(): void {
    this.log('this tab leads');
    this.tabRole = 'leader';
    this.leaderOpen = false;
    this.rejectForwarded('Connection closed', 'closed');
    this.tabs?.post('leader');
    this.startConnection();
  }

  /**
   * A tab closed: end its views (the socket outlives it, so the daemon would
   * keep them), forget its keys, and unsubscribe the socket from what no tab
   * holds any more.
   */
  private tabGone(tab: string): void {
    const keys = this.otherTabs.get(tab) ?? new Set<string>();
    this.otherTabs.delete(tab);
    const connection = this.connection;
    if (!connection?.isOpen) return;
    const ignore: ReplyHandlers = { resolve: () => undefined, reject: () => undefined };
    for (const message of stopViewsOf(tab)) connection.request(message, ignore);
    const still = this.union();
    for (const key of keys) {
      const message = still.has(key) ? null : subscriptionMessage('unsubscribe', key);
      if (message) connection.request(message, ignore);
    }
  }

  private onTabMessage(msg: TabMessage): void {
    const tabs = this.tabs;
    if (!tabs) return;
    switch (msg.t) {
      case 'hello':
        this.otherTabs.set(msg.tab, new Set(validKeys(msg.subs)));
        tabs.watch(msg.tab);
        tabs.post('subs', { subs: [...this.subscriptions] });
        if (this.tabRole === 'leader') tabs.post('state', this.leaderState());
        return;
      case 'subs':
        this.otherTabs.set(msg.tab, new Set(validKeys(msg.subs)));
        tabs.watch(msg.tab);
        return;
      case 'request':
        if (this.tabRole === 'leader') this.serve(msg);
        return;
      case 'retry':
        this.connection?.retryNow();
        return;
    }
    if (this.tabRole !== 'follower') return;
    this.fromLeader(msg);
  }

  /** A follower's request: send it with its request id and post the reply back to that tab. */
  private serve(msg: TabMessage): void {
    const payload = msg.payload as Record<string, unknown> | null;
    const tabs = this.tabs!;
    if (!payload || typeof payload !== 'object' || typeof payload.action !== 'string' || typeof payload.request_id !== 'string') return;
    const rid = payload.request_id;
    this.route(payload, msg.tab, {
      resolve: (message) => tabs.post('reply', { to: msg.tab, rid, message }),
      reject: (err: RequestError) => tabs.post('reply', { to: msg.tab, rid, error: { message: err.message, code: err.code, response: err.response } }),
    });
  }

  private fromLeader(msg: TabMessage): void {
    switch (msg.t) {
      case 'leader':
        // A new leader: the old socket is gone, its requests will not be answered.
        this.leaderOpen = false;
        this.rejectForwarded('Connection closed', 'closed');
        return;
      case 'state':
        this.onLeaderState(msg);
        return;
      case 'open':
        this.leaderOpen = true;
        this.fire('open');
        return;
      case 'close': {
        this.leaderOpen = false;
        this.rejectForwarded('Connection closed', 'closed');
        const info = msg.info as CloseInfo;
        if (info && typeof info.code === 'number') this.fire('close', { code: info.code, reason: String(info.reason ?? ''), wasClean: info.wasClean === true });
        return;
      }
      case 'reconnecting':
        if (typeof msg.attempt === 'number' && typeof msg.delay === 'number') this.fire('reconnecting', msg.attempt, msg.delay);
        return;
      case 'error':
        this.fire('error', { type: 'error' });
        return;
      case 'emit':
        this.onLeaderEmit(msg);
        return;
      case 'denied':
        this.applyDenied(msg.folders, msg.kb);
        return;
      case 'reply':
        this.onReply(msg);
        return;
    }
  }

  private onLeaderState(msg: TabMessage): void {
    const position = msg.position && typeof msg.position === 'object' ? readPosition(msg.position as Record<string, unknown>) : null;
    if (position) this.sharedPosition = position;
    if (typeof msg.token === 'string' && msg.token !== '') this.sharedToken = msg.token;
    if (msg.open === true && !this.leaderOpen) {
      // This tab joined a socket already open: start as TeamPass's client does on open, with its own subscriptions.
      this.leaderOpen = true;
      this.fire('open');
      const connected = msg.connected as ServerMessage | null;
      if (connected && typeof connected === 'object' && connected.type === 'connected') {
        this.lastConnected = connected;
        this.emitLocal('connected', connected);
      }
      for (const key of this.subscriptions) {
        const message = subscriptionMessage('subscribe', key);
        if (message) this.send(message as ClientRequest).catch((err: Error) => this.log(`subscribe ${key} failed: ${err.message}`));
      }
    }
  }

  private onLeaderEmit(msg: TabMessage): void {
    if (typeof msg.name !== 'string') return;
    if (typeof msg.id === 'string' && !this.seen.add(msg.id)) return;
    if (msg.name === 'connected') this.lastConnected = msg.data as ServerMessage;
    if (msg.name === 'resumed') this.lastRecovered = (msg.data as { recovered?: unknown })?.recovered === true;
    const stop = STOP_EVENTS[msg.name];
    if (stop) this.stopReason = stop;
    this.emitLocal(msg.name, msg.data);
  }

  private onReply(msg: TabMessage): void {
    if (msg.to !== this.tabs?.tab || typeof msg.rid !== 'string') return;
    const f = this.forwarded.get(msg.rid);
    if (!f) return;
    this.forwarded.delete(msg.rid);
    clearTimeout(f.timer);
    const error = msg.error as { message?: unknown; code?: unknown; response?: ServerMessage } | undefined;
    if (error) f.reject(requestError(String(error.message ?? 'Request failed'), String(error.code ?? 'error'), error.response));
    else f.resolve(msg.message as ServerMessage);
  }
}
