/**
 * Wait until `cond` holds, checking every 20 ms — for state that has no event
 * to await (a row's `processed` flag, a counter). Fails with `what` on timeout.
 */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
