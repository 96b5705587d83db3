/**
 * Test data for the TeamPass-shaped tables, written with raw SQL straight to the
 * database (not through the `Store` under test), for both store kinds.
 *
 *   const store = openStore(url, 'teampass_'); await store.migrate();
 *   const seed = await openSeeder(url, 'teampass_');
 *   await seed.seedUsers([{ id: 1, login: 'alice' }]);
 *   await seed.seedToken(1, 'a'.repeat(64), 3600);
 *   await seed.close();
 *
 * Or in one call: `await seedTeampass(url, 'teampass_', { users: [...], tokens: [...] })`.
 * The tables must exist already (run `store.migrate()` first).
 */
import Database from 'better-sqlite3';
import { createConnection, type Connection } from 'mysql2/promise';
import { mysqlConnectionOptions } from '../../src/store/mysql-store.js';
import { parseMysqlUrl } from '../../src/store/store-url.js';
import { parseStoreUrl } from '../../src/store/open-store.js';

export interface SeedUser {
  id: number;
  login: string;
  name?: string | null;
  lastname?: string | null;
  /** default false */
  admin?: boolean;
  /** default false */
  disabled?: boolean;
}

export interface SeedRole {
  roleId: number;
  folderIds: number[];
  /** `roles_values.type`; default `'W'`. */
  type?: string;
}

export interface SeedItemLock {
  itemId: number;
  /** Folder (`items.id_tree`) of the item; the item row is created or replaced. */
  folderId: number;
  userId: number;
  /** Age of the lock heartbeat in seconds (database clock); default 0. */
  ageSec?: number;
}

export interface SeedKbLock {
  kbId: number;
  userId: number;
  /** Age of the lock heartbeat in seconds; default 0. */
  ageSec?: number;
  /** Soft-delete the article (`kb.deleted_at` set); default false. */
  deleted?: boolean;
}

/** Everything `seedTeampass` can write in one call. */
export interface TeampassSeed {
  users?: SeedUser[];
  /** `misc` values by `intitule` (type `admin`). */
  misc?: Record<string, string>;
  /** Direct folder grants (`users_groups`) by user id. */
  groups?: Record<number, number[]>;
  /** Roles with their folders, by user id. */
  roles?: Record<number, SeedRole[]>;
  tokens?: { userId: number; token: string; ttlSec: number }[];
  itemLocks?: SeedItemLock[];
  kbLocks?: SeedKbLock[];
}

/** A raw-SQL writer bound to one test database. Every method resolves once the rows are written. */
export interface Seeder {
  readonly kind: 'sqlite' | 'mysql';
  readonly prefix: string;
  /**
   * Run one statement with `?` parameters; `{{prefix}}` in `sql` becomes the table
   * prefix. Returns the rows of a query, `[]` for other statements.
   */
  execSql<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** SQL expression for the database's now plus `offsetSec` seconds, as a datetime (`-3600` = an hour ago). */
  timeSql(offsetSec: number): string;
  /** Insert or replace users. */
  seedUsers(users: SeedUser[]): Promise<void>;
  /** Insert a `websocket_tokens` row expiring `ttlSec` from now (negative: already expired). */
  seedToken(userId: number, token: string, ttlSec: number): Promise<void>;
  /** Insert or replace `misc` rows (`type = 'admin'`). */
  seedMisc(values: Record<string, string>): Promise<void>;
  /** Grant folders directly (`users_groups`); existing grants are kept. */
  seedGroups(userId: number, folderIds: number[]): Promise<void>;
  /** Give a user roles (`users_roles`) and the roles their folders (`roles_values`). */
  seedRoles(userId: number, roles: SeedRole[]): Promise<void>;
  /** An item edit lock (`items_edition`), creating the item in its folder. */
  seedItemLock(lock: SeedItemLock): Promise<void>;
  /** A KB edit lock (`kb_edition`), creating the article. */
  seedKbLock(lock: SeedKbLock): Promise<void>;
  close(): Promise<void>;
}

