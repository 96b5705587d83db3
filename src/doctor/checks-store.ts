/**
 * Doctor check 2, `store`: the store answers (within 3 s, and if not, why:
 * credentials, grants, database, server down, unreachable), tp-ws's schema
 * is in place (the events table, its `event_uuid` column and unique index),
 * TeamPass's own indexes and the tokens table exist, and no event row waits
 * undelivered for longer than a running poller would let it.
 */
import type { Config } from '../config/schema.js';
import { shellWord } from '../cli/serve.js';
import { isTpWsError } from '../errors.js';
import { duration, error, ok, warn, type Finding } from './finding.js';
import { connectHost } from './local-net.js';
import { openStoreProbe, type IndexInfo, type ProbeFailure, type ProbeOpening, type StoreProbe } from './store-probe.js';

/** How long the store may take to accept a connection. */
export const STORE_CONNECT_TIMEOUT_MS = 3000;
/** A pending row older than this means no poller is draining the table (a running one reads every 250 ms). */
const STUCK_AFTER_SEC = 30;

/** What the doctor knows about the configuration, for the fixes it prints. */
export interface StoreCheckContext {
  cfg: Readonly<Config>;
  /** Arguments that make `tp-ws migrate` reach the same store (`sameStoreArgs`). */
  storeArgs: string;
}

/** The store probe (null when the store did not open) and what opening it found. */
export interface StoreOpening {
  probe: StoreProbe | null;
  findings: Finding[];
}

/** Opens the store read-only and explains a failure. */
export async function openStore(ctx: StoreCheckContext): Promise<StoreOpening> {
  let opening: ProbeOpening;
  try {
    opening = await openStoreProbe(ctx.cfg, STORE_CONNECT_TIMEOUT_MS);
  } catch (err) {
    if (!isTpWsError(err)) throw err;
    return { probe: null, findings: [error('store', 'password_file', err.message, 'let tp-ws\'s user read the file store.passwordFile names (its first line is the password), or fix the path')] };
  }
  if (opening.probe === null) return { probe: null, findings: [explainOpenError(opening.failure, ctx)] };
  const probe = opening.probe;
  const what = probe.kind === 'mysql' ? `MySQL ${probe.where}` : `SQLite file ${probe.where}`;
  return { probe, findings: [ok('store', 'connect', `${what} answers`)] };
}

