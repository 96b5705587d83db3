/**
 * `tp-ws replay`: re-send events from the events table (`websocket_events`)
 * to the browsers connected now.
 *
 * Rows are read from the store in pages (keyset by id, `PAGE_ROWS` a query),
 * so a table of millions never sits in memory, and sent one frame each,
 * pipelined, through the running daemon's ingest socket (docs/ingest.md,
 * `IngestClient`), marked `replay: true`. They take the daemon's normal path:
 * dedup by id, fan-out to the sockets that are subscribed and allowed now (a
 * replay never bypasses authorization), journal. The daemon counts them under
 * source `replay` and logs each one with the row it came from.
 *
 * The selection stops at the newest row id when the run starts: the rows that
 * the journal adds for the replayed events themselves are never selected by
 * the same run.
 */
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';

import type { Config } from '../config/schema.js';
import { TpWsError, isTpWsError } from '../errors.js';
import { IngestClient, type IngestAck } from '../ingest/client.js';
import { rowEventId } from '../ingest/table-poller.js';
import { ID_MAX, positiveInt } from '../int.js';
import { openConfiguredStore } from '../store/open-store.js';
import { parseStoreUrl, redactStoreUrl } from '../store/store-url.js';
import { PROCESSED, type ReplayFilter, type ReplayRow, type ReplayScope, type ReplayTarget, type Store } from '../store/store.js';
import { uuidv7 } from '../uuid.js';
import { addConfigOptions, loadConfigFromCommand } from './config-commands.js';

/**
 * Exit codes, in line with `tp-ws-emit` (docs/emit.md): 0 done, 1 some events
 * not sent, 2 nothing could start.
 */
export const REPLAY_EXIT = {
  /** Every selected event was sent (a duplicate counts as sent), or `--dry-run` listed them. */
  SENT: 0,
  /** Some events were not sent: refused by the daemon, or the run stopped (daemon or store gone). */
  FAILED: 1,
  /** Bad flags or configuration, or the store or the daemon could not be reached: nothing was sent. */
  USAGE: 2,
  /** Interrupted (SIGINT/SIGTERM) after the events in flight were acked; the summary says where to resume. */
  INTERRUPTED: 130,
} as const;

/** Rows per store query. */
const PAGE_ROWS = 1000;
/**
 * Frames written and not yet acked. Well under the daemon's own limit
 * (4,096, docs/ingest.md §Flow control), and enough to keep the socket busy
 * at any rate.
 */
const WINDOW = 256;
const DEFAULT_RATE = 100;
const DEFAULT_TIMEOUT_MS = 5000;

/** `processed` values by the name `--status` takes (store.ts `PROCESSED`). */
const STATUS: Readonly<Record<string, number>> = {
  pending: PROCESSED.PENDING,
  delivered: PROCESSED.DELIVERED,
  rejected: PROCESSED.REJECTED,
  expired: PROCESSED.EXPIRED,
};
const STATUS_NAMES = [...Object.keys(STATUS), 'any'];

const EVENT_TYPE_RE = /^[\x21-\x7e]{1,50}$/;
const TIME_HELP = 'give an ISO 8601 date or date-time (2025-11-20, 2025-11-20T14:00, 2025-11-20T14:00:00Z, 2025-11-20 14:00:00+01:00) or a duration before now (30s, 15m, 2h, 7d, 1w)';

