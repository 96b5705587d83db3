import type { Hub } from '../fanout/hub.js';
import type { Presence } from '../fanout/presence.js';
import type { Session } from '../fanout/session.js';
import { sessionLogger, type Logger } from '../log.js';
import type { LockHolder, Store } from '../store/store.js';
import type { History, NotRecovered } from '../pipeline/history.js';
import { displayName } from '../auth/authenticator.js';
import { phpInt } from '../int.js';
import { ErrorCode, Msg, pongMessage, requestError, responseMessage, type RequestId } from '../protocol/messages.js';
import { resume } from './resume.js';

/** Most folders one socket may subscribe to at once (a limit on what a client controls). */
export const MAX_FOLDER_SUBSCRIPTIONS = 1000;

export interface ActionContext {
  readonly hub: Hub;
  readonly presence: Presence;
  readonly store: Store;
  readonly log: Logger;
  readonly editionLockTimeoutSec: number;
  readonly kbLockTimeoutSec: number;
  /** Positions and recent events, for `resume`. */
  readonly history: History;
  /** The socket's byte budget (`limits.maxBufferedBytes`): a resume's replay may use half of it. */
  readonly maxBufferedBytes: number;
  /** Told the outcome of every resume answered, and how many events it replayed. */
  resumed(outcome: ResumeOutcome, replayed: number): void;
}

/** What a resume did, for metrics: `recovered`, or why not. */
export type ResumeOutcome = 'recovered' | NotRecovered;

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
  // [Access changes] An action sees every access change delivered before it arrived: a subscribe
  // sent on receiving folder_permission_changed waits the few ms the new folders take to read.
  const reread = ctx.hub.accessReread(session.userId);
  if (reread !== null) {
    await reread;
    if (session.closed) return null;
  }
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
    case 'renew_item_lock':
      return renewLock(ctx, session, msg, ITEM_LOCK);
    case 'start_item_view':
      return startItemView(ctx, session, msg);
    case 'stop_item_view':
      return stopItemView(ctx, session, msg);
    case 'renew_kb_lock':
      return renewLock(ctx, session, msg, KB_LOCK);
    case 'start_kb_view':
      return startKbView(ctx, session, msg);
    case 'stop_kb_view':
      return stopKbView(ctx, session, msg);
    case 'resume':
      return resume(ctx, session, msg);
    default:
      return requestError(ErrorCode.UNKNOWN_ACTION, Msg.unknownAction(msg.action), rid);
  }
}

/** TeamPass's canAccessFolder: admins any folder id, others their accessible folders (as of now: access changes apply live). */
export function canAccessFolder(session: Session, folderId: number): boolean {
  return session.identity.isAdmin || session.identity.folders.has(folderId);
}

