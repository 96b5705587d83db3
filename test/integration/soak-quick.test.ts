/**
 * `node dist/bench/soak.js --quick`: the soak (`npm run soak`, issue #12) at
 * its CI size, for real (daemon in its own process, churning sockets,
 * ingest and table events, access changes), so the script cannot rot.
 * Behaviour only: the document and the chart are written, every kind of
 * load happened, every series was sampled and fitted. Never timing, and
 * never the flat verdict: 30 s say nothing about growth.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERIES = ['rss_mb', 'heap_used_mb', 'handles', 'fds'];

type Json = Record<string, any>;

describe('npm run soak --quick', () => {
  it('churns sockets, sends events both ways and changes access, and reports every series with its slope after the warm-up', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tpws-soak-quick-'));
    try {
      const out = join(dir, 'soak.json');
      const svg = join(dir, 'soak.svg');
      // The embedded store: the bench picks MariaDB when a server is named.
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env.TPWS_BENCH_MYSQL_URL;
      delete env.TPWS_TEST_MYSQL_URL;
      const r = await run(process.execPath, ['dist/bench/soak.js', '--quick', '--minutes', '0.3', '--out', out, '--svg', svg], { cwd: ROOT, env });
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as Json;
      expect(JSON.parse(await readFile(out, 'utf8'))).toEqual(doc);
      expect(doc).toMatchObject({ name: 'soak', quick: true, store: 'sqlite' });

      const c = doc.counts;
      expect(c.connects).toBeGreaterThan(doc.params.pool);
      expect(c.disconnects).toBe(c.connects);
      expect(c.unexpected_closes).toBe(0);
      expect(c.ingest_rejected).toBe(0);
      // Every socket subscribed to its own folder and was refused one it may not read.
      expect(c.subscribes_forbidden).toBeGreaterThan(0);
      expect(c.subscribes_ok).toBeGreaterThanOrEqual(c.connects);
      expect(c.events_socket).toBeGreaterThan(0);
      expect(c.events_table).toBeGreaterThan(0);
      expect(c.access_changes).toBeGreaterThan(0);
      expect(c.client_events_received).toBeGreaterThan(0);
      // The daemon's own closes by code (the churn's 1000s are the client's, not counted there).
      for (const n of Object.values(doc.daemon_closes)) expect(Number.isInteger(n)).toBe(true);

      // One sample per second from 0 to the end, every field a number.
      const seconds = doc.params.minutes * 60;
      expect(doc.samples.length).toBe(Math.floor(seconds / doc.params.sample_s) + 1);
      for (const s of doc.samples) {
        for (const k of [...SERIES, 't_s', 'heap_total_mb', 'external_mb', 'connections', 'deliveries', 'daemon_cpu_s', 'loadavg_1m']) expect(Number.isFinite(s[k]), `${k} in ${JSON.stringify(s)}`).toBe(true);
        expect(s.rss_mb).toBeGreaterThan(0);
        expect(s.fds).toBeGreaterThan(0);
      }
      expect(doc.samples.at(-1).deliveries).toBeGreaterThan(0);
      expect(doc.samples_after_warmup).toBe(doc.samples.filter((s: Json) => s.t_s >= doc.params.warmup_s).length);
      expect(doc.samples_after_warmup).toBeGreaterThan(5);
      for (const k of SERIES) {
        const v = doc.verdict[k];
        expect(Number.isFinite(v.slope_per_10min)).toBe(true);
        expect(v.threshold_per_10min).toBeGreaterThan(0);
        expect(v.flat).toBe(v.slope_per_10min <= v.threshold_per_10min);
      }
      expect(doc.all_flat).toBe(SERIES.every((k) => doc.verdict[k].flat));
      expect(typeof doc.machine_load.busy_cores).toBe('number');

      const chart = await readFile(svg, 'utf8');
      expect(chart).toMatch(/^<svg /);
      for (const label of ['RSS (MB)', 'V8 heap used (MB)', 'active handles', 'open fds']) expect(chart).toContain(label);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
