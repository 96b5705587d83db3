/**
 * `node dist/bench/chart.js results.json [more.json…] > fanout.svg`: an SVG
 * of client-observed latency (p50 and p99, per delivered frame) against
 * fan-out size, tp-ws against the `ws` floor of the same run, from the JSON
 * that `run.js --out` writes. Recipients 1 / 1,000 / 10,000 come from the
 * floor-1x1000, fanout-1000x20 and broadcast-10000 scenarios. Several files
 * may be given (scenarios run separately); a later file wins for a scenario.
 *
 * Hand-written SVG, no dependency: log-scaled axes, one line per series,
 * every point labelled with its value.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Scenario → the fan-out it measures. */
const SCENARIOS = ['floor-1x1000', 'fanout-1000x20', 'broadcast-10000'];

interface Point {
  recipients: number;
  ms: number;
}

interface Series {
  label: string;
  color: string;
  dashed: boolean;
  points: Point[];
}

type Json = Record<string, unknown>;

/** Points of every series, from the results of one or more runs. */
export function seriesFrom(docs: Json[]): Series[] {
  const byName = new Map<string, Json>();
  for (const doc of docs) {
    const results = doc.results;
    if (!Array.isArray(results)) throw new Error('not a run.js result document: no "results" array');
    for (const r of results as Json[]) if (typeof r.name === 'string' && SCENARIOS.includes(r.name)) byName.set(r.name, r);
  }
  const series: Series[] = [
    { label: 'tp-ws p50', color: '#1f5fa8', dashed: false, points: [] },
    { label: 'tp-ws p99', color: '#1f5fa8', dashed: true, points: [] },
    { label: 'ws floor p50', color: '#c2571a', dashed: false, points: [] },
    { label: 'ws floor p99', color: '#c2571a', dashed: true, points: [] },
  ];
  for (const name of SCENARIOS) {
    const r = byName.get(name);
    if (r === undefined) continue;
    const recipients = Number((r.tpws as Json | undefined)?.sockets);
    const add = (i: number, side: unknown, key: 'p50' | 'p99') => {
      const ms = Number(((side as Json | undefined)?.latency_ms as Json | undefined)?.[key]);
      if (Number.isFinite(ms) && ms > 0 && recipients > 0) series[i].points.push({ recipients, ms });
    };
    add(0, r.tpws, 'p50');
    add(1, r.tpws, 'p99');
    add(2, r.floor, 'p50');
    add(3, r.floor, 'p99');
  }
  if (series.every((s) => s.points.length === 0)) throw new Error(`no latency figures: the input has none of ${SCENARIOS.join(', ')}`);
  return series;
}

const W = 680;
const H = 420;
const M = { left: 70, right: 160, top: 40, bottom: 60 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toPrecision(2));

/** The chart as an SVG document. */
export function renderSvg(series: Series[], title: string): string {
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.recipients);
  const ys = all.map((p) => p.ms);
  const x0 = Math.log10(Math.min(...xs, 1));
  const x1 = Math.max(Math.log10(Math.max(...xs, 10_000)), x0 + 1);
  const y0 = Math.floor(Math.log10(Math.min(...ys)));
  const y1 = Math.max(Math.ceil(Math.log10(Math.max(...ys))), y0 + 1);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const px = (v: number) => M.left + ((Math.log10(v) - x0) / (x1 - x0)) * pw;
  const py = (v: number) => M.top + ph - ((Math.log10(v) - y0) / (y1 - y0)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${M.left}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let e = y0; e <= y1; e++) {
    const y = py(10 ** e);
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 8}" y="${y + 4}" text-anchor="end">${fmt(10 ** e)}</text>`);
  }
  for (let e = Math.ceil(x0); e <= Math.floor(x1); e++) {
    const x = px(10 ** e);
    out.push(`<line x1="${x}" x2="${x}" y1="${M.top}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${M.top + ph + 18}" text-anchor="middle">${(10 ** e).toLocaleString('en-US')}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 18}" text-anchor="middle">recipients per event (log)</text>`);
  out.push(`<text transform="translate(18 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">client-observed latency, ms (log)</text>`);
  series.forEach((s, i) => {
    const pts = [...s.points].sort((a, b) => a.recipients - b.recipients);
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${pts.map((p) => `${px(p.recipients).toFixed(1)},${py(p.ms).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) {
      const x = px(p.recipients);
      const y = py(p.ms);
      out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5" fill="${s.dashed ? '#fff' : s.color}" stroke="${s.color}" stroke-width="2"/>`);
      out.push(`<text x="${(x + 6).toFixed(1)}" y="${(y - 6).toFixed(1)}" fill="${s.color}" font-size="10">${fmt(p.ms)}</text>`);
    }
    const ly = M.top + 10 + i * 22;
    const lx = M.left + pw + 16;
    out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 34}" y="${ly + 4}">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function main(): void {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: chart.js results.json [more.json…] > fanout.svg\n');
    process.exitCode = 2;
    return;
  }
  try {
    const docs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as Json);
    const date = typeof docs[0].date === 'string' ? ` (${docs[0].date.slice(0, 10)})` : '';
    process.stdout.write(renderSvg(seriesFrom(docs), `Fan-out latency: tp-ws vs plain ws${date}`));
  } catch (err) {
    process.stderr.write(`chart: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
