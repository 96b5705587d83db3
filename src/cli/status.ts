import { get as httpGet } from 'node:http';
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { TpWsError, isTpWsError } from '../errors.js';
import { addConfigOptions, loadConfigFromCommand } from './config-commands.js';

/** How long `tp-ws status` waits for the daemon's answer. */
export const STATUS_TIMEOUT_MS = 3000;

const SOURCES = ['socket', 'table', 'replay', 'api', 'daemon'] as const;

export interface StatusFlags {
  /** Print the raw document (pretty JSON) instead of the table. */
  json?: boolean;
}

/** Where `status` writes; tests pass their own. */
export interface StatusIo {
  stdout?: { write(chunk: string): unknown };
  stderr?: { write(chunk: string): unknown };
}

/**
 * The parts of the daemon's `GET /status.json` that `status` reads (the page
 * at `GET /` reads the same document). Every field may be missing or null on
 * a daemon that does not know it.
 */
export interface DaemonStatus {
  version?: string;
  now?: number;
  started_at?: number;
  uptime_s?: number;
  config?: { file?: string | null; teampass_root?: string | null; store?: string | null; listen?: string | null; ingest_socket?: string | null };
  connections?: number;
  users?: number;
  folder_subscriptions?: number;
  kb_subscriptions?: number;
  events?: Partial<Record<(typeof SOURCES)[number], number>>;
  deliveries?: number;
  duplicates?: number;
  latency_ms?: { count?: number | null; p50?: number | null; p99?: number | null } | null;
  poller?: { enabled?: boolean; holds_lock?: boolean | null; last_poll_ms_ago?: number | null; backlog?: number | null; lag_ms?: number | null } | null;
  journal?: { queued?: number; written?: number; write_errors?: number; dropped?: number; slow?: boolean } | null;
  event_loop_lag_ms?: { p50?: number | null; p99?: number | null; max?: number | null } | null;
  ready?: { ready?: boolean; checks?: { name?: string; ok?: boolean; detail?: string }[] } | null;
  recent_errors?: { time?: number; level?: string; msg?: string; code?: string }[] | null;
  history?: ({ t?: number; deliveries?: number } & Partial<Record<(typeof SOURCES)[number], number>>)[] | null;
}

/**
 * The status URL from `--url`: as given when it names a file
 * (`…/status.json`), else with `status.json` appended to its path, so a bare
 * `http://host:8081` and a proxy prefix `https://host/tp-ws-admin/` both work.
 *
 * @throws TpWsError `TPWS_ERR_CONFIG_INVALID` when it is not an http(s) URL
 */
export function statusUrlFromFlag(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in --url: "${url}" is not a URL; give the admin listener's, e.g. http://127.0.0.1:8081`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in --url: must be http:// or https:// (the admin listener, e.g. http://127.0.0.1:8081), not ${u.protocol}//`);
  }
  if (!/\/[^/]+\.json$/.test(u.pathname)) u.pathname = `${u.pathname.replace(/\/*$/, '')}/status.json`;
  return u.href;
}

/**
 * The status URL of the configured admin listener,
 * `http://<admin.host>:<admin.port>/status.json`; a wildcard host (`0.0.0.0`,
 * `::`) is asked on loopback.
 *
 * @throws TpWsError `TPWS_ERR_CONNECT` when the admin listener is off (`-1`)
 *   or its port is chosen at start (`0`), so there is nothing to ask
 */
export function statusUrlFromConfig(admin: Config['admin']): string {
  const { host, port } = admin;
  if (port === -1) {
    throw new TpWsError('TPWS_ERR_CONNECT', 'cannot ask the daemon: its admin listener is disabled (admin.port is -1). Start the daemon with an admin port (TPWS_ADMIN_PORT, --admin-port; default 8081), or give --url');
  }
  if (port === 0) {
    throw new TpWsError('TPWS_ERR_CONNECT', 'cannot ask the daemon: admin.port is 0 (a free port chosen at start). Give --url with the port the daemon chose (admin_port in its "tp-ws started" log line), or --admin-port');
  }
  const ask = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${ask.includes(':') ? `[${ask}]` : ask}:${port}/status.json`;
}

/**
 * Fetch and parse the daemon's status document within `timeoutMs` (the
 * whole exchange, not each step). Node's http client rather than `fetch`:
 * fetch refuses the ports browsers block (6000, 6665–6669, 10080, …), which
 * an admin listener may well use.
 *
 * @throws TpWsError `TPWS_ERR_CONNECT` naming the URL and what to check
 *   when nothing answers, the answer is late, or it is not a tp-ws status
 */
export async function fetchStatus(url: string, timeoutMs = STATUS_TIMEOUT_MS): Promise<DaemonStatus> {
  const fail = (why: string, cause?: unknown) => new TpWsError('TPWS_ERR_CONNECT', `cannot read ${url}: ${why}`, { cause });
  // TLS is loaded only for an https URL: this module is imported by every tp-ws command, serve included.
  const get = url.startsWith('https:') ? (await import('node:https')).get : httpGet;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = get(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => reject(fail(describeRequestError(err, timeoutMs), err)));
    });
    req.on('error', (err) => reject(fail(describeRequestError(err, timeoutMs), err)));
  });
  if (status === 404) {
    throw fail('404 Not Found: no status page there; is this the admin listener (admin.port, not server.port)?');
  }
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // reported below
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body) || !('version' in body)) {
    throw fail(`HTTP ${status}: the answer is not a tp-ws status document; is this the daemon's admin listener (admin.host/admin.port)?`);
  }
  return body as DaemonStatus;
}

