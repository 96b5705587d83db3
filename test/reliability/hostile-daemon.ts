/**
 * `tp-ws serve` as a child process for the hostile-clients scenario
 * (test/reliability/hostile-clients.test.ts), with what that scenario reads
 * from outside: RSS and open fds from /proc/<pid>, and the admin listener's
 * /metrics parsed. Tokens are minted with the HS256 secret it is given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';

import { mintJwt } from '../../src/auth/jwt.js';
import { resolveJwtKey } from '../../src/auth/jwt-key.js';
import { loadConfig } from '../../src/config/load.js';
import { cleanEnv } from '../helpers/doctor-cli.js';

const BIN = fileURLToPath(new URL('../../bin/tp-ws.js', import.meta.url));
const SECRET = 'hostile-clients-test-secret-0123456789abcdef';

export interface HostileDaemon {
  pid: number;
  port: number;
  adminPort: number;
  /** Path of the ingest socket. */
  socket: string;
  /** A JWT for `userId` (folders: accessible folder ids). */
  token(userId: number, folders?: number[]): Promise<string>;
  /** Resident set size, bytes (/proc/<pid>/status VmRSS). */
  rss(): number;
  /** Open file descriptors (/proc/<pid>/fd). */
  fds(): number;
  /** /metrics as `name{labels}` → value (`name` alone for unlabelled series). */
  metrics(): Promise<Map<string, number>>;
  /** Add TeamPass items (id → folder) to its embedded store, for item views (presence). */
  addItems(items: ReadonlyMap<number, number>): void;
  /** Its stderr so far (for failure messages). */
  stderr: string[];
  stop(): Promise<void>;
}

/** Start the daemon with `env` (TPWS_* settings) added; resolves once it listens. */
export async function startHostileDaemon(env: Record<string, string>): Promise<HostileDaemon> {
  const dir = mkdtempSync(join(tmpdir(), 'tpws-hostile-'));
  const socket = join(dir, 'ingest.sock');
  const fullEnv = { TPWS_JWT_SECRET: SECRET, ...env };
  // Logs (a warn line per failed login) go nowhere: thousands of them would only cost the pipe.
  const child: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--admin-port', '0', '--state-dir', dir, '--socket', socket, '--log-level', 'error'], {
    env: cleanEnv(fullEnv), stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const { port, adminPort } = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    let port = 0;
    let adminPort = 0;
    const timer = setTimeout(() => reject(new Error(`tp-ws serve did not start: ${stderr.join('\n')}`)), 20_000);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderr.push(line);
      port ||= Number(/listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(line)?.[1] ?? 0);
      adminPort ||= Number(/admin: +http:\/\/127\.0\.0\.1:(\d+)/.exec(line)?.[1] ?? 0);
      if (port > 0 && adminPort > 0) {
        clearTimeout(timer);
        resolve({ port, adminPort });
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tp-ws serve exited ${code}: ${stderr.join('\n')}`)); });
  });
  const pid = child.pid!;
  const cfg = loadConfig({ env: { TPWS_JWT_SECRET: SECRET, TPWS_STATE_DIR: dir } });
  const key = resolveJwtKey(cfg, false);
  return {
    pid, port, adminPort, socket, stderr,
    addItems: (items) => {
      const db = new Database(join(dir, 'tp-ws.db'));
      try {
        const insert = db.prepare('INSERT INTO teampass_items (id, id_tree, label) VALUES (?, ?, ?)');
        db.transaction(() => { for (const [id, folder] of items) insert.run(id, String(folder), `item ${id}`); })();
      } finally {
        db.close();
      }
    },
    token: (userId, folders) => mintJwt(key, cfg.auth.jwt, { userId, folders, ttlSec: 3600 }),
    rss: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024,
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    metrics: async () => {
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      const out = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        const sp = line.lastIndexOf(' ');
        out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
      }
      return out;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
