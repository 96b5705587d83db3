/**
 * Reconnect delays: full-jitter exponential backoff. The n-th retry (n from
 * 0) waits a random time in [0, min(max, min·2^n)), so a thousand browsers
 * dropped by the same daemon restart spread their reconnects over the whole
 * window instead of arriving together. The attempt counter is the caller's
 * rule to reset (after `connected`, never on a bare socket open).
 */
export interface BackoffOptions {
  /** Upper bound of the first retry's window, ms. */
  minDelayMs: number;
  /** Cap of every window, ms. */
  maxDelayMs: number;
  /** A number in [0, 1); Math.random by default, injectable for tests. */
  random?: () => number;
}

export class Backoff {
  private readonly min: number;
  private readonly max: number;
  private readonly random: () => number;
  private attemptCount = 0;

  constructor(options: BackoffOptions) {
    if (!Number.isFinite(options.minDelayMs) || options.minDelayMs < 0) throw new RangeError('minDelayMs must be a number ≥ 0');
    if (!Number.isFinite(options.maxDelayMs) || options.maxDelayMs < options.minDelayMs) {
      throw new RangeError('maxDelayMs must be a number ≥ minDelayMs');
    }
    this.min = options.minDelayMs;
    this.max = options.maxDelayMs;
    this.random = options.random ?? Math.random;
  }

  /** Retries taken since the last reset. */
  get attempts(): number {
    return this.attemptCount;
  }

  /** The upper bound (exclusive) of the window for retry number `attempt`. */
  window(attempt: number): number {
    // 2^attempt overflows to Infinity past ~1023, and Math.min keeps the cap.
    return Math.min(this.max, this.min * 2 ** attempt);
  }

  /** Count one retry and return its delay, ms. */
  next(): number {
    const delay = Math.floor(this.random() * this.window(this.attemptCount));
    this.attemptCount++;
    return delay;
  }

  /**
   * Count one retry that should go at once (close codes 4200–4299): a delay
   * in the first window only, so a restarted daemon is not hit by every
   * client in the same millisecond.
   */
  nextSoon(): number {
    const delay = Math.floor(this.random() * this.window(0));
    this.attemptCount++;
    return delay;
  }

  reset(): void {
    this.attemptCount = 0;
  }
}
