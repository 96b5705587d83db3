/**
 * Fan-out scenarios of issue #10: tp-ws (TeamPass tokens on MariaDB when a
 * server is configured, else SQLite) and the plain `ws` floor (floor.ts), each
 * in its own process, driven by the same light load client (wsload.ts) and
 * fed through a Unix socket. Each scenario returns one JSON object.
 *
 * What is measured, per server:
 * - client-observed latency (sender's hrtime stamp → frame read by the
 *   client), per frame, and per event until its last recipient got it;
 * - frames delivered against frames expected (every event to every socket);
 * - server CPU seconds from /proc over the window (first write → last frame),
 *   per million delivered frames, and peak RSS sampled every 50 ms;
 * - tp-ws's own fan-out histogram (`tpws_fanout_seconds`), diffed over the window;
 * - the load client's CPU, so a run where the client was the bottleneck shows
 *   (`client.busiest_share` near 1: one client process was a full core).
 *
 * Every scenario is bounded: a deadline kills the processes it started (by
 * pid) and fails the scenario.
 */
import { createConnection, type Socket } from 'node:net';
import { IngestClient } from '../ingest/client.js';
import { FloorServer } from './floor.js';
import { percentiles, sleep } from './harness.js';
import { CpuWindow, MachineWindow, mb, PeakRssSampler, rssBytes } from './proc.js';
import { histogramDelta, TeampassDaemon, type HistogramSnapshot } from './teampass-daemon.js';
import { WsLoad } from './wsload.js';

type Result = Record<string, unknown>;

/** Processes and cleanups of one scenario, stopped in reverse order; killed at the deadline. */
class Scope {
  readonly #stops: (() => Promise<void>)[] = [];
  readonly #kills: (() => void)[] = [];

  add<T extends { stop(): Promise<void> }>(thing: T, kill: () => void): T {
    this.#stops.push(() => thing.stop());
    this.#kills.push(kill);
    return thing;
  }

  killAll(): void {
    for (const k of this.#kills.reverse()) {
      try {
        k();
      } catch {
        // already gone
      }
    }
  }

  async stopAll(): Promise<void> {
    for (const s of this.#stops.reverse()) await s().catch((err: Error) => progress(`cleanup: ${err.message}`));
  }
}

/** Run `fn` with a scope; past `deadlineMs` every process of the scope is killed and the scenario fails. */
async function bounded(name: string, deadlineMs: number, fn: (scope: Scope) => Promise<Result>): Promise<Result> {
  const scope = new Scope();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      scope.killAll();
      reject(new Error(`${name}: not done within ${deadlineMs / 1000} s; its processes were killed`));
    }, deadlineMs);
  });
  try {
    return await Promise.race([fn(scope), deadline]);
  } finally {
    clearTimeout(timer);
    await scope.stopAll();
  }
}

const progress = (msg: string) => process.stderr.write(`  ${msg}\n`);
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? Math.round((a / b) * 100) / 100 : null);

/** Where a scenario writes its events: tp-ws's ingest socket (with acks), or a floor's (no acks). */
interface EventWriter {
  write(frames: Record<string, unknown>[]): void;
  /** Wait until the server took every frame written (tp-ws: acks; floor: the socket drained). */
  settle(timeoutMs: number): Promise<{ acked: number | null; rejected: number }>;
  close(): Promise<void>;
}

async function ingestWriter(path: string): Promise<EventWriter> {
  const client = await IngestClient.connect(path, { timeoutMs: 120_000 });
  let written = 0;
  let acked = 0;
  let rejected = 0;
  let failed: Error | null = null;
  const reader = (async () => {
    for (;;) {
      for (const ack of await client.nextAcks()) {
        acked++;
        if (!ack.ok) rejected++;
      }
    }
  })().catch((err: Error) => {
    failed = err;
  });
  return {
    write(frames) {
      written += frames.length;
      client.sendAll(frames);
    },
    async settle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (acked < written && failed === null && Date.now() < deadline) await sleep(20);
      return { acked, rejected };
    },
    async close() {
      await client.close();
      await reader;
    },
  };
}

