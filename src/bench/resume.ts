/**
 * `resume-restart`: what it costs when the daemon is restarted (or killed)
 * and every browser comes back at once and resumes (docs/protocol.md
 * §Resume), against the floor of the same reconnects without resume, in the
 * same run and on the same store.
 *
 * 1. A daemon on TeamPass tokens (teampass-daemon.ts: MariaDB when a server
 *    is configured, else SQLite) and `clients` sockets, one user each, user
 *    `id` reading and subscribed to folder `(id − 1) % folders + 1`.
 * 2. `events` events through the ingest socket (every `broadcastEvery`-th a
 *    broadcast, the others to the folders in turn), acked once journaled;
 *    every client receives all of its own and keeps the position (epoch,
 *    seq) of the last event or ping, as our browser client does.
 * 3. SIGKILL; while the daemon is down, `downRows` rows are INSERTed into the
 *    events table as TeamPass's PHP does (processed = 0), same mix.
 * 4. Restart on the same store; wait until the poller has delivered those
 *    rows (`banner_to_rows_delivered_ms`: on SQLite the killed daemon's
 *    poller lease must expire first), so that every event a client missed
 *    has a position and comes as a replay. Then every client reconnects at
 *    once with the `reconnect_token` of its last `connected` and sends
 *    `resume` with its position and folder. Measured from the first
 *    reconnect until every client has its `resumed` reply and the
 *    `replayed` events after it; the events are checked per client and per
 *    event (each missed one exactly once, nothing else).
 * 5. Floor: SIGKILL, `downRows` more rows, restart, wait for the poller the
 *    same way, and the same clients reconnect and `subscribe` (no resume),
 *    as TeamPass's client does; measured until every client is subscribed.
 *
 * The clients are `ws` sockets in this process (the resume logic needs real
 * JSON parsing per message; wsload.ts is built not to parse). Daemon CPU and
 * peak RSS come from /proc over each window; the client process's own CPU
 * says whether it, not the daemon, was the limit (`limited`).
 */
import WebSocket from 'ws';
import { IngestClient } from '../ingest/client.js';
import { percentiles, sleep } from './harness.js';
import { cpuSeconds, CpuWindow, MachineWindow, mb, ownCpuSeconds, PeakRssSampler } from './proc.js';
import { TeampassDaemon, type EventRow } from './teampass-daemon.js';

export interface ResumeRestartOptions {
  /** Sockets, one TeamPass user each (users 1..clients). */
  clients: number;
  /** Folders the users are spread over (user id → folder (id − 1) % folders + 1). */
  folders: number;
  /** Events through the ingest socket before the kill. */
  events: number;
  /** Rows inserted into the events table while the daemon is down (each of the two times). */
  downRows: number;
  /** Every n-th event is a broadcast; the others go to one folder each, in turn. Default 5. */
  broadcastEvery?: number;
  /** Sockets connecting at once after a restart. Default all of them. */
  reconnectConcurrency?: number;
  /** The whole scenario must end within this, ms. Default 300,000. */
  deadlineMs?: number;
}

/** tp-ws caps sockets without an Origin (tools) apart and lower; these are browsers. */
const ORIGIN = 'https://bench.tp-ws.invalid';
/** Events per ingest write before waiting for their acks. */
const EMIT_CHUNK = 100;
/** Connect attempts per socket and phase (a refused connect is retried, as the browser client backs off and retries). */
const MAX_ATTEMPTS = 10;
/** The client process is called the limit past this share of one core (as the fan-out scenarios say). */
const LIMITED_CORES = 0.9;

type Mode = 'subscribe' | 'resume';

/** Where event `n` goes: 0 = broadcast, else that folder. */
type Plan = Int32Array;

function eventPlan(total: number, folders: number, broadcastEvery: number): Plan {
  const plan = new Int32Array(total);
  let f = 0;
  for (let n = 0; n < total; n++) plan[n] = n % broadcastEvery === 0 ? 0 : (f++ % folders) + 1;
  return plan;
}

function payloadOf(n: number, target: number): { eventType: string; targetType: 'broadcast' | 'folder'; targetId: number | null; payload: Record<string, unknown> } {
  return target === 0
    ? { eventType: 'bench_notice', targetType: 'broadcast', targetId: null, payload: { n, text: 'resume bench broadcast' } }
    : { eventType: 'bench_item_updated', targetType: 'folder', targetId: target, payload: { n, folder_id: target, item_id: 100_000 + n, label: `item ${n}` } };
}

