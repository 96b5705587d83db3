/**
 * The tp-ws browser client, as an ES module (dist/client/tp-ws-client.mjs)
 * and, through script-tag.ts, as the script TeamPass loads
 * (dist/client/tp-ws-client.js). docs/client.md describes it.
 */
export { TeamPassWebSocket, type ClientEnvironment } from './teampass-websocket.js';
export { CloseCode, reconnectPolicy, type ReconnectPolicy } from '../protocol/close-codes.js';
export type {
  AuthFailedInfo,
  ClientRequest,
  ClientState,
  CloseInfo,
  EventHandler,
  ReconnectFailedInfo,
  RequestError,
  ResumeResult,
  ServerMessage,
  StopReason,
  StreamPosition,
  TabRole,
  TeamPassWebSocketOptions,
  TerminatedInfo,
  WebSocketConstructor,
  WebSocketLike,
  WildcardHandler,
} from './types.js';
export type { BroadcastChannelConstructor, BroadcastChannelLike, LockManagerLike } from './tab-channel.js';
