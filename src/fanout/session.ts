import type { WebSocket } from 'ws';
import type { Identity } from '../auth/authenticator.js';
import { CloseCode, CloseReason } from '../protocol/close-codes.js';

/** Time allowed for a close handshake before the TCP socket is cut. */
const CLOSE_GRACE_MS = 5000;

/**
 * One authenticated WebSocket connection: who it is, what it subscribed to,
 * and the send path with its backpressure rule. Owns no policy beyond that;
 * the gateway decides what to send and when to close.
 */
export class Session {
  readonly folders = new Set<number>();
  kb = false;
  /** Epoch ms of the last client ping/pong (JSON action or RFC 6455 frame). */
  lastSeen: number;
  closed = false;
  /** Messages kept back while the user's access is re-read (`hold()`), with the folder of folder events. */
  private held: { data: string | Buffer; folderId: number | null }[] | null = null;
  private heldBytes = 0;

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
  }

  get userId(): number {
    return this.identity.userId;
  }

  /** Send one message object (replies, pings). */
  send(message: Record<string, unknown>): boolean {
    return this.sendText(JSON.stringify(message));
  }

  /**
   * Send pre-encoded data (the same Buffer for every recipient of an event);
   * `folderId` is the folder of a folder event. Past `maxBufferedBytes` of
   * unsent data the socket is closed as a slow consumer (4100, reconnect with
   * backoff) and false is returned: memory per socket stays bounded whatever
   * the client does. While held, messages are kept in order instead.
   */
  sendText(data: string | Buffer, folderId: number | null = null): boolean {
    if (this.closed) return false;
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (this.held !== null) {
      this.heldBytes += size;
      if (this.ws.bufferedAmount + this.heldBytes > this.maxBufferedBytes) {
        this.close(CloseCode.SLOW_CONSUMER);
        return false;
      }
      this.held.push({ data, folderId });
      return true;
    }
    if (this.ws.bufferedAmount + size > this.maxBufferedBytes) {
      this.close(CloseCode.SLOW_CONSUMER);
      return false;
    }
    this.ws.send(data, { binary: false });
    return true;
  }

  /**
   * Keep back every message from now on, in order, until `release`: the
   * user's folder access is being read again, and an event already queued
   * behind the change must not reach a folder they just lost.
   */
  hold(): void {
    this.held ??= [];
  }

  /** Send what was held, in order, except folder events for a folder `allowed` now refuses. */
  release(allowed: (folderId: number) => boolean): void {
    const held = this.held;
    this.held = null;
    this.heldBytes = 0;
    if (held === null) return;
    for (const m of held) if (m.folderId === null || allowed(m.folderId)) this.sendText(m.data);
  }

  /** Close with a code from close-codes.ts; the socket is cut if the peer does not answer in time. */
  close(code: number, reason = CloseReason[code] ?? ''): void {
    if (this.closed) return;
    this.closed = true;
    this.held = null;
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
