import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.js';
import { displayName, type Authenticator, type Identity } from './authenticator.js';

const TOKEN_RE = /^[a-f0-9]{64}$/;

export interface TeampassTokenOptions {
  /** Lifetime of the reconnect token issued per connection. Default 3600 (TeamPass). */
  reconnectTokenTtlSec: number;
}

/**
 * TeamPass's `ws_token` method (docs/protocol.md §Authentication): a 64 lower-hex
 * token from `<prefix>websocket_tokens`, reusable until it expires, joined to
 * an enabled user. Folders = users_groups ∪ role folders. Each success inserts
 * a new reconnect token, returned in `connected.reconnect_token`.
 */
export class TeampassTokenAuthenticator implements Authenticator {
  readonly name = 'teampass-token';

  constructor(private readonly store: Store, private readonly options: TeampassTokenOptions) {}

  async authenticate(token: string): Promise<Identity | null> {
    if (!TOKEN_RE.test(token)) return null;
    const found = await this.store.findTokenUser(token);
    if (found === null) return null;
    const { user } = found;
    const folders = await this.store.accessibleFolders(user.id);
    let reconnectToken: string | null = randomBytes(32).toString('hex');
    try {
      await this.store.insertToken(user.id, reconnectToken, this.options.reconnectTokenTtlSec);
    } catch {
      // TeamPass omits reconnect_token when its insert fails; the socket still opens.
      reconnectToken = null;
    }
    return {
      userId: user.id,
      login: user.login,
      displayName: displayName(user.login, user.name, user.lastname),
      isAdmin: user.isAdmin,
      folders: new Set(folders),
      authMethod: 'ws_token',
      expiresAt: null,
      reconnectToken,
    };
  }
}