function describeRequestError(err: unknown, timeoutMs: number): string {
  const e = err as NodeJS.ErrnoException;
  if (e.name === 'AbortError' || e.name === 'TimeoutError') {
    return `no answer within ${timeoutMs / 1000} s: the daemon (or its host) is stuck, or a firewall drops the packets`;
  }
  if (e.code === 'ECONNREFUSED') {
    return 'ECONNREFUSED: nothing listens there. Is the daemon running? Is its admin listener on (admin.port is not -1) and at this address? Give --admin-host/--admin-port (or --url) as the daemon has them';
  }
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `${e.code}: the host name does not resolve`;
  return `${e.code ?? e.name}: ${e.message}`;
}

// ---------------------------------------------------------------------------
// The human table

const DASH = '-';

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function int(v: unknown): string {
  return isNum(v) ? Math.round(v).toLocaleString('en-US') : DASH;
}

function ms(v: unknown): string {
  if (!isNum(v)) return DASH;
  return `${v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')} ms`;
}

function perSec(v: number): string {
  return v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
}

function duration(s: unknown): string {
  if (!isNum(s)) return DASH;
  const t = Math.max(0, Math.floor(s));
  const d = Math.floor(t / 86400), h = Math.floor((t % 86400) / 3600), m = Math.floor((t % 3600) / 60), x = t % 60;
  if (d > 0) return `${d} d ${h} h ${m} min`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${x} s`;
  return `${x} s`;
}

function time(t: unknown): string {
  return isNum(t) ? new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : DASH;
}

/**
 * Text from the daemon, made safe for a terminal: control characters (an
 * error message could hold escape sequences) are shown as `\xNN`, and one
 * value stays on one line.
 */
function clean(v: unknown): string {
  if (v === null || v === undefined) return DASH;
  return String(v).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\n' ? ' ' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** Events and deliveries per second over the last minute of `history` (closed 5-second buckets). */
function lastMinuteRates(s: DaemonStatus): { events: number; deliveries: number; seconds: number } | null {
  const h = Array.isArray(s.history) ? s.history.filter((b) => isNum(b?.t)) : [];
  if (h.length === 0 || !isNum(s.now)) return null;
  const step = h.length >= 2 && h[1].t! > h[0].t! ? h[1].t! - h[0].t! : 5000;
  // Each bucket is closed and stamped with its end.
  const done = h.filter((b) => b.t! > s.now! - 60_000 - step / 2).slice(-Math.round(60_000 / step));
  if (done.length === 0) return null;
  let events = 0;
  let deliveries = 0;
  for (const b of done) {
    for (const k of SOURCES) events += isNum(b[k]) ? b[k] : 0;
    deliveries += isNum(b.deliveries) ? b.deliveries : 0;
  }
  const seconds = (done.length * step) / 1000;
  return { events: events / seconds, deliveries: deliveries / seconds, seconds };
}

/**
 * The human-readable status: one labelled line per area, readiness with its
 * failing checks, and the last errors (newest first, at most 5).
 */
export function renderStatus(s: DaemonStatus, url: string): string {
  const rows: [string, string][] = [];
  const row = (label: string, text: string) => rows.push([label, text]);
  const ready = s.ready?.ready;
  const state = ready === true ? 'ready' : ready === false ? 'NOT READY' : 'readiness unknown';
  const head = `tp-ws ${clean(s.version)} at ${url}: ${state}`;

  row('uptime', `${duration(s.uptime_s)} (since ${time(s.started_at)})`);
  const c = s.config ?? {};
  row('config', c.file ? clean(c.file) : 'no config file (defaults, TPWS_* environment, flags)');
  if (c.teampass_root) row('', `TeamPass install ${clean(c.teampass_root)}`);
  row('store', clean(c.store));
  row('listen', `${clean(c.listen)}${c.ingest_socket ? `, ingest socket ${clean(c.ingest_socket)}` : ', no ingest socket'}`);
  row('connections', `${int(s.connections)} (${int(s.users)} users; subscriptions: ${int(s.folder_subscriptions)} folders, ${int(s.kb_subscriptions)} kb)`);
  const ev = s.events ?? {};
  const total = SOURCES.reduce((n, k) => n + (isNum(ev[k]) ? ev[k]! : 0), 0);
  row('events', `${int(total)} since start: ${SOURCES.map((k) => `${k} ${int(ev[k])}`).join(', ')}`);
  row('deliveries', `${int(s.deliveries)} since start; ${int(s.duplicates)} duplicates dropped`);
  const rates = lastMinuteRates(s);
  if (rates !== null) row('rate', `${perSec(rates.events)} events/s, ${perSec(rates.deliveries)} deliveries/s (last ${Math.round(rates.seconds)} s)`);
  const lat = s.latency_ms ?? {};
  row('latency', isNum(lat.count) && lat.count > 0
    ? `p50 ${ms(lat.p50)}, p99 ${ms(lat.p99)} (${int(lat.count)} events in the last minute, creation to fan-out)`
    : 'no events in the last minute');
  const p = s.poller ?? {};
  if (p.enabled === false) row('poller', 'disabled (poller.enabled is false)');
  else {
    const role = p.holds_lock === true ? 'polling (holds the lock)' : p.holds_lock === false ? 'standing by (another daemon holds the lock)' : 'state unknown';
    row('poller', `${role}; backlog ${int(p.backlog)} rows, lag ${ms(p.lag_ms)}, last poll ${isNum(p.last_poll_ms_ago) ? `${ms(p.last_poll_ms_ago)} ago` : DASH}`);
  }
  const j = s.journal ?? {};
  row('journal', `queued ${int(j.queued)}, written ${int(j.written)}, write errors ${int(j.write_errors)}, dropped ${int(j.dropped)}${j.slow === true ? ', SLOW (writes fall behind)' : ''}`);
  const lag = s.event_loop_lag_ms ?? {};
  row('event loop', `lag p50 ${ms(lag.p50)}, p99 ${ms(lag.p99)}, max ${ms(lag.max)}`);
  const checks = s.ready?.checks ?? [];
  const failing = checks.filter((ch) => ch?.ok !== true);
  row('readiness', ready === true ? `ready (${checks.length} checks pass)` : ready === false ? `NOT READY: ${failing.length} of ${checks.length} checks fail` : DASH);
  for (const ch of failing) row('', `FAIL ${clean(ch?.name)}: ${clean(ch?.detail)}`);
  const errors = (Array.isArray(s.recent_errors) ? [...s.recent_errors] : []).sort((a, b) => (b?.time ?? 0) - (a?.time ?? 0));
  if (errors.length === 0) row('last errors', 'none');
  errors.slice(0, 5).forEach((e, i) => row(i === 0 ? 'last errors' : '', `${time(e?.time)} ${clean(e?.level)} ${clean(e?.msg)}${e?.code ? ` (${clean(e.code)})` : ''}`));
  if (errors.length > 5) row('', `(${errors.length - 5} more: tp-ws status --json, or the page at /)`);

  const width = Math.max(...rows.map(([l]) => l.length));
  return `${head}\n${rows.map(([l, t]) => `  ${l.padEnd(width)}  ${t}`).join('\n')}\n`;
}

/**
 * `tp-ws status`: ask the daemon's admin listener for `/status.json` and
 * print it as a table, or as JSON with `--json`.
 *
 * Exit codes: 0 the daemon is ready; 1 it answers but is not ready (the
 * failing checks are printed); 2 it could not be asked (`TPWS_ERR_CONNECT`,
 * naming the URL and what to check) or the flags are wrong.
 */
export async function runStatus(url: string, f: StatusFlags, io: StatusIo = {}): Promise<void> {
  const s = await fetchStatus(url);
  (io.stdout ?? process.stdout).write(f.json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s, url));
  process.exitCode = s.ready?.ready === true ? 0 : 1;
}

/**
 * Registers `status` on `program`: the config flags (for `admin.host` and
 * `admin.port`, read like every other command; with `--url` the
 * configuration is not read at all), `--url` and `--json`. Errors with a
 * tp-ws code are printed as one line (`TPWS_ERR_…: message`), exit code 2.
 *
 * @param program - the root `tp-ws` command
 * @param io - output streams (default: the process's)
 */
export function registerStatusCommand(program: Command, io: StatusIo = {}): void {
  addConfigOptions(program.command('status').description('ask the running daemon how it is (/status.json on its admin listener); exit 0 ready, 1 not ready, 2 unreachable'))
    .option('--url <url>', 'the admin listener to ask (default: http://<admin.host>:<admin.port>/status.json)')
    .option('--json', 'print the daemon\'s status document as JSON')
    .action(async (opts: Record<string, unknown>) => {
      try {
        const url = typeof opts.url === 'string' ? statusUrlFromFlag(opts.url) : statusUrlFromConfig(loadConfigFromCommand(opts).admin);
        await runStatus(url, { json: opts.json === true }, io);
      } catch (err) {
        if (!isTpWsError(err)) throw err;
        (io.stderr ?? process.stderr).write(`${err.code}: ${err.message}\n`);
        process.exitCode = 2;
      }
    });
}
