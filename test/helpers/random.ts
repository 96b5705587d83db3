/**
 * Seeded randomness for tests that explore many interleavings: the same seed
 * replays the same run. `TPWS_TEST_SEED=<n>` fixes the seed; otherwise each
 * run picks one, and every assertion message should name it so a failure
 * can be replayed.
 */

/** A seed from `TPWS_TEST_SEED`, else a fresh one. */
export function testSeed(): number {
  const fixed = process.env.TPWS_TEST_SEED;
  if (fixed !== undefined && /^\d+$/.test(fixed)) return Number(fixed) >>> 0;
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}

/** A small deterministic generator (mulberry32): the same seed gives the same sequence. */
export class Random {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of `items`, weighted by the numbers of `weights`. */
  pick<T>(items: readonly T[], weights?: readonly number[]): T {
    if (weights === undefined) return items[this.int(0, items.length - 1)];
    const total = weights.reduce((a, b) => a + b, 0);
    let r = this.next() * total;
    for (let i = 0; i < items.length; i++) {
      r -= weights[i];
      if (r < 0) return items[i];
    }
    return items[items.length - 1];
  }
}
