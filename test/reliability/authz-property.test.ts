/**
 * Authorization property test (issue #12). A seeded generator builds a
 * TeamPass world — users (some admins, some disabled), folders, direct
 * grants and roles with folders — and runs a few hundred random steps
 * against a real daemon authenticating TeamPass tokens: sockets connect
 * (several per user) and leave, subscribe to folders they may and may not
 * read and to the KB, come back with `resume`; access changes while
 * connected (users_groups, roles_values, users_roles, users.admin,
 * users.disabled changed by SQL, then `folder_permission_changed` sent the
 * way TeamPass does, at once or some steps later, to the user or to a
 * folder); events of every target type, with and without exclusions, go
 * through the ingest socket and as events-table rows, in batches where an
 * access change may sit right in front of the events it must affect.
 *
 * The reference model (authz-model.ts, from docs/protocol.md) says after
 * each step which socket must receive which event. Every reply is checked
 * against it as it comes; at the end a broadcast marker reaches every open
 * socket, and each socket's events must equal the model's, in order: none
 * for a folder it may not read at that moment or excluded for it, none
 * missing, none twice. A failure names the seed, the step, the socket and
 * the event.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import WebSocket from 'ws';
import { IngestClient, isBatchAck } from '../../src/ingest/client.js';
import { Random } from '../helpers/random.js';
import { scenarioNote, scenarioRandom, withSeed } from '../helpers/reliability.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { describeStores } from '../helpers/stores.js';
import { until } from '../helpers/until.js';
import { AuthzModel, TeampassTables, type ModelSocket, type StreamEvent, type TargetType } from './authz-model.js';

const P = 'teampass_';
const ORIGIN = 'https://teampass.example.org';
/** Steps per run: a few hundred, well under the file's time budget on a loaded machine. */
const STEPS = 400;
/** Open sockets at most, per user and in all (the per-user cap is 5; not what this test is about). */
const MAX_PER_USER = 3;
const MAX_OPEN = 24;

type Msg = Record<string, any>;

/** A browser tab: a real socket that records the events it receives (by `data.pt`) and answers requests. */
class Tab {
  readonly ws: WebSocket;
  readonly events: string[] = [];
  /** Events the test did not send (there must be none). */
  readonly foreign: Msg[] = [];
  /** Replayed events still to come after a `resumed` reply: their positions are behind the reply's. */
  private replaying = 0;
  /** The last position the daemon gave it (`connected`, then each event). */
  position: { epoch: string; seq: number } | null = null;
  readonly first: Promise<Msg>;
  readonly closed: Promise<number>;
  private readonly waiting = new Map<string, (m: Msg) => void>();
  private rid = 0;
  /** Requests to send the moment the event with that key arrives, as a client reacting to it would. */
  private readonly onEvent = new Map<string, () => void>();

  constructor(url: string) {
    this.ws = new WebSocket(url, { headers: { Origin: ORIGIN } });
    this.ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => resolve(code)));
    this.first = new Promise((resolve, reject) => {
      this.ws.once('message', (data) => resolve(JSON.parse(String(data)) as Msg));
      this.ws.once('close', (code) => reject(new Error(`closed (${code}) before its first message`)));
    });
    this.ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Msg;
      if (m.type === 'connected') this.position = { epoch: m.epoch, seq: m.seq };
      else if (m.action === 'resumed') {
        // §Resume: the reply's position covers the replay that follows it.
        this.position = { epoch: m.epoch, seq: m.seq };
        this.replaying = m.replayed;
      } else if (m.type === 'event') {
        if (typeof m.data?.pt === 'string') {
          this.events.push(m.data.pt);
          this.onEvent.get(m.data.pt)?.();
          this.onEvent.delete(m.data.pt);
        } else this.foreign.push(m);
        if (this.replaying > 0) this.replaying--;
        else if (typeof m.seq === 'number') this.position = { epoch: m.epoch, seq: m.seq };
      } else if (m.type === 'ping') this.ws.send('{"action":"pong"}');
      if (typeof m.request_id === 'string') {
        this.waiting.get(m.request_id)?.(m);
        this.waiting.delete(m.request_id);
      }
    });
  }

  request(m: Msg): Promise<Msg> {
    const id = `req_${++this.rid}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(m)} within 10 s`)), 10_000);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.ws.send(JSON.stringify({ ...m, request_id: id }));
    });
  }

  /** Send `m` as soon as the event `key` arrives (from the message handler, before anything else runs); its reply. */
  requestOn(key: string, m: Msg): Promise<Msg> {
    return new Promise((resolve, reject) => this.onEvent.set(key, () => this.request(m).then(resolve, reject)));
  }

  async close(): Promise<void> {
    this.ws.close(1000);
    await this.closed;
  }
}