const TAB_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * `data.tab` of a presence action **(tp-ws)**: the tab a view belongs to when
 * the tabs of a browser share one socket (docs/protocol.md §Presence); `''`
 * (the socket's own view, as in TeamPass) when absent; null when malformed.
 */
function tabParam(data: Record<string, unknown>): string | null {
  const t = data.tab;
  if (t === undefined || t === null) return '';
  return typeof t === 'string' && TAB_RE.test(t) ? t : null;
}

const BAD_TAB = 'tab must be 1-64 characters [A-Za-z0-9_-]';

/** A positive id from `data`, PHP-cast; null for a missing, zero or negative one (TeamPass: "≤ 0 is null"). */
function idParam(data: Record<string, unknown>, key: string): number | null {
  const n = phpInt(data[key]);
  return n > 0 ? n : null;
}

interface LockKind {
  param: 'item_id' | 'kb_id';
  required: string;
  noLock: string;
  failed: string;
  renewed: string;
  renew(store: Store, id: number, userId: number): Promise<boolean>;
}

const ITEM_LOCK: LockKind = {
  param: 'item_id', required: Msg.itemIdRequired, noLock: Msg.noItemLock, failed: Msg.renewItemLockFailed, renewed: 'lock_renewed',
  renew: (store, id, userId) => store.renewItemLock(id, userId),
};
const KB_LOCK: LockKind = {
  param: 'kb_id', required: Msg.kbIdRequired, noLock: Msg.noKbLock, failed: Msg.renewKbLockFailed, renewed: 'kb_lock_renewed',
  renew: (store, id, userId) => store.renewKbLock(id, userId),
};

/** `renew_item_lock` / `renew_kb_lock`: the id, (KB: access,) then the renewal of the user's own lock. */
async function renewLock(ctx: ActionContext, session: Session, msg: ClientMessage, kind: LockKind): Promise<Reply> {
  const rid = msg.requestId;
  const id = idParam(msg.data, kind.param);
  if (id === null) return requestError(ErrorCode.INVALID_REQUEST, kind.required, rid);
  if (kind === KB_LOCK && !(await canAccessKb(ctx, session))) return requestError(ErrorCode.FORBIDDEN, Msg.kbForbidden, rid);
  let renewed: boolean;
  try {
    renewed = await kind.renew(ctx.store, id, session.userId);
  } catch (err) {
    sessionLogger(ctx.log, session).warn({ err, [kind.param]: id }, 'could not renew an edit lock');
    return requestError(ErrorCode.SERVER_ERROR, kind.failed, rid);
  }
  if (!renewed) return requestError(ErrorCode.NO_LOCK, kind.noLock, rid);
  return responseMessage(kind.renewed, { [kind.param]: id }, rid);
}

/**
 * The item's folder comes from the database (`data.folder_id` is ignored, as
 * in TeamPass), access is checked against it, then the view starts: the
 * folder's subscribers get `item_viewers_changed` before this reply leaves.
 */
async function startItemView(ctx: ActionContext, session: Session, msg: ClientMessage): Promise<Reply> {
  const rid = msg.requestId;
  const tab = tabParam(msg.data);
  if (tab === null) return requestError(ErrorCode.INVALID_REQUEST, BAD_TAB, rid);
  const itemId = idParam(msg.data, 'item_id');
  if (itemId === null) return requestError(ErrorCode.INVALID_REQUEST, Msg.itemIdRequired, rid);
  const folderId = await ctx.store.itemFolder(itemId);
  if (folderId === null) return requestError(ErrorCode.NOT_FOUND, Msg.itemNotFound, rid);
  if (!canAccessFolder(session, folderId)) return requestError(ErrorCode.FORBIDDEN, Msg.itemFolderForbidden, rid);
  if (session.closed) return null;
  ctx.presence.startItemView(session, itemId, folderId, tab);
  return responseMessage('item_view_started', { item_id: itemId, folder_id: folderId, viewers: ctx.presence.itemViewers(itemId, folderId) }, rid);
}

/** Always a success; the view ends only when it matches the given item and folder. */
async function stopItemView(ctx: ActionContext, session: Session, msg: ClientMessage): Promise<Reply> {
  const tab = tabParam(msg.data);
  if (tab === null) return requestError(ErrorCode.INVALID_REQUEST, BAD_TAB, msg.requestId);
  const itemId = idParam(msg.data, 'item_id');
  let folderId = idParam(msg.data, 'folder_id');
  if (itemId !== null) {
    try {
      folderId = (await ctx.store.itemFolder(itemId)) ?? folderId;
    } catch (err) {
      sessionLogger(ctx.log, session).warn({ err, item_id: itemId }, 'could not read the item\'s folder; stopping the view by item only');
      folderId = null;
    }
  }
  ctx.presence.stopItemView(session, itemId, folderId, tab);
  return responseMessage('item_view_stopped', { item_id: itemId, folder_id: folderId }, msg.requestId);
}

/** KB access first, then the article's existence, then the view (KB subscribers told before the reply). */
async function startKbView(ctx: ActionContext, session: Session, msg: ClientMessage): Promise<Reply> {
  const rid = msg.requestId;
  const tab = tabParam(msg.data);
  if (tab === null) return requestError(ErrorCode.INVALID_REQUEST, BAD_TAB, rid);
  const kbId = idParam(msg.data, 'kb_id');
  if (kbId === null) return requestError(ErrorCode.INVALID_REQUEST, Msg.kbIdRequired, rid);
  if (!(await canAccessKb(ctx, session))) return requestError(ErrorCode.FORBIDDEN, Msg.kbForbidden, rid);
  if (!(await ctx.store.kbExists(kbId))) return requestError(ErrorCode.NOT_FOUND, Msg.kbNotFound, rid);
  if (session.closed) return null;
  ctx.presence.startKbView(session, kbId, tab);
  return responseMessage('kb_view_started', { kb_id: kbId, viewers: ctx.presence.kbViewers(kbId) }, rid);
}

/** No access check (as in TeamPass); always a success. */
function stopKbView(ctx: ActionContext, session: Session, msg: ClientMessage): Reply {
  const tab = tabParam(msg.data);
  if (tab === null) return requestError(ErrorCode.INVALID_REQUEST, BAD_TAB, msg.requestId);
  const kbId = idParam(msg.data, 'kb_id');
  ctx.presence.stopKbView(session, kbId, tab);
  return responseMessage('kb_view_stopped', { kb_id: kbId }, msg.requestId);
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
    if (!canAccessFolder(session, folderId)) return requestError(ErrorCode.FORBIDDEN, Msg.folderForbidden, rid);
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
    if (session.closed) return null;
    return responseMessage('subscribed', {
      channel: 'folder', folder_id: folderId, locked_items: lockList(locked, 'item_id'), viewing_items: ctx.presence.folderViewing(folderId),
    }, rid);
  }
  if (msg.channel === 'kb') {
    if (!(await canAccessKb(ctx, session))) return requestError(ErrorCode.FORBIDDEN, Msg.kbForbidden, rid);
    if (session.closed) return null; // closed while we waited: not in the hub any more
    ctx.hub.subscribeKb(session);
    let locked: LockHolder[] = [];
    try {
      locked = await ctx.store.lockedKbs(session.userId, ctx.kbLockTimeoutSec);
    } catch (err) {
      sessionLogger(ctx.log, session).warn({ err }, 'could not read KB locks; subscribed without them');
    }
    if (session.closed) return null;
    return responseMessage('subscribed', { channel: 'kb', locked_kbs: lockList(locked, 'kb_id'), viewing_kbs: ctx.presence.kbViewing() }, rid);
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
    // Leaving a folder ends this socket's view of an item in it.
    ctx.presence.stopSocketItemViews(session, (viewed) => viewed === folderId);
    return responseMessage('unsubscribed', { channel: 'folder', folder_id: folderId }, rid);
  }
  if (msg.channel === 'kb') {
    ctx.hub.unsubscribeKb(session);
    ctx.presence.stopSocketKbViews(session);
    return responseMessage('unsubscribed', { channel: 'kb' }, rid);
  }
  return requestError(ErrorCode.INVALID_CHANNEL, Msg.channelUnsupported(channelName(msg.channel)), rid);
}

/** TeamPass's canAccessKnowledgeBase: admins refused, others need misc `enable_kb` = 1 (docs/protocol.md §subscribe). */
export async function canAccessKb(ctx: ActionContext, session: Session): Promise<boolean> {
  if (session.identity.isAdmin) return false;
  try {
    const v = await ctx.store.getMisc('enable_kb');
    return v !== null && phpInt(v) === 1;
  } catch (err) {
    sessionLogger(ctx.log, session).warn({ err }, 'could not read misc.enable_kb; KB access refused');
    return false;
  }
}
