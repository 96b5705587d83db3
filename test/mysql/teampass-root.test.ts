/**
 * `--teampass-root` on a real MariaDB, through the real CLI: a copy of the
 * sample TeamPass tree pointed at a fresh database, whose MariaDB user's
 * password is the one Defuse-encrypted in its settings.php. migrate and
 * serve connect with what they read there (a TeamPass token then logs in),
 * and print-config shows where each value came from without ever printing
 * the password.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import mysql from 'mysql2/promise';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { FIX, seedFixture } from '../helpers/fixture.js';
import { createTestDatabase, describeMysql, MYSQL_URL } from '../helpers/mysql.js';
import { TestClient } from '../helpers/ws-client.js';

const BIN = fileURLToPath(new URL('../../bin/tp-ws.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/teampass', import.meta.url));
/** DB_PASSWD of the sample settings.php, decrypted. */
const PASSWORD = 's3cr3t-DB-pass';

/** The host environment without TPWS_* variables, HOME in `home`. */
function cleanEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPWS_') && !/^(STATE_DIRECTORY|RUNTIME_DIRECTORY|XDG_STATE_HOME)$/.test(k)) env[k] = v;
  return { ...env, HOME: home };
}

describeMysql('--teampass-root on MariaDB (real CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tpws-tproot-'));
  const root = join(dir, 'teampass');
  const state = join(dir, 'state');
  const user = `tpws_tp_${randomBytes(4).toString('hex')}`;
  let db: { url: string; drop(): Promise<void> };
  let admin: mysql.Connection;
  let host: string;
  let port: string;
  let database: string;
  const children: ChildProcess[] = [];

  const tpWs = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { env: cleanEnv(dir), encoding: 'utf8' });
    expect(r.stdout).not.toContain(PASSWORD);
    expect(r.stderr).not.toContain(PASSWORD);
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    const u = new URL(db.url);
    host = u.hostname;
    port = u.port || '3306';
    database = u.pathname.slice(1);

    // The copy's settings.php points at the test server and database, as the
    // TeamPass installer would have written them; DB_PASSWD stays encrypted.
    cpSync(FIXTURE, root, { recursive: true });
    const settingsFile = join(root, 'app/config/settings.php');
    const settings = readFileSync(settingsFile, 'utf8')
      .replace(/define\("DB_HOST", .*\);/, `define("DB_HOST", "${host}");`)
      .replace(/define\("DB_PORT", .*\);/, `define("DB_PORT", "${port}");`)
      .replace(/define\("DB_NAME", .*\);/, `define("DB_NAME", "${database}");`)
      .replace(/define\("DB_USER", .*\);/, `define("DB_USER", "${user}");`);
    expect(settings).toContain(`"${database}"`);
    writeFileSync(settingsFile, settings);

    admin = await mysql.createConnection({ uri: MYSQL_URL });
    await admin.query('CREATE USER ?@? IDENTIFIED BY ?', [user, host, PASSWORD]);
    await admin.query(`GRANT ALL PRIVILEGES ON \`${database}\`.* TO ?@?`, [user, host]);
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await admin?.query('DROP USER IF EXISTS ?@?', [user, host]);
    await admin?.end();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrate connects with the decrypted password and creates the tables under DB_PREFIX', async () => {
    const r = tpWs(['migrate', '--teampass-root', root, '--state-dir', state]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`mysql://${user}@${host}:${port}/${database}: applied 001_full_schema.sql, 002_teampass_additions.sql, 003_history.sql (full)\n`);
    const [rows] = await admin.query('SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, 'teampass_websocket_events']);
    expect(Number((rows as { n: number }[])[0].n)).toBe(1);
  });

  it('serve starts on the store read from TeamPass and lets a TeamPass token log in; SIGTERM stops it', async () => {
    await seedFixture(db.url, 'teampass_');
    const child = spawn(process.execPath, [BIN, 'serve', '--teampass-root', root, '--port', '0', '--admin-port', '-1', '--socket', join(dir, 'ingest.sock'), '--state-dir', state], {
      env: cleanEnv(dir),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (b) => (stderr += b));
    const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => {
        stdout += `${l}\n`;
        const line = JSON.parse(l) as Record<string, unknown>;
        if (line.msg === 'tp-ws started') resolve(line);
      });
      child.once('exit', (code) => reject(new Error(`tp-ws serve exited ${code}: ${stderr}`)));
    });
    expect(started).toMatchObject({ store: 'mysql', host: '127.0.0.1' });
    expect(started.port).not.toBe(8080); // --port 0 won over websocket.php's 8080

    const { client, connected } = await TestClient.login(`ws://127.0.0.1:${started.port as number}/ws?token=${FIX.tokens.alice}`);
    expect(connected).toMatchObject({ type: 'connected', user_id: FIX.users.alice, user_login: 'alice' });

    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    process.kill(child.pid!, 'SIGTERM');
    expect((await client.closed).code).toBe(4200);
    expect(await exit).toBe(0);
    expect(stdout).not.toContain(PASSWORD);
    expect(stderr).not.toContain(PASSWORD);
    expect(stderr).toContain(`store:  mysql://${user}@${host}:${port}/${database}`);
  });

  it('print-config --origins shows each value\'s origin and never the password', () => {
    for (const extra of [[], ['--show-secrets']]) {
      const r = tpWs(['print-config', '--teampass-root', root, '--origins', ...extra]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      const settingsFile = join(root, 'app/config/settings.php');
      expect(r.stdout).toMatch(new RegExp(`^store\\.url = "mysql://${user}@${host.replace(/\./g, '\\.')}:${port}/${database}" +\\(from TeamPass install ${settingsFile} \\(DB_HOST line 3, DB_PORT line 8, DB_USER line 4, DB_NAME line 6\\)\\)$`, 'm'));
      expect(r.stdout).toMatch(new RegExp(`^store\\.password = \\(decrypted from TeamPass, never printed\\) +\\(from TeamPass install ${settingsFile} \\(DB_PASSWD line 5, decrypted with ${join(root, 'secrets/teampass-key-7f3a9c.txt')}\\)\\)$`, 'm'));
      expect(r.stdout).toMatch(/^server\.port = 8080 +\(from TeamPass install .*websocket\.php \('port' line 6\)\)$/m);
      expect(r.stdout).toMatch(/^teampass\.root = .* +\(from --teampass-root\)$/m);
    }
  });

  it('refuses to start when the key file does not decrypt DB_PASSWD, naming both files and never the password', () => {
    const other = join(dir, 'teampass-other-key');
    cpSync(root, other, { recursive: true });
    const vectors = JSON.parse(readFileSync(join(FIXTURE, 'defuse-vectors.json'), 'utf8')) as { key_ascii_safe: string }[];
    const mine = readFileSync(join(FIXTURE, 'secrets/teampass-key-7f3a9c.txt'), 'utf8').trim();
    writeFileSync(join(other, 'secrets/teampass-key-7f3a9c.txt'), vectors.map((v) => v.key_ascii_safe).find((k) => k !== mine) as string);
    const r = tpWs(['serve', '--teampass-root', other, '--port', '0', '--admin-port', '-1', '--socket', '', '--state-dir', state]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`TPWS_ERR_TEAMPASS_CONFIG: in teampass.root (from --teampass-root): DB_PASSWD in ${join(other, 'app/config/settings.php')} (line 5) does not decrypt with the key file ${join(other, 'secrets/teampass-key-7f3a9c.txt')}: wrong key or modified ciphertext`);
  });
});
