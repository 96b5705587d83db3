import WebSocket from 'ws';

export type Message = Record<string, any>;

/**
 * A real `ws` client that queues every message it receives, so tests await
 * the next message (optionally matching a predicate) instead of sleeping.
 */
export class TestClient {
  readonly ws: WebSocket;
  readonly received: Message[] = [];
  private waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private cursor = 0;

  constructor(url: string, options?: WebSocket.ClientOptions) {
    this.ws = new WebSocket(url, options);
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.ws.on('message', (data, isBinary) => {
      const m = JSON.parse(isBinary ? Buffer.from(data as Buffer).toString() : data.toString()) as Message;
      this.received.push(m);
      this.flush();
    });
  }

  static async connect(url: string): Promise<TestClient> {
    const c = new TestClient(url);
    await c.opened;
    return c;
  }

  /** Open and wait for `connected`; throws with the error message otherwise. */
  static async login(url: string): Promise<{ client: TestClient; connected: Message }> {
    const client = await TestClient.connect(url);
    const connected = await client.next();
    if (connected.type !== 'connected') throw new Error(`expected connected, got ${JSON.stringify(connected)}`);
    return { client, connected };
  }

  send(m: unknown): void {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }

  /** Send a request with a request_id and wait for the message echoing it. */
  async request(m: Record<string, unknown>, timeoutMs = 5000): Promise<Message> {
    const rid = `req_${Math.random().toString(36).slice(2)}`;
    this.send({ ...m, request_id: rid });
    return this.next((x) => x.request_id === rid, timeoutMs);
  }

  /** The next not-yet-consumed message matching `pred` (messages before it that match are consumed in order). */
  next(pred: (m: Message) => boolean = () => true, timeoutMs = 5000): Promise<Message> {
    for (let i = this.cursor; i < this.received.length; i++) {
      if (pred(this.received[i])) {
        const m = this.received[i];
        this.received.splice(i, 1);
        return Promise.resolve(m);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no matching message within ${timeoutMs} ms; received: ${JSON.stringify(this.received).slice(0, 500)}`));
      }, timeoutMs);
      this.waiters.push({ pred, resolve, reject, timer });
    });
  }

  /** Next message of type `event` (skipping pings). */
  nextEvent(timeoutMs = 5000): Promise<Message> {
    return this.next((m) => m.type === 'event', timeoutMs);
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    return this.closed;
  }

  private flush(): void {
    for (const w of [...this.waiters]) {
      const i = this.received.findIndex(w.pred);
      if (i >= 0) {
        const [m] = this.received.splice(i, 1);
        clearTimeout(w.timer);
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(m);
      }
    }
  }
}
