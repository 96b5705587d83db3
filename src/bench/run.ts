/**
 * `npm run bench`: runs the benchmarks and prints one JSON document on
 * stdout (progress on stderr). `npm run bench -- NAME…` runs only those.
 * Every benchmark is bounded in count and time and talks to loopback only.
 *
 *   node dist/bench/run.js [--quick] [--out FILE] [NAME…]
 *
 * `--quick` runs the scenarios that have a small size (the fan-out ones) at
 * that size: a smoke test for CI, whose numbers mean nothing. `--out FILE`
 * also writes the JSON document to FILE (for chart.js).
 */
import { writeFileSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';
import { benchBroadcast, benchBurst, benchFanout, benchFloorPipeline } from './fanout.js';
import { benchSocketLatency, benchTableLatency, benchTableLatencyMysql } from './latency.js';
import { benchIngestThroughput } from './throughput.js';
import { benchEmitColdStart } from './emit-cold-start.js';
import { benchPhpEmit } from './php-emit.js';
import { benchSqliteStall } from './sqlite-stall.js';
import { benchIdleCpu, benchRssIdle } from './idle.js';
import { connectStorm } from './storm.js';
import { backlog100k } from './backlog.js';
import { resumeRestart } from './resume.js';

type Bench = (quick: boolean) => Promise<Record<string, unknown>>;

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
  // Issue #10 fan-out scenarios: tp-ws on MariaDB when TPWS_BENCH_MYSQL_URL/TPWS_TEST_MYSQL_URL is set, else SQLite.
  'fanout-1000x20': (quick) => benchFanout(quick ? { subscribers: 20, ratePerSec: 50, seconds: 1, processes: 1 } : { subscribers: 1000, ratePerSec: 20, seconds: 10, processes: 1 }),
  'burst-2000x1000': (quick) => benchBurst(quick ? { subscribers: 20, events: 50, processes: 1 } : { subscribers: 1000, events: 2000, processes: 2 }),
  'broadcast-10000': (quick) => benchBroadcast(quick ? { subscribers: 20, ratePerSec: 50, seconds: 1, processes: 2 } : { subscribers: 10_000, ratePerSec: 2, seconds: 10, processes: 2 }),
  'floor-1x1000': (quick) => benchFloorPipeline(quick ? { ratePerSec: 50, seconds: 1 } : { ratePerSec: 1000, seconds: 10 }),
  'rss-idle': (quick) => benchRssIdle(quick ? { sizes: [50, 200], settleS: 3 } : { sizes: [1000, 10_000, 20_000] }),
  'idle-cpu': (quick) => benchIdleCpu(quick ? { sockets: 200, seconds: 3, settleMs: 5000 } : { sockets: 10_000, seconds: 30 }),
  'connect-storm': (quick) => connectStorm(quick),
  'backlog-100k': (quick) => backlog100k(quick),
  // Issue #11: every client resumes after a daemon restart, against the same reconnects without resume.
  'resume-restart': (quick) => resumeRestart(quick),
};

/** Scenarios that have a --quick size; --quick without names runs these. */
const QUICK = ['fanout-1000x20', 'burst-2000x1000', 'broadcast-10000', 'floor-1x1000', 'rss-idle', 'idle-cpu', 'connect-storm', 'backlog-100k', 'resume-restart'];

interface Args {
  quick: boolean;
  out: string | null;
  names: string[];
}

function parseArgs(argv: string[]): Args | string {
  const a: Args = { quick: false, out: null, names: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') a.quick = true;
    else if (argv[i] === '--out') {
      const f = argv[++i];
      if (f === undefined || f === '' || f.startsWith('--')) return '--out needs a file name';
      a.out = f;
    } else if (argv[i].startsWith('--')) return `unknown option ${argv[i]}`;
    else a.names.push(argv[i]);
  }
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (typeof args === 'string') {
    process.stderr.write(`${args}\nusage: run.js [--quick] [--out FILE] [NAME…]\n`);
    process.exitCode = 2;
    return;
  }
  const names = args.names.length > 0 ? args.names : args.quick ? QUICK : Object.keys(BENCHES);
  const unknown = names.filter((n) => !(n in BENCHES));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const slow = names.filter((n) => args.quick && !QUICK.includes(n));
  if (slow.length > 0) {
    process.stderr.write(`no --quick size for: ${slow.join(', ')}; --quick runs ${QUICK.join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const results: Record<string, unknown>[] = [];
  for (const name of names) {
    process.stderr.write(`bench ${name}${args.quick ? ' (quick)' : ''}…\n`);
    try {
      results.push(await BENCHES[name](args.quick));
    } catch (err) {
      // One failed scenario (a deadline, a daemon that would not start) must not lose the others' figures.
      process.stderr.write(`bench ${name} failed: ${(err as Error).message}\n`);
      results.push({ name, error: (err as Error).message });
      process.exitCode = 1;
    }
  }
  const out = {
    machine: { node: process.version, platform: platform(), arch: arch(), cpus: cpus().length, cpu: cpus()[0]?.model },
    date: new Date().toISOString(),
    quick: args.quick,
    results,
  };
  const text = JSON.stringify(out, null, 2) + '\n';
  if (args.out !== null) writeFileSync(args.out, text);
  process.stdout.write(text);
}

await main();
