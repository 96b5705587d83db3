/**
 * The reverse-proxy files shipped in deploy/, run for real: nginx, Apache,
 * Caddy and HAProxy each start in the foreground on a free loopback port in
 * front of a real tp-ws daemon, with the file from deploy/ as shipped except
 * two substitutions made on its directive lines: the upstream
 * `127.0.0.1:8080` becomes the daemon's port, and the address the proxy
 * listens on becomes the free port. Around it only what a server needs to
 * run at all is written:
 * - nginx: an http{} block with the `map $http_upgrade $connection_upgrade`
 *   that the file's own comment gives (taken from the comment, so the map
 *   operators copy is the one tested) and a server{} including the file;
 * - Apache: a minimal httpd.conf loading mpm_event and the modules the file's
 *   comment says to enable (`a2enmod …`), then `Include` of the file;
 * - Caddy: a global options block (no admin endpoint, bind to loopback); the
 *   site address teampass.example.com becomes http://127.0.0.1:PORT;
 * - HAProxy: nothing (`bind :80` becomes the free port).
 *
 * Through each proxy: a JWT authenticates, a published event arrives, the
 * daemon logs the client's address (a client bound to 127.0.0.2, which is not
 * a trusted proxy, must be seen as 127.0.0.2, even when it sends a forged
 * X-Forwarded-For; a trusted hop's X-Forwarded-For must be kept and appended
 * to, except by Caddy, which replaces it by design), and a socket stays open
 * across the daemon's pings (1 s apart here).
 *
 * The idle timeouts themselves (above tp-ws's 30 s ping interval) are read
 * from the files and checked against the schema's default, without waiting
 * for them.
 *
 * A missing proxy binary fails the suite in CI and skips it loudly elsewhere.
 */
