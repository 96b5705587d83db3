/**
 * Coalesced socket writes: what the daemon sends while handling one input
 * (a chunk read from the ingest socket, a poll's rows, a client message)
 * leaves in one write per socket, as soon as that handling is done.
 *
 * Each `ws.send` was one system call, so a burst of N events to a socket
 * cost N calls; now the events handled together cost one (a lone event
 * still costs one write per recipient: there is nothing to coalesce).
 * Sessions queue frames (src/fanout/session.ts) and register here once;
 * the queue is flushed in a microtask, right after the synchronous work
 * that produced the frames: a lone event waits for nothing, and the sockets
 * are written before the journal's INSERT and the ingest acks of the same
 * events, which are queued after it (docs/performance.md, Fan-out at scale).
 *
 * One queue per process, like the event loop it follows: sessions of
 * several daemons in one process (tests) share it harmlessly.
 */

/** What the queue flushes: a session with frames waiting. */
export interface Flushable {
  /** Hand queued frames to the socket; never throws. */
  flush(): void;
}

class FlushQueue {
  private pending: Flushable[] = [];
  private after: (() => void)[] = [];
  private scheduled = false;

  /** Flush `s` once the current synchronous work is done (register once per batch of frames). */
  add(s: Flushable): void {
    this.pending.push(s);
    if (!this.scheduled) this.schedule();
  }

  /** Run `fn` once the frames queued so far are written (fan-out timing). */
  afterFlush(fn: () => void): void {
    this.after.push(fn);
    if (!this.scheduled) this.schedule();
  }

  private schedule(): void {
    this.scheduled = true;
    queueMicrotask(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const pending = this.pending;
    const after = this.after;
    this.pending = [];
    this.after = [];
    for (const s of pending) s.flush();
    for (const fn of after) fn();
  };
}

export const flushQueue = new FlushQueue();
