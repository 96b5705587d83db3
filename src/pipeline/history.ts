import { TpWsError } from '../errors.js';
import { parseEvent, type TargetType } from '../event.js';
import { textFrame } from '../fanout/frame.js';
import type { RoutedEvent } from '../fanout/hub.js';
import { encodeEventMessage } from '../protocol/messages.js';
import type { HistoryRow, Store } from '../store/store.js';
import { EPOCH_NO_LIMIT, epochOf, follows, position, seqOf } from './position.js';

/**
 * Pauses before a resume reads the table again for positions of this run it
 * did not find yet (1.55 s in all): a journal batch or a poller marking
 * lands within them unless the store is down, and the socket's live events
 * are held meanwhile.
 */
const CATCH_UP_WAITS_MS = [50, 100, 200, 400, 800];

/** One delivered event as a resume needs it: where it goes, and its `event` frame. */
export interface HistoryEntry extends RoutedEvent {
  pos: number;
  /** When the daemon fanned it out (ring age), epoch ms. */
  at: number;
  frame: Buffer;
}

export interface HistoryOptions {
  /** Most events kept in memory (0: every resume reads the table). */
  ringSize: number;
  /** Events older than this leave the ring (they stay in the table). */
  ringMaxAgeMs: number;
  /** Most events one resume may scan (all channels, not only the client's); past it: `too_many`. */
  maxEvents: number;
  /**
   * The pipeline's dedup window (`dedup.windowSize`, `dedup.windowSec`):
   * `start` returns the ids fanned out within it before this start. Default:
   * only the ids of the events the ring is refilled with.
   */
  dedupWindow?: { size: number; ageSec: number };
}

/** Why a resume could not be answered with every missed event. */
export type NotRecovered = 'unknown_epoch' | 'gap' | 'too_many' | 'store_unavailable';

export type ResumePlan =
  | { recovered: true; entries: HistoryEntry[] }
  | { recovered: false; reason: NotRecovered };

/** What a resume has taken synchronously, before it waits for the store: the head and the ring's part. */
export interface ResumeSnapshot {
  /** The position every replay stops at (the head when the resume was received). */
  head: number;
  /** Ring entries after the client's position, up to `head`. */
  ring: HistoryEntry[];
  /** First position the ring holds (the table is read below it), or head + 1 when empty. */
  ringStart: number;
}

/**
 * The delivery history (docs/protocol.md §Resume): the current epoch and its
 * head, a ring of recent events in memory, and the events table behind it
 * for everything older, including earlier daemon runs. Answers a resume with
 * every event after a position, or says why it cannot: never a partial set.
 */
export class History {
  /** The epoch's rank in `tpws_epochs` (0 until `start`). */
  epochNo = 0;
  private headPos = 0;
  /** Circular buffer of the newest entries, oldest at `first`. */
  private readonly ring: (HistoryEntry | undefined)[];
  private first = 0;
  private count = 0;
  /** Epoch uuids by number and back, as far as seen (replayed rows of older epochs carry theirs). */
  private readonly names = new Map<number, string>();
  private readonly numbers = new Map<string, number>();

  constructor(readonly epoch: string, private readonly store: Pick<Store, 'registerEpoch' | 'findEpoch' | 'epochName' | 'readHistory' | 'readHistoryTail' | 'recentEventIds' | 'historyFloor'>, private readonly o: HistoryOptions) {
    this.ring = new Array<HistoryEntry | undefined>(o.ringSize);
  }

