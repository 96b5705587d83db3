/**
 * `sqlite-stall`: the longest event-loop stall of the daemon's main thread
 * while it journals socket events on the embedded store, taken
 * with `perf_hooks.monitorEventLoopDelay` (1 ms resolution) inside the
 * daemon process, in these scenarios:
 *
 * - `lock`: 1,000 events/s for 3 s; 0.5 s in, this (another) process takes
 *   the SQLite write lock (`BEGIN IMMEDIATE`) and holds it for 1 s;
 * - `rate`: 10,000 events/s for 5 s;
 * - `idle`: no events for 3 s, the daemon only: the machine's own noise.
 *
 * Events go through the ingest socket as NDJSON single-event frames; the
 * measurement runs from the first measured event to the last ack. Each
 * loaded scenario runs against two child processes:
 *
 * - `daemon`: a real daemon (`Daemon.start`, SQLite in its worker thread);
 * - `sync-floor`: the "before" reference, what the daemon did until the
 *   worker thread: the journal (`Journal`, same batching) writing through
 *   `SqliteDb` (the same SQL) synchronously on the main thread, behind a
 *   minimal NDJSON socket that acks each line once journaled.
 *
 * This module is also the child's entry: forked with `BENCH_SQLITE_STALL_CHILD`
 * set to the mode, it runs that child instead of exporting a benchmark.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as perfConstants, monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { loadConfig } from '../config/load.js';
import { Daemon } from '../daemon.js';
import { parseEvent } from '../event.js';
import { createLogger } from '../log.js';
import { Journal } from '../pipeline/journal.js';
import { SqliteDb } from '../store/sqlite-db.js';
import type { Store } from '../store/store.js';
import { uuidv7 } from '../uuid.js';
import { sleep } from './harness.js';

const CHILD_ENV = 'BENCH_SQLITE_STALL_CHILD';
const PREFIX = 'teampass_';
type Mode = 'daemon' | 'sync-floor';

export interface SqliteStallOptions {
  /** `idle` reference: seconds of an idle daemon. */
  idleSeconds: number;
  /** `lock` scenario: events/s, seconds, when the lock is taken and for how long (ms). */
  lock: { ratePerSec: number; seconds: number; lockAtMs: number; lockMs: number };
  /** `rate` scenario: events/s and seconds. */
  rate: { ratePerSec: number; seconds: number };
}

interface Stall {
  max_ms: number;
  p99_ms: number;
  p50_ms: number;
  mean_ms: number;
  samples: number;
  /** Longest garbage-collection pause in the same window (a stall the store cannot cause or cure). */
  gc_max_ms: number;
  /** `minor` (scavenge), `major` (mark-compact), `incremental` or `weakcb`. */
  gc_max_kind: string | null;
  /** Event-loop utilization of the main thread over the window (0–1): how busy it was. */
  elu: number;
}

const GC_KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

interface ChildReady {
  socket: string;
  dbPath: string;
}

export async function benchSqliteStall(o: SqliteStallOptions): Promise<Record<string, unknown>> {
  // The machine's own noise: the same daemon with no events at all. On a
  // shared machine the scheduler alone can stall a loop for tens of ms.
  process.stderr.write('  idle / daemon…\n');
  const scenarios: Record<string, unknown> = { idle: { daemon: await runScenario('daemon', 0, o.idleSeconds, null) } };
  for (const [scenario, load] of [['lock', o.lock], ['rate', o.rate]] as const) {
    const byMode: Record<string, unknown> = {};
    for (const mode of ['daemon', 'sync-floor'] as const) {
      process.stderr.write(`  ${scenario} / ${mode}…\n`);
      byMode[mode] = await runScenario(mode, load.ratePerSec, load.seconds, 'lockMs' in load ? load : null);
    }
    scenarios[scenario] = byMode;
  }
  return {
    name: 'sqlite-stall',
    store: 'sqlite',
    what: 'longest event-loop stall of the main thread (monitorEventLoopDelay, 1 ms resolution)',
    lock: `${o.lock.ratePerSec} events/s for ${o.lock.seconds} s; another process holds the write lock for ${o.lock.lockMs} ms from ${o.lock.lockAtMs} ms`,
    idle: `no events for ${o.idleSeconds} s (the machine's noise floor)`,
    rate: `${o.rate.ratePerSec} events/s for ${o.rate.seconds} s`,
    target_max_ms: 20,
    ...scenarios,
  };
}

