/**
 * The PHP emitter under real PHP-FPM: a php-fpm master with ONE static worker
 * (`pm = static`, `pm.max_children = 1`, so every request hits the same
 * process) serves test/php/fpm_emit.php; requests go over FastCGI with
 * `cgi-fcgi`. Proves that the emitter's persistent ingest connection survives
 * from one FPM request to the next (the daemon accepts one connection for
 * many requests), and that after a daemon restart the worker's dead persistent
 * stream is replaced and the event still goes over the socket, not the table.
 *
 * The daemon's poller is off: an event that fell back to the table would stay
 * `processed = 0` and never reach the client, so "delivered and processed = 1"
 * can only mean the socket path (the journal marks socket events delivered).
 *
 * Needs php-fpm (with pdo_sqlite and msgpack) and cgi-fcgi (Debian: php-fpm libfcgi-bin):
 * missing in CI fails the suite, elsewhere it is skipped loudly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { PROCESSED } from '../../src/store/store.js';
import { openSeeder } from '../helpers/seed.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { until } from '../helpers/until.js';
import { TestClient } from '../helpers/ws-client.js';
import { describeRequiring } from '../helpers/requires.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = join(ROOT, 'test/php/fpm_emit.php');
const SEARCH_PATH = [...(process.env.PATH ?? '/usr/bin:/bin').split(':'), '/usr/sbin', '/usr/local/sbin'];
const USER_ID = 7;

/** The php-fpm binary: `php-fpm` or the highest `php-fpmX.Y` on PATH or in the sbin dirs. */
function findFpm(): string | undefined {
  const found: string[] = [];
  for (const dir of SEARCH_PATH) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) if (/^php-fpm(\d+\.\d+)?$/.test(n)) found.push(join(dir, n));
  }
  const version = (p: string) => (/(\d+)\.(\d+)$/.exec(p) ?? [, '999', '0']).slice(1).map(Number);
  found.sort((a, b) => {
    const [am, an] = version(a);
    const [bm, bn] = version(b);
    return bm - am || bn - an;
  });
  return found[0];
}

const FPM = findFpm();
const fpmModules = FPM ? spawnSync(FPM, ['-m'], { encoding: 'utf8' }) : undefined;
const CGI_FCGI = spawnSync('sh', ['-c', 'command -v cgi-fcgi'], { encoding: 'utf8', env: { PATH: SEARCH_PATH.join(':') } }).stdout.trim() || undefined;
const WHY_NOT: string | undefined = !FPM
  ? 'php-fpm is not installed'
  : fpmModules?.status !== 0 || !/^pdo_sqlite$/m.test(fpmModules.stdout) || !/^msgpack$/m.test(fpmModules.stdout)
    ? `${FPM} -m does not list both pdo_sqlite and msgpack`
    : !CGI_FCGI
      ? 'cgi-fcgi is not installed'
      : undefined;

/** php-fpm (with pdo_sqlite and msgpack) and cgi-fcgi: required in CI, skipped loudly elsewhere. */
function describeFpm(name: string, fn: () => void): void {
  describeRequiring(name, { missing: WHY_NOT, needs: 'php-fpm (with pdo_sqlite and msgpack) and cgi-fcgi', hint: 'apt-get install php-fpm php-sqlite3 php-msgpack libfcgi-bin' }, fn);
}

type Json = Record<string, any>;
const PHP_DIAGNOSTIC = /PHP (Warning|Notice|Deprecated|Fatal error|Parse error)/;

