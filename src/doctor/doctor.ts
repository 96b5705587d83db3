/**
 * `tp-ws doctor`: every check, each under its own deadline, so the run ends
 * in seconds even when the store or a proxy hangs. The store's checks share
 * one short-lived read-only connection; the socket, ports and proxy checks
 * run beside them.
 */
import type { Config } from '../config/schema.js';
import { checkClock } from './checks-clock.js';
import { checkConfig, sameStoreArgs } from './checks-config.js';
import { checkPorts } from './checks-ports.js';
import { checkProxy } from './checks-proxy.js';
import { checkSocket } from './checks-socket.js';
import { checkBacklog, checkSchema, openStore, type StoreCheckContext } from './checks-store.js';
import { checkTeampassMisc, checkTeampassPrefix } from './checks-teampass.js';
import { withDeadline } from './deadline.js';
import { CHECKS, error, type CheckName, type Finding } from './finding.js';

export interface DoctorOptions {
  /** `command.opts()`: config flags (`--config`, `--teampass-root`, `--port`, …); other keys are ignored. */
  opts: Record<string, unknown>;
  /** Environment read for `TPWS_*` and the computed defaults. */
  env: NodeJS.ProcessEnv;
  /** `--php-user`: whose access to the ingest socket to check; null for www-data when it exists. */
  phpUser: string | null;
  /** `--proxy-url`: check the reverse proxy at this URL; null to skip the proxy check. */
  proxyUrl: string | null;
  /** `--proxy-insecure`: do not verify the proxy's TLS certificate. */
  proxyInsecure: boolean;
}

/** The inspection queries, together, after the connection is open. */
const STORE_QUERIES_DEADLINE_MS = 3000;
const SOCKET_DEADLINE_MS = 2500;
const PORTS_DEADLINE_MS = 5000;
const PROXY_DEADLINE_MS = 7000;

/** A check's own failure (a driver error, a bug) as a finding, so one check cannot sink the report. */
async function guarded(check: CheckName, what: string, fn: () => Promise<Finding[]>): Promise<Finding[]> {
  try {
    return await fn();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const detail = typeof code === 'string' ? `${code}: ${(err as { sqlMessage?: string }).sqlMessage ?? (err as Error).message}` : String((err as Error)?.message ?? err);
    return [error(check, 'failed', `${what} failed: ${detail}`, null)];
  }
}

function late(check: CheckName, what: string, ms: number, fix: string | null): Finding[] {
  return [error(check, 'deadline', `${what} did not finish within ${ms / 1000} s`, fix)];
}

async function storeChecks(cfg: Readonly<Config>, ctx: StoreCheckContext): Promise<Finding[]> {
  const opening = await openStore(ctx);
  const probe = opening.probe;
  if (probe === null) return opening.findings;
  const out: Finding[] = [...opening.findings];
  const work = (async () => {
    out.push(...(await guarded('store', 'reading the schema', () => checkSchema(probe, ctx))));
    out.push(...(await guarded('store', 'counting pending events', () => checkBacklog(probe, ctx))));
    out.push(...(await guarded('teampass', 'reading TeamPass\'s misc settings', () => checkTeampassMisc(probe, cfg))));
    out.push(...(await guarded('clock', 'reading the database\'s clock', () => checkClock(probe))));
    return true;
  })();
  try {
    const finished = await withDeadline(work, STORE_QUERIES_DEADLINE_MS, () => false);
    if (!finished) {
      out.push(...late('store', `the store accepted the connection, but its inspection queries (${probe.where})`, STORE_QUERIES_DEADLINE_MS,
        probe.kind === 'mysql' ? 'look for what holds it: SHOW FULL PROCESSLIST; (a long ALTER TABLE or a lock on the events table?)' : 'another process holds the SQLite file locked: fuser on the file names it'));
    }
  } finally {
    probe.close();
    work.catch(() => undefined);
  }
  return out;
}

/**
 * Runs every check and returns the findings in report order (config,
 * store, teampass, clock, socket, ports, proxy). When the configuration
 * does not load, only that is reported.
 */
export async function runDoctor(o: DoctorOptions): Promise<Finding[]> {
  const config = checkConfig(o.opts, o.env);
  if (config.loaded === null) return config.findings;
  const loaded = config.loaded;
  const cfg = loaded.config;
  const ctx: StoreCheckContext = { cfg, storeArgs: sameStoreArgs(loaded) };

  const groups = await Promise.all([
    // openStore has its own 3 s connect deadline; the queries have theirs.
    storeChecks(cfg, ctx).catch((err: unknown) => guarded('store', 'the store check', () => Promise.reject(err))),
    Promise.resolve(checkTeampassPrefix(loaded)),
    withDeadline(guarded('socket', 'the ingest socket check', () => checkSocket(cfg, { phpUser: o.phpUser, env: o.env })), SOCKET_DEADLINE_MS,
      () => late('socket', 'the ingest socket check', SOCKET_DEADLINE_MS, null)),
    withDeadline(guarded('ports', 'the port check', () => checkPorts(cfg)), PORTS_DEADLINE_MS, () => late('ports', 'the port check', PORTS_DEADLINE_MS, null)),
    o.proxyUrl === null
      ? Promise.resolve([])
      : withDeadline(guarded('proxy', 'the proxy check', () => checkProxy(cfg, { url: o.proxyUrl as string, insecure: o.proxyInsecure })), PROXY_DEADLINE_MS,
        () => late('proxy', 'the proxy check', PROXY_DEADLINE_MS, null)),
  ]);
  const all = [...config.findings, ...groups.flat()];
  // Stable sort by check, so each check's findings keep their own order.
  return all.map((f, i) => ({ f, i })).sort((a, b) => CHECKS.indexOf(a.f.check) - CHECKS.indexOf(b.f.check) || a.i - b.i).map((x) => x.f);
}
