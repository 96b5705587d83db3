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

/**
 * Who a view belongs to: a socket, and within it a tab (`data.tab`, for the
 * tabs of a browser that share one socket, docs/client.md); `''` is the
 * socket's own view, as in TeamPass. One object per (socket, tab), made at
 * its first view and dropped with its last.
 */
interface Slot {
  readonly session: Session;
  readonly tab: string;
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
 * A view belongs to one socket (one browser tab), or to one tab of the tabs
 * sharing a socket: at most one item view and one KB view per socket and tab;
 * starting another ends the previous one. Viewer
 * lists are de-duplicated by user and include the viewer. Item events go to
 * the item folder's subscribers, KB events to the KB channel's, through the
 * hub like any event (the viewer's own socket receives one only when it is
 * subscribed). Presence is memory only: never journaled, gone at restart,
 * and its events carry no `id`/`seq`.
 */
export class Presence {
  private readonly itemViews = new Map<Slot, ItemView>();
  /** folder → item → slots viewing it, for `viewing_items` and viewer lists. */
  private readonly byFolder = new Map<number, Map<number, Set<Slot>>>();
  private readonly kbViews = new Map<Slot, number>();
  private readonly byKb = new Map<number, Set<Slot>>();
  /** The slots of each socket that has a view, by tab. */
  private readonly slots = new Map<Session, Map<string, Slot>>();

  constructor(private readonly hub: Hub, private readonly now: () => number = Date.now) {}

  /** The slot of (session, tab), made when `create`; null when it has no view. */
  private slot(session: Session, tab: string, create: true): Slot;
  private slot(session: Session, tab: string, create: false): Slot | null;
  private slot(session: Session, tab: string, create: boolean): Slot | null {
    let tabs = this.slots.get(session);
    let slot = tabs?.get(tab);
    if (slot !== undefined) return slot;
    if (!create) return null;
    if (tabs === undefined) this.slots.set(session, (tabs = new Map()));
    slot = { session, tab };
    tabs.set(tab, slot);
    return slot;
  }

  /** Forget a slot left with no view. */
  private forget(slot: Slot): void {
    if (this.itemViews.has(slot) || this.kbViews.has(slot)) return;
    const tabs = this.slots.get(slot.session);
    if (tabs === undefined) return;
    tabs.delete(slot.tab);
    if (tabs.size === 0) this.slots.delete(slot.session);
  }

  /**
   * Start (or keep) this socket's view of an item. A view of another item
   * ends first, and both targets get an `item_viewers_changed`, old one first.
   * The same view again changes nothing and sends nothing.
   */
  startItemView(session: Session, itemId: number, folderId: number, tab = ''): void {
    const slot = this.slot(session, tab, true);
    const current = this.itemViews.get(slot);
    if (current !== undefined && current.itemId === itemId && current.folderId === folderId) return;
    if (current !== undefined) {
      this.removeItemView(slot, current);
      this.notifyItem(current.itemId, current.folderId);
    }
    const view = { itemId, folderId };
    this.itemViews.set(slot, view);
    let items = this.byFolder.get(folderId);
    if (items === undefined) this.byFolder.set(folderId, (items = new Map()));
    let viewers = items.get(itemId);
    if (viewers === undefined) items.set(itemId, (viewers = new Set()));
    viewers.add(slot);
    this.notifyItem(itemId, folderId);
  }

  /**
   * End this socket's (and tab's) item view when it matches the filters (a
   * null filter matches anything), and tell the folder. Returns the ended
   * view, or null.
   */
  stopItemView(session: Session, itemId: number | null, folderId: number | null, tab = ''): ItemTarget | null {
    const slot = this.slot(session, tab, false);
    return slot === null ? null : this.stopSlotItemView(slot, itemId, folderId);
  }

  private stopSlotItemView(slot: Slot, itemId: number | null, folderId: number | null): ItemTarget | null {
    const current = this.itemViews.get(slot);
    if (current === undefined) return null;
    if ((itemId !== null && current.itemId !== itemId) || (folderId !== null && current.folderId !== folderId)) return null;
    this.removeItemView(slot, current);
    this.notifyItem(current.itemId, current.folderId);
    this.forget(slot);
    return current;
  }

  /** Start (or keep) this socket's (and tab's) view of a KB article; as `startItemView`. */
  startKbView(session: Session, kbId: number, tab = ''): void {
    const slot = this.slot(session, tab, true);
    const current = this.kbViews.get(slot);
    if (current === kbId) return;
    if (current !== undefined) {
      this.removeKbView(slot, current);
      this.notifyKb(current);
    }
    this.kbViews.set(slot, kbId);
    let viewers = this.byKb.get(kbId);
    if (viewers === undefined) this.byKb.set(kbId, (viewers = new Set()));
    viewers.add(slot);
    this.notifyKb(kbId);
  }

  /** End this socket's (and tab's) KB view when it matches `kbId` (null: any); returns the ended article or null. */
  stopKbView(session: Session, kbId: number | null, tab = ''): number | null {
    const slot = this.slot(session, tab, false);
    return slot === null ? null : this.stopSlotKbView(slot, kbId);
  }

  private stopSlotKbView(slot: Slot, kbId: number | null): number | null {
    const current = this.kbViews.get(slot);
    if (current === undefined || (kbId !== null && current !== kbId)) return null;
    this.removeKbView(slot, current);
    this.notifyKb(current);
    this.forget(slot);
    return current;
  }

  /** End every item view of a socket (every tab's) in a folder `ends` picks, telling the folders. */
  stopSocketItemViews(session: Session, ends: (folderId: number) => boolean): void {
    const tabs = this.slots.get(session);
    if (tabs === undefined) return;
    for (const slot of [...tabs.values()]) {
      const view = this.itemViews.get(slot);
      if (view !== undefined && ends(view.folderId)) this.stopSlotItemView(slot, null, null);
    }
  }

  /** End every KB view of a socket (every tab's). */
  stopSocketKbViews(session: Session): void {
    const tabs = this.slots.get(session);
    if (tabs === undefined) return;
    for (const slot of [...tabs.values()]) this.stopSlotKbView(slot, null);
  }

  /** End every view of a socket that closed (both kinds, every tab), telling the others. */
  clear(session: Session): void {
    this.stopSocketItemViews(session, () => true);
    this.stopSocketKbViews(session);
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

  get size(): { items: number; kbs: number } {
    return { items: this.itemViews.size, kbs: this.kbViews.size };
  }

  private removeItemView(slot: Slot, view: ItemView): void {
    this.itemViews.delete(slot);
    const items = this.byFolder.get(view.folderId);
    const viewers = items?.get(view.itemId);
    if (items === undefined || viewers === undefined) return;
    viewers.delete(slot);
    if (viewers.size === 0) items.delete(view.itemId);
    if (items.size === 0) this.byFolder.delete(view.folderId);
  }

  private removeKbView(slot: Slot, kbId: number): void {
    this.kbViews.delete(slot);
    const viewers = this.byKb.get(kbId);
    if (viewers === undefined) return;
    viewers.delete(slot);
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

/** One entry per user (the first of their sockets or tabs to start viewing); TeamPass skips user ids ≤ 0. */
function viewerList(slots: ReadonlySet<Slot> | undefined): Viewer[] {
  if (slots === undefined) return [];
  const seen = new Set<number>();
  const out: Viewer[] = [];
  for (const { session: s } of slots) {
    const id = s.identity.userId;
    if (id <= 0 || seen.has(id)) continue;
    seen.add(id);
    out.push({ user_id: id, user_login: s.identity.login, user_display_name: s.identity.displayName });
  }
  return out;
}
