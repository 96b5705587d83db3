/**
 * What a TeamPass installation directory implies for tp-ws's configuration
 * (`teampass.root`, `--teampass-root`): the database from the `DB_*`
 * constants of `app/config/settings.php`, with `DB_PASSWD` decrypted the way
 * TeamPass's own daemon does it (Defuse v2, key in `secrets/<SECUREFILE>`),
 * and the listener, limits, heartbeat, retention and log level from
 * `app/websocket/config/websocket.php`.
 *
 * The files are parsed, never run (`php-config.ts`). The result maps dotted
 * schema keys to raw values and says which PHP file and name each came
 * from; `config/load.ts` validates them by the schema's rules, so a bad
 * value is reported against its PHP file. The decrypted password lives in
 * memory only: no message built here contains it, nor the key.
 */

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';

import { TpWsError } from '../errors.js';
import { decryptDefuse, loadDefuseKey } from './defuse.js';
import { MAX_PHP_BYTES, parsePhpDefines, parsePhpReturnArray, type PhpEntry, type PhpScalar } from './php-config.js';

/** TeamPass's database settings, relative to the installation directory. */
export const SETTINGS_PHP = 'app/config/settings.php';
/** TeamPass's WebSocket daemon settings, relative to the installation directory. */
export const WEBSOCKET_PHP = 'app/websocket/config/websocket.php';
/** Where TeamPass 3.2 keeps the Defuse key file (`TEAMPASS_SECRETS = TEAMPASS_ROOT . '/secrets'`). */
export const SECRETS_DIR = 'secrets';

/** Largest Defuse key file read; a real one is 136 bytes. */
const MAX_KEY_FILE_BYTES = 65_536;

/** One row of the mapping from a TeamPass setting to a tp-ws key; `key` null means deliberately not taken. */
export interface TeampassMapping {
  /** The PHP constant(s) or `websocket.php` key. */
  readonly php: string;
  /** The dotted tp-ws key it sets, or null when tp-ws does not take it. */
  readonly key: string | null;
  /** How the value is turned into the key's value (when not as is), or why it is not taken. */
  readonly note: string;
}

/** What `settings.php` gives (rendered into docs/configuration.md). */
export const SETTINGS_PHP_MAPPING: readonly TeampassMapping[] = [
  { php: 'DB_USER, DB_HOST, DB_PORT, DB_NAME', key: 'store.url', note: '`mysql://DB_USER@DB_HOST:DB_PORT/DB_NAME`, user and database percent-encoded, no password in the URL; `DB_PORT` defaults to 3306' },
  { php: 'DB_PASSWD', key: 'store.password', note: 'decrypted with the key file `secrets/<SECUREFILE>` when it starts with `def` (Defuse v2, as TeamPass does), else taken as is; an empty one sets nothing' },
  { php: 'DB_PREFIX', key: 'store.tablePrefix', note: 'as is' },
  { php: 'DB_ENCODING', key: null, note: 'tp-ws always talks `utf8mb4`, as TeamPass\'s daemon does' },
  { php: 'DB_SSL, DB_CONNECT_OPTIONS', key: null, note: 'not applied by TeamPass\'s own daemon either; tp-ws has no MySQL TLS or connection-option setting' },
];

const TEAMPASS_LOG_LEVELS: Readonly<Record<string, string>> = { debug: 'debug', info: 'info', warning: 'warn', error: 'error' };

interface WebsocketMapping extends TeampassMapping {
  /** Turns a literal into the raw value given to the key's parser; default as is. */
  readonly map?: (value: PhpScalar) => PhpScalar;
}

