/**
 * `node dist/bench/run.js --quick`: the fan-out scenarios of issue #10 run at
 * their CI size, for real (daemon, floor server and load clients in their own
 * processes), on the embedded SQLite store and on MariaDB. Behaviour only:
 * the document is valid JSON, every event reached every socket, and the
 * figures a reader needs are there. Never timing: these numbers mean nothing
 * at this size.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { describeMysql, MYSQL_URL } from '../helpers/mysql.js';
import { run } from '../helpers/run.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCENARIOS = ['fanout-1000x20', 'burst-2000x1000', 'broadcast-10000', 'floor-1x1000'];
/** Scenarios compared with the plain ws floor in the same run. */
const WITH_FLOOR = new Set(['fanout-1000x20', 'broadcast-10000', 'floor-1x1000']);

type Json = Record<string, any>;

/** Run quick scenarios (the fan-out ones by default) with the store chosen by the environment; the document and the --out file. */
async function runQuick(mysqlUrl: string | undefined, names: string[] = SCENARIOS): Promise<{ doc: Json; out: Json }> {
  const dir = await mkdtemp(join(tmpdir(), 'tpws-bench-quick-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.TPWS_BENCH_MYSQL_URL;
    delete env.TPWS_TEST_MYSQL_URL;
    if (mysqlUrl !== undefined) env.TPWS_BENCH_MYSQL_URL = mysqlUrl;
    const outFile = join(dir, 'results.json');
    const r = await run(process.execPath, ['dist/bench/run.js', '--quick', '--out', outFile, ...names], { cwd: ROOT, env });
    expect(r.code, r.stderr).toBe(0);
    return { doc: JSON.parse(r.stdout) as Json, out: JSON.parse(await readFile(outFile, 'utf8')) as Json };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One server's figures: every event to every socket, and the fields the note reports. */
function expectComplete(side: Json, sockets: number, events: number): void {
  expect(side.sockets).toBe(sockets);
  expect(side.frames_expected).toBe(sockets * events);
  expect(side.frames_delivered).toBe(sockets * events);
  expect(side.all_delivered).toBe(true);
  expect(side.events_complete).toBe(events);
  expect(side.latency_ms.count).toBe(sockets * events);
  expect(side.event_complete_ms.count).toBe(events);
  for (const k of ['p50', 'p90', 'p99', 'max']) expect(typeof side.latency_ms[k]).toBe('number');
  expect(side.server_cpu_s).toBeGreaterThanOrEqual(0);
  expect(side.server_rss_mb.peak).toBeGreaterThan(0);
  expect(side.client.processes).toBeGreaterThanOrEqual(1);
  expect(typeof side.client.cpu_s).toBe('number');
  expect(typeof side.machine.busy_cores).toBe('number');
  expect(side.closes).toEqual({});
}

function expectDocument(doc: Json, store: 'sqlite' | 'mariadb'): void {
  expect(doc.quick).toBe(true);
  expect(doc.results.map((r: Json) => r.name)).toEqual(SCENARIOS);
  for (const r of doc.results as Json[]) {
    const sockets = r.params.subscribers ?? r.params.sockets;
    const events = r.params.events;
    expect(r.store).toBe(store);
    expectComplete(r.tpws, sockets, events);
    // The daemon's own fan-out histogram saw exactly the window's events.
    expect(r.tpws.acked).toBe(events);
    expect(r.tpws.rejected).toBe(0);
    expect(r.tpws.fanout_histogram.count).toBe(events);
    expect(typeof r.tpws.fanout_histogram.p99_ms).toBe('number');
    if (WITH_FLOOR.has(r.name)) {
      expectComplete(r.floor, sockets, events);
      expect(typeof r.ratio_to_floor.latency_p50).toBe('number');
      expect(typeof r.ratio_to_floor.latency_p99).toBe('number');
    } else {
      expect(r.floor).toBeUndefined();
    }
  }
}

describe('bench --quick [sqlite]', () => {
  it('delivers every event of every scenario to every socket, with the figures, and charts them', async () => {
    const { doc, out } = await runQuick(undefined);
    expectDocument(doc, 'sqlite');
    expect(out).toEqual(doc);

    const dir = await mkdtemp(join(tmpdir(), 'tpws-bench-chart-'));
    try {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(dir, 'r.json'), JSON.stringify(doc));
      const chart = await run(process.execPath, ['dist/bench/chart.js', join(dir, 'r.json')], { cwd: ROOT });
      expect(chart.code, chart.stderr).toBe(0);
      expect(chart.stdout.startsWith('<svg')).toBe(true);
      for (const label of ['tp-ws p50', 'tp-ws p99', 'ws floor p50', 'ws floor p99']) expect(chart.stdout).toContain(label);
      // One point per series for each of the three scenarios.
      expect(chart.stdout.match(/<circle /g)?.length).toBe(12);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('refuses an unknown option and a scenario without a quick size', async () => {
    const bad = await run(process.execPath, ['dist/bench/run.js', '--fast'], { cwd: ROOT });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown option --fast');
    const slow = await run(process.execPath, ['dist/bench/run.js', '--quick', 'php-emit'], { cwd: ROOT });
    expect(slow.code).toBe(2);
    expect(slow.stderr).toContain('no --quick size for: php-emit');
  });
});

describeMysql('bench --quick [mariadb]', () => {
  it('delivers every event of every scenario to every socket, TeamPass tokens on MariaDB', async () => {
    const { doc } = await runQuick(MYSQL_URL);
    expectDocument(doc, 'mariadb');
  }, 120_000);
});

describeMysql('bench --quick [mariadb]: memory, idle CPU, connect storm, backlog', () => {
  it('reaches every size, connects every client, delivers every event and every row, with the figures', async () => {
    const { doc } = await runQuick(MYSQL_URL, ['rss-idle', 'idle-cpu', 'connect-storm', 'backlog-100k']);
    const [rss, idle, storm, backlog] = doc.results as Json[];
    expect(rss.name).toBe('rss-idle');
    for (const side of [rss.tpws, rss.floor]) {
      expect(side.points.map((p: Json) => p.sockets)).toEqual(rss.sizes);
      for (const p of side.points) expect(typeof p.per_connection_kb).toBe('number');
      expect(side.rss_0_mb).toBeGreaterThan(0);
    }
    expect(rss.tpws.store).toBe('mariadb');
    expect(idle.name).toBe('idle-cpu');
    expect(idle.at_n.sockets).toBe(200);
    for (const w of [idle.at_0, idle.at_n]) expect(typeof w.cpu_pct).toBe('number');
    expect(storm.name).toBe('connect-storm');
    expect(storm.connected).toBe(storm.clients);
    expect(storm.failed).toBe(0);
    expect(storm.handshake_ms.count).toBe(storm.clients);
    expect(storm.subscriber.received).toBe(storm.subscriber.events);
    expect(backlog.name).toBe('backlog');
    expect(backlog.store).toBe('mariadb');
    expect(backlog.timed_out).toBe(false);
    expect(backlog.delivered).toBe(backlog.rows);
  }, 240_000);
});

describeMysql('bench --quick [mariadb]: resume after a restart', () => {
  it('every client resumes after SIGKILL with exactly the events it missed, then reconnects without resume as the floor', async () => {
    const { doc } = await runQuick(MYSQL_URL, ['resume-restart']);
    const [r] = doc.results as Json[];
    expect(r.name).toBe('resume-restart');
    expect(r.store).toBe('mariadb');
    const { clients, events_before_kill: events, rows_while_down: rows } = r.params;
    expect(clients).toBe(50);
    // Before the kill: every event journaled and at every client it was for, once.
    expect(r.before_kill.acked).toBe(events);
    expect(r.before_kill.journal_queue_at_kill).toBe(0);
    expect(r.before_kill.frames_missing).toBe(0);
    expect(r.before_kill.duplicates).toBe(0);
    expect(r.before_kill.epochs).toBe(1);
    for (const side of [r.resume, r.floor]) {
      expect(side.restart).toBe('SIGKILL');
      expect(side.ready).toBe(clients);
      expect(side.failed).toBe(0);
      expect(side.complete).toBe(true);
      expect(side.rows_while_down).toBe(rows);
      expect(side.rows_delivered_by_poller).toBe(rows);
      expect(side.duplicates).toBe(0);
      expect(side.unexpected).toBe(0);
      expect(side.connect_ms.count).toBe(clients);
      for (const k of ['window_ms', 'daemon_cpu_s', 'daemon_cpu_before_banner_s', 'client_cpu_s', 'banner_to_rows_delivered_ms']) expect(typeof side[k]).toBe('number');
      expect(side.daemon_rss_peak_mb).toBeGreaterThan(0);
      expect(typeof side.limited).toBe('boolean');
      expect(typeof side.machine.busy_cores).toBe('number');
    }
    // Resume: all recovered, and every client got each event it missed once, all as replay.
    expect(r.resume.recovered).toBe(clients);
    expect(r.resume.not_recovered).toEqual({});
    expect(r.resume.daemon_resumes).toEqual({ recovered: clients, all: clients });
    expect(r.resume.missed_expected).toBeGreaterThan(0);
    expect(r.resume.missed_received).toBe(r.resume.missed_expected);
    expect(r.resume.replayed_total).toBe(r.resume.missed_expected);
    expect(r.resume.daemon_replayed_events).toBe(r.resume.replayed_total);
    expect(r.resume.live_total).toBe(0);
    expect(r.resume.clients_exact).toBe(clients);
    expect(r.resume.resume_reply_ms.count).toBe(clients);
    expect(r.resume.resume_to_last_replayed_ms.count).toBe(clients);
    expect(typeof r.resume.wall_to_all_resumed_ms).toBe('number');
    // Floor: subscribed again, and (as with TeamPass's client) none of the rows fanned out while away.
    expect(r.floor.subscribe_reply_ms.count).toBe(clients);
    expect(r.floor.events_received).toBe(0);
    expect(r.floor.events_if_none_missed).toBeGreaterThan(0);
    expect(typeof r.floor.wall_to_all_subscribed_ms).toBe('number');
    for (const k of ['wall', 'daemon_cpu']) expect(r.ratio_to_floor).toHaveProperty(k);
  }, 120_000);
});
