/**
 * Coalesced socket writes: what the daemon sends during one event-loop turn
 * leaves in one write per socket, at the end of that turn.
 *
 * An event sent to 1,000 sockets used to cost 1,000 `writev` system calls;
 * a burst of events read from the ingest socket in one turn cost that per
 * event. Sessions now queue frames (src/fanout/session.ts) and register here
 * once; the queue is flushed in the `setImmediate` phase, right after the
 * I/O callbacks of the turn that produced the frames, so a lone event waits
 * for nothing and a burst is written once per socket.
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

  /** Flush `s` at the end of this turn (register once per batch of frames). */
  add(s: Flushable): void {
    this.pending.push(s);
    if (!this.scheduled) this.schedule();
  }

  /** Run `fn` once this turn's frames are written (fan-out timing). */
  afterFlush(fn: () => void): void {
    this.after.push(fn);
    if (!this.scheduled) this.schedule();
  }

  private schedule(): void {
    this.scheduled = true;
    setImmediate(this.run);
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
