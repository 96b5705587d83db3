/**
 * Idle scenarios of issue #10: what a daemon costs while nothing happens.
 *
 * - `rss-idle`: RSS of `tp-ws serve` (TeamPass tokens on MariaDB when a
 *   server is configured, else SQLite) with no socket, then with N
 *   authenticated, folder-subscribed, idle sockets, each size after the RSS
 *   settles; per connection = (RSS at N − RSS at 0) / N. The plain `ws`
 *   floor server (floor.ts) is measured the same way, as the floor.
 * - `idle-cpu`: CPU share of one core the daemon uses over a window with no
 *   socket and with N idle sockets, default poll settings.
 *
 * "Settled": the scenario waits past one heartbeat (pings answered, idle
 * rate limiters dropped) and until the RSS stops moving, then has the server
 * collect its garbage through the inspector (`--inspect` on a loopback port,
 * `HeapProfiler.collectGarbage`) and reads RSS again: without it, what a
 * connect storm left for the collector decides the figure more than the
 * sockets do (±3 MB between two readings at 0). Both readings are reported;
 * the per-connection figures use the collected one. The inspector costs the
 * server a few MB at 0 and at N alike; baseline RSS without it is in
 * `idle-cpu`.
 *
 * File descriptors: the daemon and the floor run with their soft fd limit
 * raised to the hard one; a size above what that limit holds (less a reserve
 * for the store, listeners and logs) is cut to it and the result says so.
 */
import { createServer } from 'node:net';
import WebSocket from 'ws';
import { FloorServer } from './floor.js';
import { sleep } from './harness.js';
import { CpuWindow, rssBytes } from './proc.js';
import { TeampassDaemon } from './teampass-daemon.js';
import { WsLoad } from './wsload.js';

type Result = Record<string, unknown>;

/** File descriptors kept free for everything that is not a client socket. */
const FD_RESERVE = 64;
/** Most sockets one client process holds (its own fd limit is the same hard limit). */
const SOCKETS_PER_PROCESS = 9_000;
/** Heartbeat interval of the daemon under test (the default); the settle waits past one. */
const PING_INTERVAL_S = 30;

const progress = (msg: string) => process.stderr.write(`  ${msg}\n`);
const kb = (bytes: number) => Math.round(bytes / 102.4) / 10;

export interface RssIdleSizes {
  /** Socket counts, ascending (sockets are added between sizes). */
  sizes: number[];
  /** Minimum seconds between the last socket connecting and the reading (default: past one heartbeat). */
  settleS?: number;
}

export interface IdleCpuSizes {
  sockets: number;
  /** Length of each CPU window. */
  seconds: number;
  /** Wait after the daemon starts before the first window (default 40 s). */
  settleMs?: number;
}

/** A server under measurement: its pid, where clients connect, and how to stop it. */
interface Server {
  pid: number;
  /** tp-ws's store ('sqlite' or 'mariadb'); null for the floor. */
  store: string | null;
  wsUrl: string;
  fdLimit: number | null;
  /** Token for socket i (the floor takes any). */
  token(i: number): string;
  /** Loopback port of the server's inspector. */
  inspectPort: number;
  stop(): Promise<void>;
}

/** A free loopback port (for the inspector: it takes a port number, not 0, when the URL must be known). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.listen(0, '127.0.0.1', resolve).once('error', reject));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** Have the process behind an inspector port collect its garbage (three full GCs), then wait a second for pages to be returned. */
async function collectGarbage(port: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(10_000) });
  const [target] = (await res.json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(target.webSocketDebuggerUrl, { perMessageDeflate: false });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  try {
    // No domain is enabled, so the only messages are the answers, one per call.
    for (let id = 1; id <= 3; id++) {
      const answered = new Promise((resolve) => ws.once('message', resolve));
      ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
      await answered;
    }
  } finally {
    ws.close();
  }
  await sleep(1000);
}

/**
 * Wait at least `minS` seconds, then until RSS moved less than 1 % over the
 * last 10 one-second samples (at most 60 s more); returns the last sample.
 */