export const HELP_AFTER = `
Selection (every flag narrows it; without any, every row of the table):
  ids are the events table's row ids (inclusive); --since is inclusive and
  --until exclusive, on created_at; --type and --target may be repeated (any
  of them matches); --status picks rows by their processed value: pending (0),
  delivered (1), rejected (2), expired (3), or any (the default). Rows are sent
  oldest id first; the selection ends at the newest row when the run starts.
  Times without an offset are in this machine's time zone.

Event ids:
  By default each replayed event gets a NEW id, so the daemon's dedup window
  does not drop it and clients that dedup by id see it as new. Payloads are
  sent as stored, byte for byte; the original row id is in the daemon's log
  line for each replayed event (replayed event accepted, replay_row_id).
  With --keep-ids the original event_uuid is reused: events still inside the
  daemon's dedup window (dedup.windowSec, default 1 h) are then dropped as
  duplicates, and clients that dedup by id ignore them. Rows with a NULL
  event_uuid (inserted by unchanged TeamPass PHP) get a deterministic id from
  the row id (row-<id>, the id the poller delivered them with).

Delivery:
  Events go through the running daemon's ingest socket (--socket) and reach
  only the sockets that are subscribed and allowed now: a folder event the
  current subscribers of that folder, a user event that user's sockets.
  Replayed events act again: a session_expired closes that user's sockets
  now, a folder_permission_changed re-reads their access; pick types with
  --type. Each event keeps its created_at (the timestamp clients see), and
  the daemon writes it to the table again as a new row (--keep-ids: not for
  an id already there); the selection of a later run includes those rows
  unless it pins --to-id (the summary gives through_id).
  --dry-run reads the table only and needs no daemon.

Output:
  A progress bar on a terminal; otherwise (or with --json) a final summary
  line only: selected, sent, duplicates (the daemon had the id already),
  failed (with their error codes), duration. Refused events are listed on
  stderr; --json prints one JSON line per event and a summary line on stdout.

Exit codes:
  0    every selected event was sent (duplicates count as sent), or the dry run listed them
  1    some events were not sent: refused by the daemon (codes in the summary), or the
       run stopped because the daemon or the store went away (the summary gives the
       --from-id and --to-id that resume it)
  2    bad flags or configuration, or the store or the daemon could not be reached;
       nothing was sent
  130  interrupted (Ctrl-C); the summary gives the --from-id and --to-id that resume it

Examples:
  tp-ws replay --since 15m --dry-run
  tp-ws replay --since 2h --target folder:12 --type item_updated
  tp-ws replay --from-id 120000 --to-id 120500 --rate 20
  tp-ws replay --since "2025-11-20 14:00" --until "2025-11-20 15:00" --status expired --json
`;

// ---------------------------------------------------------------------------
// Flags

/** `tp-ws replay`'s own flags, as commander gives them (strings, unvalidated). */
export interface ReplayFlags {
  fromId?: string;
  toId?: string;
  since?: string;
  until?: string;
  type?: string[];
  target?: string[];
  status?: string[];
  keepIds?: boolean;
  dryRun?: boolean;
  json?: boolean;
  rate?: string;
  limit?: string;
  timeout?: string;
}

/** The validated flags. */
export interface ReplayOptions {
  filter: ReplayFilter;
  keepIds: boolean;
  dryRun: boolean;
  json: boolean;
  /** Events per second; 0: unlimited. */
  rate: number;
  /** Most events to send; null: all. */
  limit: number | null;
  timeoutMs: number;
}

function usage(flag: string, rule: string): TpWsError {
  return new TpWsError('TPWS_ERR_CONFIG_INVALID', `in ${flag}: ${rule}`);
}

function idFlag(v: string | undefined, flag: string): number | null {
  if (v === undefined) return null;
  const n = positiveInt(v);
  if (n === null) throw usage(flag, `"${v}" must be a row id, an integer from 1 to ${ID_MAX}`);
  return n;
}

const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * A time for `--since`/`--until`, as epoch ms: an ISO 8601 date or date-time
 * (without an offset: local time), or a duration before `now` (`15m`).
 */
export function parseTime(value: string, flag: string, now = Date.now()): number {
  const v = value.trim();
  const rel = /^(\d{1,9})([smhdw])$/.exec(v);
  if (rel !== null) return now - Number(rel[1]) * UNIT_MS[rel[2]];
  const m = ISO_RE.exec(v);
  if (m === null) throw usage(flag, `"${value}" is not a time: ${TIME_HELP}`);
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => (m[i] === undefined ? 0 : Number(m[i])));
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  const offset = m[8];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    throw usage(flag, `"${value}" is not a valid date and time (year from 1970, month 1-12, a day of that month, 00:00:00-23:59:59)`);
  }
  let t: number;
  if (offset === undefined) {
    // No offset: this machine's time zone, for a date alone as for a date-time
    // (Date.parse would take a date alone as UTC and a date-time as local).
    t = new Date(year, month - 1, day, hour, minute, second, ms).getTime();
  } else {
    t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
    if (offset.toUpperCase() !== 'Z') {
      const o = /^([+-])(\d{2}):?(\d{2})?$/.exec(offset)!;
      const minutes = Number(o[2]) * 60 + Number(o[3] ?? 0);
      if (Number(o[2]) > 23 || Number(o[3] ?? 0) > 59) throw usage(flag, `"${value}": the offset ${offset} is not one (-23:59 to +23:59)`);
      t -= (o[1] === '+' ? 1 : -1) * minutes * 60_000;
    }
  }
  return t;
}

