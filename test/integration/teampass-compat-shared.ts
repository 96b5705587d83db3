/**
 * Shared by the teampass-compat-*.test.ts suites: a daemon on a fresh MariaDB
 * database with TeamPass's tables, driven the way TeamPass drives it.
 *
 * - Browser tabs: `/ws?token=…` with an `Origin` header, request ids `req_…`
 *   (reference §7.2), `{"action":"pong"}` answers to server pings.
 * - Events from TeamPass's PHP side: an INSERT into `<prefix>websocket_events`
 *   exactly as `emitWebSocketEvent` writes it (§2.5), delivered by the
 *   daemon's table poller.
 * - Every test gets its own users, folders, items and KB articles, so suites
 *   never depend on what an earlier test left behind.
 *
 * Expectations come from the reference (/work/shared/reference/teampass-3.2-websocket.md),
 * not from tp-ws's code.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase } from '../helpers/mysql.js';
import { openSeeder, type SeedRole, type Seeder } from '../helpers/seed.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { until } from '../helpers/until.js';
import { TestClient, type Message } from '../helpers/ws-client.js';

export const P = 'teampass_';
/** What every browser sends on the upgrade; TeamPass's daemon never checks it (§1.3, §11.5). */
export const ORIGIN = 'https://teampass.example.org';
/** The auth_failed message (§3 step 3, §4.3). */
export const AUTH_FAILED = 'Authentication required. Provide a valid session or JWT token.';

export const nowSec = () => Math.floor(Date.now() / 1000);
export const hex64 = () => randomBytes(32).toString('hex');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A TestClient that also keeps every message in arrival order (`history`),
 * so a test can check what came before what and what never came.
 */
export class Tab extends TestClient {
  readonly history: Message[] = [];

  constructor(url: string, options?: WebSocket.ClientOptions) {
    super(url, options);
    this.ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Message;
      this.history.push(m);
      // The browser client answers every server ping (§7.2).
      if (m.type === 'ping') this.send({ action: 'pong' });
    });
  }

  /** Events of `name` received so far (consumed or not). */
  events(name: string, pred: (m: Message) => boolean = () => true): Message[] {
    return this.history.filter((m) => m.type === 'event' && m.event === name && pred(m));
  }

  /** The next `event` named `name` whose data matches `pred`. */
  nextNamed(name: string, pred: (data: Message) => boolean = () => true, timeoutMs = 5000): Promise<Message> {
    return this.next((m) => m.type === 'event' && m.event === name && pred(m.data ?? {}), timeoutMs);
  }
}

export interface TpUser {
  id: number;
  login: string;
  token: string;
  displayName: string;
}

export interface UserSpec {
  name?: string | null;
  lastname?: string | null;
  admin?: boolean;
  disabled?: boolean;
  /** Direct grants (`users_groups`). */
  folders?: number[];
  /** Folders reached through one role (`users_roles` + `roles_values`). */
  roleFolders?: number[];
  /** Token lifetime, default 3600 s like `public/index.php`. */
  ttlSec?: number;
}

export interface EmitSpec {
  event: string;
  target: 'user' | 'folder' | 'kb' | 'broadcast';
  targetId?: number | null;
  payload?: Record<string, unknown>;
  exclude?: number | null;
}

