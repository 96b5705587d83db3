import type { Config } from '../config/schema.js';
import { openConfiguredStore, redactStoreUrl } from '../store/open-store.js';

/**
 * `tp-ws migrate [--force]`: apply pending migrations and say what was done.
 * `--force` creates the schema even beside TeamPass tables of another prefix.
 */
export async function runMigrate(cfg: Readonly<Config>, flags: { force?: boolean } = {}): Promise<void> {
  const store = openConfiguredStore(cfg);
  try {
    const r = await store.migrate({ force: flags.force === true });
    const where = redactStoreUrl(cfg.store.url);
    if (r.applied.length === 0) process.stdout.write(`${where}: schema up to date (${r.mode})\n`);
    else process.stdout.write(`${where}: applied ${r.applied.join(', ')} (${r.mode})\n`);
  } finally {
    await store.close();
  }
}
