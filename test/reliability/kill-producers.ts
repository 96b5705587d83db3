/**
 * The producers of the SIGKILL-under-load scenario
 * (test/reliability/kill-under-load.test.ts), each a real way PHP or a
 * script publishes to tp-ws, each with its own event keys (`payload.k`):
 *
 * - `php`: TpWs\Emitter in default mode (socket, else table), real `php`;
 * - `cli`: `tp-ws-emit --stdin --json`, a batch per invocation;
 * - `raw`: an IngestClient writing one event at a time, resending it (same
 *   id) over the socket until the daemon acks it, as docs/ingest.md says
 *   ("a frame with no ack was not received");
 * - `sql`: plain INSERTs into the events table, as TeamPass's PHP writes
 *   them (half without `event_uuid`, as TeamPass's own function does).
 *
 * Each records, per event, whether it got proof of durability (the
 * `Ledger`): an ack saying the event is in the events table (no `journal`
 * field, docs/ingest.md §Acks), or a row it committed (a duplicate-key
 * answer means the row existed: committed too).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { IngestClient, type IngestAck } from '../../src/ingest/client.js';
import type { Random } from '../helpers/random.js';
import type { Seeder } from '../helpers/seed.js';

const ROOT = join(import.meta.dirname, '../..');
const EMIT_BIN = join(ROOT, 'bin/tp-ws-emit.js');
const PHP_SCRIPT = join(import.meta.dirname, 'kill-emitter.php');

export type ProducerName = 'php' | 'cli' | 'raw' | 'sql';

/** One event to send: `k` tags it (payload `{k}`) so clients can name it whatever its id. */
export interface PlannedEvent {
  k: string;
  target_type: 'user' | 'folder' | 'broadcast';
  target_id: number | null;
  /** `exclude_user_id` (folder and broadcast only), or null. */
  exclude: number | null;
}

/** How a producer knows an event is durable: `ack` (journal written), `row` (committed to the table). */
export type Proof = 'ack' | 'row';

export interface SentEvent extends PlannedEvent {
  producer: ProducerName;
  /** Proof of durability, or null (a `journal: "pending"` ack, an error). */
  proof: Proof | null;
  /** Why there is no proof, when there is none. */
  unproven?: string;
  /** Socket attempts that got no ack (the daemon died): resent or written to the table. */
  retries: number;
}

/** Every event sent, by key. */
export class Ledger {
  readonly sent = new Map<string, SentEvent>();
  /** Events sent again after they were proven (the raw producer's window). */
  resent = 0;
  /** Table fallbacks for which the PHP emitter replaced a broken SQLite handle. */
  phpDbReconnects = 0;

  record(producer: ProducerName, e: PlannedEvent, proof: Proof | null, unproven?: string, retries = 0): void {
    if (this.sent.has(e.k)) throw new Error(`event ${e.k} recorded twice`);
    this.sent.set(e.k, { ...e, producer, proof, ...(unproven === undefined ? {} : { unproven }), retries });
  }

  byProducer(p: ProducerName): SentEvent[] {
    return [...this.sent.values()].filter((e) => e.producer === p);
  }
}

/** Where the producers write: the daemon's ingest socket, and its store for the table. */
export interface Target {
  socket: string;
  /** Store URL (`sqlite:…` or `mysql://…`), for tp-ws-emit's fallback. */
  storeUrl: string;
  table: string;
}

/** `n` events for `producer` with random targets among `users` and `folders`. */
export function planEvents(rng: Random, producer: ProducerName, n: number, users: readonly number[], folders: readonly number[]): PlannedEvent[] {
  const out: PlannedEvent[] = [];
  for (let i = 1; i <= n; i++) {
    const k = `${producer}-${i}`;
    const kind = rng.pick(['broadcast', 'user', 'folder'] as const, [2, 3, 4]);
    const exclude = kind !== 'user' && rng.chance(0.15) ? rng.pick(users) : null;
    out.push({ k, target_type: kind, target_id: kind === 'broadcast' ? null : rng.pick(kind === 'user' ? users : folders), exclude });
  }
  return out;
}