async function floorWriter(path: string): Promise<EventWriter> {
  const sock: Socket = await new Promise((resolve, reject) => {
    const s = createConnection(path, () => resolve(s));
    s.once('error', reject);
  });
  return {
    write(frames) {
      sock.write(frames.map((f) => JSON.stringify(f)).join('\n') + '\n');
    },
    async settle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (sock.writableLength > 0 && Date.now() < deadline) await sleep(20);
      return { acked: null, rejected: 0 };
    },
    async close() {
      await new Promise<void>((r) => sock.end(r));
    },
  };
}

/** A server under test, started and registered in the scope. */
interface Server {
  kind: 'tp-ws' | 'floor';
  pid: number;
  wsUrl: string;
  tokens: string[];
  store: string | null;
  fdLimit: number | null;
  writer: EventWriter;
  histogram: (() => Promise<HistogramSnapshot>) | null;
}

async function startTpws(scope: Scope, users: number): Promise<Server> {
  progress(`tp-ws: seeding ${users} users, starting`);
  const d = scope.add(await TeampassDaemon.start({ users, fdLimit: 'max' }), () => d.child.kill('SIGKILL'));
  const writer = await ingestWriter(d.ingestSocket);
  scope.add({ stop: () => writer.close() }, () => undefined);
  return { kind: 'tp-ws', pid: d.pid, wsUrl: d.wsUrl, tokens: d.tokens, store: d.store, fdLimit: d.fdLimit, writer, histogram: () => d.fanoutHistogram() };
}

async function startFloor(scope: Scope, sockets: number): Promise<Server> {
  progress('floor: starting plain ws server');
  const f = scope.add(await FloorServer.start({ fdLimit: 'max' }), () => f.child.kill('SIGKILL'));
  const writer = await floorWriter(f.ingestSocket);
  scope.add({ stop: () => writer.close() }, () => undefined);
  // The floor checks no token; distinct strings keep the requests the same size as tp-ws's.
  const tokens = Array.from({ length: sockets }, (_, i) => i.toString(16).padStart(64, '0'));
  return { kind: 'floor', pid: f.pid, wsUrl: f.wsUrl, tokens, store: null, fdLimit: f.fdLimit, writer, histogram: null };
}

interface RunPlan {
  sockets: number;
  /** Client processes. */
  processes: number;
  /** 'folder': every socket subscribes to folder 1 and events target it; 'broadcast': no subscription. */
  target: 'folder' | 'broadcast';
  events: number;
  /** Events per second, paced; null writes them all at once (a burst). */
  ratePerSec: number | null;
  /** How long to wait for the last frame after the last write. */
  drainMs: number;
}

/** Write `plan.events` events (paced or at once), stamped with t0 and n. */
async function writeEvents(w: EventWriter, plan: RunPlan): Promise<void> {
  const frame = (n: number) => ({ event_type: 'bench', target_type: plan.target, target_id: 1, payload: { t0: process.hrtime.bigint().toString(), n } });
  if (plan.ratePerSec === null) {
    for (let n = 0; n < plan.events; n++) w.write([frame(n)]);
    return;
  }
  const start = performance.now();
  let n = 0;
  while (n < plan.events) {
    const due: Record<string, unknown>[] = [];
    // Every event whose time has come goes in one write.
    while (n < plan.events && start + (n * 1000) / plan.ratePerSec <= performance.now()) due.push(frame(n++));
    if (due.length > 0) w.write(due);
    if (n < plan.events) await sleep(Math.max(0, start + (n * 1000) / plan.ratePerSec - performance.now()));
  }
}

