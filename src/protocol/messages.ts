/**
 * The TeamPass wire dialect (docs/protocol.md): every server
 * message shape and every error code, as pure builders. No Node imports, so
 * the browser client can share it.
 */

/** Client actions the gateway knows: TeamPass's allow-list (docs/protocol.md §Actions). */
export const ACTIONS = [
  'subscribe',
  'unsubscribe',
  'ping',
  'pong',
  'get_status',
  'get_stats',
  'renew_item_lock',
  'start_item_view',
  'stop_item_view',
  'renew_kb_lock',
  'start_kb_view',
  'stop_kb_view',
  // tp-ws extension (docs/protocol.md §Resume); TeamPass's client never sends it.
  'resume',
] as const;
export type Action = (typeof ACTIONS)[number];

export const ErrorCode = {
  RATE_LIMITED: 'rate_limited',
  AUTH_FAILED: 'auth_failed',
  MAX_CONNECTIONS: 'max_connections',
  MESSAGE_TOO_LARGE: 'message_too_large',
  INVALID_JSON: 'invalid_json',
  UNKNOWN_ACTION: 'unknown_action',
  INVALID_REQUEST: 'invalid_request',
  FORBIDDEN: 'forbidden',
  INVALID_CHANNEL: 'invalid_channel',
  NO_LOCK: 'no_lock',
  SERVER_ERROR: 'server_error',
  NOT_FOUND: 'not_found',
  UNAUTHORIZED: 'unauthorized',
} as const;
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Fixed TeamPass messages (docs/protocol.md §Message handling), so replies match the PHP daemon byte for byte where it matters. */
export const Msg = {
  authRateLimited: 'Too many failed authentication attempts.',
  authFailed: 'Authentication required. Provide a valid session or JWT token.',
  maxConnections: (n: number) => `Maximum ${n} simultaneous connections per user.`,
  messageTooLarge: (n: number) => `Message exceeds maximum size of ${n} bytes.`,
  invalidJson: 'Message must be valid JSON.',
  binaryFrame: 'Binary frames are not supported; send JSON text frames.',
  invalidUtf8: 'Message must be valid UTF-8 JSON.',
  notObject: 'Message must be a JSON object.',
  badRequestId: 'request_id must be a string.',
  unknownAction: (a: string) => `Action '${a}' is not recognized`,
  rateLimited: 'Too many requests, please slow down',
  channelRequired: 'Channel is required',
  channelUnsupported: (c: string) => `Channel '${c}' is not supported`,
  folderIdRequired: 'folder_id is required',
  folderForbidden: 'Access denied to this folder',
  kbForbidden: 'Access denied to knowledge base',
  adminRequired: 'Admin access required',
  itemIdRequired: 'item_id is required',
  kbIdRequired: 'kb_id is required',
  itemNotFound: 'Item not found',
  kbNotFound: 'KB article not found',
  itemFolderForbidden: 'Access denied to this item folder',
  noItemLock: 'No active lock found for this item',
  noKbLock: 'No active lock found for this KB article',
  renewItemLockFailed: 'Failed to renew lock',
  renewKbLockFailed: 'Failed to renew KB lock',
  serverError: 'Internal server error',
} as const;

export type RequestId = string | null;

export interface ConnectedInfo {
  userId: number;
  userLogin: string;
  userDisplayName: string;
  serverTime: number;
  pingInterval: number;
  reconnectToken: string | null;
  /** The daemon's epoch and last seq when the socket joined (docs/protocol.md §Resume). */
  epoch: string;
  seq: number;
}

const unix = (ms: number) => Math.floor(ms / 1000);

export function connectedMessage(c: ConnectedInfo): Record<string, unknown> {
  const m: Record<string, unknown> = {
    type: 'connected',
    user_id: c.userId,
    user_login: c.userLogin,
    user_display_name: c.userDisplayName,
    server_time: c.serverTime,
    config: { ping_interval: c.pingInterval },
  };
  // TeamPass sends reconnect_token only for ws_token auth (docs/protocol.md §connected).
  if (c.reconnectToken !== null) m.reconnect_token = c.reconnectToken;
  m.epoch = c.epoch;
  m.seq = c.seq;
  return m;
}

/** Connection-level error: no `request_id` key at all (docs/protocol.md §Message handling). */
export function connectionError(code: ErrorCodeValue, message: string): Record<string, unknown> {
  return { type: 'error', error_code: code, message };
}

/** Handler error: `request_id` always present, null when the client sent none. */
export function requestError(code: ErrorCodeValue, message: string, requestId: RequestId): Record<string, unknown> {
  return { type: 'error', error_code: code, message, request_id: requestId };
}

/** The server heartbeat; `epoch`/`seq`: every event up to there was sent before it (docs/protocol.md §Resume). */
export function pingMessage(nowMs: number, epoch: string, seq: number): Record<string, unknown> {
  return { type: 'ping', timestamp: unix(nowMs), epoch, seq };
}

export function pongMessage(nowMs: number, requestId: RequestId): Record<string, unknown> {
  return { type: 'pong', timestamp: unix(nowMs), request_id: requestId };
}

export function responseMessage(action: string, fields: Record<string, unknown>, requestId: RequestId): Record<string, unknown> {
  return { type: 'response', status: 'success', action, ...fields, request_id: requestId };
}

/**
 * An event the daemon makes itself and does not keep (presence:
 * `item_viewers_changed`, `kb_viewers_changed`): TeamPass's shape, with
 * `timestamp` = now and no `id`/`seq`, since it cannot be resumed.
 */
export function presenceEventMessage(event: string, data: Record<string, unknown>, nowMs: number): Record<string, unknown> {
  return { type: 'event', event, data, timestamp: unix(nowMs) };
}

export interface EventMessageInput {
  eventType: string;
  payloadJson: string;
  createdAtMs: number;
  id: string;
  seq: number;
  epoch: string;
}

/**
 * The `event` message, serialized once per event for every recipient. Built
 * by string concatenation so the payload JSON (already encoded at ingest) is
 * not parsed and re-encoded per fan-out. TeamPass fields first, then our `id`
 * and position, `seq` within `epoch` (ignored by the TeamPass client).
 */
export function encodeEventMessage(e: EventMessageInput): string {
  return (
    '{"type":"event","event":' + JSON.stringify(e.eventType) +
    ',"data":' + e.payloadJson +
    ',"timestamp":' + unix(e.createdAtMs) +
    ',"id":' + JSON.stringify(e.id) +
    ',"seq":' + e.seq +
    ',"epoch":' + JSON.stringify(e.epoch) + '}'
  );
}