const WEBSOCKET_MAPPING: readonly WebsocketMapping[] = [
  { php: 'host', key: 'server.host', note: 'as is' },
  { php: 'port', key: 'server.port', note: 'as is' },
  { php: 'max_connections_per_user', key: 'limits.maxConnectionsPerUser', note: 'as is' },
  { php: 'max_message_size', key: 'limits.maxMessageBytes', note: 'as is; `limits.maxFrameBytes`, when left at its default, is raised to match' },
  { php: 'rate_limit_messages', key: 'limits.rateLimitMessages', note: 'as is' },
  { php: 'rate_limit_window_ms', key: 'limits.rateLimitWindowMs', note: 'as is' },
  { php: 'ping_interval_sec', key: 'heartbeat.pingIntervalSec', note: 'as is' },
  { php: 'pong_timeout_sec', key: 'heartbeat.pongTimeoutSec', note: 'as is' },
  { php: 'event_retention_hours', key: 'retention.hours', note: 'as is' },
  { php: 'cleanup_interval_sec', key: 'retention.intervalSec', note: 'as is' },
  {
    php: 'log_level', key: 'log.level', note: '`debug`, `info`, `warning`, `error` become `debug`, `info`, `warn`, `error`',
    map: (v) => (typeof v === 'string' && Object.hasOwn(TEAMPASS_LOG_LEVELS, v.toLowerCase()) ? TEAMPASS_LOG_LEVELS[v.toLowerCase()] : v),
  },
  { php: 'poll_interval_ms', key: null, note: 'tp-ws\'s own poller is faster (`poller.intervalMs`, `poller.idleIntervalMs`), and PHP can push events through the ingest socket instead' },
  { php: 'poll_batch_size', key: null, note: 'tp-ws reads larger batches (`poller.batchSize`) and polls again at once after a full one' },
  { php: 'log_file', key: null, note: 'tp-ws writes JSON log lines to stdout, for journald, and no log file' },
];

/** What `websocket.php` gives (rendered into docs/configuration.md). */
export const WEBSOCKET_PHP_MAPPING: readonly TeampassMapping[] = WEBSOCKET_MAPPING.map(({ php, key, note }) => ({ php, key, note }));

/** One configuration value read from the install. */
export interface TeampassValue {
  /** Raw value for the key's parser: a string, number or boolean as PHP held it (mapped where the table says so). */
  readonly value: string | number | boolean;
  /** Absolute path of the PHP file it came from. */
  readonly file: string;
  /** The PHP name(s) and line, e.g. `'port' line 5` or `DB_PASSWD line 4, decrypted with /x/secrets/key.txt`. */
  readonly from: string;
}

/** A setting found in a TeamPass file that tp-ws does not take, and why. */
export interface TeampassIgnored {
  readonly file: string;
  /** The PHP constant or array key. */
  readonly name: string;
  readonly line: number;
  readonly reason: string;
}

/** The configuration a TeamPass installation implies. */
export interface TeampassInstall {
  /** The installation directory, absolute. */
  readonly root: string;
  readonly settingsFile: string;
  /** Null when the install has no `websocket.php` (TeamPass's defaults apply, which are tp-ws's). */
  readonly websocketFile: string | null;
  /** Dotted schema key → value, in mapping order. */
  readonly values: ReadonlyMap<string, TeampassValue>;
  readonly ignored: readonly TeampassIgnored[];
}

/** Which store settings to derive; the caller drops those given explicitly. */
export interface ReadTeampassOptions {
  /** Derive `store.url` (and check the `DB_*` constants it needs). Default true. */
  storeUrl?: boolean;
  /** Derive `store.password` (and read and decrypt with the key file); only with `storeUrl`. Default true. */
  storePassword?: boolean;
}

const fail = (message: string, cause?: unknown): TpWsError => new TpWsError('TPWS_ERR_TEAMPASS_CONFIG', message, cause === undefined ? undefined : { cause });

/** The errno code of a failed fs call, for messages. */
const errno = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'error';

/** A file's bytes, or the errno-style code of why it could not be read (`EISDIR`, `EFBIG` for one over the limit). */
type ReadResult = { ok: true; data: Buffer } | { ok: false; code: string; cause?: unknown };

/** Reads a regular file of at most `max` bytes, without throwing. */
function readBounded(path: string, max: number): ReadResult {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    return { ok: false, code: errno(err), cause: err };
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) return { ok: false, code: 'EISDIR' };
    if (st.size > max) return { ok: false, code: 'EFBIG' };
    // Read to the end, not to st.size: a file that grew since fstat is still held to the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(65_536, max + 1 - total));
      const got = readSync(fd, chunk, 0, chunk.length, null);
      if (got === 0) break;
      chunks.push(chunk.subarray(0, got));
      total += got;
      if (total > max) {
        for (const c of chunks) c.fill(0);
        return { ok: false, code: 'EFBIG' };
      }
    }
    const data = Buffer.concat(chunks);
    for (const c of chunks) c.fill(0);
    return { ok: true, data };
  } catch (err) {
    return { ok: false, code: errno(err), cause: err };
  } finally {
    closeSync(fd);
  }
}

