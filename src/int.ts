/** The largest id TeamPass stores: its id columns are INT UNSIGNED. */
export const ID_MAX = 4294967295;

/**
 * A positive integer from a number or a string of 1-10 decimal digits, at
 * most `max` (default `ID_MAX`); null for anything else. The one parser of
 * ids and counts that come from outside (event fields, JWT claims, CLI
 * flags); callers turn null into their own error. TeamPass's PHP `(int)`
 * cast of client messages is another rule: `phpInt()` in the gateway.
 */
export function positiveInt(v: unknown, max = ID_MAX): number | null {
  const n = typeof v === 'string' && /^[0-9]{1,10}$/.test(v) ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= max ? n : null;
}
