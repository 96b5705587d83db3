/**
 * tp-ws-emit end to end: the real CLI (`node bin/tp-ws-emit.js`, built dist/)
 * against a real daemon and real WebSocket clients, and its table fallback on
 * both stores. `npm test` builds dist/ first.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open-store.js';
import { FIX, seedFixture } from '../helpers/fixture.js';
import { openSeeder } from '../helpers/seed.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { describeStores } from '../helpers/stores.js';
import { TestClient, type Message } from '../helpers/ws-client.js';

const BIN = fileURLToPath(new URL('../../bin/tp-ws-emit.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as NDJSON (with --json). */
  json: Record<string, any>[];
}

/** A scratch directory for things outside any daemon (state dirs, fake sockets, payload files). */
const scratch = mkdtempSync(join(tmpdir(), 'tpws-emit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let scratchN = 0;
const scratchPath = (name: string) => join(scratch, `${++scratchN}-${name}`);

/** Run the CLI with a clean environment (no TPWS_* from the caller), stdin as given. */
function emit(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPWS_') && v !== undefined) env[k] = v;
  env.TPWS_STATE_DIR = scratchPath('state'); // never the user's real state dir
  Object.assign(env, opts.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      const json = stdout.split('\n').filter((l) => l.trim() !== '').map((l) => {
        try {
          return JSON.parse(l) as Record<string, any>;
        } catch {
          return { unparsable: l };
        }
      });
      resolve({ code, stdout, stderr, json });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** A stand-in ingest socket: records connections and frames, answers each NDJSON line with `answer(frame)` (null: stay silent). */
async function fakeIngest(answer: (frame: string) => string | null): Promise<{ path: string; connections: number; frames: string[]; close(): Promise<void> }> {
  const path = scratchPath('fake.sock');
  const state = { connections: 0, frames: [] as string[] };
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = '';
    s.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        state.frames.push(line);
        const a = answer(line);
        if (a !== null) s.write(`${a}\n`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    get connections() {
      return state.connections;
    },
    frames: state.frames,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Rows of the events table with this event_uuid. */
async function rowsOf(url: string, id: string): Promise<Record<string, any>[]> {
  const seed = await openSeeder(url, 'teampass_');
  try {
    return await seed.execSql(
      'SELECT id, event_uuid, event_type, target_type, target_id, payload, processed FROM {{prefix}}websocket_events WHERE event_uuid = ?',
      [id],
    );
  } finally {
    await seed.close();
  }
}

/** The payload column: text on SQLite, a JSON column that mysql2 parses on MySQL. */
const payloadOf = (row: Record<string, any>): unknown => (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload);

const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describeStores('tp-ws-emit → daemon', ({ newStoreUrl }) => {
  let d: TestDaemon;
  let url: string;
  let socket: string;
  let alice: TestClient;
  let bob: TestClient;
  let store: string[];

  beforeAll(async () => {
    url = await newStoreUrl();
    d = await startDaemon({ 'store.url': url, 'limits.rateLimitMessages': 1000, 'poller.idleIntervalMs': 50 });
    await seedFixture(url, 'teampass_');
    socket = d.daemon.config.ingest.socket;
    store = ['--socket', socket, '--store', url];
    alice = (await TestClient.login(d.url(FIX.tokens.alice))).client;
    bob = (await TestClient.login(d.url(FIX.tokens.bob))).client;
    for (const c of [alice, bob]) {
      expect((await c.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } })).action).toBe('subscribed');
      expect((await c.request({ action: 'subscribe', channel: 'kb' })).action).toBe('subscribed');
    }
  });

  afterAll(async () => {
    for (const c of [alice, bob]) c?.ws.terminate();
    await d?.stop();
  });

  /** The next event `c` gets, after which a broadcast barrier must follow; or null when the barrier came first. */
  async function firstBeforeBarrier(c: TestClient, barrierId: string): Promise<Message | null> {
    const m = await c.nextEvent();
    if (m.id === barrierId) return null;
    expect((await c.nextEvent()).id).toBe(barrierId);
    return m;
  }

  it('--user: delivered to that user through the socket, exit 0, --json result with id and seq', async () => {
    const r = await emit(['item_updated', '--user', String(FIX.users.alice), '--payload', '{"item_id":42,"label":"x/é"}', '--json', ...store]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json).toEqual([{ ok: true, path: 'socket', id: expect.stringMatching(ID_RE), seq: expect.any(Number) }]);
    const m = await alice.nextEvent();
    expect(m).toMatchObject({ type: 'event', event: 'item_updated', data: { item_id: 42, label: 'x/é' }, id: r.json[0].id, seq: r.json[0].seq });
  });

  it('human output: one line on stderr, nothing on stdout', async () => {
    const r = await emit(['task_completed', '--user', String(FIX.users.bob), ...store]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^delivered via socket: id=\S+ seq=\d+\n$/);
    const id = /id=(\S+)/.exec(r.stderr)![1];
    expect((await bob.nextEvent()).id).toBe(id);
  });

  it('--quiet prints nothing on success', async () => {
    const r = await emit(['task_completed', '--user', String(FIX.users.bob), '-q', ...store]);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    await bob.nextEvent();
  });

  it('--folder with --exclude-user: the folder subscribers minus that user', async () => {
    const r = await emit(['item_created', '--folder', '10', '--exclude-user', String(FIX.users.bob), '--json', ...store]);
    expect(r.code).toBe(0);
    const barrier = d.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
    const a = await firstBeforeBarrier(alice, barrier.id);
    expect(a).toMatchObject({ event: 'item_created', id: r.json[0].id, data: { exclude_user_id: FIX.users.bob } });
    expect(await firstBeforeBarrier(bob, barrier.id)).toBeNull();
  });

  it('--kb: the knowledge-base subscribers', async () => {
    const r = await emit(['kb_updated', '--kb', '--payload', '{"kb_id":7}', '--json', ...store]);
    expect(r.code).toBe(0);
    for (const c of [alice, bob]) expect(await c.nextEvent()).toMatchObject({ event: 'kb_updated', data: { kb_id: 7 }, id: r.json[0].id });
  });

  it('--broadcast with --exclude-user: everyone but that user', async () => {
    const r = await emit(['fields_updated', '--broadcast', '--exclude-user', String(FIX.users.alice), '--json', ...store]);
    expect(r.code).toBe(0);
    const barrier = d.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
    expect(await firstBeforeBarrier(alice, barrier.id)).toBeNull();
    expect(await firstBeforeBarrier(bob, barrier.id)).toMatchObject({ event: 'fields_updated', id: r.json[0].id });
  });

  it('--payload @file and --id are honoured; the same --id again is a duplicate (exit 0, not re-delivered)', async () => {
    const file = scratchPath('payload.json');
    writeFileSync(file, JSON.stringify({ item_id: 9, server_timestamp: 1763769600 }));
    const id = `emit-test-${Date.now()}`;
    const r = await emit(['item_deleted', '--user', String(FIX.users.alice), '--payload', `@${file}`, '--id', id, '--json', ...store]);
    expect(r.code).toBe(0);
    expect(r.json).toEqual([{ ok: true, path: 'socket', id, seq: expect.any(Number) }]);
    expect(await alice.nextEvent()).toMatchObject({ event: 'item_deleted', id, data: { item_id: 9, server_timestamp: 1763769600 } });

    const again = await emit(['item_deleted', '--user', String(FIX.users.alice), '--payload', `@${file}`, '--id', id, '--json', ...store]);
    expect(again.code).toBe(0);
    expect(again.json).toEqual([{ ok: true, path: 'socket', id, seq: 0, duplicate: true }]);
    const barrier = d.daemon.publish({ event_type: 'barrier', target_type: 'user', target_id: FIX.users.alice });
    expect((await alice.nextEvent()).id).toBe(barrier.id);
  });

  it('--stdin: a mixed batch gets per-line results, exit 2, and the valid events are delivered', async () => {
    const lines = [
      JSON.stringify({ event_type: 'batch_a', target_type: 'user', target_id: FIX.users.alice, payload: { n: 1 } }),
      '{"event_type": broken',
      JSON.stringify({ event_type: 'batch_b', target_type: 'room' }),
      '',
      JSON.stringify({ event_type: 'batch_c', target_type: 'folder', target_id: 10, payload: [], id: 'stdin-c' }),
      JSON.stringify({ event_type: 'batch_d', target_type: 'user', target_id: 0, id: 'stdin-d' }),
    ];
    const r = await emit(['--stdin', '--json', ...store], { stdin: `${lines.join('\n')}\n` });
    expect(r.code).toBe(2);
    expect(r.json).toEqual([
      { ok: true, line: 1, path: 'socket', id: expect.stringMatching(ID_RE), seq: expect.any(Number) },
      { ok: false, line: 2, error: { code: 'TPWS_ERR_BAD_FRAME', message: expect.stringContaining('JSON') } },
      { ok: false, line: 3, error: { code: 'TPWS_ERR_INVALID_EVENT', message: expect.stringContaining('target_type') } },
      { ok: true, line: 5, path: 'socket', id: 'stdin-c', seq: expect.any(Number) },
      { ok: false, line: 6, id: 'stdin-d', error: { code: 'TPWS_ERR_INVALID_EVENT', message: expect.stringContaining('target_id') } },
    ]);
    expect(await alice.nextEvent()).toMatchObject({ event: 'batch_a', id: r.json[0].id, data: { n: 1 } });
    expect(await alice.nextEvent()).toMatchObject({ event: 'batch_c', id: 'stdin-c', data: {} });
    expect(await bob.nextEvent()).toMatchObject({ event: 'batch_c', id: 'stdin-c' });
  });

  it('--stdin: more than 1,000 events go in several batch frames, all acked in order (exit 0)', async () => {
    const n = 2345;
    const text = Array.from({ length: n }, (_, i) => JSON.stringify({ event_type: 'bulk', target_type: 'user', target_id: FIX.users.carol, payload: { i } })).join('\n');
    const r = await emit(['--stdin', '--json', ...store], { stdin: text });
    expect(r.code).toBe(0);
    expect(r.json).toHaveLength(n);
    expect(r.json.every((x, i) => x.ok === true && x.path === 'socket' && x.line === i + 1)).toBe(true);
    const seqs = r.json.map((x) => x.seq as number);
    expect(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1)).toBe(true);
  });

  it('--stdin human output: one line per event, prefixed with its line number', async () => {
    const r = await emit(['--stdin', ...store], { stdin: `${JSON.stringify({ event_type: 'h', target_type: 'user', target_id: FIX.users.bob })}\nnope\n` });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(/^line 1: delivered via socket: id=\S+ seq=\d+$/),
      expect.stringMatching(/^line 2: invalid: TPWS_ERR_BAD_FRAME: not valid JSON/),
    ]);
    await bob.nextEvent();
  });

  it('invalid input: exit 2 and nothing reaches the daemon', async () => {
    const cases: string[][] = [
      ['x', '--user', 'abc'],
      ['x', '--user', '0'],
      ['x'],
      ['x', '--user', '1', '--kb'],
      ['x', '--kb', '--payload', '{not json'],
      ['x', '--kb', '--payload', '[1,2]'],
      ['x', '--kb', '--payload', `@${scratchPath('missing.json')}`],
      ['x', '--kb', '--id', 'has space'],
      ['x'.repeat(51), '--kb'],
      ['x', '--kb', '--exclude-user', '-3'],
      ['x', '--kb', '--no-such-flag'],
      ['x', '--kb', '--timeout', 'soon'],
      ['--user', String(FIX.users.alice)],
    ];
    for (const args of cases) {
      const r = await emit([...args, ...store]);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(/^tp-ws-emit: invalid: TPWS_ERR_[A-Z_]+: .+\n$/);
    }
    const j = await emit(['x', '--user', 'abc', '--json', ...store]);
    expect(j.json).toEqual([{ ok: false, error: { code: 'TPWS_ERR_INVALID_EVENT', message: '--user: must be an integer from 1 to 4294967295' } }]);
    // Nothing was sent: alice's next event is one published now.
    const barrier = d.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
    expect((await alice.nextEvent()).id).toBe(barrier.id);
    expect((await bob.nextEvent()).id).toBe(barrier.id);
  });

  it('socket absent: stored in the table with the same id (exit 3); the poller then delivers it once', async () => {
    const r = await emit(['item_updated', '--user', String(FIX.users.alice), '--payload', '{"item_id":77}', '--json', '--socket', join(d.stateDir, 'absent.sock'), '--store', url]);
    expect(r.code).toBe(3);
    expect(r.json).toEqual([{ ok: true, path: 'table', id: expect.stringMatching(ID_RE), row_id: expect.any(Number) }]);
    const id = r.json[0].id as string;
    const rows = await rowsOf(url, id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ event_type: 'item_updated', target_type: 'user', event_uuid: id });
    expect(Number(rows[0].id)).toBe(r.json[0].row_id);
    expect(payloadOf(rows[0])).toEqual({ item_id: 77 });
    expect(await alice.nextEvent(10_000)).toMatchObject({ event: 'item_updated', id, data: { item_id: 77 } });
    await expect.poll(async () => Number((await rowsOf(url, id))[0].processed), { timeout: 5000 }).toBe(1);
  });
});

