import type { BridgeEvent } from '../event.js';
import type { Hub } from '../fanout/hub.js';
import type { Presence } from '../fanout/presence.js';
import type { Session } from '../fanout/session.js';
import type { Logger } from '../log.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { Store, UserRecord } from '../store/store.js';

/** Clock difference allowed between the daemon and the database when deciding what an expiry covers. */
export const EXPIRY_MARGIN_SEC = 5;

export interface EventReactionsOptions {
  /** Waits between tries to re-read a user's access; one try more than entries. Default [250, 1000]. */
  recheckRetryMs?: readonly number[];
}

export interface EventReactionsDeps {
  hub: Hub;
  presence: Presence;
  store: Pick<Store, 'accessibleFolders' | 'findUser' | 'revokeUserTokens'>;
  log: Logger;
}

export interface EventReactionsCounters {
  /** Access re-reads applied after `folder_permission_changed`. */
  accessRechecks: number;
  /** Folder subscriptions dropped because access was revoked. */
  subscriptionsRevoked: number;
  /** Re-reads that failed every try (the user's sockets were closed with 4104). */
  recheckFailures: number;
  /** Sockets closed by `session_expired` (4001). */
  sessionExpiryCloses: number;
  /** Tokens deleted by `session_expired`. */
  tokensRevoked: number;
}

/**
 * What TeamPass events mean for the sockets, applied after each one is
 * delivered (docs/protocol.md §Access changes, §Session expiry):
 *
 * - `folder_permission_changed` for a user: their accessible folders are
 *   read again, as at login (direct grants ∪ role folders), the new set
 *   replaces the old on every socket of the user, and subscriptions (and an
 *   item view) in folders no longer allowed end. Meanwhile those sockets keep
 *   back what arrives, and then drop the folder events the new set refuses,
 *   so nothing queued behind the change reaches a folder just lost; and
 *   their actions wait (the hub tells the gateway), so a subscribe sent on
 *   receiving the change is answered with the new set. Sent to a folder instead,
 *   the same happens for every user who received it. Sockets opened with a
 *   JWT keep the folders of their token. When the database cannot be read
 *   after a few tries, the user's sockets are closed with 4104 (reconnect):
 *   access is then computed afresh at login, never left stale.
 * - `session_expired` for a user: their sockets are closed with 4001, and
 *   their WebSocket tokens are deleted, so a reconnect gets `auth_failed`.
 *   Only what existed when the event was made is affected (plus a few seconds
 *   for clock differences): a later login keeps its socket and token.
 */
