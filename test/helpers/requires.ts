import { describe, it } from 'vitest';

export interface Requirement {
  /** Why the suite cannot run here, or undefined when everything it needs is present. */
  missing: string | undefined;
  /** What the suite needs, e.g. "TPWS_TEST_MYSQL_URL" or "php with msgpack". */
  needs: string;
  /** How to provide it. */
  hint: string;
}

/**
 * `describe` for a suite that needs something outside Node (MariaDB, php,
 * php-fpm): it runs when the requirement is met; otherwise it fails in CI
 * (nothing may skip there) and is skipped elsewhere with a loud banner.
 */
export function describeRequiring(name: string, req: Requirement, fn: () => void): void {
  if (req.missing === undefined) {
    describe(name, fn);
    return;
  }
  const why = req.missing;
  if (process.env.CI) {
    describe(name, () => {
      it(`${req.needs} must be available in CI`, () => {
        throw new Error(`${why} (${req.hint})`);
      });
    });
    return;
  }
  const bar = '!'.repeat(72);
  console.warn(['', bar, `!! SKIPPED: "${name}"`, `!! ${why}. To run it:`, `!!   ${req.hint}`, bar, ''].join('\n'));
  describe.skip(name, fn);
}
