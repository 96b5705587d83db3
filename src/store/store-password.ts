import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { TpWsError } from '../errors.js';

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