describeStores('tp-ws-emit table fallback', ({ kind, newStoreUrl }) => {
  let url: string;
  const fakes: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const f of fakes.splice(0)) await f.close();
  });

  beforeAll(async () => {
    url = await newStoreUrl();
    if (kind === 'mysql') {
      // tp-ws-emit never migrates MySQL (TeamPass's database): the test does it, as `tp-ws migrate` would.
      const s = openStore(url, 'teampass_');
      await s.migrate();
      await s.close();
    }
  });

  it('daemon stopped: the row is pending (processed = 0) with the same event_uuid, exit 3; the same id again is a duplicate', async () => {
    const d = await startDaemon({ 'store.url': url });
    const sock = d.daemon.config.ingest.socket;
    await d.stop();
    const args = ['item_updated', '--folder', '5', '--payload', '{"item_id":42}', '--exclude-user', '3', '--socket', sock, '--store', url];
    const r = await emit([...args, '--json']);
    expect(r.code).toBe(3);
    const id = r.json[0].id as string;
    expect(r.json).toEqual([{ ok: true, path: 'table', id: expect.stringMatching(ID_RE), row_id: expect.any(Number) }]);
    const rows = await rowsOf(url, id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ event_uuid: id, event_type: 'item_updated', target_type: 'folder' });
    expect(Number(rows[0].target_id)).toBe(5);
    expect(Number(rows[0].processed)).toBe(0);
    expect(payloadOf(rows[0])).toEqual({ item_id: 42, exclude_user_id: 3 });

    const again = await emit([...args, '--id', id, '--json']);
    expect(again.code).toBe(3);
    expect(again.json).toEqual([{ ok: true, path: 'table', id, row_id: null, duplicate: true }]);
    expect(await rowsOf(url, id)).toHaveLength(1);

    const human = await emit([...args, '--id', 'human-1']);
    expect(human.code).toBe(3);
    expect(human.stderr).toMatch(/^stored in table for the poller: id=human-1 row=\d+ \(socket: .*ENOENT.*\)\n$/);
  });

  it('a stale socket file (connection refused) falls back to the table', async () => {
    const stale = scratchPath('stale.sock');
    writeFileSync(stale, '');
    const r = await emit(['x', '--kb', '--socket', stale, '--store', url, '--id', `stale-${kind}`, '--json']);
    expect(r.code).toBe(3);
    expect(await rowsOf(url, `stale-${kind}`)).toHaveLength(1);
  });

  it('no ack within --timeout: falls back to the table with the same id', async () => {
    const fake = await fakeIngest(() => null);
    fakes.push(fake);
    const t0 = Date.now();
    const r = await emit(['x', '--broadcast', '--socket', fake.path, '--store', url, '--timeout', '200', '--id', `silent-${kind}`]);
    expect(r.code).toBe(3);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.stderr).toContain('no ack within 200 ms');
    expect(fake.frames).toHaveLength(1);
    expect(JSON.parse(fake.frames[0])).toMatchObject({ id: `silent-${kind}`, event_type: 'x', target_type: 'broadcast', payload: {} });
    expect(await rowsOf(url, `silent-${kind}`)).toHaveLength(1);
  });

  it('TPWS_ERR_UNAVAILABLE (daemon shutting down): falls back to the table', async () => {
    const fake = await fakeIngest((f) => JSON.stringify({ ok: false, id: JSON.parse(f).id, error: { code: 'TPWS_ERR_UNAVAILABLE', message: 'shutting down' } }));
    fakes.push(fake);
    const r = await emit(['x', '--user', '8', '--socket', fake.path, '--store', url, '--id', `unavail-${kind}`, '--json']);
    expect(r.code).toBe(3);
    expect(await rowsOf(url, `unavail-${kind}`)).toHaveLength(1);
  });

  it('an error ack for the input (TPWS_ERR_INVALID_EVENT): exit 2, no fallback', async () => {
    const fake = await fakeIngest(() => JSON.stringify({ ok: false, error: { code: 'TPWS_ERR_INVALID_EVENT', message: 'payload: must be at most 256 bytes encoded' } }));
    fakes.push(fake);
    const r = await emit(['x', '--user', '8', '--socket', fake.path, '--store', url, '--id', `refused-${kind}`, '--json']);
    expect(r.code).toBe(2);
    expect(r.json).toEqual([{ ok: false, id: `refused-${kind}`, error: { code: 'TPWS_ERR_INVALID_EVENT', message: 'payload: must be at most 256 bytes encoded' } }]);
    expect(await rowsOf(url, `refused-${kind}`)).toHaveLength(0);
  });

  it('--stdin: the connection drops after the first batch ack; the unacked events go to the table', async () => {
    let n = 0;
    const fake = await fakeIngest((f) => {
      n++;
      const events = JSON.parse(f) as { id: string }[];
      if (n > 1) return null;
      return JSON.stringify({ ok: true, results: events.map((e, i) => ({ ok: true, id: e.id, seq: i + 1 })) });
    });
    fakes.push(fake);
    const text = Array.from({ length: 1500 }, (_, i) => JSON.stringify({ event_type: 'bulk', target_type: 'kb', id: `drop-${kind}-${i}` })).join('\n');
    const r = await emit(['--stdin', '--socket', fake.path, '--store', url, '--timeout', '300', '--json'], { stdin: text });
    expect(r.code).toBe(3);
    expect(fake.frames).toHaveLength(2);
    expect(JSON.parse(fake.frames[0])).toHaveLength(1000);
    expect(r.json.slice(0, 1000).every((x) => x.path === 'socket')).toBe(true);
    expect(r.json.slice(1000).every((x) => x.path === 'table')).toBe(true);
    expect(await rowsOf(url, `drop-${kind}-1499`)).toHaveLength(1);
    expect(await rowsOf(url, `drop-${kind}-999`)).toHaveLength(0);
  });

  if (kind === 'mysql') {
    it('an unmigrated MySQL database: exit 1 with a hint to run tp-ws migrate', async () => {
      const bare = await newStoreUrl();
      const r = await emit(['x', '--kb', '--socket', scratchPath('none.sock'), '--store', bare]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('run tp-ws migrate');
    });
  }
});