function parseTarget(v: string): ReplayTarget {
  const t = v.trim();
  if (t === 'kb' || t === 'broadcast') return { type: t };
  const m = /^(user|folder):(.*)$/.exec(t);
  if (m === null) throw usage('--target', `"${v}" must be user:ID, folder:ID, kb or broadcast`);
  const id = positiveInt(m[2]);
  if (id === null) throw usage('--target', `"${v}": the ${m[1]} id must be an integer from 1 to ${ID_MAX}`);
  return { type: m[1] as 'user' | 'folder', id };
}

function parseStatuses(list: readonly string[] | undefined): number[] {
  if (list === undefined) return [];
  const out = new Set<number>();
  for (const s of list) {
    const name = s.trim().toLowerCase();
    if (name === 'any') return [];
    const n = STATUS[name];
    if (n === undefined) throw usage('--status', `"${s}" must be one of ${STATUS_NAMES.join(', ')}`);
    out.add(n);
  }
  return [...out].sort();
}

function parseRate(v: string | undefined): number {
  if (v === undefined) return DEFAULT_RATE;
  if (!/^\d{1,7}(\.\d{1,3})?$/.test(v.trim()) || Number(v) > 1_000_000) {
    throw usage('--rate', `"${v}" must be a number of events per second from 0 to 1000000 (0: unlimited; default ${DEFAULT_RATE})`);
  }
  return Number(v);
}

function parseTimeout(v: string | undefined): number {
  if (v === undefined) return DEFAULT_TIMEOUT_MS;
  const n = positiveInt(v, 600_000);
  if (n === null) throw usage('--timeout', `"${v}" must be a number of milliseconds from 1 to 600000 (default ${DEFAULT_TIMEOUT_MS})`);
  return n;
}

/** Validate every flag; throws `TPWS_ERR_CONFIG_INVALID` naming the flag and its rule. */
export function parseReplayFlags(f: ReplayFlags, now = Date.now()): ReplayOptions {
  const fromId = idFlag(f.fromId, '--from-id');
  const toId = idFlag(f.toId, '--to-id');
  if (fromId !== null && toId !== null && toId < fromId) throw usage('--to-id', `${toId} is below --from-id ${fromId}: the range would be empty`);
  const since = f.since === undefined ? null : parseTime(f.since, '--since', now);
  const until = f.until === undefined ? null : parseTime(f.until, '--until', now);
  if (since !== null && until !== null && until <= since) {
    throw usage('--until', `${new Date(until).toISOString()} is not after --since ${new Date(since).toISOString()}: the window would be empty`);
  }
  const eventTypes = [...new Set(f.type ?? [])];
  for (const t of eventTypes) {
    if (!EVENT_TYPE_RE.test(t)) throw usage('--type', `"${t}" must be an event_type: 1-50 ASCII characters from ! to ~, no spaces (e.g. item_updated)`);
  }
  const targets = (f.target ?? []).map(parseTarget);
  const statuses = parseStatuses(f.status);
  let limit: number | null = null;
  if (f.limit !== undefined) {
    limit = positiveInt(f.limit);
    if (limit === null) throw usage('--limit', `"${f.limit}" must be a number of events from 1 to ${ID_MAX}`);
  }
  return {
    filter: { fromId, toId, since, until, eventTypes, targets, statuses },
    keepIds: f.keepIds === true,
    dryRun: f.dryRun === true,
    json: f.json === true,
    rate: parseRate(f.rate),
    limit,
    timeoutMs: parseTimeout(f.timeout),
  };
}

// ---------------------------------------------------------------------------
// Rate

