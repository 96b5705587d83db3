/**
 * `npm run soak`: the daemon under steady load for ten minutes (issue #12),
 * to show that nothing grows: RSS, V8 heap, active handles and open fds
 * must be flat after the warm-up. Outside the default suite; its --quick
 * run is checked there (test/integration/soak-quick.test.ts).
 *
 *   node dist/bench/soak.js [--minutes N] [--quick] [--out FILE] [--svg FILE]
 *
 * The daemon is `tp-ws serve` in its own process on a seeded TeamPass store
 * (MariaDB when TPWS_BENCH_MYSQL_URL or TPWS_TEST_MYSQL_URL is set, else
 * SQLite), as TeamPass runs it. The load, all at once and at steady rates:
 * - a pool of browser sockets churning: each connects with its user's token,
 *   subscribes to its folder, to a folder it may not read (refused) and
 *   sometimes to the KB, stays a few seconds, closes, and connects again;
 * - events through the ingest socket and as events-table rows, of every
 *   target type, some with an exclusion;
 * - access changes: a folder granted or revoked in `users_groups`, then
 *   `folder_permission_changed` for that user, as TeamPass's PHP does.
 * Every few seconds it samples the daemon's RSS and fds (/proc) and its heap
 * used, active handles, sockets and deliveries (admin /metrics). At the end
 * each series gets a least-squares slope over the samples after the warm-up
 * (the first 2 minutes; a fifth of a --quick run), reported per 10 minutes
 * and compared with a stated threshold; the exit code is 1 when one is not
 * flat (never for --quick, whose 30 s say nothing about growth).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';
import WebSocket from 'ws';
import { IngestClient } from '../ingest/client.js';
import { MachineWindow, cpuSeconds, mb, rssBytes } from './proc.js';
import { chartInput, renderSoakSvg } from './soak-chart.js';
import { TeampassDaemon, type EventRow } from './teampass-daemon.js';

/** Growth per 10 minutes above which a series is "not flat". */
const THRESHOLDS_PER_10MIN = { rss_mb: 10, heap_used_mb: 5, handles: 10, fds: 10 } as const;
type SeriesKey = keyof typeof THRESHOLDS_PER_10MIN;
const SERIES = Object.keys(THRESHOLDS_PER_10MIN) as SeriesKey[];

interface SoakParams {
  minutes: number;
  warmup_s: number;
  sample_s: number;
  users: number;
  folders: number;
  pool: number;
  /** Seconds a socket stays connected: uniform in [min, max]. */
  lifetime_s: [number, number];
  events_per_s: number;
  /** Share of the events written as table rows instead of the ingest socket. */
  table_share: number;
  access_change_every_s: number;
  /** `dedup.windowSize` of the daemon: full well within the warm-up. */
  dedup_window: number;
}

function params(minutes: number, quick: boolean): SoakParams {
  return quick
    ? { minutes, warmup_s: Math.round(minutes * 12), sample_s: 1, users: 40, folders: 8, pool: 20, lifetime_s: [1, 4], events_per_s: 40, table_share: 0.3, access_change_every_s: 1, dedup_window: 200 }
    : { minutes, warmup_s: 120, sample_s: 5, users: 200, folders: 20, pool: 150, lifetime_s: [3, 30], events_per_s: 100, table_share: 0.3, access_change_every_s: 2, dedup_window: 5000 };
}

const ORIGIN = 'https://teampass.example.org';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The folder user `u` reads from the start (users_groups). */
const homeFolder = (u: number, folders: number) => 1 + (u % folders);

interface Counts {
  connects: number;
  connect_refused: number;
  disconnects: number;
  subscribes_ok: number;
  subscribes_forbidden: number;
  events_socket: number;
  events_table: number;
  ingest_rejected: number;
  access_changes: number;
  client_events_received: number;
  unexpected_closes: number;
  /** Close codes of the unexpected closes, and the error codes of refused logins. */
  close_codes: Record<string, number>;
  refusals: Record<string, number>;
}

