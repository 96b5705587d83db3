/**
 * The PHP emitter (emitter/php/TpWsEmitter.php) end to end: real `php` runs
 * the scenario scripts in test/php/ against a real daemon (in-process, or the
 * CLI as a separate process where it must be stopped with SIGSTOP), real
 * WebSocket clients, and the events table on SQLite and MariaDB.
 * `npm test` builds dist/ first (the CLI daemon runs from it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { resolveJwtKey } from '../../src/auth/jwt-key.js';
import { loadConfig } from '../../src/config/load.js';
import { openStore } from '../../src/store/open-store.js';
import { PROCESSED } from '../../src/store/store.js';
import { IngestClient } from '../../src/ingest/client.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { describeStores } from '../helpers/stores.js';
import { TestClient } from '../helpers/ws-client.js';
import { until } from '../helpers/until.js';
import { describeRequiring } from '../helpers/requires.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PHP_DIR = join(ROOT, 'test/php');
const CLI = join(ROOT, 'bin/tp-ws.js');
const P = 'teampass_';

const php = spawnSync('php', ['-r', 'echo PHP_VERSION, " ", extension_loaded("msgpack") ? 1 : 0, extension_loaded("pdo_mysql") ? 1 : 0, extension_loaded("pdo_sqlite") ? 1 : 0;'], { encoding: 'utf8' });
const PHP_OK = php.status === 0 && / 111$/.test(php.stdout);

/** php with msgpack, pdo_mysql and pdo_sqlite: required in CI, skipped loudly elsewhere. */
function describePhp(name: string, fn: () => void): void {
  const missing = PHP_OK ? undefined : php.status === 0 ? `php ${php.stdout} lacks msgpack/pdo_mysql/pdo_sqlite` : 'php is not installed';
  describeRequiring(name, { missing, needs: 'php with msgpack, pdo_mysql and pdo_sqlite', hint: 'apt-get install php-cli php-msgpack php-mysql php-sqlite3' }, fn);
}