/** Connect the clients to `s`, run the plan, and measure. */
async function measure(scope: Scope, s: Server, plan: RunPlan): Promise<Result> {
  // Sockets, the store, the ingest socket and node's own descriptors: say so before connecting, not as a refused socket later.
  if (s.fdLimit !== null && s.fdLimit < plan.sockets + 100) {
    throw new Error(`${s.kind}: the fd limit obtained is ${s.fdLimit}, too low for ${plan.sockets} sockets; raise the hard limit (ulimit -Hn) of the shell running the bench`);
  }
  progress(`${s.kind}: connecting ${plan.sockets} sockets (${plan.processes} client process${plan.processes > 1 ? 'es' : ''})`);
  const load = scope.add(await WsLoad.start({
    url: s.wsUrl, tokens: s.tokens.slice(0, plan.sockets), processes: plan.processes,
    subscribeFolder: plan.target === 'folder' ? 1 : null, connectTimeoutMs: 300_000,
  }), () => load.kill());
  // Warm-up (JIT, buffers, the daemon's first writes to each socket): not counted.
  const warmup = Math.min(plan.events, plan.ratePerSec === null ? 50 : Math.ceil(plan.ratePerSec));
  await writeEvents(s.writer, { ...plan, events: warmup });
  await load.waitForEventFrames(warmup * plan.sockets, plan.drainMs);
  const before = await s.writer.settle(10_000);
  const rssIdle = rssBytes(s.pid);
  await load.reset();
  const h0 = s.histogram ? await s.histogram() : null;
  const expected = plan.events * plan.sockets;
  progress(`${s.kind}: ${plan.events} events ${plan.ratePerSec === null ? 'at once' : `at ${plan.ratePerSec}/s`} to ${plan.sockets} sockets`);
  const machine = new MachineWindow();
  const cpu = new CpuWindow(s.pid);
  const rss = new PeakRssSampler(s.pid).start();
  const firstWrite = Number(process.hrtime.bigint());
  await writeEvents(s.writer, plan);
  const allDelivered = await load.waitForEventFrames(expected, plan.drainMs);
  const window = cpu.read();
  const busy = machine.read();
  const peak = rss.stop();
  const ingest = await s.writer.settle(10_000);
  const h1 = s.histogram ? await s.histogram() : null;
  const r = await load.report();
  const complete = r.events.filter((e) => e.recipients === plan.sockets);
  const wallMs = r.last_frame_ns === null ? null : r3((r.last_frame_ns - firstWrite) / 1e6);
  const busiest = window.wall_s > 0 ? r3(r.client_cpu_max_s / window.wall_s) : null;
  progress(`${s.kind}: ${r.event_frames}/${expected} frames, p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms, server CPU ${window.cpu_s} s`);
  return {
    server: s.kind,
    ...(s.store ? { store: s.store } : {}),
    fd_limit: s.fdLimit,
    sockets: r.sockets_open,
    connect: { handshake_ms: load.connectStats.handshake_ms, wall_ms: load.connectStats.wall_ms },
    events_sent: plan.events,
    ...(ingest.acked !== null ? { acked: ingest.acked - (before.acked ?? 0), rejected: ingest.rejected - before.rejected } : {}),
    frames_expected: expected,
    frames_delivered: r.event_frames,
    all_delivered: allDelivered && r.event_frames === expected,
    events_complete: complete.length,
    latency_ms: r.latency_ms,
    event_complete_ms: percentiles(r.events.map((e) => e.complete_ms ?? NaN).filter(Number.isFinite)),
    wall_ms: wallMs,
    server_cpu_s: window.cpu_s,
    server_cores: window.cores,
    server_cpu_s_per_million_frames: r.event_frames > 0 ? r3(window.cpu_s / (r.event_frames / 1e6)) : null,
    server_rss_mb: { before: mb(rssIdle), peak: mb(peak.peak_bytes) },
    ...(h0 && h1 ? { fanout_histogram: histogramDelta(h0, h1) } : {}),
    client: { processes: plan.processes, cpu_s: r.client_cpu_s, busiest_cpu_s: r.client_cpu_max_s, busiest_share: busiest, limited: busiest !== null && busiest > 0.9 },
    // Whole machine over the window: cores busy (any process) and the load average before/after.
    machine: { ...busy, others_cores: r3(Math.max(0, busy.busy_cores - window.cores - (window.wall_s > 0 ? r.client_cpu_s / window.wall_s : 0))) },
    closes: r.closes,
    ...(r.latency_dropped > 0 ? { latency_samples_dropped: r.latency_dropped } : {}),
  };
}

