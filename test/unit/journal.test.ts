import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseEvent } from '../../src/event.js';
import { Journal } from '../../src/pipeline/journal.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { EventInsert, Store } from '../../src/store/store.js';

const log = pino({ level: 'silent' });
const ev = (id: string) => parseEvent({ id, event_type: 'j', target_type: 'user', target_id: 1 }, { maxPayloadBytes: 1000 }, () => id);

describe('Journal', () => {
  let dir: string;
  let store: SqliteStore;
  /** The real store, with a switchable delay and outage in front of journalEvents. */
  let gate: { delayMs: number; down: boolean; calls: number[] };
  let gated: Store;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tpws-journal-'));
    store = new SqliteStore({ path: join(dir, 'j.db'), prefix: 'teampass_' });
    await store.migrate();
    gate = { delayMs: 0, down: false, calls: [] };
    gated = Object.assign(Object.create(store) as Store, {
      journalEvents: async (rows: readonly EventInsert[]) => {
        gate.calls.push(rows.length);
        if (gate.delayMs > 0) await new Promise((r) => setTimeout(r, gate.delayMs));
        if (gate.down) throw new Error('store down');
        return store.journalEvents(rows);
      },
    });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('groups events arriving during a write into the next INSERT', async () => {
    const j = new Journal(gated, log, { batchSize: 500, flushMs: 0, maxQueue: 1000, maxBackoffMs: 100 });
    gate.delayMs = 30;
    const first = j.write(ev('g0'));
    await new Promise((r) => setTimeout(r, 5)); // the first INSERT is now running
    const rest = Array.from({ length: 49 }, (_, i) => j.write(ev(`g${i + 1}`)));
    expect(await Promise.all([first, ...rest])).toEqual(Array(50).fill('written'));
    expect(gate.calls[0]).toBe(1);
    expect(gate.calls.slice(1).reduce((a, b) => a + b, 0)).toBe(49);
    expect(gate.calls).toHaveLength(2);
  });

  it('says pending at once while the store is down, keeps the events, and writes them when it is back', async () => {
    const j = new Journal(gated, log, { batchSize: 500, flushMs: 0, maxQueue: 1000, maxBackoffMs: 50 });
    gate.down = true;
    expect(await j.write(ev('d1'))).toBe('pending');
    expect(j.healthy).toBe(false);
    expect(await j.write(ev('d2'))).toBe('pending');
    gate.down = false;
    while (j.queued > 0) await new Promise((r) => setTimeout(r, 10));
    expect(j.healthy).toBe(true);
    expect(j.counters.written).toBe(2);
  });

  it('settles waiters as pending when a write is slow, and still writes the events', async () => {
    const j = new Journal(gated, log, { batchSize: 500, flushMs: 0, maxQueue: 1000, maxBackoffMs: 50, slowWriteMs: 20 });
    gate.delayMs = 200;
    expect(await j.write(ev('s1'))).toBe('pending');
    while (j.queued > 0) await new Promise((r) => setTimeout(r, 10));
    expect(j.counters.written).toBe(1);
  });

  it('drops the oldest events past maxQueue while the store is down, and counts them', async () => {
    const j = new Journal(gated, log, { batchSize: 500, flushMs: 0, maxQueue: 3, maxBackoffMs: 1000 });
    gate.down = true;
    const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => j.write(ev(`o${i}`))));
    expect(outcomes).toEqual(['dropped', 'dropped', 'pending', 'pending', 'pending']);
    expect(j.counters.dropped).toBe(2);
    expect(j.queued).toBe(3);
    expect(await j.close(10)).toBe(3);
  });
});
