/**
 * A light WebSocket load client for the fan-out benchmarks, and its driver.
 *
 * Why not `ws`: at a million frames a second the client, not the server,
 * becomes what is measured. This client speaks just enough RFC 6455 for a
 * server that sends unmasked text frames: a hand-written upgrade on a raw
 * `net` socket, a frame parser that reads 2/4/10-byte headers and never
 * decodes an event's JSON (it finds `"t0":"<ns>"` and `"n":<int>` with
 * `Buffer.indexOf`), masked replies to pings (RFC 6455 ping frames and the
 * TeamPass `{"type":"ping"}` message) and a close reply. One timestamp is
 * taken per `data` chunk: every frame in a chunk arrived at the same time.
 *
 * Latency: the sender stamps `t0` with `process.hrtime.bigint()`, which is
 * CLOCK_MONOTONIC, shared by every process of the machine. Per frame the
 * client records now − t0; per event `n` it keeps how many of its sockets got
 * it and when the last one did, so the driver can merge processes and report
 * when an event reached its last recipient.
 *
 * Parent side: `WsLoad.start({ url, tokens, processes })` forks `processes`
 * children (each with the highest fd limit the shell allows), splits the
 * tokens between them and connects every socket; `reset()`, `counts()`,
 * `waitForEventFrames()`, `report()` and `stop()` drive them over IPC.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { percentiles, type Percentiles } from './harness.js';

const SELF = fileURLToPath(import.meta.url);

export interface WsLoadOptions {
  /** `ws://host:port/path` of the server. */
  url: string;
  /** One socket per token, sent as `?token=`. */
  tokens: string[];
  /** Client processes to split the sockets over. Default 1. */
  processes?: number;
  /**
   * `Origin` header of the upgrade. Default a browser-like origin: tp-ws caps
   * sockets without one (tools) apart and lower. null sends none.
   */
  origin?: string | null;
  /** After `connected`, subscribe every socket to this TeamPass folder and wait for the answer. */
  subscribeFolder?: number | null;
  /** Connections in flight at once, per process. Default 100. */
  concurrency?: number;
  /** Milliseconds for all of one process's sockets to be ready. Default 120,000. */
  connectTimeoutMs?: number;
}

/** How connecting went, over every process. */
export interface ConnectStats {
  sockets: number;
  failed: number;
  /** First few failure reasons. */
  errors: string[];
  /** TCP connect start → `connected` message, per socket. */
  handshake_ms: Percentiles;
  /** Until the last socket was ready (subscribed, when asked), slowest process. */
  wall_ms: number;
}

/** What the clients saw since the last reset. */
export interface WsLoadReport {
  sockets_open: number;
  /** Every text frame received (events, replies, pings). */
  frames: number;
  /** Frames carrying a `t0` stamp (benchmark events). */
  event_frames: number;
  /** now − t0 per event frame. */
  latency_ms: Percentiles;
  /** Per event `n`: recipients that got it, and t0 → last recipient in ms (null when nobody got it). */
  events: { n: number; recipients: number; complete_ms: number | null }[];
  /** hrtime (ns, CLOCK_MONOTONIC) of the first and last event frame, over every process. */
  first_frame_ns: number | null;
  last_frame_ns: number | null;
  /** CPU seconds the client processes used since the reset (sum, and the busiest process). */
  client_cpu_s: number;
  client_cpu_max_s: number;
  /** Close codes received from the server, with counts. */
  closes: Record<string, number>;
  /** Latency samples not kept because a process's buffer was full (percentiles then cover the first ones). */
  latency_dropped: number;
}

type Reply = Record<string, unknown> & { id: number };