/**
 * A token bucket: `rate` tokens a second, at most `burst` saved up. Starts
 * full. The clock is injectable (tests).
 */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(readonly rate: number, readonly burst: number, private readonly now: () => number = () => performance.now()) {
    if (!(rate > 0) || !(burst >= 1)) throw new TpWsError('TPWS_ERR_INTERNAL', `TokenBucket: rate must be > 0 and burst ≥ 1 (got ${rate}, ${burst})`);
    this.#tokens = burst;
    this.#last = now();
  }

  /** Milliseconds until a token is there (0: now). */
  delay(): number {
    const t = this.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) * this.rate) / 1000);
    this.#last = t;
    return this.#tokens >= 1 ? 0 : ((1 - this.#tokens) * 1000) / this.rate;
  }

  /** Take a token when one is there; false otherwise (nothing taken). */
  tryTake(): boolean {
    if (this.delay() > 0) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Wait for a token and take it. Rejects with the signal's reason when aborted. */
  async take(signal?: AbortSignal): Promise<void> {
    while (!this.tryTake()) await sleep(Math.max(1, Math.ceil(this.delay())), undefined, { signal });
  }
}

/** Saved-up events of a bucket for `rate`: a tenth of a second's worth, so a replay reaches browsers as a steady flow. */
export function burstFor(rate: number): number {
  return Math.max(1, Math.ceil(rate / 10));
}

// ---------------------------------------------------------------------------
// Reading the table

function targetLabel(row: ReplayRow): string {
  return row.targetType === 'user' || row.targetType === 'folder' ? `${row.targetType}:${row.targetId ?? 'null'}` : row.targetType;
}

function statusLabel(p: number | null): string {
  const name = Object.keys(STATUS).find((k) => STATUS[k] === p);
  return name ?? String(p);
}

/**
 * The selected rows, in id order, a page at a time; the next page is read
 * while this one is sent. At most two pages in memory.
 */
async function* selectedRows(store: Store, filter: ReplayFilter, throughId: number, limit: number): AsyncGenerator<ReplayRow> {
  let left = limit;
  const fetch = (after: number) => store.selectReplayEvents(filter, after, throughId, Math.min(PAGE_ROWS, left));
  let next: Promise<ReplayRow[]> | null = fetch(0);
  try {
    while (next !== null) {
      const page: ReplayRow[] = await next;
      const full = page.length === Math.min(PAGE_ROWS, left);
      left -= page.length;
      next = full && left > 0 && page.length > 0 ? fetch(page[page.length - 1].rowId) : null;
      for (const row of page) yield row;
    }
  } finally {
    // Stopped early: a page still being read must not become an unhandled rejection.
    next?.catch(() => undefined);
  }
}

/** Open the configured store for reading, with errors that say what to fix. */
async function openReadStore(cfg: Readonly<Config>): Promise<Store> {
  const parsed = parseStoreUrl(cfg.store.url);
  // Opening a missing SQLite file would create an empty one: say where the daemon's store is instead.
  if (parsed.kind === 'sqlite' && parsed.path !== ':memory:' && !existsSync(parsed.path)) {
    throw new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `no store at ${redactStoreUrl(cfg.store.url)}: give replay the daemon's --store (or its --state-dir, TPWS_STORE)`);
  }
  return openConfiguredStore(cfg);
}

/** A store failure, with the fix (a missing events table: wrong prefix, or no migration yet). */
function storeFailure(err: unknown, cfg: Readonly<Config>): TpWsError {
  if (!isTpWsError(err)) return new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `${redactStoreUrl(cfg.store.url)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const noTable = cause?.code === 'ER_NO_SUCH_TABLE' || (typeof cause?.message === 'string' && cause.message.includes('no such table'));
  if (noTable) {
    return new TpWsError('TPWS_ERR_STORE_UNAVAILABLE', `no table ${cfg.store.tablePrefix}websocket_events in ${redactStoreUrl(cfg.store.url)}: give replay the daemon's --table-prefix and --store, or run tp-ws migrate`, { cause: err });
  }
  if (err.code === 'TPWS_ERR_STORE_UNAVAILABLE') {
    return new TpWsError(err.code, `${err.message}; check the store (--store, TPWS_STORE) and its password (--store-password-file, TPWS_STORE_PASSWORD)`, { cause: err });
  }
  return err;
}

