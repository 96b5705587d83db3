/**
 * Per-emit cost from PHP (emitter/php/TpWsEmitter.php): N events over the
 * persistent ingest socket, in each encoding (NDJSON, msgpack), against N plain
 * PDO INSERTs into the events table — what TeamPass's own emitWebSocketEvent()
 * does. Timed inside PHP with hrtime() around each call; a daemon (SQLite store
 * in a temp dir, or a throwaway MySQL database; poller on, logs silent) runs in
 * this process, PHP in its own.
 *
 * An emit's time includes the daemon's ack, which is sent once the event is
 * fanned out and journaled (written to the events table).
 *
 * Standalone: `node dist/bench/php-emit.js [events]` prints the JSON (also on
 * MySQL when TPWS_BENCH_MYSQL_URL=mysql://user:pass@host:port/ is set).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../config/load.js';
import { Daemon } from '../daemon.js';
import { createLogger } from '../log.js';

const EMITTER = fileURLToPath(new URL('../../emitter/php/TpWsEmitter.php', import.meta.url));

/** The PHP side: argv = emitter path, events, socket, table; env = the PDO DSN, user, password. Prints one JSON object. */
const SCRIPT = String.raw`<?php
declare(strict_types=1);
require $argv[1];
[$n, $socket, $table] = [(int) $argv[2], $argv[3], $argv[4]];
[$dsn, $user, $password] = [getenv('TPWS_BENCH_DSN'), getenv('TPWS_BENCH_USER') ?: null, getenv('TPWS_BENCH_PASSWORD') ?: null];

function stats(array $ns): array {
    sort($ns);
    $c = count($ns);
    $at = static fn (float $p): float => $ns[min($c - 1, max(0, (int) ceil($p * $c) - 1))] / 1000;
    return ['count' => $c, 'mean_us' => round(array_sum($ns) / $c / 1000, 1), 'p50_us' => round($at(0.50), 1), 'p99_us' => round($at(0.99), 1), 'max_us' => round($at(1.0), 1)];
}
$payload = static fn (int $i): array => ['item_id' => $i, 'folder_id' => 10, 'label' => "Item n°$i / compte", 'updated_by' => 'alice', 'exclude_user_id' => 2, 'server_timestamp' => time()];
$out = ['php' => PHP_VERSION, 'msgpack_ext' => extension_loaded('msgpack')];
$warm = min(200, $n);

foreach (['ndjson', 'msgpack'] as $encoding) {
    if ($encoding === 'msgpack' && !extension_loaded('msgpack')) {
        $out[$encoding] = ['skipped' => 'ext-msgpack not loaded'];
        continue;
    }
    $fallbacks = 0;
    $emitter = new TpWs\Emitter(['socket' => $socket, 'dsn' => $dsn, 'user' => $user, 'password' => $password, 'table' => $table, 'encoding' => $encoding,
        'logger' => static function (string $level, string $message, array $ctx) use (&$fallbacks): void { if (($ctx['path'] ?? '') === 'table') { $fallbacks++; } }]);
    $t = hrtime(true);
    $emitter->emit('bench', 'folder', 10, $payload(0), 2); // connects
    $first = (hrtime(true) - $t) / 1000;
    for ($i = 1; $i < $warm; $i++) {
        $emitter->emit('bench', 'folder', 10, $payload($i), 2);
    }
    $ns = [];
    for ($i = 0; $i < $n; $i++) {
        $p = $payload($i);
        $t = hrtime(true);
        $emitter->emit('bench', 'folder', 10, $p, 2);
        $ns[] = hrtime(true) - $t;
    }
    $out[$encoding] = stats($ns) + ['first_emit_us' => round($first, 1), 'fallbacks' => $fallbacks];
    TpWs\Emitter::disconnect();
}

// TeamPass's path: json_encode + one INSERT per event (autocommit), a prepared statement.
$pdo = new PDO($dsn, $user, $password, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$q = '"';
if ($pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'sqlite') {
    $pdo->exec('PRAGMA busy_timeout = 5000');
} else {
    $q = '${'`'}';
}
$stmt = $pdo->prepare("INSERT INTO $q$table$q (event_type, target_type, target_id, payload) VALUES (?, ?, ?, ?)");
$insert = static function (array $p) use ($stmt): void {
    $stmt->execute(['bench', 'folder', 10, json_encode($p, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES)]);
};
for ($i = 0; $i < $warm; $i++) {
    $insert($payload($i));
}
$ns = [];
for ($i = 0; $i < $n; $i++) {
    $p = $payload($i);
    $t = hrtime(true);
    $insert($p);
    $ns[] = hrtime(true) - $t;
}
$out['pdo_insert'] = stats($ns);
echo json_encode($out), "\n";
`;

function runPhp(args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('php', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`php exited ${code}: ${err || out}`))));
  });
}

/** A MySQL store URL as PDO settings. */
function mysqlPdo(url: string): Record<string, string> {
  const u = new URL(url);
  return {
    TPWS_BENCH_DSN: `mysql:host=${u.hostname};port=${u.port || '3306'};dbname=${decodeURIComponent(u.pathname.slice(1))};charset=utf8mb4`,
    TPWS_BENCH_USER: decodeURIComponent(u.username),
    TPWS_BENCH_PASSWORD: decodeURIComponent(u.password),
  };
}

/**
 * Start a daemon, run `events` emits per encoding and `events` plain INSERTs
 * from one PHP process, and return mean/p50/p99 µs per call for each. The
 * store is a temp SQLite file, or — with `mysqlServerUrl`
 * (`mysql://user:pass@host:port/`) — a throwaway database on that server,
 * dropped afterwards. Without `php` on PATH it returns `{ skipped }`.
 */