export class EventReactions {
  readonly counters: EventReactionsCounters = { accessRechecks: 0, subscriptionsRevoked: 0, recheckFailures: 0, sessionExpiryCloses: 0, tokensRevoked: 0 };
  private readonly retryMs: readonly number[];
  /** Users whose access is being re-read; `again` when another change arrived meanwhile. */
  private readonly rechecking = new Map<number, { again: boolean }>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly d: EventReactionsDeps, o: EventReactionsOptions = {}) {
    this.retryMs = o.recheckRetryMs ?? [250, 1000];
  }

  /** Called by the pipeline right after an event was fanned out (never for a duplicate). */
  delivered(event: BridgeEvent): void {
    if (this.closed) return;
    if (event.eventType === 'folder_permission_changed') {
      if (event.targetType === 'user' && event.targetId !== null) this.recheck(event.targetId);
      else if (event.targetType === 'folder' && event.targetId !== null) {
        const users = new Set<number>();
        for (const s of this.d.hub.folderSubscribers(event.targetId)) if (s.userId !== event.excludeUserId) users.add(s.userId);
        for (const u of users) this.recheck(u);
      }
    } else if (event.eventType === 'session_expired' && event.targetType === 'user' && event.targetId !== null) {
      this.expire(event.targetId, event.createdAt);
    }
  }

  /** Wait for reactions under way (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
  }

  private track(p: Promise<void>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private recheck(userId: number): void {
    const state = this.rechecking.get(userId);
    if (state !== undefined) {
      state.again = true;
      return;
    }
    if (!this.hasTokenSessions(userId)) return;
    const fresh = { again: false };
    this.rechecking.set(userId, fresh);
    // Until the new access is applied, the user's sockets keep back what comes next (an
    // event for the folder just lost may already be behind this one in the same batch).
    const held = this.tokenSessions(userId);
    for (const s of held) s.hold();
    const done = (async () => {
      try {
        do {
          fresh.again = false;
          await this.recheckOnce(userId);
        } while (fresh.again && !this.closed);
      } finally {
        this.rechecking.delete(userId);
        for (const s of held) s.release((f) => s.identity.isAdmin || s.identity.folders.has(f));
      }
    })();
    this.track(done);
    // Their actions (a subscribe sent on receiving the change) wait for the new set too.
    this.d.hub.accessRereading(userId, done);
  }

  private hasTokenSessions(userId: number): boolean {
    for (const s of this.d.hub.userSessions(userId)) if (s.identity.authMethod === 'ws_token') return true;
    return false;
  }

  private async recheckOnce(userId: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const [folders, user] = await Promise.all([this.d.store.accessibleFolders(userId), this.d.store.findUser(userId)]);
        this.apply(userId, new Set(folders), user);
        return;
      } catch (err) {
        if (attempt >= this.retryMs.length || this.closed) {
          this.counters.recheckFailures++;
          const sockets = this.tokenSessions(userId);
          this.d.log.error({ err, user_id: userId, sockets: sockets.length }, 'could not re-read a user\'s folder access after folder_permission_changed; closing their sockets (4104) so they log in again');
          for (const s of sockets) s.close(CloseCode.ACCESS_RECHECK_FAILED);
          return;
        }
        await new Promise((r) => setTimeout(r, this.retryMs[attempt]));
      }
    }
  }

  private tokenSessions(userId: number): Session[] {
    return [...this.d.hub.userSessions(userId)].filter((s) => s.identity.authMethod === 'ws_token');
  }

  /** A user no longer enabled (disabled, deleted) keeps no folder and no admin right. */
  private apply(userId: number, folders: Set<number>, user: UserRecord | null): void {
    const isAdmin = user?.isAdmin ?? false;
    const allowed = user === null ? new Set<number>() : folders;
    let dropped = 0;
    for (const s of this.tokenSessions(userId)) {
      s.identity.folders = allowed;
      s.identity.isAdmin = isAdmin;
      if (isAdmin) continue;
      for (const f of [...s.folders]) {
        if (allowed.has(f)) continue;
        this.d.hub.unsubscribeFolder(s, f);
        dropped++;
      }
      this.d.presence.stopSocketItemViews(s, (viewed) => !allowed.has(viewed));
    }
    this.counters.accessRechecks++;
    this.counters.subscriptionsRevoked += dropped;
    this.d.log.info({ user_id: userId, folders: allowed.size, is_admin: isAdmin, subscriptions_dropped: dropped }, 'folder access re-read after folder_permission_changed');
  }

  private expire(userId: number, createdAtMs: number): void {
    const upTo = Math.floor(createdAtMs / 1000) + EXPIRY_MARGIN_SEC;
    let closed = 0;
    for (const s of [...this.d.hub.userSessions(userId)]) {
      if (s.connectedAt >= upTo * 1000) continue; // opened after the expiry: a new login
      s.close(CloseCode.SESSION_EXPIRED);
      closed++;
    }
    this.counters.sessionExpiryCloses += closed;
    this.track((async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          const n = await this.d.store.revokeUserTokens(userId, upTo);
          this.counters.tokensRevoked += n;
          this.d.log.info({ user_id: userId, sockets_closed: closed, tokens_revoked: n }, 'session_expired: sockets closed and tokens revoked');
          return;
        } catch (err) {
          if (attempt >= this.retryMs.length || this.closed) {
            this.d.log.error({ err, user_id: userId, sockets_closed: closed }, 'session_expired: could not revoke the user\'s tokens; they stay valid until they expire');
            return;
          }
          await new Promise((r) => setTimeout(r, this.retryMs[attempt]));
        }
      }
    })());
  }
}
