import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/client/backoff.js';

/** A random source that returns the given values in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

describe('Backoff (full jitter)', () => {
  it('doubles the window from the minimum up to the maximum', () => {
    const b = new Backoff({ minDelayMs: 500, maxDelayMs: 20_000 });
    expect([0, 1, 2, 3, 4, 5, 6, 7, 50, 2000].map((n) => b.window(n))).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 20_000, 20_000, 20_000, 20_000]);
  });

  it('draws each delay in [0, window): random 0 gives 0, random just below 1 stays below the window', () => {
    const low = new Backoff({ minDelayMs: 500, maxDelayMs: 20_000, random: () => 0 });
    expect([low.next(), low.next(), low.next()]).toEqual([0, 0, 0]);
    const high = new Backoff({ minDelayMs: 500, maxDelayMs: 20_000, random: () => 0.999_999 });
    const delays = Array.from({ length: 8 }, () => high.next());
    expect(delays).toEqual([499, 999, 1999, 3999, 7999, 15_999, 19_999, 19_999]);
  });

  it('scales the window by the random draw (full jitter, not equal jitter)', () => {
    const b = new Backoff({ minDelayMs: 1000, maxDelayMs: 60_000, random: sequence(0.5, 0.25, 0.1) });
    expect([b.next(), b.next(), b.next()]).toEqual([500, 500, 400]);
  });

  it('counts attempts, and reset() starts the schedule over', () => {
    const b = new Backoff({ minDelayMs: 100, maxDelayMs: 1000, random: () => 0.999_999 });
    b.next();
    b.next();
    b.next();
    expect(b.attempts).toBe(3);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(99);
  });

  it('nextSoon() counts an attempt but stays in the first window', () => {
    const b = new Backoff({ minDelayMs: 500, maxDelayMs: 20_000, random: () => 0.999_999 });
    for (let i = 0; i < 6; i++) b.next();
    expect(b.nextSoon()).toBe(499);
    expect(b.attempts).toBe(7);
  });

  it('refuses a maximum below the minimum, or a negative minimum', () => {
    expect(() => new Backoff({ minDelayMs: 500, maxDelayMs: 100 })).toThrow(RangeError);
    expect(() => new Backoff({ minDelayMs: -1, maxDelayMs: 100 })).toThrow(RangeError);
  });
});
