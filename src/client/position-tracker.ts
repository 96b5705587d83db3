/**
 * The client's stream position and the rules that move it (docs/client.md
 * "Recovery"; the wire side is docs/protocol.md "Resume"). A position is
 * (epoch, seq): seq counts the events the daemon fanned out, globally, within
 * the epoch of one daemon run. The tracker decides, for every message of a
 * socket, whether an event is emitted and where the position goes; it knows
 * nothing about sockets or timers.
 */
import type { RecentIds } from './recent-ids.js';

export interface StreamPosition {
  epoch: string;
  seq: number;
}

/** What the tracker reads from a `resumed` reply. */
export interface ResumedReply {
  recovered: boolean;
  reason?: string;
  epoch: string;
  seq: number;
  replayed: number;
}

/** A parsed message; `id`, `epoch` and `seq` are read from it. */
export type MessageFields = { readonly [key: string]: unknown };

const EPOCH = /^[A-Za-z0-9_-]{1,64}$/;

/** A position as the daemon sends it (`connected`, `ping`, `resumed`), or null when the fields are missing or malformed. */
export function readPosition(msg: MessageFields): StreamPosition | null {
  const { epoch, seq } = msg;
  if (typeof epoch !== 'string' || !EPOCH.test(epoch)) return null;
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq >= 2 ** 32) return null;
  return { epoch, seq };
}

export class PositionTracker {
  private pos: StreamPosition | null;
  /** A `resume` was sent on this socket and its reply has not arrived. */
  private awaitingResume = false;
  /** Positioned events still to come as the current replay. */
  private replayLeft = 0;
  /** Where the position goes when the replay ends. */
  private replayEnd: StreamPosition | null = null;

  constructor(
    private readonly seen: RecentIds,
    initial: StreamPosition | null = null,
  ) {
    this.pos = initial;
  }

  get position(): StreamPosition | null {
    return this.pos ? { ...this.pos } : null;
  }

  /** True while positioned events are being ignored (resume unanswered) or counted as replay. */
  get recovering(): boolean {
    return this.awaitingResume || this.replayLeft > 0;
  }

  /**
   * A socket got `connected`. With a known position the caller must send
   * `resume` (returns 'resume'); otherwise the socket's position is adopted
   * and the caller subscribes as TeamPass's client does ('subscribe').
   */
  connected(msg: MessageFields): 'resume' | 'subscribe' {
    if (this.pos) return 'resume';
    this.pos = readPosition(msg);
    return 'subscribe';
  }

  /** The `resume` request is on its way: ignore positioned events until its reply. */
  resumeSent(): void {
    this.awaitingResume = true;
  }

  /** The `resumed` reply: the next `replayed` positioned events are the replay. */
  resumed(reply: ResumedReply): void {
    this.awaitingResume = false;
    this.replayLeft = reply.replayed;
    this.replayEnd = { epoch: reply.epoch, seq: reply.seq };
    if (this.replayLeft === 0) this.finishReplay();
  }

  /** The daemon does not speak positions (a `connected` without epoch): forget ours, since it cannot be resumed there. */
  forget(): void {
    this.pos = null;
  }

  /** Whether an `event` message is emitted; updates the position and the seen ids. */
  event(msg: MessageFields): boolean {
    const id = typeof msg.id === 'string' && msg.id !== '' ? msg.id : null;
    const at = readPosition(msg);
    // Presence events (no id, no position) describe the present: always emitted, never part of a replay.
    if (id === null) return true;
    if (at === null) return this.seen.add(id);
    if (this.awaitingResume) return false;
    if (this.replayLeft > 0) {
      this.replayLeft--;
      const fresh = this.seen.add(id);
      if (this.replayLeft === 0) this.finishReplay();
      return fresh;
    }
    if (this.pos && at.epoch === this.pos.epoch) {
      if (at.seq <= this.pos.seq || this.seen.has(id)) return false;
      this.seen.add(id);
      this.pos = { epoch: at.epoch, seq: at.seq };
      return true;
    }
    // Another epoch outside a replay: only `connected`/`resumed` announce epoch changes, so the position stays.
    return this.seen.add(id);
  }

  /** A server `ping`: everything up to its seq was written before it. */
  ping(msg: MessageFields): boolean {
    const at = readPosition(msg);
    if (!at || !this.pos || this.recovering || at.epoch !== this.pos.epoch || at.seq <= this.pos.seq) return false;
    this.pos = at;
    return true;
  }

  /** The socket closed: a replay cut short keeps the old position, and the next socket resumes from it again. */
  disconnected(): void {
    this.awaitingResume = false;
    this.replayLeft = 0;
    this.replayEnd = null;
  }

  private finishReplay(): void {
    if (this.replayEnd) this.pos = this.replayEnd;
    this.replayEnd = null;
  }
}
