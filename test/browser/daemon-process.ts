/**
 * `tp-ws serve` as a child process on a given store, for browser tests that
 * must SIGKILL the daemon and start it again on the same database. Each start
 * has its own state directory and ingest socket; the WebSocket port is free
 * (read from the banner).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const BIN = join(import.meta.dirname, '../../bin/tp-ws.js');
const START_TIMEOUT_MS = 20_000;

export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  /** Path of its ingest socket. */
  socket: string;
  /** Its stderr and log lines so far (for failure messages). */
  output: string[];
  /** Resolves when the process has exited (at once when it has). */
  exited: Promise<void>;
  /** SIGKILL it (by pid) and wait for the exit. */
  kill(): Promise<void>;
  /** SIGTERM it (by pid), wait for the exit, remove its state directory. */
  stop(): Promise<void>;
}

/**
 * The WebSocket port a starting `tp-ws serve` child prints in its banner on
 * stderr. Every stderr line goes to `keep`; a child that exits first, or
 * prints no banner within 20 s, rejects with `output` in the message.
 */
export function listeningPort(child: ChildProcess, keep: (line: string) => void, output: readonly string[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tp-ws serve did not listen within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      keep(line);
      const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)\/ws/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`tp-ws serve exited (${code ?? signal}) before listening:\n${output.join('\n')}`));
    });
  });
}

/** Start `tp-ws serve` on `storeUrl`; `env` adds TPWS_* settings (e.g. TPWS_RESUME_MAX_EVENTS). Resolves once it listens. */
export async function startDaemonProcess(storeUrl: string, env: Record<string, string> = {}): Promise<DaemonProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'tpws-browser-'));
  const socket = join(dir, 'ingest.sock');
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--admin-port', '-1', '--state-dir', dir, '--socket', socket, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env, TPWS_STORE: storeUrl },
  });
  const output: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => output.push(l));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let port: number;
  try {
    port = await listeningPort(child, (line) => output.push(line), output);
  } catch (err) {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const pid = child.pid!;
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, sig);
    await exited;
  };
  return {
    child,
    pid,
    port,
    socket,
    output,
    exited,
    kill: () => signal('SIGKILL'),
    stop: async () => {
      await signal('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
