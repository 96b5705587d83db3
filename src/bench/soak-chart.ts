/**
 * The chart of a soak run (src/bench/soak.ts): one panel per series (RSS,
 * heap used, active handles, open fds) against minutes, the warm-up shaded,
 * and the least-squares line fitted after it, so a reader sees at a glance
 * whether anything grows. Hand-written SVG, no dependency, like chart.ts.
 *
 *   node dist/bench/soak-chart.js soak.json > soak.svg
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One plotted series: its sample key, label and unit. */
export interface SoakPanel {
  key: string;
  label: string;
}

export const SOAK_PANELS: readonly SoakPanel[] = [
  { key: 'rss_mb', label: 'RSS (MB)' },
  { key: 'heap_used_mb', label: 'V8 heap used (MB)' },
  { key: 'handles', label: 'active handles' },
  { key: 'fds', label: 'open fds' },
];

/** What the chart reads of a soak document. */
export interface SoakChartInput {
  warmup_s: number;
  samples: Record<string, number>[];
  /** Per series: slope per 10 min and intercept at t = 0 (seconds), fitted after the warm-up. */
  fits: Record<string, { slope_per_10min: number; intercept: number }>;
  title: string;
}

const W = 720;
const PANEL_H = 150;
const M = { left: 70, right: 20, top: 40, bottom: 40, gap: 30 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(1) : x.toPrecision(2));

/** The chart as an SVG document. */
export function renderSoakSvg(input: SoakChartInput): string {
  const s = input.samples;
  if (s.length < 2) throw new Error('a soak chart needs at least two samples');
  const tMax = Math.max(...s.map((x) => x.t_s));
  const plotW = W - M.left - M.right;
  const H = M.top + SOAK_PANELS.length * (PANEL_H + M.gap) + M.bottom - M.gap;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(input.title)}</text>`,
  ];
  const x = (t: number) => M.left + (t / tMax) * plotW;
  SOAK_PANELS.forEach((p, i) => {
    const top = M.top + i * (PANEL_H + M.gap);
    const values = s.map((v) => v[p.key]).filter((v) => Number.isFinite(v));
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    // Zero-based when the series is far from zero would flatten it; pad its own range instead.
    const pad = Math.max((hi - lo) * 0.15, Math.abs(hi) * 0.02, 1);
    const yLo = Math.max(0, lo - pad);
    const yHi = hi + pad;
    const y = (v: number) => top + PANEL_H - ((v - yLo) / (yHi - yLo)) * PANEL_H;
    out.push(`<rect x="${M.left}" y="${top}" width="${x(input.warmup_s) - M.left}" height="${PANEL_H}" fill="#eee"/>`);
    out.push(`<rect x="${M.left}" y="${top}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#999"/>`);
    for (const v of [yLo, (yLo + yHi) / 2, yHi]) {
      out.push(`<text x="${M.left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
    }
    const pts = s.filter((v) => Number.isFinite(v[p.key])).map((v) => `${x(v.t_s).toFixed(1)},${y(v[p.key]).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="#1f5fa8" stroke-width="1.2"/>`);
    const fit = input.fits[p.key];
    if (fit !== undefined) {
      const at = (t: number) => fit.intercept + (fit.slope_per_10min / 600) * t;
      out.push(`<line x1="${x(input.warmup_s)}" y1="${y(at(input.warmup_s))}" x2="${x(tMax)}" y2="${y(at(tMax))}" stroke="#c2571a" stroke-dasharray="5,3" stroke-width="1.5"/>`);
    }
    const slope = fit === undefined ? '' : `, slope after warm-up ${fit.slope_per_10min >= 0 ? '+' : ''}${fmt(fit.slope_per_10min)} per 10 min`;
    out.push(`<text x="${M.left + 4}" y="${top - 6}">${esc(p.label + slope)}</text>`);
  });
  const bottom = M.top + SOAK_PANELS.length * (PANEL_H + M.gap) - M.gap;
  for (let m = 0; m <= tMax / 60 + 1e-9; m += tMax > 180 ? 1 : 0.25) {
    out.push(`<text x="${x(m * 60)}" y="${bottom + 14}" text-anchor="middle">${fmt(m)}</text>`);
  }
  out.push(`<text x="${M.left + plotW / 2}" y="${bottom + 32}" text-anchor="middle">minutes (grey: warm-up; dashed: least-squares fit after it)</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: soak-chart.js SOAK.json > soak.svg\n');
    process.exitCode = 2;
  } else {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    process.stdout.write(renderSoakSvg(chartInput(doc)));
  }
}

/** The chart's input from a soak document (`soak.js --out`). */
export function chartInput(doc: Record<string, unknown>): SoakChartInput {
  const samples = doc.samples;
  const params = doc.params as Record<string, unknown> | undefined;
  const verdict = doc.verdict as Record<string, { slope_per_10min: number; intercept: number }> | undefined;
  if (!Array.isArray(samples) || params === undefined || verdict === undefined) throw new Error('not a soak document: needs samples, params and verdict');
  const store = typeof doc.store === 'string' ? doc.store : '?';
  const minutes = Number(params.minutes);
  return {
    warmup_s: Number(params.warmup_s),
    samples: samples as Record<string, number>[],
    fits: verdict,
    title: `tp-ws soak: ${fmt(minutes)} min on ${store}, ${String(doc.date ?? '').slice(0, 10)}`,
  };
}