/** Why a file could not be read, in words, from its errno code. */
function readProblem(code: string, max: number): string {
  switch (code) {
    case 'ENOENT':
      return 'ENOENT: no such file';
    case 'EACCES':
    case 'EPERM':
      return `${code}: permission denied to tp-ws's user`;
    case 'EISDIR':
      return 'EISDIR: it is a directory';
    case 'EFBIG':
      return `EFBIG: larger than ${max} bytes, not a TeamPass settings file`;
    default:
      return code;
  }
}

/** A literal string constant, or a clear error naming the file, the constant and the fix. */
function requireString(defs: ReadonlyMap<string, PhpEntry>, name: string, file: string, problems: readonly string[], fix: string): { value: string; line: number } {
  const e = defs.get(name);
  if (e === undefined) {
    const hint = problems.length > 0 ? ` (the parser also found: ${problems.join('; ')})` : '';
    throw fail(`${file} defines no ${name} (define("${name}", "…")): TeamPass's installer writes it; ${fix}${hint}`);
  }
  if (!e.literal) throw fail(`${name} in ${file} (line ${e.line}) is ${e.why}: tp-ws reads settings.php without running PHP, so it must be a literal; ${fix}`);
  if (typeof e.value === 'number' && Number.isInteger(e.value)) return { value: String(e.value), line: e.line };
  if (typeof e.value !== 'string') throw fail(`${name} in ${file} (line ${e.line}) must be a string, not ${e.value === null ? 'null' : typeof e.value}; ${fix}`);
  return { value: e.value, line: e.line };
}

/** `host` as it goes into a URL: IPv6 in brackets; anything that is no host name or address is refused. */
function urlHost(host: string, file: string, line: number): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) === 6) return `[${bare}]`;
  if (isIP(bare) === 4 || /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$/.test(bare)) return bare;
  throw fail(`DB_HOST in ${file} (line ${line}) is not a host name or IP address (TeamPass's "p:" persistent prefix and "host:port" are not supported: put the port in DB_PORT); fix it, or give store.url instead`);
}

/**
 * Reads a TeamPass installation's configuration in place.
 *
 * - `app/config/settings.php` must exist and be readable. `DB_HOST`,
 *   `DB_USER`, `DB_NAME` and `DB_PASSWD` must be literal `define`s when the
 *   store is derived; `DB_PORT` defaults to 3306 and `DB_PREFIX` to the
 *   schema's `teampass_`. A `DB_PASSWD` starting with `def` is decrypted with
 *   the Defuse key in `ROOT/secrets/<SECUREFILE>` (TeamPass 3.2), falling
 *   back to `<SECUREPATH>/<SECUREFILE>` when `SECUREPATH` is defined (older
 *   installs kept the key outside the web root).
 * - `app/websocket/config/websocket.php` may be absent; when present it must
 *   `return [...]` an array. Keys mapped to tp-ws keys whose value is no
 *   literal are listed in `ignored`, as are keys tp-ws does not take.
 *
 * @param root - TeamPass's installation directory (relative: against the working directory)
 * @param options - which store settings to derive (default: all)
 * @throws TpWsError `TPWS_ERR_TEAMPASS_CONFIG` naming the file, the constant
 *   or key and the fix; never containing the password or the key
 */
