import { randomBytes } from 'node:crypto';
import type { NewToken, Store, TokenUser } from '../store/store.js';
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
 *
 * Both database steps of a connect go by group commit, as the journal writes
 * events: the token lookup (user and folders in one query) and the reconnect
 * token INSERT. A connect that finds nothing under way runs its own query at
 * once; connects that arrive while queries run share the next one (`IN (…)`
 * for lookups, a multi-row INSERT for tokens), so a storm of a thousand
 * connects makes tens of queries, not three thousand. Each connect still
 * waits for the INSERT that carries its token, so the token is in the table
 * before `connected` names it (a reconnect with it, or a revocation by
 * `session_expired`, finds it there).
 */
export class TeampassTokenAuthenticator implements Authenticator {
  readonly name = 'teampass-token';
  /** Two lookups in flight at most, leaving the pool's other connections to the rest of the daemon. */
  private readonly lookups = new GroupCommit<string, TokenUser | null>(2, 500, async (tokens) => {
    const found = await this.store.findTokenUsers(tokens);
    return tokens.map((t) => found.get(t) ?? null);
  });
  /** Resolves true per token once written, false when its INSERT failed. */
  private readonly inserts = new GroupCommit<NewToken, boolean>(1, 500, async (rows) => {
    try {
      await this.store.insertTokens(rows, this.options.reconnectTokenTtlSec);
      return rows.map(() => true);
    } catch {
      return rows.map(() => false);
    }
  });

  constructor(private readonly store: Store, private readonly options: TeampassTokenOptions) {}

  async authenticate(token: string): Promise<Identity | null> {
    if (!TOKEN_RE.test(token)) return null;
    const found = await this.lookups.add(token);
    if (found === null) return null;
    const { user } = found;
    const issued = randomBytes(32).toString('hex');
    // TeamPass omits reconnect_token when its insert fails; the socket still opens.
    const written = await this.inserts.add({ userId: user.id, token: issued });
    return {
      userId: user.id,
      login: user.login,
      displayName: displayName(user.login, user.name, user.lastname),
      isAdmin: user.isAdmin,
      folders: new Set(found.folders),
      authMethod: 'ws_token',
      expiresAt: null,
      reconnectToken: written ? issued : null,
    };
  }
}

/**
 * Group commit of one kind of query: `run` takes a batch of inputs and
 * returns one output per input, in order. At most `maxInFlight` batches run
 * at once; what arrives meanwhile waits and goes in the next batch (at most
 * `maxBatch` inputs). A failed batch rejects each of its callers.
 */
class GroupCommit<In, Out> {
  private waiting: { input: In; resolve: (out: Out) => void; reject: (err: unknown) => void }[] = [];
  private running = 0;

  constructor(private readonly maxInFlight: number, private readonly maxBatch: number, private readonly run: (inputs: In[]) => Promise<Out[]>) {}

  add(input: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.running < this.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.maxBatch);
      this.running++;
      this.run(batch.map((w) => w.input)).then(
        (outs) => batch.forEach((w, i) => w.resolve(outs[i])),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      ).finally(() => {
        this.running--;
        this.next();
      });
    }
  }
}
