/**
 * `tp-ws-emit`: publish events from a shell, cron or PHP `exec()`.
 *
 *   tp-ws-emit EVENT_TYPE (--user ID | --folder ID | --kb | --broadcast) [--payload JSON|@FILE] …
 *   tp-ws-emit --stdin < events.ndjson
 *
 * The event goes to the daemon's ingest socket (docs/ingest.md, NDJSON
 * framing, through `IngestClient`); when no ack comes (no socket, refused,
 * timeout, daemon shutting down) it is written to the events table instead,
 * with the same id, for the daemon's poller. docs/emit.md is the manual.
 *
 * Cold start is the budget here (this runs once per event from cron and PHP):
 * the top-level imports are node built-ins and the small pure modules (config,
 * event validation, UUIDv7, the ingest client, which loads msgpackr only for
 * msgpack and so never here). The store drivers (better-sqlite3, mysql2) are
 * `import()`ed only on the table fallback path, and nothing logs through pino.
 */
import { readFileSync } from 'node:fs';
// node:util parseArgs, not commander: it is built in (nothing more to load at
// start-up, commander alone costs a few ms of module loading) and this command
// has one flat set of flags, no sub-commands, so commander's extras buy nothing.
import { parseArgs } from 'node:util';

import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { TpWsError, isTpWsError } from '../errors.js';
import { EventInvalid, parseEvent, type BridgeEvent } from '../event.js';
import { IngestClient, isBatchAck, type IngestAck } from '../ingest/client.js';
import type { CommandStore } from '../store/command-store.js';
import { redactStoreUrl } from '../store/store-url.js';
import { uuidv7 } from '../uuid.js';

/** Exit codes; a shell script branches on them (docs/emit.md). */
export const EXIT = {
  /** Delivered through the ingest socket. */
  DELIVERED: 0,
  /** Neither the socket nor the table took the event. */
  FAILED: 1,
  /** Invalid input: bad flags, bad JSON, validation failure, error ack. */
  INVALID: 2,
  /** Written to the events table; the daemon's poller will deliver it. */
  STORED: 3,
} as const;

/** Worst first: a run's exit code is the worst outcome of its events. */
const SEVERITY: Record<number, number> = { [EXIT.DELIVERED]: 0, [EXIT.STORED]: 1, [EXIT.INVALID]: 2, [EXIT.FAILED]: 3 };

const DEFAULT_TIMEOUT_MS = 1000;
/** Most events per batch frame (docs/ingest.md: `ingest.maxBatchEvents`, default 1,000). */
const MAX_BATCH = 1000;

/** Error codes of an ack that mean "the input is wrong": never retried through the table. */
const INVALID_ACK_CODES: ReadonlySet<string> = new Set([
  'TPWS_ERR_INVALID_EVENT',
  'TPWS_ERR_BAD_FRAME',
  'TPWS_ERR_FRAME_TOO_LARGE',
  'TPWS_ERR_BATCH_TOO_LARGE',
]);

export const USAGE = `Usage:
  tp-ws-emit EVENT_TYPE (--user ID | --folder ID | --kb | --broadcast) [options]
  tp-ws-emit --stdin [options] < events.ndjson

Publish an event to the tp-ws daemon through its ingest socket; when the
socket does not answer, write it to the events table for the daemon's poller.

Target (exactly one, not with --stdin):
  --user ID             every socket of user ID
  --folder ID           the subscribers of folder ID
  --kb                  the knowledge-base subscribers
  --broadcast           every connected user

Event:
  --payload JSON        the event data, a JSON object (default {})
  --payload @FILE       read the JSON object from FILE
  --exclude-user ID     skip this user's sockets (folder, kb, broadcast)
  --id ID               event id, 1-64 of [A-Za-z0-9._:-] (default: a new UUIDv7)
  --stdin               read events from stdin, one JSON object per line:
                        {"event_type":…,"target_type":…,"target_id":…,"payload":{…}}

Where to:
  --socket PATH         ingest socket (default: ingest.socket, TPWS_SOCKET)
  --store URL           events table for the fallback: sqlite:PATH or
                        mysql://user:pass@host:port/db (default: store.url, TPWS_STORE)
  --table-prefix P      table prefix (default: store.tablePrefix, teampass_)
  --config FILE         tp-ws JSON config file to read these from
  --timeout MS          how long to wait for the daemon's ack (default ${DEFAULT_TIMEOUT_MS})

Output:
  --json                one JSON object per event on stdout
  -q, --quiet           print nothing for events that were sent or stored
  -h, --help            this help

Exit codes (with --stdin: the worst over all events, 1 > 2 > 3 > 0):
  0  delivered through the socket (a duplicate id counts as delivered)
  3  stored in the events table; the daemon's poller will deliver it
  2  invalid input (bad flags, bad JSON, rejected by validation); nothing sent
  1  not sent: the socket and the table both failed
`;

