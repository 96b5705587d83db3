import type { Config } from '../config/schema.js';
import type { Store } from './store.js';
import { storePassword } from './store-password.js';
import { parseStoreUrl } from './store-url.js';

/**
 * The store a loaded configuration names, like `openConfiguredStore`
 * (open-store.ts), but importing only its own driver: a daemon on MariaDB
 * does not load better-sqlite3, one on SQLite does not load mysql2 (about
 * 16 MB of RSS freshly loaded). Throws `TPWS_ERR_STORE_URL` for a bad URL.
 */
export async function loadConfiguredStore(cfg: Readonly<Config>): Promise<Store> {
  const parsed = parseStoreUrl(cfg.store.url);
  if (parsed.kind === 'sqlite') {
    const { SqliteStore } = await import('./sqlite-store.js');
    return new SqliteStore({ path: parsed.path, prefix: cfg.store.tablePrefix });
  }
  const { MysqlStore } = await import('./mysql-store.js');
  return new MysqlStore({ url: parsed.url, prefix: cfg.store.tablePrefix, password: storePassword(cfg) });
}
