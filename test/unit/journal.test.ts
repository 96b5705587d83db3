import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseEvent } from '../../src/event.js';
import { Journal, type JournalOutcome, type JournalOptions } from '../../src/pipeline/journal.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { EventInsert, Store } from '../../src/store/store.js';
import { Random, testSeed } from '../helpers/random.js';

const log = pino({ level: 'silent' });
const ev = (id: string) => parseEvent({ id, event_type: 'j', target_type: 'user', target_id: 1 }, { maxPayloadBytes: 1000 }, () => id);
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/**
 * The real SQLite store behind a gate the test steers: each journalEvents
 * call can be delayed, held open until released, or failed. `writtenIds`
 * lists the ids of every call the store confirmed, in order.
 */
class Gate {
  delayMs = 0;
  down = false;
  calls: number[] = [];
  writtenIds: string[] = [];
  /** Per-call behaviour, when set: overrides delayMs/down. */
  plan: (() => { delayMs: number; fail: boolean }) | null = null;
  private held: { release: () => void; promise: Promise<void> } | null = null;

  constructor(private readonly store: SqliteStore) {}

  /** The next journalEvents calls wait until `release()`. */
  hold(): void {
    let release!: () => void;
    const promise = new Promise<void>((r) => { release = r; });
    this.held = { release, promise };
  }

  release(): void {
    this.held?.release();
    this.held = null;
  }

  readonly target: Pick<Store, 'journalEvents'> = {
    journalEvents: async (rows: readonly EventInsert[]) => {
      this.calls.push(rows.length);
      const { delayMs, fail } = this.plan ? this.plan() : { delayMs: this.delayMs, fail: this.down };
      if (this.held) await this.held.promise;
      if (delayMs > 0) await tick(delayMs);
      if (fail) throw new Error('store down');
      await this.store.journalEvents(rows);
      for (const r of rows) this.writtenIds.push(r.eventUuid);
    },
  };
}