/** Scratch directory for sockets, state dirs and SQLite files outside any daemon. */
const scratch = mkdtempSync(join(tmpdir(), 'tpws-php-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let scratchN = 0;
const scratchPath = (name: string) => join(scratch, `${++scratchN}-${name}`);

/** Every notice and deprecation reported (on stderr), so the emitter stays clean under E_ALL. */
const PHP_FLAGS = ['-d', 'error_reporting=-1', '-d', 'display_errors=stderr', '-d', 'log_errors=0'];
const PHP_DIAGNOSTIC = /PHP (Warning|Notice|Deprecated|Fatal error|Parse error)|^(Warning|Notice|Deprecated|Fatal error):/m;

type Json = Record<string, any>;
/** A line of the emitter's log, as the PHP scripts print it: [level, message, context]. */
type LogLine = [string, string, Json];
interface PhpRun { result: Json; stdout: string; stderr: string; code: number | null }

/** Run one test/php script with a clean environment; its last stdout line is the JSON result. */
function runPhp(script: string, env: Record<string, string>, timeoutMs = 20_000): Promise<PhpRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('php', [...PHP_FLAGS, isAbsolute(script) ? script : join(PHP_DIR, script)], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      const last = stdout.trim().split('\n').pop() ?? '';
      const diagnostics = PHP_DIAGNOSTIC.exec(stderr);
      if (diagnostics) return reject(new Error(`php ${script} reported a ${diagnostics[1]}:\n${stderr}`));
      try {
        resolve({ result: JSON.parse(last) as Json, stdout, stderr, code });
      } catch {
        reject(new Error(`php ${script} exited ${code} without a JSON result:\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** test/php/steps.php as a long-running worker: one JSON line per step, `go()` answers a `wait` step. */
class PhpWorker {
  readonly child: ChildProcess;
  private lines: Json[] = [];
  private waiters: ((l: Json) => void)[] = [];
  stderr = '';

  constructor(env: Record<string, string>, steps: Json[]) {
    this.child = spawn('php', [...PHP_FLAGS, join(PHP_DIR, 'steps.php')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, TPWS_STEPS: JSON.stringify(steps) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as Json;
      const w = this.waiters.shift();
      if (w) w(m);
      else this.lines.push(m);
    });
  }

  next(timeoutMs = 10_000): Promise<Json> {
    const diagnostics = PHP_DIAGNOSTIC.exec(this.stderr);
    if (diagnostics) return Promise.reject(new Error(`php worker reported a ${diagnostics[1]}:\n${this.stderr}`));
    const l = this.lines.shift();
    if (l) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`php worker said nothing within ${timeoutMs} ms; stderr: ${this.stderr}`)), timeoutMs);
      this.waiters.push((m) => { clearTimeout(t); resolve(m); });
    });
  }

  go(): void {
    this.child.stdin!.write('go\n');
  }
}

/** PDO settings of a store URL, as the env of test/php/lib.php. */
function dbEnv(storeUrl: string): Record<string, string> {
  if (storeUrl.startsWith('sqlite:')) return { TPWS_DSN: storeUrl };
  const u = new URL(storeUrl);
  const db = decodeURIComponent(u.pathname.slice(1));
  return {
    TPWS_DSN: `mysql:host=${u.hostname};port=${u.port || '3306'};dbname=${db};charset=utf8mb4`,
    TPWS_DB_USER: decodeURIComponent(u.username),
    TPWS_DB_PASSWORD: decodeURIComponent(u.password),
    TPWS_DB_HOST: u.hostname,
    TPWS_DB_PORT: u.port || '3306',
    TPWS_DB_NAME: db,
  };
}


interface Row { processed: number; event_uuid: string | null; payload: string; target_type: string; target_id: number | null; event_type: string }
const rowsOf = (sql: Seeder, uuid: string) =>
  sql.execSql<Row>('SELECT processed, event_uuid, payload, target_type, target_id, event_type FROM {{prefix}}websocket_events WHERE event_uuid = ?', [uuid]);
/** Rows, not counting the barriers the tests publish themselves (journaled like any event). */
const countRows = async (sql: Seeder) =>
  Number((await sql.execSql<{ n: number }>("SELECT COUNT(*) AS n FROM {{prefix}}websocket_events WHERE event_type NOT IN ('barrier', 'drain')"))[0].n);
const countPending = async (sql: Seeder) =>
  Number((await sql.execSql<{ n: number }>(`SELECT COUNT(*) AS n FROM {{prefix}}websocket_events WHERE processed = ${PROCESSED.PENDING}`))[0].n);

/** The events the scenarios emit: unicode, slashes, nested arrays and objects, ints, bools, null. */
const EVENTS = {
  folder: {
    event_type: 'item_updated', target_type: 'folder', target_id: 10, exclude_user_id: 2,
    payload: { item_id: 42, folder_id: 10, label: 'Été / 日本語 😀 "q" \\ <b>&amp;</b>', updated_by: 'alice', tags: ['a/b', 'ü'], meta: { n: null, t: true, f: false, empty: [], obj: { __object__: {} }, deep: [[1, 2], { k: 'v' }] } },
  },
  user: { event_type: 'task_completed', target_type: 'user', target_id: 1, payload: { task_id: 't-1', progress: 1, total: 3, percent: 33.3, status: 'completed', message: 'line1\nline2\ttab' } },
  broadcast: { event_type: 'fields_updated', target_type: 'broadcast', target_id: null, payload: { action: 'field_added', label: 'x', changed_by: 'admin' } },
};
/** What a client sees in `data` for a payload: objects as {} and exclude_user_id copied in. */
function expectedData(ev: Json): Json {
  const plain = JSON.parse(JSON.stringify(ev.payload, (_k, v) => (v && typeof v === 'object' && '__object__' in v ? v.__object__ : v)));
  return ev.exclude_user_id ? { ...plain, exclude_user_id: ev.exclude_user_id } : plain;
}

describePhp('PHP emitter', () => {
  describeStores('PHP emitter against a running daemon', ({ kind, newStoreUrl }) => {
    let url: string;
    let d: TestDaemon;
    let sql: Seeder;
    let alice: TestClient; // user 1, subscribed to folder 10
    let bob: TestClient; // user 2
    const env = (extra: Record<string, string> = {}) => ({ TPWS_SOCKET: d.daemon.ingest!.path, TPWS_PREFIX: P, ...dbEnv(url), ...extra });
    /** A broadcast barrier: what a client got before it was sent earlier. */
    const barrier = async () => {
      const { id } = d.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
      for (const c of [alice, bob]) expect((await c.nextEvent()).id).toBe(id);
    };
    /** Forget every event delivered so far, once the poller has handled every pending row. */
    const drain = async () => {
      await until(async () => (await countPending(sql)) === 0, 'no pending rows');
      const { id } = d.daemon.publish({ event_type: 'drain', target_type: 'broadcast' });
      for (const c of [alice, bob]) {
        await c.next((m) => m.type === 'event' && m.id === id);
        c.received.length = 0;
      }
    };

    beforeAll(async () => {
      url = await newStoreUrl();
      d = await startDaemon({ 'store.url': url, 'poller.intervalMs': 20, 'poller.idleIntervalMs': 20, 'ingest.maxPayloadBytes': 4096 });
      sql = await openSeeder(url, P);
      await sql.seedMisc({ websocket_enabled: '1' });
      const jwt = (userId: number, folders: number[]) => mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId, folders, ttlSec: 600 });
      alice = (await TestClient.login(d.url(await jwt(1, [10])))).client;
      bob = (await TestClient.login(d.url(await jwt(2, [10])))).client;
      await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } });
      await bob.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } });
    });

    afterAll(async () => {
      for (const c of [alice, bob]) c?.ws.terminate();
      await sql?.close();
      await d?.stop();
    });

    it.each(['ndjson', 'msgpack'])('socket path (%s): events reach real ws clients once, and are journaled', async (encoding) => {
      const { result } = await runPhp('emit.php', env({ TPWS_ENCODING: encoding, TPWS_EVENTS: JSON.stringify([EVENTS.folder, EVENTS.user, EVENTS.broadcast]) }));
      expect(result).toMatchObject({ ok: true, encoding, fallbacks: 0 });
      const [folderId, userId, broadcastId] = result.ids as string[];
      for (const id of result.ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(await alice.nextEvent()).toMatchObject({ type: 'event', event: 'item_updated', id: folderId, data: expectedData(EVENTS.folder) });
      expect(await alice.nextEvent()).toMatchObject({ event: 'task_completed', id: userId, data: expectedData(EVENTS.user) });
      expect(await alice.nextEvent()).toMatchObject({ event: 'fields_updated', id: broadcastId, data: expectedData(EVENTS.broadcast) });
      // bob is user 2: excluded from the folder event, not the target of the user event.
      expect((await bob.nextEvent()).id).toBe(broadcastId);
      await barrier();
      for (const id of result.ids) expect(await rowsOf(sql, id)).toMatchObject([{ processed: PROCESSED.DELIVERED, event_uuid: id }]);
    });

    it('runs the Example of docs/emitter-php.md as printed, with DB_PASSWORD unset and the daemon up', async () => {
      const md = readFileSync(join(ROOT, 'docs/emitter-php.md'), 'utf8');
      const example = /## Example\n\n```php\n([\s\S]*?)```/.exec(md)?.[1];
      expect(example).toBeDefined();
      // Only the two paths of the machine it runs on change.
      const script = example!
        .replace("'/var/www/lib/TpWsEmitter.php'", `'${join(ROOT, 'emitter/php/TpWsEmitter.php')}'`)
        .replace("'/run/tp-ws/ingest.sock'", `'${d.daemon.ingest!.path}'`)
        + '\necho json_encode(["id" => $id ?? null]), "\\n";\n';
      expect(script).not.toMatch(/\/var\/www|\/run\/tp-ws/);
      const file = scratchPath('example.php');
      writeFileSync(file, script);
      const { result } = await runPhp(file, {}); // no DB_PASSWORD in the environment
      expect(result.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
      await until(async () => (await rowsOf(sql, result.id))[0]?.processed === PROCESSED.DELIVERED, 'example event journaled');
    });

    // msgpack 64-bit integers must decode as numbers (the precision of JSON.parse), not BigInt.
    it('msgpack: integers beyond 32 bits arrive like over NDJSON', async () => {
      const ev = { event_type: 'big_numbers', target_type: 'user', target_id: 1, payload: { size: 5_000_000_000, neg: -5_000_000_000, ms: 1_763_769_600_123 } };
      const { result } = await runPhp('emit.php', env({ TPWS_ENCODING: 'msgpack', TPWS_EVENTS: JSON.stringify([ev]) }));
      expect(result).toMatchObject({ ok: true, fallbacks: 0 });
      expect(await alice.nextEvent()).toMatchObject({ id: result.ids[0], data: ev.payload });
    });

    it('an event the daemon refuses is an InvalidEventException; nothing falls back to the table', async () => {
      const before = await countRows(sql);
      // 5,000 bytes: within the emitter's 64 KiB, beyond this daemon's ingest.maxPayloadBytes (4,096).
      const big = { event_type: 'too_big', target_type: 'user', target_id: 1, payload: { blob: 'x'.repeat(5000) } };
      for (const encoding of ['ndjson', 'msgpack']) {
        const { result } = await runPhp('emit.php', env({ TPWS_ENCODING: encoding, TPWS_EVENTS: JSON.stringify([big]) }));
        expect(result.error).toMatchObject({ class: 'TpWs\\InvalidEventException', error_code: 'TPWS_ERR_INVALID_EVENT' });
        expect(result.error.message).toContain('payload: must be at most 4096 bytes encoded');
      }
      expect(await countRows(sql)).toBe(before);
    });

    it.each([
      ['an event type with a space', { event_type: 'item updated', target_type: 'user', target_id: 1 }, 'event_type'],
      ['an unknown target type', { event_type: 'x', target_type: 'room', target_id: 1 }, 'target_type'],
      ['a folder event without a folder (TeamPass root folders: 0)', { event_type: 'folder_created', target_type: 'folder', target_id: 0 }, 'target_id'],
      ['a list as payload', { event_type: 'x', target_type: 'kb', payload: [1, 2] }, 'payload'],
      ['a negative exclude_user_id', { event_type: 'x', target_type: 'broadcast', exclude_user_id: -1 }, 'exclude_user_id'],
      ['a payload over 64 KiB', { event_type: 'x', target_type: 'kb', payload: { s: 'y'.repeat(70_000) } }, 'payload'],
    ])('validates like the daemon before sending: %s', async (_name, ev, field) => {
      const { result } = await runPhp('emit.php', env({ TPWS_EVENTS: JSON.stringify([ev]) }));
      expect(result.error).toMatchObject({ class: 'TpWs\\InvalidEventException', error_code: null });
      expect(result.error.message.startsWith(`${field}:`)).toBe(true);
    });

    describe('outbox mode', () => {
      const outbox = (plan: string, events: Json[], encoding = 'auto') =>
        runPhp('outbox.php', env({ TPWS_OUTBOX_PLAN: plan, TPWS_EVENTS: JSON.stringify(events), TPWS_ENCODING: encoding }));

      it.each(['ndjson', 'msgpack'])('commit, then flush (%s): delivered at once, rows end processed = 1', async (encoding) => {
        // One batch frame, in either encoding.
        const { result } = await outbox('commit', [EVENTS.folder, EVENTS.broadcast], encoding);
        expect(result).toMatchObject({ ok: true, pending_before: 2, flushed: 2, pending_after: 0 });
        expect(await alice.nextEvent()).toMatchObject({ id: result.ids[0], data: expectedData(EVENTS.folder) });
        expect((await alice.nextEvent()).id).toBe(result.ids[1]);
        expect((await bob.nextEvent()).id).toBe(result.ids[1]);
        await barrier();
        for (const id of result.ids) {
          await until(async () => (await rowsOf(sql, id))[0]?.processed === PROCESSED.DELIVERED, `row ${id} processed`);
          expect(await rowsOf(sql, id)).toHaveLength(1);
        }
      });

      it('rollback, then flush: nothing delivered, no row', async () => {
        const before = await countRows(sql);
        const { result } = await outbox('rollback', [EVENTS.user, EVENTS.folder]);
        expect(result).toMatchObject({ ok: true, pending_before: 2, flushed: 0, pending_after: 0 });
        await barrier();
        for (const id of result.ids) expect(await rowsOf(sql, id)).toEqual([]);
        expect(await countRows(sql)).toBe(before);
      });

      it('a rolled-back transaction then a committed one: one flush sends only the committed event', async () => {
        const { result } = await outbox('rollback_then_commit', [EVENTS.broadcast, EVENTS.user]);
        expect(result).toMatchObject({ ok: true, pending_before: 2, flushed: 1 });
        const [rolledBack, committed] = result.ids;
        expect((await alice.nextEvent()).id).toBe(committed);
        await barrier();
        expect(await rowsOf(sql, rolledBack)).toEqual([]);
        expect(await rowsOf(sql, committed)).toHaveLength(1);
      });

      it('flush() inside the transaction is a LogicException; after COMMIT it sends', async () => {
        const { result } = await outbox('flush_in_tx', [EVENTS.user]);
        expect(result.logic_exception).toMatch(/after COMMIT/);
        expect(result).toMatchObject({ ok: true, flushed: 1 });
        expect((await alice.nextEvent()).id).toBe(result.ids[0]);
      });
    });

    describe('TeamPass drop-in', () => {
      /** TeamPass-shaped calls: the events TeamPass emits, and values that stress json_encode. */
      const CASES = [
        { event_type: 'item_updated', target_type: 'folder', target_id: 10, exclude_user_id: 1, payload: { item_id: 42, folder_id: 10, label: 'Compte « Ünïcødé » 日本語 😀 / \\ "quotes"', updated_by: 'alice' } },
        { event_type: 'item_edition_stopped', target_type: 'folder', target_id: 10, payload: { item_id: 7, folder_id: 10, user_login: 'bob', user_display_name: 'Bob D', user_id: 2 } },
        { event_type: 'folder_permission_changed', target_type: 'user', target_id: 2, payload: { role_id: 3, folders: [10, 11, 12], access: 'W' } },
        { event_type: 'kb_updated', target_type: 'kb', target_id: null, exclude_user_id: 3, payload: { kb_id: 7, label: "KB <b>x</b> & 'y' https://example.org/a/b?c=d", updated_by: 'bob' } },
        { event_type: 'task_completed', target_type: 'user', target_id: 1, payload: { task_id: 'abc', task_type: 'Item encryption', progress: 3, total: 3, status: 'completed', percent: 100.0, message: "l1\nl2\t\u0001\u007f", item_id: 5 } },
        { event_type: 'task_progress', target_type: 'user', target_id: 1, payload: { percent: 33.3, ratio: 0.125, negative: -7, zero: 0, t: true, f: false, n: null } },
        { event_type: 'fields_updated', target_type: 'broadcast', target_id: null, payload: { action: 'field_added', nested: { list: [1, 'two', [3, [4]]], map: { k: 'v', 'k/2': 'ü' }, empty: [], emptyObj: { __object__: {} }, sparse: { 5: 'a', 9: 'b' } } } },
        // To a user with no socket here: session_expired closes the user's sockets (4001).
        { event_type: 'session_expired', target_type: 'user', target_id: 4, payload: { reason: 'session_timeout' } },
        // Values where JavaScript's JSON.stringify and PHP's json_encode disagree: the
        // daemon journals the emitter's JSON text as is, so they match too.
        { event_type: 'odd_values', target_type: 'user', target_id: 2, payload: { big: 1e20, huge: 1e25, tiny: 0.00001, one: 1.5, ls: 'a\u2028b\u2029c', slash: '/' } },
      ];
      const b64 = (s: string | null) => (s === null ? null : Buffer.from(s, 'base64').toString('utf8'));

      async function compare(socket: string): Promise<Json[]> {
        const { result, stderr } = await runPhp('teampass_compat.php', env({ TPWS_SOCKET: socket, TPWS_EVENTS: JSON.stringify(CASES) }), 60_000);
        expect(result.ok, stderr).toBe(true);
        for (const c of result.cases as Json[]) {
          expect(c.reference_ok).toBe(true);
          expect(c.dropin_ok).toBe(true);
          for (const col of ['event_type', 'target_type', 'target_id', 'payload']) {
            expect({ col, bytes: b64(c.dropin[col]) }).toEqual({ col, bytes: b64(c.reference[col]) });
          }
          expect(b64(c.reference.event_uuid)).toBeNull();
          expect(b64(c.dropin.event_uuid)).toBe(c.dropin_id);
        }
        return result.cases;
      }

      it('table path (daemon down): rows byte-identical to what TeamPass inserts', async () => {
        await drain();
        const cases = await compare(scratchPath('no-daemon.sock'));
        expect(cases).toHaveLength(CASES.length);
        await drain(); // the poller delivers them (and TeamPass's rows)
      });

      it('socket path (daemon up): the journaled rows are byte-identical too', async () => {
        const cases = await compare(d.daemon.ingest!.path);
        for (const c of cases) expect(Number(b64(c.dropin.processed))).toBe(PROCESSED.DELIVERED);
        await drain();
      });

      // settings.php constants describe a MySQL database: this one exists only in the MySQL block.
      if (kind === 'mysql') {
        it('configureFromConstants(): the DSN built from settings.php constants works', async () => {
          const { result } = await runPhp('dropin.php', env({ TPWS_USE_CONSTANTS: '1', TPWS_SOCKET: scratchPath('none.sock'), TPWS_EVENTS: JSON.stringify([EVENTS.user]) }));
          expect(result).toMatchObject({ results: [true], fallbacks: 1 });
          expect(await rowsOf(sql, result.ids[0])).toMatchObject([{ event_type: 'task_completed', target_id: 1 }]);
          expect((await alice.nextEvent()).id).toBe(result.ids[0]); // delivered by the poller
        });
      }

      it("returns false and writes nothing when misc websocket_enabled is not '1', and says why once per process", async () => {
        const told = (stderr: string) => stderr.split('\n').filter((l) => l.includes('tp-ws: emitWebSocketEvent: events are not sent because misc websocket_enabled'));
        try {
          for (const value of ['0', '', 'true']) {
            await sql.seedMisc({ websocket_enabled: value });
            const before = await countRows(sql);
            const { result, stderr } = await runPhp('dropin.php', env({ TPWS_EVENTS: JSON.stringify([EVENTS.user, EVENTS.broadcast]) }));
            expect(result.results).toEqual([false, false]);
            expect(result.ids).toEqual([null, null]);
            // TeamPass's rule, told to the operator: one line for the two events of this process.
            expect(told(stderr)).toHaveLength(1);
            expect(told(stderr)[0]).toContain(`websocket_enabled is '${value}', not '1'`);
            expect(await countRows(sql)).toBe(before);
          }
          await sql.execSql("DELETE FROM {{prefix}}misc WHERE intitule = 'websocket_enabled'");
          const absent = await runPhp('dropin.php', env({ TPWS_EVENTS: JSON.stringify([EVENTS.user]) }));
          expect(absent.result.results).toEqual([false]);
          expect(told(absent.stderr)).toHaveLength(1);
          expect(told(absent.stderr)[0]).toContain(`websocket_enabled is absent from ${P}misc`);
          await barrier(); // nothing was delivered before it
        } finally {
          await sql.seedMisc({ websocket_enabled: '1' });
        }
      });

      it("keeps TeamPass's true for a root-level folder (target 0) and for exclude_user_id 0", async () => {
        const { result } = await runPhp('dropin.php', env({ TPWS_EVENTS: JSON.stringify([
          { event_type: 'folder_created', target_type: 'folder', target_id: 0, payload: { folder_id: 99, title: 'root', created_by: 'alice', parent_id: 0 } },
          { event_type: 'fields_updated', target_type: 'broadcast', target_id: null, exclude_user_id: 0, payload: { action: 'field_added' } },
        ]) }));
        expect(result.results).toEqual([true, true]);
        // exclude_user_id 0 excludes nobody: both clients get it, with the 0 in data as TeamPass sends it.
        for (const c of [alice, bob]) expect(await c.nextEvent()).toMatchObject({ id: result.ids[1], data: { action: 'field_added', exclude_user_id: 0 } });
        // The root-folder row is stored, as TeamPass does, and the poller marks it rejected (never delivered).
        await until(async () => (await rowsOf(sql, result.ids[0]))[0]?.processed === PROCESSED.REJECTED, 'root-folder row rejected');
        await barrier();
      });

      it('returns false (and logs) for an unknown target type, like TeamPass', async () => {
        const { result, stderr } = await runPhp('dropin.php', env({ TPWS_EVENTS: JSON.stringify([{ event_type: 'x', target_type: 'room', target_id: 1, payload: {} }]) }));
        expect(result.results).toEqual([false]);
        expect(stderr).toContain("invalid target type 'room'");
      });
    });

    it('both paths down: EmitFailedException with both causes and no password; the drop-in returns false', async () => {
      const secret = 'Pa55-w0rd-that-must-never-show';
      const badDb: Record<string, string> = kind === 'sqlite'
        ? { TPWS_DSN: `sqlite:${scratchPath('missing-dir')}/nope/events.db` }
        : { ...dbEnv(url), TPWS_DB_PASSWORD: secret };
      const e = { TPWS_SOCKET: scratchPath('down.sock'), TPWS_PREFIX: P, TPWS_DB_PASSWORD: secret, ...badDb, TPWS_EVENTS: JSON.stringify([EVENTS.user]) };
      const { result } = await runPhp('emit.php', e);
      expect(result.ok).toBe(false);
      expect(result.error).toMatchObject({ class: 'TpWs\\EmitFailedException', event_id: expect.any(String) });
      expect(result.error.socket_error).toMatch(/cannot connect to .*down\.sock/);
      expect(result.error.table_error).toMatch(kind === 'sqlite' ? /cannot connect to the database \(sqlite:/ : /Access denied/);
      expect(JSON.stringify(result)).not.toContain(secret);
      expect(result.logs.some((l: LogLine) => l[0] === 'error' && /event lost/.test(String(l[1])))).toBe(true);

      const drop = await runPhp('dropin.php', e);
      expect(drop.result.results).toEqual([false]); // the misc check already fails: no database
      const drop2 = await runPhp('dropin.php', { ...e, TPWS_DB_PASSWORD: '', ...dbEnv(url) });
      expect(drop2.result.results).toEqual([true]); // database fine, socket down: the table took it
      expect(drop.stdout + drop.stderr).not.toContain(secret);
      await alice.nextEvent(); // drop2's event, via the poller
    });
  });

  describeStores('daemon down: the event waits in the table, the poller delivers it when the daemon starts', ({ newStoreUrl }) => {
    let d: TestDaemon | undefined;
    let client: TestClient | undefined;
    afterAll(async () => {
      client?.ws.terminate();
      await d?.stop();
    });

    it('delivers the rows written while no daemon ran, once', async () => {
      const url = await newStoreUrl();
      const store = openStore(url, P);
      await store.migrate(); // the table exists (TeamPass created it); no daemon runs
      const socket = scratchPath('later.sock');
      const { result } = await runPhp('emit.php', { TPWS_SOCKET: socket, TPWS_PREFIX: P, ...dbEnv(url), TPWS_EVENTS: JSON.stringify([EVENTS.user, EVENTS.folder]) });
      expect(result).toMatchObject({ ok: true, fallbacks: 2 });
      const sql = await openSeeder(url, P);
      try {
        for (const id of result.ids) expect(await rowsOf(sql, id)).toMatchObject([{ processed: PROCESSED.PENDING, event_uuid: id }]);

        // Hold the poller lock until the client is connected, so the first poll cannot run before it.
        expect(await store.acquirePollerLock()).toBe(true);
        d = await startDaemon({ 'store.url': url, 'ingest.socket': socket, 'poller.intervalMs': 20, 'poller.idleIntervalMs': 20 });
        const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId: 1, folders: [10], ttlSec: 600 });
        client = (await TestClient.login(d.url(token))).client;
        await client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } });
        await store.releasePollerLock();

        expect(await client.nextEvent(10_000)).toMatchObject({ id: result.ids[0], event: 'task_completed', data: expectedData(EVENTS.user) });
        expect(await client.nextEvent()).toMatchObject({ id: result.ids[1], event: 'item_updated', data: expectedData(EVENTS.folder) });
        for (const id of result.ids) await until(async () => (await rowsOf(sql, id))[0]?.processed === PROCESSED.DELIVERED, 'rows processed');
        // Now over the socket: the barrier comes next, nothing was delivered twice.
        const barrier = await runPhp('emit.php', { TPWS_SOCKET: socket, TPWS_PREFIX: P, ...dbEnv(url), TPWS_EVENTS: JSON.stringify([EVENTS.broadcast]) });
        expect(barrier.result).toMatchObject({ ok: true, fallbacks: 0 });
        expect((await client.nextEvent()).id).toBe(barrier.result.ids[0]);
      } finally {
        await sql.close();
        await store.close();
      }
    });
  });

  describeStores('ack lost: the daemon stalls past the timeout', ({ newStoreUrl }) => {
    const secret = 'php-emitter-test-secret-of-32-characters-at-least';
    let daemon: ChildProcess | undefined;
    let client: TestClient | undefined;
    afterAll(async () => {
      client?.ws.terminate();
      if (daemon && daemon.exitCode === null) {
        daemon.kill('SIGCONT');
        daemon.kill('SIGTERM');
        await new Promise((r) => daemon!.once('exit', r));
      }
    });

    it('falls back to the table, and the client still gets the event exactly once', async () => {
      const url = await newStoreUrl();
      const stateDir = scratchPath('state');
      const socket = join(stateDir, 'ingest.sock');
      daemon = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--admin-port', '-1', '--state-dir', stateDir, '--socket', socket, '--store', url], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TPWS_JWT_SECRET: secret, TPWS_POLLER_INTERVAL_MS: '20', TPWS_POLLER_IDLE_INTERVAL_MS: '50', TPWS_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const started = await new Promise<Json>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('tp-ws did not start')), 15_000);
        createInterface({ input: daemon!.stdout! }).on('line', (line) => {
          const m = JSON.parse(line) as Json;
          if (m.msg === 'tp-ws started') { clearTimeout(t); resolve(m); }
        });
        daemon!.once('exit', (code) => reject(new Error(`tp-ws exited ${code}`)));
      });
      const cfg = loadConfig({ env: { TPWS_STATE_DIR: stateDir, TPWS_JWT_SECRET: secret } });
      const token = await mintJwt(resolveJwtKey(cfg, false), cfg.auth.jwt, { userId: 1, ttlSec: 600 });
      client = (await TestClient.login(`ws://127.0.0.1:${started.port}/ws?token=${token}`)).client;

      daemon.kill('SIGSTOP');
      const php = runPhp('emit.php', { TPWS_SOCKET: socket, TPWS_PREFIX: P, TPWS_TIMEOUT_MS: '300', ...dbEnv(url), TPWS_EVENTS: JSON.stringify([EVENTS.user]) });
      // Resume once PHP is done — or after 3 s, should the stopped daemon hold a database lock PHP waits for.
      await Promise.race([php, new Promise((r) => setTimeout(r, 3000))]);
      daemon.kill('SIGCONT');
      const { result } = await php;
      expect(result).toMatchObject({ ok: true, fallbacks: 1 });
      expect(result.logs.map((l: LogLine) => l[2]?.socket_error)).toContain('no ack within 300 ms');
      const id = result.ids[0] as string;

      expect(await client.nextEvent(10_000)).toMatchObject({ id, event: 'task_completed' });
      const sql = await openSeeder(url, P);
      try {
        // The frame PHP wrote before giving up, and its table row, are the same event.
        await until(async () => (await rowsOf(sql, id))[0]?.processed === PROCESSED.DELIVERED, 'row processed');
        expect(await rowsOf(sql, id)).toHaveLength(1);
      } finally {
        await sql.close();
      }
      const ingest = await IngestClient.connect(socket);
      const ack = await ingest.request({ id: 'barrier-after-stall', event_type: 'barrier', target_type: 'broadcast' });
      await ingest.close();
      expect(ack.ok).toBe(true);
      expect((await client.nextEvent()).id).toBe('barrier-after-stall');
    });
  });

  describe('a long-running worker', () => {
    it('keeps one connection, and reconnects after the daemon restarted', async () => {
      const socket = scratchPath('restart.sock');
      const db = `sqlite:${scratchPath('restart.db')}`;
      let d = await startDaemon({ 'ingest.socket': socket, 'store.url': db });
      const login = async (td: TestDaemon) =>
        (await TestClient.login(td.url(await mintJwt(td.daemon.jwtKey!, td.daemon.config.auth.jwt, { userId: 1, ttlSec: 600 })))).client;
      let client = await login(d);
      const w = new PhpWorker({ TPWS_SOCKET: socket, TPWS_PREFIX: P, TPWS_DSN: db }, [
        { emit: EVENTS.user }, { emit: EVENTS.user }, { wait: 'restart' }, { emit: EVENTS.user }, { emit: EVENTS.user },
      ]);
      try {
        for (let i = 0; i < 2; i++) {
          const r = await w.next();
          expect(r).toMatchObject({ ok: true, path: 'socket' });
          expect((await client.nextEvent()).id).toBe(r.id);
        }
        expect(d.daemon.ingest!.counters.connections).toBe(1);
        expect(await w.next()).toMatchObject({ waiting: 'restart' });
        client.ws.terminate();
        await d.stop();
        d = await startDaemon({ 'ingest.socket': socket, 'store.url': db });
        client = await login(d);
        w.go();
        for (let i = 0; i < 2; i++) {
          const r = await w.next();
          expect(r).toMatchObject({ ok: true, path: 'socket' });
          expect((await client.nextEvent()).id).toBe(r.id);
        }
        expect(d.daemon.ingest!.counters.connections).toBe(1);
        expect(await w.next()).toMatchObject({ done: true });
      } finally {
        w.child.kill();
        client.ws.terminate();
        await d.stop();
      }
    });
  });

  /**
   * The socket client against a scripted fake daemon: what the real one does
   * rarely (late acks, closed connections, shutting down, stray acks), on demand.
   */
  describe('socket client edge cases (fake daemon)', () => {
    type Reply = (frame: Json, conn: number, socket: Socket, send: (ack: Json) => void) => void;
    let dbUrl: string;
    const fakes: Server[] = [];
    beforeAll(async () => {
      dbUrl = `sqlite:${scratchPath('fake.db')}`;
      const store = openStore(dbUrl, P);
      await store.migrate();
      await store.close();
    });
    afterAll(async () => {
      for (const s of fakes) await new Promise((r) => s.close(r));
    });

    /** A fake ingest socket speaking both encodings; `reply` decides what each frame gets. */
    async function fake(reply: Reply): Promise<{ path: string; connections: () => number; frames: Json[] }> {
      const path = scratchPath('fake.sock');
      let connections = 0;
      const frames: Json[] = [];
      const packr = new Packr({ useRecords: false });
      const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
      const server = createServer((socket) => {
        const conn = ++connections;
        let buf = Buffer.alloc(0);
        socket.on('error', () => {});
        socket.on('data', (chunk: Buffer) => {
          buf = Buffer.concat([buf, chunk]);
          for (;;) {
            let frame: Json;
            const msgpack = buf.length > 0 && buf[0] === 0;
            if (!msgpack) {
              const nl = buf.indexOf(0x0a);
              if (nl < 0) return;
              frame = JSON.parse(buf.subarray(0, nl).toString());
              buf = buf.subarray(nl + 1);
            } else {
              if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) return;
              frame = unpackr.unpack(buf.subarray(4, 4 + buf.readUInt32BE(0)));
              buf = buf.subarray(4 + buf.readUInt32BE(0));
            }
            frames.push(frame);
            const send = (ack: Json) => {
              if (!msgpack) socket.write(JSON.stringify(ack) + '\n');
              else {
                const body = packr.pack(ack);
                const head = Buffer.alloc(4);
                head.writeUInt32BE(body.length);
                socket.write(Buffer.concat([head, body]));
              }
            };
            reply(frame, conn, socket, send);
          }
        });
      });
      fakes.push(server);
      await new Promise<void>((r) => server.listen(path, r));
      return { path, connections: () => connections, frames };
    }

    const worker = (path: string, steps: Json[], extra: Record<string, string> = {}) =>
      new PhpWorker({ TPWS_SOCKET: path, TPWS_PREFIX: P, TPWS_DSN: dbUrl, TPWS_TIMEOUT_MS: '250', ...extra }, steps);
    const ok = (frame: Json, send: (a: Json) => void) => send({ ok: true, id: frame.id, seq: 1 });

    it.each(['ndjson', 'msgpack'])('%s: after a timeout the connection is dropped, so a late ack is never read as the next one', async (encoding) => {
      let late: (() => void) | null = null;
      const f = await fake((frame, conn, _s, send) => {
        if (conn === 1) late = () => send({ ok: true, id: frame.id, seq: 1 }); // answered only after PHP gave up
        else ok(frame, send);
      });
      const w = worker(f.path, [{ emit: EVENTS.user }, { wait: 'late ack sent' }, { emit: EVENTS.broadcast }], { TPWS_ENCODING: encoding });
      const first = await w.next();
      expect(first).toMatchObject({ ok: true, path: 'table' });
      expect(await w.next()).toMatchObject({ waiting: 'late ack sent' });
      late!();
      w.go();
      expect(await w.next()).toMatchObject({ ok: true, path: 'socket' });
      expect(f.connections()).toBe(2);
      expect(f.frames[0].id).toBe(first.id);
      await w.next();
    });

    it('reconnects once when the daemon closed the idle connection (restart), without falling back', async () => {
      const f = await fake((frame, conn, socket, send) => {
        ok(frame, send);
        if (conn === 1) socket.end(); // the "old daemon" goes away after one event
      });
      const w = worker(f.path, [{ emit: EVENTS.user }, { sleep_ms: 100 }, { emit: EVENTS.user }]);
      expect(await w.next()).toMatchObject({ ok: true, path: 'socket' });
      expect(await w.next()).toMatchObject({ ok: true, path: 'socket' });
      expect(f.connections()).toBe(2);
      await w.next();
    });

    it('a connection that dies after the write is not written to again: the table (its unique id) settles it', async () => {
      const f = await fake((_frame, _conn, socket) => socket.destroy()); // read the frame, died before the ack
      const w = worker(f.path, [{ emit: EVENTS.user }, { emit: EVENTS.user }]);
      const r = await w.next();
      expect(r).toMatchObject({ ok: true, path: 'table' });
      expect(f.frames.map((x) => x.id)).toEqual([r.id]);
      expect((await w.next()).path).toBe('table');
      const done = await w.next();
      expect(done.logs.map((l: LogLine) => l[2]?.socket_error)).toContain('the daemon closed the ingest connection before its ack');
      expect(f.connections()).toBe(2); // the second emit opened a fresh connection
    });

    it('TPWS_ERR_UNAVAILABLE (shutting down) falls back to the table', async () => {
      const f = await fake((_frame, _conn, socket, send) => {
        send({ ok: false, error: { code: 'TPWS_ERR_UNAVAILABLE', message: 'shutting down' } });
        socket.end();
      });
      const w = worker(f.path, [{ emit: EVENTS.user }]);
      const r = await w.next();
      expect(r).toMatchObject({ ok: true, path: 'table' });
      const sql = await openSeeder(dbUrl, P);
      expect(await rowsOf(sql, r.id)).toMatchObject([{ processed: PROCESSED.PENDING }]);
      await sql.close();
      await w.next();
    });

    it('stray acks of other ids (an earlier request that gave up) are skipped', async () => {
      const f = await fake((frame, _conn, _s, send) => {
        send({ ok: true, id: 'someone-else', seq: 1 });
        ok(frame, send);
      });
      const w = worker(f.path, [{ emit: EVENTS.user }, { emit: EVENTS.user }]);
      expect(await w.next()).toMatchObject({ ok: true, path: 'socket' });
      expect(await w.next()).toMatchObject({ ok: true, path: 'socket' });
      const done = await w.next();
      expect(done.logs.filter((l: LogLine) => l[1] === 'tp-ws: skipped a stale ack')).toHaveLength(2);
    });

    it('an unknown error code is treated as "try later": table', async () => {
      const f = await fake((frame, _c, _s, send) => send({ ok: false, id: frame.id, error: { code: 'TPWS_ERR_INTERNAL', message: 'boom' } }));
      const w = worker(f.path, [{ emit: EVENTS.user }]);
      expect(await w.next()).toMatchObject({ ok: true, path: 'table' });
      await w.next();
    });
  });
});
