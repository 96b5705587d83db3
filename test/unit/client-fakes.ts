/**
 * Stand-ins for what the browser client gets from a page and cannot get in
 * Node: a WebSocket whose server side the test plays, and a Web Locks
 * manager (exclusive locks, granted in request order, released when the
 * holder's promise settles). BroadcastChannel is Node's own.
 */
import type { CloseInfo, WebSocketLike } from '../../src/client/types.js';

export class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  readonly sent: Array<Record<string, any>> = [];
  closedByClient: { code?: number; reason?: string } | null = null;
  onopen: ((event: unknown) => void) | null = null;
  onclose: ((event: CloseInfo) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }

  static reset(): void {
    FakeSocket.all = [];
  }

  static last(): FakeSocket {
    const s = FakeSocket.all.at(-1);
    if (!s) throw new Error('no socket was opened');
    return s;
  }

  get token(): string | null {
    return new URL(this.url).searchParams.get('token');
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(data));
  }

  /** The client closes: the close event follows, as in a browser, asynchronously. */
  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.closedByClient = { code, reason };
    this.readyState = 2;
    queueMicrotask(() => this.finish(code ?? 1005, reason ?? '', true));
  }

  // ---- the server's side ----

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(message: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  serverClose(code: number, reason = ''): void {
    this.finish(code, reason, code !== 1006);
  }

  /** Open and authenticate, as the daemon does: `connected` with a position. */
  accept(fields: Record<string, unknown> = {}): void {
    this.open();
    this.receive({ type: 'connected', user_id: 1, user_login: 'u1', user_display_name: 'U 1', server_time: 1, config: { ping_interval: 30 }, ...fields });
  }

  /** Messages the client sent with this action. */
  actions(action: string): Array<Record<string, any>> {
    return this.sent.filter((m) => m.action === action);
  }

  private finish(code: number, reason: string, wasClean: boolean): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean });
  }
}

interface Waiter {
  signal?: AbortSignal;
  grant: () => void;
}

/** Web Locks, exclusive mode only: what the client uses. */
export class FakeLocks {
  private readonly held = new Set<string>();
  private readonly queues = new Map<string, Waiter[]>();

  request(name: string, options: { signal?: AbortSignal }, callback: () => unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        signal: options.signal,
        grant: () => {
          this.held.add(name);
          Promise.resolve()
            .then(callback)
            .then(resolve, reject)
            .finally(() => {
              this.held.delete(name);
              this.next(name);
            });
        },
      };
      if (options.signal?.aborted) return reject(new DOMException('aborted', 'AbortError'));
      options.signal?.addEventListener('abort', () => {
        const q = this.queues.get(name) ?? [];
        const i = q.indexOf(waiter);
        if (i >= 0) {
          q.splice(i, 1);
          reject(new DOMException('aborted', 'AbortError'));
        }
      });
      const q = this.queues.get(name) ?? [];
      this.queues.set(name, q);
      q.push(waiter);
      if (!this.held.has(name) && q.length === 1) this.next(name);
    });
  }

  isHeld(name: string): boolean {
    return this.held.has(name);
  }

  private next(name: string): void {
    if (this.held.has(name)) return;
    const waiter = this.queues.get(name)?.shift();
    waiter?.grant();
  }
}

/** Let pending microtasks and BroadcastChannel deliveries run (real event-loop turns; timers stay fake). */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Turn the event loop until `check` holds (BroadcastChannel delivers on later turns). */
export async function until(check: () => boolean, what: string, turns = 200): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (check()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error(`never happened: ${what}`);
}
