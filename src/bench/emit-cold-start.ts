/**
 * Cold start of `tp-ws-emit`: the wall time of one whole `node bin/tp-ws-emit.js`
 * process (start Node, load the CLI, connect, send, read the ack, exit), which
 * is what cron and PHP `exec()` pay per event. Measured against a real daemon
 * on a temp state dir, next to a `node -e 0` baseline (Node's own start-up).
 *
 * Standalone: `node dist/bench/emit-cold-start.js [runs]` prints the JSON.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../config/load.js';
import { Daemon } from '../daemon.js';

const BIN = fileURLToPath(new URL('../../bin/tp-ws-emit.js', import.meta.url));

/** One process run: wall time in ms (spawn to exit) and exit code. */
function timeSpawn(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'ignore'] });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code }));
  });
}

function stats(samples: number[]): { p50: number; p90: number; max: number; min: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
  const r = (x: number) => Math.round(x * 10) / 10;
  return { p50: r(at(0.5)), p90: r(at(0.9)), max: r(s[s.length - 1]), min: r(s[0]) };
}

/**
 * Run the commands in turns (a, b, c, a, b, c, …) so that load from other
 * processes on the machine weighs on every series alike.
 */
async function interleaved(runs: Record<string, { args: string[]; runs: number }>, env: NodeJS.ProcessEnv): Promise<Record<string, { ms: number[]; codes: Record<string, number> }>> {
  const out: Record<string, { ms: number[]; codes: Record<string, number> }> = {};
  // Two warm-up runs each: the first spawns pay for the OS page cache, not for tp-ws-emit.
  for (const { args } of Object.values(runs)) for (let i = 0; i < 2; i++) await timeSpawn(args, env);
  const most = Math.max(...Object.values(runs).map((r) => r.runs));
  for (let i = 0; i < most; i++) {
    for (const [name, { args, runs: n }] of Object.entries(runs)) {
      if (i >= n) continue;
      const r = await timeSpawn(args, env);
      const s = (out[name] ??= { ms: [], codes: {} });
      s.ms.push(r.ms);
      s.codes[String(r.code)] = (s.codes[String(r.code)] ?? 0) + 1;
    }
  }
  return out;
}

/**
 * Start a daemon, spawn `tp-ws-emit` `runs` times (default 30) for a user
 * event, and return p50/p90/max wall times in ms: `socket` (delivered through
 * the ingest socket, exit 0), `table_sqlite` (socket absent, stored in the
 * embedded SQLite table, exit 3; this loads the store driver) and `node_baseline`
 * (`node -e 0`). `exit_codes` counts the exit codes seen per series.
 */
export async function benchEmitColdStart(opts: { runs: number } = { runs: 30 }): Promise<Record<string, unknown>> {
  const runs = Math.max(1, Math.trunc(opts.runs || 30));
  const dir = mkdtempSync(join(tmpdir(), 'tpws-bench-emit-'));
  const config = loadConfig({
    env: {
      TPWS_STATE_DIR: dir,
      TPWS_PORT: '0',
      TPWS_ADMIN_PORT: '-1',
      TPWS_SOCKET: join(dir, 'ingest.sock'),
      TPWS_LOG_LEVEL: 'silent',
      TPWS_POLLER_ENABLED: 'false',
    },
  });
  const daemon = await Daemon.start({ config });
  try {
    // A clean environment: no TPWS_* of the caller, the daemon's socket and store.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPWS_')) env[k] = v;
    env.TPWS_STATE_DIR = dir;
    const event = [BIN, 'bench_event', '--user', '1', '--payload', '{"item_id":42}'];

    const r = await interleaved({
      node_baseline: { args: ['-e', '0'], runs },
      socket: { args: [...event, '--socket', config.ingest.socket, '--store', config.store.url], runs },
      table_sqlite: { args: [...event, '--socket', join(dir, 'absent.sock'), '--store', config.store.url], runs: Math.min(runs, 10) },
    }, env);
    const socket = stats(r.socket.ms);
    const baseline = stats(r.node_baseline.ms);
    return {
      node: process.version,
      runs,
      socket_ms: socket,
      table_sqlite_ms: { ...stats(r.table_sqlite.ms), runs: r.table_sqlite.ms.length },
      node_baseline_ms: baseline,
      socket_over_baseline_p50_ms: Math.round((socket.p50 - baseline.p50) * 10) / 10,
      exit_codes: { socket: r.socket.codes, table_sqlite: r.table_sqlite.codes, node_baseline: r.node_baseline.codes },
    };
  } finally {
    await daemon.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const runs = Number(process.argv[2] ?? 30);
  benchEmitColdStart({ runs }).then(
    (r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
