/**
 * Delivery positions (docs/protocol.md §Resume). On the wire a position is
 * an `epoch` (a uuid, new at every daemon start) and a `seq` (1, 2, 3… with
 * no gap within the epoch). In the events table (`tpws_pos`) and in memory it
 * is one number, `epochNo × 2^32 + seq`, where `epochNo` is the epoch's rank
 * in `tpws_epochs`: positions then order every event ever fanned out on this
 * database, across restarts, and a resume is one range read.
 *
 * Positions are global to the daemon, not per channel: a TeamPass client's
 * stream is the union of its user, its folders, the KB and broadcasts, and
 * its folder subscriptions change as the user browses. One position per
 * client covers all of them, including a folder subscribed after the
 * position was taken; per-channel offsets would need one per folder and
 * could not say where a newly subscribed folder starts.
 */

/** Positions per epoch: seq is below it. */
export const EPOCH_SPAN = 2 ** 32;
/** Largest `seq` a client may send (exclusive bound). */
export const SEQ_LIMIT = EPOCH_SPAN;
/** Epoch numbers stay below this so that a position is an exact JS number (< 2^53). */
export const EPOCH_NO_LIMIT = 2 ** 21;

export function position(epochNo: number, seq: number): number {
  return epochNo * EPOCH_SPAN + seq;
}

export function epochOf(pos: number): number {
  return Math.floor(pos / EPOCH_SPAN);
}

export function seqOf(pos: number): number {
  return pos % EPOCH_SPAN;
}

/**
 * True when `next` may directly follow `prev` in a complete history: the
 * next seq of the same epoch, or the first event of a later epoch (the
 * previous daemon run ended there; what it fanned out without journaling
 * before being killed is not in the history: docs/protocol.md §Resume).
 */
export function follows(prev: number, next: number): boolean {
  if (next === prev + 1) return true;
  return epochOf(next) > epochOf(prev) && seqOf(next) === 1;
}
