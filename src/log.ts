import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths redacted from every log line. Tokens travel in the upgrade URL
 * (`?token=`), so URLs are never logged whole: the gateway logs the path only.
 */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'reconnect_token',
  '*.reconnect_token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.cookie',
  'headers.authorization',
];

/**
 * The pino root logger: NDJSON on stdout (journald collects it), secrets
 * redacted. Components take `logger.child({ component })`.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tp-ws' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * A child logger carrying a WebSocket session's id and user (pino child
 * bindings). Made when a line is logged rather than kept on the session:
 * sessions are many and log rarely, and a child costs memory.
 */
export function sessionLogger(log: Logger, s: { readonly id: number; readonly userId: number }): Logger {
  return log.child({ session: s.id, user_id: s.userId });
}
