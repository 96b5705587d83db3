import type { Config } from '../config/schema.js';
import { openStore, redactStoreUrl } from '../store/open-store.js';

/** `tp-ws migrate`: apply pending migrations and say what was done. */
export async function runMigrate(cfg: Readonly<Config>): Promise<void> {
  const store = openStore(cfg.store.url, cfg.store.tablePrefix);
  try {
    const r = await store.migrate();
    const where = redactStoreUrl(cfg.store.url);
    if (r.applied.length === 0) process.stdout.write(`${where}: schema up to date (${r.mode})\n`);
    else process.stdout.write(`${where}: applied ${r.applied.join(', ')} (${r.mode})\n`);
  } finally {
    await store.close();
  }
}