/** The world of one run: users, folders, roles, written to the tables and mirrored in the model. */
interface World {
  users: number[];
  folders: number;
  roles: number[];
  tokens: Map<number, string>;
}

const sorted = (xs: Iterable<number>) => [...xs].sort((a, b) => a - b);

describeStores('authorization property', ({ kind, newStoreUrl }) => {
  it('no socket receives an event for a folder it may not read at that moment, or one excluded for it, and none misses one it should get', async () => {
    await authzRun(`authz-property [${kind}]`, await newStoreUrl(), scenarioRandom(), STEPS);
  }, 60_000);

  // Found by this test: a subscribe sent on receiving folder_permission_changed was answered
  // with the access of before the change (a revoked folder "subscribed", a granted one
  // "forbidden") while the daemon was still reading the new folders. Without the fix (actions
  // wait for the re-read: src/fanout/hub.ts, src/gateway/actions.ts) seed 5 fails on both
  // stores, three runs out of three; it is a race, so the random runs find it too, less surely.
  it('regression, seed 5: a subscribe sent on receiving folder_permission_changed gets the new access', async () => {
    await authzRun(`authz-property regression [${kind}]`, await newStoreUrl(), new Random(5), 160);
  }, 60_000);
});

/** One run against a fresh daemon on the store at `url`: seed the world, run the steps, check, print the note. */
async function authzRun(name: string, url: string, rng: Random, steps: number): Promise<void> {
  const started = Date.now();
  let d: TestDaemon | undefined;
  let sql: Seeder | undefined;
  let ingest: IngestClient | undefined;
  const tabs: Tab[] = [];
  try {
    await withSeed(rng, async () => {
      d = await startDaemon({
        'store.url': url,
        'store.tablePrefix': P,
        'auth.methods': 'teampass-token',
        'poller.intervalMs': 10,
        'poller.idleIntervalMs': 10,
        'limits.rateLimitMessages': 10_000,
        'teampass.lockReleaseGraceMs': 3_600_000,
      });
      sql = await openSeeder(url, P);
      ingest = await IngestClient.connect(join(d.stateDir, 'ingest.sock'));
      const run = new Run(rng, d, sql, ingest, tabs);
      await run.seedWorld();
      await run.steps(steps);
      await run.finish();
      scenarioNote(name, run.note(steps, Date.now() - started), rng.seed);
    });
  } finally {
    for (const t of tabs) t.ws.terminate();
    await ingest?.close().catch(() => undefined);
    await sql?.close();
    await d?.stop();
  }
}

/** One run: the generator, the driver and the checks. */
class Run {
  private readonly tables: TeampassTables;
  private readonly model: AuthzModel;
  private readonly world: World;
  private readonly tabOf = new Map<ModelSocket, Tab>();
  /** Users whose tables changed and who were not told yet (TeamPass tells them a little later). */
  private readonly untold = new Set<number>();
  /** Tabs whose socket dropped and that will come back with `resume`. */
  private readonly away: ModelSocket[] = [];
  private step = 0;
  private nextKey = 0;
  private nextSocket = 0;
  private readonly log: string[] = [];
  private readonly counts = { connects: 0, refused: 0, subscribes: 0, forbidden: 0, kb: 0, resumes: 0, replayed: 0, changes: 0, signals: 0, eager: 0, events: 0, ingest: 0, table: 0 };

  constructor(private readonly rng: Random, private readonly d: TestDaemon, private readonly sql: Seeder, private readonly ingest: IngestClient, private readonly tabs: Tab[]) {
    const users = Array.from({ length: rng.int(8, 12) }, (_, i) => i + 1);
    this.world = { users, folders: rng.int(10, 20), roles: Array.from({ length: rng.int(2, 4) }, (_, i) => 100 + i), tokens: new Map() };
    this.tables = new TeampassTables(users);
    this.model = new AuthzModel(this.tables);
  }

  private fail(what: string): never {
    throw new Error(`step ${this.step}: ${what}\nlast steps:\n  ${this.log.slice(-15).join('\n  ')}`);
  }

