import type { Command } from 'commander';
import { mintJwt } from '../auth/jwt.js';
import { resolveJwtKey } from '../auth/jwt-key.js';
import type { Config } from '../config/schema.js';
import { TpWsError } from '../errors.js';
import { ID_MAX, positiveInt } from '../int.js';

export interface TokenFlags {
  user?: string;
  login?: string;
  name?: string;
  admin?: boolean;
  folders?: string;
  ttl?: string;
}

/** Options shared by `token` and `tail`: who the token is for. */
export function addTokenOptions(cmd: Command): Command {
  return cmd
    .option('--user <id>', 'user id (the JWT user claim)')
    .option('--login <login>', 'login claim')
    .option('--name <name>', 'display-name claim')
    .option('--admin', 'set the admin claim')
    .option('--folders <ids>', 'comma-separated accessible folder ids')
    .option('--ttl <seconds>', 'token lifetime in seconds (default 3600)');
}

function flagInt(v: string | undefined, flag: string, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  const n = positiveInt(v);
  if (n === null) throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in ${flag}: must be an integer from 1 to ${ID_MAX}`);
  return n;
}

/**
 * Mint a JWT for the flags' user. The development secret must exist already:
 * a token signed with a secret of its own would be one the daemon refuses.
 */
export async function mintFromFlags(cfg: Readonly<Config>, f: TokenFlags): Promise<string> {
  const userId = flagInt(f.user, '--user');
  const folders = f.folders === undefined ? undefined : f.folders.split(',').filter((s) => s.trim() !== '').map((s) => flagInt(s.trim(), '--folders'));
  // Every flag is checked before the key is looked for: a bad flag is named even without a secret yet.
  const ttlSec = flagInt(f.ttl, '--ttl', 3600);
  const key = resolveJwtKey(cfg, false);
  return mintJwt(key, cfg.auth.jwt, { userId, login: f.login, name: f.name, admin: f.admin === true, folders, ttlSec });
}

export async function runToken(cfg: Readonly<Config>, f: TokenFlags): Promise<void> {
  process.stdout.write((await mintFromFlags(cfg, f)) + '\n');
}
