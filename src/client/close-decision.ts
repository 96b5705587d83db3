/**
 * What the client does after its socket closed, decided from the close code
 * by `reconnectPolicy` (src/protocol/close-codes.ts, the daemon's own table)
 * and from what happened on the socket before the close.
 */
import { CloseCode, reconnectPolicy } from '../protocol/close-codes.js';

export interface CloseFacts {
  /** The close code (1006 when the connection dropped without a close frame). */
  code: number;
  /** The application called disconnect(). */
  intentional: boolean;
  /** The daemon refused the credential (`auth_failed` error) before `connected`. */
  authFailed: boolean;
}

/**
 * - `stop`: nothing more (disconnect() was called);
 * - `terminal`: a 4000–4099 close, never reconnect;
 * - `refresh`: the token is refused or expired: get another, then reconnect;
 * - `now`: reconnect at once (4200–4299, the daemon restarts);
 * - `backoff`: reconnect after a backoff delay (everything else).
 */
export type CloseDecision = 'stop' | 'terminal' | 'refresh' | 'now' | 'backoff';

export function decideAfterClose(facts: CloseFacts): CloseDecision {
  if (facts.intentional) return 'stop';
  // The daemon closes an auth failure with 1000, a code that alone means "back off": the error before it decides.
  if (facts.authFailed) return 'refresh';
  const policy = reconnectPolicy(facts.code);
  if (policy === 'none') return 'terminal';
  if (facts.code === CloseCode.TOKEN_EXPIRED) return 'refresh';
  return policy;
}
