/**
 * The load and the observers of the store-outage scenario: a steady stream of
 * events over one ingest connection (each event's phase, target, ack and ack
 * latency recorded), what each WebSocket client received, and the daemon's
 * /readyz sampled throughout.
 */
import type { IngestAck, IngestClient } from '../../src/ingest/client.js';
import type { Random } from '../helpers/random.js';
import type { TestClient } from '../helpers/ws-client.js';

/** Whom an event is for: every client, or one user's. */
export type Target = { type: 'broadcast' } | { type: 'user'; id: number };

/** The journal's word on an event, as its ack said it (no `journal` field: `written`). */
export type AckJournal = 'written' | 'pending' | 'dropped';

export interface SentEvent {
  id: string;
  /** The scenario's phase when the event was sent. */
  phase: string;
  target: Target;
  sentAt: number;
  /** Null until the ack arrived. */
  ack: { journal: AckJournal; ms: number; phase: string } | null;
}

/**
 * Events sent over one ingest connection at a steady pace (1–3 events every
 * 3–8 ms, drawn from the scenario's seed) until `stop()`. Every ack is
 * checked as it arrives: `ok`, the event's own id, not a duplicate; anything
 * else, or the connection failing (an ack not back within the client's
 * timeout), is kept in `error`.
 */
export class EventStream {
  readonly sent: SentEvent[] = [];
  phase: string;
  error: Error | null = null;
  #running = false;
  #loop: Promise<void> = Promise.resolve();

  constructor(
    private readonly ingest: IngestClient,
    private readonly rng: Random,
    private readonly target: () => Target,
    phase: string,
    /** Told after each ack (the scenario samples the journal's queue there). */
    private readonly onAck: () => void = () => {},
  ) {
    this.phase = phase;
  }

  start(): void {
    this.#running = true;
    this.#loop = this.run();
  }

  /** Stop sending and wait for every ack; throws what went wrong with any. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
    await this.settled();
    if (this.error !== null) throw this.error;
  }

  /** Resolves once every event sent so far has its ack (or the stream failed). */
  async settled(): Promise<void> {
    const last = this.sent.at(-1);
    if (last === undefined) return;
    while (last.ack === null && this.error === null) await new Promise((r) => setTimeout(r, 10));
  }

  inPhase(phase: string): SentEvent[] {
    return this.sent.filter((e) => e.phase === phase);
  }

  private async run(): Promise<void> {
    while (this.#running && this.error === null) {
      for (let i = this.rng.int(1, 3); i > 0; i--) this.sendOne();
      await new Promise((r) => setTimeout(r, this.rng.int(3, 8)));
    }
  }

  private sendOne(): void {
    const target = this.target();
    const e: SentEvent = { id: `outage-${this.sent.length}`, phase: this.phase, target, sentAt: Date.now(), ack: null };
    this.sent.push(e);
    const frame = { id: e.id, event_type: 'outage_socket', target_type: target.type, ...(target.type === 'user' ? { target_id: target.id } : {}), payload: { n: this.sent.length - 1 } };
    this.ingest.request(frame).then(
      (ack) => this.acked(e, ack),
      (err: Error) => { this.error ??= new Error(`ingest connection failed with ${e.id} unacked: ${err.message}`); },
    );
  }

  private acked(e: SentEvent, ack: IngestAck): void {
    const a = ack as { ok?: boolean; id?: string; duplicate?: boolean; journal?: string };
    if (a.ok !== true || a.id !== e.id || a.duplicate === true || !(a.journal === undefined || a.journal === 'pending' || a.journal === 'dropped')) {
      this.error ??= new Error(`unexpected ack for ${e.id}: ${JSON.stringify(ack)}`);
      return;
    }
    e.ack = { journal: (a.journal ?? 'written') as AckJournal, ms: Date.now() - e.sentAt, phase: this.phase };
    this.onAck();
  }
}

/** Every event message a WebSocket client received: how often each id came, and in what order. */
export class Received {
  readonly count = new Map<string, number>();
  readonly order: string[] = [];

  constructor(readonly userId: number, client: TestClient) {
    client.ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as { type?: string; id?: string };
      if (m.type !== 'event' || typeof m.id !== 'string') return;
      this.count.set(m.id, (this.count.get(m.id) ?? 0) + 1);
      this.order.push(m.id);
    });
  }

  /** True when `target` addresses this client. */
  wants(target: Target): boolean {
    return target.type === 'broadcast' || target.id === this.userId;
  }
}

export interface ReadyReport {
  /** When the request was made, and when its answer came (epoch ms). */
  askedAt: number;
  at: number;
  ready: boolean;
  /** Names of the checks that failed. */
  failing: string[];
}

/**
 * /readyz asked over and over (a new request as soon as the last answered,
 * at most every 100 ms): the scenario reads which state the daemon reported,
 * and when, after each fault.
 */
export class ReadinessWatch {
  readonly reports: ReadyReport[] = [];
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  error: Error | null = null;

  constructor(private readonly url: string) {}

  start(): void {
    this.#running = true;
    this.#loop = this.run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** The first answer to a request made at or after `since` that matches. */
  first(since: number, pred: (r: ReadyReport) => boolean): ReadyReport | undefined {
    return this.reports.find((r) => r.askedAt >= since && pred(r));
  }

  /** The reported states in order, repeats folded: `ready, not ready (store, poller), ready…`. */
  transitions(): string[] {
    const out: string[] = [];
    for (const r of this.reports) {
      const s = r.ready ? 'ready' : `not ready (${r.failing.join(', ')})`;
      if (out.at(-1) !== s) out.push(s);
    }
    return out;
  }

  private async run(): Promise<void> {
    while (this.#running) {
      const askedAt = Date.now();
      try {
        const body = (await this.ask()) as { ready: boolean; checks: { name: string; ok: boolean }[] };
        this.reports.push({ askedAt, at: Date.now(), ready: body.ready, failing: body.checks.filter((c) => !c.ok).map((c) => c.name) });
      } catch (err) {
        this.error ??= err as Error;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - askedAt))));
    }
  }

  private async ask(): Promise<unknown> {
    let r: Response;
    try {
      r = await fetch(this.url);
    } catch (err) {
      // A kept-alive connection the server closed just as it was reused: that request never reached /readyz.
      if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET') throw err;
      r = await fetch(this.url);
    }
    return r.json();
  }
}
