/**
 * Fuzzing tools for the reliability suite (test/reliability/fuzz-*.test.ts):
 * seeded generators and mutators of valid client actions and ingest events,
 * a raw WebSocket client that does its own upgrade and writes hand-built
 * frames (so it can send what no WebSocket library would), a "still serving"
 * probe, and the daemon's memory from /proc.
 *
 * Everything random draws from a `Random` (test/helpers/random.ts), so a
 * seed replays the same inputs.
 */
import { randomBytes as cryptoBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { IngestClient } from '../../src/ingest/client.js';
import { decodeMsgpack } from '../../src/ingest/msgpack-codec.js';
import type { Random } from './random.js';
import { TestClient, type Message } from './ws-client.js';

// ---------------------------------------------------------------------------
// Random values

/** `n` bytes drawn from `rng`. */
export function randomBytes(rng: Random, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(0, 255);
  return b;
}

/** JSON text nested `depth` levels deep: arrays, or objects `{"a":…}`. */
export function deepJson(depth: number, kind: 'array' | 'object' = 'array'): string {
  return kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** Values of every JSON type and the edge cases of each: what a mutated field becomes. */
export function wrongValue(rng: Random): unknown {
  return rng.pick<() => unknown>([
    () => null,
    () => true,
    () => false,
    () => 0,
    () => -1,
    () => 1.5,
    () => 2 ** 53 + 2,
    () => 4294967296,
    () => 1e308,
    () => '',
    () => '12abc',
    () => ' 7',
    () => '\u0000',
    () => '\ud800', // a lone surrogate
    () => 'é'.repeat(rng.int(1, 40)),
    () => 'x'.repeat(rng.int(100, 5000)),
    () => [],
    () => [1, 2],
    () => ({}),
    () => ({ nested: { deeper: [null] } }),
    () => JSON.parse(deepJson(rng.int(10, 200))),
    () => '__proto__',
    () => ({ __proto__: { polluted: true } }),
  ])();
}

/**
 * A copy of `obj` with one to three changes: a field given a value of
 * another type, removed, or an unknown field added (also inside `data`).
 */
export function mutateObject(rng: Random, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = JSON.parse(JSON.stringify(obj));
  const changes = rng.int(1, 3);
  for (let i = 0; i < changes; i++) {
    const target = typeof out.data === 'object' && out.data !== null && !Array.isArray(out.data) && rng.chance(0.5) ? (out.data as Record<string, unknown>) : out;
    const keys = Object.keys(target);
    const op = rng.int(0, 2);
    if (op === 0 && keys.length > 0) target[rng.pick(keys)] = wrongValue(rng);
    else if (op === 1 && keys.length > 0) delete target[rng.pick(keys)];
    else target[rng.pick(['extra', 'tab', 'folder_id', 'item_id', 'kb_id', 'channel', 'request_id', 'seq', 'epoch', 'payload', 'id'])] = wrongValue(rng);
  }
  return out;
}

/** JSON-looking text made of pieces that matter to the parsers: often broken, sometimes valid. */
export function jsonish(rng: Random, pieces: readonly string[]): string {
  let s = '';
  const n = rng.int(1, 14);
  for (let k = 0; k < n; k++) s += rng.pick(pieces);
  return s;
}

/** A valid client action (docs/protocol.md §Actions) for an admin's socket, with a request_id. */
export function validAction(rng: Random, rid: string): Record<string, unknown> {
  const folder = rng.int(1, 50);
  const item = rng.int(1, 50);
  const tab = rng.chance(0.5) ? { tab: `t${rng.int(0, 9)}` } : {};
  const action = rng.pick<() => Record<string, unknown>>([
    () => ({ action: 'subscribe', channel: 'folder', data: { folder_id: folder } }),
    () => ({ action: 'subscribe', channel: 'kb', data: {} }),
    () => ({ action: 'unsubscribe', channel: 'folder', data: { folder_id: folder } }),
    () => ({ action: 'unsubscribe', channel: 'kb' }),
    () => ({ action: 'resume', data: { epoch: '00000000-0000-7000-8000-000000000000', seq: rng.int(0, 100), folders: [folder], kb: rng.chance(0.5) } }),
    () => ({ action: 'start_item_view', data: { item_id: item, folder_id: folder, ...tab } }),
    () => ({ action: 'stop_item_view', data: { item_id: item, ...tab } }),
    () => ({ action: 'start_kb_view', data: { kb_id: item, ...tab } }),
    () => ({ action: 'stop_kb_view', data: { kb_id: item, ...tab } }),
    () => ({ action: 'renew_item_lock', data: { item_id: item } }),
    () => ({ action: 'renew_kb_lock', data: { kb_id: item } }),
    () => ({ action: 'ping' }),
    () => ({ action: 'pong' }),
    () => ({ action: 'get_status' }),
    () => ({ action: 'get_stats' }),
  ])();
  return { ...action, request_id: rid };
}

/** A valid ingest event (docs/ingest.md §Frames) for user `userId`, with its id. */
export function validEvent(rng: Random, id: string, userId: number): Record<string, unknown> {
  return rng.pick<() => Record<string, unknown>>([
    () => ({ id, event_type: 'fuzz_user', target_type: 'user', target_id: userId, payload: { n: rng.int(0, 1e6) } }),
    () => ({ id, event_type: 'fuzz_user_text', target_type: 'user', target_id: String(userId), payload: JSON.stringify({ s: 'é✓' }) }),
    () => ({ id, event_type: 'fuzz_broadcast', target_type: 'broadcast', payload: { list: [1, 2, 3] }, exclude_user_id: 0 }),
    () => ({ id, event_type: 'fuzz_user_at', target_type: 'user', target_id: userId, created_at: Date.now() - rng.int(0, 1e6), payload: [] }),
  ])();
}

// ---------------------------------------------------------------------------
// WebSocket frames by hand (RFC 6455 §5.2)

export const Op = { CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  /** FIN bit; default true. */
  fin?: boolean;
  /** RSV1-3 as a 3-bit number (4 = RSV1); default 0. */
  rsv?: number;
  /** Mask the payload, as a client must; default true. */
  mask?: boolean;
  /** Length to declare instead of the payload's (a lie: only the header is meaningful then). */
  declaredLength?: bigint;
}

/** One frame as a client writes it (masked unless told otherwise). */
export function wsFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload, 'utf8') : (spec.payload ?? Buffer.alloc(0));
  const len = spec.declaredLength ?? BigInt(payload.length);
  const mask = spec.mask ?? true;
  const b0 = (spec.fin === false ? 0 : 0x80) | ((spec.rsv ?? 0) << 4) | (spec.opcode & 0x0f);
  let head: Buffer;
  if (len < 126n) head = Buffer.from([b0, Number(len)]);
  else if (len < 65536n) {
    head = Buffer.alloc(4);
    head[0] = b0;
    head[1] = 126;
    head.writeUInt16BE(Number(len), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = 127;
    head.writeBigUInt64BE(len, 2);
  }
  if (!mask) return Buffer.concat([head, payload]);
  head[1] |= 0x80;
  const key = cryptoBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([head, key, body]);
}

/** A close frame's payload: the code, then the reason bytes. */
export function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

/** How a raw socket ended: the server's close code, or 1006 when the TCP connection ended without one. */
export interface RawEnd {
  code: number;
  reason: string;
}

/**
 * A WebSocket client on a bare TCP socket: it does the HTTP upgrade itself
 * and then writes whatever bytes it is given. It reads the server's frames
 * (text messages as JSON, pings, pongs and the close frame) and answers
 * nothing on its own, so every byte on the wire is the test's choice.
 */
export class RawWs {
  readonly messages: Message[] = [];
  /** Payloads of RFC 6455 pong frames received. */
  readonly pongs: Buffer[] = [];
  readonly ended: Promise<RawEnd>;
  private closeFrame: RawEnd | null = null;
  private rest = Buffer.alloc(0);
  private waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];

  private constructor(readonly socket: Socket) {
    this.ended = new Promise((resolve) => socket.once('close', () => resolve(this.closeFrame ?? { code: 1006, reason: '' })));
    socket.on('error', () => undefined);
  }

  /**
   * Connect to `port`, upgrade with `?token=` and resolve once the 101 is
   * read. `origin` adds an Origin header (a browser's socket).
   */
  static open(port: number, token: string, opts: { origin?: boolean } = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const status = head.subarray(0, head.indexOf('\r\n')).toString();
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${status}`));
          return;
        }
        const ws = new RawWs(socket);
        socket.on('data', (c: Buffer) => ws.onData(c));
        ws.onData(head.subarray(end + 4));
        resolve(ws);
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.write(
        `GET /ws?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${cryptoBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${opts.origin ? 'Origin: http://127.0.0.1\r\n' : ''}\r\n`,
      );
    });
  }

  /** Open and wait for `connected`. */
  static async login(port: number, token: string): Promise<RawWs> {
    const ws = await RawWs.open(port, token);
    const first = await ws.next(() => true);
    if (first.type !== 'connected') throw new Error(`expected connected, got ${JSON.stringify(first)}`);
    return ws;
  }

  /** Write raw bytes (frames, pieces of frames, garbage); false once the socket is gone. */
  write(bytes: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.socket.write(bytes);
    return true;
  }

  /** Write one complete masked text frame. */
  text(s: string | Buffer): boolean {
    return this.write(wsFrame({ opcode: Op.TEXT, payload: s }));
  }

  /** The next message matching `pred` that was not taken yet; rejects when the socket ends first or after `timeoutMs`. */
  next(pred: (m: Message) => boolean, timeoutMs = 10_000): Promise<Message> {
    const i = this.messages.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.messages.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(`no matching message within ${timeoutMs} ms`), timeoutMs);
      const fail = (why: string) => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${why}; received: ${JSON.stringify(this.messages).slice(0, 400)}`));
      };
      const waiter = { pred, resolve: (m: Message) => { clearTimeout(timer); resolve(m); } };
      this.waiters.push(waiter);
      void this.ended.then((e) => {
        if (this.waiters.includes(waiter)) {
          clearTimeout(timer);
          fail(`socket ended (${e.code})`);
        }
      });
    });
  }

  /** Send a ping action and wait for its pong: everything sent before it was handled. */
  async roundTrip(rid: string, timeoutMs = 10_000): Promise<void> {
    this.text(JSON.stringify({ action: 'ping', request_id: rid }));
    await this.next((m) => m.request_id === rid, timeoutMs);
  }

  /** Wait for the end, after `timeoutMs` cut the socket (then 1006 unless a close frame came). */
  async end(timeoutMs = 10_000): Promise<RawEnd> {
    const timer = setTimeout(() => this.socket.destroy(), timeoutMs);
    const e = await this.ended;
    clearTimeout(timer);
    return e;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.rest = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk]);
    for (;;) {
      const b = this.rest;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) return;
      const opcode = b[0] & 0x0f;
      const payload = b.subarray(off, off + len);
      this.rest = b.subarray(off + len);
      if (opcode === Op.TEXT) this.onMessage(JSON.parse(payload.toString('utf8')) as Message);
      else if (opcode === Op.PONG) this.pongs.push(Buffer.from(payload));
      else if (opcode === Op.CLOSE) {
        this.closeFrame ??= { code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005, reason: payload.subarray(2).toString() };
      }
    }
  }

  private onMessage(m: Message): void {
    const w = this.waiters.find((x) => x.pred(m));
    if (w === undefined) {
      this.messages.push(m);
      return;
    }
    this.waiters = this.waiters.filter((x) => x !== w);
    w.resolve(m);
  }
}

