/**
 * Sliding-log limiter for one socket (docs/protocol.md §Message handling, as TeamPass's): at most `limit`
 * accepted messages within any `windowMs`. Rejected messages are not recorded,
 * as in TeamPass. Memory is one fixed ring of `limit` timestamps.
 */
export class SlidingLog {
  private readonly stamps: Float64Array;
  private head = 0;
  private count = 0;
  private rejectedInWindow = 0;
  private rejectWindowStart = 0;

  constructor(private readonly limit: number, private readonly windowMs: number) {
    this.stamps = new Float64Array(limit);
  }

  /** Record and allow, or refuse, a message at `now`. */
  take(now: number): boolean {
    if (this.count < this.limit) {
      this.stamps[(this.head + this.count) % this.limit] = now;
      this.count++;
      return true;
    }
    if (now - this.stamps[this.head] >= this.windowMs) {
      this.stamps[this.head] = now;
      this.head = (this.head + 1) % this.limit;
      return true;
    }
    if (now - this.rejectWindowStart >= this.windowMs) {
      this.rejectWindowStart = now;
      this.rejectedInWindow = 0;
    }
    this.rejectedInWindow++;
    return false;
  }

  /** Refusals within the current window (flood detection). */
  get rejections(): number {
    return this.rejectedInWindow;
  }

  /**
   * True when every message and refusal recorded is at least `windowMs` old
   * at `now`: a new limiter would decide every later message the same way,
   * so an idle socket's owner may drop this one and make a new one when the
   * socket speaks again (a sleeping socket then holds no limiter at all).
   */
  idle(now: number): boolean {
    if (this.count > 0 && now - this.stamps[(this.head + this.count - 1) % this.limit] < this.windowMs) return false;
    return this.rejectedInWindow === 0 || now - this.rejectWindowStart >= this.windowMs;
  }
}

/**
 * Failed authentications per client IP within a sliding window
 * (docs/protocol.md §Authentication, the first check). Bounded: at most `maxIps` addresses are tracked; the oldest entry
 * is evicted first, so an address flood cannot grow memory.
 */
export class AuthFailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly limit: number, private readonly windowMs: number, private readonly maxIps = 100_000) {}

  /** True when `ip` already has `limit` failures in the window. */
  isBlocked(ip: string, now: number): boolean {
    const list = this.failures.get(ip);
    if (list === undefined) return false;
    this.prune(ip, list, now);
    return list.length >= this.limit;
  }

  recordFailure(ip: string, now: number): void {
    let list = this.failures.get(ip);
    if (list === undefined) {
      if (this.failures.size >= this.maxIps) this.failures.delete(this.failures.keys().next().value as string);
      this.failures.set(ip, (list = []));
    }
    list.push(now);
    if (list.length > this.limit) list.splice(0, list.length - this.limit);
  }

  /** Drop expired entries of every address (called from a periodic timer). */
  sweep(now: number): void {
    for (const [ip, list] of this.failures) this.prune(ip, list, now);
  }

  get trackedIps(): number {
    return this.failures.size;
  }

  private prune(ip: string, list: number[], now: number): void {
    let i = 0;
    while (i < list.length && now - list[i] >= this.windowMs) i++;
    if (i > 0) list.splice(0, i);
    if (list.length === 0) this.failures.delete(ip);
  }
}