/** A pool slot: connects a user's socket, subscribes, stays a while, leaves, again, until `stop`. */
async function churn(d: TeampassDaemon, p: SoakParams, c: Counts, stop: Stop): Promise<void> {
  while (!stop.now) {
    const user = 1 + Math.floor(Math.random() * p.users);
    const ws = new WebSocket(`${d.wsUrl}?token=${d.tokens[user - 1]}`, { headers: { Origin: ORIGIN } });
    let rid = 0;
    const replies = new Map<string, (m: Record<string, unknown>) => void>();
    const request = (m: Record<string, unknown>) => new Promise<Record<string, unknown>>((resolve) => {
      const id = `r${++rid}`;
      replies.set(id, resolve);
      ws.send(JSON.stringify({ ...m, request_id: id }));
    });
    let leaving = false;
    const closed = new Promise<void>((resolve) => ws.once('close', (code) => {
      if (!leaving && code !== 1000) {
        c.unexpected_closes++;
        c.close_codes[code] = (c.close_codes[code] ?? 0) + 1;
      }
      for (const r of replies.values()) r({});
      resolve();
    }));
    ws.on('error', () => undefined);
    const first = await new Promise<Record<string, unknown> | null>((resolve) => {
      ws.once('message', (data) => resolve(JSON.parse(String(data)) as Record<string, unknown>));
      ws.once('close', () => resolve(null));
    });
    if (first?.type !== 'connected') {
      c.connect_refused++;
      const why = String(first?.error_code ?? 'closed');
      c.refusals[why] = (c.refusals[why] ?? 0) + 1;
      ws.terminate();
      await closed;
      await sleep(100);
      continue;
    }
    c.connects++;
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Record<string, unknown>;
      if (m.type === 'event') c.client_events_received++;
      else if (m.type === 'ping') ws.send('{"action":"pong"}');
      else if (typeof m.request_id === 'string') {
        replies.get(m.request_id)?.(m);
        replies.delete(m.request_id);
      }
    });
    const home = homeFolder(user, p.folders);
    const other = 1 + ((home + 1 + Math.floor(Math.random() * (p.folders - 1))) % p.folders);
    for (const folder of [home, other]) {
      const r = await request({ action: 'subscribe', channel: 'folder', data: { folder_id: folder } });
      if (r.action === 'subscribed') c.subscribes_ok++;
      else if (r.error_code === 'forbidden') c.subscribes_forbidden++;
    }
    if (Math.random() < 0.3) await request({ action: 'subscribe', channel: 'kb' });
    const [lo, hi] = p.lifetime_s;
    const stay = (lo + Math.random() * (hi - lo)) * 1000;
    await Promise.race([sleep(stay), closed, stop.done]);
    leaving = true;
    ws.close(1000);
    await Promise.race([closed, sleep(5000)]);
    ws.terminate();
    c.disconnects++;
    if (!stop.now) await sleep(Math.random() * 200);
  }
}

/** The end of the run: `now` to test, `done` to wait for. */
class Stop {
  now = false;
  readonly done: Promise<void>;
  #resolve!: () => void;

