import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Identity } from '../auth/authenticator.js';
import { CloseCode, CloseReason } from '../protocol/close-codes.js';
import { flushQueue } from './flush-queue.js';
import { textFrame } from './frame.js';

/** Time allowed for a close handshake before the TCP socket is cut. */
const CLOSE_GRACE_MS = 5000;
/**
 * Most bytes handed to the socket in one write. Frames queued together
 * are copied into chunks of this size: few system calls for a burst, and
 * at most about this much (plus the socket's high-water mark) held by Node
 * for a socket whose peer is not reading.
 */
const CHUNK_BYTES = 32 * 1024;
/**
 * Where frames are copied into a chunk. A chunk the kernel takes at once
 * (the usual case) is no longer referenced when `write` returns, so the
 * same memory serves the next one; a chunk Node has to keep belongs to it
 * from then on, and a new scratch buffer is taken. A burst thus writes
 * through one buffer instead of allocating (and later collecting) one per
 * chunk.
 */
let scratch = Buffer.allocUnsafeSlow(CHUNK_BYTES);
/** `WebSocket.OPEN`. */
const OPEN = 1;
/** The session of a socket, for the shared 'drain' listener. */
const SESSION = Symbol('tp-ws session');

type SessionSocket = Socket & { [SESSION]?: Session };

/** Shared by every socket (no closure per connection): resume writing once Node's buffer has drained. */
function onDrain(this: SessionSocket): void {
  this[SESSION]?.flush();
}

/**
 * One authenticated WebSocket connection: who it is, what it subscribed to,
 * and the send path with its backpressure rule. Owns no policy beyond that;
 * the gateway decides what to send and when to close.
 *
 * Send path: every data frame (events, replies, pings) is queued here as a
 * complete frame, in order, and written by the flush queue once the work
 * that produced it is done, coalesced (src/fanout/flush-queue.ts). Events arrive
 * framed already, one Buffer shared by all their recipients. Control
 * frames (pong, close) still go through `ws`; they may come between two of
 * our messages, never inside one, as RFC 6455 allows.
 */
export class Session {
  readonly folders = new Set<number>();
  kb = false;
  /** Epoch ms of the last client ping/pong (JSON action or RFC 6455 frame). */
  lastSeen: number;
  closed = false;
  /** Frames kept back while the user's access is re-read or a resume is answered (`hold()`), with the folder of folder events. */
  private held: { frame: Buffer; folderId: number | null }[] | null = null;
  private heldBytes = 0;
  /** Holds not yet released: an access re-check and a resume may overlap. */
  private holds = 0;
  /** Frames not yet handed to the socket, from `queueHead` on; null when none (the idle state costs nothing). */
  private queue: Buffer[] | null = null;
  private queueHead = 0;
  private queuedBytes = 0;
  private readonly socket: SessionSocket;

  constructor(
    readonly id: number,
    readonly ws: WebSocket,
    readonly identity: Identity,
    readonly ip: string,
    readonly connectedAt: number,
    private readonly maxBufferedBytes: number,
    /** The upgrade carried an `Origin` header (a browser); others are tools, capped apart. */
    readonly browser: boolean,
    /** Closes by code, shared by every session (metrics). */
    private readonly closeCounts?: Map<number, number>,
  ) {
    this.lastSeen = connectedAt;
    // `ws` keeps its socket in `_socket`; frames are written to it directly (see the class comment).
    this.socket = (ws as unknown as { _socket: SessionSocket })._socket;
    this.socket[SESSION] = this;
    this.socket.on('drain', onDrain);
  }

  get userId(): number {
    return this.identity.userId;
  }

  /**
   * Bytes sent to this socket and not yet taken by the kernel: queued here,
   * held, and in Node's and `ws`'s buffers. The slow-consumer rule counts
   * every one of them, as if each recipient had its own copy.
   */
  get bufferedBytes(): number {
    return this.queuedBytes + this.heldBytes + this.ws.bufferedAmount;
  }

  /** Send one message object (replies, pings). */
  send(message: Record<string, unknown>): boolean {
    return this.sendFrame(textFrame(JSON.stringify(message)));
  }

  /**
   * Queue one complete text frame (src/fanout/frame.ts; the same Buffer for
   * every recipient of an event); `folderId` is the folder of a folder
   * event. Past `maxBufferedBytes` of unsent data the socket is closed as a
   * slow consumer (4100, reconnect with backoff) and false is returned:
   * what one socket can cost stays bounded whatever the client does. While
   * held, frames are kept in order instead.
   */
  sendFrame(frame: Buffer, folderId: number | null = null): boolean {
    if (this.closed) return false;
    if (this.bufferedBytes + frame.length > this.maxBufferedBytes) {
      this.close(CloseCode.SLOW_CONSUMER);
      return false;
    }
    if (this.held !== null) {
      this.heldBytes += frame.length;
      this.held.push({ frame, folderId });
      return true;
    }
    this.enqueue(frame);
    return true;
  }

