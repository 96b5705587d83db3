import { jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { Config } from '../config/schema.js';
import { TpWsError } from '../errors.js';
import { positiveInt } from '../int.js';
import { displayName, type Authenticator, type Identity } from './authenticator.js';
import type { JwtKey } from './jwt-key.js';

type Claims = Config['auth']['jwt'];

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_FOLDERS = 100_000;

/**
 * JWT authentication (jose). HS256 with a secret, or RS256/ES256 with a
 * public key. Claim names are configurable; `exp` is required and enforced
 * while connected (the gateway closes the socket with 4103 when it passes).
 * The identity comes from the claims alone, so applications without TeamPass
 * tables can use it.
 */
export class JwtAuthenticator implements Authenticator {
  readonly name = 'jwt';

  constructor(private readonly key: JwtKey, private readonly claims: Claims) {}

  async authenticate(token: string): Promise<Identity | null> {
    if (token.length > 8192 || !JWT_SHAPE.test(token)) return null;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key.key, {
        algorithms: this.key.algorithms,
        requiredClaims: ['exp'],
        ...(this.claims.issuer !== null ? { issuer: this.claims.issuer } : {}),
        ...(this.claims.audience !== null ? { audience: this.claims.audience } : {}),
      }));
    } catch {
      return null;
    }
    const userId = positiveInt(payload[this.claims.claimUserId]);
    if (userId === null) return null;
    const loginClaim = payload[this.claims.claimLogin];
    const login = typeof loginClaim === 'string' && loginClaim !== '' ? loginClaim.slice(0, 250) : `user${userId}`;
    const nameClaim = payload[this.claims.claimDisplayName];
    const name = typeof nameClaim === 'string' ? nameClaim.slice(0, 250) : null;
    const adminClaim = payload[this.claims.claimAdmin];
    return {
      userId,
      login,
      displayName: displayName(login, name, null),
      isAdmin: adminClaim === true || adminClaim === 1 || adminClaim === '1',
      folders: parseFolders(payload[this.claims.claimFolders]),
      authMethod: 'jwt',
      expiresAt: (payload.exp as number) * 1000,
      reconnectToken: null,
    };
  }
}

/** Folders as an array of ids or TeamPass's comma-separated string; invalid entries are dropped. */
function parseFolders(v: unknown): Set<number> {
  const raw = Array.isArray(v) ? v : typeof v === 'string' ? v.split(/[,;]/) : [];
  const out = new Set<number>();
  for (const item of raw.slice(0, MAX_FOLDERS)) {
    const n = positiveInt(typeof item === 'string' ? item.trim() : item);
    if (n !== null) out.add(n);
  }
  return out;
}

export interface MintOptions {
  userId: number;
  login?: string;
  name?: string;
  admin?: boolean;
  folders?: number[];
  ttlSec: number;
}

/** Sign a token the JwtAuthenticator accepts (HS256 keys only): `tp-ws token` and tests use it. */
export async function mintJwt(key: JwtKey, claims: Claims, o: MintOptions): Promise<string> {
  if (key.kind !== 'secret') throw new TpWsError('TPWS_ERR_CONFIG_INVALID', 'in auth.jwt: tokens can only be minted with an HS256 secret; sign RS256/ES256 tokens with your private key');
  const body: JWTPayload = { [claims.claimUserId]: claims.claimUserId === 'sub' ? String(o.userId) : o.userId };
  if (o.login !== undefined) body[claims.claimLogin] = o.login;
  if (o.name !== undefined) body[claims.claimDisplayName] = o.name;
  if (o.admin) body[claims.claimAdmin] = true;
  if (o.folders !== undefined) body[claims.claimFolders] = o.folders;
  let jwt = new SignJWT(body).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + o.ttlSec);
  if (claims.issuer !== null) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience !== null) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(key.key);
}