/** One client process. */
class Worker {
  #next = 1;
  readonly #pending = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: Reply) => {
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      p?.resolve(m);
    });
    child.once('exit', (code, signal) => {
      for (const p of this.#pending.values()) p.reject(new Error(`wsload process exited (${signal ?? code})`));
      this.#pending.clear();
    });
  }

  ask(cmd: Record<string, unknown>, timeoutMs = 60_000): Promise<Reply> {
    const id = this.#next++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`wsload process: no answer to ${String(cmd.cmd)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.child.send({ ...cmd, id });
    });
  }
}

export class WsLoad {
  private constructor(private readonly workers: Worker[], readonly connectStats: ConnectStats) {}

  /** Fork the client processes and connect every socket; throws (after killing them) if any socket failed. */
  static async start(o: WsLoadOptions): Promise<WsLoad> {
    const processes = o.processes ?? 1;
    if (!Number.isInteger(processes) || processes < 1 || processes > 64) throw new Error(`processes must be 1..64, got ${processes}`);
    if (o.tokens.length === 0) throw new Error('no tokens: nothing to connect');
    const u = new URL(o.url);
    if (u.protocol !== 'ws:') throw new Error(`only ws:// URLs are supported, got ${u.protocol}`);
    const concurrency = o.concurrency ?? 100;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
    const timeoutMs = o.connectTimeoutMs ?? 120_000;
    const workers: Worker[] = [];
    for (let i = 0; i < Math.min(processes, o.tokens.length); i++) {
      // Through a shell to raise the fd soft limit to the hard one; `exec` keeps the IPC channel.
      const child = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, SELF], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
      });
      workers.push(new Worker(child));
    }
    const load = new WsLoad(workers, { sockets: 0, failed: 0, errors: [], handshake_ms: percentiles([]), wall_ms: 0 });
    try {
      const parts = workers.map((_, i) => o.tokens.filter((_, j) => j % workers.length === i));
      const replies = await Promise.all(workers.map((w, i) => w.ask({
        cmd: 'connect', host: u.hostname, port: Number(u.port || 80), path: u.pathname, tokens: parts[i],
        origin: o.origin === undefined ? 'https://bench.tp-ws.invalid' : o.origin, subscribeFolder: o.subscribeFolder ?? null, concurrency, timeoutMs,
      }, timeoutMs + 10_000)));
      const hs: number[] = [];
      for (const r of replies) {
        for (const v of r.handshakeMs as Float64Array) hs.push(v);
        load.connectStats.sockets += r.ready as number;
        load.connectStats.failed += r.failed as number;
        load.connectStats.errors.push(...(r.errors as string[]));
        load.connectStats.wall_ms = Math.max(load.connectStats.wall_ms, r.wallMs as number);
      }
      load.connectStats.errors.splice(5);
      load.connectStats.handshake_ms = percentiles(hs);
      load.connectStats.wall_ms = Math.round(load.connectStats.wall_ms);
      if (load.connectStats.failed > 0) throw new Error(`${load.connectStats.failed} of ${o.tokens.length} sockets failed to connect: ${load.connectStats.errors.join('; ')}`);
      return load;
    } catch (err) {
      load.kill();
      throw err;
    }
  }

  /** PIDs of the client processes (for /proc readings). */
  get pids(): number[] {
    return this.workers.map((w) => w.child.pid!);
  }

  /** Forget every frame, latency and CPU counted so far. */
  async reset(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ask({ cmd: 'reset' })));
  }

  /** Frames and event frames received since the reset, over every process. */
  async counts(): Promise<{ frames: number; event_frames: number; last_frame_ns: number | null }> {
    const rs = await Promise.all(this.workers.map((w) => w.ask({ cmd: 'count' })));
    const last = Math.max(...rs.map((r) => r.lastNs as number));
    return { frames: sum(rs.map((r) => r.frames as number)), event_frames: sum(rs.map((r) => r.eventFrames as number)), last_frame_ns: last > 0 ? last : null };
  }

  /**
   * Poll until `expected` event frames arrived or `timeoutMs` passed, or no
   * frame arrived for `quietMs` (what is missing is not coming). True when all came.
   */
  async waitForEventFrames(expected: number, timeoutMs: number, quietMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let lastChange = Date.now();
    for (;;) {
      const c = await this.counts();
      if (c.event_frames >= expected) return true;
      if (c.event_frames !== last) {
        last = c.event_frames;
        lastChange = Date.now();
      }
      if (Date.now() >= deadline || Date.now() - lastChange >= quietMs) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Everything seen since the reset, merged over the processes. */
  async report(): Promise<WsLoadReport> {
    const rs = await Promise.all(this.workers.map((w) => w.ask({ cmd: 'report' }, 120_000)));
    const lat = concat(rs.map((r) => r.latUs as Float64Array));
    for (let i = 0; i < lat.length; i++) lat[i] /= 1000;
    const nEvents = Math.max(0, ...rs.map((r) => (r.evCount as Uint32Array).length));
    const events: WsLoadReport['events'] = [];
    for (let n = 0; n < nEvents; n++) {
      let recipients = 0;
      let last = 0;
      let t0 = 0;
      for (const r of rs) {
        const count = r.evCount as Uint32Array;
        if (n >= count.length || count[n] === 0) continue;
        recipients += count[n];
        last = Math.max(last, (r.evLast as Float64Array)[n]);
        t0 = (r.evT0 as Float64Array)[n];
      }
      if (recipients > 0) events.push({ n, recipients, complete_ms: Math.round(((last - t0) / 1e6) * 1000) / 1000 });
    }
    const closes: Record<string, number> = {};
    for (const r of rs) for (const [code, c] of Object.entries(r.closes as Record<string, number>)) closes[code] = (closes[code] ?? 0) + c;
    const firsts = rs.map((r) => r.firstNs as number).filter((x) => x > 0);
    const lasts = rs.map((r) => r.lastNs as number).filter((x) => x > 0);
    const cpu = rs.map((r) => r.cpuS as number);
    return {
      sockets_open: sum(rs.map((r) => r.open as number)),
      frames: sum(rs.map((r) => r.frames as number)),
      event_frames: sum(rs.map((r) => r.eventFrames as number)),
      latency_ms: percentiles(lat),
      events,
      first_frame_ns: firsts.length > 0 ? Math.min(...firsts) : null,
      last_frame_ns: lasts.length > 0 ? Math.max(...lasts) : null,
      client_cpu_s: round3(sum(cpu)),
      client_cpu_max_s: round3(Math.max(...cpu)),
      closes,
      latency_dropped: sum(rs.map((r) => r.dropped as number)),
    };
  }

  /** Close every socket and end the processes. */
  async stop(): Promise<void> {
    await Promise.all(this.workers.map(async (w) => {
      if (w.child.exitCode !== null || w.child.signalCode !== null) return;
      const exited = new Promise((r) => w.child.once('exit', r));
      w.child.send({ cmd: 'close', id: 0 });
      const t = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }));
  }

  /** End the processes at once (on a failure). */
  kill(): void {
    for (const w of this.workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const round3 = (x: number) => Math.round(x * 1000) / 1000;

function concat(arrays: Float64Array[]): Float64Array {
  const out = new Float64Array(sum(arrays.map((a) => a.length)));
  let off = 0;
  for (const a of arrays) {
    out.set(a, off);
    off += a.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The client process.

/** Latency samples kept per process (32 MB); more are counted as dropped. */
const MAX_SAMPLES = 4_000_000;
/** Highest event number tracked per event. */
const MAX_EVENT_N = 10_000_000;

/** Where every socket of the process reads (see Conn's `onread`). */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const T0_KEY = Buffer.from('"t0":"');
const N_KEY = Buffer.from('"n":');
const PING_KEY = Buffer.from('"type":"ping"');
const PONG_MESSAGE = Buffer.from('{"action":"pong"}');

/** Counters of the client process since the last reset. */
class Stats {
  frames = 0;
  eventFrames = 0;
  lat = new Float64Array(1 << 16);
  latN = 0;
  dropped = 0;
  evCount = new Uint32Array(1024);
  evLast = new Float64Array(1024);
  evT0 = new Float64Array(1024);
  evMax = 0;
  firstNs = 0;
  lastNs = 0;
  closes: Record<string, number> = {};
  cpu0 = process.cpuUsage();

  addLatency(us: number): void {
    if (this.latN === this.lat.length) {
      if (this.latN >= MAX_SAMPLES) {
        this.dropped++;
        return;
      }
      const bigger = new Float64Array(Math.min(MAX_SAMPLES, this.lat.length * 2));
      bigger.set(this.lat);
      this.lat = bigger;
    }
    this.lat[this.latN++] = us;
  }

  addEvent(n: number, t0: number, now: number): void {
    if (n >= MAX_EVENT_N) return;
    if (n >= this.evCount.length) {
      let size = this.evCount.length;
      while (size <= n) size *= 2;
      const c = new Uint32Array(size); c.set(this.evCount); this.evCount = c;
      const l = new Float64Array(size); l.set(this.evLast); this.evLast = l;
      const t = new Float64Array(size); t.set(this.evT0); this.evT0 = t;
    }
    this.evCount[n]++;
    this.evT0[n] = t0;
    if (now > this.evLast[n]) this.evLast[n] = now;
    if (n + 1 > this.evMax) this.evMax = n + 1;
  }
}

let stats = new Stats();
const sockets = new Set<Conn>();

/** A client frame: FIN + opcode, masked as RFC 6455 requires of clients. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? 2 : 4;
  const f = Buffer.allocUnsafe(head + 4 + len);
  f[0] = 0x80 | opcode;
  if (len < 126) {
    f[1] = 0x80 | len;
  } else {
    f[1] = 0x80 | 126;
    f.writeUInt16BE(len, 2);
  }
  randomBytes(4).copy(f, head);
  for (let i = 0; i < len; i++) f[head + 4 + i] = payload[i] ^ f[head + (i & 3)];
  return f;
}

/** Decimal digits at `pos` of `b` as a number (exact below 2^53, which hrtime ns are for centuries). */
function digitsAt(b: Buffer, pos: number, end: number): number {
  let v = 0;
  for (let i = pos; i < end; i++) {
    const c = b[i];
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
  }
  return v;
}

interface ConnectJob {
  host: string;
  port: number;
  path: string;
  origin: string | null;
  subscribeFolder: number | null;
}

/** One client socket: upgrade, then frames. */
class Conn {
  #rest: Buffer | null = null;
  #state: 'upgrade' | 'auth' | 'subscribe' | 'ready' | 'closed' = 'upgrade';
  readonly #sock: Socket;
  readonly #t0 = process.hrtime.bigint();
  readonly #job: ConnectJob;
  handshakeMs = 0;

  constructor(job: ConnectJob, token: string, private readonly done: (err: string | null) => void) {
    this.#job = job;
    // `onread` reads into one buffer shared by every socket of the process and
    // skips the stream machinery ('data' events, a Buffer per read): at one
    // frame per read that overhead was most of the client's user time.
    this.#sock = netConnect({ host: job.host, port: job.port, onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.#onData(buf as Buffer, n) } });
    this.#sock.setNoDelay(true);
    const key = randomBytes(16).toString('base64');
    const origin = job.origin === null ? '' : `Origin: ${job.origin}\r\n`;
    this.#sock.write(`GET ${job.path}?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: ${job.host}:${job.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${origin}\r\n`);
    this.#sock.on('error', (err) => this.#fail(`socket error: ${err.message}`));
    this.#sock.on('close', () => {
      sockets.delete(this);
      this.#fail('closed by the server before ready');
      this.#state = 'closed';
    });
  }

  close(): void {
    this.#sock.destroy();
  }

  #fail(why: string): void {
    if (this.#state === 'ready' || this.#state === 'closed') return;
    this.#state = 'closed';
    this.#sock.destroy();
    this.done(why);
  }

  #send(text: string | Buffer): void {
    this.#sock.write(clientFrame(1, typeof text === 'string' ? Buffer.from(text) : text));
  }

  /** `n` bytes were read into `buf` (the shared READ_BUFFER: nothing may keep a view of it). */
  #onData(buf: Buffer, n: number): boolean {
    const now = Number(process.hrtime.bigint());
    let b = this.#rest === null ? buf.subarray(0, n) : Buffer.concat([this.#rest, buf.subarray(0, n)]);
    this.#rest = null;
    if (this.#state === 'upgrade') {
      const end = b.indexOf('\r\n\r\n');
      if (end < 0) {
        this.#rest = Buffer.from(b);
        return true;
      }
      const status = b.toString('latin1', 0, b.indexOf('\r\n'));
      if (!status.startsWith('HTTP/1.1 101')) {
        this.#fail(`upgrade refused: ${status}`);
        return false;
      }
      this.#state = 'auth';
      b = b.subarray(end + 4);
    }
    let off = 0;
    const len = b.length;
    while (len - off >= 2) {
      const b1 = b[off + 1];
      let size = b1 & 0x7f;
      let head = 2;
      if (size === 126) {
        if (len - off < 4) break;
        size = b.readUInt16BE(off + 2);
        head = 4;
      } else if (size === 127) {
        if (len - off < 10) break;
        size = b.readUInt32BE(off + 2) * 2 ** 32 + b.readUInt32BE(off + 6);
        head = 10;
      }
      if (b1 & 0x80) {
        this.#fail('the server sent a masked frame');
        return false;
      }
      if (len - off < head + size) break;
      this.#frame(b[off] & 0x0f, b, off + head, off + head + size, now);
      off += head + size;
    }
    // The remainder is copied: the read buffer is reused by the next read.
    if (off < len) this.#rest = Buffer.from(b.subarray(off));
    return true;
  }

  #frame(opcode: number, b: Buffer, start: number, end: number, now: number): void {
    if (opcode === 1) {
      stats.frames++;
      if (this.#state !== 'ready') return this.#handshakeMessage(b.toString('utf8', start, end));
      const at = b.indexOf(T0_KEY, start);
      if (at >= 0 && at < end) {
        const t0 = digitsAt(b, at + T0_KEY.length, end);
        stats.eventFrames++;
        stats.addLatency((now - t0) / 1000);
        if (stats.firstNs === 0) stats.firstNs = now;
        stats.lastNs = now;
        const n = b.indexOf(N_KEY, start);
        if (n >= 0 && n < end) stats.addEvent(digitsAt(b, n + N_KEY.length, end), t0, now);
        return;
      }
      const ping = b.indexOf(PING_KEY, start);
      if (ping >= 0 && ping < end) this.#send(PONG_MESSAGE);
    } else if (opcode === 9) {
      this.#sock.write(clientFrame(10, Buffer.from(b.subarray(start, end))));
    } else if (opcode === 8) {
      const code = end - start >= 2 ? b.readUInt16BE(start) : 1005;
      stats.closes[code] = (stats.closes[code] ?? 0) + 1;
      if (this.#state === 'ready') {
        this.#sock.end(clientFrame(8, Buffer.from(b.subarray(start, Math.min(end, start + 2)))));
      } else {
        this.#fail(`closed by the server (${code}) before ready`);
      }
    }
  }

  /** Messages before ready are few: parse them for real. */
  #handshakeMessage(text: string): void {
    let m: { type?: string; action?: string; status?: string; error_code?: string; message?: string };
    try {
      m = JSON.parse(text) as typeof m;
    } catch {
      return this.#fail(`not JSON before ready: ${text.slice(0, 80)}`);
    }
    if (m.type === 'error') return this.#fail(`${m.error_code}: ${m.message}`);
    if (this.#state === 'auth' && m.type === 'connected') {
      this.handshakeMs = Number(process.hrtime.bigint() - this.#t0) / 1e6;
      if (this.#job.subscribeFolder === null) return this.#ready();
      this.#state = 'subscribe';
      this.#send(JSON.stringify({ action: 'subscribe', channel: 'folder', data: { folder_id: this.#job.subscribeFolder }, request_id: 'bench_sub' }));
    } else if (this.#state === 'subscribe' && m.type === 'response' && m.action === 'subscribed') {
      this.#ready();
    } else if (m.type === 'ping') {
      this.#send(PONG_MESSAGE);
    }
  }

  #ready(): void {
    this.#state = 'ready';
    sockets.add(this);
    this.done(null);
  }
}

/** Connect `tokens.length` sockets, `concurrency` at a time. */
async function connectAll(job: ConnectJob, tokens: string[], concurrency: number, timeoutMs: number): Promise<Reply> {
  const started = process.hrtime.bigint();
  const handshakeMs = new Float64Array(tokens.length);
  const errors: string[] = [];
  let ready = 0;
  let failed = 0;
  let next = 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      failed += tokens.length - ready - failed;
      errors.push(`not ready within ${timeoutMs} ms`);
      resolve();
    }, timeoutMs);
    const startOne = () => {
      if (next >= tokens.length) return;
      const i = next++;
      const conn: Conn = new Conn(job, tokens[i], (err) => {
        if (err === null) {
          handshakeMs[ready++] = conn.handshakeMs;
        } else {
          failed++;
          if (errors.length < 5) errors.push(err);
        }
        if (ready + failed === tokens.length) {
          clearTimeout(timer);
          resolve();
        } else {
          startOne();
        }
      });
    };
    for (let k = 0; k < Math.min(concurrency, tokens.length); k++) startOne();
  });
  return { id: 0, ready, failed, errors, handshakeMs: handshakeMs.slice(0, ready), wallMs: Number(process.hrtime.bigint() - started) / 1e6 };
}