import { mkdtempSync, readFileSync, rmSync, chmodSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { mintJwt } from '../../src/auth/jwt.js';
import { SCHEMA } from '../../src/config/schema.js';
import { findBinary, freeLoopbackPort, startProxy, substitute, type ProxyProcess } from '../helpers/proxies.js';
import { describeRequiring } from '../helpers/requires.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { until } from '../helpers/until.js';
import { TestClient, type Message } from '../helpers/ws-client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
const UPSTREAM = '127.0.0.1:8080';
/** An address of the documentation range (RFC 5737), sent by clients as their forged or forwarded origin. */
const FORWARDED = '203.0.113.7';
/** A loopback address that is not in server.trustedProxies (127.0.0.1, ::1): a client the proxy must name. */
const UNTRUSTED_CLIENT = '127.0.0.2';
const APACHE_MODULES = '/usr/lib/apache2/modules';
const PING_DEFAULT_SEC = Number(SCHEMA.find((s) => s.key === 'heartbeat.pingIntervalSec')!.default);

const work = mkdtempSync(join(tmpdir(), 'tpws-proxies-'));
// nginx and Apache workers run as nobody when the test runs as root: they must reach their files.
chmodSync(work, 0o755);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The `map … { … }` block of the nginx file's comment, uncommented. */
function nginxMapFromComment(text: string): string {
  const lines = text.split('\n').filter((l) => l.startsWith('#')).map((l) => l.replace(/^#\s?/, ''));
  const start = lines.findIndex((l) => /^\s*map \$http_upgrade \$connection_upgrade \{/.test(l));
  if (start < 0) throw new Error('deploy/nginx/tp-ws.conf: no `map $http_upgrade $connection_upgrade {` in its comment');
  const end = lines.findIndex((l, i) => i > start && /^\s*\}\s*$/.test(l));
  return lines.slice(start, end + 1).join('\n');
}

/** Modules named by the `a2enmod …` line of the Apache file's comment. */
function apacheModulesFromComment(text: string): string[] {
  const m = /a2enmod ([a-z_ ]+)`/.exec(text);
  if (!m) throw new Error('deploy/apache/tp-ws.conf: no `a2enmod …` in its comment');
  return m[1].trim().split(/\s+/);
}

interface ProxySpec {
  name: string;
  /** The shipped file, relative to the repository. */
  file: string;
  binary: string | undefined;
  hint: string;
  /** Whether the X-Forwarded-For of a trusted hop is kept and appended to (Caddy replaces it unless told the hop is trusted). */
  keepsTrustedXff: boolean;
  start(upstreamPort: number): Promise<ProxyProcess>;
}

const NGINX = findBinary('nginx');
const APACHE = findBinary('apache2');
const CADDY = findBinary('caddy');
const HAPROXY = findBinary('haproxy');

const SPECS: ProxySpec[] = [
  {
    name: 'nginx',
    file: 'deploy/nginx/tp-ws.conf',
    binary: NGINX,
    hint: 'apt-get install nginx (Debian)',
    keepsTrustedXff: true,
    async start(upstreamPort) {
      const dir = mkdtempSync(join(work, 'nginx-'));
      chmodSync(dir, 0o755);
      const port = await freeLoopbackPort();
      const text = read(this.file);
      writeFileSync(join(dir, 'tp-ws.conf'), substitute(text, UPSTREAM, `127.0.0.1:${upstreamPort}`, { count: 1, commentPrefix: '#', what: this.file }));
      writeFileSync(join(dir, 'nginx.conf'), [
        'worker_processes 1;',
        `pid ${dir}/nginx.pid;`,
        'error_log stderr warn;',
        'events { worker_connections 256; }',
        'http {',
        `  access_log ${dir}/access.log;`,
        nginxMapFromComment(text),
        '  server {',
        `    listen 127.0.0.1:${port};`,
        `    include ${dir}/tp-ws.conf;`,
        '  }',
        '}',
        '',
      ].join('\n'));
      return startProxy({ command: NGINX!, args: ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;'], port });
    },
  },
  {
    name: 'Apache',
    file: 'deploy/apache/tp-ws.conf',
    binary: APACHE,
    hint: 'apt-get install apache2 (Debian)',
    keepsTrustedXff: true,
    async start(upstreamPort) {
      const dir = mkdtempSync(join(work, 'apache-'));
      chmodSync(dir, 0o755);
      const port = await freeLoopbackPort();
      const text = read(this.file);
      writeFileSync(join(dir, 'tp-ws.conf'), substitute(text, UPSTREAM, `127.0.0.1:${upstreamPort}`, { count: 1, commentPrefix: '#', what: this.file }));
      const root = process.getuid?.() === 0;
      writeFileSync(join(dir, 'httpd.conf'), [
        `ServerRoot ${dir}`,
        'ServerName 127.0.0.1',
        `Listen 127.0.0.1:${port}`,
        `PidFile ${dir}/httpd.pid`,
        `DefaultRuntimeDir ${dir}`,
        // A file: /dev/stderr cannot be opened when stderr is a socket, as under a test runner.
        `ErrorLog ${dir}/error.log`,
        'LogLevel warn',
        // What every Debian apache2 loads (a2enmod'ed at install): an MPM, and authz_core, without which
        // each request fails with "couldn't check user".
        `LoadModule mpm_event_module ${APACHE_MODULES}/mod_mpm_event.so`,
        `LoadModule authz_core_module ${APACHE_MODULES}/mod_authz_core.so`,
        ...apacheModulesFromComment(text).map((m) => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`),
        // As root, Apache serves requests as this user (Debian's www-data may not exist on a test machine).
        ...(root ? ['User nobody', 'Group nogroup'] : []),
        `Include ${dir}/tp-ws.conf`,
        '',
      ].join('\n'));
      // -X: one process in the foreground, stopped by its PID.
      return startProxy({ command: APACHE!, args: ['-X', '-d', dir, '-f', join(dir, 'httpd.conf')], port, logFiles: [join(dir, 'error.log')] });
    },
  },
  {
    name: 'Caddy',
    file: 'deploy/caddy/Caddyfile',
    binary: CADDY,
    hint: 'apt-get install caddy (Debian)',
    keepsTrustedXff: false,
    async start(upstreamPort) {
      const dir = mkdtempSync(join(work, 'caddy-'));
      const port = await freeLoopbackPort();
      let text = read(this.file);
      text = substitute(text, UPSTREAM, `127.0.0.1:${upstreamPort}`, { count: 1, commentPrefix: '#', what: this.file });
      text = substitute(text, /^teampass\.example\.com \{$/m, `http://127.0.0.1:${port} {`, { count: 1, commentPrefix: '#', what: this.file });
      // No admin endpoint (its fixed port 2019 may be taken), and the site bound to loopback only.
      const config = join(dir, 'Caddyfile');
      writeFileSync(config, `{\n\tadmin off\n\tdefault_bind 127.0.0.1\n}\n\n${text}`);
      return startProxy({
        command: CADDY!,
        args: ['run', '--config', config, '--adapter', 'caddyfile'],
        port,
        cwd: dir,
        // Caddy's data and autosaved config go to the temp directory, not the user's home.
        env: { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') },
      });
    },
  },
  {
    name: 'HAProxy',
    file: 'deploy/haproxy/haproxy.cfg',
    binary: HAPROXY,
    hint: 'apt-get install haproxy (Debian)',
    keepsTrustedXff: true,
    async start(upstreamPort) {
      const dir = mkdtempSync(join(work, 'haproxy-'));
      const port = await freeLoopbackPort();
      let text = read(this.file);
      text = substitute(text, UPSTREAM, `127.0.0.1:${upstreamPort}`, { count: 1, commentPrefix: '#', what: this.file });
      text = substitute(text, /^(\s*bind) :80$/m, `$1 127.0.0.1:${port}`, { count: 1, commentPrefix: '#', what: this.file });
      const config = join(dir, 'haproxy.cfg');
      writeFileSync(config, text);
      // -db: stay in the foreground even if the file said `daemon`.
      return startProxy({ command: HAPROXY!, args: ['-db', '-f', config], port });
    },
  },
];

for (const spec of SPECS) {
  describeRequiring(
    `${spec.file} in front of tp-ws (real ${spec.name})`,
    { missing: spec.binary ? undefined : `${spec.name} is not installed`, needs: spec.name, hint: spec.hint },
    () => {
      let d: TestDaemon;
      let proxy: ProxyProcess | undefined;
      const clients: TestClient[] = [];
      let nextUser = 100;

      beforeAll(async () => {
        d = await startDaemon({ 'heartbeat.pingIntervalSec': 1 });
        proxy = await spec.start(d.daemon.address.ws.port);
      });

      afterAll(async () => {
        for (const c of clients) c.ws.terminate();
        await proxy?.stop();
        await d?.stop();
      });

      /** A client through the proxy at /ws?token=…, for a new user id (so its log lines are its own). */
      async function open(o: { token?: string; headers?: Record<string, string>; localAddress?: string } = {}): Promise<{ client: TestClient; userId: number }> {
        const userId = ++nextUser;
        const token = o.token ?? (await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId, ttlSec: 3600 }));
        const client = new TestClient(`ws://127.0.0.1:${proxy!.port}/ws?token=${encodeURIComponent(token)}`, { headers: o.headers, localAddress: o.localAddress });
        // A refused upgrade shows up as the missing first message, with the proxy's output (below).
        client.opened.catch(() => {});
        clients.push(client);
        return { client, userId };
      }

      /** The daemon's `connection established` line for this user. */
      async function established(userId: number): Promise<Record<string, unknown>> {
        let line: Record<string, unknown> | undefined;
        await until(() => (line = d.logs.find((l) => l.msg === 'connection established' && l.user_id === userId)) !== undefined, `connection established for user ${userId}`, 5000);
        return line!;
      }

      /** The first message, which must be `connected`; failures carry the proxy's output. */
      async function connected(client: TestClient): Promise<Message> {
        const m = await Promise.race([client.next(), client.opened.then(() => new Promise<never>(() => {}))]).catch((err: Error) => {
          throw new Error(`${err.message}\n--- ${spec.name} output:\n${proxy!.output()}`);
        });
        expect(m, proxy!.output()).toMatchObject({ type: 'connected' });
        return m;
      }

      it('authenticates a JWT through the proxy and delivers a published event', async () => {
        const { client, userId } = await open();
        expect((await connected(client)).user_id).toBe(userId);
        d.daemon.publish({ event_type: 'hello', target_type: 'user', target_id: userId, payload: { via: spec.name } });
        expect(await client.nextEvent()).toMatchObject({ type: 'event', event: 'hello', data: { via: spec.name } });
        await client.close();
      });

      it('serves the browser client the daemon serves, at /ws/tp-ws-client.js (docs/client.md)', async () => {
        for (const file of ['tp-ws-client.js', 'tp-ws-client.mjs']) {
          const r = await fetch(`http://127.0.0.1:${proxy!.port}/ws/${file}`);
          expect(r.status, `${file}\n--- ${spec.name} output:\n${proxy!.output()}`).toBe(200);
          expect(r.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
          expect(await r.text()).toContain('TeamPassWebSocket');
        }
      });

      it(`names the client (${UNTRUSTED_CLIENT}) to the daemon, for connections and for failed authentications`, async () => {
        const { client, userId } = await open({ localAddress: UNTRUSTED_CLIENT });
        await connected(client);
        expect(await established(userId)).toMatchObject({ ip: UNTRUSTED_CLIENT });
        await client.close();

        const before = d.logs.length;
        const bad = await open({ token: 'not-a-token', localAddress: UNTRUSTED_CLIENT });
        expect(await bad.client.next()).toMatchObject({ type: 'error', error_code: 'auth_failed' });
        await until(() => d.logs.slice(before).some((l) => l.msg === 'authentication failed'), 'authentication failed', 5000);
        expect(d.logs.slice(before).find((l) => l.msg === 'authentication failed')).toMatchObject({ ip: UNTRUSTED_CLIENT });
        await bad.client.closed;
      });

      it('does not let a client choose its address with a forged X-Forwarded-For', async () => {
        const { client, userId } = await open({ localAddress: UNTRUSTED_CLIENT, headers: { 'X-Forwarded-For': FORWARDED } });
        await connected(client);
        expect(await established(userId)).toMatchObject({ ip: UNTRUSTED_CLIENT });
        await client.close();
      });

      if (spec.keepsTrustedXff) {
        it(`appends to the X-Forwarded-For of a trusted hop (127.0.0.1), so the daemon sees ${FORWARDED}`, async () => {
          const { client, userId } = await open({ headers: { 'X-Forwarded-For': FORWARDED } });
          await connected(client);
          expect(await established(userId)).toMatchObject({ ip: FORWARDED });
          await client.close();
        });
      } else {
        it('replaces the X-Forwarded-For of a hop it was not told to trust (Caddy\'s default)', async () => {
          const { client, userId } = await open({ headers: { 'X-Forwarded-For': FORWARDED } });
          await connected(client);
          expect(await established(userId)).toMatchObject({ ip: '127.0.0.1' });
          await client.close();
        });
      }

      it('keeps an idle socket open across the daemon\'s pings, both ways', async () => {
        const { client, userId } = await open();
        await connected(client);
        // The pings (1 s apart) are the clock: wait through at least 3 s of them.
        const start = Date.now();
        let pings = 0;
        while (Date.now() - start < 3000) {
          await client.next((m) => m.type === 'ping', 3000);
          pings++;
        }
        expect(pings).toBeGreaterThanOrEqual(2);
        expect(client.ws.readyState).toBe(WebSocket.OPEN);
        // Still carries traffic both ways after the idle stretch.
        const pong = await client.request({ action: 'ping' });
        expect(pong, JSON.stringify(pong)).toMatchObject({ request_id: expect.any(String) });
        d.daemon.publish({ event_type: 'after_idle', target_type: 'user', target_id: userId, payload: {} });
        expect(await client.nextEvent()).toMatchObject({ event: 'after_idle' });
        await client.close();
      });
    },
  );
}

