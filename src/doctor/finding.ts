/**
 * What `tp-ws doctor` reports: findings, one per fact checked, each with a
 * stable code (`store.access_denied`), a severity, a sentence saying what was
 * found and what it breaks, and the concrete fix (a command or a config
 * line). Tests and scripts match on `code` and `severity`, never on prose.
 */

/** `ok`: checked and fine; `warn`: works, but something is off or could not be determined; `error`: broken. */
export type Severity = 'ok' | 'warn' | 'error';

/** The checks, in report order. */
export const CHECKS = ['config', 'store', 'teampass', 'clock', 'socket', 'ports', 'proxy'] as const;
export type CheckName = (typeof CHECKS)[number];

export interface Finding {
  readonly check: CheckName;
  /** Stable identifier, `<check>.<what>`, e.g. `socket.php_access`. */
  readonly code: string;
  readonly severity: Severity;
  /** What was found, and what it breaks. Never holds a password. */
  readonly message: string;
  /** The concrete command or configuration line that fixes it; null when there is nothing to fix. */
  readonly fix: string | null;
}

/** A finding with nothing to fix. */
export function ok(check: CheckName, code: string, message: string): Finding {
  return { check, code: `${check}.${code}`, severity: 'ok', message, fix: null };
}

export function warn(check: CheckName, code: string, message: string, fix: string | null): Finding {
  return { check, code: `${check}.${code}`, severity: 'warn', message, fix };
}

export function error(check: CheckName, code: string, message: string, fix: string | null): Finding {
  return { check, code: `${check}.${code}`, severity: 'error', message, fix };
}

/** Seconds as a short duration: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`. */
export function duration(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.round((s % 86_400) / 3600)} h`;
}
