/**
 * docs/performance.md quotes one kept run of the fan-out benchmarks: its JSON
 * is committed beside the chart drawn from it. The chart must be what
 * `dist/bench/chart.js` draws from that JSON today, and the JSON must hold
 * every scenario the page reports.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/run.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUN = 'docs/perf/issue-10-2026-12-02.json';

describe('docs/perf', () => {
  it('fanout.svg is the chart of the kept run', async () => {
    const r = await run(process.execPath, ['dist/bench/chart.js', RUN], { cwd: ROOT });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(readFileSync(`${ROOT}docs/perf/fanout.svg`, 'utf8'));
  });

  it('the kept run has every scenario of the page, each complete', () => {
    const doc = JSON.parse(readFileSync(`${ROOT}${RUN}`, 'utf8')) as { results: Record<string, any>[] };
    const byName = new Map(doc.results.map((x) => [x.name, x]));
    const page = readFileSync(`${ROOT}docs/performance.md`, 'utf8');
    for (const name of ['fanout-1000x20', 'burst-2000x1000', 'floor-1x1000', 'broadcast-10000', 'connect-storm', 'backlog-100k', 'idle-cpu', 'rss-idle']) {
      expect(page).toContain(`\`${name}\``);
    }
    for (const name of ['fanout-1000x20', 'burst-2000x1000', 'floor-1x1000', 'broadcast-10000']) {
      expect(byName.get(name)?.tpws.all_delivered).toBe(true);
    }
    expect(byName.get('connect-storm')?.failed).toBe(0);
    expect(byName.get('backlog')?.delivered).toBe(100_000);
  });
});
