import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** PATH plus the sbin directories, where Debian puts nginx, apache2 and haproxy. */
const SEARCH_PATH = [...(process.env.PATH ?? '/usr/bin:/bin').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];

/** Absolute path of an executable on PATH or in an sbin directory, or undefined. */
export function findBinary(name: string): string | undefined {
  return SEARCH_PATH.map((d) => join(d, name)).find((p) => existsSync(p));
}

/**
 * A loopback port that was free a moment ago: bound on port 0 and released.
 * For servers that cannot listen on port 0 and report the port (nginx,
 * Apache, Caddy, HAProxy); the short race with another process is the price.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Replace `from` by `to` in the lines of `text` that are not comments
 * (`commentPrefix` after optional blanks), asserting it occurs on exactly
 * `count` of them: a shipped file whose line was renamed must fail the test,
 * not go untested. Comment lines stay as shipped.
 */
export function substitute(text: string, from: string | RegExp, to: string, o: { count: number; commentPrefix: string; what: string }): string {
  const re = typeof from === 'string' ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g') : new RegExp(from.source, from.flags.includes('g') ? from.flags : `${from.flags}g`);
  let found = 0;
  const lines = text.split('\n').map((line) => {
    if (line.trimStart().startsWith(o.commentPrefix)) return line;
    const n = line.match(re)?.length ?? 0;
    found += n;
    return n === 0 ? line : line.replace(re, to);
  });
  if (found !== o.count) throw new Error(`${o.what}: expected ${o.count} occurrence(s) of ${String(from)} outside comments, found ${found}`);
  return lines.join('\n');
}

/** A proxy server running in the foreground as a child of the test. */
export interface ProxyProcess {
  readonly pid: number;
  /** Loopback port the proxy listens on. */
  readonly port: number;
  /** stdout and stderr so far, for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * True when an HTTP request for `path` on 127.0.0.1:`port` gets a response of
 * any status, false when it fails: a bound port is not enough, as Apache
 * binds before it opens its logs and may still exit.
 */
function answers(port: number, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve(false));
    req.end();
  });
}

/**
 * Start `command args` in the foreground and wait until it answers HTTP on
 * `port` (these servers print nothing when they are ready), asking for
 * `readinessPath` (default `/ws`: proxied to tp-ws, which answers a request
 * that is not an upgrade with 426 at once, where the proxy's other routes may
 * lead nowhere in a test). Rejects with the process's output if it exits
 * first or does not answer within `timeoutMs` (default 10 s), after killing
 * it. `logFiles` (a server's own error log) are appended to `output()`.
 */
export async function startProxy(o: { command: string; args: string[]; port: number; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; logFiles?: string[]; readinessPath?: string }): Promise<ProxyProcess> {
  const child: ChildProcess = spawn(o.command, o.args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { out += b.toString(); });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let gone = false;
  void exited.then(() => { gone = true; });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });

  let stopping: Promise<void> | undefined;
  const proc: ProxyProcess = {
    pid: child.pid ?? -1,
    port: o.port,
    output: () => [out, ...(o.logFiles ?? []).map((f) => (existsSync(f) ? `--- ${f}:\n${readFileSync(f, 'utf8')}` : ''))].join('\n'),
    stop: (graceMs = 5000) => {
      stopping ??= (async () => {
        // Never started (spawn error): there is no process, and no exit event will come.
        if (gone || child.pid === undefined) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };

  const label = `${o.command} ${o.args.join(' ')}`;
  try {
    await spawned;
    const end = Date.now() + (o.timeoutMs ?? 10_000);
    // An answer on the port is the only readiness signal these servers give in the foreground.
    while (!(await answers(o.port, o.readinessPath ?? '/ws'))) {
      if (gone) throw new Error(`${label} exited before answering on 127.0.0.1:${o.port} (code ${child.exitCode}, signal ${child.signalCode}):\n${proc.output()}`);
      if (Date.now() > end) throw new Error(`${label} did not answer on 127.0.0.1:${o.port} within ${o.timeoutMs ?? 10_000} ms:\n${proc.output()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  } catch (err) {
    await proc.stop(1000);
    throw err;
  }
  return proc;
}