  /**
   * Queue frames ahead of the held ones (a resume's reply and replay, which
   * come before the live events kept back while it was answered). Counted
   * by the slow-consumer rule like any other frame; false when the socket
   * was closed for it.
   */
  sendAhead(frames: readonly Buffer[]): boolean {
    if (this.closed) return false;
    for (const frame of frames) {
      if (this.bufferedBytes + frame.length > this.maxBufferedBytes) {
        this.close(CloseCode.SLOW_CONSUMER);
        return false;
      }
      this.enqueue(frame);
    }
    return true;
  }

  private enqueue(frame: Buffer): void {
    this.queuedBytes += frame.length;
    if (this.queue === null) {
      this.queue = [frame];
      flushQueue.add(this);
    } else {
      // Already registered, or waiting for 'drain' (which flushes it).
      this.queue.push(frame);
    }
  }

  /**
   * Write queued frames to the socket, coalesced into chunks of up to
   * `CHUNK_BYTES`, while Node's buffer for it stays under its high-water
   * mark; the rest waits for 'drain' (a peer that does not read costs its
   * queue, counted by the slow-consumer rule, not memory in Node).
   */
  flush(limit?: number): void {
    const q = this.queue;
    if (q === null) return;
    const sock = this.socket;
    if (this.ws.readyState !== OPEN || sock.destroyed) {
      this.dropQueue();
      return;
    }
    const hwm = limit ?? sock.writableHighWaterMark;
    let head = this.queueHead;
    while (head < q.length) {
      if (sock.writableLength >= hwm) {
        // write() returned false for the chunk that filled it: 'drain' will come.
        if (head > 1024) {
          q.splice(0, head);
          head = 0;
        }
        this.queueHead = head;
        return;
      }
      let end = head + 1;
      let bytes = q[head].length;
      while (end < q.length && bytes + q[end].length <= CHUNK_BYTES) bytes += q[end++].length;
      this.queuedBytes -= bytes;
      if (end === head + 1) {
        sock.write(q[head]);
        head = end;
        continue;
      }
      const chunk = scratch.subarray(0, bytes);
      let off = 0;
      for (let i = head; i < end; i++) off += q[i].copy(chunk, off);
      head = end;
      sock.write(chunk);
      // Not all taken by the kernel: Node keeps the chunk until it is written.
      if (sock.writableLength > 0) scratch = Buffer.allocUnsafeSlow(CHUNK_BYTES);
    }
    this.queue = null;
    this.queueHead = 0;
  }

  private dropQueue(): void {
    this.queue = null;
    this.queueHead = 0;
    this.queuedBytes = 0;
  }

  /**
   * Keep back every message from now on, in order, until the matching
   * `release`: the user's folder access is being read again, and an event
   * already queued behind the change must not reach a folder they just lost;
   * or a resume is being answered, and live events wait for its replay.
   */
  hold(): void {
    this.holds++;
    this.held ??= [];
  }

  /**
   * End one `hold`: folder events for a folder `allowed` now refuses are
   * dropped; once no hold is left, what was held is sent, in order.
   */
  release(allowed: (folderId: number) => boolean): void {
    const held = this.held;
    if (held === null || this.holds === 0) return;
    const kept = held.filter((m) => m.folderId === null || allowed(m.folderId));
    if (--this.holds > 0) {
      this.held = kept;
      this.heldBytes = kept.reduce((n, m) => n + m.frame.length, 0);
      return;
    }
    this.held = null;
    this.heldBytes = 0;
    for (const m of kept) this.sendFrame(m.frame);
  }

  /**
   * Close with a code from close-codes.ts (queued frames are written first,
   * unless the socket is closed for being slow); the socket is cut if the
   * peer does not answer in time.
   */
  close(code: number, reason = CloseReason[code] ?? ''): void {
    if (this.closed) return;
    // What was sent before the close leaves before the close frame; a slow consumer's backlog is dropped.
    if (code === CloseCode.SLOW_CONSUMER) this.dropQueue();
    else this.flush(Infinity);
    this.closed = true;
    this.held = null;
    this.heldBytes = 0;
    this.holds = 0;
    this.closeCounts?.set(code, (this.closeCounts.get(code) ?? 0) + 1);
    this.ws.close(code, reason);
    const timer = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    timer.unref();
    this.ws.once('close', () => clearTimeout(timer));
  }

  /** `get_status.subscriptions` strings: `folder:<id>` and `kb:0` (docs/protocol.md §Actions). */
  subscriptionKeys(): string[] {
    const keys = [...this.folders].map((f) => `folder:${f}`);
    if (this.kb) keys.push('kb:0');
    return keys;
  }
}
