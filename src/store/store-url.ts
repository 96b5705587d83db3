/**
 * Store URLs: parsing (`sqlite:PATH`, `mysql://…`), and hiding the password
 * for logs and output. Pure, with no driver imports, so the config loader
 * checks a URL by the same rules as the store that opens it without loading
 * a database driver.
 */
import { resolve } from 'node:path';
import { TpWsError } from '../errors.js';

export type ParsedStoreUrl =
  | { kind: 'sqlite'; path: string }
  | { kind: 'mysql'; url: string; host: string; port: number; user: string; database: string; socketPath?: string; hasPassword: boolean };

/**
 * Parse `sqlite:PATH` (relative paths resolve against the working directory;
 * `sqlite:///abs/path` and `sqlite::memory:` are accepted too) or
 * `mysql://user:pass@host:port/db[?socket=PATH]`.
 *
 * The result never holds the password except inside `url` (needed to connect).
 * Throws `TPWS_ERR_STORE_URL`; its message never contains the password.
 */
export function parseStoreUrl(url: string): ParsedStoreUrl {
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2); // sqlite:///abs/path
    if (!path) throw new TpWsError('TPWS_ERR_STORE_URL', 'store URL sqlite: must name a file (sqlite:PATH)');
    return { kind: 'sqlite', path: path === ':memory:' ? path : resolve(path) };
  }
  if (url.startsWith('mysql://')) {
    const { host, port, user, database, socketPath, password } = parseMysqlUrl(url);
    return { kind: 'mysql', url, host, port, user, database, ...(socketPath ? { socketPath } : {}), hasPassword: password !== '' };
  }
  throw new TpWsError('TPWS_ERR_STORE_URL', 'store URL must be sqlite:PATH or mysql://user:pass@host:port/db');
}

/** Where to connect, from a `mysql://` URL. */
export interface MysqlTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Empty only when parsed with `requireDatabase: false`. */
  database: string;
  /** From `?socket=/run/mysqld/mysqld.sock`: connect through a Unix socket instead of TCP. */
  socketPath?: string;
}

function urlError(rule: string): TpWsError {
  // Never echo the URL: it carries the password.
  return new TpWsError('TPWS_ERR_STORE_URL', `store URL ${rule} (expected mysql://user:pass@host:port/db)`);
}

/**
 * Parse `mysql://user:pass@host:port/db[?socket=PATH]`. User, password and
 * database are percent-decoded; the port defaults to 3306. Throws
 * `TPWS_ERR_STORE_URL` with a message that never contains the password.
 */
export function parseMysqlUrl(url: string, options: { requireDatabase?: boolean } = {}): MysqlTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw urlError('is not a valid URL');
  }
  if (u.protocol !== 'mysql:') throw urlError('must start with mysql://');
  let database: string;
  let user: string;
  let password: string;
  try {
    database = decodeURIComponent(u.pathname.replace(/^\//, ''));
    user = decodeURIComponent(u.username);
    password = decodeURIComponent(u.password);
  } catch {
    throw urlError('has a malformed %-escape');
  }
  if (database.includes('/')) throw urlError('must name a single database');
  if (!database && options.requireDatabase !== false) throw urlError('must name a database');
  if (!user) throw urlError('must name a user');
  let socketPath: string | undefined;
  for (const [key, value] of u.searchParams) {
    if (key === 'socket' && value) socketPath = value;
    else throw urlError(`has an unsupported parameter "${key}" (supported: socket)`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host && !socketPath) throw urlError('must name a host');
  const port = u.port ? Number(u.port) : 3306;
  return { host: host || 'localhost', port, user, password, database, ...(socketPath ? { socketPath } : {}) };
}

/**
 * The store URL with its password replaced by `***`, for logs and banners.
 * Works on malformed URLs too: everything between the user's `:` and the last
 * `@` is hidden, so a stray `/` or `@` in the password cannot leak it.
 */
export function redactStoreUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*:).*@/is, '$1***@');
}

/** The store URL without its password (`mysql://user@host/db`), or null when it holds none. */
export function withoutStorePassword(url: string): string | null {
  const stripped = url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*):.*@/is, '$1@');
  return stripped === url ? null : stripped;
}