async function settledRss(pid: number, minS: number): Promise<{ rss: number; waited_s: number }> {
  const t0 = Date.now();
  await sleep(minS * 1000);
  const samples: number[] = [];
  for (;;) {
    samples.push(rssBytes(pid));
    if (samples.length > 10) samples.shift();
    const waited = (Date.now() - t0) / 1000;
    if (samples.length === 10 && (Math.max(...samples) - Math.min(...samples)) / Math.max(...samples) < 0.01) return { rss: samples[9], waited_s: Math.round(waited) };
    if (waited > minS + 60) return { rss: samples[samples.length - 1], waited_s: Math.round(waited) };
    await sleep(1000);
  }
}

/** Sockets the server's fd limit can hold. */
function fdRoom(s: Server): number {
  return s.fdLimit === null ? Number.MAX_SAFE_INTEGER : s.fdLimit - FD_RESERVE;
}

/** RSS once settled, and after a collection. */
async function readRss(s: Server, settleS: number): Promise<{ rss: number; settled: number; waited_s: number }> {
  const at = await settledRss(s.pid, settleS);
  await collectGarbage(s.inspectPort);
  return { rss: rssBytes(s.pid), settled: at.rss, waited_s: at.waited_s };
}

/** RSS at 0 and at each size; sockets stay open between sizes. */
async function rssCurve(s: Server, sizes: number[], settleS: number): Promise<Result> {
  const base = await readRss(s, settleS);
  const points: Result[] = [];
  const loads: WsLoad[] = [];
  let open = 0;
  try {
    for (const wanted of sizes) {
      const n = Math.min(wanted, fdRoom(s));
      const tokens: string[] = [];
      for (let i = open; i < n; i++) tokens.push(s.token(i));
      for (let i = 0; i < tokens.length; i += SOCKETS_PER_PROCESS) {
        const part = tokens.slice(i, i + SOCKETS_PER_PROCESS);
        const load = await WsLoad.start({ url: s.wsUrl, tokens: part, processes: 1, subscribeFolder: 1 });
        loads.push(load);
      }
      open = Math.max(open, n);
      const at = await readRss(s, settleS);
      points.push({
        sockets_wanted: wanted, sockets: open, capped_by_fd_limit: open < wanted,
        rss_mb: Math.round(at.rss / 1e5) / 10, per_connection_kb: kb((at.rss - base.rss) / open),
        uncollected_rss_mb: Math.round(at.settled / 1e5) / 10, uncollected_per_connection_kb: kb((at.settled - base.settled) / open), settled_after_s: at.waited_s,
      });
      progress(`${open} sockets: ${kb((at.rss - base.rss) / open)} KB/connection`);
    }
  } finally {
    for (const l of loads) await l.stop().catch(() => l.kill());
  }
  return { fd_limit: s.fdLimit, rss_0_mb: Math.round(base.rss / 1e5) / 10, uncollected_rss_0_mb: Math.round(base.settled / 1e5) / 10, points };
}

/** `--inspect` on a free loopback port, for NODE_OPTIONS. */
function inspectOption(port: number): string {
  return `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:${port}`.trim();
}

async function startTpws(users: number, inspect: boolean): Promise<Server> {
  const inspectPort = inspect ? await freePort() : 0;
  const d = await TeampassDaemon.start({ users, fdLimit: 'max', env: inspect ? { NODE_OPTIONS: inspectOption(inspectPort) } : {} });
  return { pid: d.pid, store: d.store, wsUrl: d.wsUrl, fdLimit: d.fdLimit, token: (i) => d.tokens[i], inspectPort, stop: () => d.stop() };
}