export function readTeampassInstall(root: string, options: ReadTeampassOptions = {}): TeampassInstall {
  const dir = resolve(root);
  const settingsFile = resolve(dir, SETTINGS_PHP);
  const websocketFile = resolve(dir, WEBSOCKET_PHP);
  const values = new Map<string, TeampassValue>();
  const ignored: TeampassIgnored[] = [];

  const settings = readBounded(settingsFile, MAX_PHP_BYTES);
  if (!settings.ok) {
    const fix = settings.code === 'ENOENT'
      ? `is ${dir} TeamPass's installation directory (the one holding app/ and secrets/)?`
      : 'tp-ws\'s user must be able to read it (e.g. be in the group of TeamPass\'s web server user)';
    throw fail(`cannot read TeamPass's ${settingsFile} (${readProblem(settings.code, MAX_PHP_BYTES)}): ${fix}`, settings.cause);
  }
  const { entries: defs, problems } = parsePhpDefines(settings.data);

  if (options.storeUrl !== false) {
    const fix = 'fix it, or give store.url (with store.password or store.passwordFile) instead';
    const host = requireString(defs, 'DB_HOST', settingsFile, problems, fix);
    const user = requireString(defs, 'DB_USER', settingsFile, problems, fix);
    const name = requireString(defs, 'DB_NAME', settingsFile, problems, fix);
    let port = '3306';
    if (defs.has('DB_PORT')) {
      const p = requireString(defs, 'DB_PORT', settingsFile, problems, fix);
      if (!/^[0-9]{1,5}$/.test(p.value.trim()) || Number(p.value) < 1 || Number(p.value) > 65535) {
        throw fail(`DB_PORT in ${settingsFile} (line ${p.line}) must be a port number from 1 to 65535; ${fix}`);
      }
      port = String(Number(p.value));
    }
    if (user.value === '') throw fail(`DB_USER in ${settingsFile} (line ${user.line}) is empty; ${fix}`);
    if (name.value === '') throw fail(`DB_NAME in ${settingsFile} (line ${name.line}) is empty; ${fix}`);
    values.set('store.url', {
      value: `mysql://${encodeURIComponent(user.value)}@${urlHost(host.value.trim(), settingsFile, host.line)}:${port}/${encodeURIComponent(name.value)}`,
      file: settingsFile,
      from: (['DB_HOST', 'DB_PORT', 'DB_USER', 'DB_NAME'] as const)
        .flatMap((n) => (defs.has(n) ? [`${n} line ${(defs.get(n) as PhpEntry).line}`] : []))
        .join(', '),
    });

    if (options.storePassword !== false) {
      const password = readPassword(dir, defs, settingsFile, problems);
      if (password !== null) values.set('store.password', password);
    }
  }

  const prefix = defs.get('DB_PREFIX');
  if (prefix !== undefined) {
    if (prefix.literal && typeof prefix.value === 'string') {
      values.set('store.tablePrefix', { value: prefix.value, file: settingsFile, from: `DB_PREFIX line ${prefix.line}` });
    } else {
      // Not silently defaulted: a wrong prefix would point tp-ws at empty tables.
      throw fail(`DB_PREFIX in ${settingsFile} (line ${prefix.line}) is ${prefix.literal ? `a ${prefix.value === null ? 'null' : typeof prefix.value}` : prefix.why}, not a string literal; fix it, or give store.tablePrefix (--table-prefix) instead`);
    }
  }
  for (const row of SETTINGS_PHP_MAPPING) {
    if (row.key !== null) continue;
    for (const name of row.php.split(', ')) {
      const e = defs.get(name);
      if (e !== undefined) ignored.push({ file: settingsFile, name, line: e.line, reason: row.note });
    }
  }

  const hasWebsocket = readWebsocketPhp(websocketFile, values, ignored);
  return { root: dir, settingsFile, websocketFile: hasWebsocket ? websocketFile : null, values, ignored };
}

