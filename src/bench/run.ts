/**
 * `npm run bench`: runs the benchmarks and prints one JSON document on
 * stdout (progress on stderr). `npm run bench -- NAME…` runs only those.
 * Every benchmark is bounded in count and time and talks to loopback only.
 */
import { arch, cpus, platform } from 'node:os';
import { benchSocketLatency, benchTableLatency, benchTableLatencyMysql } from './latency.js';
import { benchIngestThroughput } from './throughput.js';
import { benchEmitColdStart } from './emit-cold-start.js';
import { benchPhpEmit } from './php-emit.js';
import { benchSqliteStall } from './sqlite-stall.js';

type Bench = () => Promise<Record<string, unknown>>;

const BENCHES: Record<string, Bench> = {
  'socket-latency': () => benchSocketLatency({ clients: 1000, ratePerSec: 1000, seconds: 10 }),
  'table-latency': () => benchTableLatency({ clients: 1000, ratePerSec: 100, seconds: 10 }),
  // Needs a MariaDB/MySQL server: TPWS_BENCH_MYSQL_URL=mysql://user:pass@host:port/ (skipped without it).
  'table-latency-mysql': async () => {
    const serverUrl = process.env.TPWS_BENCH_MYSQL_URL ?? process.env.TPWS_TEST_MYSQL_URL;
    if (!serverUrl) return { name: 'table-insert-to-client-latency', store: 'mariadb', skipped: 'set TPWS_BENCH_MYSQL_URL' };
    return benchTableLatencyMysql({ clients: 1000, ratePerSec: 100, seconds: 10, serverUrl });
  },
  'ingest-throughput': () => benchIngestThroughput({ events: 100_000, batch: 1 }),
  'ingest-throughput-batched': () => benchIngestThroughput({ events: 100_000, batch: 100 }),
  'sqlite-stall': () => benchSqliteStall({ idleSeconds: 3, lock: { ratePerSec: 1000, seconds: 3, lockAtMs: 500, lockMs: 1000 }, rate: { ratePerSec: 10_000, seconds: 5 } }),
  'emit-cold-start': () => benchEmitColdStart({ runs: 30 }),
  'php-emit': () => benchPhpEmit({ events: 5000 }),
  'php-emit-ack-delivery': () => benchPhpEmit({ events: 5000, ackAfter: 'delivery' }),
  'php-emit-mysql': async () => {
    const mysqlServerUrl = process.env.TPWS_BENCH_MYSQL_URL ?? process.env.TPWS_TEST_MYSQL_URL;
    if (!mysqlServerUrl) return { name: 'php-emit-mysql', skipped: 'set TPWS_BENCH_MYSQL_URL' };
    return benchPhpEmit({ events: 5000, mysqlServerUrl });
  },
  'php-emit-mysql-ack-delivery': async () => {
    const mysqlServerUrl = process.env.TPWS_BENCH_MYSQL_URL ?? process.env.TPWS_TEST_MYSQL_URL;
    if (!mysqlServerUrl) return { name: 'php-emit-mysql', skipped: 'set TPWS_BENCH_MYSQL_URL' };
    return benchPhpEmit({ events: 5000, mysqlServerUrl, ackAfter: 'delivery' });
  },
};

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const names = only.length > 0 ? only : Object.keys(BENCHES);
  const unknown = names.filter((n) => !(n in BENCHES));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const results: Record<string, unknown>[] = [];
  for (const name of names) {
    process.stderr.write(`bench ${name}…\n`);
    results.push(await BENCHES[name]());
  }
  const out = {
    machine: { node: process.version, platform: platform(), arch: arch(), cpus: cpus().length, cpu: cpus()[0]?.model },
    date: new Date().toISOString(),
    results,
  };
  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

await main();