// ---------------------------------------------------------------------------
// Results

type Outcome =
  | { kind: 'socket'; id: string; seq: number; duplicate: boolean; journal?: string }
  | { kind: 'table'; id: string; rowId: number | null; duplicate: boolean; socketReason: string }
  | { kind: 'invalid'; id?: string; code: string; message: string }
  | { kind: 'failed'; id?: string; code: string; message: string };

function exitCodeOf(o: Outcome): number {
  switch (o.kind) {
    case 'socket':
      return EXIT.DELIVERED;
    case 'table':
      return EXIT.STORED;
    case 'invalid':
      return EXIT.INVALID;
    case 'failed':
      return EXIT.FAILED;
  }
}

function toJson(o: Outcome, line: number | undefined): Record<string, unknown> {
  const at = line === undefined ? {} : { line };
  switch (o.kind) {
    case 'socket':
      return { ok: true, ...at, path: 'socket', id: o.id, seq: o.seq, ...(o.duplicate ? { duplicate: true } : {}), ...(o.journal ? { journal: o.journal } : {}) };
    case 'table':
      return { ok: true, ...at, path: 'table', id: o.id, row_id: o.rowId, ...(o.duplicate ? { duplicate: true } : {}) };
    case 'invalid':
    case 'failed':
      return { ok: false, ...at, ...(o.id !== undefined ? { id: o.id } : {}), error: { code: o.code, message: o.message } };
  }
}

function toHuman(o: Outcome): string {
  switch (o.kind) {
    case 'socket':
      return `delivered via socket: id=${o.id} seq=${o.seq}${o.duplicate ? ' (duplicate: already delivered)' : ''}${o.journal ? ` journal=${o.journal}` : ''}`;
    case 'table':
      return o.duplicate
        ? `stored in table for the poller: id=${o.id} (duplicate: the daemon already has it) (socket: ${o.socketReason})`
        : `stored in table for the poller: id=${o.id} row=${o.rowId} (socket: ${o.socketReason})`;
    case 'invalid':
      return `invalid: ${o.code}: ${o.message}${o.id !== undefined ? ` (id=${o.id})` : ''}`;
    case 'failed':
      return `not sent: ${o.code}: ${o.message}${o.id !== undefined ? ` (id=${o.id})` : ''}`;
  }
}

// ---------------------------------------------------------------------------
// Building events

/** One event to send, and once known, what happened to it. */
interface Item {
  /** stdin line number (1-based); undefined for the flag form. */
  line?: number;
  event: BridgeEvent;
  /** The event as it goes on the wire (docs/ingest.md field names). */
  wire: Record<string, unknown>;
  /** `created_at` given by the sender (the table then stores it); undefined: the database's now. */
  createdAt?: number;
  outcome?: Outcome;
  /** Why the socket did not take it (set when it falls back to the table). */
  fallbackReason?: string;
}

/** Flag names for validation messages of the flag form. */
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  event_type: 'EVENT_TYPE',
  target_id: 'the target id',
  exclude_user_id: '--exclude-user',
  'payload.exclude_user_id': '--payload exclude_user_id',
  id: '--id',
  payload: '--payload',
};