  private folder(): number {
    // A few ids past the last folder: admins may subscribe to any id, others must be refused.
    return this.rng.int(1, this.world.folders + 2);
  }

  async seedWorld(): Promise<void> {
    const { rng, tables, world } = this;
    await this.sql.seedMisc({ websocket_enabled: '1', enable_kb: '1' });
    for (const r of world.roles) {
      const fs = new Set(Array.from({ length: rng.int(1, 5) }, () => rng.int(1, world.folders)));
      tables.roleFolders.set(r, fs);
    }
    for (const u of world.users) {
      const admin = rng.chance(0.2);
      const disabled = rng.chance(0.1);
      if (admin) tables.admin.add(u);
      if (disabled) tables.disabled.add(u);
      await this.sql.seedUsers([{ id: u, login: `user${u}`, admin, disabled }]);
      const direct = [...new Set(Array.from({ length: rng.int(0, 3) }, () => rng.int(1, world.folders)))];
      for (const f of direct) tables.groups.get(u)!.add(f);
      await this.sql.seedGroups(u, direct);
      for (const r of world.roles) {
        if (!rng.chance(0.35)) continue;
        tables.userRoles.get(u)!.add(r);
        await this.sql.execSql(`INSERT INTO ${P}users_roles (user_id, role_id, source) VALUES (?, ?, 'manual')`, [u, r]);
      }
      const token = randomBytes(32).toString('hex');
      world.tokens.set(u, token);
      await this.sql.seedToken(u, token, 3600);
    }
    for (const [r, fs] of tables.roleFolders) {
      for (const f of fs) await this.sql.execSql(`INSERT INTO ${P}roles_values (role_id, folder_id, type) VALUES (?, ?, 'W')`, [r, f]);
    }
  }

  async steps(n: number): Promise<void> {
    for (this.step = 1; this.step <= n; this.step++) {
      const open = this.model.open();
      const kinds = ['connect', 'disconnect', 'resume', 'subscribe', 'unsubscribe', 'kb', 'access', 'tell', 'events'] as const;
      const weights = [
        open.length < MAX_OPEN ? (open.length < 4 ? 40 : 10) : 0,
        open.length > 2 ? 6 : 0,
        open.length > 0 || this.away.length > 0 ? 6 : 0,
        open.length > 0 ? 22 : 0,
        open.length > 0 ? 6 : 0,
        open.length > 0 ? 5 : 0,
        10,
        this.untold.size > 0 ? 4 : 0,
        28,
      ];
      const kindOf = this.rng.pick(kinds, weights);
      await this[kindOf]();
    }
  }

  /** One line of the step log a failure prints. */
  private trace(line: string): void {
    this.log.push(`${this.step}: ${line}`);
  }

  private pickOpen(): ModelSocket {
    return this.rng.pick(this.model.open());
  }

  // --- sockets -------------------------------------------------------------

  /** Open a tab of `user` and check the verdict against the model; null when the model refuses it too. */
  private async login(user: number): Promise<{ s: ModelSocket; tab: Tab } | null> {
    const tab = new Tab(this.d.url(this.world.tokens.get(user)));
    this.tabs.push(tab);
    const first = await tab.first;
    const id = ++this.nextSocket;
    const s = this.model.connect(id, user);
    this.counts.connects++;
    if (s === null) {
      if (first.type !== 'error' || first.error_code !== 'auth_failed') this.fail(`user ${user} (disabled) must be refused, got ${JSON.stringify(first)}`);
      await tab.closed;
      this.counts.refused++;
      this.trace(`connect user ${user}: refused`);
      return null;
    }
    if (first.type !== 'connected' || first.user_id !== user) this.fail(`socket ${id} of user ${user}: expected connected, got ${JSON.stringify(first)}`);
    this.tabOf.set(s, tab);
    this.trace(`connect user ${user}: socket ${id}`);
    return { s, tab };
  }

  private async connect(): Promise<void> {
    const candidates = this.world.users.filter((u) => this.model.open().filter((s) => s.user === u).length < MAX_PER_USER);
    if (candidates.length === 0) return;
    await this.login(this.rng.pick(candidates));
  }