// ---------------------------------------------------------------------------
// "Still serving"

/**
 * A well-behaved client and sender beside the fuzzing: `check()` sends an
 * event to the probe's user through the ingest socket and waits for the
 * probe's WebSocket to receive it, so "the daemon still serves" means an
 * event went all the way through, not just that a port answered.
 */
export class ServingProbe {
  /** Milliseconds from send to delivery of each check, in order. */
  readonly latencies: number[] = [];
  private n = 0;

  private constructor(private readonly client: TestClient, private readonly sender: IngestClient, private readonly userId: number) {}

  static async open(wsUrl: string, ingestPath: string, userId: number): Promise<ServingProbe> {
    const { client } = await TestClient.login(wsUrl);
    const sender = await IngestClient.connect(ingestPath, { timeoutMs: 20_000 });
    return new ServingProbe(client, sender, userId);
  }

  /** One event through; throws (naming `label`) when it is not acked or not delivered within 20 s. */
  async check(label: string): Promise<void> {
    const id = `probe-${process.pid}-${++this.n}`;
    const t0 = performance.now();
    const ack = await this.sender.request({ id, event_type: 'probe', target_type: 'user', target_id: this.userId, payload: { label } });
    if (!ack.ok) throw new Error(`probe after ${label}: ack ${JSON.stringify(ack)}`);
    await this.client.next((m) => m.type === 'event' && m.id === id, 20_000).catch((err: Error) => {
      throw new Error(`probe after ${label}: event not delivered (${err.message})`);
    });
    this.latencies.push(performance.now() - t0);
  }