/**
 * Run the plan against tp-ws and (when `withFloor`) against the floor, one
 * after the other, each on fresh processes. `name` is the scenario's name in
 * run.ts; `params` the sizes it ran at (--quick shrinks them).
 */
async function compare(name: string, params: Result, plan: RunPlan, withFloor: boolean, deadlineMs: number): Promise<Result> {
  const tpws = await bounded(`${name} tp-ws`, deadlineMs, async (scope) => measure(scope, await startTpws(scope, plan.sockets), plan));
  const out: Result = { name, params, store: tpws.store, tpws };
  if (!withFloor) return out;
  const floor = await bounded(`${name} floor`, deadlineMs, async (scope) => measure(scope, await startFloor(scope, plan.sockets), plan));
  const lat = (x: Result, k: 'p50' | 'p99', field = 'latency_ms') => (x[field] as Record<string, number>)[k];
  out.floor = floor;
  out.ratio_to_floor = {
    latency_p50: ratio(lat(tpws, 'p50'), lat(floor, 'p50')),
    latency_p99: ratio(lat(tpws, 'p99'), lat(floor, 'p99')),
    event_complete_p50: ratio(lat(tpws, 'p50', 'event_complete_ms'), lat(floor, 'p50', 'event_complete_ms')),
    event_complete_p99: ratio(lat(tpws, 'p99', 'event_complete_ms'), lat(floor, 'p99', 'event_complete_ms')),
  };
  return out;
}

export interface FanoutSizes {
  subscribers: number;
  ratePerSec: number;
  seconds: number;
  processes: number;
}

/** 1,000 subscribers of one folder, 20 folder events/s by socket for 10 s; against the plain ws broadcast floor. */
export function benchFanout(o: FanoutSizes): Promise<Result> {
  const events = Math.max(1, Math.round(o.ratePerSec * o.seconds));
  return compare('fanout-1000x20', { subscribers: o.subscribers, rate_per_s: o.ratePerSec, seconds: o.seconds, events },
    { sockets: o.subscribers, processes: o.processes, target: 'folder', events, ratePerSec: o.ratePerSec, drainMs: 30_000 }, true, 600_000);
}

export interface BurstSizes {
  subscribers: number;
  events: number;
  processes: number;
}

/** `events` folder events written to the ingest socket at once (pipelined) to `subscribers`: wall time, CPU per million frames, peak RSS. */
export function benchBurst(o: BurstSizes): Promise<Result> {
  return compare('burst-2000x1000', { subscribers: o.subscribers, events: o.events },
    { sockets: o.subscribers, processes: o.processes, target: 'folder', events: o.events, ratePerSec: null, drainMs: 120_000 }, false, 600_000);
}

/** `sockets` connections, broadcast events at `ratePerSec` for `seconds`: event complete p50/p99 against the floor with as many sockets. */
export function benchBroadcast(o: FanoutSizes): Promise<Result> {
  const events = Math.max(1, Math.round(o.ratePerSec * o.seconds));
  return compare('broadcast-10000', { sockets: o.subscribers, rate_per_s: o.ratePerSec, seconds: o.seconds, events },
    { sockets: o.subscribers, processes: o.processes, target: 'broadcast', events, ratePerSec: o.ratePerSec, drainMs: 30_000 }, true, 900_000);
}

/** 1 subscriber, `ratePerSec` folder events by socket for `seconds`: tp-ws against the raw ws pipeline, same run. */
export function benchFloorPipeline(o: { ratePerSec: number; seconds: number }): Promise<Result> {
  const events = Math.max(1, Math.round(o.ratePerSec * o.seconds));
  return compare('floor-1x1000', { subscribers: 1, rate_per_s: o.ratePerSec, seconds: o.seconds, events },
    { sockets: 1, processes: 1, target: 'folder', events, ratePerSec: o.ratePerSec, drainMs: 30_000 }, true, 300_000);
}
