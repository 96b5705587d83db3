import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/load.js';
import { SCHEMA } from '../../src/config/schema.js';
import { Daemon, type DaemonOptions } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';

export interface TestDaemon {
  daemon: Daemon;
  /** ws:// URL of the daemon, with `?token=` when given. */
  url(token?: string, path?: string): string;
  stateDir: string;
  /** Parsed NDJSON log lines written so far. */
  logs: Record<string, unknown>[];
  stop(): Promise<void>;
}

const ENV_BY_KEY = new Map(SCHEMA.map((s) => [s.key, s.env]));

/**
 * Start a real daemon on port 0 with a temp state dir (and so a temp SQLite
 * store unless `store.url` is given). `settings` uses dotted config keys,
 * e.g. `{ 'limits.rateLimitMessages': 3 }`. Logs are captured, not printed.
 */
export async function startDaemon(settings: Record<string, string | number | boolean> = {}, opts: { tokenRefreshIntervalMs?: number; readiness?: DaemonOptions['readiness'] } = {}): Promise<TestDaemon> {
  const stateDir = mkdtempSync(join(tmpdir(), 'tpws-test-'));
  const env: Record<string, string> = {
    TPWS_STATE_DIR: stateDir,
    TPWS_PORT: '0',
    TPWS_ADMIN_PORT: '-1',
    TPWS_SOCKET: join(stateDir, 'ingest.sock'),
    TPWS_LOG_LEVEL: 'debug',
  };
  for (const [k, v] of Object.entries(settings)) {
    const name = ENV_BY_KEY.get(k);
    if (name === undefined) throw new Error(`unknown config key ${k}`);
    env[name] = String(v);
  }
  const config = loadConfig({ env });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const daemon = await Daemon.start({ config, logger: createLogger('debug', sink), tokenRefreshIntervalMs: opts.tokenRefreshIntervalMs, readiness: opts.readiness });
  const { port } = daemon.address.ws;
  return {
    daemon,
    stateDir,
    logs,
    url: (token?: string, path = '/ws') => `ws://127.0.0.1:${port}${path}${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`,
    stop: async () => {
      await daemon.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