describe('tp-ws-emit without a store URL', () => {
  it('a fresh state dir: the default SQLite store is created and the event stored (exit 3)', async () => {
    const state = scratchPath('fresh-state');
    const r = await emit(['x', '--user', '1', '--id', 'fresh-1', '--json'], { env: { TPWS_STATE_DIR: state } });
    expect(r.code).toBe(3);
    expect(r.json).toEqual([{ ok: true, path: 'table', id: 'fresh-1', row_id: 1 }]);
    expect(await rowsOf(`sqlite:${join(state, 'tp-ws.db')}`, 'fresh-1')).toMatchObject([{ processed: 0 }]);
  });

  it('an empty ingest.socket (socket disabled) goes straight to the table', async () => {
    const state = scratchPath('nosock-state');
    const r = await emit(['x', '--kb', '--socket', '', '--json'], { env: { TPWS_STATE_DIR: state } });
    expect(r.code).toBe(3);
  });
});

describe('tp-ws-emit when everything is down', () => {
  const password = 's3cretPW-do-not-print';
  const deadStore = `mysql://u:${password}@127.0.0.1:1/x`;

  it('bad socket path and unreachable store: exit 1, one clear line naming both, no password', async () => {
    const sock = scratchPath('nowhere.sock');
    const r = await emit(['x', '--user', '1', '--socket', sock, '--store', deadStore]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`socket ${sock}`);
    expect(lines[0]).toContain('ENOENT');
    expect(lines[0]).toContain('mysql://u:***@127.0.0.1:1/x');
    expect(lines[0]).toContain('ECONNREFUSED');
    expect(r.stderr).not.toContain(password);
  });

  it('--json: ok false with TPWS_ERR_STORE_UNAVAILABLE, no password', async () => {
    const r = await emit(['x', '--user', '1', '--socket', scratchPath('nowhere.sock'), '--store', deadStore, '--id', 'down-1', '--json']);
    expect(r.code).toBe(1);
    expect(r.json).toEqual([{ ok: false, id: 'down-1', error: { code: 'TPWS_ERR_STORE_UNAVAILABLE', message: expect.stringContaining('127.0.0.1:1') } }]);
    expect(r.stdout + r.stderr).not.toContain(password);
  });

  it('--stdin: the worst outcome wins (1 over 2)', async () => {
    const r = await emit(['--stdin', '--socket', scratchPath('nowhere.sock'), '--store', deadStore, '--json'], {
      stdin: `${JSON.stringify({ event_type: 'a', target_type: 'kb' })}\n{bad\n`,
    });
    expect(r.code).toBe(1);
    expect(r.json.map((x) => x.ok)).toEqual([false, false]);
    expect(r.json[0].error.code).toBe('TPWS_ERR_STORE_UNAVAILABLE');
    expect(r.json[1].error.code).toBe('TPWS_ERR_BAD_FRAME');
  });
});

describe('tp-ws-emit --help', () => {
  it('documents the flags and the exit codes', async () => {
    const r = await emit(['--help']);
    expect(r.code).toBe(0);
    for (const s of ['--user', '--folder', '--kb', '--broadcast', '--payload', '--exclude-user', '--id', '--stdin', '--socket', '--store', '--table-prefix', '--config', '--timeout', '--json', 'Exit codes']) {
      expect(r.stdout).toContain(s);
    }
  });
});