function serve(): void {
  process.on('message', (msg: Record<string, unknown> & { id: number; cmd: string }) => {
    const reply = (r: Record<string, unknown>) => process.send!({ ...r, id: msg.id });
    switch (msg.cmd) {
      case 'connect': {
        const job: ConnectJob = { host: msg.host as string, port: msg.port as number, path: msg.path as string, origin: msg.origin as string | null, subscribeFolder: msg.subscribeFolder as number | null };
        connectAll(job, msg.tokens as string[], msg.concurrency as number, msg.timeoutMs as number).then(reply, (err: Error) => reply({ ready: 0, failed: (msg.tokens as string[]).length, errors: [err.message], handshakeMs: new Float64Array(0), wallMs: 0 }));
        break;
      }
      case 'reset':
        stats = new Stats();
        reply({});
        break;
      case 'count':
        reply({ frames: stats.frames, eventFrames: stats.eventFrames, lastNs: stats.lastNs });
        break;
      case 'report': {
        const cpu = process.cpuUsage(stats.cpu0);
        const s = stats;
        reply({
          open: sockets.size, frames: s.frames, eventFrames: s.eventFrames, latUs: s.lat.slice(0, s.latN), dropped: s.dropped,
          evCount: s.evCount.slice(0, s.evMax), evLast: s.evLast.slice(0, s.evMax), evT0: s.evT0.slice(0, s.evMax),
          firstNs: s.firstNs, lastNs: s.lastNs, cpuS: (cpu.user + cpu.system) / 1e6, closes: s.closes,
        });
        break;
      }
      case 'close':
        for (const c of sockets) c.close();
        process.exit(0);
    }
  });
  // The parent went away: nothing left to report to.
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[1] === SELF && process.send !== undefined) serve();
