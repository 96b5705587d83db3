import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { TpWsError, isTpWsError, type TpWsErrorCode } from '../errors.js';
import { EventInvalid } from '../event.js';
import { ID_MAX, positiveInt } from '../int.js';
import { listen } from '../listen.js';
import type { Logger } from '../log.js';
import type { Intake, IntakeResult } from '../pipeline/intake.js';
import type { JournalOutcome } from '../pipeline/journal.js';
import { decodeMsgpack, encodeMsgpackFrame } from './msgpack-codec.js';
import { FrameDecoder, type DecodedItem, type Encoding } from './frame-decoder.js';

/** Connections served at once (docs/ingest.md §The socket). */
export const MAX_INGEST_CONNECTIONS = 1024;
/** Unread ack bytes after which a connection is no longer read (docs/ingest.md §Flow control). */
const MAX_UNREAD_ACK_BYTES = 1024 * 1024;
/**
 * Frames read but not yet acked (their acks wait for the journal) after which
 * a connection is no longer read. Without it a sender that pipelines faster
 * than the journal writes would grow the daemon's memory and the journal's
 * queue without bound.
 */
const MAX_UNACKED_FRAMES = 4096;

export interface UnixSocketIngestOptions {
  path: string;
  /** Octal string, e.g. `0660`. */
  mode: string;
  /** Group name or numeric gid, or null. */
  group: string | null;
  maxFrameBytes: number;
  maxBatchEvents: number;
  /** `journal`: acks wait for the journal write; `delivery`: acks leave after fan-out. */
  ackAfter: 'journal' | 'delivery';
}

export interface IngestCounters {
  connections: number;
  frames: number;
  eventsAccepted: number;
  eventsRejected: number;
  duplicates: number;
  badFrames: number;
  /** Error acks by code (frame-level and per-event). */
  errors: Partial<Record<TpWsErrorCode, number>>;
}

type Ack = Record<string, unknown>;

interface Conn {
  socket: Socket;
  decoder: FrameDecoder;
  /** Acks leave in frame order: each waits for the previous one. */
  tail: Promise<void>;
  /** Frames whose ack has not been written yet. */
  unacked: number;
  closing: boolean;
}


/**
 * The ingest Unix socket (docs/ingest.md): frames of one event or a batch,
 * NDJSON or length-prefixed msgpack (picked by the first byte), one ack per
 * frame, in order. An ack is written once the events are fanned out and in the
 * journal — or at once with `journal: "pending"` while the store is down, so a
 * sender is never held by a database outage.
 */
export class UnixSocketIngest {
  readonly counters: IngestCounters = { connections: 0, frames: 0, eventsAccepted: 0, eventsRejected: 0, duplicates: 0, badFrames: 0, errors: {} };
  private readonly server: Server;
  private readonly conns = new Set<Conn>();
  private closing = false;

  constructor(private readonly o: UnixSocketIngestOptions, private readonly intake: Intake, private readonly log: Logger) {
    this.server = createServer((socket) => this.serverOnConnection(socket));
    this.server.maxConnections = MAX_INGEST_CONNECTIONS;
  }

  get path(): string {
    return this.o.path;
  }

