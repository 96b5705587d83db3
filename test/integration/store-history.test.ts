/**
 * The storage side of event positions and the delivery history (what a
 * resume replays): the `tpws_pos` column, epochs, history reads and the
 * history floor raised by retention. Every test runs on SQLite and MariaDB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.js';
import { loadMigrations, splitStatements } from '../../src/store/sql-support.js';
import { PROCESSED, type EventInsert, type Store } from '../../src/store/store.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';
import { createTestDatabase, describeMysql } from '../helpers/mysql.js';
import { describeStores, type StoreKind } from '../helpers/stores.js';
import { teampass317Tables } from '../helpers/teampass-317.js';

const PREFIX = 'teampass_';
const EVENTS = `${PREFIX}websocket_events`;
/** A position of the third epoch, above 2^32 as every real position is. */
const BIG = 3 * 2 ** 32 + 7;

function event(id: string, extra: Partial<EventInsert> = {}): EventInsert {
  return { eventUuid: id, eventType: 'item_updated', targetType: 'folder', targetId: 7, payload: '{"item_id":1}', ...extra };
}

/** What the history needs of the schema, read from the catalogue of either dialect. */
interface HistorySchema {
  /** `tpws_pos`: its declared type and whether it may be NULL; null when missing. */
  pos: { type: string; nullable: boolean } | null;
  /** Whether a unique index covers `tpws_pos` alone. */
  posUnique: boolean;
  tables: string[];
}