export async function benchPhpEmit(opts: { events: number; mysqlServerUrl?: string; ackAfter?: 'journal' | 'delivery' } = { events: 5000 }): Promise<Record<string, unknown>> {
  const events = opts.events ?? 5000;
  const ackAfter = opts.ackAfter ?? 'journal';
  const name = opts.mysqlServerUrl ? 'php-emit-mysql' : 'php-emit';
  const dir = mkdtempSync(join(tmpdir(), 'tpws-bench-php-'));
  let daemon: Daemon | null = null;
  let dropDatabase: (() => Promise<void>) | null = null;
  try {
    try {
      await runPhp(['-r', 'exit(0);']);
    } catch {
      return { name, skipped: 'php is not installed' };
    }
    const socket = join(dir, 'ingest.sock');
    let storeUrl: string;
    let pdoEnv: Record<string, string>;
    if (opts.mysqlServerUrl) {
      const { createConnection } = await import('mysql2/promise');
      const server = new URL(opts.mysqlServerUrl);
      const db = `tpws_bench_php_${randomBytes(4).toString('hex')}`;
      const admin = { host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) };
      const conn = await createConnection(admin);
      await conn.query(`CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
      await conn.end();
      dropDatabase = async () => {
        const c = await createConnection(admin);
        await c.query(`DROP DATABASE IF EXISTS \`${db}\``);
        await c.end();
      };
      server.pathname = `/${db}`;
      storeUrl = server.toString();
      pdoEnv = mysqlPdo(storeUrl);
    } else {
      storeUrl = `sqlite:${join(dir, 'tp-ws.db')}`;
      pdoEnv = { TPWS_BENCH_DSN: storeUrl };
    }
    const config = loadConfig({
      env: { TPWS_STATE_DIR: dir, TPWS_PORT: '0', TPWS_ADMIN_PORT: '-1', TPWS_SOCKET: socket, TPWS_STORE: storeUrl, TPWS_LOG_LEVEL: 'silent', TPWS_INGEST_ACK_AFTER: ackAfter },
    });
    daemon = await Daemon.start({ config, logger: createLogger('silent') });
    const script = join(dir, 'bench.php');
    writeFileSync(script, SCRIPT);
    const table = `${config.store.tablePrefix}websocket_events`;
    const result = JSON.parse(await runPhp([script, EMITTER, String(events), socket, table], pdoEnv)) as Record<string, unknown>;
    return { name, store: opts.mysqlServerUrl ? 'mysql' : 'sqlite', ack_after: ackAfter, events, ...result };
  } finally {
    await daemon?.close();
    await dropDatabase?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // `node dist/bench/php-emit.js [events]`; with TPWS_BENCH_MYSQL_URL=mysql://user:pass@host:port/ also on MySQL.
  const events = Number(process.argv[2] ?? 5000);
  const results = [await benchPhpEmit({ events })];
  if (process.env.TPWS_BENCH_MYSQL_URL) results.push(await benchPhpEmit({ events, mysqlServerUrl: process.env.TPWS_BENCH_MYSQL_URL }));
  process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results, null, 2) + '\n');
}