  /**
   * Record this run's epoch and fill the ring with the newest events of the
   * table (earlier runs), so that clients reconnecting after a restart are
   * answered from memory. Returns, oldest first, the ids of the events
   * fanned out before this start within the dedup window (`dedupWindow`; at
   * least those of the ring): the pipeline's dedup window learns them, so an
   * event sent again after the restart (a sender retrying, a fallback row, a
   * job run twice) is not fanned out a second time under a new position the
   * table cannot hold — its row keeps its first one, and the new position
   * would be a hole that makes later resumes across it `gap`.
   */
  async start(): Promise<string[]> {
    const no = await this.store.registerEpoch(this.epoch);
    if (!Number.isInteger(no) || no < 1 || no >= EPOCH_NO_LIMIT) throw new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `tpws_epochs gave epoch number ${no}, outside 1 to ${EPOCH_NO_LIMIT - 1}`);
    this.epochNo = no;
    this.remember(no, this.epoch);
    this.headPos = position(no, 0);
    const ringIds: string[] = [];
    if (this.o.ringSize > 0) {
      const rows = await this.store.readHistoryTail(this.o.ringSize);
      const now = Date.now();
      for (const row of rows) {
        const e = await this.entryOf(row);
        if (e === null) continue;
        this.push({ ...e, at: now });
        ringIds.push(eventId(row));
      }
    }
    const w = this.o.dedupWindow;
    if (w === undefined) return ringIds;
    const windowIds = await this.store.recentEventIds(w.size, w.ageSec);
    // The ring's ids are the newest: they go last, so a full dedup window evicts window ids first.
    const inRing = new Set(ringIds);
    return windowIds.filter((id) => !inRing.has(id)).concat(ringIds);
  }

  /** The current epoch's last seq (0 before the first event). */
  get seq(): number {
    return seqOf(this.headPos);
  }

  /** The position of the last event fanned out. */
  get head(): number {
    return this.headPos;
  }

  /** Events held in memory. */
  get size(): number {
    return this.count;
  }

  /** Give the next event its seq (the pipeline calls it once per event fanned out). */
  next(): number {
    return seqOf(++this.headPos);
  }

  /** Keep a fanned-out event (its seq from `next`). */
  add(event: RoutedEvent, seq: number, frame: Buffer, now: number): void {
    if (this.o.ringSize === 0) return;
    this.push({ targetType: event.targetType, targetId: event.targetId, excludeUserId: event.excludeUserId, pos: position(this.epochNo, seq), at: now, frame });
  }

  /** The number of an epoch uuid, from memory or the table; null when this database never had it. */
  async epochNumber(epoch: string): Promise<number | null> {
    const known = this.numbers.get(epoch);
    if (known !== undefined) return known;
    const no = await this.store.findEpoch(epoch);
    if (no !== null) this.remember(no, epoch);
    return no;
  }

  /**
   * The synchronous half of a resume from `from`: fix the head, and take the
   * ring's events after `from`. Called in the same turn as the session's
   * subscriptions and hold, so nothing fanned out later is missed or doubled.
   */
  snapshot(from: number, now = Date.now()): ResumeSnapshot {
    this.trimAge(now);
    const ringStart = this.count === 0 ? this.headPos + 1 : this.at(0).pos;
    return { head: this.headPos, ring: this.entriesAfter(from), ringStart };
  }

  /**
   * Every event after `from` up to the snapshot's head, in order, or why
   * that cannot be given. The table is read for the part older than the
   * ring; the whole sequence must be complete (`follows` between each pair).
   *
   * A position of this run missing from the table is usually still being
   * written (the journal's batch, the poller's marking) after the ring has
   * moved past it: a burst larger than the ring, e.g. the rows written while
   * the daemon was down, delivered at once after its start. The read is
   * then tried again after `CATCH_UP_WAITS_MS` before the answer is `gap`
   * (a position the journal dropped never comes).
   */
  async plan(from: number, snap: ResumeSnapshot): Promise<ResumePlan> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.planOnce(from, snap);
      if (r.recovered) return r;
      const missing = 'missing' in r ? r.missing : undefined;
      if (missing === undefined || epochOf(missing) !== this.epochNo || attempt >= CATCH_UP_WAITS_MS.length) return { recovered: false, reason: r.reason };
      await new Promise((resolve) => setTimeout(resolve, CATCH_UP_WAITS_MS[attempt]));
    }
  }

  /** One try of `plan`; a `gap` names the first position it misses when it knows it. */
  private async planOnce(from: number, snap: ResumeSnapshot): Promise<ResumePlan | { recovered: false; reason: 'gap'; missing: number }> {
    if (from > snap.head) return { recovered: false, reason: 'gap' };
    if (from === snap.head) return { recovered: true, entries: [] };
    const ring = snap.ring;
    const older: HistoryEntry[] = [];
    if (from + 1 < snap.ringStart) {
      let rows: HistoryRow[];
      let floor: number;
      try {
        floor = await this.store.historyFloor();
        if (from < floor) return { recovered: false, reason: 'gap' };
        rows = await this.store.readHistory(from, snap.ringStart, this.o.maxEvents + 1);
      } catch {
        return { recovered: false, reason: 'store_unavailable' };
      }
      if (rows.length + ring.length > this.o.maxEvents) return { recovered: false, reason: 'too_many' };
      for (const row of rows) {
        let e: HistoryEntry | null;
        try {
          e = await this.entryOf(row);
        } catch {
          return { recovered: false, reason: 'store_unavailable' };
        }
        // A row that cannot be sent again (hand-edited into garbage) is a hole.
        if (e === null) return { recovered: false, reason: 'gap' };
        older.push(e);
      }
    } else if (ring.length > this.o.maxEvents) {
      return { recovered: false, reason: 'too_many' };
    }
    const all = older.length === 0 ? ring : older.concat(ring);
    let prev = from;
    for (const e of all) {
      if (!follows(prev, e.pos)) return { recovered: false, reason: 'gap', missing: epochOf(e.pos) === epochOf(prev) ? prev + 1 : position(epochOf(e.pos), 1) };
      prev = e.pos;
    }
    // The last event must be the head itself (or the head is a new epoch with nothing yet): anything between was lost.
    if (prev !== snap.head && !(seqOf(snap.head) === 0 && epochOf(snap.head) > epochOf(prev))) {
      return { recovered: false, reason: 'gap', missing: epochOf(snap.head) === epochOf(prev) ? prev + 1 : position(epochOf(snap.head), 1) };
    }
    return { recovered: true, entries: all };
  }

  /** The epoch uuid of a number (for rows of earlier runs), or null. */
  private async nameOf(epochNo: number): Promise<string | null> {
    const known = this.names.get(epochNo);
    if (known !== undefined) return known;
    const name = await this.store.epochName(epochNo);
    if (name !== null) this.remember(epochNo, name);
    return name;
  }

  /** A table row as a history entry (its frame built as it was sent), or null when the row is not a valid event. */
  private async entryOf(row: HistoryRow): Promise<HistoryEntry | null> {
    const epoch = await this.nameOf(epochOf(row.pos));
    if (epoch === null) return null;
    const id = eventId(row);
    let ev;
    try {
      ev = parseEvent({ id, event_type: row.eventType, target_type: row.targetType, target_id: row.targetId, payload: row.payload, created_at: row.createdAt },
        { maxPayloadBytes: Number.MAX_SAFE_INTEGER }, () => id);
    } catch {
      return null;
    }
    const frame = textFrame(encodeEventMessage({ eventType: ev.eventType, payloadJson: ev.payloadJson, createdAtMs: ev.createdAt, id: ev.id, seq: seqOf(row.pos), epoch }));
    return { targetType: ev.targetType as TargetType, targetId: ev.targetId, excludeUserId: ev.excludeUserId, pos: row.pos, at: 0, frame };
  }

  private remember(no: number, name: string): void {
    // Bounded: a daemon meets few epochs, but a client can name any string (only found ones are kept).
    if (this.names.size >= 1000) {
      this.names.clear();
      this.numbers.clear();
      this.names.set(this.epochNo, this.epoch);
      this.numbers.set(this.epoch, this.epochNo);
    }
    this.names.set(no, name);
    this.numbers.set(name, no);
  }

  private push(e: HistoryEntry): void {
    const size = this.ring.length;
    if (this.count === size) {
      this.ring[this.first] = e;
      this.first = (this.first + 1) % size;
    } else {
      this.ring[(this.first + this.count) % size] = e;
      this.count++;
    }
  }

  private at(i: number): HistoryEntry {
    return this.ring[(this.first + i) % this.ring.length]!;
  }

  /** Drop entries older than the ring's age limit (preloaded rows count from the start). */
  private trimAge(now: number): void {
    const oldest = now - this.o.ringMaxAgeMs;
    while (this.count > 0 && this.at(0).at < oldest) {
      this.ring[this.first] = undefined;
      this.first = (this.first + 1) % this.ring.length;
      this.count--;
    }
  }

  /** Ring entries with a position above `from`, oldest first (binary search: positions increase along the ring). */
  private entriesAfter(from: number): HistoryEntry[] {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.at(mid).pos <= from) lo = mid + 1;
      else hi = mid;
    }
    const out: HistoryEntry[] = [];
    for (let i = lo; i < this.count; i++) out.push(this.at(i));
    return out;
  }
}

/** A row's event id: its `event_uuid`, or the id the poller gives a row TeamPass wrote (src/ingest/table-poller.ts). */
function eventId(row: HistoryRow): string {
  return row.eventUuid ?? `row-${row.rowId}`;
}