function buildItem(input: unknown, limits: { maxPayloadBytes: number }, line?: number): Item {
  // parseEvent takes PHP's `[]` payload as {} (docs/ingest.md).
  const event = parseEvent(input, limits, uuidv7);
  const given = (input as Record<string, unknown>).created_at;
  const createdAt = typeof given === 'number' ? event.createdAt : undefined;
  const wire: Record<string, unknown> = { id: event.id, event_type: event.eventType, target_type: event.targetType };
  if (event.targetId !== null) wire.target_id = event.targetId;
  wire.payload = event.payload;
  if (event.excludeUserId !== null) wire.exclude_user_id = event.excludeUserId;
  if (createdAt !== undefined) wire.created_at = createdAt;
  return { line, event, wire, createdAt };
}

function readPayload(spec: string | undefined): unknown {
  if (spec === undefined) return undefined;
  let text = spec;
  let where = '--payload';
  if (spec.startsWith('@')) {
    const file = spec.slice(1);
    where = `--payload @${file}`;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new TpWsError('TPWS_ERR_INVALID_EVENT', `${where}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TpWsError('TPWS_ERR_INVALID_EVENT', `${where}: not valid JSON (${(err as Error).message})`);
  }
}

// ---------------------------------------------------------------------------
// The socket path

/** What the socket did with each frame: outcomes set on the items, or `fallbackReason`. */
async function sendViaSocket(path: string, frames: Item[][], single: boolean, timeoutMs: number): Promise<void> {
  // Frames without an ack may or may not have reached the daemon: the table
  // fallback carries the same id, so the daemon de-duplicates either way.
  const fallBackFrom = (first: number, reason: string): void => {
    for (let i = first; i < frames.length; i++) for (const it of frames[i]) it.fallbackReason = reason;
  };
  let client: IngestClient;
  try {
    client = await IngestClient.connect(path, { timeoutMs });
  } catch (err) {
    fallBackFrom(0, (err as Error).message);
    return;
  }
  try {
    // Pipelined: every frame in one write, acks taken as they come (the daemon
    // stops reading while too many acks are unread, and the client always reads).
    client.sendAll(frames.map((f) => (single ? f[0].wire : f.map((i) => i.wire))));
    for (let i = 0; i < frames.length; i++) {
      let ack: IngestAck;
      try {
        ack = await client.nextAck();
      } catch (err) {
        fallBackFrom(i, (err as Error).message);
        return;
      }
      if (!applyAck(ack, frames[i], single)) {
        fallBackFrom(i, 'the daemon answered with an unexpected ack');
        return;
      }
    }
  } finally {
    client.destroy();
  }
}

interface AckError {
  code?: unknown;
  message?: unknown;
}

/** Apply one ack to one event; false when it is not an ack at all. */
function applyResult(r: unknown, it: Item): boolean {
  if (typeof r !== 'object' || r === null) return false;
  const ack = r as { ok?: unknown; id?: unknown; seq?: unknown; duplicate?: unknown; journal?: unknown; error?: AckError };
  const id = typeof ack.id === 'string' ? ack.id : it.event.id;
  if (ack.ok === true) {
    it.outcome = {
      kind: 'socket',
      id,
      seq: typeof ack.seq === 'number' ? ack.seq : 0,
      duplicate: ack.duplicate === true,
      ...(typeof ack.journal === 'string' ? { journal: ack.journal } : {}),
    };
    return true;
  }
  if (ack.ok !== false) return false;
  const code = typeof ack.error?.code === 'string' ? ack.error.code : 'TPWS_ERR_INTERNAL';
  const message = typeof ack.error?.message === 'string' ? ack.error.message : 'rejected by the daemon';
  if (INVALID_ACK_CODES.has(code)) it.outcome = { kind: 'invalid', id, code, message };
  else it.fallbackReason = `${code}: ${message}`; // TPWS_ERR_UNAVAILABLE and anything unknown: the table
  return true;
}

/** Apply a frame's ack to its events; false when it does not fit the frame. */
function applyAck(ack: IngestAck, frame: Item[], single: boolean): boolean {
  if (!single && isBatchAck(ack)) {
    if (ack.results.length !== frame.length) return false;
    return frame.every((it, i) => applyResult(ack.results[i], it));
  }
  // One event, or an error for the whole batch frame: the same result for each.
  return frame.every((it) => applyResult(single ? ack : { ...ack, id: undefined }, it));
}

// ---------------------------------------------------------------------------
// The table path

const DUPLICATE_CODES: ReadonlySet<string> = new Set(['ER_DUP_ENTRY', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);
const SCHEMA_CODES: ReadonlySet<string> = new Set(['ER_BAD_FIELD_ERROR', 'ER_NO_SUCH_TABLE']);

function driverCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause;
  const code = cause?.code ?? (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorText(err: unknown): string {
  if (isTpWsError(err)) return err.message;
  return err instanceof Error ? err.message : String(err);
}

async function storeInTable(items: Item[], cfg: Readonly<Config>, socketLabel: string): Promise<void> {
  const label = `table ${redactStoreUrl(cfg.store.url)}`;
  const fail = (reason: string): void => {
    for (const it of items) {
      if (it.outcome) continue;
      it.outcome = { kind: 'failed', id: it.event.id, code: 'TPWS_ERR_STORE_UNAVAILABLE', message: `${socketLabel}: ${it.fallbackReason}; ${label}: ${reason}` };
    }
  };

  let store: CommandStore;
  try {
    store = await (await import('../store/command-store.js')).openCommandStore(cfg);
  } catch (err) {
    fail(errorText(err));
    return;
  }
  try {
    // The embedded store may be brand new (a fresh state dir): create its tables.
    // A MySQL database is TeamPass's: its schema is `tp-ws migrate`'s business.
    if (store.kind === 'sqlite') await store.migrate();
    for (const it of items) {
      try {
        const rowId = await store.insertPendingEvent({
          eventUuid: it.event.id,
          eventType: it.event.eventType,
          targetType: it.event.targetType,
          targetId: it.event.targetId,
          payload: it.event.payloadJson,
          ...(it.createdAt !== undefined ? { createdAt: it.createdAt } : {}),
        });
        it.outcome = { kind: 'table', id: it.event.id, rowId, duplicate: false, socketReason: it.fallbackReason ?? '' };
      } catch (err) {
        const code = driverCode(err);
        if (code !== undefined && DUPLICATE_CODES.has(code)) {
          // The row exists: the daemon journaled it (the ack was lost) or an
          // earlier fallback stored it. Either way it is stored.
          it.outcome = { kind: 'table', id: it.event.id, rowId: null, duplicate: true, socketReason: it.fallbackReason ?? '' };
          continue;
        }
        const hint = code !== undefined && SCHEMA_CODES.has(code) ? ` (the events table lacks tp-ws's columns: run tp-ws migrate)` : '';
        // The store is down or unusable: the rest would fail the same way.
        fail(`${errorText(err)}${hint}`);
        return;
      }
    }
  } catch (err) {
    fail(errorText(err));
  } finally {
    await store.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------
// main

export interface EmitIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  readStdin(): Promise<string>;
  out(text: string): void;
  err(text: string): void;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function parseTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_MS;
  if (!/^[0-9]{1,6}$/.test(value) || Number(value) < 1) throw new TpWsError('TPWS_ERR_CONFIG_INVALID', '--timeout: must be a number of milliseconds from 1 to 999999');
  return Number(value);
}

/** Run the command; returns the exit code. Exposed for tests and the bench. */
export async function run(io: EmitIo): Promise<number> {
  const json = io.argv.includes('--json');
  const report = (o: Outcome, line?: number, quiet = false): void => {
    if (json) io.out(`${JSON.stringify(toJson(o, line))}\n`);
    else if (!quiet || o.kind === 'invalid' || o.kind === 'failed') {
      const where = line !== undefined ? `line ${line}: ` : o.kind === 'invalid' || o.kind === 'failed' ? 'tp-ws-emit: ' : '';
      io.err(`${where}${toHuman(o)}\n`);
    }
  };

  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(io.argv));
  } catch (err) {
    // parseArgs messages span lines: keep the one-line promise of the output.
    const message = (err as Error).message.replace(/\s*\n\s*/g, ' ');
    const code = isTpWsError(err) ? err.code : 'TPWS_ERR_CONFIG_INVALID';
    report({ kind: 'invalid', code, message: `${message} (see tp-ws-emit --help)` });
    return EXIT.INVALID;
  }
  if (values.help) {
    io.out(USAGE);
    return EXIT.DELIVERED;
  }
  const quiet = values.quiet === true;

  let cfg: Readonly<Config>;
  let timeoutMs: number;
  const items: Item[] = [];
  /** stdin lines refused before sending. */
  const refused: { line: number; outcome: Outcome }[] = [];
  try {
    timeoutMs = parseTimeout(values.timeout);
    cfg = loadConfig({
      file: values.config ?? null,
      env: io.env,
      flags: {
        socket: values.socket,
        store: values.store,
        'table-prefix': values['table-prefix'],
      },
    });
    const limits = { maxPayloadBytes: cfg.ingest.maxPayloadBytes };

    if (values.stdin) {
      const misplaced = ['user', 'folder', 'kb', 'broadcast', 'payload', 'exclude-user', 'id'].filter((k) => values[k as keyof typeof values] !== undefined);
      if (positionals.length > 0 || misplaced.length > 0) {
        throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `--stdin reads whole events from stdin: EVENT_TYPE and ${misplaced.map((k) => `--${k}`).join(', ') || 'the event flags'} are not allowed with it`);
      }
      const text = await io.readStdin();
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const src = lines[i].replace(/\r$/, '');
        if (src.trim() === '') continue;
        const line = i + 1;
        let input: unknown;
        try {
          input = JSON.parse(src);
        } catch (err) {
          refused.push({ line, outcome: { kind: 'invalid', code: 'TPWS_ERR_BAD_FRAME', message: `not valid JSON (${(err as Error).message})` } });
          continue;
        }
        try {
          items.push(buildItem(input, limits, line));
        } catch (err) {
          if (!(err instanceof EventInvalid)) throw err;
          const id = typeof (input as { id?: unknown } | null)?.id === 'string' ? (input as { id: string }).id : undefined;
          refused.push({ line, outcome: { kind: 'invalid', ...(id !== undefined ? { id } : {}), code: 'TPWS_ERR_INVALID_EVENT', message: err.message } });
        }
      }
    } else {
      items.push(buildFromFlags(values, positionals, limits));
    }
  } catch (err) {
    if (err instanceof EventInvalid) report({ kind: 'invalid', code: 'TPWS_ERR_INVALID_EVENT', message: flagMessage(err) });
    else if (isTpWsError(err)) report({ kind: 'invalid', code: err.code, message: err.message });
    else throw err;
    return EXIT.INVALID;
  }

  if (items.length > 0) {
    const socketPath = cfg.ingest.socket;
    const single = !values.stdin;
    const socketLabel = socketPath === '' ? 'socket' : `socket ${socketPath}`;
    if (socketPath === '') {
      for (const it of items) it.fallbackReason = 'disabled (ingest.socket is empty)';
    } else {
      await sendViaSocket(socketPath, single ? [items] : batches(items, cfg), single, timeoutMs);
    }
    const fallback = items.filter((it) => it.outcome === undefined);
    if (fallback.length > 0) await storeInTable(fallback, cfg, socketLabel);
  }

  // Report in input order.
  const all: { line?: number; outcome: Outcome }[] = [
    ...refused,
    ...items.map((it) => ({ line: it.line, outcome: it.outcome as Outcome })),
  ].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  let code: number = EXIT.DELIVERED;
  for (const r of all) {
    report(r.outcome, r.line, quiet);
    const c = exitCodeOf(r.outcome);
    if (SEVERITY[c] > SEVERITY[code]) code = c;
  }
  return code;
}