/** Seconds of an nginx/HAProxy duration (`90`, `90s`, `1h`, `30m`, `1d`, `500ms`). */
function seconds(v: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(v);
  if (!m) throw new Error(`not a duration: ${v}`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[m[2] ?? 's']!;
  return Number(m[1]) * unit;
}

/** Values of `directive` on lines that are not comments. */
function directives(text: string, directive: RegExp, comment = '#'): string[] {
  return text.split('\n').filter((l) => !l.trimStart().startsWith(comment)).flatMap((l) => {
    const m = directive.exec(l);
    return m ? [m[1]] : [];
  });
}

describe('deploy/ proxy files: idle timeouts above the ping interval, client address forwarded', () => {
  it(`nginx: proxy_read_timeout and proxy_send_timeout above ${PING_DEFAULT_SEC} s, no buffering, X-Forwarded-For appended`, () => {
    const text = read('deploy/nginx/tp-ws.conf');
    for (const d of ['proxy_read_timeout', 'proxy_send_timeout']) {
      const v = directives(text, new RegExp(`^\\s*${d}\\s+(\\S+);`));
      expect(v, d).toHaveLength(1);
      expect(seconds(v[0]), d).toBeGreaterThan(PING_DEFAULT_SEC);
    }
    expect(directives(text, /^\s*proxy_buffering\s+(\S+);/)).toEqual(['off']);
    expect(directives(text, /^\s*proxy_http_version\s+(\S+);/)).toEqual(['1.1']);
    expect(directives(text, /^\s*proxy_set_header\s+(.+);/)).toEqual(expect.arrayContaining([
      'Upgrade $http_upgrade', 'Connection $connection_upgrade', 'Host $host',
      'X-Forwarded-For $proxy_add_x_forwarded_for', 'X-Forwarded-Proto $scheme',
    ]));
  });

  it(`Apache: the /ws worker's timeout above ${PING_DEFAULT_SEC} s, upgrade=websocket, ProxyAddHeaders On`, () => {
    const text = read('deploy/apache/tp-ws.conf');
    const pass = directives(text, /^\s*ProxyPass\s+(.+)$/);
    expect(pass).toHaveLength(1);
    expect(pass[0]).toMatch(/\bupgrade=websocket\b/);
    const timeout = /\btimeout=(\d+)\b/.exec(pass[0]);
    expect(timeout, pass[0]).not.toBeNull();
    expect(Number(timeout![1])).toBeGreaterThan(PING_DEFAULT_SEC);
    expect(directives(text, /^\s*ProxyAddHeaders\s+(\S+)/)).toEqual(['On']);
  });

  it(`HAProxy: timeout tunnel above ${PING_DEFAULT_SEC} s, option forwardfor`, () => {
    const text = read('deploy/haproxy/haproxy.cfg');
    const tunnel = directives(text, /^\s*timeout tunnel\s+(\S+)/);
    expect(tunnel).toHaveLength(1);
    expect(seconds(tunnel[0])).toBeGreaterThan(PING_DEFAULT_SEC);
    expect(directives(text, /^\s*option\s+(forwardfor)\b/)).toEqual(['forwardfor']);
  });

  it('Caddy: /ws* proxied without buffering', () => {
    const text = read('deploy/caddy/Caddyfile');
    expect(directives(text, /^\s*reverse_proxy\s+(.+?)\s*\{?$/)).toEqual(['/ws* 127.0.0.1:8080']);
    expect(directives(text, /^\s*flush_interval\s+(\S+)/)).toEqual(['-1']);
  });
});
