/**
 * A TCP relay between a browser and a daemon, for tests that need to break
 * the network: it keeps a stable address while the daemon behind it moves
 * (a restart picks a new port), `cut()` drops every connection and refuses
 * new ones until `restore()`, and it records every connection it saw so a
 * test can count reconnect attempts.
 *
 *   const proxy = await TcpProxy.start(daemonPort);
 *   page.goto(`http://127.0.0.1:${proxy.port}/…`);
 *   proxy.cut(); …; proxy.restore();
 *
 * `blackhole()` freezes the connections open now (nothing more is forwarded
 * either way, nothing is closed: a peer that went silent) while new ones
 * are forwarded as usual.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/** One client connection the proxy accepted. */
export interface ProxiedConnection {
  /** 1, 2, 3… in the order they arrived. */
  n: number;
  /** Refused because the network was cut (or no target was set). */
  refused: boolean;
  /** The first bytes the client sent (up to 2 KiB), as latin1 text: an HTTP request line and headers. */
  head: string;
}

const HEAD_BYTES = 2048;

export class TcpProxy {
  readonly connections: ProxiedConnection[] = [];
  private readonly live = new Set<Socket>();
  /** Each forwarded connection's freeze switch, while it is open. */
  private readonly freezers = new Set<() => void>();
  private isCut = false;

  private constructor(
    private readonly server: Server,
    private target: number | null,
  ) {}

  /** Listen on 127.0.0.1 (a free port) and forward to 127.0.0.1:`target` (null: refuse until `retarget`). */
  static async start(target: number | null): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, target);
    server.on('connection', (s) => proxy.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    const a = this.server.address();
    if (a === null || typeof a === 'string') throw new Error('proxy is not listening');
    return a.port;
  }

  /** Forward new connections to another port (connections already open keep theirs). */
  retarget(port: number | null): void {
    this.target = port;
  }

  /** Drop every connection now (both sides see a reset) and refuse new ones until `restore()`. */
  cut(): void {
    this.isCut = true;
    for (const s of this.live) s.destroy();
    this.live.clear();
  }

  /** Forward nothing more on the connections open now, and keep them open; later connections are forwarded. */
  blackhole(): void {
    for (const freeze of this.freezers) freeze();
    this.freezers.clear();
  }

  restore(): void {
    this.isCut = false;
  }

  /** Connections whose first bytes are a WebSocket upgrade request (refused ones included). */
  webSocketAttempts(): ProxiedConnection[] {
    return this.connections.filter((c) => /^GET \S+ HTTP\/1\.1\r\n/.test(c.head) && /\r\nupgrade:\s*websocket\r\n/i.test(c.head));
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const record: ProxiedConnection = { n: this.connections.length + 1, refused: false, head: '' };
    this.connections.push(record);
    client.on('error', () => undefined);
    // The head is read even from a refused connection: a test counts refused WebSocket attempts too.
    const onHead = (chunk: Buffer) => {
      record.head += chunk.toString('latin1');
      if (record.head.length >= HEAD_BYTES || record.head.includes('\r\n\r\n')) client.off('data', onHead);
    };
    client.on('data', onHead);
    if (this.isCut || this.target === null) {
      record.refused = true;
      // Long enough to read the request line, then a reset: what a cut network looks like to the browser.
      client.once('data', () => setImmediate(() => client.destroy()));
      client.setTimeout(1000, () => client.destroy());
      return;
    }
    const upstream = connect(this.target, '127.0.0.1');
    this.live.add(client);
    this.live.add(upstream);
    upstream.on('error', () => undefined);
    const freeze = () => {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    };
    this.freezers.add(freeze);
    const drop = () => {
      this.freezers.delete(freeze);
      client.destroy();
      upstream.destroy();
      this.live.delete(client);
      this.live.delete(upstream);
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
