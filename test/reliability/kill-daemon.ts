/**
 * `tp-ws serve` as a child process that can be SIGKILLed and started again
 * the way an installation restarts it: the same state directory (the SQLite
 * store file, the development JWT secret), the same store and the same
 * ingest socket path, so producers find it again. The WebSocket port is
 * free at each start (read from the banner): clients reach it through a
 * TcpProxy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { listeningPort } from '../browser/daemon-process.js';

const BIN = join(import.meta.dirname, '../../bin/tp-ws.js');
/** Lines of daemon output kept for a failure message. */
const OUTPUT_LINES = 200;

export class KillableDaemon {
  /** The state directory, kept across restarts (removed by `stop`). */
  readonly dir: string;
  /** The ingest socket path, the same at every start. */
  readonly socket: string;
  /** The last lines the daemon printed (stdout and stderr), for failure messages. */
  readonly output: string[] = [];
  /** Starts so far. */
  starts = 0;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private listeningOn = 0;

  /** `storeUrl`: undefined for the default SQLite store in the state directory. `env` adds TPWS_* settings. */
  constructor(private readonly storeUrl: string | undefined, private readonly env: Record<string, string> = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'tpws-kill-'));
    this.socket = join(this.dir, 'ingest.sock');
  }

  /** The store URL the daemon uses. */
  get store(): string {
    return this.storeUrl ?? `sqlite:${join(this.dir, 'tp-ws.db')}`;
  }

  /** WebSocket port of the running daemon. */
  get port(): number {
    if (this.child === null) throw new Error('the daemon is not running');
    return this.listeningOn;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Start it (again); resolves once it listens (migrations done, history loaded). */
  async start(): Promise<void> {
    if (this.child !== null) throw new Error('the daemon is already running');
    this.starts++;
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--admin-port', '-1', '--state-dir', this.dir, '--socket', this.socket, '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.env, ...(this.storeUrl === undefined ? {} : { TPWS_STORE: this.storeUrl }) },
    });
    this.child = child;
    this.exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    const keep = (line: string): void => {
      this.output.push(line);
      if (this.output.length > OUTPUT_LINES) this.output.shift();
    };
    createInterface({ input: child.stdout! }).on('line', keep);
    try {
      this.listeningOn = await listeningPort(child, keep, this.output);
    } catch (err) {
      await this.kill();
      throw err;
    }
  }

  /** SIGKILL it (by pid) and wait for the exit. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** SIGTERM it if running, wait for the exit, remove the state directory. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === null) return;
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, sig);
    await this.exited;
    this.child = null;
  }
}
