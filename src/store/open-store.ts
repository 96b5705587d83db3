/**
 * From a `store.url` to a `Store`: URL parsing, redaction for logs, and the
 * choice between the embedded SQLite store and MySQL.
 */
import { resolve } from 'node:path';
import { TpWsError } from '../errors.js';
import { MysqlStore, parseMysqlUrl } from './mysql-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

export { redactStoreUrl } from './store-url.js';

export type ParsedStoreUrl =
  | { kind: 'sqlite'; path: string }
  | { kind: 'mysql'; url: string; host: string; port: number; user: string; database: string; socketPath?: string };

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
    const { host, port, user, database, socketPath } = parseMysqlUrl(url);
    return { kind: 'mysql', url, host, port, user, database, ...(socketPath ? { socketPath } : {}) };
  }
  throw new TpWsError('TPWS_ERR_STORE_URL', 'store URL must be sqlite:PATH or mysql://user:pass@host:port/db');
}

/** Build (not connect, not migrate) the store a URL names. Throws `TPWS_ERR_STORE_URL` for a bad URL. */
export function openStore(url: string, prefix: string): Store {
  const parsed = parseStoreUrl(url);
  if (parsed.kind === 'sqlite') return new SqliteStore({ path: parsed.path, prefix });
  return new MysqlStore({ url: parsed.url, prefix });
}
