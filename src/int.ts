/** The largest id TeamPass stores: its id columns are INT UNSIGNED. */
export const ID_MAX = 4294967295;

/**
 * A positive integer from a number or a string of 1-10 decimal digits, at
 * most `max` (default `ID_MAX`); null for anything else. The one parser of
 * ids and counts that come from outside (event fields, JWT claims, CLI
 * flags); callers turn null into their own error. TeamPass's PHP `(int)`
 * cast of client messages and of TeamPass's varchar ids is another rule: `phpInt()`.
 */
export function positiveInt(v: unknown, max = ID_MAX): number | null {
  const n = typeof v === 'string' && /^[0-9]{1,10}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= max ? n : null;
}

/**
 * PHP's `(int)` cast, which TeamPass's daemon applies to ids in client messages (docs/protocol.md §subscribe) and to `items.id_tree`: "12abc" → 12,
 * "abc" → 0, 3.9 → 3, true → 1. Results outside INT UNSIGNED become 0.
 */
export function phpInt(v: unknown): number {
  let n: number;
  if (typeof v === 'number') n = Math.trunc(v);
  else if (typeof v === 'boolean') n = v ? 1 : 0;
  else if (typeof v === 'string') {
    const m = /^\s*([+-]?\d+)/.exec(v);
    n = m === null ? 0 : Number(m[1]);
  } else n = 0;
  return Number.isSafeInteger(n) && n >= 0 && n <= 4294967295 ? n : 0;
}
