/**
 * The sending side of the ingest socket (docs/ingest.md), used by
 * `tp-ws-emit`, the tests and the benchmarks.
 *
 * Cold start matters here: `tp-ws-emit` loads this module once per event
 * (src/cli/emit.ts). Its imports are `node:net` and the error catalogue;
 * msgpackr is `import()`ed by `connect()` only for a msgpack connection.
 */
import { createConnection, type Socket } from 'node:net';
import { TpWsError } from '../errors.js';

type MsgpackCodec = typeof import('./msgpack-codec.js');

/** How frames and acks are encoded on a connection (docs/ingest.md §Encoding). */
export type IngestEncoding = 'ndjson' | 'msgpack';

/** One frame: one event (an object with docs/ingest.md field names) or a batch of events. */
export type IngestFrame = Readonly<Record<string, unknown>> | readonly unknown[];

/** An event the daemon accepted (docs/ingest.md §Acks). */
export interface IngestAccepted {
  ok: true;
  id: string;
  /** The daemon's sequence number; 0 for a duplicate. */
  seq: number;
  /** An event with this id was already delivered; it was not sent again. A success. */
  duplicate?: true;
  /**
   * Delivered, but not in the events table: `pending`, kept in memory and
   * written when the store answers; `dropped`, the history lost it.
   */
  journal?: 'pending' | 'dropped';
}

/** An event or a whole frame the daemon rejected; `error.code` is from docs/errors.md. */
export interface IngestRejected {
  ok: false;
  /** Present when the frame carried a usable id. */
  id?: string;
  error: { code: string; message: string };
}

/** The ack of a batch frame: one result per event, in order; `ok` is true when every result is. */
export interface IngestBatchAck {
  ok: boolean;
  results: (IngestAccepted | IngestRejected)[];
}

/** What the daemon answers to a frame. A batch frame gets an `IngestBatchAck`, or an `IngestRejected` for the whole frame. */
export type IngestAck = IngestAccepted | IngestRejected | IngestBatchAck;

/** True for the ack of a batch frame that was taken (not rejected as a whole). */
export function isBatchAck(ack: IngestAck): ack is IngestBatchAck {
  return Array.isArray((ack as { results?: unknown }).results);
}

export interface IngestClientOptions {
  /**
   * Encoding of the connection, both ways. `msgpack` loads msgpackr when
   * connecting. Default `'ndjson'`.
   */
  encoding?: IngestEncoding;
  /**
   * Milliseconds to wait for the connection, and, while an ack is awaited, for
   * the next ack to arrive (each ack restarts the wait, so a long pipeline is
   * fine as long as acks keep coming). When it passes, the connection is
   * dropped: a late ack must never be taken for the next frame's. Default 5000.
   */
  timeoutMs?: number;
}

const DEFAULTS: Required<IngestClientOptions> = { encoding: 'ndjson', timeoutMs: 5000 };

/** The largest ack read; a 1,000-event batch ack is about 100 KB. */
const MAX_ACK_BYTES = 16 * 1024 * 1024;

interface Waiter {
  /** nextAcks(): takes every queued ack. */
  all: boolean;
  resolve(acks: IngestAck | IngestAck[]): void;
  reject(err: TpWsError): void;
}

/**
 * One connection to the ingest socket.
 *
 * Frames may be pipelined: `send()` as many as you like, then take their acks
 * with `nextAck()` (or by the thousand with `nextAcks()`), or use `request()`
 * per frame. The daemon answers every frame with exactly one ack, in frame
 * order, so the n-th ack taken belongs to the n-th frame written. Acks
 * arriving before anyone asks for them are kept.
 *
 * When the connection fails (an error, the daemon closing it, no ack within
 * `timeoutMs`, an ack that is not one) every waiting and later call rejects
 * with a `TpWsError` whose message says why, for a human:
 * `TPWS_ERR_UNAVAILABLE` when the daemon is not there or gave no answer,
 * `TPWS_ERR_BAD_FRAME` when what came back is not an ack. A frame without an
 * ack was not received (docs/ingest.md §Acks): resend it with the same id, or
 * write it to the events table.
 *
 * @example
 * const client = await IngestClient.connect('/run/tp-ws/ingest.sock');
 * const ack = await client.request({ event_type: 'hello', target_type: 'user', target_id: 1 });
 * await client.close();
 */