  private async disconnect(): Promise<void> {
    const s = this.pickOpen();
    await this.tabOf.get(s)!.close();
    s.open = false;
    // Half of them come back later with resume: what happens meanwhile (events, access changes) is what they replay.
    const back = this.rng.chance(0.5);
    if (back) this.away.push(s);
    this.trace(`disconnect socket ${s.id}${back ? ' (will resume)' : ''}`);
  }

  /** The tab goes away and comes back as a new socket that resumes from its last position, asking for its folders (and maybe one more) and the KB. */
  private async resume(): Promise<void> {
    let old: ModelSocket;
    if (this.away.length > 0 && (this.model.open().length === 0 || this.rng.chance(0.6))) {
      old = this.away.splice(this.rng.int(0, this.away.length - 1), 1)[0];
    } else {
      old = this.pickOpen();
      await this.tabOf.get(old)!.close();
      old.open = false;
    }
    const oldTab = this.tabOf.get(old)!;
    if (this.model.open().filter((s) => s.user === old.user).length >= MAX_PER_USER) return;
    const position = oldTab.position;
    if (position === null) this.fail(`socket ${old.id} has no position`);
    const again = await this.login(old.user);
    if (again === null) return;
    const { s, tab } = again;
    const folders = [...new Set([...old.subs, ...(this.rng.chance(0.5) ? [this.folder()] : [])])];
    const kb = old.kb || this.rng.chance(0.3);
    const reply = await tab.request({ action: 'resume', data: { epoch: position.epoch, seq: position.seq, folders, kb } });
    const want = this.model.resume(s, old.position, folders, kb);
    this.counts.resumes++;
    this.counts.replayed += want.replayed.length;
    this.trace(`resume socket ${old.id} as ${s.id} (user ${s.user}) folders ${JSON.stringify(folders)} kb ${kb}: replay ${want.replayed.map((e) => e.key).join(',')}`);
    const got = { action: reply.action, recovered: reply.recovered, folders: sorted(reply.folders ?? []), denied: sorted(reply.denied ?? []), kb: reply.kb, replayed: reply.replayed };
    const exp = { action: 'resumed', recovered: true, folders: sorted(want.folders), denied: sorted(want.denied), kb: want.kb, replayed: want.replayed.length };
    if (JSON.stringify(got) !== JSON.stringify(exp)) this.fail(`socket ${s.id} (user ${s.user}) resume: expected ${JSON.stringify(exp)}, got ${JSON.stringify(reply)}`);
  }

  private async subscribe(): Promise<void> {
    const s = this.pickOpen();
    // Mostly folders it may read (the interesting case), else any id.
    const own = [...s.folders];
    const folder = own.length > 0 && this.rng.chance(0.6) ? this.rng.pick(own) : this.folder();
    const reply = await this.tabOf.get(s)!.request({ action: 'subscribe', channel: 'folder', data: { folder_id: folder } });
    this.checkSubscribe(s, folder, reply, '');
  }

  /** The reply to a folder subscribe must be the model's verdict; the model subscribes when allowed. */
  private checkSubscribe(s: ModelSocket, folder: number, reply: Msg, how: string): void {
    const allowed = s.mayReadFolder(folder);
    this.counts.subscribes++;
    this.trace(`socket ${s.id} (user ${s.user}) subscribe folder ${folder}${how}: ${allowed ? 'allowed' : 'forbidden'}`);
    if (allowed) {
      if (reply.action !== 'subscribed' || reply.folder_id !== folder) this.fail(`socket ${s.id} (user ${s.user}) may read folder ${folder}: expected subscribed, got ${JSON.stringify(reply)}`);
      s.subs.add(folder);
    } else {
      if (reply.error_code !== 'forbidden') this.fail(`socket ${s.id} (user ${s.user}) may not read folder ${folder}: expected forbidden, got ${JSON.stringify(reply)}`);
      this.counts.forbidden++;
    }
  }

  private async unsubscribe(): Promise<void> {
    const s = this.pickOpen();
    const folder = s.subs.size > 0 && this.rng.chance(0.8) ? this.rng.pick([...s.subs]) : this.folder();
    const reply = await this.tabOf.get(s)!.request({ action: 'unsubscribe', channel: 'folder', data: { folder_id: folder } });
    this.trace(`socket ${s.id} unsubscribe folder ${folder}`);
    if (reply.action !== 'unsubscribed') this.fail(`socket ${s.id} unsubscribe ${folder}: got ${JSON.stringify(reply)}`);
    s.subs.delete(folder);
  }