describeFpm('PHP emitter under PHP-FPM', () => {
  let dir: string;
  let socket: string;
  let storeUrl: string;
  let fpmSock: string;
  let fpmLog: string;
  let fpm: ChildProcess | undefined;
  let fpmExit: Promise<void>;
  let d: TestDaemon | undefined;
  let client: TestClient | undefined;
  /** The worker that served the first request: every later one must be the same process. */
  let workerPid: number | undefined;
  let n = 0;

  const daemonSettings = () => ({ 'ingest.socket': socket, 'store.url': storeUrl, 'poller.enabled': false });
  const login = async (td: TestDaemon) =>
    (await TestClient.login(td.url(await mintJwt(td.daemon.jwtKey!, td.daemon.config.auth.jwt, { userId: USER_ID, ttlSec: 600 })))).client;
  const fpmLogText = () => (existsSync(fpmLog) ? readFileSync(fpmLog, 'utf8') : '');

  /** One FastCGI GET of fpm_emit.php?n=…; returns the JSON body. */
  function request(query: string, timeoutMs = 10_000): Promise<Json> {
    return new Promise((resolve, reject) => {
      const child = spawn(CGI_FCGI!, ['-bind', '-connect', fpmSock], {
        // cgi-fcgi sends its environment as the FastCGI params.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SCRIPT_FILENAME: SCRIPT, SCRIPT_NAME: '/fpm_emit.php', REQUEST_METHOD: 'GET', QUERY_STRING: query, SERVER_PROTOCOL: 'HTTP/1.1', GATEWAY_INTERFACE: 'CGI/1.1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(killer);
        const sep = stdout.indexOf('\r\n\r\n');
        const body = sep >= 0 ? stdout.slice(sep + 4) : stdout;
        try {
          resolve(JSON.parse(body.trim()) as Json);
        } catch {
          reject(new Error(`cgi-fcgi ${query} exited ${code} without a JSON body:\n${stdout}\n${stderr}\nphp-fpm log:\n${fpmLogText()}`));
        }
      });
    });
  }

  /** A request whose event must go over the socket, from the one FPM worker, and reach the client once. */
  async function emitOverSocket(query = ''): Promise<Json> {
    const i = ++n;
    const r = await request(`n=${i}${query}`);
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true, n: i, paths: [] });
    workerPid ??= r.pid;
    expect(r.pid).toBe(workerPid);
    expect((await client!.nextEvent()) as Json).toMatchObject({ type: 'event', event: 'fpm_request', id: r.id, data: { n: i, pid: workerPid } });
    return r;
  }

  /** `processed` of each id's row: 1 (delivered) once the daemon's journal wrote it; the poller is off. */
  async function expectJournaled(ids: string[]): Promise<void> {
    const sql = await openSeeder(storeUrl, 'teampass_');
    try {
      const processed = async () =>
        (await sql.execSql<{ processed: number }>(`SELECT processed FROM teampass_websocket_events WHERE event_uuid IN (${ids.map(() => '?').join(', ')})`, ids)).map((r) => Number(r.processed));
      await until(async () => {
        const p = await processed();
        return p.length === ids.length && p.every((x) => x === PROCESSED.DELIVERED);
      }, `journal rows of ${ids.join(', ')} processed`, 10_000);
    } finally {
      await sql.close();
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tpws-fpm-'));
    socket = join(dir, 'ingest.sock');
    storeUrl = `sqlite:${join(dir, 'events.db')}`;
    fpmSock = join(dir, 'fpm.sock');
    fpmLog = join(dir, 'php-fpm.log');
    d = await startDaemon(daemonSettings());
    client = await login(d);

    const conf = join(dir, 'php-fpm.conf');
    writeFileSync(
      conf,
      [
        '[global]',
        `pid = ${join(dir, 'php-fpm.pid')}`,
        `error_log = ${fpmLog}`,
        'daemonize = no',
        'log_level = notice',
        '',
        '[tpws]',
        `listen = ${fpmSock}`,
        'pm = static',
        'pm.max_children = 1',
        'pm.max_requests = 0',
        'clear_env = yes',
        'catch_workers_output = yes',
        'decorate_workers_output = no',
        `env[TPWS_SOCKET] = ${socket}`,
        `env[TPWS_DSN] = ${storeUrl}`,
        `env[TPWS_USER_ID] = ${USER_ID}`,
        'php_admin_value[error_reporting] = -1',
        'php_admin_flag[display_errors] = off',
        'php_admin_flag[log_errors] = on',
        `php_admin_value[error_log] = ${fpmLog}`,
        '',
      ].join('\n'),
    );
    // The system php.ini (not -n): it loads pdo_sqlite and msgpack. -R: the tests may run as root.
    fpm = spawn(FPM!, ['-F', '-R', '-y', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let fpmOut = '';
    fpm.stdout!.setEncoding('utf8').on('data', (s: string) => (fpmOut += s));
    fpm.stderr!.setEncoding('utf8').on('data', (s: string) => (fpmOut += s));
    fpmExit = new Promise((resolve) => fpm!.once('exit', () => resolve()));
    await until(() => existsSync(fpmSock) || fpm!.exitCode !== null, 'php-fpm listening', 10_000);
    if (fpm.exitCode !== null) throw new Error(`php-fpm exited ${fpm.exitCode}:\n${fpmOut}\n${fpmLogText()}`);
  });

  afterAll(async () => {
    client?.ws.terminate();
    if (fpm?.pid !== undefined && fpm.exitCode === null && fpm.signalCode === null) {
      fpm.kill('SIGTERM'); // the master stops its worker
      const stopped = await Promise.race([fpmExit.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!stopped) {
        fpm.kill('SIGKILL');
        if (workerPid !== undefined) {
          try {
            process.kill(workerPid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        await fpmExit;
      }
    }
    await d?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('three requests to the same FPM worker share ONE persistent ingest connection', async () => {
    const before = d!.daemon.ingest!.counters.connections;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await emitOverSocket()).id);
    expect(workerPid).not.toBe(fpm!.pid); // served by the worker, not the master
    expect(d!.daemon.ingest!.counters.connections - before).toBe(1);
    expect(d!.daemon.ingest!.counters.eventsAccepted).toBe(3);
    await expectJournaled(ids);
  });

  it('after a daemon restart on the same socket, the worker reconnects: socket path, not the table', async () => {
    client!.ws.terminate();
    await d!.stop();
    d = await startDaemon(daemonSettings());
    client = await login(d);

    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await emitOverSocket()).id);
    // One new connection for both requests: the dead stream was replaced once, then reused.
    expect(d.daemon.ingest!.counters.connections).toBe(1);
    expect(d.daemon.ingest!.counters.eventsAccepted).toBe(2);
    await expectJournaled(ids);
  });

  it('each encoding keeps its own persistent connection in the worker', async () => {
    const before = d!.daemon.ingest!.counters.connections;
    const first = await emitOverSocket('&encoding=ndjson');
    expect(first.encoding).toBe('ndjson');
    const second = await emitOverSocket('&encoding=msgpack');
    expect(second.encoding).toBe('msgpack');
    const opened = d!.daemon.ingest!.counters.connections - before;
    for (const encoding of ['ndjson', 'msgpack', 'ndjson', 'msgpack']) expect((await emitOverSocket(`&encoding=${encoding}`)).encoding).toBe(encoding);
    // Alternating encodings opened no further connection: both streams stay alive side by side.
    expect(d!.daemon.ingest!.counters.connections - before).toBe(opened);
    expect(d!.daemon.ingest!.counters.connections).toBe(2);
  });

  it('the FPM worker logged no PHP warning or notice', () => {
    expect(fpmLogText()).not.toMatch(PHP_DIAGNOSTIC);
  });
});
