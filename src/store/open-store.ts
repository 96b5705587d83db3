/**
 * From a `store.url` to a `Store`: URL parsing, redaction for logs, and the
 * choice between the embedded SQLite store and MySQL. Loads both drivers;
 * the daemon uses `loadConfiguredStore` (load-store.ts), which loads one.
 */
import type { Config } from '../config/schema.js';
import { MysqlStore } from './mysql-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import { parseStoreUrl } from './store-url.js';
import { storePassword } from './store-password.js';

export { parseStoreUrl, redactStoreUrl, type ParsedStoreUrl } from './store-url.js';
export { storePassword } from './store-password.js';

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