describe('Journal', () => {
  let dir: string;
  let dbPath: string;
  let store: SqliteStore;
  let gate: Gate;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tpws-journal-'));
    dbPath = join(dir, 'j.db');
    store = new SqliteStore({ path: dbPath, prefix: 'teampass_' });
    await store.migrate();
    gate = new Gate(store);
  });
  afterEach(async () => {
    gate.release();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** event_uuid of every row in the events table, sorted. */
  function tableIds(): string[] {
    const db = new Database(dbPath, { readonly: true });
    try {
      return (db.prepare('SELECT event_uuid FROM teampass_websocket_events').all() as { event_uuid: string }[]).map((r) => r.event_uuid).sort();
    } finally {
      db.close();
    }
  }

  const journal = (o: Partial<JournalOptions> = {}) =>
    new Journal(gate.target, log, { batchSize: 500, flushMs: 0, maxQueue: 1000, maxBackoffMs: 100, ...o });

  it('groups events arriving during a write into the next INSERT', async () => {
    const j = journal();
    gate.delayMs = 30;
    const first = j.write(ev('g0'));
    await tick(5); // the first INSERT is now running
    const rest = Array.from({ length: 49 }, (_, i) => j.write(ev(`g${i + 1}`)));
    expect(await Promise.all([first, ...rest])).toEqual(Array(50).fill('written'));
    expect(gate.calls[0]).toBe(1);
    expect(gate.calls.slice(1).reduce((a, b) => a + b, 0)).toBe(49);
    expect(gate.calls).toHaveLength(2);
  });

  it('says pending at once while the store is down, keeps the events, and writes them when it is back', async () => {
    const j = journal({ maxBackoffMs: 50 });
    gate.down = true;
    expect(await j.write(ev('d1'))).toBe('pending');
    expect(j.healthy).toBe(false);
    expect(await j.write(ev('d2'))).toBe('pending');
    gate.down = false;
    while (j.queued > 0) await tick(10);
    expect(j.healthy).toBe(true);
    expect(j.counters.written).toBe(2);
    expect(tableIds()).toEqual(['d1', 'd2']);
  });

  it('settles waiters as pending when a write is slow, and still writes the events', async () => {
    const j = journal({ maxBackoffMs: 50, slowWriteMs: 20 });
    gate.delayMs = 200;
    expect(await j.write(ev('s1'))).toBe('pending');
    while (j.queued > 0) await tick(10);
    expect(j.counters.written).toBe(1);
  });

  it('says pending at once for an event arriving while a write is already slow', async () => {
    const j = journal({ maxBackoffMs: 50, slowWriteMs: 20 });
    gate.hold();
    const first = j.write(ev('w1'));
    expect(await first).toBe('pending'); // the guard fired; the write is still held
    expect(await j.write(ev('w2'))).toBe('pending'); // before the write ends
    expect(gate.writtenIds).toEqual([]);
    gate.release();
    while (j.queued > 0) await tick(5);
    expect(gate.writtenIds).toEqual(['w1', 'w2']);
  });

  it('drops the oldest events past maxQueue while the store is down, and counts them', async () => {
    const dropped: string[] = [];
    const j = journal({ maxQueue: 3, maxBackoffMs: 1000, onDropped: (ids) => dropped.push(...ids) });
    gate.down = true;
    const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => j.write(ev(`o${i}`))));
    expect(outcomes).toEqual(['dropped', 'dropped', 'pending', 'pending', 'pending']);
    expect(dropped).toEqual(['o0', 'o1']);
    expect(j.counters.dropped).toBe(2);
    expect(j.queued).toBe(3);
    expect(await j.close(10)).toBe(3);
    expect(j.counters.dropped).toBe(5);
  });

  it('never drops or removes the batch being written when the queue overflows during the write', async () => {
    // maxQueue 3, batchSize 2, the first write held open: a and b are in flight,
    // c, d and e arrive; the queue may hold 3 events in all, so c and d go.
    const dropped: string[] = [];
    const j = journal({ maxQueue: 3, batchSize: 2, slowWriteMs: 60_000, onDropped: (ids) => dropped.push(...ids) });
    gate.hold();
    const a = j.write(ev('a'));
    const b = j.write(ev('b'));
    await tick(); // the write of [a, b] has started and waits on the gate
    expect(gate.calls).toEqual([2]);
    const c = j.write(ev('c'));
    const d = j.write(ev('d'));
    const e = j.write(ev('e'));
    expect(j.queued).toBe(3);
    gate.release();
    expect(await Promise.all([a, b, c, d, e])).toEqual(['written', 'written', 'dropped', 'dropped', 'written']);
    expect(dropped).toEqual(['c', 'd']);
    expect(j.counters).toEqual({ written: 3, writeErrors: 0, dropped: 2 });
    expect(gate.writtenIds).toEqual(['a', 'b', 'e']);
    expect(tableIds()).toEqual(['a', 'b', 'e']);
    expect(j.queued).toBe(0);
  });

  it('retries a failed batch first, and overflow during the retry wait drops the oldest of it', async () => {
    const dropped: string[] = [];
    const j = journal({ maxQueue: 3, batchSize: 2, maxBackoffMs: 10, slowWriteMs: 60_000, onDropped: (ids) => dropped.push(...ids) });
    gate.down = true;
    gate.hold();
    const a = j.write(ev('a'));
    const b = j.write(ev('b'));
    await tick();
    const c = j.write(ev('c'));
    gate.release(); // the write of [a, b] fails: they return to the front, before c
    expect(await a).toBe('pending');
    const d = j.write(ev('d')); // 4 held: a, the oldest, goes
    expect(await d).toBe('pending');
    expect(dropped).toEqual(['a']);
    gate.down = false;
    while (j.queued > 0) await tick(5);
    expect(await Promise.all([b, c])).toEqual(['pending', 'pending']);
    expect(gate.writtenIds).toEqual(['b', 'c', 'd']);
    expect(j.counters.written + j.counters.dropped).toBe(4);
    expect(tableIds()).toEqual(['b', 'c', 'd']);
  });

  it('at close, writes what it can within the timeout, then drops the rest and refuses new events', async () => {
    const dropped: string[] = [];
    const j = journal({ batchSize: 1, slowWriteMs: 60_000, onDropped: (ids) => dropped.push(...ids) });
    gate.delayMs = 20;
    const first = j.write(ev('k0'));
    await tick();
    for (let i = 1; i < 50; i++) void j.write(ev(`k${i}`));
    const notWritten = await j.close(70);
    expect(await first).toBe('written');
    expect(notWritten).toBeGreaterThan(0);
    // The write under way at the deadline settles on its own.
    while (gate.calls.length > gate.writtenIds.length) await tick(5);
    expect(await j.write(ev('late'))).toBe('dropped');
    expect(j.counters.written).toBe(gate.writtenIds.length);
    expect(j.counters.written + j.counters.dropped).toBe(51);
    expect(new Set([...gate.writtenIds, ...dropped]).size).toBe(51);
  });

  it('randomized: with writes failing, stalling and succeeding, every event ends written or dropped exactly once and every promise settles', async () => {
    for (let round = 0; round < 6; round++) {
      const seed = testSeed();
      const rnd = new Random(seed);
      const why = `seed ${seed} (replay with TPWS_TEST_SEED=${seed})`;
      const dropped: string[] = [];
      const opts = {
        maxQueue: rnd.int(1, 40),
        batchSize: rnd.int(1, 12),
        slowWriteMs: rnd.int(1, 30),
        maxBackoffMs: 15,
        onDropped: (ids: readonly string[]) => dropped.push(...ids),
      };
      const j = journal(opts);
      gate.writtenIds = [];
      gate.plan = () => {
        const kind = rnd.pick(['ok', 'fail', 'stall-ok', 'stall-fail'] as const, [5, 2, 2, 1]);
        return { delayMs: kind.startsWith('stall') ? rnd.int(1, 25) : 0, fail: kind.endsWith('fail') };
      };
      const total = rnd.int(100, 300);
      const first = new Map<string, JournalOutcome>();
      const promises: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        const id = `r${round}-${i}`;
        promises.push(j.write(ev(id)).then((o) => { first.set(id, o); }));
        expect(j.queued, `memory bound: ${why}`).toBeLessThanOrEqual(Math.max(opts.maxQueue, opts.batchSize));
        if (rnd.chance(0.3)) await tick(rnd.int(0, 4));
      }
      // Let the store recover and the queue drain, then close.
      gate.plan = null;
      gate.down = false;
      gate.delayMs = 0;
      while (j.queued > 0) await tick(5);
      await j.close(1000);
      await Promise.all(promises);

      const written = gate.writtenIds;
      expect(first.size, why).toBe(total);
      expect(new Set(written).size, `written twice: ${why}`).toBe(written.length);
      expect(new Set(dropped).size, `dropped twice: ${why}`).toBe(dropped.length);
      expect(written.filter((id) => dropped.includes(id)), `written and dropped: ${why}`).toEqual([]);
      expect(written.length + dropped.length, why).toBe(total);
      expect(j.counters.written, why).toBe(written.length);
      expect(j.counters.dropped, why).toBe(dropped.length);
      for (const [id, o] of first) {
        if (o === 'written') expect(written.includes(id), `${id} said written: ${why}`).toBe(true);
        if (o === 'dropped') expect(dropped.includes(id), `${id} said dropped: ${why}`).toBe(true);
      }
      expect(j.queued, why).toBe(0);
    }
    const inTable = tableIds();
    expect(inTable).toEqual([...new Set(inTable)]);
  });
});