/** `'user'@'host'` as MySQL names the account it refused, from its message (which never holds the password). */
function refusedAccount(sqlMessage: string | null): { account: string; user: string; host: string; usedPassword: boolean | null } | null {
  const m = /for user '([^']*)'@'([^']*)'/.exec(sqlMessage ?? '');
  if (m === null) return null;
  const used = /using password: (YES|NO)/.exec(sqlMessage ?? '');
  return { account: `'${m[1]}'@'${m[2]}'`, user: m[1], host: m[2], usedPassword: used === null ? null : used[1] === 'YES' };
}

function explainOpenError(err: ProbeFailure, ctx: StoreCheckContext): Finding {
  const { storeArgs } = ctx;
  if (err.code === 'MEMORY') return warn('store', 'memory', err.message, null);
  if (err.code === 'NO_FILE') {
    return error('store', 'no_file', `${err.message}: tp-ws has not run with this state directory and store, so there are no tables yet (or the daemon uses another stateDir or store.url)`, `tp-ws migrate${storeArgs} (tp-ws serve also creates it at start); if a daemon runs, give doctor its --state-dir or --store`);
  }
  if (err.code.startsWith('SQLITE_')) {
    return error('store', 'sqlite_open', `${err.message}: the file or its directory cannot be read by this user`, 'run tp-ws doctor as the daemon\'s user, and let that user read and write the file and its directory');
  }
  const target = err.target;
  const user = target?.user ?? '';
  const host = target?.host ?? '';
  const port = String(target?.port ?? 3306);
  const database = target?.database ?? '';
  const where = `${user}@${target?.socketPath ?? `${host}:${port}`}/${database}`;
  const refused = refusedAccount(err.sqlMessage);
  const account = refused?.account ?? `'${user}'@'${host}'`;
  const grant = `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON \`${database}\`.* TO ${account};`;
  switch (err.code) {
    case 'ER_ACCESS_DENIED_ERROR':
      if (refused?.usedPassword === false) {
        return error('store', 'access_denied', `MySQL refused ${account} (no password given): store.url holds no password and neither store.password nor store.passwordFile is set`, `give the password apart from the URL: TPWS_STORE_PASSWORD='…' or --store-password-file FILE (or DB_PASSWD in TeamPass's settings.php with --teampass-root)`);
      }
      return error(
        'store', 'access_denied',
        `MySQL refused ${account} (${where}): the password is wrong, or that account does not exist for connections from ${refused?.host ?? 'this host'} (MySQL matches user AND client host)`,
        `check the password (TPWS_STORE_PASSWORD, store.passwordFile, or DB_PASSWD in TeamPass's settings.php); if it is right, as a MySQL admin: CREATE USER ${account} IDENTIFIED BY '…'; ${grant} (or ALTER USER ${account} IDENTIFIED BY '…';)`,
      );
    case 'ER_DBACCESS_DENIED_ERROR':
      return error('store', 'db_access_denied', `MySQL account ${account} may not use the database ${database}`, `as a MySQL admin: ${grant}`);
    case 'ER_HOST_NOT_PRIVILEGED':
      return error('store', 'host_not_allowed', `MySQL at ${host}:${port} does not let ${user} connect from this machine's address`, `as a MySQL admin: CREATE USER '${user}'@'<this machine's address>' IDENTIFIED BY '…'; then GRANT … ON \`${database}\`.* TO it (or connect through 127.0.0.1 if MySQL is local)`);
    case 'ER_BAD_DB_ERROR':
      return error('store', 'unknown_database', `MySQL at ${host}:${port} has no database ${database}`, `fix the database name in store.url (TeamPass: DB_NAME in settings.php), or create it: CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; ${grant} then tp-ws migrate${storeArgs}`);
    case 'ECONNREFUSED':
      return error('store', 'refused', `nothing listens at ${host}:${port} (store.url): MariaDB/MySQL is not running there, or listens on another port or address`, `is it running? systemctl status mariadb (or mysql); which port does it use? ss -ltnp | grep -E 'mysqld|mariadbd'; then fix host and port in store.url (TeamPass: DB_HOST, DB_PORT)`);
    case 'ENOENT':
      return error('store', 'no_socket', `no MySQL socket file at ${target?.socketPath ?? '(?socket=)'}: MariaDB is not running, or its socket is elsewhere`, 'systemctl status mariadb; find the socket: mysqladmin variables | grep socket; fix ?socket= in store.url');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return error('store', 'unknown_host', `the host ${host} (store.url) does not resolve`, 'fix the host in store.url (TeamPass: DB_HOST in settings.php), or use its IP address');
    case 'EACCES':
      return error('store', 'socket_denied', 'this user may not open MySQL\'s Unix socket', 'run doctor as the daemon\'s user, or fix the permissions of the socket\'s directory');
    case 'TIMEOUT':
    case 'ETIMEDOUT':
      return error('store', 'timeout', `no answer from ${host}:${port} within ${STORE_CONNECT_TIMEOUT_MS / 1000} s: a firewall dropping packets, a wrong host, or a server that accepts connections but does not answer (overloaded, hung)`, `check the address: mysql -h ${host} -P ${port} -u ${user} -p ${database}; and the server: systemctl status mariadb`);
    default:
      return error('store', 'connect', `cannot connect to ${where} (${err.code})`, `try the same account by hand: mysql -h ${host} -P ${port} -u ${user} -p ${database}`);
  }
}

/** The schema: tp-ws's events table with its `event_uuid` and `tpws_pos` and their unique indexes, TeamPass's indexes, the tokens table. */
export async function checkSchema(probe: StoreProbe, ctx: StoreCheckContext): Promise<Finding[]> {
  const { cfg, storeArgs } = ctx;
  const migrate = `tp-ws migrate${storeArgs}`;
  const events = probe.table('websocket_events');
  const findings: Finding[] = [];
  if (!(await probe.tableExists('websocket_events'))) {
    const others = (await probe.tablesEndingWith('websocket_events')).filter((n) => n !== events);
    if (others.length > 0) {
      const prefixes = others.map((n) => n.slice(0, -'websocket_events'.length));
      return [error(
        'store', 'events_table',
        `no table ${events} in ${probe.where}, but ${others.join(', ')}: store.tablePrefix is ${JSON.stringify(cfg.store.tablePrefix)}, and the tables here use ${prefixes.map((p) => JSON.stringify(p)).join(' or ')}`,
        `give tp-ws TeamPass's DB_PREFIX: --table-prefix ${prefixes[0]} (TPWS_TABLE_PREFIX=${prefixes[0]}), or --teampass-root to read it`,
      )];
    }
    return [error('store', 'events_table', `no table ${events} in ${probe.where}: the schema was never created here (tp-ws serve creates it at start)`, migrate)];
  }

  const columns = await probe.columns('websocket_events');
  const indexes = await probe.indexes('websocket_events');
  const present: string[] = [];
  if (!columns.includes('event_uuid')) {
    findings.push(error('store', 'event_uuid', `${events} has no event_uuid column: tp-ws's migration has not run on this database, so the daemon cannot store or de-duplicate event ids (tp-ws serve would apply it at start)`, migrate));
  } else {
    const unique = indexes.find((ix) => ix.unique && ix.columns.length === 1 && ix.columns[0] === 'event_uuid');
    if (unique === undefined) {
      const blocking = indexes.find((ix) => ix.name === 'idx_event_uuid');
      const fix = probe.kind === 'sqlite'
        ? `sqlite3 ${shellWord(probe.where)} 'CREATE UNIQUE INDEX "${events}_idx_event_uuid" ON "${events}" (event_uuid)'`
        : blocking !== undefined
          ? `ALTER TABLE \`${events}\` DROP INDEX \`idx_event_uuid\`; then ${migrate}`
          : migrate;
      findings.push(error('store', 'event_uuid_index', `${events}.event_uuid has no unique index: the same event arriving twice (socket and table fallback) is stored twice`, fix));
    } else {
      present.push(`event_uuid (unique index ${unique.name})`);
    }
  }

  if (!columns.includes('tpws_pos')) {
    findings.push(warn('store', 'tpws_pos', `${events} has no tpws_pos column: tp-ws's history migration has not run on this database, so delivered events keep no position and browser clients cannot resume from the table (tp-ws serve would apply it at start)`, migrate));
  } else if (indexes.some((ix) => ix.unique && ix.columns.length === 1 && ix.columns[0] === 'tpws_pos')) {
    present.push('tpws_pos');
  } else {
    findings.push(warn('store', 'tpws_pos', `${events}.tpws_pos has no unique index: every resume that reads the table scans it`, migrate));
  }

  for (const [name, cols, why] of [
    ['idx_unprocessed', ['processed', 'created_at'], 'every poll reads the whole table to find pending rows'],
    ['idx_cleanup', ['processed', 'processed_at'], 'the hourly cleanup of old events reads the whole table'],
  ] as const) {
    if (hasIndex(indexes, name, cols, probe.kind)) {
      present.push(name);
      continue;
    }
    const fix = probe.kind === 'mysql'
      ? `ALTER TABLE \`${events}\` ADD INDEX \`${name}\` (${cols.map((c) => `\`${c}\``).join(', ')});`
      : `sqlite3 ${shellWord(probe.where)} 'CREATE INDEX "${events}_${name}" ON "${events}" (${cols.join(', ')})'`;
    findings.push(warn('store', name, `${events} has no index ${name} (${cols.join(', ')}): ${why}, and TeamPass's health check reports it missing`, fix));
  }

  const tokens = probe.table('websocket_tokens');
  if (!(await probe.tableExists('websocket_tokens'))) {
    const applied = (await probe.appliedMigrations()) ?? [];
    const recorded = applied.find((n) => n.startsWith('002_') || n.startsWith('001_schema'));
    const migrations = probe.table('tpws_migrations');
    const forget = probe.kind === 'mysql'
      ? `DELETE FROM \`${migrations}\` WHERE name = '${recorded}';`
      : `sqlite3 ${shellWord(probe.where)} "DELETE FROM ${migrations} WHERE name = '${recorded}'"`;
    const fix = recorded === undefined ? migrate : `${forget} then ${migrate} (it creates only what is missing)`;
    const uses = cfg.auth.methods.includes('teampass-token');
    findings.push((uses ? error : warn)(
      'store', 'tokens_table',
      `no table ${tokens}: ${uses ? 'every TeamPass page token is refused (auth_failed), since teampass-token authentication looks them up there' : 'teampass-token authentication is off, but TeamPass writes its page tokens there'}`,
      fix,
    ));
  } else {
    present.push(tokens);
  }
  if (findings.length === 0) findings.push(ok('store', 'schema', `schema in place: ${events} with ${present.join(', ')}`));
  return findings;
}