async function runScenario(mode: Mode, ratePerSec: number, seconds: number, lock: { lockAtMs: number; lockMs: number } | null): Promise<Record<string, unknown>> {
  const child = await Child.start(mode);
  try {
    const sock = connect(child.ready.socket);
    await new Promise((r) => sock.once('connect', r));
    const acks = countAcks(sock);
    // Warm up (JIT, first batches, the thread's statements) outside the measurement.
    const warmup = await send(sock, 2000, 0.5, 0);
    while (acks.count < warmup) await sleep(10);
    acks.count = 0;
    acks.pending = 0;
    await child.ask('start');
    const locked = lock === null ? null : holdLock(child.ready.dbPath, lock.lockAtMs, lock.lockMs);
    const sent = (await send(sock, ratePerSec, seconds, warmup)) - warmup;
    await locked;
    const deadline = Date.now() + 30_000;
    while (acks.count < sent && Date.now() < deadline) await sleep(10);
    const stall = await child.ask<Stall>('report');
    sock.end();
    return { stall_ms: stall, events: sent, acked: acks.count, acked_journal_pending: acks.pending };
  } finally {
    await child.stop();
  }
}

/** Count acks (lines) and those that say the journal write was still pending. */
function countAcks(sock: Socket): { count: number; pending: number } {
  const n = { count: 0, pending: 0 };
  let rest = '';
  sock.setEncoding('utf8');
  sock.on('data', (s: string) => {
    const lines = (rest + s).split('\n');
    rest = lines.pop()!;
    n.count += lines.length;
    for (const l of lines) if (l.includes('"journal":"pending"')) n.pending++;
  });
  return n;
}

/** Write `ratePerSec` events/s (0: none) for `seconds` in 10 ms ticks; returns the running total sent. */
async function send(sock: Socket, ratePerSec: number, seconds: number, sentBefore: number): Promise<number> {
  const total = Math.round(ratePerSec * seconds);
  const start = Date.now();
  let sent = 0;
  const end = start + seconds * 1000;
  while (sent < total || Date.now() < end) {
    const due = Math.min(total, Math.ceil(((Date.now() - start + 10) / 1000) * ratePerSec));
    let chunk = '';
    for (; sent < due; sent++) {
      const n = sentBefore + sent;
      chunk += `{"event_type":"bench","target_type":"user","target_id":${(n % 1000) + 1},"payload":{"n":${n}}}\n`;
    }
    if (chunk !== '' && !sock.write(chunk)) await new Promise((r) => sock.once('drain', r));
    await sleep(10);
  }
  return sentBefore + total;
}