// ---------------------------------------------------------------------------
// Output

interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Both stdout and stderr are terminals: a progress bar may be drawn. */
  tty: boolean;
}

interface Tally {
  /** Rows matching the selection (with `--limit`: at most that many). */
  selected: number;
  /** The newest row id when the run started: the selection's end (rows journaled by the run come after it). */
  throughId: number;
  sent: number;
  duplicates: number;
  failed: number;
  failures: Record<string, number>;
  /** Why the run ended before the last row, and where to pick it up. */
  stopped: { reason: 'interrupted' | 'error'; code?: string; message: string; resumeFromId: number | null; unacked: number } | null;
}

function formatDuration(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 3_600_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 3_600_000).toFixed(1)} h`;
}

function summaryJson(t: Tally, o: ReplayOptions, durationMs: number): string {
  const s: Record<string, unknown> = {
    selected: t.selected,
    through_id: t.throughId,
    sent: t.sent,
    duplicates: t.duplicates,
    failed: t.failed,
    failures: t.failures,
    duration_ms: Math.round(durationMs),
    keep_ids: o.keepIds,
    dry_run: o.dryRun,
  };
  if (t.stopped !== null) {
    s.stopped = {
      reason: t.stopped.reason,
      ...(t.stopped.code === undefined ? {} : { code: t.stopped.code }),
      message: t.stopped.message,
      resume_from_id: t.stopped.resumeFromId,
      unacked: t.stopped.unacked,
    };
  }
  return `${JSON.stringify({ summary: s })}\n`;
}

function summaryHuman(t: Tally, o: ReplayOptions, durationMs: number): string {
  if (o.dryRun) return `replay --dry-run: ${t.selected} event${t.selected === 1 ? '' : 's'} would be sent${o.keepIds ? ' with their original ids' : ' with new ids'}; nothing sent (${formatDuration(durationMs)})\n`;
  const codes = Object.entries(t.failures).map(([c, n]) => `${c} ×${n}`).join(', ');
  let line = `replay: ${t.selected} selected, ${t.sent} sent, ${t.duplicates} duplicate${t.duplicates === 1 ? '' : 's'}, ${t.failed} failed${codes ? ` (${codes})` : ''}, in ${formatDuration(durationMs)}\n`;
  if (t.stopped !== null) {
    const resume = t.stopped.resumeFromId === null ? '' : `; resume with --from-id ${t.stopped.resumeFromId} --to-id ${t.throughId} (and the same other flags; --to-id keeps out the rows this run added to the table)`;
    const unacked = t.stopped.unacked === 0 ? '' : `; ${t.stopped.unacked} event${t.stopped.unacked === 1 ? '' : 's'} without an ack may or may not have been delivered (counted as failed)`;
    const what = t.stopped.reason === 'interrupted' ? 'interrupted' : `stopped: ${t.stopped.code}: ${t.stopped.message}`;
    line += `replay ${what}${unacked}${resume}\n`;
  }
  return line;
}

// ---------------------------------------------------------------------------
// The run

/** One waiter at a time, woken by the other side of the pipeline. */
class Wakeup {
  #resolve: (() => void) | null = null;

  wait(): Promise<void> {
    return new Promise((resolve) => (this.#resolve = resolve));
  }

  wake(): void {
    const resolve = this.#resolve;
    this.#resolve = null;
    resolve?.();
  }
}

interface InFlight {
  row: ReplayRow;
  id: string;
}

/** The frame of one row (docs/ingest.md §Frames): the stored payload text as is, the original created_at, marked as a replay. */
function frameOf(row: ReplayRow, id: string): Record<string, unknown> {
  const frame: Record<string, unknown> = { id, event_type: row.eventType, target_type: row.targetType };
  if (row.targetId !== null) frame.target_id = row.targetId;
  frame.payload = row.payload;
  frame.created_at = row.createdAt;
  frame.replay = true;
  frame.replay_row_id = row.rowId;
  return frame;
}

function connectError(path: string, err: unknown): TpWsError {
  const reason = err instanceof Error ? err.message : String(err);
  return new TpWsError(
    'TPWS_ERR_CONNECT',
    `cannot reach the daemon's ingest socket ${path}: ${reason}. Start the daemon (tp-ws serve), or give replay the daemon's --socket (or its --state-dir, TPWS_SOCKET); --dry-run needs no daemon`,
    { cause: err },
  );
}

/**
 * Run a replay with validated options; resolves with the exit code
 * (`REPLAY_EXIT`). Throws `TpWsError` (exit 2) when nothing could start:
 * the store or the daemon cannot be reached.
 */
export async function runReplay(cfg: Readonly<Config>, o: ReplayOptions, io: Io): Promise<number> {
  const t0 = performance.now();
  const socketPath = cfg.ingest.socket;
  if (!o.dryRun && socketPath === '') {
    throw new TpWsError('TPWS_ERR_CONFIG_INVALID', 'in ingest.socket: empty (the ingest socket is disabled), and replay sends through the daemon\'s ingest socket: give --socket PATH (TPWS_SOCKET), or use --dry-run');
  }

  // The daemon first: when it is down, fail before reading anything.
  let client: IngestClient | null = null;
  if (!o.dryRun) {
    try {
      client = await IngestClient.connect(socketPath, { timeoutMs: o.timeoutMs });
    } catch (err) {
      throw connectError(socketPath, err);
    }
  }

  let store: Store | null = null;
  try {
    store = await openReadStore(cfg);
    let scope: ReplayScope;
    try {
      scope = await store.countReplayEvents(o.filter);
    } catch (err) {
      throw storeFailure(err, cfg);
    }
    const limit = o.limit ?? Number.MAX_SAFE_INTEGER;
    // A --to-id below the head is the end already.
    const throughId = o.filter.toId == null ? scope.headId : Math.min(o.filter.toId, scope.headId);
    const tally: Tally = { selected: Math.min(scope.count, limit), throughId, sent: 0, duplicates: 0, failed: 0, failures: {}, stopped: null };
    const rows = selectedRows(store, o.filter, scope.headId, limit);
    const code = client === null ? await listRows(rows, o, io, tally, cfg) : await sendRows(rows, client, o, io, tally, cfg);
    io[o.json ? 'out' : 'err'](o.json ? summaryJson(tally, o, performance.now() - t0) : summaryHuman(tally, o, performance.now() - t0));
    return code;
  } finally {
    client?.destroy();
    await store?.close().catch(() => undefined);
  }
}

/** `--dry-run`: one line per row that would be sent. */
async function listRows(rows: AsyncGenerator<ReplayRow>, o: ReplayOptions, io: Io, tally: Tally, cfg: Readonly<Config>): Promise<number> {
  let n = 0;
  try {
    for await (const row of rows) {
      n++;
      const id = o.keepIds ? rowEventId(row) : null;
      const created = new Date(row.createdAt).toISOString();
      const bytes = Buffer.byteLength(row.payload);
      if (o.json) {
        io.out(`${JSON.stringify({ row_id: row.rowId, event_uuid: row.eventUuid, id, created_at: created, event_type: row.eventType, target: targetLabel(row), status: statusLabel(row.processed), payload_bytes: bytes })}\n`);
      } else {
        io.out(`row ${row.rowId}  ${created}  ${row.eventType}  ${targetLabel(row)}  ${statusLabel(row.processed)}  ${bytes} B  ${id === null ? 'new id' : `id ${id}`}\n`);
      }
    }
  } catch (err) {
    throw storeFailure(err, cfg);
  }
  tally.selected = n;
  return REPLAY_EXIT.SENT;
}

/**
 * Send every row, pipelined: a producer writes frames (paced by the token
 * bucket, at most `WINDOW` unacked) while a consumer takes the acks in order.
 */
async function sendRows(rows: AsyncGenerator<ReplayRow>, client: IngestClient, o: ReplayOptions, io: Io, tally: Tally, cfg: Readonly<Config>): Promise<number> {
  const bucket = o.rate > 0 ? new TokenBucket(o.rate, burstFor(o.rate)) : null;
  const stop = new AbortController();
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(REPLAY_EXIT.INTERRUPTED); // a second Ctrl-C: at once
    interrupted = true;
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Loaded only for a progress bar: `tp-ws serve` shares this module's imports and should not carry it.
  const cliProgress = io.tty && !o.json ? (await import('cli-progress')).default : null;
  const bars = cliProgress !== null ? new cliProgress.MultiBar({
    stream: process.stderr,
    format: 'replay {bar} {value}/{total} | sent {sent} | duplicates {duplicates} | failed {failed} | eta {eta_formatted}',
    hideCursor: true,
    etaBuffer: 200,
  }, cliProgress.Presets.shades_classic) : null;
  const bar = bars?.create(tally.selected, 0, { sent: 0, duplicates: 0, failed: 0 }) ?? null;
  const note = (text: string): void => (bars !== null ? bars.log(text) : io.err(text));

  const inflight: (InFlight | undefined)[] = [];
  let head = 0;
  let producing = true;
  let fatal: TpWsError | null = null;
  const consumerWake = new Wakeup();
  const producerWake = new Wakeup();
  /** The row read and not sent yet (the resume point when nothing is in flight), and the last row sent. */
  let nextRowId: number | null = null;
  let lastSentRowId: number | null = null;
  /** Every selected row was written. */
  let completed = false;
  /** The first row the daemon refused as unavailable (stopping): not taken, so a resume starts there. */
  let firstNotTaken: number | null = null;

  const settle = (f: InFlight, ack: IngestAck): void => {
    const r = ack as { ok: boolean; seq?: number; duplicate?: boolean; journal?: string; error?: { code?: unknown; message?: unknown } };
    const base = { row_id: f.row.rowId, event_uuid: f.row.eventUuid, id: f.id, event_type: f.row.eventType, target: targetLabel(f.row) };
    if (r.ok) {
      if (r.duplicate === true) tally.duplicates++;
      else tally.sent++;
      if (o.json) io.out(`${JSON.stringify({ ...base, ok: true, seq: r.seq ?? 0, ...(r.duplicate === true ? { duplicate: true } : {}), ...(typeof r.journal === 'string' ? { journal: r.journal } : {}) })}\n`);
    } else {
      const code = typeof r.error?.code === 'string' ? r.error.code : 'TPWS_ERR_INTERNAL';
      const message = typeof r.error?.message === 'string' ? r.error.message : 'refused by the daemon';
      fail(f, code, message);
      if (code === 'TPWS_ERR_UNAVAILABLE') {
        // The daemon is stopping: it did not take this event and will not take the next.
        firstNotTaken ??= f.row.rowId;
        fatal ??= new TpWsError('TPWS_ERR_UNAVAILABLE', message);
        stop.abort();
      }
    }
    bar?.update(tally.sent + tally.duplicates + tally.failed, { sent: tally.sent, duplicates: tally.duplicates, failed: tally.failed });
  };
  const fail = (f: InFlight, code: string, message: string): void => {
    tally.failed++;
    tally.failures[code] = (tally.failures[code] ?? 0) + 1;
    const status = statusLabel(f.row.processed);
    if (o.json) io.out(`${JSON.stringify({ row_id: f.row.rowId, event_uuid: f.row.eventUuid, id: f.id, event_type: f.row.eventType, target: targetLabel(f.row), ok: false, error: { code, message } })}\n`);
    else note(`row ${f.row.rowId} (${f.row.eventType} ${targetLabel(f.row)}, ${status}): not sent: ${code}: ${message}\n`);
  };

  const consumer = (async () => {
    try {
      for (;;) {
        if (head === inflight.length) {
          if (!producing) return;
          await consumerWake.wait();
          continue;
        }
        let ack: IngestAck;
        try {
          ack = await client.nextAck();
        } catch (err) {
          fatal ??= isTpWsError(err) ? err : new TpWsError('TPWS_ERR_UNAVAILABLE', String(err));
          stop.abort();
          return;
        }
        const f = inflight[head] as InFlight;
        inflight[head++] = undefined;
        if (head === inflight.length) {
          inflight.length = 0;
          head = 0;
        }
        settle(f, ack);
        producerWake.wake();
      }
    } finally {
      producerWake.wake();
    }
  })();

  try {
    for await (const row of rows) {
      nextRowId = row.rowId;
      if (bucket !== null) await bucket.take(stop.signal);
      while (inflight.length - head >= WINDOW && fatal === null && !stop.signal.aborted) await producerWake.wait();
      if (fatal !== null || stop.signal.aborted) break;
      const f: InFlight = { row, id: o.keepIds ? rowEventId(row) : uuidv7() };
      client.send(frameOf(row, f.id));
      inflight.push(f);
      nextRowId = null;
      lastSentRowId = row.rowId;
      consumerWake.wake();
    }
    completed = fatal === null && !stop.signal.aborted;
  } catch (err) {
    // An abort (Ctrl-C, or the consumer saw the connection fail) or a store failure.
    if (!stop.signal.aborted) fatal ??= storeFailure(err, cfg);
  } finally {
    producing = false;
    consumerWake.wake();
  }
  await consumer;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);

  // What is still in flight has no ack: it may or may not have been delivered.
  const unacked = inflight.slice(head) as InFlight[];
  // Interrupted once every row was written and acked: nothing was cut short.
  if (completed && unacked.length === 0 && fatal === null) interrupted = false;
  if (fatal !== null || interrupted) {
    for (const f of unacked) fail(f, fatal?.code ?? 'TPWS_ERR_UNAVAILABLE', `no ack (${fatal?.message ?? 'interrupted'}): may or may not have been delivered`);
    const resumeFromId = firstNotTaken ?? unacked[0]?.row.rowId ?? nextRowId ?? (completed ? null : lastSentRowId === null ? null : lastSentRowId + 1);
    tally.stopped = fatal !== null
      ? { reason: 'error', code: fatal.code, message: fatal.message, resumeFromId, unacked: unacked.length }
      : { reason: 'interrupted', message: 'interrupted', resumeFromId, unacked: unacked.length };
  }
  bars?.stop();
  if (interrupted && fatal === null) return REPLAY_EXIT.INTERRUPTED;
  return tally.failed > 0 || fatal !== null ? REPLAY_EXIT.FAILED : REPLAY_EXIT.SENT;
}

// ---------------------------------------------------------------------------
// The command

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/**
 * Register `tp-ws replay` on `program`. Usage errors (an unknown flag, a
 * missing value) exit 2 as `TPWS_ERR_CONFIG_INVALID`, like a bad flag value.
 */
export function registerReplayCommand(program: Command): Command {
  const cmd = addConfigOptions(
    program.command('replay').description("re-send events from the events table to the browsers connected now, through the daemon's ingest socket"),
  )
    .option('--from-id <id>', 'first row id of the events table (inclusive)')
    .option('--to-id <id>', 'last row id (inclusive)')
    .option('--since <time>', 'rows created at or after this time: ISO 8601 (2025-11-20T14:00:00Z) or a duration before now (15m, 2h, 7d)')
    .option('--until <time>', 'rows created before this time (same forms as --since)')
    .option('--type <event_type>', 'only this event_type (repeatable)', collect)
    .option('--target <target>', 'only this target: user:ID, folder:ID, kb or broadcast (repeatable)', collect)
    .option('--status <status>', `only rows with this processed status: ${STATUS_NAMES.join(', ')} (repeatable; default any)`, collect)
    .option('--keep-ids', 'reuse the original event ids (see Event ids below); default: a new id for each event')
    .option('--dry-run', 'list what would be sent (row id, created_at, type, target, status, payload size); send nothing')
    .option('--json', 'one JSON line per event and a summary line, on stdout')
    .option('--rate <n>', `events per second, 0 for unlimited (default ${DEFAULT_RATE})`)
    .option('--limit <n>', 'send at most this many events')
    .option('--timeout <ms>', `how long to wait for each ack of the daemon (default ${DEFAULT_TIMEOUT_MS})`)
    .addHelpText('after', HELP_AFTER)
    .action(async (opts: ReplayFlags & Record<string, unknown>) => {
      const options = parseReplayFlags(opts);
      const cfg = loadConfigFromCommand(opts);
      process.exitCode = await runReplay(cfg, options, {
        out: (text) => process.stdout.write(text),
        err: (text) => process.stderr.write(text),
        tty: process.stdout.isTTY === true && process.stderr.isTTY === true,
      });
    });
  return cmd;
}
