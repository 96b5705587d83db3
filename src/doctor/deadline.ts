/**
 * Deadlines for the doctor's checks: a check that does not answer in time
 * is reported as such, so one hung store or proxy cannot hold the report.
 */

/**
 * `work`, or what `onTimeout` says once `ms` have passed without an answer.
 * The work is not cancelled (a hung socket is destroyed by its owner at the
 * end of the run); the report just does not wait for it.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
