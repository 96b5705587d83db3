import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { TpWsError } from '../errors.js';

export type JwtKey =
  | { kind: 'secret'; key: Uint8Array; algorithms: string[]; source: 'config' | 'file' | 'development'; path?: string }
  | { kind: 'public'; key: KeyObject; algorithms: string[]; source: 'file'; path: string };

/** Name of the development secret file inside the state directory. */
export const DEV_SECRET_FILE = 'jwt-dev-secret';

/**
 * Resolve the JWT verification key from the configuration: an explicit
 * secret, a secret file, a public key file, or — when none is set — a
 * development HS256 secret kept in the state directory (created on first use
 * with mode 0600 when `create` is true), so a fresh install can mint tokens
 * with `tp-ws token` at once.
 */
export function resolveJwtKey(cfg: Config, create: boolean): JwtKey {
  const jwt = cfg.auth.jwt;
  const hs = jwt.algorithms.filter((a) => a === 'HS256');
  if (jwt.secret !== null) return { kind: 'secret', key: new TextEncoder().encode(jwt.secret), algorithms: hs, source: 'config' };
  if (jwt.secretFile !== null) {
    const secret = readLine(jwt.secretFile, 'auth.jwt.secretFile');
    if (secret.length < 32) throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in auth.jwt.secretFile: the secret in ${jwt.secretFile} must be at least 32 characters`);
    return { kind: 'secret', key: new TextEncoder().encode(secret), algorithms: hs, source: 'file', path: jwt.secretFile };
  }
  if (jwt.publicKeyFile !== null) {
    let key: KeyObject;
    try {
      key = createPublicKey(readFileSync(jwt.publicKeyFile));
    } catch (err) {
      throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in auth.jwt.publicKeyFile: ${jwt.publicKeyFile} is not a readable PEM public key`, { cause: err });
    }
    const alg = key.asymmetricKeyType === 'rsa' ? 'RS256' : key.asymmetricKeyType === 'ec' ? 'ES256' : null;
    if (alg === null || !jwt.algorithms.includes(alg)) {
      throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in auth.jwt.publicKeyFile: key type ${key.asymmetricKeyType} needs an algorithm (RS256 or ES256) allowed by auth.jwt.algorithms`);
    }
    return { kind: 'public', key, algorithms: [alg], source: 'file', path: jwt.publicKeyFile };
  }
  const path = join(cfg.stateDir, DEV_SECRET_FILE);
  let secret: string;
  try {
    secret = readLine(path, 'stateDir');
  } catch (err) {
    if (!create) {
      throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in stateDir: no development JWT secret at ${path} (tp-ws serve creates it on its first start): start the daemon first, or give the --state-dir it uses`, { cause: err });
    }
    mkdirSync(cfg.stateDir, { recursive: true, mode: 0o700 });
    secret = randomBytes(48).toString('base64url');
    writeFileSync(path, secret + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
  }
  return { kind: 'secret', key: new TextEncoder().encode(secret), algorithms: hs, source: 'development', path };
}

function readLine(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n')[0].trim();
  } catch (err) {
    throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in ${key}: cannot read ${path}`, { cause: err });
  }
}