async function historySchema(seed: Seeder): Promise<HistorySchema> {
  if (seed.kind === 'sqlite') {
    const cols = await seed.execSql<{ name: string; type: string; notnull: number }>(`SELECT name, type, "notnull" FROM pragma_table_info('${EVENTS}')`);
    const indexes = await seed.execSql<{ name: string; unique: number }>(`SELECT name, "unique" FROM pragma_index_list('${EVENTS}')`);
    let posUnique = false;
    for (const ix of indexes) {
      const on = await seed.execSql<{ name: string }>(`SELECT name FROM pragma_index_info('${ix.name}')`);
      if (ix.unique === 1 && on.length === 1 && on[0].name === 'tpws_pos') posUnique = true;
    }
    const tables = await seed.execSql<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '${PREFIX}tpws%' ORDER BY name`);
    const pos = cols.find((c) => c.name === 'tpws_pos');
    return { pos: pos ? { type: pos.type.toLowerCase(), nullable: pos.notnull === 0 } : null, posUnique, tables: tables.map((t) => t.name) };
  }
  const cols = await seed.execSql<{ type: string; nullable: string }>(
    `SELECT COLUMN_TYPE AS type, IS_NULLABLE AS nullable FROM information_schema.COLUMNS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'tpws_pos'`,
    [EVENTS],
  );
  const idx = await seed.execSql<{ cols: string; non_unique: number }>(
    `SELECT GROUP_CONCAT(COLUMN_NAME) AS cols, MAX(NON_UNIQUE) AS non_unique FROM information_schema.STATISTICS
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = 'idx_tpws_pos' GROUP BY INDEX_NAME`,
    [EVENTS],
  );
  const tables = await seed.execSql<{ name: string }>(
    `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '${PREFIX}tpws%' ORDER BY TABLE_NAME`,
  );
  return {
    pos: cols[0] ? { type: cols[0].type, nullable: cols[0].nullable === 'YES' } : null,
    posUnique: idx.length === 1 && idx[0].cols === 'tpws_pos' && Number(idx[0].non_unique) === 0,
    tables: tables.map((t) => t.name),
  };
}

/** The migration files an earlier tp-ws (before positions) applied, run straight and recorded as it did. */
async function applyOldSchema(seed: Seeder, kind: StoreKind): Promise<void> {
  const names = kind === 'sqlite' ? ['001_schema.sql'] : ['001_full_schema.sql', '002_teampass_additions.sql'];
  for (const file of loadMigrations(kind, PREFIX).filter((f) => names.includes(f.name))) {
    for (const stmt of splitStatements(file.sql)) await seed.execSql(stmt);
    await seed.execSql(`INSERT INTO {{prefix}}tpws_migrations (name) VALUES (?)`, [file.name]);
  }
}

/** The newest migration file of a dialect: the one that brings the history tables. */
const historyFile = (kind: StoreKind) => (kind === 'sqlite' ? '002_history.sql' : '003_history.sql');

describeStores('Store delivery history', ({ kind, newStoreUrl }) => {
  /** A migrated store and a raw-SQL seeder on a new database. */
  async function fresh(): Promise<{ store: Store; seed: Seeder }> {
    const url = await newStoreUrl();
    const store = openStore(url, PREFIX);
    await store.migrate();
    return { store, seed: await openSeeder(url, PREFIX) };
  }

  const opened: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const o of opened.reverse()) await o.close();
  });
  async function open(): Promise<{ store: Store; seed: Seeder }> {
    const s = await fresh();
    opened.push(s.store, s.seed);
    return s;
  }

  describe('#migrate', () => {
    it('gives a database of the previous schema tpws_pos (nullable, unique) and the history tables, keeping its rows; a second run changes nothing', async () => {
      const url = await newStoreUrl();
      const seed = await openSeeder(url, PREFIX);
      opened.push(seed);
      await applyOldSchema(seed, kind);
      await seed.execSql(`INSERT INTO {{prefix}}websocket_events (event_uuid, event_type, target_type, target_id, payload, processed) VALUES ('old-1', 'item_created', 'folder', 3, '{"a":1}', 1)`);
      expect((await historySchema(seed)).pos).toBeNull();

      const store = openStore(url, PREFIX);
      opened.push(store);
      expect(await store.migrate()).toEqual({ applied: [historyFile(kind)], mode: 'full' });
      const after = await historySchema(seed);
      expect(after).toEqual({
        // MariaDB says bigint(20), MySQL 8 bigint.
        pos: { type: kind === 'sqlite' ? 'integer' : expect.stringMatching(/^bigint(\(20\))?$/), nullable: true },
        posUnique: true,
        tables: [`${PREFIX}tpws_epochs`, ...(kind === 'sqlite' ? [`${PREFIX}tpws_lease`] : []), `${PREFIX}tpws_migrations`, `${PREFIX}tpws_state`],
      });
      const rows = await seed.execSql<{ event_uuid: string; processed: number; tpws_pos: unknown }>(`SELECT event_uuid, processed, tpws_pos FROM {{prefix}}websocket_events`);
      expect(rows).toEqual([{ event_uuid: 'old-1', processed: 1, tpws_pos: null }]);

      expect(await store.migrate()).toEqual({ applied: [], mode: 'full' });
      expect(await historySchema(seed)).toEqual(after);
    });

    it('creates the same schema on an empty database', async () => {
      const { store, seed } = await open();
      const s = await historySchema(seed);
      expect(s.pos).toMatchObject({ nullable: true });
      expect(s.posUnique).toBe(true);
      expect(s.tables).toEqual(expect.arrayContaining([`${PREFIX}tpws_epochs`, `${PREFIX}tpws_state`]));
      expect(await store.historyFloor()).toBe(0);
    });

    it('lets rows without a position (TeamPass\'s own inserts) coexist under the unique index', async () => {
      const { store, seed } = await open();
      for (let i = 0; i < 3; i++) {
        await seed.execSql(`INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload) VALUES ('item_created', 'folder', 3, '{}')`);
      }
      expect(await store.fetchPending(10)).toHaveLength(3);
    });
  });

  describe('#journalEvents and #markDelivered', () => {
    let store: Store;
    let seed: Seeder;
    const row = async (uuid: string) => {
      const rows = await seed.execSql<{ id: number; processed: number; tpws_pos: number | null; done: number | null }>(
        `SELECT id, processed, tpws_pos, ${kind === 'sqlite' ? `CAST(strftime('%s', processed_at) AS INTEGER)` : 'UNIX_TIMESTAMP(processed_at)'} AS done
         FROM {{prefix}}websocket_events WHERE event_uuid = ?`,
        [uuid],
      );
      return rows[0] === undefined ? undefined : { ...rows[0], tpws_pos: rows[0].tpws_pos === null ? null : Number(rows[0].tpws_pos) };
    };
    const dbNow = async () => Number((await seed.execSql<{ n: number }>(`SELECT ${kind === 'sqlite' ? `CAST(strftime('%s', 'now') AS INTEGER)` : 'UNIX_TIMESTAMP()'} AS n`))[0].n);

    beforeAll(async () => {
      ({ store, seed } = await open());
    });

    it('writes the position given, and none when it is absent or null', async () => {
      await store.journalEvents([event('j-1', { pos: BIG }), event('j-2'), event('j-3', { pos: null })]);
      expect(await row('j-1')).toMatchObject({ processed: PROCESSED.DELIVERED, tpws_pos: BIG });
      expect(await row('j-2')).toMatchObject({ processed: PROCESSED.DELIVERED, tpws_pos: null });
      expect(await row('j-3')).toMatchObject({ tpws_pos: null });
    });

    it('keeps the first position of a duplicate event id, and gives one to a duplicate that had none', async () => {
      await store.journalEvents([event('d-1', { pos: 101 })]);
      await store.journalEvents([event('d-1', { pos: 102 }), event('d-2')]);
      await store.journalEvents([event('d-2', { pos: 103 })]);
      await store.journalEvents([event('d-2')]);
      expect(await row('d-1')).toMatchObject({ processed: PROCESSED.DELIVERED, tpws_pos: 101 });
      expect(await row('d-2')).toMatchObject({ processed: PROCESSED.DELIVERED, tpws_pos: 103 });
      expect(await seed.execSql(`SELECT id FROM {{prefix}}websocket_events WHERE event_uuid IN ('d-1', 'd-2')`)).toHaveLength(2);
    });

    it('gives the emitter\'s pending fallback row the position and marks it delivered; a rejected row gets the position and stays rejected', async () => {
      const pendingId = await store.insertPendingEvent(event('f-1'));
      await store.journalEvents([event('f-1', { pos: 201 })]);
      expect(await row('f-1')).toMatchObject({ id: pendingId, processed: PROCESSED.DELIVERED, tpws_pos: 201 });
      expect((await row('f-1'))!.done).not.toBeNull();

      const rejectedId = await store.insertPendingEvent(event('f-2'));
      await store.markProcessed([rejectedId], PROCESSED.REJECTED);
      await store.journalEvents([event('f-2', { pos: 202 })]);
      expect(await row('f-2')).toMatchObject({ processed: PROCESSED.REJECTED, tpws_pos: 202 });
    });

    it('marks poller rows delivered at their positions, with processed_at from the database clock, in one call for many rows', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 1200; i++) ids.push(await store.insertPendingEvent(event(`m-${i}`)));
      await store.markDelivered(ids.map((rowId, i) => ({ rowId, pos: 10_000 + i })));
      const rows = await seed.execSql<{ id: number; processed: number; tpws_pos: number }>(
        `SELECT id, processed, tpws_pos FROM {{prefix}}websocket_events WHERE event_uuid LIKE 'm-%' ORDER BY id`,
      );
      expect(rows.map((r) => [Number(r.id), Number(r.processed), Number(r.tpws_pos)])).toEqual(ids.map((id, i) => [id, PROCESSED.DELIVERED, 10_000 + i]));
      const done = (await row('m-0'))!.done!;
      expect(Math.abs(done - (await dbNow()))).toBeLessThan(60);
      expect(await store.fetchPending(10)).toEqual([]);
    });

    it('keeps the position of a row journaled (delivered by the socket) before the poller marks it', async () => {
      const id = await store.insertPendingEvent(event('k-1'));
      await store.journalEvents([event('k-1', { pos: 301 })]);
      await store.markDelivered([{ rowId: id, pos: 302 }]);
      expect(await row('k-1')).toMatchObject({ processed: PROCESSED.DELIVERED, tpws_pos: 301 });
    });

    it('accepts an empty list, and refuses a position that is not a positive safe integer', async () => {
      await expect(store.markDelivered([])).resolves.toBeUndefined();
      const id = await store.insertPendingEvent(event('bad-1'));
      for (const pos of [1.5, 0, -3, Number.NaN, 2 ** 53]) {
        await expect(store.markDelivered([{ rowId: id, pos }])).rejects.toMatchObject({ code: 'TPWS_ERR_INTERNAL' });
      }
      await expect(store.journalEvents([event('bad-2', { pos: 0.5 })])).rejects.toMatchObject({ code: 'TPWS_ERR_INTERNAL' });
      expect(await row('bad-1')).toMatchObject({ processed: PROCESSED.PENDING, tpws_pos: null });
      expect(await row('bad-2')).toBeUndefined();
    });

    it('leaves positions alone when rows are marked processed with a status', async () => {
      await store.journalEvents([event('p-1', { pos: 401 })]);
      const noPos = await store.insertPendingEvent(event('p-2'));
      await store.markProcessed([(await row('p-1'))!.id, noPos], PROCESSED.EXPIRED);
      expect(await row('p-1')).toMatchObject({ processed: PROCESSED.EXPIRED, tpws_pos: 401 });
      expect(await row('p-2')).toMatchObject({ processed: PROCESSED.EXPIRED, tpws_pos: null });
    });
  });

  describe('epochs', () => {
    it('numbers epochs upwards, also across store instances (daemon restarts), and finds them both ways', async () => {
      const url = await newStoreUrl();
      const first = openStore(url, PREFIX);
      opened.push(first);
      await first.migrate();
      const a = await first.registerEpoch('019ad3f0-0000-7000-8000-00000000000a');
      const b = await first.registerEpoch('019ad3f0-0000-7000-8000-00000000000b');
      await first.close();
      const second = openStore(url, PREFIX);
      opened.push(second);
      await second.migrate();
      const c = await second.registerEpoch('019ad3f0-0000-7000-8000-00000000000c');
      expect(a).toBeGreaterThanOrEqual(1);
      expect(b).toBeGreaterThan(a);
      expect(c).toBeGreaterThan(b);
      expect(await second.findEpoch('019ad3f0-0000-7000-8000-00000000000b')).toBe(b);
      expect(await second.epochName(c)).toBe('019ad3f0-0000-7000-8000-00000000000c');
      expect(await second.epochName(a)).toBe('019ad3f0-0000-7000-8000-00000000000a');
    });

    it('finds no epoch the database never recorded, nor one spelled in another case', async () => {
      const { store } = await open();
      const no = await store.registerEpoch('019ad3f0-abcd-7000-8000-0000000000ff');
      expect(await store.findEpoch('019AD3F0-ABCD-7000-8000-0000000000FF')).toBeNull();
      expect(await store.findEpoch('never-seen')).toBeNull();
      expect(await store.findEpoch('')).toBeNull();
      expect(await store.epochName(no + 1)).toBeNull();
      expect(await store.epochName(0)).toBeNull();
    });
  });

  describe('#readHistory and #readHistoryTail', () => {
    let store: Store;
    const e1 = 2 ** 32;
    const e3 = 3 * 2 ** 32;
    /** Stored with spacing and an integer past 2^53: the payload must come back as the same text. */
    const payload = '{"item_id": 5,  "big": 123456789012345678901}';

    let seed: Seeder;

    beforeAll(async () => {
      ({ store, seed } = await open());
      await store.journalEvents([
        event('h-1', { pos: e1 + 1, createdAt: Date.UTC(2026, 0, 2, 3, 4, 5), payload }),
        event('h-2', { pos: e1 + 2, targetType: 'user', targetId: 4 }),
        event('h-none'),
        event('h-3', { pos: e3 + 7, targetType: 'broadcast', targetId: null }),
        event('h-4', { pos: e3 + 8 }),
        event('h-5', { pos: e3 + 9, targetType: 'kb', targetId: null }),
      ]);
      // Any processed status is history: a row the poller rejected later still holds its position.
      const [{ id }] = await seed.execSql<{ id: number }>(`SELECT id FROM {{prefix}}websocket_events WHERE event_uuid = 'h-4'`);
      await store.markProcessed([Number(id)], PROCESSED.REJECTED);
      // A row TeamPass inserted and nobody delivered has no position: never history.
      await seed.execSql(`INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload) VALUES ('item_created', 'folder', 3, '{}')`);
    });

    it('reads the rows strictly between two positions in position order, as stored, with positions past 2^32 exact', async () => {
      const rows = await store.readHistory(e1 + 1, e3 + 9, 100);
      expect(rows.map((r) => r.pos)).toEqual([e1 + 2, BIG, e3 + 8]);
      for (const r of rows) expect(Number.isSafeInteger(r.pos)).toBe(true);
      const [{ id: h2 }] = await seed.execSql<{ id: number }>(`SELECT id FROM {{prefix}}websocket_events WHERE event_uuid = 'h-2'`);
      expect(rows[0]).toEqual({ pos: e1 + 2, rowId: Number(h2), eventUuid: 'h-2', eventType: 'item_updated', targetType: 'user', targetId: 4, payload: '{"item_id":1}', createdAt: expect.any(Number) });
      expect(rows[1]).toMatchObject({ pos: BIG, eventUuid: 'h-3', targetType: 'broadcast', targetId: null });
      const [first] = await store.readHistory(0, e1 + 2, 10);
      expect(first).toEqual({ pos: e1 + 1, rowId: expect.any(Number), eventUuid: 'h-1', eventType: 'item_updated', targetType: 'folder', targetId: 7, payload, createdAt: Date.UTC(2026, 0, 2, 3, 4, 5) });
    });

    it('gets positions past 2^32 from the driver as exact numbers (mysql2: supportBigNumbers without bigNumberStrings)', async () => {
      const [r] = await seed.execSql<{ tpws_pos: unknown; top: unknown }>(
        `SELECT tpws_pos, (SELECT MAX(tpws_pos) FROM {{prefix}}websocket_events) AS top FROM {{prefix}}websocket_events WHERE event_uuid = 'h-3'`,
      );
      expect(r).toEqual({ tpws_pos: BIG, top: e3 + 9 });
    });

    it('stops at the limit, and reads nothing from an empty range or with a limit of 0', async () => {
      expect((await store.readHistory(0, Number.MAX_SAFE_INTEGER, 2)).map((r) => r.eventUuid)).toEqual(['h-1', 'h-2']);
      expect(await store.readHistory(e3 + 9, Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
      expect(await store.readHistory(e1 + 2, e3 + 7, 10)).toEqual([]);
      expect(await store.readHistory(0, Number.MAX_SAFE_INTEGER, 0)).toEqual([]);
    });

    it('reads the newest positions, oldest of them first', async () => {
      expect((await store.readHistoryTail(2)).map((r) => r.pos)).toEqual([e3 + 8, e3 + 9]);
      expect((await store.readHistoryTail(100)).map((r) => r.eventUuid)).toEqual(['h-1', 'h-2', 'h-3', 'h-4', 'h-5']);
      expect(await store.readHistoryTail(0)).toEqual([]);
    });

    it('lists the ids of the newest positioned rows processed within the window, oldest first, up to the first older one', async () => {
      expect(await store.recentEventIds(100, 3600)).toEqual(['h-1', 'h-2', 'h-3', 'h-4', 'h-5']);
      expect(await store.recentEventIds(2, 3600)).toEqual(['h-4', 'h-5']);
      expect(await store.recentEventIds(0, 3600)).toEqual([]);
      // What the dedup window would have forgotten by now is not fed back into it: the read stops at h-3.
      await seed.execSql(`UPDATE {{prefix}}websocket_events SET processed_at = ${seed.timeSql(-7200)} WHERE event_uuid = 'h-3'`);
      expect(await store.recentEventIds(100, 3600)).toEqual(['h-4', 'h-5']);
    });
  });

  describe('#deleteOldEvents and #historyFloor', () => {
    let store: Store;
    let seed: Seeder;
    /** Make rows look processed `hours` ago. */
    const age = (where: string, hours: number) =>
      seed.execSql(`UPDATE {{prefix}}websocket_events SET processed_at = ${seed.timeSql(-hours * 3600)} WHERE ${where}`);

    beforeAll(async () => {
      ({ store, seed } = await open());
    });

    it('raises the floor to the highest position deleted, keeps younger rows, and never deletes a pending one', async () => {
      expect(await store.historyFloor()).toBe(0);
      await store.journalEvents([event('r-1', { pos: 10 }), event('r-2', { pos: 20 }), event('r-3', { pos: 30 })]);
      await store.insertPendingEvent(event('r-pending'));
      await age(`event_uuid IN ('r-1', 'r-2')`, 48);
      expect(await store.deleteOldEvents(24)).toBe(2);
      expect(await store.historyFloor()).toBe(20);
      expect((await store.readHistory(0, 1000, 10)).map((r) => r.pos)).toEqual([30]);
      expect((await store.fetchPending(10)).map((r) => r.eventUuid)).toEqual(['r-pending']);
    });

    it('never lowers the floor, and leaves it when the rows deleted have no position', async () => {
      await store.journalEvents([event('r-4', { pos: 5 }), event('r-5')]);
      await age(`event_uuid = 'r-4'`, 48);
      expect(await store.deleteOldEvents(24)).toBe(1);
      expect(await store.historyFloor()).toBe(20);
      await age(`event_uuid = 'r-5'`, 48);
      expect(await store.deleteOldEvents(24)).toBe(1);
      expect(await store.historyFloor()).toBe(20);
      expect(await store.deleteOldEvents(24)).toBe(0);
      expect(await store.historyFloor()).toBe(20);
    });

    it('raises the floor across a deletion of many rows, to a position past 2^32 exactly', async () => {
      const events = Array.from({ length: 2500 }, (_, i) => event(`bulk-${i}`, { pos: BIG - 2499 + i }));
      await store.journalEvents(events);
      await age(`event_uuid LIKE 'bulk-%'`, 48);
      expect(await store.deleteOldEvents(24)).toBe(2500);
      expect(await store.historyFloor()).toBe(BIG);
      expect(await store.readHistoryTail(10)).toEqual([expect.objectContaining({ pos: 30 })]);
    });
  });
});

describeMysql('MysqlStore history on an existing TeamPass database', () => {
  const dbs: { drop(): Promise<void> }[] = [];
  const opened: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const o of opened.reverse()) await o.close();
    for (const db of dbs) await db.drop();
  });

  /** TeamPass 3.1.7's tables as its upgrade script creates them: no event_uuid, no tpws_pos. */
  async function teampassDatabase(): Promise<{ url: string; seed: Seeder }> {
    const db = await createTestDatabase();
    dbs.push(db);
    const seed = await openSeeder(db.url, PREFIX);
    opened.push(seed);
    for (const sql of teampass317Tables('{{prefix}}')) await seed.execSql(sql);
    await seed.execSql(`INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload) VALUES ('item_created', 'folder', 3, '{"item_id": 42}')`);
    return { url: db.url, seed };
  }

  const columns = async (seed: Seeder) =>
    (await seed.execSql<{ name: string }>(
      `SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
      [EVENTS],
    )).map((c) => c.name);

  /** TeamPass's own insert (its emitWebSocketEvent), which names neither tp-ws column. */
  const teampassInsert = (seed: Seeder) =>
    seed.execSql(`INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload) VALUES ('item_updated', 'user', 1, '{}')`);

  it('extends a TeamPass database tp-ws already extended (before positions): tpws_pos after TeamPass\'s columns, and TeamPass\'s inserts still work', async () => {
    const { url, seed } = await teampassDatabase();
    // What an earlier tp-ws left: 002 recorded and event_uuid with its unique index.
    for (const file of loadMigrations('mysql', PREFIX).filter((f) => f.name === '002_teampass_additions.sql')) {
      for (const stmt of splitStatements(file.sql)) await seed.execSql(stmt);
      await seed.execSql(`INSERT INTO {{prefix}}tpws_migrations (name) VALUES (?)`, [file.name]);
    }
    await seed.execSql(`ALTER TABLE {{prefix}}websocket_events ADD COLUMN event_uuid VARCHAR(64) NULL DEFAULT NULL, ADD UNIQUE INDEX idx_event_uuid (event_uuid)`);
    const before = await columns(seed);

    const store = openStore(url, PREFIX);
    opened.push(store);
    expect(await store.migrate()).toEqual({ applied: ['003_history.sql'], mode: 'teampass' });
    expect(await columns(seed)).toEqual([...before, 'tpws_pos']);
    expect(await historySchema(seed)).toMatchObject({ posUnique: true, tables: [`${PREFIX}tpws_epochs`, `${PREFIX}tpws_migrations`, `${PREFIX}tpws_state`] });
    expect(await store.migrate()).toEqual({ applied: [], mode: 'teampass' });

    await teampassInsert(seed);
    await teampassInsert(seed);
    const pending = await store.fetchPending(10);
    expect(pending).toHaveLength(3);
    await store.markDelivered(pending.map((r, i) => ({ rowId: r.rowId, pos: BIG + i })));
    expect((await store.readHistoryTail(10)).map((r) => r.pos)).toEqual([BIG, BIG + 1, BIG + 2]);
  });

  it('extends a TeamPass database tp-ws never saw in one run, and then applies nothing', async () => {
    const { url, seed } = await teampassDatabase();
    const before = await columns(seed);
    const store = openStore(url, PREFIX);
    opened.push(store);
    expect(await store.migrate()).toEqual({ applied: ['002_teampass_additions.sql', '003_history.sql'], mode: 'teampass' });
    expect(await columns(seed)).toEqual([...before, 'event_uuid', 'tpws_pos']);
    expect(await store.migrate()).toEqual({ applied: [], mode: 'teampass' });
    expect(await store.registerEpoch('e-1')).toBe(1);
    await teampassInsert(seed);
    expect(await store.fetchPending(10)).toHaveLength(2);
  });
});
