/**
 * Store credentials and schema safety on a real MariaDB, through the real
 * CLI: a password with URL-special characters given apart from the URL,
 * errors that name where the daemon tried to connect (never the password),
 * and `migrate` refusing to build a second schema beside TeamPass's tables.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, describeMysql, MYSQL_URL } from '../helpers/mysql.js';

const BIN = fileURLToPath(new URL('../../bin/tp-ws.js', import.meta.url));
/** Every character a URL would need escaped, taken as is by store.password. */
const PASSWORD = 'p@ss/w:rd#%?&=x y';

function tpWs(args: string[], env: NodeJS.ProcessEnv = {}) {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPWS_')) clean[k] = v;
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describeMysql('store credentials and schema safety (MariaDB, real CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tpws-cred-'));
  const user = `tpws_pw_${randomBytes(4).toString('hex')}`;
  let db: { url: string; drop(): Promise<void> };
  let admin: mysql.Connection;
  let host: string;
  let port: string;
  let database: string;
  const url = () => `mysql://${user}@${host}:${port}/${database}`;
  const state = () => ['--state-dir', dir];

  beforeAll(async () => {
    db = await createTestDatabase();
    const u = new URL(db.url);
    host = u.hostname;
    port = u.port;
    database = u.pathname.slice(1);
    admin = await mysql.createConnection({ uri: MYSQL_URL });
    await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '127.0.0.1', PASSWORD]);
    await admin.query(`GRANT ALL PRIVILEGES ON \`${database}\`.* TO ?@?`, [user, '127.0.0.1']);
  });
  afterAll(async () => {
    await admin?.query('DROP USER IF EXISTS ?@?', [user, '127.0.0.1']);
    await admin?.end();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects with store.password holding @ / : # % ? & = and a space, as is', () => {
    const r = tpWs(['migrate', '--store', url(), ...state()], { TPWS_STORE_PASSWORD: PASSWORD });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${url()}: applied 001_full_schema.sql, 002_teampass_additions.sql, 003_history.sql (full)\n`);
  });

  it('reads the password from store.passwordFile (--store-password-file)', () => {
    const file = join(dir, 'db-password');
    writeFileSync(file, `${PASSWORD}\n`, { mode: 0o600 });
    const r = tpWs(['migrate', '--store', url(), '--store-password-file', file, ...state()]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${url()}: schema up to date (full)\n`);
  });

  it('names user, host, port and database when MySQL refuses, never the password', () => {
    const r = tpWs(['migrate', '--store', url(), ...state()], { TPWS_STORE_PASSWORD: 'not-the-password-42' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`TPWS_ERR_STORE_UNAVAILABLE: mysql store ${user}@${host}:${port}/${database}: migrate failed (ER_ACCESS_DENIED_ERROR: wrong user or password, or this user may not connect from here)\n`);
    expect(r.stderr).not.toContain('not-the-password-42');
  });

  it('says nothing listens when the port is closed', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const closed = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = tpWs(['migrate', '--store', `mysql://${user}@127.0.0.1:${closed}/${database}`, ...state()], { TPWS_STORE_PASSWORD: PASSWORD });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`TPWS_ERR_STORE_UNAVAILABLE: mysql store ${user}@127.0.0.1:${closed}/${database}: migrate failed (ECONNREFUSED: nothing listens at that host and port)\n`);
  });

  it('refuses to create tables under another prefix beside TeamPass tables, unless --force', async () => {
    const env = { TPWS_STORE_PASSWORD: PASSWORD };
    const refused = tpWs(['migrate', '--store', url(), '--table-prefix', 'other_', ...state()], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('TPWS_ERR_MIGRATION: refusing to create tables with prefix "other_": this database holds TeamPass tables with prefix "teampass_" (teampass_users, teampass_misc) and none with "other_". Give --table-prefix teampass_');
    const [tables] = await admin.query(`SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE 'other\\_%'`, [database]);
    expect(Number((tables as { n: number }[])[0].n)).toBe(0);
    // serve applies migrations at start: it refuses the same way.
    const serve = tpWs(['serve', '--store', url(), '--table-prefix', 'other_', '--port', '0', '--admin-port', '-1', '--socket', '', ...state()], env);
    expect(serve.code).toBe(2);
    expect(serve.stderr).toContain('TPWS_ERR_MIGRATION: refusing to create tables with prefix "other_"');

    const forced = tpWs(['migrate', '--store', url(), '--table-prefix', 'other_', '--force', ...state()], env);
    expect(forced.stderr).toBe('');
    expect(forced.stdout).toContain('applied 001_full_schema.sql');
  });
});