  async listen(): Promise<void> {
    const path = this.o.path;
    // sockaddr_un holds 108 bytes with the terminating NUL; a longer path fails obscurely.
    if (Buffer.byteLength(path) > 107) {
      throw new TpWsError('TPWS_ERR_LISTEN', `ingest socket path is ${Buffer.byteLength(path)} bytes long; Unix sockets allow at most 107: choose a shorter ingest.socket`);
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
    await removeStaleSocket(path);
    await listen(this.server, { path, setting: 'ingest.socket', flag: '--socket' });
    try {
      chmodSync(path, parseInt(this.o.mode, 8));
      if (this.o.group !== null) chownSync(path, -1, resolveGid(this.o.group));
    } catch (err) {
      await this.close();
      if (isTpWsError(err)) throw err;
      throw new TpWsError('TPWS_ERR_LISTEN', `cannot set mode ${this.o.mode}${this.o.group ? ` and group ${this.o.group}` : ''} on ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  private serverOnConnection(socket: Socket): void {
    this.counters.connections++;
    const conn: Conn = { socket, decoder: new FrameDecoder(this.o.maxFrameBytes), tail: Promise.resolve(), unacked: 0, closing: false };
    this.conns.add(conn);
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'ingest connection error'));
    socket.on('close', () => this.conns.delete(conn));
    socket.on('drain', () => this.resumeIfDrained(conn));
    socket.on('data', (chunk: Buffer) => this.connOnData(conn, chunk));
  }

  private connOnData(conn: Conn, chunk: Buffer): void {
    if (conn.closing) return;
    for (const item of conn.decoder.push(chunk)) {
      this.handleItem(conn, item);
      if (conn.closing) return;
    }
    if (conn.socket.writableLength > MAX_UNREAD_ACK_BYTES || conn.unacked > MAX_UNACKED_FRAMES) conn.socket.pause();
  }

  /** Read again once the sender has taken its acks and the journal has caught up (docs/ingest.md §Flow control). */
  private resumeIfDrained(conn: Conn): void {
    if (conn.closing || !conn.socket.isPaused()) return;
    if (conn.socket.writableLength <= MAX_UNREAD_ACK_BYTES && conn.unacked <= MAX_UNACKED_FRAMES / 2) conn.socket.resume();
  }

  private handleItem(conn: Conn, item: DecodedItem): void {
    this.counters.frames++;
    if (item.kind === 'bad-start') {
      this.counters.badFrames++;
      this.log.warn({ code: 'TPWS_ERR_BAD_FRAME', first_byte: item.byte }, 'ingest connection with an unknown encoding; closed');
      this.sendAck(conn, 'ndjson', this.errorAck('TPWS_ERR_BAD_FRAME', `the first byte (0x${item.byte.toString(16).padStart(2, '0')}) must be '{', '[' or whitespace for NDJSON, or 0x00 for length-prefixed msgpack`), null);
      this.endConn(conn);
      return;
    }
    const enc = conn.decoder.encoding as Encoding;
    if (item.kind === 'too-large') {
      this.counters.badFrames++;
      this.log.warn({ code: 'TPWS_ERR_FRAME_TOO_LARGE', size: item.size, max: this.o.maxFrameBytes }, 'ingest frame too large');
      this.sendAck(conn, enc, this.errorAck('TPWS_ERR_FRAME_TOO_LARGE', `frame of ${item.size} bytes is larger than ingest.maxFrameBytes (${this.o.maxFrameBytes}); split it`), null);
      if (conn.decoder.fatal) this.endConn(conn);
      return;
    }
    if (this.closing) {
      this.sendAck(conn, enc, this.errorAck('TPWS_ERR_UNAVAILABLE', 'the daemon is shutting down; retry later or write the event to the table'), null);
      this.endConn(conn);
      return;
    }
    let value: unknown;
    try {
      value = enc === 'ndjson' ? JSON.parse(item.body.toString('utf8')) : decodeMsgpack(item.body);
    } catch (err) {
      this.counters.badFrames++;
      const what = enc === 'ndjson' ? 'JSON' : 'msgpack';
      this.log.warn({ code: 'TPWS_ERR_BAD_FRAME', reason: (err as Error).message.slice(0, 200) }, `ingest frame is not valid ${what}`);
      this.sendAck(conn, enc, this.errorAck('TPWS_ERR_BAD_FRAME', `frame is not valid ${what}: ${(err as Error).message.slice(0, 200)}`), null);
      return;
    }
    if (Array.isArray(value)) this.handleBatch(conn, enc, value);
    else if (typeof value === 'object' && value !== null) {
      const r = this.acceptEvent(value);
      this.count(r);
      const ack = resultAck(r);
      this.sendAck(conn, enc, ack, r.ok && this.o.ackAfter === 'journal' ? r.journaled.then((o) => annotate(ack, o)) : null);
    } else {
      this.counters.badFrames++;
      this.log.warn({ code: 'TPWS_ERR_BAD_FRAME', type: value === null ? 'null' : typeof value }, 'ingest frame is neither an event nor a batch');
      this.sendAck(conn, enc, this.errorAck('TPWS_ERR_BAD_FRAME', 'a frame must be one event (an object) or a batch (an array of events)'), null);
    }
  }

  private handleBatch(conn: Conn, enc: Encoding, list: unknown[]): void {
    if (list.length > this.o.maxBatchEvents) {
      this.counters.badFrames++;
      this.log.warn({ code: 'TPWS_ERR_BATCH_TOO_LARGE', events: list.length, max: this.o.maxBatchEvents }, 'ingest batch too large');
      this.sendAck(conn, enc, this.errorAck('TPWS_ERR_BATCH_TOO_LARGE', `batch of ${list.length} events is larger than ingest.maxBatchEvents (${this.o.maxBatchEvents}); split it`), null);
      return;
    }
    const results = list.map((input) => this.acceptEvent(input));
    const acks = results.map((r) => { this.count(r); return resultAck(r); });
    const waits = this.o.ackAfter === 'journal' ? results.flatMap((r, i) => (r.ok ? [r.journaled.then((o) => annotate(acks[i], o))] : [])) : [];
    const ack: Ack = { ok: results.every((r) => r.ok), results: acks };
    this.sendAck(conn, enc, ack, waits.length === 0 ? null : Promise.all(waits));
  }

  /**
   * One event of a frame. `replay: true` marks an operator's re-send (`tp-ws
   * replay`, docs/ingest.md §Frames): it takes the same path, is counted under
   * source `replay`, and is logged, with the row it was read from.
   */
  private acceptEvent(input: unknown): IntakeResult {
    const mark = replayMark(input);
    if (mark === null) return this.intake.accept(input, 'socket');
    if (mark instanceof EventInvalid) return { ok: false, id: readableId(input), error: mark };
    const r = this.intake.accept(input, 'replay');
    if (r.ok) {
      const e = r.event;
      this.log.info({ id: e.id, event_type: e.eventType, target_type: e.targetType, target_id: e.targetId, replay_row_id: mark.rowId, duplicate: r.duplicate }, 'replayed event accepted');
    }
    return r;
  }

  /** An error ack, counted by code (`tpws_ingest_acks_total`). */
  private errorAck(code: TpWsErrorCode, message: string): Ack {
    this.counters.errors[code] = (this.counters.errors[code] ?? 0) + 1;
    return errorAck(code, message);
  }

  private count(r: IntakeResult): void {
    if (!r.ok) {
      this.counters.eventsRejected++;
      this.counters.errors.TPWS_ERR_INVALID_EVENT = (this.counters.errors.TPWS_ERR_INVALID_EVENT ?? 0) + 1;
      this.log.info({ code: 'TPWS_ERR_INVALID_EVENT', id: r.id, field: r.error.field, rule: r.error.rule }, 'ingest event rejected');
    } else if (r.duplicate) this.counters.duplicates++;
    else this.counters.eventsAccepted++;
  }

  /**
   * Queue an ack behind the previous ones. When `wait` is given the ack waits
   * for it: the journal's outcome of each event, written onto the ack by
   * `annotate`.
   */
  private sendAck(conn: Conn, enc: Encoding, ack: Ack, wait: Promise<unknown> | null): void {
    const write = () => {
      conn.unacked--;
      if (conn.socket.destroyed) return;
      conn.socket.write(encodeAck(enc, ack));
      this.resumeIfDrained(conn);
    };
    conn.unacked++;
    conn.tail = wait === null ? conn.tail.then(write) : conn.tail.then(() => wait).then(write);
  }

  private endConn(conn: Conn): void {
    conn.closing = true;
    conn.socket.pause();
    void conn.tail.then(() => conn.socket.end());
  }

  /** Stop listening; answer frames still arriving with TPWS_ERR_UNAVAILABLE; flush acks; close. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.conns].map(async (c) => {
      await c.tail;
      c.socket.end();
    }));
    for (const c of this.conns) c.socket.destroy();
    await closed;
  }
}

/**
 * The frame's replay mark: null for an ordinary event (no `replay`, or
 * `replay: false`); the original row id (or null) for `replay: true`; an
 * `EventInvalid` when `replay` or `replay_row_id` breaks its rule. Costs an
 * ordinary event two property reads.
 */
function replayMark(input: unknown): { rowId: number | null } | EventInvalid | null {
  if (typeof input !== 'object' || input === null) return null;
  const { replay, replay_row_id: rowId } = input as { replay?: unknown; replay_row_id?: unknown };
  if (replay === undefined || replay === null || replay === false) return null;
  if (replay !== true) return new EventInvalid('replay', 'must be true or false');
  if (rowId === undefined || rowId === null) return { rowId: null };
  const n = positiveInt(rowId);
  return n === null ? new EventInvalid('replay_row_id', `must be an integer from 1 to ${ID_MAX}`) : { rowId: n };
}

/** The sender's id, for the ack of an event refused before validation (as `Intake` reports it). */
function readableId(input: unknown): string | null {
  const id = (input as { id?: unknown }).id;
  return typeof id === 'string' ? id : null;
}

function errorAck(code: TpWsErrorCode, message: string): Ack {
  return { ok: false, error: { code, message } };
}

function resultAck(r: IntakeResult): Ack {
  if (!r.ok) {
    const ack: Ack = { ok: false };
    if (r.id !== null) ack.id = r.id;
    ack.error = { code: 'TPWS_ERR_INVALID_EVENT', message: r.error.message };
    return ack;
  }
  const ack: Ack = { ok: true, id: r.event.id, seq: r.seq };
  if (r.duplicate) ack.duplicate = true;
  return ack;
}

/**
 * The journal's outcome on an event's ack (docs/ingest.md §Acks): nothing
 * when it is in the table; `journal: "pending"` when it is kept in memory
 * for a later write; `journal: "dropped"` when the history lost it (it was
 * delivered all the same).
 */
function annotate(ack: Ack, outcome: JournalOutcome): void {
  if (outcome !== 'written') ack.journal = outcome;
}

function encodeAck(enc: Encoding, ack: Ack): Buffer | string {
  return enc === 'ndjson' ? JSON.stringify(ack) + '\n' : encodeMsgpackFrame(ack);
}

/**
 * A socket file left by a daemon that died is removed; one a live daemon
 * answers on is an error; a path that is not a socket is never touched.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new TpWsError('TPWS_ERR_LISTEN', `ingest socket path ${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    const timer = setTimeout(() => { s.destroy(); resolve(true); }, 1000);
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(timer); resolve(false); });
  });
  if (live) throw new TpWsError('TPWS_ERR_SOCKET_IN_USE', `ingest socket ${path} belongs to a running daemon; stop it or use another --socket`);
  unlinkSync(path);
}

/** A group name (from /etc/group) or a numeric gid. */
function resolveGid(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of readFileSync('/etc/group', 'utf8').split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined) return Number(gid);
  }
  throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in ingest.socketGroup: no group named ${group} in /etc/group`);
}
