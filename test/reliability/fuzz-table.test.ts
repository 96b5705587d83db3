/**
 * Fuzzing the events table (issue #12): rows inserted by plain SQL, as
 * TeamPass's PHP or an operator could write them, with invalid or non-object
 * JSON payloads, unknown target types, NULL in the nullable columns,
 * non-numeric target ids, bad event types and ids, payloads of several MB,
 * and timestamps far in the past and the future, shuffled among valid rows
 * and read in small batches. Valid rows are delivered once; invalid ones are
 * marked rejected (2), logged with their code and counted, and never hold
 * back the rows after them; the poller keeps going.
 *
 * Builds on test/integration/ingest-poller.test.ts (one poison row, one
 * stale row) and test/mysql/poller-mysql.test.ts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';
import type { Random } from '../helpers/random.js';
import { scenarioNote, scenarioRandom, withSeed } from '../helpers/reliability.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { describeStores, type StoreKind } from '../helpers/stores.js';
import { until } from '../helpers/until.js';
import { TestClient } from '../helpers/ws-client.js';

const PREFIX = 'teampass_';
const WATCHER = 77;
const OTHER_USER = 78;
const FOLDER = 5;
/** Half of limits.maxBufferedBytes (4 MiB by default): the largest row payload delivered (docs/ingest.md). */
const ROW_PAYLOAD_LIMIT = 2 * 1024 * 1024;
/** processed values (docs/ingest.md §When the socket is down); 'refused': the database would not store the row. */
type Outcome = 0 | 1 | 2 | 3 | null | 'refused';

interface RowSpec {
  kind: string;
  /** Column values to insert; `created_at` is an SQL expression when given. */
  cols: { event_type: unknown; target_type: unknown; target_id: unknown; payload: unknown; event_uuid: unknown; created_at?: string; processed?: unknown };
  /** Outcomes the row may end with (several where the store coerces the value). */
  allowed: Outcome[];
  /** A delivered row reaches the watcher (its user, its folder, or a broadcast). */
  toWatcher: boolean;
  /** MariaDB: insert with IGNORE, so the server stores a coerced value instead of refusing (a lax sql_mode, as old TeamPass installs have). */
  ignore?: boolean;
}

