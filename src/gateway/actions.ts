import type { Hub } from '../fanout/hub.js';
import type { Session } from '../fanout/session.js';
import { sessionLogger, type Logger } from '../log.js';
import type { LockHolder, Store } from '../store/store.js';
import { displayName } from '../auth/authenticator.js';
import { phpInt } from '../int.js';
import { ErrorCode, Msg, pongMessage, requestError, responseMessage, type RequestId } from '../protocol/messages.js';

/** Most folders one socket may subscribe to at once (a limit on what a client controls). */
export const MAX_FOLDER_SUBSCRIPTIONS = 1000;

export interface ActionContext {
  readonly hub: Hub;
  readonly store: Store;
  readonly log: Logger;
  readonly editionLockTimeoutSec: number;
  readonly kbLockTimeoutSec: number;
}

/** A validated client message: `action` known, `request_id` a string or null. */
export interface ClientMessage {
  action: string;
  requestId: RequestId;
  channel: unknown;
  data: Record<string, unknown>;
}

type Reply = Record<string, unknown> | null;

/** How a non-string channel renders in `Channel '…' is not supported`, bounded in length. */
function channelName(c: unknown): string {
  if (typeof c === 'string') return c.slice(0, 100);
  if (Array.isArray(c)) return 'Array';
  if (c === null || c === undefined || c === false) return '';
  return typeof c === 'object' ? 'Array' : String(c).slice(0, 100);
}

function lockList(rows: LockHolder[], idKey: 'item_id' | 'kb_id'): Record<string, unknown>[] {
  return rows.map((r) => ({ [idKey]: r.id, user_login: r.userLogin, user_display_name: displayName(r.userLogin, r.userName, r.userLastname) }));
}

/**
 * Handle one client action for an authenticated session and return the reply
 * (null for `pong`, which TeamPass never answers). Reply shapes and error
 * strings follow docs/protocol.md §Actions exactly.
 */
export async function handleAction(ctx: ActionContext, session: Session, msg: ClientMessage, now: number): Promise<Reply> {
  const rid = msg.requestId;
  switch (msg.action) {
    case 'ping':
      session.lastSeen = now;
      return pongMessage(now, rid);
    case 'pong':
      session.lastSeen = now;
      return null;
    case 'get_status':
      return {
        type: 'status',
        connected: true,
        user_id: session.identity.userId,
        user_login: session.identity.login,
        user_display_name: session.identity.displayName,
        auth_method: session.identity.authMethod,
        subscriptions: session.subscriptionKeys(),
        connected_at: Math.floor(session.connectedAt / 1000),
        server_time: Math.floor(now / 1000),
        request_id: rid,
      };
    case 'get_stats':
      if (!session.identity.isAdmin) return requestError(ErrorCode.FORBIDDEN, Msg.adminRequired, rid);
      return { type: 'stats', stats: ctx.hub.stats(), server_time: Math.floor(now / 1000), request_id: rid };
    case 'subscribe':
      return subscribe(ctx, session, msg);
    case 'unsubscribe':
      return unsubscribe(ctx, session, msg);
    default:
      // [PROTO-ACTIONS] presence and lock actions arrive with the presence work; until then they are unknown.
      return requestError(ErrorCode.UNKNOWN_ACTION, Msg.unknownAction(msg.action), rid);
  }
}

async function subscribe(ctx: ActionContext, session: Session, msg: ClientMessage): Promise<Reply> {
  const rid = msg.requestId;
  if (!msg.channel) return requestError(ErrorCode.INVALID_REQUEST, Msg.channelRequired, rid);
  if (msg.channel === 'folder') {
    // TeamPass answers a missing folder_id with invalid_request, before any access check.
    if (msg.data.folder_id === undefined || msg.data.folder_id === null) {
      return requestError(ErrorCode.INVALID_REQUEST, Msg.folderIdRequired, rid);
    }
    const folderId = phpInt(msg.data.folder_id);
    if (!session.identity.isAdmin && !session.identity.folders.has(folderId)) {
      return requestError(ErrorCode.FORBIDDEN, Msg.folderForbidden, rid);
    }
    if (!session.folders.has(folderId) && session.folders.size >= MAX_FOLDER_SUBSCRIPTIONS) {
      return requestError(ErrorCode.INVALID_REQUEST, `At most ${MAX_FOLDER_SUBSCRIPTIONS} folder subscriptions per connection`, rid);
    }
    ctx.hub.subscribeFolder(session, folderId);
    let locked: LockHolder[] = [];
    try {
      locked = await ctx.store.lockedItems(folderId, session.userId, ctx.editionLockTimeoutSec);
    } catch (err) {
      sessionLogger(ctx.log, session).warn({ err, folderId }, 'could not read item locks; subscribed without them');
    }
    return responseMessage('subscribed', { channel: 'folder', folder_id: folderId, locked_items: lockList(locked, 'item_id'), viewing_items: [] }, rid);
  }
  if (msg.channel === 'kb') {
    if (!(await canAccessKb(ctx, session))) return requestError(ErrorCode.FORBIDDEN, Msg.kbForbidden, rid);
    ctx.hub.subscribeKb(session);
    let locked: LockHolder[] = [];
    try {
      locked = await ctx.store.lockedKbs(session.userId, ctx.kbLockTimeoutSec);
    } catch (err) {
      sessionLogger(ctx.log, session).warn({ err }, 'could not read KB locks; subscribed without them');
    }
    return responseMessage('subscribed', { channel: 'kb', locked_kbs: lockList(locked, 'kb_id'), viewing_kbs: [] }, rid);
  }
  return requestError(ErrorCode.INVALID_CHANNEL, Msg.channelUnsupported(channelName(msg.channel)), rid);
}

function unsubscribe(ctx: ActionContext, session: Session, msg: ClientMessage): Reply {
  const rid = msg.requestId;
  if (msg.channel === 'folder') {
    if (msg.data.folder_id === undefined || msg.data.folder_id === null) {
      return requestError(ErrorCode.INVALID_REQUEST, Msg.folderIdRequired, rid);
    }
    const folderId = phpInt(msg.data.folder_id);
    ctx.hub.unsubscribeFolder(session, folderId);
    return responseMessage('unsubscribed', { channel: 'folder', folder_id: folderId }, rid);
  }
  if (msg.channel === 'kb') {
    ctx.hub.unsubscribeKb(session);
    return responseMessage('unsubscribed', { channel: 'kb' }, rid);
  }
  return requestError(ErrorCode.INVALID_CHANNEL, Msg.channelUnsupported(channelName(msg.channel)), rid);
}

/** TeamPass's canAccessKnowledgeBase: admins refused, others need misc `enable_kb` = 1 (docs/protocol.md §subscribe). */
async function canAccessKb(ctx: ActionContext, session: Session): Promise<boolean> {
  if (session.identity.isAdmin) return false;
  try {
    const v = await ctx.store.getMisc('enable_kb');
    return v !== null && phpInt(v) === 1;
  } catch (err) {
    sessionLogger(ctx.log, session).warn({ err }, 'could not read misc.enable_kb; KB access refused');
    return false;
  }
}