interface Driver {
  exec(sql: string, params: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

function sqliteDriver(path: string): Driver {
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  return {
    async exec(sql, params) {
      const stmt = db.prepare(sql);
      if (stmt.reader) return stmt.all(...params) as Record<string, unknown>[];
      stmt.run(...params);
      return [];
    },
    async close() {
      db.close();
    },
  };
}

async function mysqlDriver(url: string): Promise<Driver> {
  const conn: Connection = await createConnection(mysqlConnectionOptions(parseMysqlUrl(url)));
  await conn.query("SET time_zone = '+00:00'");
  return {
    async exec(sql, params) {
      const [rows] = await conn.query(sql, params);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    async close() {
      await conn.end();
    },
  };
}

/** Open a seeder on the database a store URL names (`sqlite:PATH` or `mysql://…/db`). */
export async function openSeeder(storeUrl: string, prefix: string): Promise<Seeder> {
  const parsed = parseStoreUrl(storeUrl);
  const kind = parsed.kind;
  const driver = kind === 'sqlite' ? sqliteDriver(parsed.path) : await mysqlDriver(storeUrl);
  const sqlite = kind === 'sqlite';
  const t = (name: string) => (sqlite ? `"${prefix}${name}"` : `\`${prefix}${name}\``);
  const nowSec = sqlite ? `CAST(strftime('%s', 'now') AS INTEGER)` : 'UNIX_TIMESTAMP()';
  const insertIgnore = sqlite ? 'INSERT OR IGNORE' : 'INSERT IGNORE';
  const timeSql = (offsetSec: number) => {
    const s = Math.trunc(offsetSec);
    return sqlite ? `datetime('now', '${s >= 0 ? '+' : ''}${s} seconds')` : `DATE_ADD(NOW(), INTERVAL ${s} SECOND)`;
  };
  const exec = (sql: string, params: unknown[] = []) => driver.exec(sql.replaceAll('{{prefix}}', prefix), params);

  return {
    kind,
    prefix,
    execSql: exec as Seeder['execSql'],
    timeSql,
    async seedUsers(users) {
      for (const u of users) {
        await exec(`REPLACE INTO ${t('users')} (id, login, name, lastname, admin, disabled) VALUES (?, ?, ?, ?, ?, ?)`, [
          u.id, u.login, u.name ?? null, u.lastname ?? null, u.admin ? 1 : 0, u.disabled ? 1 : 0,
        ]);
      }
    },
    async seedToken(userId, token, ttlSec) {
      await exec(`INSERT INTO ${t('websocket_tokens')} (user_id, token, expires_at, used) VALUES (?, ?, ${timeSql(ttlSec)}, 0)`, [
        userId, token,
      ]);
    },
    async seedMisc(values) {
      for (const [key, value] of Object.entries(values)) {
        await exec(`REPLACE INTO ${t('misc')} (type, intitule, valeur) VALUES ('admin', ?, ?)`, [key, value]);
      }
    },
    async seedGroups(userId, folderIds) {
      for (const f of folderIds) {
        await exec(`${insertIgnore} INTO ${t('users_groups')} (user_id, group_id) VALUES (?, ?)`, [userId, f]);
      }
    },
    async seedRoles(userId, roles) {
      for (const r of roles) {
        await exec(`${insertIgnore} INTO ${t('users_roles')} (user_id, role_id, source) VALUES (?, ?, 'manual')`, [userId, r.roleId]);
        for (const f of r.folderIds) {
          await exec(`INSERT INTO ${t('roles_values')} (role_id, folder_id, type) VALUES (?, ?, ?)`, [r.roleId, f, r.type ?? 'W']);
        }
      }
    },
    async seedItemLock({ itemId, folderId, userId, ageSec = 0 }) {
      await exec(`REPLACE INTO ${t('items')} (id, id_tree, label) VALUES (?, ?, ?)`, [itemId, String(folderId), `item ${itemId}`]);
      await exec(`INSERT INTO ${t('items_edition')} (item_id, user_id, timestamp) VALUES (?, ?, ${nowSec} - ?)`, [
        itemId, userId, Math.trunc(ageSec),
      ]);
    },
    async seedKbLock({ kbId, userId, ageSec = 0, deleted = false }) {
      await exec(`REPLACE INTO ${t('kb')} (id, label, deleted_at) VALUES (?, ?, ${deleted ? timeSql(0) : 'NULL'})`, [
        kbId, `kb ${kbId}`,
      ]);
      await exec(`INSERT INTO ${t('kb_edition')} (kb_id, user_id, timestamp) VALUES (?, ?, ${nowSec} - ?)`, [
        kbId, userId, Math.trunc(ageSec),
      ]);
    },
    close: () => driver.close(),
  };
}

/** Open a seeder, write everything in `data`, close it. */
export async function seedTeampass(storeUrl: string, prefix: string, data: TeampassSeed): Promise<void> {
  const seed = await openSeeder(storeUrl, prefix);
  try {
    if (data.users) await seed.seedUsers(data.users);
    if (data.misc) await seed.seedMisc(data.misc);
    for (const [userId, folders] of Object.entries(data.groups ?? {})) await seed.seedGroups(Number(userId), folders);
    for (const [userId, roles] of Object.entries(data.roles ?? {})) await seed.seedRoles(Number(userId), roles);
    for (const tok of data.tokens ?? []) await seed.seedToken(tok.userId, tok.token, tok.ttlSec);
    for (const lock of data.itemLocks ?? []) await seed.seedItemLock(lock);
    for (const lock of data.kbLocks ?? []) await seed.seedKbLock(lock);
  } finally {
    await seed.close();
  }
}
