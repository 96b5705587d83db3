/**
 * `Store.countReplayEvents` and `Store.selectReplayEvents` (what `tp-ws
 * replay` reads), on both stores. Rows are written with raw SQL, as TeamPass's
 * PHP and the daemon write them, not through the store under test.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.js';
import { PROCESSED, type ReplayFilter, type ReplayRow, type Store } from '../../src/store/store.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';
import { describeStores } from '../helpers/stores.js';

const PREFIX = 'teampass_';
/** 2025-01-01T00:00:00Z, in seconds. */
const T0 = Date.UTC(2025, 0, 1) / 1000;

interface Row {
  uuid: string | null;
  type?: string;
  target: 'user' | 'folder' | 'kb' | 'broadcast';
  targetId?: number | null;
  /** Seconds after T0. */
  at?: number;
  status?: number;
  payload?: string;
}

describeStores('Store replay selection', ({ kind, newStoreUrl }) => {
  let store: Store;
  let seed: Seeder;
  const time = kind === 'sqlite' ? `datetime(?, 'unixepoch')` : 'FROM_UNIXTIME(?)';

  /** Insert rows in this order; returns their row ids. */
  async function insert(rows: Row[]): Promise<number[]> {
    const ids: number[] = [];
    for (const r of rows) {
      await seed.execSql(
        `INSERT INTO {{prefix}}websocket_events (event_uuid, event_type, target_type, target_id, payload, created_at, processed)
         VALUES (?, ?, ?, ?, ?, ${time}, ?)`,
        [r.uuid, r.type ?? 'item_updated', r.target, r.targetId ?? null, r.payload ?? '{}', T0 + (r.at ?? 0), r.status ?? PROCESSED.DELIVERED],
      );
      const [{ id }] = await seed.execSql<{ id: number }>('SELECT MAX(id) AS id FROM {{prefix}}websocket_events');
      ids.push(Number(id));
    }
    return ids;
  }

  /** Every row the filter selects, read page by page as `tp-ws replay` does. */
  async function selectAll(filter: ReplayFilter, pageSize = 1000): Promise<ReplayRow[]> {
    const { headId } = await store.countReplayEvents(filter);
    const out: ReplayRow[] = [];
    for (let after = 0; ;) {
      const page = await store.selectReplayEvents(filter, after, headId, pageSize);
      out.push(...page);
      if (page.length < pageSize) return out;
      after = page[page.length - 1].rowId;
    }
  }

  beforeAll(async () => {
    const url = await newStoreUrl();
    store = openStore(url, PREFIX);
    await store.migrate();
    seed = await openSeeder(url, PREFIX);
  });

  afterAll(async () => {
    await seed?.close();
    await store?.close();
  });

  beforeEach(async () => {
    await seed.execSql('DELETE FROM {{prefix}}websocket_events');
  });

  it('selects nothing from an empty table, whose head is 0', async () => {
    expect(await store.countReplayEvents({})).toEqual({ headId: 0, count: 0 });
    expect(await store.selectReplayEvents({}, 0, 0, 10)).toEqual([]);
  });

  it('returns every column of a row, the payload text byte for byte and created_at in ms, with the status', async () => {
    // Spacing, key order and an integer beyond 2^53 survive only if nobody parses the text.
    const payload = '{"item_id":42,  "label":"héllo ✓","big":12345678901234567890,"server_timestamp":1735689600}';
    const [a, b] = await insert([
      { uuid: 'ev-a', type: 'item_created', target: 'folder', targetId: 12, at: 7, status: PROCESSED.EXPIRED, payload },
      { uuid: null, type: 'session_expired', target: 'user', targetId: 5, status: PROCESSED.PENDING },
    ]);
    const rows = await selectAll({});
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ rowId: a, eventUuid: 'ev-a', eventType: 'item_created', targetType: 'folder', targetId: 12, payload, createdAt: (T0 + 7) * 1000, processed: PROCESSED.EXPIRED });
    expect(rows[1]).toMatchObject({ rowId: b, eventUuid: null, eventType: 'session_expired', targetType: 'user', targetId: 5, processed: PROCESSED.PENDING });
    expect(Math.abs(rows[0].readAt - Date.now())).toBeLessThan(5_000);
  });

  it('selects an inclusive id range', async () => {
    const ids = await insert([1, 2, 3, 4, 5].map((i) => ({ uuid: `r-${i}`, target: 'kb' as const })));
    const rows = await selectAll({ fromId: ids[1], toId: ids[3] });
    expect(rows.map((r) => r.rowId)).toEqual(ids.slice(1, 4));
    expect((await store.countReplayEvents({ fromId: ids[1], toId: ids[3] })).count).toBe(3);
    expect(await selectAll({ fromId: ids[4] + 1 })).toEqual([]);
  });

  it('selects created_at ≥ since and < until, at the column\'s second resolution', async () => {
    const ids = await insert([0, 10, 20, 30].map((at) => ({ uuid: `t-${at}`, target: 'broadcast' as const, at })));
    const ms = (s: number) => (T0 + s) * 1000;
    expect((await selectAll({ since: ms(10), until: ms(30) })).map((r) => r.rowId)).toEqual([ids[1], ids[2]]);
    // A since between two seconds excludes the earlier second; an until between them includes it.
    expect((await selectAll({ since: ms(10) + 1 })).map((r) => r.rowId)).toEqual([ids[2], ids[3]]);
    expect((await selectAll({ until: ms(20) + 1 })).map((r) => r.rowId)).toEqual([ids[0], ids[1], ids[2]]);
    expect((await store.countReplayEvents({ since: ms(10), until: ms(30) })).count).toBe(2);
    // Far outside the TIMESTAMP range of MySQL: an until after 2038 excludes nothing, a since after it everything.
    expect(await selectAll({ until: Date.UTC(2100, 0, 1) })).toHaveLength(4);
    expect(await selectAll({ since: Date.UTC(2100, 0, 1) })).toEqual([]);
  });

  it('selects by event types, targets and statuses, any of each list', async () => {
    const ids = await insert([
      { uuid: 'f-1', type: 'item_updated', target: 'folder', targetId: 5 },
      { uuid: 'f-2', type: 'item_deleted', target: 'user', targetId: 5 },
      { uuid: 'f-3', type: 'item_updated', target: 'folder', targetId: 6, status: PROCESSED.REJECTED },
      { uuid: 'f-4', type: 'kb_updated', target: 'kb', targetId: 99 },
      { uuid: 'f-5', type: 'fields_updated', target: 'broadcast' },
      { uuid: 'f-6', type: 'item_updated', target: 'user', targetId: 7, status: PROCESSED.PENDING },
    ]);
    const sel = async (f: ReplayFilter) => (await selectAll(f)).map((r) => r.eventUuid);
    expect(await sel({ eventTypes: ['item_updated'] })).toEqual(['f-1', 'f-3', 'f-6']);
    expect(await sel({ eventTypes: ['item_deleted', 'kb_updated'] })).toEqual(['f-2', 'f-4']);
    // folder:5 is not user:5; kb matches whatever its target_id says.
    expect(await sel({ targets: [{ type: 'folder', id: 5 }] })).toEqual(['f-1']);
    expect(await sel({ targets: [{ type: 'user', id: 5 }, { type: 'user', id: 7 }] })).toEqual(['f-2', 'f-6']);
    expect(await sel({ targets: [{ type: 'kb' }, { type: 'broadcast' }, { type: 'folder', id: 6 }] })).toEqual(['f-3', 'f-4', 'f-5']);
    expect(await sel({ statuses: [PROCESSED.REJECTED, PROCESSED.PENDING] })).toEqual(['f-3', 'f-6']);
    expect(await sel({ statuses: [] })).toHaveLength(6);
    // Conditions of different fields all apply.
    expect(await sel({ eventTypes: ['item_updated'], targets: [{ type: 'folder', id: 5 }, { type: 'folder', id: 6 }], statuses: [PROCESSED.DELIVERED] })).toEqual(['f-1']);
    expect((await store.countReplayEvents({ eventTypes: ['item_updated'] })).count).toBe(3);
    expect((await store.countReplayEvents({ eventTypes: ['item_updated'] })).headId).toBe(ids[5]);
  });

  it('reads in keyset pages: each page after the last row id, never past the head given', async () => {
    const ids = await insert(Array.from({ length: 25 }, (_, i) => ({ uuid: `k-${i}`, target: 'user' as const, targetId: 1 + (i % 3) })));
    const filter: ReplayFilter = { targets: [{ type: 'user', id: 1 }] };
    const all = await selectAll(filter, 4);
    expect(all.map((r) => r.rowId)).toEqual(ids.filter((_, i) => i % 3 === 0));
    const firstPage = await store.selectReplayEvents(filter, 0, ids[24], 4);
    const next = await store.selectReplayEvents(filter, firstPage[3].rowId, ids[24], 4);
    expect(next[0].rowId).toBe(ids[12]);
    // Rows added after the head was taken (a replay's own journal) are not selected.
    const { headId } = await store.countReplayEvents(filter);
    await insert([{ uuid: 'late', target: 'user', targetId: 1 }]);
    expect((await store.selectReplayEvents(filter, 0, headId, 100)).map((r) => r.eventUuid)).not.toContain('late');
    expect((await store.selectReplayEvents({ ...filter, toId: ids[3] }, 0, headId, 100)).map((r) => r.rowId)).toEqual([ids[0], ids[3]]);
  });

  it('pages through 2,500 rows in id order, each row once', async () => {
    const values = Array.from({ length: 2500 }, (_, i) => [`bulk-${i}`, 'bulk', 'user', 1, `{"i":${i}}`, T0, PROCESSED.DELIVERED]);
    for (let i = 0; i < values.length; i += 500) {
      const chunk = values.slice(i, i + 500);
      await seed.execSql(
        `INSERT INTO {{prefix}}websocket_events (event_uuid, event_type, target_type, target_id, payload, created_at, processed)
         VALUES ${chunk.map(() => `(?, ?, ?, ?, ?, ${time}, ?)`).join(', ')}`,
        chunk.flat(),
      );
    }
    const rows = await selectAll({ eventTypes: ['bulk'] });
    expect(rows).toHaveLength(2500);
    expect(rows.map((r) => JSON.parse(r.payload).i)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
    expect((await store.countReplayEvents({ eventTypes: ['bulk'] })).count).toBe(2500);
  });
});

describe('Store replay selection on a closed store', () => {
  it('rejects with TPWS_ERR_STORE_UNAVAILABLE', async () => {
    const store = openStore('sqlite::memory:', PREFIX);
    await store.close();
    await expect(store.countReplayEvents({})).rejects.toMatchObject({ code: 'TPWS_ERR_STORE_UNAVAILABLE' });
    await expect(store.selectReplayEvents({}, 0, 10, 10)).rejects.toMatchObject({ code: 'TPWS_ERR_STORE_UNAVAILABLE' });
  });
});