/** Hold the file's write lock from this process, as PHP or another daemon would. */
async function holdLock(dbPath: string, atMs: number, forMs: number): Promise<void> {
  await sleep(atMs);
  const db = new Database(dbPath);
  try {
    db.exec('BEGIN IMMEDIATE');
    await sleep(forMs);
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}

/** A forked child running this module in `mode`, answering IPC commands. */
class Child {
  private constructor(readonly proc: ChildProcess, readonly ready: ChildReady, private readonly dir: string) {}

  static async start(mode: Mode): Promise<Child> {
    const dir = mkdtempSync(join(tmpdir(), 'tpws-stall-'));
    const proc = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, [CHILD_ENV]: mode, BENCH_SQLITE_STALL_DIR: dir },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<ChildReady>((resolve, reject) => {
      proc.once('message', (m) => resolve(m as ChildReady));
      proc.once('exit', (code) => reject(new Error(`stall child (${mode}) exited with ${code}`)));
    });
    return new Child(proc, ready, dir);
  }

  ask<T>(cmd: string): Promise<T> {
    return new Promise((resolve) => {
      this.proc.once('message', (m) => resolve(m as T));
      this.proc.send({ cmd });
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.send({ cmd: 'stop' });
    await exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// --- the child ----------------------------------------------------------------

async function childMain(mode: Mode): Promise<void> {
  const dir = process.env.BENCH_SQLITE_STALL_DIR!;
  const socket = join(dir, 'ingest.sock');
  const dbPath = join(dir, 'tp-ws.db');
  const config = loadConfig({
    env: { TPWS_STATE_DIR: dir, TPWS_STORE: `sqlite:${dbPath}`, TPWS_SOCKET: socket, TPWS_PORT: '0', TPWS_ADMIN_PORT: '-1', TPWS_LOG_LEVEL: 'warn', TPWS_TABLE_PREFIX: PREFIX },
  });
  // stdout carries the bench's JSON: logs go to stderr.
  const log = createLogger('warn', pino.destination({ dest: 2, sync: false }));
  const stop = mode === 'daemon' ? await startDaemon(config, log) : await startSyncFloor(config, log, socket, dbPath);

  const h = monitorEventLoopDelay({ resolution: 1 });
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  let elu: EventLoopUtilization | null = null;
  let gcMaxMs = 0;
  let gcMaxKind: string | null = null;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.duration <= gcMaxMs) continue;
      gcMaxMs = e.duration;
      gcMaxKind = GC_KINDS[(e as unknown as { detail: { kind: number } }).detail.kind] ?? null;
    }
  });
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'start') {
      h.reset();
      h.enable();
      gcMaxMs = 0;
      gcMaxKind = null;
      elu = performance.eventLoopUtilization();
      gc.observe({ entryTypes: ['gc'] });
      process.send!({ started: true });
    } else if (m.cmd === 'report') {
      h.disable();
      gc.disconnect();
      process.send!({
        max_ms: ms(h.max), p99_ms: ms(h.percentile(99)), p50_ms: ms(h.percentile(50)), mean_ms: ms(h.mean), samples: h.count,
        gc_max_ms: Math.round(gcMaxMs * 100) / 100, gc_max_kind: gcMaxKind,
        elu: Math.round(performance.eventLoopUtilization(elu!).utilization * 100) / 100,
      } satisfies Stall);
    } else if (m.cmd === 'stop') {
      void stop().then(() => process.exit(0));
    }
  });
  process.send!({ socket, dbPath } satisfies ChildReady);
}

async function startDaemon(config: ReturnType<typeof loadConfig>, log: ReturnType<typeof createLogger>): Promise<() => Promise<void>> {
  const d = await Daemon.start({ config, logger: log });
  return () => d.close();
}

/**
 * The "before" floor: the journal path with SQLite on the main thread. The
 * socket side is minimal (one ack line per event, in order, once journaled),
 * so any stall beyond the daemon's is the synchronous SQL.
 */
async function startSyncFloor(config: ReturnType<typeof loadConfig>, log: ReturnType<typeof createLogger>, socket: string, dbPath: string): Promise<() => Promise<void>> {
  const db = new SqliteDb({ path: dbPath, prefix: PREFIX, owner: 'bench' });
  db.migrate();
  const store = { journalEvents: async (rows) => db.journalEvents(rows) } satisfies Pick<Store, 'journalEvents'>;
  const journal = new Journal(store as unknown as Store, log, {
    batchSize: config.journal.batchSize, flushMs: config.journal.flushMs, maxQueue: config.journal.maxQueue, maxBackoffMs: config.poller.maxBackoffMs,
  });
  const limits = { maxPayloadBytes: config.ingest.maxPayloadBytes };
  const server = createServer((conn) => {
    let rest = '';
    let tail: Promise<unknown> = Promise.resolve();
    conn.setEncoding('utf8');
    conn.on('data', (s: string) => {
      const lines = (rest + s).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const ev = parseEvent(JSON.parse(line), limits, () => uuidv7());
        const outcome = journal.write(ev);
        tail = tail.then(() => outcome).then((o) => conn.write(o === 'written' ? `{"ok":true,"id":"${ev.id}"}\n` : `{"ok":true,"id":"${ev.id}","journal":"${o}"}\n`));
      }
    });
    conn.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return async () => {
    server.close();
    await journal.close(10_000);
    db.close();
  };
}

const childMode = process.env[CHILD_ENV];
if (childMode !== undefined && process.send !== undefined) {
  if (childMode === 'daemon') await childMain('daemon');
  else await childMain('sync-floor');
}
