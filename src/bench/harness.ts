import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { loadConfig } from '../config/load.js';

const BIN = fileURLToPath(new URL('../../bin/tp-ws.js', import.meta.url));
const CLIENTS = fileURLToPath(new URL('./clients.js', import.meta.url));

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Percentiles of a sample (nearest rank), rounded to 3 decimals. Takes a
 * typed array too: the fan-out benchmarks hand it millions of samples, which
 * a Float64Array sorts natively and far faster than an array of numbers.
 */
export function percentiles(values: ArrayLike<number>): Percentiles {
  const v = Float64Array.from(values).sort();
  const at = (p: number) => (v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)]);
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return { count: v.length, p50: r(at(50)), p90: r(at(90)), p99: r(at(99)), max: r(at(100)), mean: r(v.reduce((a, b) => a + b, 0) / (v.length || 1)) };
}

/** A daemon in its own process (`tp-ws serve`), as in production. */
export class DaemonProcess {
  private constructor(readonly child: ChildProcess, readonly port: number, readonly socket: string, readonly stateDir: string, private readonly secret: string, private readonly env: Record<string, string>) {}

  static async start(env: Record<string, string> = {}): Promise<DaemonProcess> {
    const stateDir = mkdtempSync(join(tmpdir(), 'tpws-bench-'));
    const socket = join(stateDir, 'ingest.sock');
    const secret = randomBytes(32).toString('hex');
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--admin-port', '-1', '--state-dir', stateDir, '--socket', socket, '--log-level', 'warn'], {
      env: { ...process.env, TPWS_JWT_SECRET: secret, TPWS_MAX_CONNECTIONS_PER_USER: '1000', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      const rl = createInterface({ input: child.stderr! });
      rl.on('line', (line) => {
        const m = /listening on ws:\/\/[^:]+:(\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`daemon exited with ${code}`)));
    });
    return new DaemonProcess(child, port, socket, stateDir, secret, env);
  }

  /** The poller intervals this daemon runs with (its defaults unless the env overrides them). */
  get poller(): { interval_ms: number; idle_interval_ms: number } {
    const cfg = loadConfig({ env: { ...process.env, ...this.env } });
    return { interval_ms: cfg.poller.intervalMs, idle_interval_ms: cfg.poller.idleIntervalMs };
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  token(userId: number): Promise<string> {
    return new SignJWT({ sub: String(userId) }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(this.secret));
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
    rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** A process holding N WebSocket clients (user ids 1..N) that records delivery latencies. */
export class ClientProcess {
  private constructor(readonly child: ChildProcess) {}

  static async start(daemon: DaemonProcess, n: number, firstUser = 1): Promise<ClientProcess> {
    const child = fork(CLIENTS, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const c = new ClientProcess(child);
    const tokens = await Promise.all(Array.from({ length: n }, (_, i) => daemon.token(firstUser + i)));
    const ready = await c.ask<{ ready?: number; error?: string }>({ cmd: 'connect', url: daemon.url, tokens });
    if (ready.error) throw new Error(ready.error);
    return c;
  }

  ask<T>(msg: Record<string, unknown>): Promise<T> {
    return new Promise((resolve) => {
      this.child.once('message', (m) => resolve(m as T));
      this.child.send(msg);
    });
  }

  report(): Promise<{ latenciesUs: number[]; received: number }> {
    return this.ask({ cmd: 'report' });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ cmd: 'close' });
    await exited;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
