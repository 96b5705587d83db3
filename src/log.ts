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

/** A warning or error line as the status page lists it: message and code only, never the bound fields. */
export interface NotableLine {
  time: number;
  level: 'warn' | 'error' | 'fatal';
  msg: string;
  code?: string;
}

/**
 * The pino root logger: NDJSON on stdout (journald collects it), secrets
 * redacted. Components take `logger.child({ component })`. `onNotable` is
 * told of every warning and error written, by this logger and its children.
 */
export function createLogger(level: string, destination?: DestinationStream, onNotable?: (line: NotableLine) => void): Logger {
  return pino(
    {
      level,
      base: { service: 'tp-ws' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      ...(onNotable === undefined ? {} : {
        hooks: {
          logMethod(args, method, level) {
            if (level >= 40) onNotable(notable(args as unknown[], level));
            return method.apply(this, args as Parameters<typeof method>);
          },
        },
      }),
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

function notable(args: unknown[], level: number): NotableLine {
  const first = args[0];
  const obj = typeof first === 'object' && first !== null ? (first as Record<string, unknown>) : null;
  const msg = obj === null ? String(first ?? '') : typeof args[1] === 'string' ? args[1] : first instanceof Error ? first.message : '';
  const line: NotableLine = { time: Date.now(), level: level >= 60 ? 'fatal' : level >= 50 ? 'error' : 'warn', msg: msg.slice(0, 300) };
  if (obj !== null && typeof obj.code === 'string') line.code = obj.code;
  return line;
}

/**
 * A child logger carrying a WebSocket session's id and user (pino child
 * bindings). Made when a line is logged rather than kept on the session:
 * sessions are many and log rarely, and a child costs memory.
 */
export function sessionLogger(log: Logger, s: { readonly id: number; readonly userId: number }): Logger {
  return log.child({ session: s.id, user_id: s.userId });
}