/** Split events into batch frames within the daemon's limits (count and frame bytes). */
function batches(items: Item[], cfg: Readonly<Config>): Item[][] {
  const maxEvents = Math.min(MAX_BATCH, cfg.ingest.maxBatchEvents);
  const maxBytes = cfg.ingest.maxFrameBytes;
  const out: Item[][] = [];
  let cur: Item[] = [];
  let bytes = 2; // [ and ]
  for (const it of items) {
    const size = Buffer.byteLength(JSON.stringify(it.wire)) + 1;
    if (cur.length > 0 && (cur.length >= maxEvents || bytes + size > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 2;
    }
    cur.push(it);
    bytes += size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      user: { type: 'string' },
      folder: { type: 'string' },
      kb: { type: 'boolean' },
      broadcast: { type: 'boolean' },
      payload: { type: 'string' },
      'exclude-user': { type: 'string' },
      id: { type: 'string' },
      stdin: { type: 'boolean' },
      socket: { type: 'string' },
      store: { type: 'string' },
      'table-prefix': { type: 'string' },
      config: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

type Flags = ReturnType<typeof parse>['values'];

function buildFromFlags(values: Flags, positionals: string[], limits: { maxPayloadBytes: number }): Item {
  if (positionals.length === 0) throw new TpWsError('TPWS_ERR_INVALID_EVENT', 'EVENT_TYPE is missing (tp-ws-emit EVENT_TYPE --user ID …, or --stdin)');
  if (positionals.length > 1) throw new TpWsError('TPWS_ERR_INVALID_EVENT', `one EVENT_TYPE only (got ${positionals.length} arguments: ${positionals.join(' ')})`);
  const targets = (['user', 'folder', 'kb', 'broadcast'] as const).filter((t) => values[t] !== undefined && values[t] !== false);
  if (targets.length !== 1) {
    throw new TpWsError('TPWS_ERR_INVALID_EVENT', targets.length === 0
      ? 'a target is required: --user ID, --folder ID, --kb or --broadcast'
      : `only one target: got ${targets.map((t) => `--${t}`).join(' and ')}`);
  }
  const target = targets[0];
  const payload = readPayload(values.payload);
  if (values.payload !== undefined && (typeof payload !== 'object' || payload === null || (Array.isArray(payload) && payload.length > 0))) {
    throw new TpWsError('TPWS_ERR_INVALID_EVENT', '--payload: must be a JSON object, e.g. {"item_id":42}');
  }
  const input: Record<string, unknown> = { event_type: positionals[0], target_type: target, payload };
  if (target === 'user' || target === 'folder') input.target_id = values[target]; // a digit string: parseEvent converts it, or names the rule
  if (values['exclude-user'] !== undefined) input.exclude_user_id = values['exclude-user'];
  if (values.id !== undefined) input.id = values.id;
  try {
    return buildItem(input, limits);
  } catch (err) {
    if (err instanceof EventInvalid && err.field === 'target_id') throw new TpWsError('TPWS_ERR_INVALID_EVENT', `--${target}: ${err.rule}`);
    throw err;
  }
}

/** An EventInvalid from the flag form, in flag terms. */
function flagMessage(err: EventInvalid): string {
  const name = FLAG_OF_FIELD[err.field];
  return name === undefined ? err.message : `${name}: ${err.rule}`;
}

/** Entry point of bin/tp-ws-emit.js. */
export async function main(argv: string[]): Promise<void> {
  const code = await run({
    argv,
    env: process.env,
    readStdin: () => readAll(process.stdin),
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
  process.exitCode = code;
  // Everything is closed by now; should a driver keep a handle open, do not hang cron.
  setTimeout(() => process.exit(code), 2000).unref();
}
