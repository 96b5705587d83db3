/**
 * From a `store.url` to a `Store`: URL parsing, redaction for logs, and the
 * choice between the embedded SQLite store and MySQL.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { TpWsError } from '../errors.js';
import { MysqlStore } from './mysql-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import { parseStoreUrl } from './store-url.js';

export { parseStoreUrl, redactStoreUrl, type ParsedStoreUrl } from './store-url.js';

/**
 * Build (not connect, not migrate) the store a URL names. `password`, when
 * given, is the MySQL password the URL does not hold. Throws
 * `TPWS_ERR_STORE_URL` for a bad URL.
 */
export function openStore(url: string, prefix: string, password: string | null = null): Store {
  const parsed = parseStoreUrl(url);
  if (parsed.kind === 'sqlite') return new SqliteStore({ path: parsed.path, prefix });
  return new MysqlStore({ url: parsed.url, prefix, password });
}

/** The store a loaded configuration names, with its password from `store.password` or `store.passwordFile`. */
export function openConfiguredStore(cfg: Readonly<Config>): Store {
  return openStore(cfg.store.url, cfg.store.tablePrefix, storePassword(cfg));
}

/**
 * The MySQL password given apart from the URL: `store.password`, or the first
 * line of `store.passwordFile`; null when neither is set. Throws
 * `TPWS_ERR_CONFIG_INVALID` when the file cannot be read.
 */
export function storePassword(cfg: Readonly<Config>): string | null {
  if (cfg.store.password !== null) return cfg.store.password;
  if (cfg.store.passwordFile === null) return null;
  try {
    return readFileSync(cfg.store.passwordFile, 'utf8').split('\n')[0].replace(/\r$/, '');
  } catch (err) {
    throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in store.passwordFile: cannot read ${cfg.store.passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}