/** What one phase (reconnect after a restart) waits for and counts. */
class Phase {
  /** Clients not yet done (subscribed, or resumed with their replay read). */
  pendingClients: number;
  /** Expected (client, event) pairs of this phase's rows not yet received (resume only). */
  pendingEvents = 0;
  readonly t0 = process.hrtime.bigint();
  lastReadyNs = 0n;
  lastEventNs = 0n;
  connectMs: number[] = [];
  /** subscribe or resume sent → its reply. */
  replyMs: number[] = [];
  /** resume sent → last replayed event read. */
  replayMs: number[] = [];
  retries = 0;
  failed = 0;
  errors: string[] = [];
  recovered = 0;
  notRecovered: Record<string, number> = {};
  replayed = 0;
  /** Events counted after the reply (or the subscription) that were not part of a replay. */
  live = 0;
  duplicates = 0;
  unexpected = 0;
  #wake: (() => void) | null = null;

  constructor(readonly mode: Mode, clients: number, readonly rows: [number, number]) {
    this.pendingClients = clients;
  }

  ms(at: bigint): number {
    return at === 0n ? 0 : Math.round(Number(at - this.t0) / 1e4) / 100;
  }

  /** Every client ready or given up, and every event owed to a ready one received. */
  get settled(): boolean {
    return this.pendingClients === this.failed && this.pendingEvents === 0;
  }

  check(): void {
    if (this.settled) this.#wake?.();
  }

  /** True when settled, false when `timeoutMs` passed first. */
  done(timeoutMs: number): Promise<boolean> {
    if (this.settled) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.#wake = () => {
        clearTimeout(t);
        resolve(true);
      };
    });
  }
}

/**
 * One browser: a socket, its reconnect token, its position and its folder,
 * and a receipt count per event number (to check exactly-once).
 */
class Browser {
  reconnectToken: string | null = null;
  epoch: string | null = null;
  seq = 0;
  ws: WebSocket | null = null;
  readonly got: Uint8Array;
  /** This phase: resume sent and not answered (positioned events are then part of the replay). */
  #awaiting = false;
  #replayLeft = 0;
  #replyPos: [string, number] | null = null;
  #sentNs = 0n;
  #phase: Phase | null = null;
  /** Events of the phase's rows this browser is owed and has not received yet. */
  #owed = 0;
  #ready = false;

  constructor(readonly userId: number, readonly folder: number, private readonly token: string, private readonly plan: Plan) {
    this.got = new Uint8Array(plan.length);
  }

  entitled(n: number): boolean {
    return this.plan[n] === 0 || this.plan[n] === this.folder;
  }

  /** Events in [from, to) this browser is entitled to and has not received. */
  missing(from: number, to: number): number {
    let k = 0;
    for (let n = from; n < to; n++) if (this.entitled(n) && this.got[n] === 0) k++;
    return k;
  }

