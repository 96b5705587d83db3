/**
 * `tp-ws doctor` through the real CLI, on the embedded store: a healthy
 * install is all ok, and each broken one is found with its fix — a socket
 * the PHP user cannot write, a port taken by another process, an admin
 * listener on 0.0.0.0, TeamPass settings that disagree, a stuck backlog, a
 * dropped index, a bad configuration, a store that hangs, and an nginx that
 * drops the client's address or times out quiet sockets.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apacheTimeouts } from '../../src/doctor/proxy-config.js';
import { doctor, finding, freePort, IS_ROOT, notOk, PHP_USER, runCli as run, serve, SOCKET_ARGS, stop, type Doctor, type Served } from '../helpers/doctor-cli.js';
import { describeRequiring } from '../helpers/requires.js';
import { until } from '../helpers/until.js';


describe('tp-ws doctor (real CLI, embedded store)', () => {
  const root = mkdtempSync(join(tmpdir(), 'tpws-doctor-'));
  // PHP's user must be able to reach the socket: open the chain of directories to it.
  chmodSync(root, 0o755);
  const state = join(root, 'state');
  mkdirSync(state, { mode: 0o755 });
  const socket = join(state, 'ingest.sock');
  let daemon: Served;
  const flags = (): string[] => ['--state-dir', state, '--port', String(daemon.port), '--admin-port', String(daemon.adminPort), ...SOCKET_ARGS];

  beforeAll(async () => {
    daemon = await serve(['--state-dir', state, ...SOCKET_ARGS]);
  });
  afterAll(async () => {
    if (daemon) await stop(daemon.child);
    rmSync(root, { recursive: true, force: true });
  });

  it('finds nothing wrong with a running daemon, exits 0, and prints a report with a summary line', async () => {
    const d = await doctor(flags());
    expect(notOk(d)).toEqual([]);
    expect(d.code).toBe(0);
    expect(d.summary).toEqual({ ok: d.findings.length, warn: 0, error: 0 });
    for (const code of ['config.loaded', 'store.connect', 'store.schema', 'store.backlog', 'clock.same', 'socket.live', 'socket.php_access', 'ports.server', 'ports.admin']) finding(d, code);
    expect(finding(d, 'ports.server').message).toContain(String(daemon.port));
    expect(finding(d, 'socket.php_access').message).toContain(PHP_USER);

    const text = await run(['doctor', '--php-user', PHP_USER, ...flags()]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^store: /m);
    expect(text.stdout).toMatch(/^  \[ok\] .*\[ports\.server\]$/m);
    expect(text.stdout.trimEnd().split('\n').pop()).toMatch(/^0 errors, 0 warnings, \d+ ok: all good$/);
  });

  it('names the socket PHP cannot write (mode 0600) and the commands that open it', async () => {
    chmodSync(socket, 0o600);
    try {
      const d = await doctor(flags());
      expect(d.code).toBe(2);
      const access = finding(d, 'socket.php_access');
      expect(access.severity).toBe('error');
      expect(access.message).toContain(PHP_USER);
      expect(access.message).toContain(`${socket}`);
      expect(access.message).toMatch(/srw------- .*no write \(w\) permission/);
      expect(access.fix).toMatch(/TPWS_SOCKET_MODE=0660|TPWS_SOCKET_GROUP=/);
      expect(access.fix).toMatch(/chmod (g\+w|0660) /);
      const mode = finding(d, 'socket.mode');
      expect(mode.severity).toBe('warn');
      expect(mode.message).toContain('0600');
    } finally {
      chmodSync(socket, IS_ROOT ? 0o660 : 0o666);
    }
  });

  it('reports TeamPass\'s misc settings when WebSocket is off and websocket_port is not where tp-ws listens', async () => {
    const db = new Database(join(state, 'tp-ws.db'));
    const insert = db.prepare(`INSERT INTO teampass_misc (type, intitule, valeur) VALUES ('admin', ?, ?)`);
    insert.run('websocket_enabled', '0');
    insert.run('websocket_host', '127.0.0.1');
    insert.run('websocket_port', '9999');
    try {
      const d = await doctor(flags());
      const off = finding(d, 'teampass.websocket_disabled');
      expect(off.severity).toBe('error');
      expect(off.message).toContain('"0"');
      expect(off.fix).toContain(`UPDATE \`teampass_misc\` SET valeur = '1'`);
      const agree = finding(d, 'teampass.listen_agreement');
      expect(agree.severity).toBe('warn');
      expect(agree.message).toContain('"9999"');
      expect(agree.message).toContain(String(daemon.port));
      expect(agree.fix).toContain(`--port 9999`);
    } finally {
      db.prepare(`DELETE FROM teampass_misc WHERE intitule LIKE 'websocket_%'`).run();
      db.close();
    }
  });

  describe('a stopped install with a stuck backlog and a dropped index', () => {
    const dir = join(root, 'stopped');
    let d: Doctor;

    beforeAll(async () => {
      mkdirSync(dir, { mode: 0o755 });
      const m = await run(['migrate', '--state-dir', dir]);
      expect(m.code, m.stderr).toBe(0);
      const db = new Database(join(dir, 'tp-ws.db'));
      const add = db.prepare(`INSERT INTO teampass_websocket_events (event_type, target_type, target_id, payload, created_at) VALUES ('item_updated', 'user', 1, '{}', datetime('now', ?))`);
      add.run('-3600 seconds');
      add.run('-40 seconds');
      db.exec('DROP INDEX "teampass_websocket_events_idx_unprocessed"');
      db.close();
      d = await doctor(['--state-dir', dir, '--port', String(await freePort()), '--admin-port', String(await freePort())]);
    });

    it('reports the rows older than poller.maxAgeSec as lost to delivery, with how to get a poller running', () => {
      const b = finding(d, 'store.backlog_expired');
      expect(b.severity).toBe('error');
      expect(b.message).toMatch(/^1 of 2 pending row\(s\) of teampass_websocket_events are older than poller\.maxAgeSec \(300 s\), the oldest 60 min/);
      expect(b.fix).toContain('systemctl start teampass-websocket');
      expect(d.code).toBe(2);
    });

    it('gives the statement that recreates the missing idx_unprocessed', () => {
      const ix = finding(d, 'store.idx_unprocessed');
      expect(ix.severity).toBe('warn');
      expect(ix.fix).toBe(`sqlite3 ${join(dir, 'tp-ws.db')} 'CREATE INDEX "teampass_websocket_events_idx_unprocessed" ON "teampass_websocket_events" (processed, created_at)'`);
    });

    it('says tp-ws is not running', () => {
      expect(finding(d, 'ports.server_free').severity).toBe('warn');
      expect(finding(d, 'socket.absent').severity).toBe('warn');
    });
  });

  // Each of these runs doctor on its own setup (or only reads the healthy one): run them side by side.
  describe.concurrent('problems each found on its own setup', () => {
    it('names the directory PHP cannot pass, when the socket sits in a private state directory', async () => {
      const priv = mkdtempSync(join(root, 'private-')); // mode 0700, as mkdtemp makes it
      const d = await doctor(['--state-dir', priv, '--port', '0', '--admin-port', '-1']);
      const access = finding(d, 'socket.php_access');
      expect(access.severity).toBe('error');
      expect(access.message).toContain(`the directory ${priv} (drwx------`);
      expect(access.message).toContain('no search (x) permission');
      expect(access.fix).toContain(`chmod g+x ${priv}`);
      expect(access.fix).toContain('TPWS_SOCKET=/run/tp-ws/ingest.sock');
      expect(finding(d, 'socket.absent').severity).toBe('warn');
    });

    it('says which process holds server.port when it is not tp-ws, and warns about an admin listener on 0.0.0.0', async () => {
      const other: Server = createServer();
      await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
      const taken = (other.address() as AddressInfo).port;
      try {
        const d = await doctor(['--state-dir', state, '--port', String(taken), '--admin-host', '0.0.0.0', '--admin-port', String(await freePort()), ...SOCKET_ARGS]);
        expect(d.code).toBe(2);
        const t = finding(d, 'ports.server_taken');
        expect(t.severity).toBe('error');
        expect(t.message).toContain(`127.0.0.1:${taken}`);
        expect(t.message).toContain(`pid ${process.pid}`);
        expect(t.fix).toMatch(/TPWS_PORT/);
        const pub = finding(d, 'ports.admin_public');
        expect(pub.severity).toBe('warn');
        expect(pub.message).toContain('0.0.0.0');
        expect(pub.fix).toContain('TPWS_ADMIN_HOST=127.0.0.1');
      } finally {
        other.close();
      }
    });

    it('reports a configuration that does not load, and nothing else, with exit code 2', async () => {
      const d = await doctor(['--port', 'eighty']);
      expect(d.code).toBe(2);
      expect(d.findings).toHaveLength(1);
      const c = finding(d, 'config.invalid');
      expect(c.message).toContain('TPWS_ERR_CONFIG_INVALID: in server.port (from --port)');
      expect(c.fix).toContain('tp-ws check-config');
    });

    it('warns about a misspelt TPWS_* variable, with the name it probably meant', async () => {
      const d = await doctor(flags(), { TPWS_PROT: '8080' });
      const u = finding(d, 'config.unknown_env');
      expect(u.severity).toBe('warn');
      expect(u.message).toContain('TPWS_PROT (did you mean TPWS_PORT?)');
      expect(d.code).toBe(1);
    });

    it('says the SQLite file is missing and prints the migrate command for the same store', async () => {
      const empty = join(root, 'empty');
      const d = await doctor(['--state-dir', empty, '--port', '0', '--admin-port', '-1']);
      const f = finding(d, 'store.no_file');
      expect(f.severity).toBe('error');
      expect(f.fix).toContain(`tp-ws migrate --state-dir ${empty}`);
    });

    it('finishes, naming the store, when MySQL accepts connections but never answers', async () => {
      const sockets = new Set<Socket>();
      const silent = createServer((s) => sockets.add(s));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
      const port = (silent.address() as AddressInfo).port;
      try {
        const d = await doctor(['--store', `mysql://tp@127.0.0.1:${port}/teampass`, '--port', '0', '--admin-port', '-1', '--socket', ''], { TPWS_STORE_PASSWORD: 'never-shown-7' });
        const f = finding(d, 'store.timeout');
        expect(f.severity).toBe('error');
        expect(f.message).toContain(`127.0.0.1:${port}`);
        expect(d.stdout + d.stderr).not.toContain('never-shown-7');
      } finally {
        for (const s of sockets) s.destroy();
        silent.close();
      }
    });
  });

  it('reads an Apache configuration\'s timeout for the ProxyPass to tp-ws (timeout=, ProxyTimeout, Timeout)', () => {
    const conf = join(root, 'apache');
    mkdirSync(join(conf, 'sites-enabled'), { recursive: true });
    writeFileSync(join(conf, 'apache2.conf'), `ServerRoot ${conf}\nTimeout 300\nIncludeOptional sites-enabled/*.conf\n`);
    writeFileSync(join(conf, 'sites-enabled', 'teampass.conf'), [
      '<VirtualHost *:443>',
      '  ProxyTimeout 20',
      '  ProxyPass /ws ws://127.0.0.1:8080/ws',
      '  ProxyPass /ws2 ws://127.0.0.1:8080/ws timeout=3600',
      '</VirtualHost>',
      '<VirtualHost *:8443>',
      '  ProxyPass /ws http://127.0.0.1:8080/ws upgrade=websocket',
      '</VirtualHost>',
      '  ProxyPass /other http://127.0.0.1:9000/',
    ].join('\n'));
    const t = apacheTimeouts(join(conf, 'apache2.conf'), conf, 8080);
    expect(t.map((x) => [x.seconds, x.source.split(' at ')[0]])).toEqual([[20, 'ProxyTimeout 20'], [3600, 'timeout=3600'], [300, 'Timeout 300']]);
  });
});

const NGINX = spawnSync('nginx', ['-v']).error === undefined ? 'nginx' : spawnSync('/usr/sbin/nginx', ['-v']).error === undefined ? '/usr/sbin/nginx' : null;

describeRequiring('tp-ws doctor --proxy-url through a real nginx', { missing: NGINX === null ? 'nginx is not installed' : undefined, needs: 'nginx', hint: 'apt-get install nginx-light' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'tpws-doctor-nginx-'));
  chmodSync(root, 0o755);
  const state = join(root, 'state');
  mkdirSync(state, { mode: 0o755 });
  let daemon: Served;
  let nginx: ChildProcess;
  const ports = { dropping: 0, good: 0, realIpOnly: 0 };
  const flags = (): string[] => ['--state-dir', state, '--port', String(daemon.port), '--admin-port', String(daemon.adminPort), ...SOCKET_ARGS];

  beforeAll(async () => {
    daemon = await serve(['--state-dir', state, ...SOCKET_ARGS]);
    ports.dropping = await freePort();
    ports.good = await freePort();
    ports.realIpOnly = await freePort();
    const dir = join(root, 'nginx');
    mkdirSync(dir);
    const upgrade = 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade;';
    writeFileSync(join(dir, 'nginx.conf'), `
      worker_processes 1;
      pid ${dir}/nginx.pid;
      error_log ${dir}/error.log;
      events { worker_connections 64; }
      http {
        access_log off;
        client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
        uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
        map $http_upgrade $connection_upgrade { default upgrade; '' close; }
        # No X-Forwarded-For, and a read timeout under the 30 s ping interval.
        server {
          listen 127.0.0.1:${ports.dropping};
          location /ws { proxy_pass http://127.0.0.1:${daemon.port}; ${upgrade} proxy_read_timeout 20s; }
        }
        # deploy/nginx/tp-ws.conf's way, through an upstream.
        upstream tpws { server 127.0.0.1:${daemon.port}; }
        server {
          listen 127.0.0.1:${ports.good};
          proxy_read_timeout 1h;
          location /ws { proxy_pass http://tpws; ${upgrade} proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }
        }
        # TeamPass's own example: X-Real-IP only; the client's X-Forwarded-For passes on unchanged.
        server {
          listen 127.0.0.1:${ports.realIpOnly};
          location /ws { proxy_pass http://127.0.0.1:${daemon.port}; ${upgrade} proxy_set_header X-Real-IP $remote_addr; proxy_read_timeout 86400; }
        }
      }
    `);
    nginx = spawn(NGINX!, ['-c', join(dir, 'nginx.conf'), '-p', dir, '-g', 'daemon off;'], { stdio: 'ignore' });
    for (const port of Object.values(ports)) {
      await until(() => new Promise<boolean>((resolve) => {
        const probe = createServer();
        probe.once('error', () => resolve(true)); // taken: nginx listens
        probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
      }), `nginx listening on ${port}`);
    }
  });
  afterAll(async () => {
    if (nginx) await stop(nginx);
    if (daemon) await stop(daemon.child);
    rmSync(root, { recursive: true, force: true });
  });

  it.concurrent('finds an nginx that drops the client address and times out quiet sockets before the ping', async () => {
    const d = await doctor([...flags(), '--proxy-url', `http://127.0.0.1:${ports.dropping}/ws`]);
    expect(finding(d, 'proxy.upgrade').severity).toBe('ok');
    const drop = finding(d, 'proxy.drops_client_address');
    expect(drop.severity).toBe('warn');
    expect(drop.message).toContain('forwards no client address');
    expect(drop.fix).toContain('proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;');
    const t = finding(d, 'proxy.read_timeout');
    expect(t.severity).toBe('warn');
    expect(t.message).toContain('proxy_read_timeout 20s');
    expect(t.message).toContain('heartbeat.pingIntervalSec (30 s)');
    expect(t.fix).toContain('proxy_read_timeout 1h;');
    expect(d.code).toBe(1);
  });

  it.concurrent('passes an nginx set up as deploy/nginx/tp-ws.conf', async () => {
    const d = await doctor([...flags(), '--proxy-url', `ws://127.0.0.1:${ports.good}/ws`]);
    expect(notOk(d)).toEqual([]);
    expect(finding(d, 'proxy.forwarded').message).toContain('X-Forwarded-For');
    expect(finding(d, 'proxy.read_timeout').message).toContain('is 3600 s');
    expect(d.code).toBe(0);
  });

  it.concurrent('behind an nginx that sets X-Real-IP only, the daemon takes X-Real-IP and ignores the X-Forwarded-For a client sends', async () => {
    const d = await doctor([...flags(), '--proxy-url', `http://127.0.0.1:${ports.realIpOnly}/ws`]);
    expect(d.findings.filter((f) => f.code === 'proxy.spoofable')).toEqual([]);
    const f = finding(d, 'proxy.forwarded');
    expect(f.severity).toBe('ok');
    expect(f.message).toContain('X-Real-IP');
  });

  it.concurrent('says nothing listens at a proxy URL that no web server serves', async () => {
    const closed = await freePort();
    const d = await doctor([...flags(), '--proxy-url', `http://127.0.0.1:${closed}/ws`]);
    const u = finding(d, 'proxy.unreachable');
    expect(u.severity).toBe('error');
    expect(u.message).toContain('ECONNREFUSED');
  });
});