export class IngestClient {
  /** The connection. Exposed for callers that must misbehave on purpose (tests pausing reads). */
  readonly socket: Socket;
  readonly encoding: IngestEncoding;
  readonly timeoutMs: number;
  /** Settles when the connection is closed, by either side. */
  readonly closed: Promise<void>;

  readonly #codec: MsgpackCodec | null;
  /** Bytes received after the last whole ack. */
  #rest: Buffer | null = null;
  readonly #acks = new Fifo<IngestAck>();
  readonly #waiters = new Fifo<Waiter>();
  #timer: NodeJS.Timeout | null = null;
  #failure: TpWsError | null = null;
  /** close() or destroy() was called: a close is ours, not the daemon's. */
  #ending = false;

  private constructor(socket: Socket, o: Required<IngestClientOptions>, codec: MsgpackCodec | null) {
    this.socket = socket;
    this.encoding = o.encoding;
    this.timeoutMs = o.timeoutMs;
    this.#codec = codec;
    socket.on('data', (chunk: Buffer) => this.#socketOnData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(new TpWsError('TPWS_ERR_UNAVAILABLE', describeSocketError(err), { cause: err })));
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        if (this.#failure === null) this.#fail(unavailable(this.#ending ? 'the connection was closed by the sender' : 'the daemon closed the connection'));
        resolve();
      });
    });
  }

  /**
   * Connect to the ingest socket at `path`.
   *
   * @param options.encoding `'ndjson'` (default) or `'msgpack'`
   * @param options.timeoutMs for the connection and for each ack, in ms (default 5000)
   * @throws TpWsError `TPWS_ERR_UNAVAILABLE` with a message for humans (see `describeSocketError`)
   */
  static async connect(path: string, options: IngestClientOptions = {}): Promise<IngestClient> {
    const o = { ...DEFAULTS, ...options };
    if (!(o.timeoutMs > 0)) throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in IngestClient: timeoutMs must be a positive number of milliseconds, not ${o.timeoutMs}`);
    const codec = o.encoding === 'msgpack' ? await import('./msgpack-codec.js') : null;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection({ path });
      const timer = setTimeout(() => {
        s.destroy();
        reject(unavailable(`no connection within ${o.timeoutMs} ms`));
      }, o.timeoutMs);
      const onError = (err: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        reject(new TpWsError('TPWS_ERR_UNAVAILABLE', describeSocketError(err), { cause: err }));
      };
      s.once('error', onError);
      s.once('connect', () => {
        clearTimeout(timer);
        s.off('error', onError);
        resolve(s);
      });
    });
    return new IngestClient(socket, o, codec);
  }

  /** The bytes of one frame in this connection's encoding. */
  encode(frame: IngestFrame): Buffer {
    return this.#codec === null ? Buffer.from(`${JSON.stringify(frame)}\n`) : this.#codec.encodeMsgpackFrame(frame);
  }

  /**
   * Write one frame; take its ack with `nextAck()`. Returns false when the
   * socket's buffer is full (see `drained()`) or the connection has failed.
   */
  send(frame: IngestFrame): boolean {
    if (this.#failure !== null) return false;
    // A string for NDJSON: the socket encodes it once, no Buffer in between.
    return this.socket.write(this.#codec === null ? `${JSON.stringify(frame)}\n` : this.#codec.encodeMsgpackFrame(frame));
  }

  /** Write frames in one write (one system call); take their acks with `nextAck()`. Returns as `send()`. */
  sendAll(frames: readonly IngestFrame[]): boolean {
    if (this.#failure !== null) return false;
    if (this.#codec === null) {
      let text = '';
      for (const f of frames) text += `${JSON.stringify(f)}\n`;
      return this.socket.write(text);
    }
    const codec = this.#codec;
    return this.socket.write(Buffer.concat(frames.map((f) => codec.encodeMsgpackFrame(f))));
  }

  /**
   * Write bytes as they are: frames from `encode()`, split or joined anywhere.
   * The acks they bring are taken with `nextAck()`; bytes that are not whole
   * frames leave the ack count to the caller.
   */
  writeRaw(bytes: Buffer | string): boolean {
    if (this.#failure !== null) return false;
    return this.socket.write(bytes);
  }

  /** Send one frame and resolve with its ack. Pipelining is fine: the promises settle in frame order. */
  request(frame: IngestFrame): Promise<IngestAck> {
    this.send(frame);
    return this.nextAck();
  }

  /**
   * The next ack, in frame order: one already received, or the next to
   * arrive. Rejects once the connection has failed and every ack received
   * before has been taken.
   */
  nextAck(): Promise<IngestAck> {
    const ack = this.#acks.shift();
    if (ack !== undefined) return Promise.resolve(ack);
    return this.#wait(false) as Promise<IngestAck>;
  }

  /**
   * Every ack received and not yet taken, in frame order; waits for one when
   * there is none. For senders that take acks by the thousand: one promise a
   * read from the socket, not one an ack. Rejects as `nextAck()` does.
   */
  nextAcks(): Promise<IngestAck[]> {
    if (this.#acks.length > 0) return Promise.resolve(this.#acks.takeAll());
    return this.#wait(true) as Promise<IngestAck[]>;
  }

  /** Resolves once the socket has room for more writes (at once when it has), or when it closes. */
  drained(): Promise<void> {
    if (!this.socket.writableNeedDrain || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done).off('close', done);
        resolve();
      };
      this.socket.on('drain', done).on('close', done);
    });
  }

  /**
   * End the connection once the frames written so far are flushed; resolves
   * when it is closed. Acks not received by then are lost: close after the
   * last ack you wait for. Idempotent.
   */
  close(): Promise<void> {
    this.#ending = true;
    this.socket.end();
    return this.closed;
  }

  /** Drop the connection now; waiting calls reject. Idempotent. */
  destroy(): void {
    this.#ending = true;
    this.#fail(unavailable('the connection was closed by the sender'));
  }

  #socketOnData(chunk: Buffer): void {
    if (this.#failure !== null) return;
    // Queue every ack of the chunk, then wake the waiters: a nextAcks() caller
    // gets them all at once.
    const before = this.#acks.length;
    const error = this.#readAcks(chunk);
    if (this.#acks.length > before) this.#wake();
    if (error !== null) this.#fail(error);
  }

  /**
   * Queue the acks in `chunk`; the error that ends the connection, if one does.
   *
   * Not the daemon's FrameDecoder: that one splits frames it must not trust
   * (limits, an oversize line skipped, the encoding picked by the first byte),
   * one at a time. Acks come from the daemon, and at 50,000 a second the NDJSON
   * path wants one JSON.parse for all the lines of a chunk.
   */
  #readAcks(chunk: Buffer): TpWsError | null {
    const buf = this.#rest === null ? chunk : Buffer.concat([this.#rest, chunk]);
    return this.#codec === null ? this.#readLines(buf) : this.#readLengthPrefixed(buf, this.#codec);
  }

  /**
   * NDJSON acks. Every whole line of the chunk goes through one JSON.parse (as
   * the items of an array), which costs half as much as a parse a line.
   */
  #readLines(buf: Buffer): TpWsError | null {
    const end = buf.lastIndexOf(0x0a);
    if (end < 0) {
      // No ack is this long: the peer is not the daemon.
      if (buf.length > MAX_ACK_BYTES) return unreadableAck();
      this.#rest = buf;
      return null;
    }
    let lines = 1;
    for (let nl = buf.indexOf(0x0a); nl < end; nl = buf.indexOf(0x0a, nl + 1)) lines++;
    const text = buf.toString('utf8', 0, end);
    this.#keep(buf, end + 1);
    let acks: unknown;
    try {
      acks = JSON.parse(`[${text.replaceAll('\n', ',')}]`);
    } catch {
      acks = null;
    }
    // A blank or broken line (or, from a peer that forges acks anyway, a line
    // holding two values): one line at a time, to keep the acks before it.
    if (!Array.isArray(acks) || acks.length !== lines) return this.#readLineByLine(text);
    for (const ack of acks) if (!this.#queue(ack)) return unexpectedAck();
    return null;
  }

  #readLineByLine(text: string): TpWsError | null {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let ack: unknown;
      try {
        ack = JSON.parse(line);
      } catch {
        return unreadableAck();
      }
      if (!this.#queue(ack)) return unexpectedAck();
    }
    return null;
  }

  /** msgpack acks: a 4-byte big-endian length, then the body (docs/ingest.md §Encoding). */
  #readLengthPrefixed(buf: Buffer, codec: MsgpackCodec): TpWsError | null {
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (len > MAX_ACK_BYTES) return unreadableAck();
      if (buf.length - at - 4 < len) break;
      let ack: unknown;
      try {
        ack = codec.decodeMsgpack(buf.subarray(at + 4, at + 4 + len));
      } catch {
        return unreadableAck();
      }
      if (!this.#queue(ack)) return unexpectedAck();
      at += 4 + len;
    }
    this.#keep(buf, at);
    return null;
  }

  /** Hold the bytes from `at` on for the next chunk (a copy: the chunk is not pinned). */
  #keep(buf: Buffer, at: number): void {
    this.#rest = at === buf.length ? null : Buffer.from(buf.subarray(at));
  }

  /**
   * Queue one ack; false when it is not one. The one check every ack gets
   * (cheap: the throughput bench takes 50,000 a second); what the fields mean
   * is the caller's business.
   */
  #queue(ack: unknown): boolean {
    if (typeof ack !== 'object' || ack === null || typeof (ack as { ok?: unknown }).ok !== 'boolean') return false;
    this.#acks.push(ack as IngestAck);
    return true;
  }

  #wait(all: boolean): Promise<IngestAck | IngestAck[]> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ all, resolve, reject });
      if (this.#timer === null) this.#timer = setTimeout(this.#onTimeout, this.timeoutMs);
    });
  }

  /** Hand queued acks to the waiters, in order. */
  #wake(): void {
    for (let w = this.#waiters.peek(); w !== undefined && this.#acks.length > 0; w = this.#waiters.peek()) {
      this.#waiters.shift();
      w.resolve(w.all ? this.#acks.takeAll() : (this.#acks.shift() as IngestAck));
    }
    // Acks came: the wait for the next one starts now.
    if (this.#waiters.length === 0) this.#stopTimer();
    else this.#timer?.refresh();
  }

  readonly #onTimeout = (): void => {
    this.#timer = null;
    this.#fail(unavailable(`no ack within ${this.timeoutMs} ms`));
  };

  #stopTimer(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The first failure wins; the connection is dropped, since its ack stream can no longer be trusted. */
  #fail(err: TpWsError): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    this.#stopTimer();
    for (let w = this.#waiters.shift(); w !== undefined; w = this.#waiters.shift()) w.reject(err);
    this.socket.destroy();
  }
}

/**
 * A connection error for humans; the codes a sender meets on a Unix socket
 * get a hint at the usual cause.
 */
export function describeSocketError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return 'no socket at this path (ENOENT: is the daemon running?)';
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED: no daemon listening)';
    case 'EACCES':
      return 'permission denied (EACCES: check ingest.socketGroup and ingest.socketMode)';
    default:
      return `${err.code ?? 'error'}: ${err.message}`;
  }
}

function unavailable(message: string): TpWsError {
  return new TpWsError('TPWS_ERR_UNAVAILABLE', message);
}

function unreadableAck(): TpWsError {
  return new TpWsError('TPWS_ERR_BAD_FRAME', 'the daemon answered with an unreadable ack');
}

function unexpectedAck(): TpWsError {
  return new TpWsError('TPWS_ERR_BAD_FRAME', 'the daemon answered with an unexpected ack');
}

/**
 * A queue with O(1) shift. A pipelining sender holds tens of thousands of
 * acks or waiters, and `Array#shift` on an array that large copies it.
 */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  /** Remove and return every item. */
  takeAll(): T[] {
    const all = (this.#head === 0 ? this.#items : this.#items.slice(this.#head)) as T[];
    this.#items = [];
    this.#head = 0;
    return all;
  }

  shift(): T | undefined {
    if (this.#head === this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}
