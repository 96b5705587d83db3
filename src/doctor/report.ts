/**
 * The doctor's output: a human report grouped by check (✓ ! ✗ on a
 * terminal, `[ok]`/`[warn]`/`[error]` otherwise) with each fix under its
 * finding and a summary line, or JSON (`{findings, summary}`); and the exit
 * code: 0 all ok, 1 warnings only, 2 errors.
 */
import { CHECKS, type Finding, type Severity } from './finding.js';

export interface Summary {
  ok: number;
  warn: number;
  error: number;
}

export function summarize(findings: readonly Finding[]): Summary {
  const s: Summary = { ok: 0, warn: 0, error: 0 };
  for (const f of findings) s[f.severity]++;
  return s;
}

/** 0 when every finding is ok, 1 with warnings only, 2 with any error. */
export function exitCodeOf(findings: readonly Finding[]): 0 | 1 | 2 {
  const s = summarize(findings);
  return s.error > 0 ? 2 : s.warn > 0 ? 1 : 0;
}

/** `{"findings":[…],"summary":{"ok":n,"warn":n,"error":n}}` and a newline. */
export function renderJson(findings: readonly Finding[]): string {
  return `${JSON.stringify({ findings, summary: summarize(findings) }, null, 2)}\n`;
}

const MARKS: Record<'unicode' | 'ascii', Record<Severity, string>> = {
  unicode: { ok: '✓', warn: '!', error: '✗' },
  ascii: { ok: '[ok]', warn: '[warn]', error: '[error]' },
};

/** What each check looks at, as the report's group headings. */
const HEADINGS: Record<(typeof CHECKS)[number], string> = {
  config: 'config: loading the configuration',
  store: 'store: connection, schema, pending events',
  teampass: 'teampass: does TeamPass use tp-ws',
  clock: 'clock: database vs this machine',
  socket: 'socket: the ingest socket PHP writes to',
  ports: 'ports: the WebSocket and admin listeners',
  proxy: 'proxy: the reverse proxy in front',
};

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * The report for people.
 *
 * @param unicode - ✓ ! ✗ marks (a terminal); `[ok]`/`[warn]`/`[error]` otherwise
 */
export function renderText(findings: readonly Finding[], unicode: boolean): string {
  const marks = MARKS[unicode ? 'unicode' : 'ascii'];
  const lines: string[] = [];
  for (const check of CHECKS) {
    const group = findings.filter((f) => f.check === check);
    if (group.length === 0) continue;
    lines.push(HEADINGS[check]);
    for (const f of group) {
      lines.push(`  ${marks[f.severity]} ${f.message} [${f.code}]`);
      if (f.fix !== null) lines.push(`      fix: ${f.fix}`);
    }
    lines.push('');
  }
  const s = summarize(findings);
  const verdict = s.error > 0 ? 'tp-ws will not work as configured' : s.warn > 0 ? 'works, with warnings' : 'all good';
  lines.push(`${plural(s.error, 'error')}, ${plural(s.warn, 'warning')}, ${s.ok} ok: ${verdict}`);
  return `${lines.join('\n')}\n`;
}