  constructor() {
    this.done = new Promise((r) => (this.#resolve = r));
  }

  fire(): void {
    this.now = true;
    this.#resolve();
  }
}

/** An event of a random target type, a fifth with an exclusion. */
function randomEvent(p: SoakParams, n: number): EventRow {
  const kind = Math.random();
  const exclude = Math.random() < 0.2 ? { exclude_user_id: 1 + Math.floor(Math.random() * p.users) } : {};
  const payload = { n, label: `soak ${n}`, ...exclude };
  if (kind < 0.6) return { eventType: 'item_updated', targetType: 'folder', targetId: 1 + Math.floor(Math.random() * p.folders), payload };
  if (kind < 0.8) return { eventType: 'task_progress', targetType: 'user', targetId: 1 + Math.floor(Math.random() * p.users), payload };
  if (kind < 0.9) return { eventType: 'kb_updated', targetType: 'kb', targetId: null, payload };
  return { eventType: 'system_notice', targetType: 'broadcast', targetId: null, payload };
}

const ingestFrame = (e: EventRow) => ({ event_type: e.eventType, target_type: e.targetType, target_id: e.targetId ?? undefined, payload: e.payload });

/** Events at `events_per_s`, in ticks of 100 ms: socket events pipelined on one ingest connection, table rows in one INSERT per tick. */
async function emitEvents(d: TeampassDaemon, ingest: IngestClient, p: SoakParams, c: Counts, stop: Stop): Promise<void> {
  let n = 0;
  const t0 = Date.now();
  while (!stop.now) {
    const due = Math.floor(((Date.now() - t0) / 1000) * p.events_per_s) - n;
    const rows: EventRow[] = [];
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < due; i++) {
      const e = randomEvent(p, ++n);
      if (Math.random() < p.table_share) {
        rows.push(e);
        continue;
      }
      c.events_socket++;
      acks.push(ingest.request(ingestFrame(e)).then((a) => {
        if (!a.ok) c.ingest_rejected++;
      }));
    }
    if (rows.length > 0) {
      await d.insertEvents(rows);
      c.events_table += rows.length;
    }
    await Promise.all(acks);
    await sleep(100);
  }
}

/** Every `access_change_every_s`: grant or revoke a folder of a random user in the database, then tell the daemon (socket or table, as TeamPass may). */
async function changeAccess(d: TeampassDaemon, ingest: IngestClient, p: SoakParams, c: Counts, stop: Stop): Promise<void> {
  const granted = new Set<string>();
  while (!stop.now) {
    await Promise.race([sleep(p.access_change_every_s * 1000), stop.done]);
    if (stop.now) return;
    const user = 1 + Math.floor(Math.random() * p.users);
    const folder = 1 + Math.floor(Math.random() * p.folders);
    if (folder === homeFolder(user, p.folders)) continue;
    const key = `${user}:${folder}`;
    await d.execSql('DELETE FROM {p}users_groups WHERE user_id = ? AND group_id = ?', [user, folder]);
    if (granted.has(key)) granted.delete(key);
    else {
      await d.execSql('INSERT INTO {p}users_groups (user_id, group_id) VALUES (?, ?)', [user, folder]);
      granted.add(key);
    }
    const e: EventRow = { eventType: 'folder_permission_changed', targetType: 'user', targetId: user, payload: { folders: [folder], source: 'soak' } };
    if (Math.random() < 0.5) await d.insertEvents([e]);
    else await ingest.request(ingestFrame(e));
    c.access_changes++;
  }
}

/** One value of an unlabelled metric in /metrics text. */
function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

/** Values of a labelled metric by its one label, e.g. `tpws_closes_total{code="4100"} 3`. */
function labelled(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{${label}="([^"]*)"\\} (\\S+)$`, 'gm'))) out[m[1]] = Number(m[2]);
  return out;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function loadavg1m(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** Least-squares slope (per second) and intercept of y against t. */
function linearFit(points: readonly { t: number; y: number }[]): { slope: number; intercept: number } {
  const n = points.length;
  if (n < 2) return { slope: NaN, intercept: NaN };
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.y - my);
    den += (p.t - mt) ** 2;
  }
  const slope = den === 0 ? 0 : num / den;
  return { slope, intercept: my - slope * mt };
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

interface SoakResult extends Record<string, unknown> {
  verdict: Record<string, Record<string, number | boolean>>;
  all_flat: boolean;
}

async function soak(minutes: number, quick: boolean): Promise<SoakResult> {
  const p = params(minutes, quick);
  const d = await TeampassDaemon.start({
    users: p.users,
    folderOf: (u) => homeFolder(u, p.folders),
    // Bounded memory that fills with traffic must be full by the end of the warm-up, or its
    // filling reads as growth: the dedup window (default 100,000 ids for an hour) would take
    // 17 minutes at this rate. The resume ring (10,000 events) fills in under two.
    env: { TPWS_LOG_LEVEL: 'warn', TPWS_DEDUP_WINDOW_SIZE: String(p.dedup_window) },
  });
  const machine = new MachineWindow();
  const counts: Counts = {
    connects: 0, connect_refused: 0, disconnects: 0, subscribes_ok: 0, subscribes_forbidden: 0, events_socket: 0,
    events_table: 0, ingest_rejected: 0, access_changes: 0, client_events_received: 0, unexpected_closes: 0, close_codes: {}, refusals: {},
  };
  const samples: Record<string, number>[] = [];
  const stop = new Stop();
  let ingest: IngestClient | null = null;
  try {
    await d.execSql("INSERT INTO {p}misc (type, intitule, valeur) VALUES ('admin', 'enable_kb', '1')");
    ingest = await IngestClient.connect(d.ingestSocket, { timeoutMs: 30_000 });
    const cpu0 = cpuSeconds(d.pid);
    const t0 = Date.now();
    const load = [
      ...Array.from({ length: p.pool }, () => churn(d, p, counts, stop)),
      emitEvents(d, ingest, p, counts, stop),
      changeAccess(d, ingest, p, counts, stop),
    ];
    const end = t0 + minutes * 60_000;
    for (let next = t0; next <= end; next += p.sample_s * 1000) {
      await sleep(Math.max(0, next - Date.now()));
      const text = await d.metrics();
      samples.push({
        t_s: round((Date.now() - t0) / 1000, 1),
        rss_mb: mb(rssBytes(d.pid)),
        heap_used_mb: mb(metric(text, 'tpws_nodejs_heap_size_used_bytes')),
        // Where RSS that is not heap used lives: the heap V8 keeps, and Buffers outside it.
        heap_total_mb: mb(metric(text, 'tpws_nodejs_heap_size_total_bytes')),
        external_mb: mb(metric(text, 'tpws_nodejs_external_memory_bytes')),
        handles: metric(text, 'tpws_nodejs_active_handles_total'),
        fds: fdCount(d.pid),
        connections: metric(text, 'tpws_connections'),
        deliveries: metric(text, 'tpws_deliveries_total'),
        daemon_cpu_s: round(cpuSeconds(d.pid) - cpu0),
        loadavg_1m: loadavg1m(),
      });
      if (!quick) process.stderr.write(`soak ${samples.at(-1)!.t_s} s: ${JSON.stringify(samples.at(-1))}\n`);
    }
    stop.fire();
    await Promise.all(load);
    // Sockets the daemon closed itself, by close code: what an unexpected close on the client side was.
    const daemonCloses = labelled(await d.metrics(), 'tpws_closes_total', 'code');
    const verdict: Record<string, Record<string, number | boolean>> = {};
    const after = samples.filter((s) => s.t_s >= p.warmup_s);
    for (const key of SERIES) {
      const fit = linearFit(after.map((s) => ({ t: s.t_s, y: s[key] })));
      const perTen = fit.slope * 600;
      verdict[key] = {
        slope_per_10min: round(perTen),
        intercept: round(fit.intercept),
        threshold_per_10min: THRESHOLDS_PER_10MIN[key],
        flat: perTen <= THRESHOLDS_PER_10MIN[key],
        warmup_mean: round(mean(samples.filter((s) => s.t_s < p.warmup_s).map((s) => s[key]))),
        after_warmup_min: Math.min(...after.map((s) => s[key])),
        after_warmup_max: Math.max(...after.map((s) => s[key])),
      };
    }
    return {
      name: 'soak',
      store: d.store,
      params: p,
      counts,
      daemon_closes: daemonCloses,
      samples_after_warmup: after.length,
      verdict,
      all_flat: SERIES.every((k) => verdict[k].flat === true),
      machine_load: machine.read(),
      samples,
    };
  } finally {
    stop.fire();
    await ingest?.close();
    await d.stop();
  }
}

const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

interface Args {
  minutes: number;
  quick: boolean;
  out: string | null;
  svg: string | null;
}

function parseArgs(argv: string[]): Args | string {
  const a: Args = { minutes: NaN, quick: false, out: null, svg: null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--quick') a.quick = true;
    else if (flag === '--minutes') {
      const v = Number(argv[++i]);
      if (!(v > 0 && v <= 24 * 60)) return '--minutes needs a number of minutes in (0, 1440]';
      a.minutes = v;
    } else if (flag === '--out' || flag === '--svg') {
      const f = argv[++i];
      if (f === undefined || f === '' || f.startsWith('--')) return `${flag} needs a file name`;
      if (flag === '--out') a.out = f;
      else a.svg = f;
    } else return `unknown option ${flag}`;
  }
  if (Number.isNaN(a.minutes)) a.minutes = a.quick ? 0.5 : 10;
  return a;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (typeof args === 'string') {
    process.stderr.write(`${args}\nusage: soak.js [--minutes N] [--quick] [--out FILE] [--svg FILE]\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`soak: ${args.minutes} min${args.quick ? ' (quick)' : ''}…\n`);
  const result = await soak(args.minutes, args.quick);
  const doc = {
    machine: { node: process.version, platform: platform(), arch: arch(), cpus: cpus().length, cpu: cpus()[0]?.model },
    date: new Date().toISOString(),
    quick: args.quick,
    ...result,
  };
  const text = JSON.stringify(doc, null, 2) + '\n';
  if (args.out !== null) writeFileSync(args.out, text);
  if (args.svg !== null) writeFileSync(args.svg, renderSoakSvg(chartInput(doc)));
  process.stdout.write(text);
  if (!args.quick && !doc.all_flat) {
    process.stderr.write(`soak: not flat: ${SERIES.filter((k) => doc.verdict[k].flat !== true).join(', ')}\n`);
    process.exitCode = 1;
  }
}

await main();
