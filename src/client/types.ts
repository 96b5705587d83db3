/** Public types of the tp-ws browser client (docs/client.md). */
import type { StreamPosition } from './position-tracker.js';

export type { StreamPosition };

/** What the client needs of a WebSocket: the browser's, or any object shaped like it. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string; wasClean: boolean }) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface TeamPassWebSocketOptions {
  /** Daemon URL; `?token=` (or `&token=`) is appended. Default: `ws(s)://<page host>/ws`. */
  url?: string;
  /** The page's WebSocket token (TeamPass's `TeamPassWebSocketToken`), or a JWT. */
  token?: string | null;
  /** Log to the console (never tokens). Default false. */
  debug?: boolean;
  /** Client `ping` period, ms. Default 25000. */
  pingInterval?: number;
  /** Time a `send()` waits for its reply, ms. Default 10000. */
  requestTimeout?: number;
  /** Reconnects in a row without `connected` before giving up with `reconnect_failed`. Default Infinity. */
  maxReconnectAttempts?: number;
  /** Window of the first reconnect delay, ms (full jitter). Default 500. */
  minReconnectDelay?: number;
  /** Cap of the reconnect delay window, ms. Default 20000. */
  maxReconnectDelay?: number;
  /** Gives a fresh token when the daemon refuses the current one (`auth_failed`, close 4103). */
  getToken?: () => Promise<string | null> | string | null;
  /** Share one socket between the tabs of this browser that use the same URL. Default true. */
  shareTabs?: boolean;
  /** How many recent event ids are remembered to drop duplicates. Default 10000. */
  dedupSize?: number;
  /** WebSocket implementation. Default: the global `WebSocket`. */
  WebSocket?: WebSocketConstructor;
}

/** A message from the daemon, as parsed JSON. */
export interface ServerMessage {
  type: string;
  request_id?: string | null;
  [key: string]: unknown;
}

/** Payload of `send()`: an action and its fields; `request_id` is added. */
export interface ClientRequest {
  action: string;
  channel?: string;
  data?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Rejection of `send()`: TeamPass's messages, plus a code. */
export interface RequestError extends Error {
  /** `not_connected`, `timeout`, `closed`, or the daemon's `error_code`. */
  code: string;
  /** The daemon's error message, when it answered with one. */
  response?: ServerMessage;
}

/** Data of the `resumed` event. */
export interface ResumeResult {
  /** false: events may have been missed; reload the state the page shows. */
  recovered: boolean;
  /** Why not recovered: `unknown_epoch`, `gap`, `too_many`, `store_unavailable` (daemon), `unsupported` (daemon without positions). */
  reason?: string;
  /** Events the daemon replays after this notification. */
  replayed: number;
}

/** Data of the `terminated` event: the daemon closed with a 4000–4099 code; the client does not reconnect. */
export interface TerminatedInfo {
  code: number;
  reason: string;
}

/** Data of the `auth_failed` event: the credential was refused and no other token was available. */
export interface AuthFailedInfo {
  /** Close code of the refused socket (1000 after an `auth_failed` error, 4103 for an expired JWT). */
  code: number;
  /** The daemon's error message, when it sent one. */
  message: string | null;
}

/** Data of the `reconnect_failed` event. */
export interface ReconnectFailedInfo {
  attempts: number;
}

/** The close a tab sees through `onClose` (the leader's socket close, for every tab). */
export interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
}

/** `solo`: own socket; `leader`: holds the socket shared by the tabs; `follower`: uses the leader's. */
export type TabRole = 'solo' | 'leader' | 'follower';

/** Why the client stopped reconnecting, if it did. */
export type StopReason = 'disconnected' | 'terminated' | 'auth_failed' | 'reconnect_failed';

/** `getState()`: what this tab knows, without asking the daemon. */
export interface ClientState {
  role: TabRole | null;
  connected: boolean;
  position: StreamPosition | null;
  /** Result of the last resume (null before any). */
  recovered: boolean | null;
  /** Reconnects since the last `connected` (leader or solo tab). */
  reconnectAttempts: number;
  stopped: StopReason | null;
  subscriptions: string[];
}

export type EventHandler = (data: any) => void;
export type WildcardHandler = (event: string, data: any) => void;