export interface Compat {
  d: TestDaemon;
  dbUrl: string;
  sql: Seeder;
  /** A fresh user with a fresh page token (64 hex, valid `ttlSec`). */
  user(spec?: UserSpec): Promise<TpUser>;
  /** A fresh folder / item / KB article id (items and articles get their rows). */
  folder(): number;
  item(folderId: number): Promise<number>;
  kb(opts?: { deleted?: boolean }): Promise<number>;
  roleOf(userId: number): number;
  /** A browser tab: `/ws?token=` with Origin, waits for the first message, which must be `connected`. */
  tab(token: string, path?: string): Promise<{ tab: Tab; connected: Message }>;
  /** Open a socket and return its first message (for refusals); the socket is tracked for teardown. */
  raw(token: string | undefined, opts?: { origin?: string | null; path?: string }): Tab;
  /** emitWebSocketEvent (§2.5): one INSERT; returns the row id. */
  emit(e: EmitSpec): Promise<number>;
  /**
   * A broadcast barrier: insert a marker event and wait until every tab got it.
   * The poller delivers rows in order (§11.13), so whatever a tab has not
   * received by then, from rows inserted before, it will not receive.
   */
  barrier(tabs: Tab[]): Promise<void>;
  /** Insert `e` (with a unique marker) and return which of `tabs` received it. */
  deliveredTo(tabs: Record<string, Tab>, e: EmitSpec): Promise<string[]>;
  /** Rows of a query on the test database. */
  rows<T = Record<string, any>>(q: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

/**
 * Start a daemon on a new MariaDB database and seed what TeamPass has when
 * the feature is on: misc `websocket_enabled = '1'`, `enable_kb = '1'`.
 */
export async function startCompat(settings: Record<string, string | number | boolean> = {}, baseUserId = 100): Promise<Compat> {
  const db = await createTestDatabase();
  const d = await startDaemon({
    'store.url': db.url,
    'store.tablePrefix': P,
    'poller.idleIntervalMs': 20,
    'poller.intervalMs': 20,
    'limits.rateLimitMessages': 1000,
    ...settings,
  });
  const sql = await openSeeder(db.url, P);
  await sql.seedMisc({ websocket_enabled: '1', enable_kb: '1' });
  const tabs: Tab[] = [];
  let nextUser = baseUserId;
  let nextFolder = baseUserId * 10;
  let nextItem = baseUserId * 100;
  let nextKb = baseUserId * 10;
  let barrierN = 0;

  const emit = async (e: EmitSpec): Promise<number> => {
    // emitWebSocketEvent: exclude_user_id when given, always server_timestamp, then
    // json_encode(JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES) — what JSON.stringify writes.
    const payload: Record<string, unknown> = { ...(e.payload ?? {}) };
    if (e.exclude !== undefined && e.exclude !== null) payload.exclude_user_id = e.exclude;
    payload.server_timestamp = nowSec();
    await sql.execSql(`INSERT INTO ${P}websocket_events (event_type, target_type, target_id, payload) VALUES (?, ?, ?, ?)`, [
      e.event, e.target, e.targetId ?? null, JSON.stringify(payload),
    ]);
    const [{ id }] = await sql.execSql<{ id: number }>('SELECT LAST_INSERT_ID() AS id');
    return Number(id);
  };

  const barrier = async (ts: Tab[]) => {
    const n = `${process.pid}-${++barrierN}`;
    await emit({ event: 'tpws_test_barrier', target: 'broadcast', payload: { barrier: n } });
    await Promise.all(ts.map((t) => t.nextNamed('tpws_test_barrier', (data) => data.barrier === n, 10_000)));
  };

  const c: Compat = {
    d,
    dbUrl: db.url,
    sql,
    async user(spec = {}) {
      const id = nextUser++;
      const login = `user${id}`;
      const name = spec.name === undefined ? `First${id}` : spec.name;
      const lastname = spec.lastname === undefined ? `Last${id}` : spec.lastname;
      const token = hex64();
      await sql.seedUsers([{ id, login, name, lastname, admin: spec.admin, disabled: spec.disabled }]);
      if (spec.folders?.length) await sql.seedGroups(id, spec.folders);
      if (spec.roleFolders?.length) await sql.seedRoles(id, [{ roleId: c.roleOf(id), folderIds: spec.roleFolders } satisfies SeedRole]);
      await sql.seedToken(id, token, spec.ttlSec ?? 3600);
      const displayName = `${name ?? ''} ${lastname ?? ''}`.trim().replace(/\s+/g, ' ') || login;
      return { id, login, token, displayName };
    },
    roleOf: (userId) => userId * 10 + 1,
    folder: () => nextFolder++,
    async item(folderId) {
      const id = nextItem++;
      await sql.execSql(`REPLACE INTO ${P}items (id, id_tree, label) VALUES (?, ?, ?)`, [id, String(folderId), `item ${id}`]);
      return id;
    },
    async kb(opts = {}) {
      const id = nextKb++;
      await sql.execSql(`REPLACE INTO ${P}kb (id, label, deleted_at) VALUES (?, ?, ${opts.deleted ? 'NOW()' : 'NULL'})`, [id, `kb ${id}`]);
      return id;
    },
    async tab(token, path = '/ws') {
      const t = new Tab(d.url(token, path), { headers: { Origin: ORIGIN } });
      tabs.push(t);
      await t.opened;
      const connected = await t.next();
      if (connected.type !== 'connected') throw new Error(`expected connected, got ${JSON.stringify(connected)}`);
      return { tab: t, connected };
    },
    raw(token, opts = {}) {
      const origin = opts.origin === undefined ? ORIGIN : opts.origin;
      const t = new Tab(d.url(token, opts.path), origin === null ? {} : { headers: { Origin: origin } });
      tabs.push(t);
      return t;
    },
    emit,
    barrier,
    async deliveredTo(named, e) {
      const marker = hex64();
      await emit({ ...e, payload: { ...(e.payload ?? {}), marker } });
      const list = Object.entries(named);
      await barrier(list.map(([, t]) => t).filter((t) => t.ws.readyState === WebSocket.OPEN));
      return list.filter(([, t]) => t.history.some((m) => m.type === 'event' && m.data?.marker === marker)).map(([n]) => n);
    },
    rows: (q, params = []) => sql.execSql(q.replaceAll('<p>', P), params),
    async stop() {
      for (const t of tabs) t.ws.terminate();
      await sql.close().catch(() => {});
      await d.stop();
      await db.drop();
    },
  };
  return c;
}

/** Expect a connection-level refusal (§3, §4.4): exactly {type, error_code, message}, then close 1000 with an empty reason. */
export async function expectRefused(t: Tab, errorCode: string, message: string): Promise<void> {
  const m = await t.next();
  expect(m).toEqual({ type: 'error', error_code: errorCode, message });
  expect(await t.closed).toEqual({ code: 1000, reason: '' });
}

/** A handler error (§4.1): exactly {type, error_code, message, request_id}. */
export function expectHandlerError(m: Message, errorCode: string, message: string, requestId: string | null): void {
  expect(m).toEqual({ type: 'error', error_code: errorCode, message, request_id: requestId });
}

/** A viewer entry as TeamPass sends it (§5). */
export const viewer = (u: TpUser) => ({ user_id: u.id, user_login: u.login, user_display_name: u.displayName });
export const byUserId = (a: { user_id: number }, b: { user_id: number }) => a.user_id - b.user_id;
/** Viewers sorted by user id (the reference fixes membership, not order). */
export const sortedViewers = (v: unknown): unknown => (Array.isArray(v) ? [...v].sort(byUserId) : v);

/** Poll `get_status` until `pred(subscriptions)` holds. */
export async function untilSubscriptions(t: Tab, pred: (subs: string[]) => boolean, what: string): Promise<string[]> {
  let last: string[] = [];
  await until(async () => {
    last = (await t.request({ action: 'get_status' })).subscriptions as string[];
    return pred(last);
  }, `${what} (last subscriptions: ${JSON.stringify(last)})`, 5000);
  return last;
}

export { until, type Message };