/** One row of the mix, for `kind` store. */
function rowSpec(rng: Random, kind: StoreKind, uuid: string): RowSpec {
  const mysql = kind === 'mysql';
  const base = { event_type: 'fuzz_row', target_type: 'user', target_id: WATCHER, payload: JSON.stringify({ n: rng.int(0, 1e6) }), event_uuid: uuid };
  const pick = rng.pick([
    'valid-user', 'valid-folder', 'valid-broadcast', 'valid-kb', 'valid-other-user', 'valid-null-uuid', 'valid-empty-array', 'valid-future',
    'invalid-json', 'non-object-json', 'unknown-target', 'null-target-id', 'non-numeric-target-id', 'bad-event-type', 'bad-event-uuid',
    'bad-exclude', 'huge', 'past', 'null-created-at', 'null-processed',
  ], [8, 5, 4, 2, 2, 3, 2, 2, 4, 4, 3, 3, 4, 3, 3, 2, 2, 2, 1, 1]);
  const r = (cols: Partial<RowSpec['cols']>, allowed: Outcome[], toWatcher = false, ignore = false): RowSpec => ({ kind: pick, cols: { ...base, ...cols }, allowed, toWatcher, ignore });
  switch (pick) {
    case 'valid-user': return r({}, [1], true);
    case 'valid-folder': return r({ target_type: 'folder', target_id: FOLDER }, [1], true);
    case 'valid-broadcast': return r({ target_type: 'broadcast', target_id: null }, [1], true);
    case 'valid-kb': return r({ target_type: 'kb', target_id: null }, [1]);
    case 'valid-other-user': return r({ target_id: OTHER_USER }, [1]);
    case 'valid-null-uuid': return r({ event_uuid: null }, [1], true);
    case 'valid-empty-array': return r({ payload: '[]' }, [1], true);
    case 'valid-future': return r({ created_at: mysql ? "'2037-12-31 00:00:00'" : "'2099-12-31 00:00:00'" }, [1], true);
    // MariaDB's JSON column checks json_valid(): the server refuses these (SQLite stores them).
    case 'invalid-json': return r({ payload: rng.pick(['{"a":', 'not json', '', '{"a":1}}', "{'a':1}", '\u0000']) }, mysql ? ['refused'] : [2]);
    case 'non-object-json': return r({ payload: rng.pick(['[1,2]', '"x"', '5', 'null', 'true', '[{}]']) }, [2]);
    // SQLite's CHECK refuses it; MariaDB with IGNORE stores the ENUM's '' error value.
    // (MariaDB's ENUM ignores case and trailing spaces: 'User' and 'folder ' are valid there.)
    case 'unknown-target': return r({ target_type: rng.pick(['group', 'users', '', '*']) }, mysql ? [2] : ['refused'], false, true);
    case 'null-target-id': return r({ target_type: rng.pick(['user', 'folder']), target_id: null }, [2]);
    // SQLite keeps text it cannot read as a number (and blobs); MariaDB (IGNORE) stores 0 for these.
    case 'non-numeric-target-id': return r({ target_id: rng.pick(mysql ? ['abc', -3, 'x1'] : ['abc', '12abc', '0x1f', 1.5, -3, 0, 4294967296, Buffer.from('7')]) }, [2], false, true);
    case 'bad-event-type': return r({ event_type: rng.pick(['', 'has space', 'é', 'tab\there', 'new\nline']) }, [2]);
    case 'bad-event-uuid': return r({ event_uuid: `${uuid}${rng.pick(['/x', ' x', '#', 'é'])}` }, [2]);
    case 'bad-exclude': return r({ payload: JSON.stringify({ exclude_user_id: rng.pick(['abc', -1, 1.5, [], {}]) }) }, [2]);
    // Several MB: delivered up to half of limits.maxBufferedBytes (what a socket can take and a
    // resume replay); a larger row is rejected, where it used to close every recipient with 4100.
    case 'huge': {
      const payload = JSON.stringify({ big: 'h'.repeat(rng.int(1_000_000, 6_000_000)) });
      const fits = payload.length <= ROW_PAYLOAD_LIMIT;
      return r({ payload, target_type: 'broadcast', target_id: null }, [fits ? 1 : 2], fits);
    }
    case 'past': return r({ created_at: mysql ? "'1971-01-01 00:00:00'" : "'1971-01-01 00:00:00'" }, [3]);
    // SQLite: NOT NULL. MariaDB: the TIMESTAMP column takes NULL; the row then has no age (the epoch): expired.
    case 'null-created-at': return r({ created_at: 'NULL' }, mysql ? [3, 1, 'refused'] : ['refused']);
    // MariaDB's processed column is nullable: such a row is not pending (processed = 0 selects), and is left alone.
    default: return r({ processed: null }, mysql ? [null] : ['refused']);
  }
}

