/**
 * The floor the fan-out benchmarks compare tp-ws against: the least a Node
 * server built on `ws` has to do to get an event from a Unix socket to its
 * WebSocket clients. Run "the same way" as the daemon (its own process,
 * loopback port 0, events in by Unix socket, the same load client), so the
 * only difference left is tp-ws's own work: auth, routing, acks, journal,
 * metrics.
 *
 * - Events come in as NDJSON lines with the ingest field names
 *   (`event_type`, `target_type`, `payload`); one `JSON.stringify` per event
 *   builds `{"type":"event","event","data"}`, and `ws.send` sends that string
 *   to every recipient. No acks, no ids, no auth.
 * - `target_type: "folder"` goes to the sockets that sent a `subscribe`
 *   (answered like tp-ws, so the load client needs no special case),
 *   anything else to every socket. With one subscriber this is the raw `ws`
 *   pipeline floor: socket line in → `ws.send` out.
 * - A socket gets `{"type":"connected"}` on open, as tp-ws sends `connected`,
 *   so the handshake is timed the same way.
 *
 *   const floor = await FloorServer.start({ fdLimit: 'max' });  // floor.pid, floor.wsUrl, floor.ingestSocket
 *   await floor.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { fdSoftLimit } from './proc.js';

const SELF = fileURLToPath(import.meta.url);

export interface FloorServerOptions {
  /** Raise the server's soft fd limit to this (or the hard limit with 'max') before exec. */
  fdLimit?: number | 'max';
  /** Milliseconds to wait for the server to listen. Default 10,000. */
  startTimeoutMs?: number;
}

/** A floor server process. */
export class FloorServer {
  private constructor(
    readonly child: ChildProcess,
    readonly pid: number,
    readonly wsUrl: string,
    readonly ingestSocket: string,
    /** Soft fd limit the server runs with (null: unlimited or unknown). */
    readonly fdLimit: number | null,
    private readonly dir: string,
  ) {}

  static async start(o: FloorServerOptions = {}): Promise<FloorServer> {
    const fd = o.fdLimit;
    if (fd !== undefined && fd !== 'max' && !(Number.isInteger(fd) && fd > 0)) throw new Error(`fdLimit must be a positive integer or 'max', got ${fd}`);
    const dir = mkdtempSync(join(tmpdir(), 'tpws-floor-'));
    const ingestSocket = join(dir, 'floor.sock');
    const raise = fd === undefined ? '' : `ulimit -n ${fd === 'max' ? '"$(ulimit -Hn)"' : fd} 2>/dev/null || echo "floor: could not raise the fd limit to ${fd}" >&2; `;
    const child = spawn('/bin/sh', ['-c', `${raise}exec "$0" "$@"`, process.execPath, SELF, ingestSocket], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const wsUrl = await new Promise<string>((resolve, reject) => {
        const lines: string[] = [];
        const timer = setTimeout(() => reject(new Error(`floor server did not listen within ${o.startTimeoutMs ?? 10_000} ms: ${lines.join(' | ')}`)), o.startTimeoutMs ?? 10_000);
        createInterface({ input: child.stderr! }).on('line', (line) => {
          lines.push(line);
          const m = /^floor listening on (ws:\/\/\S+)/.exec(line);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`floor server exited (${signal ?? code}): ${lines.join(' | ')}`));
        });
      });
      return new FloorServer(child, child.pid!, wsUrl, ingestSocket, fdSoftLimit(child.pid!), dir);
    } catch (err) {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The server process: `node floor.js <socket path>`. */
function serve(socketPath: string): void {
  const all = new Set<WebSocket>();
  const subscribers = new Set<WebSocket>();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws', perMessageDeflate: false, clientTracking: false });
  wss.on('connection', (ws) => {
    all.add(ws);
    ws.send('{"type":"connected"}');
    ws.on('message', (data) => {
      let m: { action?: string; request_id?: string };
      try {
        m = JSON.parse(data.toString()) as typeof m;
      } catch {
        return;
      }
      if (m.action === 'subscribe') {
        subscribers.add(ws);
        ws.send(JSON.stringify({ type: 'response', status: 'success', action: 'subscribed', request_id: m.request_id }));
      }
    });
    ws.on('close', () => {
      all.delete(ws);
      subscribers.delete(ws);
    });
  });

  const ingest = createNetServer((conn) => {
    createInterface({ input: conn, crlfDelay: Infinity }).on('line', (line) => {
      let ev: { event_type?: string; target_type?: string; payload?: unknown };
      try {
        ev = JSON.parse(line) as typeof ev;
      } catch {
        return;
      }
      const text = JSON.stringify({ type: 'event', event: ev.event_type, data: ev.payload });
      for (const ws of ev.target_type === 'folder' ? subscribers : all) ws.send(text);
    });
    conn.on('error', () => undefined);
  });

  wss.on('listening', () => {
    ingest.listen(socketPath, () => {
      const { port } = wss.address() as { port: number };
      process.stderr.write(`floor listening on ws://127.0.0.1:${port}/ws\n`);
    });
  });
  process.on('SIGTERM', () => {
    for (const ws of all) ws.terminate();
    ingest.close();
    wss.close(() => process.exit(0));
  });
}

if (process.argv[1] === SELF) {
  const path = process.argv[2];
  if (path === undefined || path === '') {
    process.stderr.write('usage: floor.js <unix socket path>\n');
    process.exit(2);
  }
  serve(path);
}