  private async kb(): Promise<void> {
    const s = this.pickOpen();
    const tab = this.tabOf.get(s)!;
    this.counts.kb++;
    if (s.kb && this.rng.chance(0.5)) {
      const reply = await tab.request({ action: 'unsubscribe', channel: 'kb' });
      this.trace(`socket ${s.id} unsubscribe kb`);
      if (reply.action !== 'unsubscribed') this.fail(`socket ${s.id} unsubscribe kb: got ${JSON.stringify(reply)}`);
      s.kb = false;
      return;
    }
    const reply = await tab.request({ action: 'subscribe', channel: 'kb' });
    this.trace(`socket ${s.id} (user ${s.user}, admin ${s.admin}) subscribe kb`);
    if (s.mayReadKb) {
      if (reply.action !== 'subscribed' || reply.channel !== 'kb') this.fail(`socket ${s.id} (user ${s.user}) subscribe kb: expected subscribed, got ${JSON.stringify(reply)}`);
      s.kb = true;
    } else if (reply.error_code !== 'forbidden') {
      this.fail(`socket ${s.id} (admin ${s.user}) subscribe kb: expected forbidden, got ${JSON.stringify(reply)}`);
    }
  }

  // --- access changes ----------------------------------------------------------

  /** Change the tables as a TeamPass admin would; returns the users whose access may have changed. */
  private async changeTables(): Promise<number[]> {
    const { rng, tables, world } = this;
    // Mostly users who are connected, and revocations of what they subscribed to: the case that matters.
    const connected = [...new Set(this.model.open().map((s) => s.user))];
    const u = connected.length > 0 && rng.chance(0.75) ? rng.pick(connected) : rng.pick(world.users);
    const subscribed = [...new Set(this.model.open().filter((s) => s.user === u).flatMap((s) => [...s.subs]))];
    const r = rng.pick(world.roles);
    const f = rng.int(1, world.folders);
    const change = rng.pick(['grant', 'ungrant', 'role+folder', 'role-folder', 'user+role', 'user-role', 'admin', 'disable'] as const, [2, 3, 1, 3, 1, 2, 1, 1]);
    this.counts.changes++;
    switch (change) {
      case 'grant':
        if (tables.groups.get(u)!.has(f)) return [];
        tables.groups.get(u)!.add(f);
        await this.sql.execSql(`INSERT INTO ${P}users_groups (user_id, group_id) VALUES (?, ?)`, [u, f]);
        this.trace(`tables: user ${u} granted folder ${f}`);
        return [u];
      case 'ungrant': {
        const own = [...tables.groups.get(u)!];
        if (own.length === 0) return [];
        const hit = own.filter((g) => subscribed.includes(g));
        const g = rng.pick(hit.length > 0 ? hit : own);
        tables.groups.get(u)!.delete(g);
        await this.sql.execSql(`DELETE FROM ${P}users_groups WHERE user_id = ? AND group_id = ?`, [u, g]);
        this.trace(`tables: user ${u} loses direct folder ${g}`);
        return [u];
      }
      case 'role+folder':
        if (tables.roleFolders.get(r)!.has(f)) return [];
        tables.roleFolders.get(r)!.add(f);
        await this.sql.execSql(`INSERT INTO ${P}roles_values (role_id, folder_id, type) VALUES (?, ?, 'W')`, [r, f]);
        this.trace(`tables: role ${r} gets folder ${f} (users ${tables.usersOfRole(r).join(',')})`);
        return tables.usersOfRole(r);
      case 'role-folder': {
        const mine = [...tables.userRoles.get(u)!].filter((x) => tables.roleFolders.get(x)!.size > 0);
        const role = mine.length > 0 ? rng.pick(mine) : r;
        const own = [...tables.roleFolders.get(role)!];
        if (own.length === 0) return [];
        const hit = own.filter((g) => subscribed.includes(g));
        const g = rng.pick(hit.length > 0 ? hit : own);
        tables.roleFolders.get(role)!.delete(g);
        await this.sql.execSql(`DELETE FROM ${P}roles_values WHERE role_id = ? AND folder_id = ?`, [role, g]);
        this.trace(`tables: role ${role} loses folder ${g} (users ${tables.usersOfRole(role).join(',')})`);
        return tables.usersOfRole(role);
      }
      case 'user+role':
        if (tables.userRoles.get(u)!.has(r)) return [];
        tables.userRoles.get(u)!.add(r);
        await this.sql.execSql(`INSERT INTO ${P}users_roles (user_id, role_id, source) VALUES (?, ?, 'manual')`, [u, r]);
        this.trace(`tables: user ${u} gets role ${r}`);
        return [u];
      case 'user-role':
        if (!tables.userRoles.get(u)!.has(r)) return [];
        tables.userRoles.get(u)!.delete(r);
        await this.sql.execSql(`DELETE FROM ${P}users_roles WHERE user_id = ? AND role_id = ?`, [u, r]);
        this.trace(`tables: user ${u} loses role ${r}`);
        return [u];
      case 'admin': {
        const admin = !tables.admin.has(u);
        if (admin) tables.admin.add(u);
        else tables.admin.delete(u);
        await this.sql.execSql(`UPDATE ${P}users SET admin = ? WHERE id = ?`, [admin ? 1 : 0, u]);
        this.trace(`tables: user ${u} admin ${admin}`);
        return [u];
      }
      case 'disable': {
        // Mostly disabling; an account that is disabled is sometimes enabled again.
        const disabled = !tables.disabled.has(u) || rng.chance(0.3) ? !tables.disabled.has(u) : true;
        if (disabled) tables.disabled.add(u);
        else tables.disabled.delete(u);
        await this.sql.execSql(`UPDATE ${P}users SET disabled = ? WHERE id = ?`, [disabled ? 1 : 0, u]);
        this.trace(`tables: user ${u} disabled ${disabled}`);
        return [u];
      }
    }
  }

