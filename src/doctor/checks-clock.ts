/**
 * Doctor check 7, `clock`: the database computes token expiry
 * (`expires_at > NOW()`) and event ages (poller.maxAgeSec), tp-ws its own
 * timers and log times; a skew between the two clocks shifts both.
 */
import { ok, warn, type Finding } from './finding.js';
import type { StoreProbe } from './store-probe.js';

/** Largest skew reported as fine. */
export const MAX_CLOCK_SKEW_MS = 2000;

export async function checkClock(probe: StoreProbe): Promise<Finding[]> {
  const offset = await probe.clockOffsetMs();
  if (offset === null) return [ok('clock', 'same', 'the SQLite store uses this machine\'s clock')];
  const seconds = (Math.abs(offset) / 1000).toFixed(1);
  if (Math.abs(offset) <= MAX_CLOCK_SKEW_MS) return [ok('clock', 'skew', `the database's clock is within ${seconds} s of this machine's`)];
  return [warn(
    'clock', 'skew',
    `the database's clock is ${seconds} s ${offset > 0 ? 'ahead of' : 'behind'} this machine's: token expiry and event ages are computed by the database, so tokens expire and events count as too old (poller.maxAgeSec) that much ${offset > 0 ? 'earlier' : 'later'} than tp-ws's own clock says`,
    'synchronise both clocks with NTP, here and on the database host: timedatectl set-ntp true; check with timedatectl status (or chronyc tracking)',
  )];
}
