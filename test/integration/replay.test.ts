/**
 * `tp-ws replay` end to end: the real CLI (`node bin/tp-ws.js replay`, built
 * dist/) reading the events table of a real daemon on SQLite and on MariaDB,
 * sending through its ingest socket, and real WebSocket clients receiving (or
 * not) what it sends. `npm test` builds dist/ first.
 *
 * Nothing here depends on wall-clock speed: rate limiting is checked by what
 * arrives and in which order, never by how long it took.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIX, seedFixture } from '../helpers/fixture.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { describeStores } from '../helpers/stores.js';
import { TestClient, type Message } from '../helpers/ws-client.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin/tp-ws.js');
const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const scratch = mkdtempSync(join(tmpdir(), 'tpws-replay-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout as NDJSON (with --json): the event lines, then the summary. */
  lines: Record<string, any>[];
  summary: Record<string, any> | undefined;
}

/** The environment of a CLI run: none of the caller's TPWS_* settings, a scratch state dir. */
function cliEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPWS_') && v !== undefined) env[k] = v;
  env.TPWS_STATE_DIR = join(scratch, 'state');
  return env;
}

function parseLines(stdout: string): Record<string, any>[] {
  return stdout.split('\n').filter((l) => l.trim() !== '').map((l) => {
    try {
      return JSON.parse(l) as Record<string, any>;
    } catch {
      return { unparsable: l };
    }
  });
}

/** `tp-ws replay ARGS` to its end. */
function replay(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'replay', ...args], { cwd: ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      const all = parseLines(stdout);
      const summary = all.find((l) => l.summary !== undefined)?.summary as Record<string, any> | undefined;
      resolve({ code, stdout, stderr, lines: all.filter((l) => l.summary === undefined), summary });
    });
  });
}

interface SeedRow {
  uuid: string | null;
  type: string;
  target: 'user' | 'folder' | 'kb' | 'broadcast';
  targetId?: number | null;
  payload?: string;
  /** Seconds before the database's now; default 60. */
  agoSec?: number;
  /** processed; default 1 (delivered). */
  status?: number;
}

/** Insert rows as TeamPass or the journal writes them; returns their row ids, in order. */
async function insertRows(seed: Seeder, rows: SeedRow[]): Promise<number[]> {
  const ids: number[] = [];
  for (const r of rows) {
    await seed.execSql(
      `INSERT INTO {{prefix}}websocket_events (event_uuid, event_type, target_type, target_id, payload, created_at, processed)
       VALUES (?, ?, ?, ?, ?, ${seed.timeSql(-(r.agoSec ?? 60))}, ?)`,
      [r.uuid, r.type, r.target, r.targetId ?? null, r.payload ?? '{}', r.status ?? 1],
    );
    // The id of this connection's insert: the daemon's journal writes rows meanwhile.
    const [{ id }] = await seed.execSql<{ id: number }>(seed.kind === 'sqlite' ? 'SELECT last_insert_rowid() AS id' : 'SELECT LAST_INSERT_ID() AS id');
    ids.push(Number(id));
  }
  return ids;
}

/** Rows of every test here are selected by a type of their own; the rows a replay journals come after the run's head, so later runs pin --to-id. */
const CLI_TIMEOUT = 120_000;

