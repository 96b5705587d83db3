/**
 * Local network helpers for the doctor: a GET with a hard deadline (the
 * admin listener's `/healthz` and `/upgrades`), whether a port is free, who
 * listens on it (`lsof`, then `/proc/PID/cmdline`), and the address a local
 * client uses for a listener.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';

/** The answer of a GET: status and parsed JSON body (null when it is not JSON). */
export interface HttpAnswer {
  status: number;
  json: unknown;
}

/**
 * `GET http://host:port/path`, resolving with null on any failure or after
 * `timeoutMs` (the request is destroyed then).
 */
export function getJson(host: string, port: number, path: string, timeoutMs: number): Promise<HttpAnswer | null> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs, agent: false, headers: { accept: 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 1_000_000) body += chunk;
      });
      res.on('end', () => {
        clearTimeout(timer);
        let json: unknown = null;
        try {
          json = JSON.parse(body);
        } catch {
          // not JSON: the caller sees null
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
      res.on('error', () => resolve(null));
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve(null);
    }, timeoutMs);
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    req.end();
  });
}

/** `free`, `in_use`, or the errno code that kept a listener from binding there (`EADDRNOTAVAIL`, `EACCES`…). */
export function bindProbe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? 'in_use' : (err.code ?? 'error')));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve('free')));
  });
}

/** A process listening on a port: its pid and command line (null when /proc does not show it). */
export interface Listener {
  pid: number;
  argv: string[] | null;
}

/**
 * Who listens on TCP `port`, as TeamPass's admin page finds its daemon:
 * `lsof -ti tcp:PORT -sTCP:LISTEN`. Null when lsof is not installed or did
 * not answer within `timeoutMs`.
 */
export function listenersOf(port: number, timeoutMs: number): Promise<Listener[] | null> {
  return new Promise((resolve) => {
    execFile('lsof', ['-nP', '-ti', `tcp:${port}`, '-sTCP:LISTEN'], { timeout: timeoutMs }, (err, stdout) => {
      const e = err as (NodeJS.ErrnoException & { killed?: boolean }) | null;
      // lsof exits 1 when it found nothing: an empty answer, not a failure.
      if (e !== null && (e.code === 'ENOENT' || e.killed === true || typeof e.code !== 'number')) {
        resolve(null);
        return;
      }
      const pids = [...new Set(stdout.split('\n').map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0))];
      resolve(pids.map((pid) => ({ pid, argv: cmdline(pid) })));
    });
  });
}

function cmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const argv = raw.split('\0');
    if (argv[argv.length - 1] === '') argv.pop();
    return argv.length > 0 ? argv : null;
  } catch {
    return null;
  }
}

/** A command line, shortened for a message. */
export function commandText(argv: readonly string[] | null): string {
  if (argv === null) return 'command not visible';
  const text = argv.join(' ');
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

/** `tp-ws serve` (bin/tp-ws.js, an installed tp-ws, or dist/cli/tp-ws.js) in a command line. */
export function isTpWsServe(argv: readonly string[] | null): boolean {
  if (argv === null) return false;
  return argv.some((a, i) => /(^|\/)tp-ws(\.js)?$/.test(a) && argv[i + 1] === 'serve');
}

/** Whether a listener address is loopback only (`127.0.0.0/8`, `::1`, `localhost`). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/** An address a local client can connect to for a listener bound to `host` (a wildcard is reached on loopback). */
export function connectHost(host: string): string {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  if (h === '0.0.0.0' || h === '') return '127.0.0.1';
  if (h === '::') return '::1';
  return h;
}