  async close(): Promise<void> {
    await this.sender.close();
    await this.client.close();
  }
}

// ---------------------------------------------------------------------------
// Memory of a process

export interface ProcMemory {
  /** Resident set, KiB. */
  rssKb: number;
  /** Peak resident set, KiB. */
  hwmKb: number;
}

/** VmRSS and VmHWM of process `pid` from /proc/<pid>/status. */
export function procMemory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

/** Percentiles of `xs` (ms), rounded to 0.1, for a note line. */
export function percentiles(xs: readonly number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => (s.length === 0 ? 0 : Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 10) / 10);
  return { p50: at(0.5), p99: at(0.99), max: at(1) };
}

// ---------------------------------------------------------------------------
// The ingest socket, raw

/** One ingest ack as docs/ingest.md §Acks gives it. */
export type Ack = Record<string, any>;

/**
 * An ingest connection on a bare Unix socket: writes whatever bytes it is
 * given and reads the acks in the connection's encoding (NDJSON lines, or
 * length-prefixed msgpack, told apart by the first byte the daemon sends).
 */
export class RawIngest {
  readonly acks: Ack[] = [];
  readonly closed: Promise<void>;
  ended = false;
  private rest = Buffer.alloc(0);
  private wake: (() => void) | null = null;

  private constructor(readonly socket: Socket) {
    socket.on('error', () => undefined);
    socket.on('data', (c: Buffer) => this.onData(c));
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.ended = true;
      this.wake?.();
      resolve();
    }));
  }

  static open(path: string): Promise<RawIngest> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new RawIngest(s)));
      s.once('error', reject);
    });
  }

  write(bytes: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Wait until `n` acks in all have arrived; throws when the connection ends first or after `timeoutMs`. */
  async waitAcks(n: number, timeoutMs = 20_000): Promise<Ack[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.acks.length < n) {
      if (this.ended) throw new Error(`connection closed after ${this.acks.length} of ${n} acks`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`only ${this.acks.length} of ${n} acks within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.acks.slice(0, n);
  }

  private onData(chunk: Buffer): void {
    this.rest = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk]);
    for (;;) {
      if (this.rest.length === 0) break;
      if (this.rest[0] === 0x7b) {
        const nl = this.rest.indexOf(0x0a);
        if (nl < 0) break;
        this.acks.push(JSON.parse(this.rest.subarray(0, nl).toString('utf8')) as Ack);
        this.rest = this.rest.subarray(nl + 1);
      } else {
        if (this.rest.length < 4) break;
        const len = this.rest.readUInt32BE(0);
        if (this.rest.length < 4 + len) break;
        this.acks.push(decodeMsgpack(this.rest.subarray(4, 4 + len)) as Ack);
        this.rest = this.rest.subarray(4 + len);
      }
    }
    this.wake?.();
  }
}