  /** Change the tables, then tell the daemon: `folder_permission_changed` per user, mostly at once, sometimes some steps later. */
  private async access(): Promise<void> {
    const users = await this.changeTables();
    const now: number[] = [];
    for (const u of users) {
      if (this.rng.chance(0.2)) this.untold.add(u);
      else now.push(u);
    }
    if (now.length > 0) await this.tellNow(now);
  }

  /** Tell the users whose tables changed some steps ago. */
  private async tell(): Promise<void> {
    const users = [...this.untold];
    this.untold.clear();
    await this.tellNow(users);
  }

  /**
   * The signals, with a few ordinary events in the same batch (an event queued
   * right behind a change must already obey it). Then, usually, wait until the
   * daemon has read the access again; sometimes a socket of a changed user
   * subscribes at once to a folder whose access changed (it has the event,
   * so its next subscribe must get the new verdict: §Access changes).
   */
  private async tellNow(users: number[]): Promise<void> {
    for (const u of users) this.untold.delete(u);
    const before = new Map(this.model.open().filter((s) => users.includes(s.user)).map((s) => [s, new Set(s.folders)] as const));
    const beforeAdmin = new Map([...before.keys()].map((s) => [s, s.admin] as const));
    const eager = this.rng.chance(0.4) ? this.eagerTarget(before, beforeAdmin) : null;
    const batch: Omit<StreamEvent, 'key' | 'step' | 'via'>[] = [];
    for (const u of users) {
      batch.push({ type: 'folder_permission_changed', target: 'user', targetId: u, exclude: null });
      // Not with the eager subscribe: where it lands among the batch's events is not defined.
      if (eager !== null) continue;
      // Right behind it, an event for a folder the user's sockets are subscribed to, mostly one they just lost.
      const subs = [...new Set(this.model.open().filter((s) => s.user === u).flatMap((s) => [...s.subs]))];
      const a = this.tables.access(u);
      const lost = subs.filter((f) => a === null || (!a.admin && !a.folders.has(f)));
      if (subs.length > 0 && this.rng.chance(0.7)) {
        batch.push({ type: 'item_updated', target: 'folder', targetId: this.rng.pick(lost.length > 0 ? lost : subs), exclude: null });
      }
      if (this.rng.chance(0.4)) batch.push(...this.randomEvents(this.rng.int(1, 3)));
    }
    this.counts.signals += users.length;
    const eagerReply: { promise: Promise<Msg> | null } = { promise: null };
    await this.send(batch, {
      settle: eager === null,
      // The tab subscribes the moment it receives its folder_permission_changed.
      before: (events) => {
        if (eager === null) return;
        const signal = events.find((e) => e.type === 'folder_permission_changed' && e.targetId === eager.s.user)!;
        eagerReply.promise = this.tabOf.get(eager.s)!.requestOn(signal.key, { action: 'subscribe', channel: 'folder', data: { folder_id: eager.folder } });
      },
    });
    if (eager !== null && eagerReply.promise !== null) {
      this.counts.eager++;
      this.checkSubscribe(eager.s, eager.folder, await eagerReply.promise, ' (sent on receiving its folder_permission_changed)');
      await this.settle();
    }
  }