  /** Connect (the first time with the TeamPass token, later with the reconnect token) and subscribe or resume. */
  connect(url: string, phase: Phase, attempt = 1): void {
    this.#phase = phase;
    this.#awaiting = false;
    this.#replayLeft = 0;
    this.#ready = false;
    if (attempt === 1 && phase.mode === 'resume') {
      this.#owed = this.missing(phase.rows[0], phase.rows[1]);
      phase.pendingEvents += this.#owed;
    }
    const token = this.reconnectToken ?? this.token;
    const started = process.hrtime.bigint();
    const ws = new WebSocket(`${url}?token=${token}`, { perMessageDeflate: false, headers: { Origin: ORIGIN } });
    this.ws = ws;
    let connected = false;
    const retry = (why: string) => {
      if (connected || this.ws !== ws) return;
      this.ws = null;
      ws.terminate();
      if (attempt >= MAX_ATTEMPTS) {
        phase.failed++;
        phase.pendingEvents -= this.#owed;
        this.#owed = 0;
        if (phase.errors.length < 5) phase.errors.push(`user ${this.userId}: ${why}`);
        phase.check();
        return;
      }
      phase.retries++;
      setTimeout(() => this.connect(url, phase, attempt + 1), Math.random() * 250 * attempt);
    };
    ws.on('error', (err) => retry(err.message));
    ws.on('close', (code) => retry(`closed ${code} before connected`));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Record<string, any>;
      if (m.type === 'connected') {
        connected = true;
        phase.connectMs.push(Number(process.hrtime.bigint() - started) / 1e6);
        if (typeof m.reconnect_token === 'string') this.reconnectToken = m.reconnect_token;
        this.#onConnected(m);
      } else {
        this.#onMessage(m);
      }
    });
  }

  #onConnected(m: Record<string, any>): void {
    const phase = this.#phase!;
    this.#sentNs = process.hrtime.bigint();
    if (phase.mode === 'resume' && this.epoch !== null) {
      this.#awaiting = true;
      this.#send({ action: 'resume', request_id: 'bench_resume', data: { epoch: this.epoch, seq: this.seq, folders: [this.folder], kb: false } });
      return;
    }
    // A first connection adopts the daemon's position; the floor keeps it as TeamPass's client has none.
    if (this.epoch === null) {
      this.epoch = m.epoch as string;
      this.seq = m.seq as number;
    }
    this.#send({ action: 'subscribe', channel: 'folder', data: { folder_id: this.folder }, request_id: 'bench_sub' });
  }

  #send(m: unknown): void {
    this.ws!.send(JSON.stringify(m));
  }

  #markReady(): void {
    const phase = this.#phase!;
    this.#ready = true;
    phase.pendingClients--;
    phase.lastReadyNs = process.hrtime.bigint();
    phase.check();
  }

  #onMessage(m: Record<string, any>): void {
    const phase = this.#phase!;
    if (m.type === 'ping') {
      this.#send({ action: 'pong' });
      if (!this.#awaiting && this.#replayLeft === 0 && m.epoch === this.epoch && typeof m.seq === 'number') this.seq = Math.max(this.seq, m.seq);
      return;
    }
    if (m.type === 'response' && m.action === 'subscribed') {
      phase.replyMs.push(Number(process.hrtime.bigint() - this.#sentNs) / 1e6);
      this.#markReady();
      return;
    }
    if (m.type === 'response' && m.action === 'resumed') {
      phase.replyMs.push(Number(process.hrtime.bigint() - this.#sentNs) / 1e6);
      this.#awaiting = false;
      if (m.recovered === true) phase.recovered++;
      else phase.notRecovered[String(m.reason)] = (phase.notRecovered[String(m.reason)] ?? 0) + 1;
      phase.replayed += m.replayed as number;
      this.#replyPos = [m.epoch as string, m.seq as number];
      this.#replayLeft = m.replayed as number;
      if (this.#replayLeft === 0) this.#endReplay();
      return;
    }
    if (m.type === 'error') {
      if (phase.errors.length < 5) phase.errors.push(`user ${this.userId}: ${m.error_code}: ${m.message}`);
      return;
    }
    if (m.type !== 'event' || typeof m.data?.n !== 'number') return;
    // [Resume] positioned events before the reply are replayed after it: not counted here.
    if (this.#awaiting && typeof m.seq === 'number') return;
    this.#count(m.data.n as number);
    if (this.#replayLeft > 0) {
      if (--this.#replayLeft === 0) this.#endReplay();
    } else {
      if (this.#ready) phase.live++;
      if (m.epoch === this.epoch && typeof m.seq === 'number' && m.seq > this.seq) this.seq = m.seq;
    }
  }

  #endReplay(): void {
    const phase = this.#phase!;
    [this.epoch, this.seq] = this.#replyPos!;
    phase.replayMs.push(Number(process.hrtime.bigint() - this.#sentNs) / 1e6);
    this.#markReady();
  }

  #count(n: number): void {
    const phase = this.#phase!;
    if (n < 0 || n >= this.got.length || !this.entitled(n)) {
      phase.unexpected++;
      return;
    }
    if (++this.got[n] > 1) {
      phase.duplicates++;
      return;
    }
    if (phase.mode === 'resume' && n >= phase.rows[0] && n < phase.rows[1] && this.#owed > 0) {
      this.#owed--;
      phase.pendingEvents--;
      phase.lastEventNs = process.hrtime.bigint();
      phase.check();
    }
  }

  close(): void {
    this.ws?.terminate();
    this.ws = null;
  }
}

/** Connect every browser, `concurrency` at a time (a new one as each is done or failed). */
function connectAll(browsers: Browser[], url: string, phase: Phase, concurrency: number): void {
  let next = 0;
  const startOne = () => {
    if (next < browsers.length) browsers[next++].connect(url, phase);
  };
  if (concurrency >= browsers.length) {
    for (const b of browsers) b.connect(url, phase);
    return;
  }
  // Throttled: poll the phase's progress and open sockets as others finish.
  const timer = setInterval(() => {
    const done = browsers.length - phase.pendingClients + phase.failed;
    while (next - done < concurrency && next < browsers.length) startOne();
    if (next >= browsers.length) clearInterval(timer);
  }, 5);
  for (let k = 0; k < concurrency; k++) startOne();
}

/** A counter of the daemon's /metrics, summed over its labels matching `label` (all when null). */
function counter(text: string, name: string, label: string | null = null): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (label !== null && !rest.includes(label)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/**
 * SIGKILL the daemon, insert the phase's rows, restart it, reconnect every
 * browser in `mode`, and measure until done (see the file comment).
 */
async function restartPhase(
  daemon: TeampassDaemon, browsers: Browser[], plan: Plan, rows: [number, number], mode: Mode, concurrency: number, timeoutMs: number,
): Promise<Record<string, unknown>> {
  await daemon.kill('SIGKILL');
  for (const b of browsers) b.close();
  const inserts: EventRow[] = [];
  for (let n = rows[0]; n < rows[1]; n++) inserts.push(payloadOf(n, plan[n]));
  await daemon.insertEvents(inserts);

  await daemon.restart();
  const banner = process.hrtime.bigint();
  const pid = daemon.pid;
  const startupCpu = cpuSeconds(pid);
  // The clients come back once the poller has delivered the rows, so that every event they
  // missed has a position and is replayed: the window holds the reconnects and the resumes only.
  const want = rows[1] - rows[0];
  const pollerDeadline = Date.now() + timeoutMs;
  while ((await daemon.pendingEventRows()) > 0) {
    if (Date.now() > pollerDeadline) throw new Error(`the restarted daemon did not deliver the ${want} rows inserted while down within ${timeoutMs} ms`);
    await sleep(50);
  }
  const caughtUpMs = Number(process.hrtime.bigint() - banner) / 1e6;
  const caughtUpCpu = cpuSeconds(pid) - startupCpu;

  const phase = new Phase(mode, browsers.length, rows);
  const cpu = new CpuWindow(pid);
  const rss = new PeakRssSampler(pid).start();
  const machine = new MachineWindow();
  const clientCpu0 = ownCpuSeconds();
  connectAll(browsers, daemon.wsUrl, phase, concurrency);
  const complete = await phase.done(timeoutMs);
  const endNs = phase.lastReadyNs > phase.lastEventNs ? phase.lastReadyNs : phase.lastEventNs;
  const daemonCpu = cpu.read();
  const clientCpu = ownCpuSeconds() - clientCpu0;
  const peak = rss.stop();
  const busy = machine.read();
  const metrics = await daemon.metrics();
  const wallS = Number(endNs - phase.t0) / 1e9;

  let exact = 0;
  for (const b of browsers) if (b.missing(rows[0], rows[1]) === 0) exact++;
  const received = browsers.reduce((s, b) => {
    let k = 0;
    for (let n = rows[0]; n < rows[1]; n++) k += b.got[n];
    return s + k;
  }, 0);
  const expected = browsers.reduce((s, b) => {
    let k = 0;
    for (let n = rows[0]; n < rows[1]; n++) if (b.entitled(n)) k++;
    return s + k;
  }, 0);

  const out: Record<string, unknown> = {
    restart: 'SIGKILL',
    clients: browsers.length,
    ready: browsers.length - phase.pendingClients,
    failed: phase.failed,
    connect_retries: phase.retries,
    errors: phase.errors,
    complete,
    rows_while_down: want,
    rows_delivered_by_poller: counter(metrics, 'tpws_table_rows_total', 'outcome="delivered"'),
    // Banner → no row left with processed = 0; the clients start reconnecting then.
    banner_to_rows_delivered_ms: Math.round(caughtUpMs),
  };
  if (mode === 'resume') {
    Object.assign(out, {
      recovered: phase.recovered,
      not_recovered: phase.notRecovered,
      replayed_total: phase.replayed,
      live_total: phase.live,
      missed_expected: expected,
      missed_received: received,
      clients_exact: exact,
      duplicates: phase.duplicates,
      unexpected: phase.unexpected,
      // First reconnect → the last client has its reply and its replayed events; → the last client has every event it missed.
      wall_to_all_resumed_ms: phase.ms(phase.lastReadyNs),
      wall_to_all_events_ms: phase.ms(endNs),
      resume_reply_ms: percentiles(phase.replyMs),
      resume_to_last_replayed_ms: percentiles(phase.replayMs),
      daemon_resumes: { recovered: counter(metrics, 'tpws_resumes_total', 'outcome="recovered"'), all: counter(metrics, 'tpws_resumes_total') },
      daemon_replayed_events: counter(metrics, 'tpws_resume_replayed_events_total'),
    });
  } else {
    Object.assign(out, {
      // First reconnect → the last client subscribed. The rows were fanned out before: no client gets them.
      wall_to_all_subscribed_ms: phase.ms(phase.lastReadyNs),
      events_received: received,
      events_if_none_missed: expected,
      duplicates: phase.duplicates,
      unexpected: phase.unexpected,
      subscribe_reply_ms: percentiles(phase.replyMs),
    });
  }
  Object.assign(out, {
    connect_ms: percentiles(phase.connectMs),
    window_ms: Math.round(wallS * 1000),
    daemon_cpu_s: daemonCpu.cpu_s,
    daemon_cores: daemonCpu.cores,
    daemon_cpu_before_banner_s: round3(startupCpu),
    daemon_cpu_banner_to_rows_delivered_s: round3(caughtUpCpu),
    daemon_rss_peak_mb: mb(peak.peak_bytes),
    client_cpu_s: round3(clientCpu),
    client_cores: round3(wallS > 0 ? clientCpu / wallS : 0),
    limited: wallS > 0 && clientCpu / wallS >= LIMITED_CORES,
    machine: busy,
  });
  return out;
}

export async function benchResumeRestart(o: ResumeRestartOptions): Promise<Record<string, unknown>> {
  if (!Number.isInteger(o.clients) || o.clients < 1 || o.clients > 10_000) throw new Error(`clients must be 1..10000, got ${o.clients}`);
  if (!Number.isInteger(o.folders) || o.folders < 1 || o.folders > 1000) throw new Error(`folders must be 1..1000, got ${o.folders}`);
  if (!Number.isInteger(o.events) || o.events < 1 || o.events > 1_000_000) throw new Error(`events must be 1..1000000, got ${o.events}`);
  if (!Number.isInteger(o.downRows) || o.downRows < 1 || o.downRows > 1_000_000) throw new Error(`downRows must be 1..1000000, got ${o.downRows}`);
  const broadcastEvery = o.broadcastEvery ?? 5;
  if (!Number.isInteger(broadcastEvery) || broadcastEvery < 1) throw new Error(`broadcastEvery must be a positive integer, got ${broadcastEvery}`);
  const concurrency = o.reconnectConcurrency ?? o.clients;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`reconnectConcurrency must be a positive integer, got ${concurrency}`);
  const deadline = Date.now() + (o.deadlineMs ?? 300_000);
  const left = () => Math.max(1000, deadline - Date.now());

  const total = o.events + 2 * o.downRows;
  const plan = eventPlan(total, o.folders, broadcastEvery);
  const folderOf = (id: number) => ((id - 1) % o.folders) + 1;
  const daemon = await TeampassDaemon.start({ users: o.clients, folderOf });
  const browsers = daemon.tokens.map((t, i) => new Browser(i + 1, folderOf(i + 1), t, plan));
  let ingest: IngestClient | null = null;
  try {
    // 1. Everyone connects and subscribes (not measured).
    const first = new Phase('subscribe', browsers.length, [0, 0]);
    connectAll(browsers, daemon.wsUrl, first, 100);
    if (!(await first.done(left())) || first.failed > 0) throw new Error(`${first.pendingClients} of ${o.clients} clients not subscribed: ${first.errors.join('; ')}`);

    // 2. The stream before the kill, every event acked once journaled (ingest.ackAfter's default).
    ingest = await IngestClient.connect(daemon.ingestSocket, { timeoutMs: 60_000 });
    let acked = 0;
    let rejected = 0;
    let notJournaled = 0;
    for (let n = 0; n < o.events; n += EMIT_CHUNK) {
      const frames = [];
      for (let k = n; k < Math.min(o.events, n + EMIT_CHUNK); k++) {
        const e = payloadOf(k, plan[k]);
        frames.push({ event_type: e.eventType, target_type: e.targetType, target_id: e.targetId, payload: e.payload });
      }
      ingest.sendAll(frames);
      let got = 0;
      while (got < frames.length) {
        for (const a of await ingest.nextAcks()) {
          got++;
          if (a.ok !== true) rejected++;
          else {
            acked++;
            if ('journal' in a && a.journal !== undefined) notJournaled++;
          }
        }
      }
    }
    await ingest.close();
    ingest = null;
    // A kill loses what the journal has not written yet (docs/protocol.md §Resume): wait for its queue to be empty.
    let metrics = await daemon.metrics();
    for (let i = 0; counter(metrics, 'tpws_journal_queue') > 0 && i < 600; i++) {
      await sleep(50);
      metrics = await daemon.metrics();
    }
    const owed = () => browsers.reduce((s, b) => s + b.missing(0, o.events), 0);
    const until = Date.now() + Math.min(60_000, left());
    while (owed() > 0 && Date.now() < until) await sleep(50);
    const beforeKill = {
      events: o.events,
      acked,
      rejected,
      acked_before_journaled: notJournaled,
      journal_queue_at_kill: counter(metrics, 'tpws_journal_queue'),
      frames_expected: browsers.reduce((s, b) => { let k = 0; for (let n = 0; n < o.events; n++) if (b.entitled(n)) k++; return s + k; }, 0),
      frames_missing: owed(),
      duplicates: first.duplicates,
      epochs: new Set(browsers.map((b) => b.epoch)).size,
      position_seq: percentiles(browsers.map((b) => b.seq)),
    };
    if (beforeKill.frames_missing > 0) throw new Error(`${beforeKill.frames_missing} events not delivered before the kill`);

    // 3–4. Kill, rows while down, restart, everyone resumes.
    process.stderr.write(`  resume-restart: ${o.clients} clients resume after SIGKILL…\n`);
    const resume = await restartPhase(daemon, browsers, plan, [o.events, o.events + o.downRows], 'resume', concurrency, left());
    // 5. The floor: the same restart, reconnects without resume.
    process.stderr.write(`  resume-restart: ${o.clients} clients reconnect without resume (floor)…\n`);
    const floor = await restartPhase(daemon, browsers, plan, [o.events + o.downRows, total], 'subscribe', concurrency, left());

    const ratio = (a: unknown, b: unknown) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? round3(a / b) : null);
    return {
      name: 'resume-restart',
      store: daemon.store,
      params: {
        clients: o.clients, folders: o.folders, events_before_kill: o.events, rows_while_down: o.downRows,
        broadcast_every: broadcastEvery, reconnect_concurrency: concurrency, client_processes: 1,
      },
      before_kill: beforeKill,
      resume,
      floor,
      ratio_to_floor: {
        wall: ratio(resume.wall_to_all_resumed_ms, floor.wall_to_all_subscribed_ms),
        daemon_cpu: ratio(resume.daemon_cpu_s, floor.daemon_cpu_s),
      },
    };
  } finally {
    await ingest?.close().catch(() => undefined);
    for (const b of browsers) b.close();
    await daemon.stop();
  }
}

/** The `resume-restart` scenario: 1,000 clients over 50 folders, 2,000 events, 500 rows while down (quick: 50 clients, 10 folders, 200 events, 50 rows). */
export function resumeRestart(quick: boolean): Promise<Record<string, unknown>> {
  return benchResumeRestart(quick
    ? { clients: 50, folders: 10, events: 200, downRows: 50, deadlineMs: 90_000 }
    : { clients: 1000, folders: 50, events: 2000, downRows: 500 });
}
