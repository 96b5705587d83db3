import type { Logger } from '../log.js';
import type { ReleasedLocks, Store } from '../store/store.js';

/** Who left: the identity the `*_edition_stopped` payload names. */
export interface DepartedUser {
  userId: number;
  login: string;
  displayName: string;
}

export interface LockReleaserOptions {
  /** Wait after a user's last socket closed before releasing (`teampass.lockReleaseGraceMs`). */
  graceMs: number;
  /** Delay before another try when the store failed; default 5000. */
  retryMs?: number;
  /** Tries before giving up on one release (TeamPass's own stale-lock sweep then takes over); default 3. */
  maxAttempts?: number;
}

export interface LockReleaserDeps {
  store: Pick<Store, 'releaseUserLocks' | 'getMisc'>;
  /** True while the user has at least one open socket. */
  connected(userId: number): boolean;
  /** Hand an event to the normal event path (fan-out, journal, dedup); false when it was refused. */
  publish(event: Record<string, unknown>): boolean;
  log: Logger;
}

export interface LockReleaserCounters {
  /** Releases that ran (a user left and did not come back within the grace). */
  releases: number;
  /** Releases cancelled by the user reconnecting within the grace. */
  cancelled: number;
  /** Locks deleted. */
  locksReleased: number;
  /** Store failures (each try counts). */
  failures: number;
}

/**
 * Releases the TeamPass edit locks (`items_edition`, `kb_edition`) of a user
 * whose last socket closed, after a grace period (docs/protocol.md §Edit locks of a user who left):
 * a page navigation closes the old socket before the new page's opens, and
 * must not release a lock still in use. A socket of the user opening within
 * the grace cancels the release.
 *
 * Each released lock becomes an `item_edition_stopped` / `kb_edition_stopped`
 * event with `reason: "disconnected"`, published on the normal path (fanned
 * out, journaled). Its id is derived from the lock (item, user, lock time), so
 * the same release seen twice is one event. As in TeamPass, no event is sent
 * while misc `websocket_enabled` is set to something other than '1'.
 *
 * Pending releases are dropped at shutdown: sockets closed by a restart come
 * back, and TeamPass's own lock timeout covers a user who does not.
 */
export class LockReleaser {
  readonly counters: LockReleaserCounters = { releases: 0, cancelled: 0, locksReleased: 0, failures: 0 };
  private readonly timers = new Map<number, NodeJS.Timeout>();
  /** Releases whose grace is over and that are reading or deleting the locks now. */
  private running = 0;
  private readonly retryMs: number;
  private readonly maxAttempts: number;
  private closed = false;

  private graceMs: number;

  constructor(o: LockReleaserOptions, private readonly d: LockReleaserDeps) {
    this.graceMs = o.graceMs;
    this.retryMs = o.retryMs ?? 5000;
    this.maxAttempts = o.maxAttempts ?? 3;
  }

  /** A new grace period for the next departures (configuration reload). */
  setGraceMs(ms: number): void {
    this.graceMs = ms;
  }

  /** The user's last socket closed: release their locks after the grace unless they come back. */
  userLeft(user: DepartedUser): void {
    if (this.closed || this.timers.has(user.userId)) return;
    this.schedule(user, this.graceMs, 1);
  }

  /** A socket of the user opened: a pending release is cancelled. */
  userArrived(userId: number): void {
    const t = this.timers.get(userId);
    if (t === undefined) return;
    clearTimeout(t);
    this.timers.delete(userId);
    this.counters.cancelled++;
  }

  /** Releases waiting for their grace to end, or under way (for tests and status). */
  get pending(): number {
    return this.timers.size + this.running;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private schedule(user: DepartedUser, delayMs: number, attempt: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(user.userId);
      this.running++;
      void this.release(user, attempt).finally(() => this.running--);
    }, delayMs);
    timer.unref();
    this.timers.set(user.userId, timer);
  }

  private async release(user: DepartedUser, attempt: number): Promise<void> {
    if (this.closed || this.d.connected(user.userId)) return;
    let released: ReleasedLocks;
    try {
      released = await this.d.store.releaseUserLocks(user.userId);
    } catch (err) {
      this.counters.failures++;
      if (attempt < this.maxAttempts && !this.closed) {
        this.d.log.warn({ err, user_id: user.userId, attempt }, 'could not release the edit locks of a user who left; trying again');
        this.schedule(user, this.retryMs, attempt + 1);
      } else {
        this.d.log.error({ err, user_id: user.userId }, 'could not release the edit locks of a user who left; TeamPass\'s lock timeout will free them');
      }
      return;
    }
    this.counters.releases++;
    const n = released.items.length + released.kbs.length;
    if (n === 0) return;
    this.counters.locksReleased += n;
    this.d.log.info({ user_id: user.userId, items: released.items.map((l) => l.itemId), kbs: released.kbs.map((l) => l.kbId) }, 'released edition locks of a user who left');
    if (!(await this.eventsEnabled())) return;
    const now = Math.floor(Date.now() / 1000);
    const who = { user_login: user.login, user_display_name: user.displayName, user_id: user.userId };
    for (const l of released.items) {
      if (l.folderId === null || l.folderId === 0) {
        // No folder can be addressed (item deleted, or TeamPass's root): nobody could receive it.
        this.d.log.info({ user_id: user.userId, item_id: l.itemId }, 'released a lock on an item with no folder; no event sent');
        continue;
      }
      this.d.publish({
        id: `tpws-unlock-item-${l.itemId}-${user.userId}-${l.timestamp}`,
        event_type: 'item_edition_stopped', target_type: 'folder', target_id: l.folderId,
        payload: { item_id: l.itemId, folder_id: l.folderId, ...who, reason: 'disconnected', server_timestamp: now },
      });
    }
    for (const l of released.kbs) {
      this.d.publish({
        id: `tpws-unlock-kb-${l.kbId}-${user.userId}-${l.timestamp}`,
        event_type: 'kb_edition_stopped', target_type: 'kb',
        payload: { kb_id: l.kbId, ...who, reason: 'disconnected', server_timestamp: now },
      });
    }
  }

  /** TeamPass's gate: misc `websocket_enabled` = '1'. Absent (not a TeamPass database) or unreadable counts as on. */
  private async eventsEnabled(): Promise<boolean> {
    let v: string | null;
    try {
      v = await this.d.store.getMisc('websocket_enabled');
    } catch {
      return true;
    }
    if (v === null || v === '1') return true;
    this.d.log.info({ websocket_enabled: v }, 'misc websocket_enabled is not 1: no *_edition_stopped events for released locks');
    return false;
  }
}