describeStores('tp-ws replay → daemon', ({ kind, newStoreUrl }) => {
  let d: TestDaemon;
  let url: string;
  let seed: Seeder;
  let conn: string[];
  let alice: TestClient;
  let bob: TestClient;
  let carol: TestClient;
  /** Every raw text alice's socket received, to check payload bytes. */
  const aliceRaw: string[] = [];
  const bySource = () => ({ ...d.daemon.pipeline.counters.bySource });

  beforeAll(async () => {
    url = await newStoreUrl();
    // No poller: the rows written here stay as written (pending ones too), whatever the test.
    d = await startDaemon({ 'store.url': url, 'limits.rateLimitMessages': 1000, 'poller.enabled': false });
    await seedFixture(url, 'teampass_');
    seed = await openSeeder(url, 'teampass_');
    conn = ['--socket', d.daemon.config.ingest.socket, '--store', url];
    alice = (await TestClient.login(d.url(FIX.tokens.alice))).client;
    alice.ws.on('message', (data) => aliceRaw.push(data.toString()));
    bob = (await TestClient.login(d.url(FIX.tokens.bob))).client;
    carol = (await TestClient.login(d.url(FIX.tokens.carol))).client;
    // alice: folders 10 and 12 and the KB; bob: folder 10 (he may not see 12); carol: nothing.
    for (const [c, folders] of [[alice, [10, 12]], [bob, [10]]] as const) {
      for (const f of folders) expect((await c.request({ action: 'subscribe', channel: 'folder', data: { folder_id: f } })).action).toBe('subscribed');
    }
    expect((await alice.request({ action: 'subscribe', channel: 'kb' })).action).toBe('subscribed');
  });

  afterAll(async () => {
    for (const c of [alice, bob, carol]) c?.ws.terminate();
    await seed?.close();
    await d?.stop();
  });

  /** Publish a broadcast barrier; the events each client got before it (consumed), for alice, bob and carol. */
  async function beforeBarrier(): Promise<Message[][]> {
    const barrier = d.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
    return Promise.all([alice, bob, carol].map(async (c) => {
      const got: Message[] = [];
      for (let m = await c.nextEvent(); m.id !== barrier.id; m = await c.nextEvent()) got.push(m);
      return got;
    }));
  }

  it('--dry-run lists the selection (id, created_at, type, target, status, payload size) and sends nothing', async () => {
    const ids = await insertRows(seed, [
      { uuid: 'dry-1', type: 'dry_a', target: 'folder', targetId: 10, payload: '{"n":1}', agoSec: 3 * 3600 },
      { uuid: null, type: 'dry_a', target: 'user', targetId: FIX.users.bob, agoSec: 90 * 60, status: 3 },
      { uuid: 'dry-3', type: 'dry_b', target: 'kb', payload: '{"kb_id":7}', agoSec: 30 * 60, status: 2 },
      { uuid: 'dry-4', type: 'dry_a', target: 'broadcast', agoSec: 5 * 60, status: 0 },
    ]);
    const before = bySource();
    const types = ['--type', 'dry_a', '--type', 'dry_b'];
    const rows = async (...args: string[]) => (await replay([...conn, '--dry-run', '--json', ...types, ...args])).lines.map((l) => l.row_id);
    const [all, byTarget, byRange, byIso, human] = await Promise.all([
      replay([...conn, '--dry-run', '--json', ...types, '--keep-ids']),
      // Each flag narrows the selection; flags of different kinds all apply.
      rows('--target', 'kb', '--target', 'folder:10', '--target', `user:${FIX.users.bob}`, '--status', 'delivered', '--status', 'rejected'),
      rows('--from-id', String(ids[1]), '--to-id', String(ids[3]), '--since', '2h', '--until', '20m'),
      rows('--since', new Date(Date.now() - 4 * 3600_000).toISOString(), '--until', new Date(Date.now() - 60_000).toISOString(), '--limit', '3', '--status', 'any'),
      replay([...conn, '--dry-run', '--type', 'dry_b']),
    ]);
    expect(all.stderr).toBe('');
    expect(all.code).toBe(0);
    expect(all.lines).toEqual([
      { row_id: ids[0], event_uuid: 'dry-1', id: 'dry-1', created_at: expect.any(String), event_type: 'dry_a', target: 'folder:10', status: 'delivered', payload_bytes: 7 },
      { row_id: ids[1], event_uuid: null, id: `row-${ids[1]}`, created_at: expect.any(String), event_type: 'dry_a', target: `user:${FIX.users.bob}`, status: 'expired', payload_bytes: 2 },
      { row_id: ids[2], event_uuid: 'dry-3', id: 'dry-3', created_at: expect.any(String), event_type: 'dry_b', target: 'kb', status: 'rejected', payload_bytes: 11 },
      { row_id: ids[3], event_uuid: 'dry-4', id: 'dry-4', created_at: expect.any(String), event_type: 'dry_a', target: 'broadcast', status: 'pending', payload_bytes: 2 },
    ]);
    expect(Math.abs(Date.parse(all.lines[0].created_at) - (Date.now() - 3 * 3600_000))).toBeLessThan(60_000);
    expect(all.summary).toMatchObject({ selected: 4, through_id: expect.any(Number), sent: 0, duplicates: 0, failed: 0, dry_run: true, keep_ids: true });
    expect(byTarget).toEqual([ids[0], ids[2]]);
    expect(byRange).toEqual([ids[1], ids[2]]);
    expect(byIso).toEqual([ids[0], ids[1], ids[2]]);
    // Human form: one line a row on stdout, the summary on stderr; new ids by default.
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^row ${ids[2]}  \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  dry_b  kb  rejected  11 B  new id\\n$`));
    expect(human.stderr).toMatch(/^replay --dry-run: 1 event would be sent with new ids; nothing sent \(\d+\.\d s\)\n$/);

    expect(bySource()).toEqual(before);
    expect(await beforeBarrier()).toEqual([[], [], []]);
  }, CLI_TIMEOUT);

  it('sends with new ids by default: delivered again though the ids are in the dedup window, payload bytes as stored, counted under source replay', async () => {
    const payload = '{"item_id":42,  "label":"héllo ✓","big":12345678901234567890}';
    d.daemon.publish({ id: 'orig-a', event_type: 'new_ids', target_type: 'folder', target_id: 10, payload });
    d.daemon.publish({ id: 'orig-b', event_type: 'new_ids', target_type: 'user', target_id: FIX.users.alice, payload: { n: 2 } });
    expect((await beforeBarrier()).map((got) => got.map((m) => m.id))).toEqual([['orig-a', 'orig-b'], ['orig-a'], []]);
    // publish() does not wait for the journal: wait for both rows.
    await expect.poll(async () => (await seed.execSql("SELECT id FROM {{prefix}}websocket_events WHERE event_type = 'new_ids'")).length).toBe(2);
    const before = bySource();
    aliceRaw.length = 0;

    const r = await replay([...conn, '--type', 'new_ids', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines.map((l) => [l.event_uuid, l.ok, l.duplicate])).toEqual([['orig-a', true, undefined], ['orig-b', true, undefined]]);
    for (const l of r.lines) expect(l.id).toMatch(ID_RE);
    expect(r.lines[0].id).not.toBe('orig-a');
    expect(r.summary).toMatchObject({ selected: 2, sent: 2, duplicates: 0, failed: 0, failures: {}, keep_ids: false, dry_run: false, duration_ms: expect.any(Number) });
    expect(bySource().replay).toBe(before.replay + 2);
    expect(bySource().socket).toBe(before.socket);

    const [ga, gb, gc] = await beforeBarrier();
    expect(ga.map((m) => [m.event, m.id])).toEqual([['new_ids', r.lines[0].id], ['new_ids', r.lines[1].id]]);
    expect(gb.map((m) => m.id)).toEqual([r.lines[0].id]);
    expect(gc).toEqual([]);
    expect(ga[0].data).toMatchObject({ item_id: 42, label: 'héllo ✓' });
    expect(ga[1].data).toEqual({ n: 2 });
    // The stored text went out byte for byte (spacing, the integer beyond 2^53).
    expect(aliceRaw.find((t) => t.includes(r.lines[0].id))).toContain(payload);
    // The daemon logged each one with the row it came from.
    const logged = d.logs.filter((l) => l.msg === 'replayed event accepted' && (l.id === r.lines[0].id || l.id === r.lines[1].id));
    expect(logged.map((l) => l.replay_row_id)).toEqual([r.lines[0].row_id, r.lines[1].row_id]);
  }, CLI_TIMEOUT);

  it('--keep-ids reuses event_uuid (row-<id> for a NULL one): ids still in the dedup window are dropped as duplicates', async () => {
    // Rows the daemon never delivered (written straight to the table), one without an event_uuid.
    const ids = await insertRows(seed, [
      { uuid: 'keep-1', type: 'keep', target: 'user', targetId: FIX.users.alice, payload: '{"k":1}' },
      { uuid: null, type: 'keep', target: 'user', targetId: FIX.users.alice, payload: '{"k":2}' },
    ]);
    const first = await replay([...conn, '--type', 'keep', '--keep-ids', '--json']);
    expect(first.code).toBe(0);
    expect(first.lines.map((l) => [l.id, l.ok, l.duplicate])).toEqual([['keep-1', true, undefined], [`row-${ids[1]}`, true, undefined]]);
    expect(first.summary).toMatchObject({ sent: 2, duplicates: 0, keep_ids: true, through_id: ids[1] });
    expect((await beforeBarrier())[0].map((m) => [m.id, m.data])).toEqual([['keep-1', { k: 1 }], [`row-${ids[1]}`, { k: 2 }]]);

    // Again: the ids are inside the window now. (--to-id: the journal added a row for row-<id> after the first run's head.)
    const before = bySource();
    const [again, human] = await Promise.all([
      replay([...conn, '--type', 'keep', '--keep-ids', '--json', '--to-id', String(ids[1])]),
      replay([...conn, '--type', 'keep', '--keep-ids', '--to-id', String(ids[1])]),
    ]);
    expect(again.code).toBe(0);
    expect(again.lines.map((l) => [l.id, l.ok, l.duplicate, l.seq])).toEqual([['keep-1', true, true, 0], [`row-${ids[1]}`, true, true, 0]]);
    expect(again.summary).toMatchObject({ selected: 2, sent: 0, duplicates: 2, failed: 0 });
    expect(human.code).toBe(0);
    expect(human.stdout).toBe('');
    expect(human.stderr).toMatch(/^replay: 2 selected, 0 sent, 2 duplicates, 0 failed, in \d+\.\d s\n$/);
    expect(bySource()).toEqual(before);
    expect(await beforeBarrier()).toEqual([[], [], []]);
  }, CLI_TIMEOUT);

  it('reaches only the sockets subscribed and allowed now: a folder event its current subscribers, a user event that user', async () => {
    const ids = await insertRows(seed, [
      { uuid: 'auth-f12', type: 'auth', target: 'folder', targetId: 12, payload: '{"f":12}' },
      { uuid: 'auth-f10', type: 'auth', target: 'folder', targetId: 10, payload: '{"f":10}' },
      { uuid: 'auth-bob', type: 'auth', target: 'user', targetId: FIX.users.bob, payload: '{"u":"bob"}' },
      { uuid: 'auth-carol', type: 'auth', target: 'user', targetId: FIX.users.carol, payload: '{"u":"carol"}' },
      { uuid: 'auth-kb', type: 'auth', target: 'kb', payload: '{"kb":1}' },
    ]);
    const r = await replay([...conn, '--type', 'auth', '--json']);
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ sent: 5 });
    const [ga, gb, gc] = await beforeBarrier();
    expect(ga.map((m) => m.data)).toEqual([{ f: 12 }, { f: 10 }, { kb: 1 }]);
    expect(gb.map((m) => m.data)).toEqual([{ f: 10 }, { u: 'bob' }]);
    expect(gc.map((m) => m.data)).toEqual([{ u: 'carol' }]);

    // alice leaves folder 12: a replay of its event now reaches nobody.
    expect((await alice.request({ action: 'unsubscribe', channel: 'folder', data: { folder_id: 12 } })).action).toBe('unsubscribed');
    const again = await replay([...conn, '--from-id', String(ids[0]), '--to-id', String(ids[0]), '--json']);
    expect(again.code).toBe(0);
    expect(again.summary).toMatchObject({ selected: 1, sent: 1 });
    expect(await beforeBarrier()).toEqual([[], [], []]);
    expect((await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 12 } })).action).toBe('subscribed');
  }, CLI_TIMEOUT);

  it('--rate and --limit pace and cap the run: every event arrives, once, in row order', async () => {
    const n = 40;
    const ids = await insertRows(seed, Array.from({ length: n }, (_, i) => ({ uuid: null, type: 'paced', target: 'user' as const, targetId: FIX.users.alice, payload: `{"i":${i}}` })));
    const sel = ['--type', 'paced', '--to-id', String(ids[n - 1]), '--json'];
    for (const rate of ['25', '0']) {
      const r = await replay([...conn, ...sel, '--rate', rate]);
      expect(r.code).toBe(0);
      expect(r.lines.map((l) => l.row_id)).toEqual(ids);
      const seqs = r.lines.map((l) => l.seq as number);
      expect(seqs.every((x, i) => i === 0 || x > seqs[i - 1])).toBe(true);
      const got = (await beforeBarrier())[0];
      expect(got.map((m) => m.data.i)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(got.map((m) => m.id)).toEqual(r.lines.map((l) => l.id));
    }
    const limited = await replay([...conn, ...sel, '--rate', '0', '--limit', '5']);
    expect(limited.code).toBe(0);
    expect(limited.lines.map((l) => l.row_id)).toEqual(ids.slice(0, 5));
    expect(limited.summary).toMatchObject({ selected: 5, sent: 5 });
    expect((await beforeBarrier())[0].map((m) => m.data.i)).toEqual([0, 1, 2, 3, 4]);
  }, CLI_TIMEOUT);

  it('exits 1 when the daemon refuses some events, names each refused row and counts the codes; the others are sent', async () => {
    const ids = await insertRows(seed, [
      { uuid: 'poison-ok', type: 'poison', target: 'user', targetId: FIX.users.alice, payload: '{"fine":true}' },
      // MariaDB's JSON column refuses text that is not JSON; a JSON string is not an object either.
      { uuid: 'poison-json', type: 'poison', target: 'user', targetId: FIX.users.alice, payload: kind === 'sqlite' ? 'not json' : '"a string"', status: 2 },
      { uuid: 'poison-target', type: 'poison', target: 'folder', targetId: null, status: 2 },
    ]);
    const r = await replay([...conn, '--type', 'poison', '--json']);
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([
      expect.objectContaining({ row_id: ids[0], ok: true }),
      expect.objectContaining({ row_id: ids[1], ok: false, error: { code: 'TPWS_ERR_INVALID_EVENT', message: expect.stringContaining('payload') } }),
      expect.objectContaining({ row_id: ids[2], ok: false, error: { code: 'TPWS_ERR_INVALID_EVENT', message: expect.stringContaining('target_id') } }),
    ]);
    expect(r.summary).toMatchObject({ selected: 3, sent: 1, failed: 2, failures: { TPWS_ERR_INVALID_EVENT: 2 } });
    expect((await beforeBarrier())[0].map((m) => m.data)).toEqual([{ fine: true }]);

    const human = await replay([...conn, '--type', 'poison', '--status', 'rejected']);
    expect(human.code).toBe(1);
    expect(human.stderr.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(new RegExp(`^row ${ids[1]} \\(poison user:${FIX.users.alice}, rejected\\): not sent: TPWS_ERR_INVALID_EVENT: payload: `)),
      expect.stringMatching(new RegExp(`^row ${ids[2]} \\(poison folder:null, rejected\\): not sent: TPWS_ERR_INVALID_EVENT: target_id: `)),
      expect.stringMatching(/^replay: 2 selected, 0 sent, 0 duplicates, 2 failed \(TPWS_ERR_INVALID_EVENT ×2\), in \d+\.\d s$/),
    ]);
  }, CLI_TIMEOUT);

  it('exits 2 with TPWS_ERR_CONNECT, the socket path and the fix when no daemon listens; --dry-run still works; the store password is never printed', async () => {
    await insertRows(seed, [{ uuid: null, type: 'conn', target: 'broadcast' }]);
    const sock = join(d.stateDir, 'absent.sock');
    const [r, dry, noTable] = await Promise.all([
      replay(['--socket', sock, '--store', url, '--type', 'conn']),
      replay(['--socket', sock, '--store', url, '--type', 'conn', '--dry-run', '--json']),
      replay([...conn, '--table-prefix', 'nope_']),
    ]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`TPWS_ERR_CONNECT: cannot reach the daemon's ingest socket ${sock}: no socket at this path (ENOENT: is the daemon running?). Start the daemon (tp-ws serve), or give replay the daemon's --socket (or its --state-dir, TPWS_SOCKET); --dry-run needs no daemon\n`);
    expect(dry.code).toBe(0);
    expect(dry.summary).toMatchObject({ selected: 1 });
    expect(noTable.code).toBe(2);
    expect(noTable.stderr).toMatch(/^TPWS_ERR_STORE_UNAVAILABLE: no table nope_websocket_events in .*: give replay the daemon's --table-prefix and --store, or run tp-ws migrate\n$/);
    const password = kind === 'mysql' ? decodeURIComponent(new URL(url).password) : '';
    if (password !== '') for (const x of [r, dry, noTable]) expect(x.stdout + x.stderr).not.toContain(password);
  }, CLI_TIMEOUT);
});

describe('tp-ws replay flags', () => {
  it('refuses bad flags with exit 2, naming the flag and the rule, before reaching the store or the daemon', async () => {
    // Neither exists: a flag error must come first.
    const nowhere = ['--socket', join(scratch, 'none.sock'), '--store', `sqlite:${join(scratch, 'none.db')}`];
    const cases: [string[], RegExp][] = [
      [['--since', 'yesterday'], /^TPWS_ERR_CONFIG_INVALID: in --since: "yesterday" is not a time: give an ISO 8601/],
      [['--until', '2025-02-30'], /^TPWS_ERR_CONFIG_INVALID: in --until: "2025-02-30" is not a valid date/],
      [['--since', '1h', '--until', '2h'], /^TPWS_ERR_CONFIG_INVALID: in --until: .* is not after --since/],
      [['--from-id', '0'], /^TPWS_ERR_CONFIG_INVALID: in --from-id: "0" must be a row id/],
      [['--from-id', '9', '--to-id', '3'], /^TPWS_ERR_CONFIG_INVALID: in --to-id: 3 is below --from-id 9/],
      [['--type', 'has space'], /^TPWS_ERR_CONFIG_INVALID: in --type: "has space" must be an event_type/],
      [['--target', 'group:3'], /^TPWS_ERR_CONFIG_INVALID: in --target: "group:3" must be user:ID, folder:ID, kb or broadcast/],
      [['--target', 'user:x'], /^TPWS_ERR_CONFIG_INVALID: in --target: "user:x": the user id must be an integer/],
      [['--status', 'done'], /^TPWS_ERR_CONFIG_INVALID: in --status: "done" must be one of pending, delivered, rejected, expired, any/],
      [['--rate', 'fast'], /^TPWS_ERR_CONFIG_INVALID: in --rate: "fast" must be a number of events per second/],
      [['--limit', '-1'], /^TPWS_ERR_CONFIG_INVALID: in --limit: "-1" must be a number of events/],
      [['--timeout', '0'], /^TPWS_ERR_CONFIG_INVALID: in --timeout: "0" must be a number of milliseconds/],
      [['--no-such-flag'], /^TPWS_ERR_CONFIG_INVALID: unknown option '--no-such-flag' \(see tp-ws replay --help\)/],
      [['--port', 'eighty'], /^TPWS_ERR_CONFIG_INVALID: in server\.port \(from --port\): must be an integer/],
    ];
    // Two at a time: each is a process of its own.
    for (let i = 0; i < cases.length; i += 2) {
      await Promise.all(cases.slice(i, i + 2).map(async ([args, re]) => {
        const r = await replay([...nowhere, ...args]);
        expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
        expect(r.stderr).toMatch(re);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }));
    }
  }, CLI_TIMEOUT);

  it('--help says what each choice of ids means for dedup, and lists the exit codes', async () => {
    const r = await replay(['--help']);
    expect(r.code).toBe(0);
    const text = r.stdout.replace(/\s+/g, ' ');
    expect(text).toContain("By default each replayed event gets a NEW id, so the daemon's dedup window does not drop it and clients that dedup by id see it as new.");
    expect(text).toContain("With --keep-ids the original event_uuid is reused: events still inside the daemon's dedup window (dedup.windowSec, default 1 h) are then dropped as duplicates, and clients that dedup by id ignore them. Rows with a NULL event_uuid (inserted by unchanged TeamPass PHP) get a deterministic id from the row id");
    for (const code of ['0 ', '1 ', '2 ', '130 ']) expect(r.stdout).toMatch(new RegExp(`^  ${code}`, 'm'));
  });
});

describe('tp-ws replay, interrupted and cut off', () => {
  let d: TestDaemon;
  let seed: Seeder;
  let alice: TestClient;
  let ids: number[];
  const N = 30;

  beforeAll(async () => {
    d = await startDaemon({ 'poller.enabled': false });
    await seedFixture(d.daemon.config.store.url, 'teampass_');
    seed = await openSeeder(d.daemon.config.store.url, 'teampass_');
    alice = (await TestClient.login(d.url(FIX.tokens.alice))).client;
    ids = await insertRows(seed, Array.from({ length: N }, (_, i) => ({ uuid: `cut-${i}`, type: 'cut', target: 'user' as const, targetId: FIX.users.alice, payload: `{"i":${i}}` })));
  });

  afterAll(async () => {
    alice?.ws.terminate();
    await seed?.close();
    await d?.stop();
  });

  /** Start a replay; resolves its result; `onLine` sees each stdout line as it comes. */
  function start(args: string[], onLine: (line: Record<string, any>, kill: (sig: NodeJS.Signals) => void) => void): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'replay', ...args], { cwd: ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      const out: string[] = [];
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      createInterface({ input: child.stdout }).on('line', (l) => {
        out.push(l);
        onLine(JSON.parse(l) as Record<string, any>, (sig) => child.kill(sig));
      });
      child.on('error', reject);
      child.on('close', (code) => {
        const all = parseLines(out.join('\n'));
        resolve({ code, stdout: out.join('\n'), stderr, lines: all.filter((l) => l.summary === undefined), summary: all.find((l) => l.summary)?.summary });
      });
    });
  }

  it('Ctrl-C stops sending, waits for the acks in flight, exits 130 and says where to resume; resuming sends the rest, once each', async () => {
    const conn = ['--socket', d.daemon.config.ingest.socket, '--store', d.daemon.config.store.url, '--type', 'cut', '--json'];
    let signalled = false;
    // Slow enough that the run is still going when the first ack comes back.
    const first = await start([...conn, '--rate', '2'], (line, kill) => {
      if (!signalled && line.ok === true) {
        signalled = true;
        kill('SIGINT');
      }
    });
    expect(first.code).toBe(130);
    const sent = first.lines.filter((l) => l.ok === true);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.length).toBeLessThan(N);
    expect(first.lines).toHaveLength(sent.length); // nothing failed: the frames in flight were acked
    expect(first.summary).toMatchObject({ sent: sent.length, failed: 0, through_id: ids[N - 1], stopped: { reason: 'interrupted', resume_from_id: ids[sent.length], unacked: 0 } });
    expect(first.stderr).toBe('');

    // As the summary says: from the first row not sent, up to the first run's head (the rows it journaled come after).
    const { resume_from_id: from } = first.summary!.stopped;
    const rest = await start([...conn, '--rate', '0', '--from-id', String(from), '--to-id', String(first.summary!.through_id)], () => undefined);
    expect(rest.code).toBe(0);
    expect([...sent, ...rest.lines].map((l) => l.row_id)).toEqual(ids);
    const got: number[] = [];
    const barrier = d.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
    for (let m = await alice.nextEvent(); m.id !== barrier.id; m = await alice.nextEvent()) got.push(m.data.i);
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
  });

  it('exits 1 when the daemon goes away mid-run, with the code, the unacked count and where to resume', async () => {
    const conn = ['--socket', d.daemon.config.ingest.socket, '--store', d.daemon.config.store.url, '--type', 'cut', '--to-id', String(ids[N - 1]), '--json'];
    let stopping: Promise<void> | null = null;
    const r = await start([...conn, '--rate', '2'], (line) => {
      if (stopping === null && line.ok === true) stopping = d.stop();
    });
    await stopping;
    expect(r.code).toBe(1);
    const sent = r.lines.filter((l) => l.ok === true);
    expect(sent.length).toBeGreaterThan(0);
    expect(r.summary!.stopped).toMatchObject({ reason: 'error', code: 'TPWS_ERR_UNAVAILABLE', resume_from_id: expect.any(Number) });
    expect(r.summary!.stopped.resume_from_id).toBeGreaterThan(sent.at(-1)!.row_id);
    expect(r.summary!.stopped.resume_from_id).toBeLessThanOrEqual(ids[N - 1]);
  });
});

describe('tp-ws replay on a terminal', () => {
  let d: TestDaemon;

  beforeAll(async () => {
    d = await startDaemon({ 'poller.enabled': false });
    const seed = await openSeeder(d.daemon.config.store.url, 'teampass_');
    try {
      last = (await insertRows(seed, Array.from({ length: 20 }, () => ({ uuid: null, type: 'tty', target: 'broadcast' as const })))).at(-1)!;
    } finally {
      await seed.close();
    }
  });

  afterAll(async () => d?.stop());

  let last: number;
  // --to-id: each run journals its events as new rows of the same type.
  const args = () => ['--socket', d.daemon.config.ingest.socket, '--store', d.daemon.config.store.url, '--type', 'tty', '--rate', '0', '--to-id', String(last)];

  it('draws a progress bar when stdout and stderr are a terminal, and ends with the summary', async () => {
    // script(1) gives the command a pseudo-terminal for stdout and stderr, 200 columns wide.
    const cmd = `stty cols 200; exec ${[process.execPath, BIN, 'replay', ...args()].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')}`;
    const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn('script', ['-qefc', cmd, '/dev/null'], { cwd: ROOT, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/replay [\u2588\u2591]+ 20\/20 \| sent 20 \| duplicates 0 \| failed 0/);
    expect(r.out).toMatch(/replay: 20 selected, 20 sent, 0 duplicates, 0 failed, in \d+\.\d s/);
  });

  it('draws none when the output is not a terminal: the summary line only', async () => {
    const r = await replay(args());
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^replay: 20 selected, 20 sent, 0 duplicates, 0 failed, in \d+\.\d s\n$/);
  });
});
