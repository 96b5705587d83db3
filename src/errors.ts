/**
 * The one catalogue of tp-ws error codes. Every error the daemon raises for a
 * caller to branch on carries one of these codes; `docs/errors.md` lists them
 * all and `test/unit/docs-sync.test.ts` keeps the two in step.
 *
 * Callers match on `.code`, never on the message text.
 */
export const ERROR_CODES = {
  TPWS_ERR_CONFIG_INVALID: 'A configuration value broke its rule; the message names the key and the rule.',
  TPWS_ERR_CONFIG_FILE: 'The configuration file could not be read or is not a JSON object.',
  TPWS_ERR_TEAMPASS_CONFIG: 'A TeamPass file read through `teampass.root` (settings.php, websocket.php, the Defuse key) is missing, unreadable or malformed, or its database password does not decrypt.',
  TPWS_ERR_STORE_URL: 'The store URL is not `sqlite:PATH` or `mysql://user:pass@host:port/db`.',
  TPWS_ERR_STORE_UNAVAILABLE: 'The store (SQLite file or MySQL server) could not be reached.',
  TPWS_ERR_MIGRATION: 'A schema migration failed; nothing after the failing statement was applied.',
  TPWS_ERR_LISTEN: 'A listener (WebSocket port, admin port or ingest socket) could not be opened.',
  TPWS_ERR_CONNECT: 'A client command could not reach the daemon: `tp-ws tail` its WebSocket port, `tp-ws status` its admin listener.',
  TPWS_ERR_SOCKET_IN_USE: 'The ingest socket path belongs to a live daemon.',
  TPWS_ERR_AUTH_FAILED: 'A WebSocket client presented no valid credentials (also: `tp-ws tail` was refused by the daemon).',
  TPWS_ERR_AUTH_EXPIRED: 'A WebSocket client\'s credentials expired while it was connected.',
  TPWS_ERR_INVALID_EVENT: 'An event failed validation; the message names the field and the rule.',
  TPWS_ERR_FRAME_TOO_LARGE: 'An ingest frame is larger than `ingest.maxFrameBytes`.',
  TPWS_ERR_BAD_FRAME: 'An ingest frame is not valid JSON or msgpack.',
  TPWS_ERR_BATCH_TOO_LARGE: 'An ingest batch holds more events than `ingest.maxBatchEvents`.',
  TPWS_ERR_UNAVAILABLE: 'The daemon is shutting down or overloaded; the sender should try again later or use the table.',
  TPWS_ERR_INTERNAL: 'An unexpected internal failure; it is logged with details.',
} as const;

export type TpWsErrorCode = keyof typeof ERROR_CODES;

export class TpWsError extends Error {
  readonly code: TpWsErrorCode;

  constructor(code: TpWsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TpWsError';
    this.code = code;
  }
}

/** True when `err` is a TpWsError with the given code. */
export function isTpWsError(err: unknown, code?: TpWsErrorCode): err is TpWsError {
  return err instanceof TpWsError && (code === undefined || err.code === code);
}