  /** A socket whose access just changed and a folder whose verdict changed with it. */
  private eagerTarget(before: Map<ModelSocket, Set<number>>, beforeAdmin: Map<ModelSocket, boolean>): { s: ModelSocket; folder: number } | null {
    const changed: { s: ModelSocket; folder: number }[] = [];
    for (const [s, old] of before) {
      const a = this.tables.access(s.user) ?? { admin: false, folders: new Set<number>() };
      for (let f = 1; f <= this.world.folders + 2; f++) {
        const was = beforeAdmin.get(s)! || old.has(f);
        const is = a.admin || a.folders.has(f);
        if (was !== is) changed.push({ s, folder: f });
      }
    }
    return changed.length === 0 ? null : this.rng.pick(changed);
  }

  // --- events ------------------------------------------------------------

  private randomEvents(n: number): Omit<StreamEvent, 'key' | 'step' | 'via'>[] {
    const { rng, world } = this;
    return Array.from({ length: n }, () => {
      const target = rng.pick(['user', 'folder', 'kb', 'broadcast'] as TargetType[], [3, 5, 2, 2]);
      const targetId = target === 'user' ? rng.int(1, world.users.length + 1) : target === 'folder' ? this.folder() : null;
      // exclude_user_id: often a user with sockets, sometimes 0 (nobody, as in TeamPass).
      const exclude = rng.chance(0.45) ? (rng.chance(0.15) ? 0 : rng.pick(world.users)) : null;
      // Now and then a folder-targeted access change (TeamPass never sends one; §Access changes says what it does).
      const type = target === 'folder' && rng.chance(0.08) ? 'folder_permission_changed' : rng.pick(['item_updated', 'task_progress', 'kb_updated', 'notice']);
      return { type, target, targetId, exclude };
    });
  }

  private async events(): Promise<void> {
    await this.send(this.randomEvents(this.rng.int(1, 4)), { settle: true });
  }

  /**
   * Send a batch on one path — one ingest frame, or rows inserted in one
   * transaction — and wait until the daemon has fanned it all out (the ack;
   * the rows marked processed). The model takes the events in the same order.
   * With `settle`, also wait until access re-reads are done, so the next step
   * sees them applied.
   */
  private async send(batch: Omit<StreamEvent, 'key' | 'step' | 'via'>[], o: { settle: boolean; before?: (events: StreamEvent[]) => void }): Promise<StreamEvent[]> {
    if (batch.length === 0) return [];
    const via = this.rng.chance(0.55) ? 'ingest' : 'table';
    const events: StreamEvent[] = batch.map((e) => ({ ...e, key: `e${++this.nextKey}`, step: this.step, via }));
    o.before?.(events);
    this.counts.events += events.length;
    this.counts[via] += events.length;
    if (via === 'ingest') {
      const frames = events.map((e) => ({
        event_type: e.type, target_type: e.target, ...(e.targetId === null ? {} : { target_id: e.targetId }),
        payload: { pt: e.key }, ...(e.exclude === null ? {} : { exclude_user_id: e.exclude }),
      }));
      const ack = await this.ingest.request(frames.length === 1 ? frames[0] : frames);
      const results = isBatchAck(ack) ? ack.results : [ack];
      if (!results.every((r) => r.ok)) this.fail(`ingest refused ${JSON.stringify(ack)}`);
    } else {
      // emitWebSocketEvent: exclude_user_id and server_timestamp in the payload.
      const ids: number[] = [];
      await this.sql.execSql(this.sql.kind === 'sqlite' ? 'BEGIN' : 'START TRANSACTION');
      for (const e of events) {
        const payload = { pt: e.key, ...(e.exclude === null ? {} : { exclude_user_id: e.exclude }), server_timestamp: Math.floor(Date.now() / 1000) };
        await this.sql.execSql(`INSERT INTO ${P}websocket_events (event_type, target_type, target_id, payload) VALUES (?, ?, ?, ?)`, [e.type, e.target, e.targetId, JSON.stringify(payload)]);
        const [row] = await this.sql.execSql<{ id: number }>(this.sql.kind === 'sqlite' ? 'SELECT last_insert_rowid() AS id' : 'SELECT LAST_INSERT_ID() AS id');
        ids.push(Number(row.id));
      }
      await this.sql.execSql('COMMIT');
      await until(async () => {
        const [r] = await this.sql.execSql<{ n: number }>(`SELECT COUNT(*) AS n FROM ${P}websocket_events WHERE processed = 0 AND id IN (${ids.join(',')})`);
        return Number(r.n) === 0;
      }, `rows ${ids.join(',')} processed`, 10_000);
    }
    for (const e of events) {
      const to = this.model.deliver(e);
      this.trace(`${e.via} ${e.key} ${e.type} → ${e.target}${e.targetId === null ? '' : ` ${e.targetId}`}${e.exclude === null ? '' : ` excl ${e.exclude}`}: sockets ${to.map((s) => s.id).join(',') || 'none'}`);
    }
    if (o.settle) await this.settle();
    return events;
  }

