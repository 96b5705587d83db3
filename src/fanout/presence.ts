import { presenceEventMessage } from '../protocol/messages.js';
import { textFrame } from './frame.js';
import type { Hub } from './hub.js';
import type { Session } from './session.js';

/** One entry of a `viewers` list (docs/protocol.md §Presence). */
export interface Viewer {
  user_id: number;
  user_login: string;
  user_display_name: string;
}

interface ItemView {
  itemId: number;
  folderId: number;
}

/** What a stop or clear released: the view that ended, or null when there was none to end. */
export interface ItemTarget {
  itemId: number;
  folderId: number;
}

/**
 * Who is looking at which item or KB article ("consultation" presence,
 * docs/protocol.md §Presence), and the `item_viewers_changed` /
 * `kb_viewers_changed` events that tell the others.
 *
 * A view belongs to one socket (one browser tab): at most one item view and
 * one KB view per socket; starting another ends the previous one. Viewer
 * lists are de-duplicated by user and include the viewer. Item events go to
 * the item folder's subscribers, KB events to the KB channel's, through the
 * hub like any event (the viewer's own socket receives one only when it is
 * subscribed). Presence is memory only: never journaled, gone at restart,
 * and its events carry no `id`/`seq`.
 */
export class Presence {
  private readonly itemViews = new Map<Session, ItemView>();
  /** folder → item → sessions viewing it, for `viewing_items` and viewer lists. */
  private readonly byFolder = new Map<number, Map<number, Set<Session>>>();
  private readonly kbViews = new Map<Session, number>();
  private readonly byKb = new Map<number, Set<Session>>();

  constructor(private readonly hub: Hub, private readonly now: () => number = Date.now) {}

  /**
   * Start (or keep) this socket's view of an item. A view of another item
   * ends first, and both targets get an `item_viewers_changed`, old one first.
   * The same view again changes nothing and sends nothing.
   */
  startItemView(session: Session, itemId: number, folderId: number): void {
    const current = this.itemViews.get(session);
    if (current !== undefined && current.itemId === itemId && current.folderId === folderId) return;
    if (current !== undefined) {
      this.removeItemView(session, current);
      this.notifyItem(current.itemId, current.folderId);
    }
    const view = { itemId, folderId };
    this.itemViews.set(session, view);
    let items = this.byFolder.get(folderId);
    if (items === undefined) this.byFolder.set(folderId, (items = new Map()));
    let viewers = items.get(itemId);
    if (viewers === undefined) items.set(itemId, (viewers = new Set()));
    viewers.add(session);
    this.notifyItem(itemId, folderId);
  }

  /**
   * End this socket's item view when it matches the filters (a null filter
   * matches anything), and tell the folder. Returns the ended view, or null.
   */
  stopItemView(session: Session, itemId: number | null, folderId: number | null): ItemTarget | null {
    const current = this.itemViews.get(session);
    if (current === undefined) return null;
    if ((itemId !== null && current.itemId !== itemId) || (folderId !== null && current.folderId !== folderId)) return null;
    this.removeItemView(session, current);
    this.notifyItem(current.itemId, current.folderId);
    return current;
  }

  /** Start (or keep) this socket's view of a KB article; as `startItemView`. */
  startKbView(session: Session, kbId: number): void {
    const current = this.kbViews.get(session);
    if (current === kbId) return;
    if (current !== undefined) {
      this.removeKbView(session, current);
      this.notifyKb(current);
    }
    this.kbViews.set(session, kbId);
    let viewers = this.byKb.get(kbId);
    if (viewers === undefined) this.byKb.set(kbId, (viewers = new Set()));
    viewers.add(session);
    this.notifyKb(kbId);
  }

  /** End this socket's KB view when it matches `kbId` (null: any); returns the ended article or null. */
  stopKbView(session: Session, kbId: number | null): number | null {
    const current = this.kbViews.get(session);
    if (current === undefined || (kbId !== null && current !== kbId)) return null;
    this.removeKbView(session, current);
    this.notifyKb(current);
    return current;
  }

  /** End every view of a socket that closed (both kinds), telling the others. */
  clear(session: Session): void {
    this.stopItemView(session, null, null);
    this.stopKbView(session, null);
  }

  /** Viewers of an item, one entry per user, in the order they started viewing. */
  itemViewers(itemId: number, folderId: number): Viewer[] {
    return viewerList(this.byFolder.get(folderId)?.get(itemId));
  }

  kbViewers(kbId: number): Viewer[] {
    return viewerList(this.byKb.get(kbId));
  }

  /** `viewing_items` of a folder subscribe reply. */
  folderViewing(folderId: number): { item_id: number; viewers: Viewer[] }[] {
    const items = this.byFolder.get(folderId);
    if (items === undefined) return [];
    return [...items].map(([itemId, sessions]) => ({ item_id: itemId, viewers: viewerList(sessions) }));
  }

  /** `viewing_kbs` of a KB subscribe reply. */
  kbViewing(): { kb_id: number; viewers: Viewer[] }[] {
    return [...this.byKb].map(([kbId, sessions]) => ({ kb_id: kbId, viewers: viewerList(sessions) }));
  }

  /** The folder of this socket's item view, or null. */
  itemViewFolder(session: Session): number | null {
    return this.itemViews.get(session)?.folderId ?? null;
  }

  get size(): { items: number; kbs: number } {
    return { items: this.itemViews.size, kbs: this.kbViews.size };
  }

  private removeItemView(session: Session, view: ItemView): void {
    this.itemViews.delete(session);
    const items = this.byFolder.get(view.folderId);
    const viewers = items?.get(view.itemId);
    if (items === undefined || viewers === undefined) return;
    viewers.delete(session);
    if (viewers.size === 0) items.delete(view.itemId);
    if (items.size === 0) this.byFolder.delete(view.folderId);
  }

  private removeKbView(session: Session, kbId: number): void {
    this.kbViews.delete(session);
    const viewers = this.byKb.get(kbId);
    if (viewers === undefined) return;
    viewers.delete(session);
    if (viewers.size === 0) this.byKb.delete(kbId);
  }

  private notifyItem(itemId: number, folderId: number): void {
    const nowMs = this.now();
    const data = { item_id: itemId, folder_id: folderId, viewers: this.itemViewers(itemId, folderId), server_timestamp: Math.floor(nowMs / 1000) };
    this.hub.deliver({ targetType: 'folder', targetId: folderId, excludeUserId: null }, textFrame(JSON.stringify(presenceEventMessage('item_viewers_changed', data, nowMs))));
  }

  private notifyKb(kbId: number): void {
    const nowMs = this.now();
    const data = { kb_id: kbId, viewers: this.kbViewers(kbId), server_timestamp: Math.floor(nowMs / 1000) };
    this.hub.deliver({ targetType: 'kb', targetId: null, excludeUserId: null }, textFrame(JSON.stringify(presenceEventMessage('kb_viewers_changed', data, nowMs))));
  }
}

/** One entry per user (the first of their sockets to start viewing); TeamPass skips user ids ≤ 0. */
function viewerList(sessions: ReadonlySet<Session> | undefined): Viewer[] {
  if (sessions === undefined) return [];
  const seen = new Set<number>();
  const out: Viewer[] = [];
  for (const s of sessions) {
    const id = s.identity.userId;
    if (id <= 0 || seen.has(id)) continue;
    seen.add(id);
    out.push({ user_id: id, user_login: s.identity.login, user_display_name: s.identity.displayName });
  }
  return out;
}