describeStores('fuzz: events table rows inserted by SQL', ({ kind, newStoreUrl }) => {
  let d: TestDaemon;
  let seed: Seeder;
  let watcher: TestClient;

  beforeAll(async () => {
    const url = await newStoreUrl();
    // Small batches, so rejected rows fall at the start, middle and end of many of them.
    d = await startDaemon({ 'store.url': url, 'poller.intervalMs': 20, 'poller.idleIntervalMs': 20, 'poller.batchSize': 7 });
    seed = await openSeeder(url, PREFIX);
    const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId: WATCHER, folders: [FOLDER], ttlSec: 600 });
    ({ client: watcher } = await TestClient.login(d.url(token)));
    await watcher.request({ action: 'subscribe', channel: 'folder', data: { folder_id: FOLDER } });
  });
  afterAll(async () => {
    await watcher?.close();
    await seed?.close();
    await d?.stop();
  });

  async function insert(spec: RowSpec): Promise<number | null> {
    const c = spec.cols;
    const cols = ['event_type', 'target_type', 'target_id', 'payload', 'event_uuid'];
    const vals: unknown[] = [c.event_type, c.target_type, c.target_id, c.payload, c.event_uuid];
    const exprs = cols.map(() => '?');
    if (c.created_at !== undefined) (cols.push('created_at'), exprs.push(c.created_at));
    if ('processed' in c) (cols.push('processed'), exprs.push('?'), vals.push(c.processed));
    const ignore = spec.ignore && kind === 'mysql' ? 'IGNORE ' : '';
    try {
      await seed.execSql(`INSERT ${ignore}INTO {{prefix}}websocket_events (${cols.join(', ')}) VALUES (${exprs.join(', ')})`, vals);
    } catch {
      return null;
    }
    const [row] = await seed.execSql<{ id: number }>('SELECT MAX(id) AS id FROM {{prefix}}websocket_events');
    return Number(row.id);
  }

  const statusOf = async (ids: number[]) => {
    const rows = await seed.execSql<{ id: number; processed: number | null }>(`SELECT id, processed FROM {{prefix}}websocket_events WHERE id IN (${ids.join(',')})`);
    return new Map(rows.map((r) => [Number(r.id), r.processed === null ? null : Number(r.processed)]));
  };

  it('delivers the valid rows once and marks each invalid one rejected, logged and counted, without holding back the rows after it', async () => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const before = { ...d.daemon.poller!.counters };
      const logsFrom = d.logs.length;
      const rows: { spec: RowSpec; id: number | null }[] = [];
      const t0 = performance.now();
      for (let i = 0; i < 120; i++) {
        const spec = rowSpec(rng, kind, `tbl-${rng.seed}-${i}`);
        rows.push({ spec, id: await insert(spec) });
      }
      const inserted = rows.filter((r) => r.id !== null) as { spec: RowSpec; id: number }[];
      for (const r of rows) {
        if (r.id === null) expect(r.spec.allowed, `${r.spec.kind} was refused by the database`).toContain('refused');
      }
      // Every row the poller can see is handled (none left at 0), then a valid row inserted last is delivered.
      const ids = inserted.map((r) => r.id);
      await until(async () => [...(await statusOf(ids)).values()].every((s) => s !== 0), 'every fuzz row handled', 30_000);
      const barrier = `tbl-barrier-${rng.seed}`;
      await insert({ kind: 'barrier', cols: { event_type: 'barrier', target_type: 'user', target_id: WATCHER, payload: '{}', event_uuid: barrier }, allowed: [1], toWatcher: true });
      await watcher.next((m) => m.type === 'event' && m.id === barrier, 20_000);
      const handledMs = performance.now() - t0;

      const status = await statusOf(ids);
      const outcomes = new Map<string, number>();
      for (const r of inserted) {
        const s = status.get(r.id)!;
        expect(r.spec.allowed, `row ${r.id} (${r.spec.kind}: ${JSON.stringify(r.spec.cols).slice(0, 160)}) ended with processed = ${s}`).toContain(s);
        const k = `${r.spec.kind}=${s}`;
        outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
      }
      // The watcher got each delivered row meant for it exactly once, and nothing else.
      const got = watcher.received.filter((m) => m.type === 'event').map((m) => m.id as string);
      watcher.received.length = 0;
      const want = inserted.filter((r) => r.spec.toWatcher && status.get(r.id) === 1).map((r) => (r.spec.cols.event_uuid as string | null) ?? `row-${r.id}`);
      expect([...got].sort()).toEqual([...want].sort());

      // Rejections: counted (tpws_table_rows_total{outcome="rejected"}) and logged with the code and row id.
      const rejected = inserted.filter((r) => status.get(r.id) === 2).map((r) => r.id);
      const c = d.daemon.poller!.counters;
      expect(c.rowsRejected - before.rowsRejected).toBe(rejected.length);
      expect(c.rowsExpired - before.rowsExpired).toBe(inserted.filter((r) => status.get(r.id) === 3).length);
      const logged = d.logs.slice(logsFrom).filter((l) => l.code === 'TPWS_ERR_INVALID_EVENT' && l.msg === 'events table row rejected').map((l) => l.row_id as number);
      expect([...logged].sort((a, b) => a - b)).toEqual([...rejected].sort((a, b) => a - b));
      // The poller kept going: no failed polls.
      expect(c.errors - before.errors).toBe(0);
      const sizes = inserted.filter((r) => r.spec.kind === 'huge').map((r) => `${Math.round((r.spec.cols.payload as string).length / 1e5) / 10} MB ${status.get(r.id) === 1 ? 'delivered' : 'rejected'}`);
      scenarioNote(`fuzz-table [${kind}]`,
        `120 rows by SQL in random order (${rows.length - inserted.length} refused by the database), read 7 per batch: ${[...outcomes].sort().map(([k, n]) => `${k} ${n}`).join(', ')}; ${want.length} delivered to the watcher once each, nothing else; ${rejected.length} rejected, each logged with TPWS_ERR_INVALID_EVENT and its row id and counted; broadcast payloads of ${sizes.join(', ')} (the watcher stayed connected); no poll failed; all handled and a barrier row delivered ${Math.round(handledMs)} ms after the first insert`, rng.seed);
    });
  }, 55_000);
});