async function startFloor(): Promise<Server> {
  const inspectPort = await freePort();
  // The floor takes its environment from this process: NODE_OPTIONS is set for its spawn only.
  const saved = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = inspectOption(inspectPort);
  let f: FloorServer;
  try {
    f = await FloorServer.start({ fdLimit: 'max' });
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
  return { pid: f.pid, store: null, wsUrl: f.wsUrl, fdLimit: f.fdLimit, token: () => 'floor', inspectPort, stop: () => f.stop() };
}

/** Run `fn` on a server, stopping it afterwards; the whole run is bounded by `deadlineMs` (the server is then killed). */
async function withServer(start: () => Promise<Server>, deadlineMs: number, fn: (s: Server) => Promise<Result>): Promise<Result> {
  const s = await start();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      reject(new Error(`not done within ${deadlineMs / 1000} s; the server (pid ${s.pid}) was killed`));
    }, deadlineMs);
  });
  try {
    return await Promise.race([fn(s), deadline]);
  } finally {
    clearTimeout(timer);
    await s.stop().catch(() => undefined);
  }
}

/** `rss-idle`: tp-ws and the plain ws floor, RSS per idle subscribed socket at each size. */
export async function benchRssIdle(o: RssIdleSizes): Promise<Result> {
  const sizes = [...o.sizes].sort((a, b) => a - b);
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`sizes must be positive integers, got ${o.sizes.join(',')}`);
  const settleS = o.settleS ?? PING_INTERVAL_S + 5;
  const deadline = (sizes.length + 1) * (settleS + 180) * 1000;
  progress('tp-ws');
  const tpws = await withServer(() => startTpws(sizes[sizes.length - 1], true), deadline, async (s) => ({ store: s.store, ...await rssCurve(s, sizes, settleS) }));
  progress('ws floor');
  const floor = await withServer(startFloor, deadline, (s) => rssCurve(s, sizes, settleS));
  return { name: 'rss-idle', sizes, settle_min_s: settleS, tpws, floor };
}

/**
 * `idle-cpu`: the daemon's CPU over `seconds` with no socket (40 s after it
 * started), then with `sockets` idle subscribed sockets; CPU from the
 * scheduler's per-thread accounting (proc.ts `runtimeSeconds`).
 */
export async function benchIdleCpu(o: IdleCpuSizes): Promise<Result> {
  if (!Number.isInteger(o.sockets) || o.sockets < 1) throw new Error(`sockets must be a positive integer, got ${o.sockets}`);
  const deadline = (o.seconds * 2 + PING_INTERVAL_S + 300) * 1000;
  return withServer(() => startTpws(o.sockets, false), deadline, async (s) => {
    // Past start-up: V8 keeps its young generation large, and collects, for about 30 s after the work of starting.
    await sleep(o.settleMs ?? 40_000);
    const idle0 = new CpuWindow(s.pid, 'schedstat');
    await sleep(o.seconds * 1000);
    const at0 = idle0.read();
    const rss0 = Math.round(rssBytes(s.pid) / 1e5) / 10;
    const n = Math.min(o.sockets, fdRoom(s));
    const loads: WsLoad[] = [];
    try {
      for (let i = 0; i < n; i += SOCKETS_PER_PROCESS) {
        const tokens = Array.from({ length: Math.min(SOCKETS_PER_PROCESS, n - i) }, (_, j) => s.token(i + j));
        loads.push(await WsLoad.start({ url: s.wsUrl, tokens, processes: 1, subscribeFolder: 1 }));
      }
      await sleep(5000); // the connect storm's work is over
      const idleN = new CpuWindow(s.pid, 'schedstat');
      await sleep(o.seconds * 1000);
      const atN = idleN.read();
      const pct = (w: { cores: number }) => Math.round(w.cores * 1000) / 10;
      const rss = Math.round(rssBytes(s.pid) / 1e5) / 10;
      progress(`0 sockets ${pct(at0)} %, ${n} sockets ${pct(atN)} %`);
      return {
        name: 'idle-cpu', store: s.store, seconds: o.seconds,
        at_0: { cpu_s: at0.cpu_s, cpu_pct: pct(at0), rss_mb: rss0 },
        at_n: { sockets: n, capped_by_fd_limit: n < o.sockets, cpu_s: atN.cpu_s, cpu_pct: pct(atN), rss_mb: rss },
      };
    } finally {
      for (const l of loads) await l.stop().catch(() => l.kill());
    }
  });
}
