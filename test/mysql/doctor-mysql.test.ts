/**
 * `tp-ws doctor` on a real MariaDB, through the real CLI: a healthy install
 * with a running daemon and TeamPass settings that agree is all ok; a wrong
 * password, an unknown database, a schema without tp-ws's migration or
 * TeamPass's index, a stuck backlog, WebSocket switched off in TeamPass and
 * a table prefix that is not TeamPass's are each found, with a fix that
 * works as printed. The password is never printed.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctor as runDoctor, finding, runCli as run, serve, SOCKET_ARGS, stop, type Doctor, type Served } from '../helpers/doctor-cli.js';
import { createTestDatabase, describeMysql, MYSQL_URL } from '../helpers/mysql.js';


describeMysql('tp-ws doctor on MariaDB (real CLI)', () => {
  const root = mkdtempSync(join(tmpdir(), 'tpws-doctor-my-'));
  chmodSync(root, 0o755);
  const state = join(root, 'state');
  const server = new URL(MYSQL_URL ?? 'mysql://x@127.0.0.1/');
  const user = decodeURIComponent(server.username);
  const password = decodeURIComponent(server.password);
  const hostPort = `${server.hostname}:${server.port || '3306'}`;
  /** The store URL of `db` without its password (given through TPWS_STORE_PASSWORD). */
  const storeUrl = (db: string): string => `mysql://${encodeURIComponent(user)}@${hostPort}/${db}`;
  const withPassword = { TPWS_STORE_PASSWORD: password };
  let healthy: { url: string; drop(): Promise<void> };
  let broken: { url: string; drop(): Promise<void> };
  const dbName = (d: { url: string }): string => new URL(d.url).pathname.slice(1);
  let admin: mysql.Connection;
  let daemon: Served;
  let port = 0;
  let adminPort = 0;

  /** `tp-ws doctor --json ARGS` (the password in the environment by default), never printing the password. */
  async function doctor(args: string[], env: NodeJS.ProcessEnv = withPassword): Promise<Doctor> {
    const d = await runDoctor(args, env);
    expect(d.stdout + d.stderr).not.toContain(password);
    return d;
  }

  beforeAll(async () => {
    [healthy, broken] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    for (const db of [healthy, broken]) {
      const m = await run(['migrate', '--store', storeUrl(dbName(db)), '--state-dir', state], withPassword);
      expect(m.code, m.stderr).toBe(0);
    }
    admin = await mysql.createConnection({ uri: MYSQL_URL });
    mkdirSync(state, { recursive: true, mode: 0o755 });
    chmodSync(state, 0o755);
    daemon = await serve(['--store', storeUrl(dbName(healthy)), '--state-dir', state, ...SOCKET_ARGS], withPassword);
    ({ port, adminPort } = daemon);
    await admin.query(`INSERT INTO \`${dbName(healthy)}\`.teampass_misc (type, intitule, valeur) VALUES ('admin', 'websocket_enabled', '1'), ('admin', 'websocket_host', '127.0.0.1'), ('admin', 'websocket_port', ?)`, [String(port)]);
  });

  afterAll(async () => {
    if (daemon) await stop(daemon.child);
    await admin?.end();
    await Promise.all([healthy?.drop(), broken?.drop()]);
    rmSync(root, { recursive: true, force: true });
  });

  it('finds nothing wrong with a migrated database, a running daemon and TeamPass settings that agree', async () => {
    const d = await doctor(['--store', storeUrl(dbName(healthy)), '--state-dir', state, '--port', String(port), '--admin-port', String(adminPort), ...SOCKET_ARGS]);
    expect(d.findings.filter((f) => f.severity !== 'ok')).toEqual([]);
    expect(d.code).toBe(0);
    expect(finding(d, 'store.connect').message).toBe(`MySQL ${user}@${hostPort}/${dbName(healthy)} answers`);
    expect(finding(d, 'clock.skew').severity).toBe('ok');
    expect(finding(d, 'teampass.websocket_enabled').severity).toBe('ok');
    expect(finding(d, 'teampass.listen_agreement').message).toContain(`127.0.0.1:${port}`);
  });

  describe.concurrent('connection failures, explained', () => {
    it('a wrong password: names the account MySQL refused and how to grant it, never the password', async () => {
      const d = await doctor(['--store', storeUrl(dbName(healthy)), '--port', '0', '--admin-port', '-1', '--socket', ''], { TPWS_STORE_PASSWORD: 'wrong-pass-8d1' });
      expect(d.stdout).not.toContain('wrong-pass-8d1');
      const f = finding(d, 'store.access_denied');
      expect(f.severity).toBe('error');
      expect(f.message).toMatch(new RegExp(`MySQL refused '${user}'@'[^']+'`));
      expect(f.fix).toContain('TPWS_STORE_PASSWORD');
      expect(f.fix).toMatch(new RegExp(`GRANT .* ON \`${dbName(healthy)}\`\\.\\* TO '${user}'@`));
      expect(d.code).toBe(2);
    });

    it('no password at all: says none was given and where to give it', async () => {
      const d = await doctor(['--store', storeUrl(dbName(healthy)), '--port', '0', '--admin-port', '-1', '--socket', ''], {});
      const f = finding(d, 'store.access_denied');
      expect(f.message).toContain('(no password given)');
      expect(f.fix).toContain('--store-password-file');
    });

    it('an unknown database: says so and how to create it', async () => {
      const d = await doctor(['--store', storeUrl('tpws_test_absent'), '--port', '0', '--admin-port', '-1', '--socket', '']);
      const f = finding(d, 'store.unknown_database');
      expect(f.message).toContain('tpws_test_absent');
      expect(f.fix).toContain('CREATE DATABASE `tpws_test_absent`');
    });
  });

  describe('a database without tp-ws\'s migration and TeamPass\'s index, a stuck backlog, WebSocket off in TeamPass', () => {
    let d: Doctor;
    const args = (): string[] => ['--store', storeUrl(dbName(broken)), '--port', String(port), '--admin-port', '-1', '--socket', ''];

    beforeAll(async () => {
      const t = `\`${dbName(broken)}\`.teampass_websocket_events`;
      await admin.query(`ALTER TABLE ${t} DROP INDEX idx_event_uuid, DROP COLUMN event_uuid, DROP INDEX idx_tpws_pos, DROP COLUMN tpws_pos, DROP INDEX idx_unprocessed`);
      await admin.query(`INSERT INTO ${t} (event_type, target_type, target_id, payload, created_at) VALUES ('item_updated', 'user', 1, '{}', NOW() - INTERVAL 2 HOUR), ('item_updated', 'user', 1, '{}', NOW())`);
      await admin.query(`INSERT INTO \`${dbName(broken)}\`.teampass_misc (type, intitule, valeur) VALUES ('admin', 'websocket_enabled', '0'), ('admin', 'websocket_host', '127.0.0.1'), ('admin', 'websocket_port', '9999')`);
      d = await doctor(args());
    });

    it('a missing event_uuid column (and tpws_pos): tp-ws migrate, printed for the same store, fixes it', async () => {
      const f = finding(d, 'store.event_uuid');
      expect(f.severity).toBe('error');
      expect(finding(d, 'store.tpws_pos')).toMatchObject({ severity: 'warn', fix: f.fix });
      expect(f.fix).toBe(`tp-ws migrate --store ${storeUrl(dbName(broken))}`);
      const m = await run((f.fix as string).split(' ').slice(1), withPassword);
      expect(m.code, m.stderr).toBe(0);
      const again = await doctor(args());
      expect(again.findings.map((x) => x.code)).not.toContain('store.event_uuid');
      expect(again.findings.map((x) => x.code)).not.toContain('store.event_uuid_index');
      expect(again.findings.map((x) => x.code)).not.toContain('store.tpws_pos');
    });

    it('a missing idx_unprocessed: the ALTER TABLE it prints adds it', async () => {
      const f = finding(d, 'store.idx_unprocessed');
      expect(f.severity).toBe('warn');
      expect(f.message).toContain('TeamPass\'s health check');
      expect(f.fix).toBe('ALTER TABLE `teampass_websocket_events` ADD INDEX `idx_unprocessed` (`processed`, `created_at`);');
      await admin.query(`USE \`${dbName(broken)}\``);
      await admin.query(f.fix as string);
      const again = await doctor(args());
      expect(again.findings.map((x) => x.code)).not.toContain('store.idx_unprocessed');
    });

    it('pending rows older than poller.maxAgeSec: lost to delivery unless a poller runs', () => {
      const f = finding(d, 'store.backlog_expired');
      expect(f.severity).toBe('error');
      expect(f.message).toMatch(/^1 of 2 pending row\(s\) .* older than poller\.maxAgeSec \(300 s\), the oldest 2 h 0 min/);
    });

    it('WebSocket off in TeamPass\'s misc, and websocket_port elsewhere than tp-ws listens', () => {
      expect(finding(d, 'teampass.websocket_disabled').severity).toBe('error');
      const a = finding(d, 'teampass.listen_agreement');
      expect(a.severity).toBe('warn');
      expect(a.message).toContain('"9999"');
    });
  });

  it('--teampass-root with a --table-prefix that is not TeamPass\'s DB_PREFIX: both the prefix and the missing tables point at it', async () => {
    const tp = join(root, 'teampass');
    mkdirSync(join(tp, 'app/config'), { recursive: true });
    writeFileSync(join(tp, 'app/config/settings.php'), `<?php
define("DB_HOST", "${server.hostname}");
define("DB_PORT", "${server.port || '3306'}");
define("DB_USER", "${user}");
define("DB_PASSWD", "${password}");
define("DB_NAME", "${dbName(healthy)}");
define("DB_PREFIX", "teampass_");
define("DB_SSL", false);
`);
    const d = await doctor(['--teampass-root', tp, '--table-prefix', 'other_', '--port', '0', '--admin-port', '-1', '--socket', ''], {});
    const p = finding(d, 'teampass.prefix');
    expect(p.severity).toBe('error');
    expect(p.message).toContain('"other_" (from --table-prefix)');
    expect(p.message).toContain('DB_PREFIX is "teampass_"');
    expect(p.fix).toContain('--table-prefix teampass_');
    const e = finding(d, 'store.events_table');
    expect(e.message).toContain('teampass_websocket_events');
    expect(e.fix).toContain('--table-prefix teampass_');
    expect(finding(d, 'config.teampass_read').message).toContain('store.url');
    expect(finding(d, 'config.teampass_ignored').message).toContain('DB_SSL');
  });
});