  /** Wait until the daemon has applied every access re-read it started (they take a few milliseconds). */
  private async settle(): Promise<void> {
    await this.d.daemon.reactions.idle();
  }

  // --- the end ---------------------------------------------------------------

  /** A broadcast marker that every open socket must get, then the comparison, socket by socket. */
  async finish(): Promise<void> {
    this.step++;
    await this.tell();
    await this.send([{ type: 'marker', target: 'broadcast', targetId: null, exclude: null }], { settle: true });
    const marker = `e${this.nextKey}`;
    const open = this.model.open();
    await until(() => open.every((s) => this.tabOf.get(s)!.events.includes(marker)), 'the marker on every open socket', 15_000);
    const byKey = new Map(this.model.stream.map((e) => [e.key, e]));
    const describe = (k: string) => {
      const e = byKey.get(k);
      return e === undefined ? k : `${k} (step ${e.step}, ${e.via}: ${e.type} → ${e.target}${e.targetId === null ? '' : ` ${e.targetId}`}${e.exclude === null ? '' : `, exclude_user_id ${e.exclude}`})`;
    };
    for (const s of this.model.sockets) {
      const foreign = this.tabOf.get(s)!.foreign;
      if (foreign.length > 0) this.fail(`socket ${s.id} (user ${s.user}) received events the test did not send: ${JSON.stringify(foreign).slice(0, 500)}`);
      const got = this.tabOf.get(s)!.events;
      if (JSON.stringify(got) === JSON.stringify(s.expected)) continue;
      const extra = got.filter((k) => !s.expected.includes(k));
      const missing = s.expected.filter((k) => !got.includes(k));
      const firstDiff = got.findIndex((k, i) => k !== s.expected[i]);
      this.fail(
        `socket ${s.id} (user ${s.user}) received ${got.length} events, the model says ${s.expected.length}` +
        `\n  extra: ${extra.map(describe).join('; ') || 'none'}` +
        `\n  missing: ${missing.map(describe).join('; ') || 'none'}` +
        (extra.length === 0 && missing.length === 0 ? `\n  out of order from index ${firstDiff}: got ${describe(got[firstDiff])}, expected ${describe(s.expected[firstDiff])}` : ''),
      );
    }
    expect(this.model.sockets.length).toBeGreaterThan(0);
  }

  note(steps: number, ms: number): string {
    const c = this.counts;
    const deliveries = this.model.sockets.reduce((n, s) => n + s.expected.length, 0);
    const admins = this.tables.admin.size;
    return `${steps} steps on ${this.world.users.length} users (${admins} admins now, ${this.tables.disabled.size} disabled), ${this.world.folders} folders, ${this.world.roles.length} roles: ` +
      `${c.connects} logins (${c.refused} refused), ${c.subscribes} folder subscribes (${c.forbidden} forbidden), ${c.kb} KB (un)subscribes, ${c.resumes} resumes (${c.replayed} events replayed), ` +
      `${c.changes} table changes, ${c.signals} folder_permission_changed to users (${c.eager} followed at once by a subscribe), ${this.model.rereads} socket access re-reads ending ${this.model.revoked} subscriptions; ` +
      `sent ${c.events} events (${c.ingest} ingest, ${c.table} table rows); checked ${deliveries} deliveries on ${this.model.sockets.length} sockets exactly, in order; ${(ms / 1000).toFixed(1)} s`;
  }
}
