import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';

export interface ReconnectTokensOptions {
  /** Lifetime a token is pushed to on every refresh (`auth.reconnectTokenTtlSec`). */
  ttlSec: number;
  /** How often the tokens of open sockets are pushed forward. Default: a quarter of the TTL, at most 15 min. */
  intervalMs?: number;
}

/**
 * Keeps the reconnect token of every open socket valid (docs/protocol.md
 * §Reconnect tokens that outlive the socket). TeamPass issues one per
 * connection with a one-hour life and never renews it, so a socket older
 * than an hour could not reconnect after a drop.
 *
 * Every `intervalMs` the tokens of open sockets get `expires_at = now + TTL`
 * (in chunks, by the store); a token whose socket closed gets it once more,
 * so it stays good for a full TTL after the drop. A failed update is retried
 * at the next refresh.
 */
export class ReconnectTokens {
  /** Tokens of open sockets. */
  private readonly open = new Set<string>();
  /** Tokens to extend at the next flush (closed sockets, failed updates). */
  private readonly due = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private flushQueued = false;

  constructor(private readonly store: Pick<Store, 'extendTokens'>, private readonly log: Logger, private readonly o: ReconnectTokensOptions) {}

  /** Start the periodic refresh. */
  start(): void {
    const ttlMs = this.o.ttlSec * 1000;
    this.timer = setInterval(() => void this.refresh(), this.o.intervalMs ?? Math.min(ttlMs / 4, 15 * 60_000));
    this.timer.unref();
  }

  /** A socket opened with this reconnect token. */
  opened(token: string): void {
    this.open.add(token);
  }

  /** Its socket closed: the token is extended once more, soon (batched with others closing now). */
  closed(token: string): void {
    this.open.delete(token);
    this.due.add(token);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => {
      this.flushQueued = false;
      void this.flush();
    });
  }

  /** Extend the tokens of every open socket, and those due. */
  async refresh(): Promise<void> {
    for (const t of this.open) this.due.add(t);
    await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.due.size === 0) return;
    const tokens = [...this.due];
    this.due.clear();
    try {
      await this.store.extendTokens(tokens, this.o.ttlSec);
    } catch (err) {
      this.log.warn({ err, count: tokens.length }, 'could not extend reconnect tokens; will retry');
      for (const t of tokens) this.due.add(t);
    }
  }

  /** Stop refreshing; extend what is due (the tokens of sockets just closed). Idempotent. */
  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