/** The ingest-protocol event of a planned one, with `id`. */
function wire(e: PlannedEvent, id: string): Record<string, unknown> {
  return {
    id,
    event_type: 'kill_test',
    target_type: e.target_type,
    ...(e.target_id === null ? {} : { target_id: e.target_id }),
    payload: { k: e.k },
    ...(e.exclude === null ? {} : { exclude_user_id: e.exclude }),
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The PDO settings of a store URL (the php producer's environment). */
function phpDbEnv(storeUrl: string): Record<string, string> {
  if (storeUrl.startsWith('sqlite:')) return { TPWS_DSN: storeUrl };
  const u = new URL(storeUrl);
  return {
    TPWS_DSN: `mysql:host=${u.hostname};port=${u.port || '3306'};dbname=${decodeURIComponent(u.pathname.slice(1))};charset=utf8mb4`,
    TPWS_DB_USER: decodeURIComponent(u.username),
    TPWS_DB_PASSWORD: decodeURIComponent(u.password),
  };
}

/**
 * How a producer is paced: `gapMs` between two events (or batches), and no
 * new one started after `untilMs` (epoch ms), so the scenario's length does
 * not depend on how fast the machine is; the plan is the most it sends.
 */
export interface Pace {
  gapMs: number;
  untilMs: number;
}

/** Run test/reliability/kill-emitter.php over `plan`; resolves when php exits. */
export async function runPhpProducer(t: Target, plan: PlannedEvent[], pace: Pace, ledger: Ledger, scratch: string): Promise<void> {
  const planFile = join(scratch, 'php-plan.json');
  writeFileSync(planFile, JSON.stringify(plan));
  const byK = new Map(plan.map((e) => [e.k, e]));
  const child = spawn('php', ['-d', 'error_reporting=-1', '-d', 'display_errors=stderr', PHP_SCRIPT], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...phpDbEnv(t.storeUrl), TPWS_SOCKET: t.socket, TPWS_TABLE: t.table, TPWS_PLAN: planFile, TPWS_GAP_US: String(Math.round(pace.gapMs * 1000)), TPWS_UNTIL_MS: String(pace.untilMs) },
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const r = JSON.parse(line) as { k: string; id?: string; path?: string; journal?: string; db_reconnected?: boolean; error?: string };
    if (r.db_reconnected === true) ledger.phpDbReconnects++;
    const e = byK.get(r.k);
    if (e === undefined) throw new Error(`php producer printed an unknown key: ${line}`);
    if (r.error !== undefined) ledger.record('php', e, null, r.error);
    else if (r.path === 'table') ledger.record('php', e, 'row', undefined, 1);
    else if (r.journal === 'written') ledger.record('php', e, 'ack');
    else ledger.record('php', e, null, `ack journal: ${r.journal}`);
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  if (code !== 0 || stderr !== '') throw new Error(`php producer exited ${code}: ${stderr}`);
}

/** `tp-ws-emit --stdin --json` over `plan` in batches of `batch`, one invocation each. */
export async function runCliProducer(t: Target, plan: PlannedEvent[], batch: number, pace: Pace, ledger: Ledger): Promise<void> {
  for (let i = 0; i < plan.length && Date.now() < pace.untilMs; i += batch) {
    const part = plan.slice(i, i + batch);
    const child = spawn(process.execPath, [EMIT_BIN, '--stdin', '--json', '--timeout', '2000'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, TPWS_SOCKET: t.socket, TPWS_STORE: t.storeUrl },
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.stdin!.end(part.map((e) => JSON.stringify(wire(e, `cli-${e.k}`))).join('\n') + '\n');
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    // 0: all through the socket; 3: some stored in the table. Anything else is a failure of the test.
    if (code !== 0 && code !== 3) throw new Error(`tp-ws-emit exited ${code}: ${err}${out}`);
    const results = out.trim().split('\n').map((l) => JSON.parse(l) as { ok: boolean; line: number; path?: string; journal?: string; error?: { code: string } });
    if (results.length !== part.length) throw new Error(`tp-ws-emit printed ${results.length} results for ${part.length} events`);
    for (const r of results) {
      const e = part[r.line - 1];
      if (!r.ok) ledger.record('cli', e, null, r.error?.code ?? 'failed');
      else if (r.path === 'table') ledger.record('cli', e, 'row', undefined, 1);
      else if (r.journal === undefined) ledger.record('cli', e, 'ack');
      else ledger.record('cli', e, null, `ack journal: ${r.journal}`);
    }
    await sleep(pace.gapMs);
  }
}

/**
 * One IngestClient, one event at a time. An event whose ack
 * does not come (connection refused or lost: the daemon was killed) is sent
 * again, with the same id, until an ack comes. After such a loss it also
 * sends its last `resend` acked events again, as a sender that keeps a
 * window of recent events and does not trust the acks a dying daemon gave
 * (at-least-once): the daemon must not deliver them twice, or our client
 * must drop them; they are counted in `Ledger.resent`. An ack that does not prove
 * the table has it (`journal` pending or dropped, or `duplicate`: its first
 * copy may not have been journaled) is followed by an INSERT of the row
 * with the same id, as docs/ingest.md tells a sender that needs the
 * history; a duplicate key there means the row was written already.
 */
export async function runRawProducer(t: Target, plan: PlannedEvent[], pace: Pace, resend: number, ledger: Ledger, seed: Seeder): Promise<void> {
  let client: IngestClient | null = null;
  const recent: PlannedEvent[] = [];
  try {
    for (const e of plan) {
      if (Date.now() >= pace.untilMs) break;
      const id = `raw-${e.k}`;
      let retries = 0;
      let ack: IngestAck | null = null;
      while (ack === null) {
        try {
          if (client === null) {
            client = await IngestClient.connect(t.socket, { timeoutMs: 2000 });
            if (retries > 0) {
              // Already proven: whatever the acks say now, the ledger keeps the first proof.
              for (const r of recent) await client.request(wire(r, `raw-${r.k}`));
              ledger.resent += recent.length;
            }
          }
          ack = await client.request(wire(e, id));
        } catch {
          client?.destroy();
          client = null;
          retries++;
          await sleep(50);
        }
      }
      if (!ack.ok || 'results' in ack) throw new Error(`raw producer: event ${id} refused: ${JSON.stringify(ack)}`);
      if (ack.journal === undefined && ack.duplicate !== true) ledger.record('raw', e, 'ack', undefined, retries);
      else {
        await insertRow(seed, e, id);
        ledger.record('raw', e, 'row', undefined, retries);
      }
      recent.push(e);
      if (recent.length > resend) recent.shift();
      await sleep(pace.gapMs);
    }
  } finally {
    client?.destroy();
  }
}

/** INSERT the event's row as TeamPass does, with `event_uuid` when `id` is given; a duplicate key is no error (the row is there). */
async function insertRow(seed: Seeder, e: PlannedEvent, id: string | null): Promise<void> {
  const ignore = seed.kind === 'mysql' ? 'INSERT IGNORE' : 'INSERT OR IGNORE';
  const payload = JSON.stringify(e.exclude === null ? { k: e.k } : { k: e.k, exclude_user_id: e.exclude });
  if (id === null) {
    await seed.execSql(`INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload) VALUES ('kill_test', ?, ?, ?)`, [e.target_type, e.target_id, payload]);
  } else {
    await seed.execSql(`${ignore} INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload, event_uuid) VALUES ('kill_test', ?, ?, ?, ?)`, [e.target_type, e.target_id, payload, id]);
  }
}

/** Plain INSERTs: every other row without `event_uuid`, as TeamPass's own function writes them. */
export async function runSqlProducer(plan: PlannedEvent[], pace: Pace, ledger: Ledger, seed: Seeder): Promise<void> {
  let i = 0;
  for (const e of plan) {
    if (Date.now() >= pace.untilMs) break;
    await insertRow(seed, e, i++ % 2 === 0 ? null : `sql-${e.k}`);
    ledger.record('sql', e, 'row');
    await sleep(pace.gapMs);
  }
}
