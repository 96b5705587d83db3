/**
 * The store of a short-lived command: `tp-ws-emit`'s table fallback. A
 * command has no event loop to keep free, so the SQLite file is opened on
 * its own thread (starting `SqliteStore`'s worker thread costs about 100 ms,
 * more than the rest of the run); MySQL is the daemon's store. Drivers are
 * loaded only for the store the URL names.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { parseStoreUrl } from './store-url.js';
import type { EventInsert, MigrateResult } from './store.js';

/** What a command does with the events table. */
export interface CommandStore {
  readonly kind: 'sqlite' | 'mysql';
  migrate(): Promise<MigrateResult>;
  insertPendingEvent(event: EventInsert): Promise<number>;
  close(): Promise<void>;
}

/** Open the store of `cfg` for a command. Throws `TPWS_ERR_STORE_URL` / `TPWS_ERR_STORE_UNAVAILABLE`. */
export async function openCommandStore(cfg: Readonly<Config>): Promise<CommandStore> {
  const parsed = parseStoreUrl(cfg.store.url);
  if (parsed.kind === 'mysql') {
    const { openConfiguredStore } = await import('./open-store.js');
    return openConfiguredStore(cfg);
  }
  const { SqliteDb } = await import('./sqlite-db.js');
  const db = new SqliteDb({ path: parsed.path, prefix: cfg.store.tablePrefix, owner: randomBytes(12).toString('hex') });
  return {
    kind: 'sqlite',
    migrate: async () => db.migrate(),
    insertPendingEvent: async (event) => db.insertPendingEvent(event),
    close: async () => db.close(),
  };
}
