import type { TargetType } from '../event.js';
import type { Session } from './session.js';

/** What the hub needs of an event to route it. */
export interface RoutedEvent {
  targetType: TargetType;
  targetId: number | null;
  excludeUserId: number | null;
}

export interface HubStats {
  total_connections: number;
  unique_users: number;
  folder_subscriptions: number;
  kb_subscriptions: number;
}

/**
 * Who is connected and subscribed to what, and the routing of an event to
 * sessions (docs/protocol.md §Events):
 * - `user`   → every socket of `target_id` (exclude_user_id not applied, as TeamPass);
 * - `folder` → current subscribers of `target_id`, minus `exclude_user_id`;
 * - `kb`     → KB subscribers, minus `exclude_user_id`;
 * - `broadcast` → every socket, minus `exclude_user_id`.
 * The message is encoded and framed once per event and the same frame goes
 * to every recipient.
 * The hub does not log (its owner does).
 */
export class Hub {
  private readonly sessions = new Set<Session>();
  private readonly byUser = new Map<number, Set<Session>>();
  private readonly byFolder = new Map<number, Set<Session>>();
  private readonly kbSubscribers = new Set<Session>();
  /** Access re-reads under way (src/teampass/event-reactions.ts), by user. */
  private readonly rereads = new Map<number, Promise<void>>();

  get size(): number {
    return this.sessions.size;
  }

  add(session: Session): void {
    this.sessions.add(session);
    let set = this.byUser.get(session.userId);
    if (set === undefined) this.byUser.set(session.userId, (set = new Set()));
    set.add(session);
  }

  remove(session: Session): void {
    if (!this.sessions.delete(session)) return;
    const set = this.byUser.get(session.userId);
    if (set !== undefined) {
      set.delete(session);
      if (set.size === 0) this.byUser.delete(session.userId);
    }
    for (const folderId of session.folders) this.removeFromFolder(session, folderId);
    this.kbSubscribers.delete(session);
  }

  /**
   * Note that the access of `userId` is being read again until `done`
   * settles. Actions of the user's sockets wait for it (`accessReread`), so
   * one that arrives after a `folder_permission_changed` — a subscribe sent
   * on receiving it — gets the new verdict (docs/protocol.md §Access changes).
   */
  accessRereading(userId: number, done: Promise<void>): void {
    this.rereads.set(userId, done);
    const forget = () => {
      if (this.rereads.get(userId) === done) this.rereads.delete(userId);
    };
    done.then(forget, forget);
  }

  /** The access re-read of `userId` under way, or null. */
  accessReread(userId: number): Promise<void> | null {
    return this.rereads.get(userId) ?? null;
  }

  /** Sessions of one user (live view; do not mutate). */
  userSessions(userId: number): ReadonlySet<Session> {
    return this.byUser.get(userId) ?? EMPTY;
  }

  subscribeFolder(session: Session, folderId: number): void {
    session.folders.add(folderId);
    let set = this.byFolder.get(folderId);
    if (set === undefined) this.byFolder.set(folderId, (set = new Set()));
    set.add(session);
  }

  unsubscribeFolder(session: Session, folderId: number): void {
    session.folders.delete(folderId);
    this.removeFromFolder(session, folderId);
  }

  subscribeKb(session: Session): void {
    session.kb = true;
    this.kbSubscribers.add(session);
  }

  unsubscribeKb(session: Session): void {
    session.kb = false;
    this.kbSubscribers.delete(session);
  }

  folderSubscribers(folderId: number): ReadonlySet<Session> {
    return this.byFolder.get(folderId) ?? EMPTY;
  }

  stats(): HubStats {
    return {
      total_connections: this.sessions.size,
      unique_users: this.byUser.size,
      folder_subscriptions: this.byFolder.size,
      kb_subscriptions: this.kbSubscribers.size,
    };
  }

  /**
   * Send one message to every recipient of the event, exclusions applied;
   * returns how many accepted it. Every recipient gets the same WebSocket
   * `frame` (src/fanout/frame.ts), queued for the end of the turn
   * (src/fanout/flush-queue.ts). Walks the live subscriber sets directly: no
   * per-event list, which for a broadcast would be one array entry per
   * connected socket.
   */
  deliver(event: RoutedEvent, frame: Buffer): number {
    let pool: Iterable<Session>;
    switch (event.targetType) {
      case 'user':
        pool = event.targetId === null ? EMPTY : this.userSessions(event.targetId);
        break;
      case 'folder':
        pool = event.targetId === null ? EMPTY : this.folderSubscribers(event.targetId);
        break;
      case 'kb':
        pool = this.kbSubscribers;
        break;
      case 'broadcast':
        pool = this.sessions;
        break;
    }
    // TeamPass applies exclude_user_id to folder, kb and broadcast, never to user targets.
    const exclude = event.targetType === 'user' ? null : event.excludeUserId;
    const folderId = event.targetType === 'folder' ? event.targetId : null;
    let sent = 0;
    for (const s of pool) {
      if (s.userId === exclude) continue;
      if (s.sendFrame(frame, folderId)) sent++;
    }
    return sent;
  }

  private removeFromFolder(session: Session, folderId: number): void {
    const set = this.byFolder.get(folderId);
    if (set === undefined) return;
    set.delete(session);
    if (set.size === 0) this.byFolder.delete(folderId);
  }
}

const EMPTY: ReadonlySet<Session> = new Set();

/**
 * Whether `session` gets this event now (a resume's replay): the routing
 * of `deliver`, with the session's current user, subscriptions and access.
 */
export function entitled(session: Session, event: RoutedEvent, canReadFolder: (folderId: number) => boolean): boolean {
  switch (event.targetType) {
    case 'user':
      return event.targetId === session.userId;
    case 'folder':
      if (event.excludeUserId === session.userId) return false;
      return event.targetId !== null && session.folders.has(event.targetId) && canReadFolder(event.targetId);
    case 'kb':
      return event.excludeUserId !== session.userId && session.kb;
    case 'broadcast':
      return event.excludeUserId !== session.userId;
  }
}