/** `store.password` from `DB_PASSWD`: decrypted when it starts with `def`, as TeamPass's `defuseReturnDecrypted()` does. */
function readPassword(dir: string, defs: ReadonlyMap<string, PhpEntry>, settingsFile: string, problems: readonly string[]): TeampassValue | null {
  const fix = 'fix it, or give store.password or store.passwordFile instead';
  const passwd = requireString(defs, 'DB_PASSWD', settingsFile, problems, fix);
  if (passwd.value === '') return null; // an account without a password: the URL already says it all
  if (!passwd.value.startsWith('def')) return { value: passwd.value, file: settingsFile, from: `DB_PASSWD line ${passwd.line}` };

  const secureFile = requireString(defs, 'SECUREFILE', settingsFile, problems, `DB_PASSWD is Defuse-encrypted and SECUREFILE names its key file in ${resolve(dir, SECRETS_DIR)}; ${fix}`);
  // TeamPass concatenates the directory and SECUREFILE ('/'), so do we.
  const candidates = [resolve(dir, SECRETS_DIR) + '/' + secureFile.value];
  const securePath = defs.get('SECUREPATH');
  if (securePath?.literal && typeof securePath.value === 'string' && securePath.value !== '') {
    candidates.push(resolve(dir, securePath.value) + '/' + secureFile.value);
  }
  let keyText: string | null = null;
  let keyFile = candidates[0];
  const tried: string[] = [];
  for (const candidate of candidates) {
    const raw = readBounded(candidate, MAX_KEY_FILE_BYTES);
    if (raw.ok) {
      keyText = raw.data.toString('latin1');
      raw.data.fill(0);
      keyFile = candidate;
      break;
    }
    tried.push(`${candidate} (${readProblem(raw.code, MAX_KEY_FILE_BYTES)})`);
    if (raw.code !== 'ENOENT') break; // a key file that exists but cannot be read is the one to fix
  }
  if (keyText === null) {
    throw fail(`DB_PASSWD in ${settingsFile} is Defuse-encrypted, but its key file named by SECUREFILE cannot be read: ${tried.join(', ')}; tp-ws's user must be able to read it, or ${fix.replace(/^fix it, or /, '')}`);
  }

  let key: Buffer;
  try {
    key = loadDefuseKey(keyText);
  } catch (err) {
    throw fail(`the Defuse key file ${keyFile} (SECUREFILE in ${settingsFile}): ${(err as Error).message}; restore TeamPass's key file`, err);
  }
  let plain: Buffer;
  try {
    plain = decryptDefuse(passwd.value, key);
  } catch (err) {
    throw fail(`DB_PASSWD in ${settingsFile} (line ${passwd.line}) does not decrypt with the key file ${keyFile}: ${(err as Error).message}; is it the key this TeamPass was installed with? Else give store.password or store.passwordFile instead`, err);
  } finally {
    key.fill(0);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw fail(`DB_PASSWD in ${settingsFile} (line ${passwd.line}) decrypts to bytes that are not UTF-8 text, which tp-ws cannot pass to MySQL; give store.password or store.passwordFile instead`);
  } finally {
    plain.fill(0);
  }
  if (text === '') return null;
  return { value: text, file: settingsFile, from: `DB_PASSWD line ${passwd.line}, decrypted with ${keyFile}` };
}

/** Adds what `websocket.php` sets; false when the file does not exist. */
function readWebsocketPhp(file: string, values: Map<string, TeampassValue>, ignored: TeampassIgnored[]): boolean {
  const read = readBounded(file, MAX_PHP_BYTES);
  if (!read.ok) {
    if (read.code === 'ENOENT') return false;
    throw fail(`cannot read TeamPass's ${file} (${readProblem(read.code, MAX_PHP_BYTES)}): tp-ws's user must be able to read it, or remove it to use the defaults`, read.cause);
  }
  const { entries, problems, found } = parsePhpReturnArray(read.data);
  if (!found) {
    const hint = problems.length > 0 ? ` (the parser also found: ${problems.join('; ')})` : '';
    throw fail(`${file} does not return an array literal (return [ 'host' => '127.0.0.1', 'port' => 8080, ... ];) as TeamPass's websocket.php does; fix it, or remove it to use the defaults${hint}`);
  }
  for (const entry of entries.values()) {
    const row = WEBSOCKET_MAPPING.find((m) => m.php === entry.name);
    const skip = (reason: string): void => void ignored.push({ file, name: entry.name, line: entry.line, reason });
    if (row === undefined) skip('not a setting of TeamPass\'s websocket.php that tp-ws knows');
    else if (row.key === null) skip(row.note);
    else if (!entry.literal) skip(`${entry.why}: tp-ws reads websocket.php without running PHP; the ${row.key} from elsewhere (or its default) applies`);
    else if (entry.value === null) skip(`null: the ${row.key} from elsewhere (or its default) applies, as TeamPass's ?? fallback does`);
    else {
      const value = row.map ? row.map(entry.value) : entry.value;
      values.set(row.key, { value: value as string | number | boolean, file, from: `'${entry.name}' line ${entry.line}` });
    }
  }
  return true;
}
