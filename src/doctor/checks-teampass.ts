/**
 * Doctor check 6, `teampass`: does TeamPass use tp-ws? Its PHP side sends
 * events and opens WebSockets only when misc `websocket_enabled` is '1'; it
 * looks for the daemon at misc `websocket_host:websocket_port`
 * (`checkListenAgreement`, TeamPass issue #5218); and tp-ws must read the
 * tables of TeamPass's `DB_PREFIX`.
 */
import type { LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { readTeampassInstall } from '../teampass/install.js';
import { checkListenAgreement } from '../teampass/listen-agreement.js';
import { error, ok, warn, type Finding } from './finding.js';
import type { StoreProbe } from './store-probe.js';

/**
 * `store.tablePrefix` against `DB_PREFIX` of the TeamPass install named by
 * `teampass.root`: an override elsewhere (file, environment, flag) that
 * differs points tp-ws at tables TeamPass does not write. Needs no store.
 */
export function checkTeampassPrefix(loaded: LoadedConfig): Finding[] {
  if (loaded.teampass === null) return [];
  const prefix = loaded.config.store.tablePrefix;
  const origin = loaded.origins.get('store.tablePrefix');
  if (origin?.kind === 'teampass') return [ok('teampass', 'prefix', `store.tablePrefix ${JSON.stringify(prefix)} is TeamPass's DB_PREFIX (${origin.from})`)];
  let dbPrefix: { value: string; from: string } | null = null;
  try {
    const v = readTeampassInstall(loaded.teampass.root, { storeUrl: false }).values.get('store.tablePrefix');
    if (v !== undefined) dbPrefix = { value: String(v.value), from: v.from };
  } catch {
    // The config loaded with this install a moment ago; a file that vanished since is not this check's business.
    return [];
  }
  if (dbPrefix === null) return [ok('teampass', 'prefix', `${loaded.teampass.settingsFile} defines no DB_PREFIX; store.tablePrefix is ${JSON.stringify(prefix)}`)];
  if (dbPrefix.value === prefix) return [ok('teampass', 'prefix', `store.tablePrefix ${JSON.stringify(prefix)} is TeamPass's DB_PREFIX (${dbPrefix.from})`)];
  const where = origin === undefined ? 'the configuration' : origin.kind === 'env' ? origin.name : origin.kind === 'flag' ? `--${origin.name}` : origin.kind === 'file' ? `config file ${origin.file}` : 'the default';
  return [error(
    'teampass', 'prefix',
    `store.tablePrefix is ${JSON.stringify(prefix)} (from ${where}) but TeamPass's DB_PREFIX is ${JSON.stringify(dbPrefix.value)} (${loaded.teampass.settingsFile}, ${dbPrefix.from}): tp-ws reads and writes tables TeamPass never uses`,
    `remove the override from ${where} so the DB_PREFIX read from TeamPass applies, or set it to ${dbPrefix.value} (--table-prefix ${dbPrefix.value})`,
  )];
}

/**
 * misc `websocket_enabled`, `websocket_host` and `websocket_port`. On a
 * database tp-ws created for itself (no TeamPass), only the rows present
 * are checked.
 */
export async function checkTeampassMisc(probe: StoreProbe, cfg: Readonly<Config>): Promise<Finding[]> {
  const applied = (await probe.appliedMigrations()) ?? [];
  // The full schema goes in only where TeamPass's tables are absent; the embedded store is always tp-ws's own.
  const ownDatabase = probe.kind === 'sqlite' || applied.some((n) => n.includes('_full_'));
  const misc = probe.table('misc');
  if (!(await probe.tableExists('misc'))) return [ok('teampass', 'not_teampass', `no table ${misc}: not a TeamPass database, TeamPass's side not checked`)];
  const [enabled, host, port] = await Promise.all([probe.misc('websocket_enabled'), probe.misc('websocket_host'), probe.misc('websocket_port')]);
  if (ownDatabase && enabled === null && host === null && port === null) {
    return [ok('teampass', 'not_teampass', `no TeamPass WebSocket settings in ${misc} (a database tp-ws created for itself): TeamPass's side not checked`)];
  }
  const findings: Finding[] = [];
  if (enabled === '1') {
    findings.push(ok('teampass', 'websocket_enabled', `TeamPass's misc websocket_enabled is '1': its PHP sends events and its pages connect`));
  } else {
    const fix = enabled === null
      ? `enable WebSocket in TeamPass's administration, or in SQL: INSERT INTO \`${misc}\` (type, intitule, valeur) VALUES ('admin', 'websocket_enabled', '1');`
      : `enable WebSocket in TeamPass's administration, or in SQL: UPDATE \`${misc}\` SET valeur = '1' WHERE type = 'admin' AND intitule = 'websocket_enabled';`;
    findings.push(error(
      'teampass', 'websocket_disabled',
      `TeamPass's misc websocket_enabled is ${enabled === null ? 'not set' : JSON.stringify(enabled)}, not '1': TeamPass's PHP sends no events and mints no tokens, and its pages open no WebSocket, so nothing reaches tp-ws`,
      fix,
    ));
  }

  if (cfg.server.port === 0) {
    findings.push(ok('teampass', 'listen_agreement', 'server.port is 0 (picked at start): misc websocket_port not compared'));
    return findings;
  }
  const values = new Map([['websocket_host', host], ['websocket_port', port]]);
  const w = await checkListenAgreement(async (key) => values.get(key) ?? null, { host: cfg.server.host, port: cfg.server.port });
  if (w !== null) findings.push(warn('teampass', 'listen_agreement', w.message, w.fix));
  else if (host === null || port === null) findings.push(warn('teampass', 'listen_agreement', `TeamPass's misc ${host === null ? 'websocket_host' : 'websocket_port'} is not set: its dashboard and health check do not know where tp-ws listens`, `set it in TeamPass's WebSocket settings to ${cfg.server.host}:${cfg.server.port}`));
  else findings.push(ok('teampass', 'listen_agreement', `TeamPass's misc websocket_host:websocket_port (${host}:${port}) reach tp-ws's listener ${cfg.server.host}:${cfg.server.port}`));
  return findings;
}