/** MySQL: TeamPass's health check looks the index up by name. SQLite names carry the table (tp-ws's migration), so match the columns. */
function hasIndex(indexes: readonly IndexInfo[], name: string, cols: readonly string[], kind: 'mysql' | 'sqlite'): boolean {
  if (kind === 'mysql') return indexes.some((ix) => ix.name === name);
  return indexes.some((ix) => ix.name.endsWith(name) || (ix.columns.length === cols.length && ix.columns.every((c, i) => c === cols[i])));
}

/** Rows with `processed = 0`: a few young ones are normal; old ones mean no poller is draining the table. */
export async function checkBacklog(probe: StoreProbe, ctx: StoreCheckContext): Promise<Finding[]> {
  const { cfg } = ctx;
  if (!(await probe.tableExists('websocket_events'))) return [];
  const maxAge = cfg.poller.maxAgeSec;
  const b = await probe.backlog(maxAge);
  const events = probe.table('websocket_events');
  if (b.pending === 0 || b.oldestAgeSec === null) return [ok('store', 'backlog', `no row of ${events} waits for delivery (processed = 0)`)];
  const age = duration(b.oldestAgeSec);
  if (b.oldestAgeSec <= STUCK_AFTER_SEC) return [ok('store', 'backlog', `${b.pending} row(s) of ${events} wait for delivery, the oldest ${age} old: a poller is draining them`)];
  const adminHost = connectHost(cfg.admin.host);
  const admin = cfg.admin.port > 0 ? `; curl -s http://${adminHost.includes(':') ? `[${adminHost}]` : adminHost}:${cfg.admin.port}/readyz says whether this daemon holds the poller lock` : '';
  const fix = cfg.poller.enabled
    ? `start tp-ws (systemctl start teampass-websocket, or tp-ws serve) and check it is healthy: systemctl status teampass-websocket${admin}`
    : 'poller.enabled is false in this configuration: set TPWS_POLLER_ENABLED=true on one daemon, so someone drains the table';
  if (b.olderThan > 0) {
    return [error(
      'store', 'backlog_expired',
      `${b.olderThan} of ${b.pending} pending row(s) of ${events} are older than poller.maxAgeSec (${maxAge} s), the oldest ${age}: no poller has read them (tp-ws not running, its poller disabled, or stuck), and when one does it marks them expired (processed = 3) instead of delivering them, so browsers never get those events`,
      fix,
    )];
  }
  return [warn('store', 'backlog_stuck', `${b.pending} row(s) of ${events} wait for delivery, the oldest ${age} old: no poller is draining the table (a running tp-ws reads it every ${cfg.poller.idleIntervalMs} ms); rows older than poller.maxAgeSec (${maxAge} s) will be expired, not delivered`, fix)];
}
