/**
 * Shared parts of the reliability suite (test/reliability/): a seeded
 * random source whose seed is named in every failure, and the one-line note
 * each scenario prints to say what it killed or sent and what it checked.
 */
import { Random, testSeed } from './random.js';

/**
 * A scenario's random source. `TPWS_TEST_SEED=<n>` replays a run; otherwise a
 * fresh seed is drawn and printed with the scenario's note and its failure.
 */
export function scenarioRandom(): Random {
  return new Random(testSeed());
}

/**
 * Run `body`; a failure is rethrown with the seed that replays it
 * (`TPWS_TEST_SEED=<seed> npx vitest run <file>`).
 */
export async function withSeed<T>(rng: Random, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    e.message = `${e.message}\n(seed ${rng.seed}: replay with TPWS_TEST_SEED=${rng.seed})`;
    throw e;
  }
}

/**
 * Print the scenario's note line: what it killed or sent, what it checked,
 * what it measured. One line, prefixed so a CI log can be grepped for them.
 */
export function scenarioNote(scenario: string, text: string, seed?: number): void {
  const s = seed === undefined ? '' : ` [seed ${seed}]`;
  process.stdout.write(`[reliability] ${scenario}${s}: ${text}\n`);
}
