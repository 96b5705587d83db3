/**
 * WebSocket close codes used by tp-ws, with the reconnect rule that goes with
 * each range (docs/protocol.md §Close codes). A code's range alone says what
 * a client does; a code that would need an exception belongs in another
 * range. This module imports nothing from Node, so a browser client can
 * import it as is.
 *
 * - 1000: TeamPass compatibility — auth failure, connection cap, IP limit close
 *   with 1000 and an empty reason, exactly as the PHP daemon did.
 * - 4000–4099: terminal — do not reconnect.
 * - 4100–4199: reconnect with backoff and jitter, with fresh credentials when
 *   the application can provide them.
 * - 4200–4299: reconnect now (server restart or shutdown).
 */
export const CloseCode = {
  /** Normal close; also TeamPass's code for auth failure / max connections / auth rate limit. */
  NORMAL: 1000,
  /** A message larger than `limits.maxFrameBytes` (RFC 6455 "message too big"). */
  MESSAGE_TOO_BIG: 1009,
  /** TeamPass ended the user's session (`session_expired` event): log in again; the socket's tokens are revoked. */
  SESSION_EXPIRED: 4001,
  /** Unsent data for this socket passed `limits.maxBufferedBytes`. */
  SLOW_CONSUMER: 4100,
  /** The client kept sending past the rate limit (`limits.floodCloseAfter`). */
  FLOOD: 4101,
  /** No ping/pong from the client within `heartbeat.pongTimeoutSec`. */
  HEARTBEAT_TIMEOUT: 4102,
  /** The credentials that opened the socket expired (JWT `exp`): reconnect with a new token. */
  TOKEN_EXPIRED: 4103,
  /** The user's folder access changed and could not be re-read: reconnect, and access is computed afresh at login. */
  ACCESS_RECHECK_FAILED: 4104,
  /** The daemon is shutting down or restarting. */
  SHUTDOWN: 4200,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

export type ReconnectPolicy = 'none' | 'backoff' | 'now';

/**
 * What a client should do after a close with `code`, by range alone. Codes
 * outside tp-ws's ranges (1006 from a dropped connection, 1011, …) reconnect
 * with backoff.
 */
export function reconnectPolicy(code: number): ReconnectPolicy {
  if (code >= 4000 && code <= 4099) return 'none';
  if (code >= 4200 && code <= 4299) return 'now';
  return 'backoff';
}

/** Close reasons, all ≤ 123 bytes (RFC 6455 control-frame limit). */
export const CloseReason: Record<number, string> = {
  [CloseCode.SESSION_EXPIRED]: 'session expired: log in again',
  [CloseCode.SLOW_CONSUMER]: 'slow consumer: reconnect with backoff',
  [CloseCode.FLOOD]: 'too many messages: reconnect with backoff',
  [CloseCode.HEARTBEAT_TIMEOUT]: 'heartbeat timeout',
  [CloseCode.TOKEN_EXPIRED]: 'token expired: reconnect with a new token',
  [CloseCode.ACCESS_RECHECK_FAILED]: 'access changed: reconnect',
  [CloseCode.SHUTDOWN]: 'server shutting down: reconnect',
};
