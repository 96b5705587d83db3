/**
 * `check-config` and `print-config` with `--teampass-root`, through the real
 * CLI: origins per key, output that loads back, and the password decrypted
 * from TeamPass never printed, not even with --show-secrets.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SCHEMA } from '../../src/config/schema.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'tp-ws.js');
const FIXTURE = join(ROOT, 'test/fixtures/teampass');
const SETTINGS = join(FIXTURE, 'app/config/settings.php');
const WEBSOCKET = join(FIXTURE, 'app/websocket/config/websocket.php');
const PASSWORD = 's3cr3t-DB-pass';

const tmp = mkdtempSync(join(tmpdir(), 'tp-ws-config-tp-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tpWs(args: string[], env: NodeJS.ProcessEnv = {}) {
  const clean: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(TPWS_|STATE_DIRECTORY$|RUNTIME_DIRECTORY$|XDG_STATE_HOME$)/.test(name)) clean[name] = value;
  }
  const res = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...clean, HOME: tmp, ...env }, encoding: 'utf8' });
  // Whatever the command and its outcome, the decrypted password is never written.
  expect(res.stdout).not.toContain(PASSWORD);
  expect(res.stderr).not.toContain(PASSWORD);
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'tp-ws.js'))) {
    throw new Error('dist/cli/tp-ws.js is missing: run `npm run build` (npm test does it first)');
  }
});

describe('tp-ws print-config --origins', () => {
  it('prints one line per key with where its value came from', () => {
    const res = tpWs(['print-config', '--origins', '--teampass-root', FIXTURE, '--admin-port', '9999'], { TPWS_LOG_LEVEL: 'debug' });
    expect(res.status).toBe(0);
    expect(res.stderr).toBe('');
    const lines = res.stdout.trimEnd().split('\n');
    const line = (key: string) => lines.find((l) => l.startsWith(`${key} = `));
    for (const spec of SCHEMA) expect(line(spec.key), spec.key).toBeDefined();
    expect(line('server.port')).toMatch(new RegExp(`^server\\.port = 8080 +\\(from TeamPass install ${WEBSOCKET} \\('port' line 6\\)\\)$`));
    expect(line('store.url')).toMatch(/^store\.url = "mysql:\/\/teampass@127\.0\.0\.1:3306\/teampass" +\(from TeamPass install .*settings\.php \(DB_HOST line 3, DB_PORT line 8, DB_USER line 4, DB_NAME line 6\)\)$/);
    expect(line('store.password')).toMatch(new RegExp(`^store\\.password = \\(decrypted from TeamPass, never printed\\) +\\(from TeamPass install ${SETTINGS} \\(DB_PASSWD line 5, decrypted with `));
    expect(line('admin.port')).toMatch(/^admin\.port = 9999 +\(from --admin-port\)$/);
    expect(line('log.level')).toMatch(/^log\.level = "debug" +\(from TPWS_LOG_LEVEL\)$/);
    expect(line('teampass.root')).toMatch(/\(from --teampass-root\)$/);
    expect(line('poller.intervalMs')).toMatch(/^poller\.intervalMs = 100 +\(from default\)$/);
  });

  it('lists the TeamPass settings it does not take, with the reason', () => {
    const res = tpWs(['print-config', '--origins', '--teampass-root', FIXTURE]);
    const comments = res.stdout.split('\n').filter((l) => l.startsWith('#'));
    expect(comments[0]).toBe('# not taken from the TeamPass install:');
    expect(comments).toContain(`#   ${WEBSOCKET} line 7: poll_interval_ms: tp-ws's own poller is faster (poller.intervalMs, poller.idleIntervalMs), and PHP can push events through the ingest socket instead`);
    expect(comments).toContain(`#   ${WEBSOCKET} line 15: log_file: tp-ws writes JSON log lines to stdout, for journald, and no log file`);
  });

  it('never prints the decrypted password, even with --show-secrets, and names withheld secrets', () => {
    const res = tpWs(['print-config', '--origins', '--show-secrets', '--teampass-root', FIXTURE], { TPWS_JWT_SECRET: 'x'.repeat(40) });
    expect(res.stdout).toContain('store.password = (decrypted from TeamPass, never printed)');
    expect(res.stdout).toContain(`auth.jwt.secret = "${'x'.repeat(40)}"`);
    const hidden = tpWs(['print-config', '--origins'], { TPWS_JWT_SECRET: 'x'.repeat(40), TPWS_STORE: 'mysql://u:dbpass99@h:3306/d' });
    expect(hidden.stdout).toMatch(/^auth\.jwt\.secret = \(secret, left out\) +\(from TPWS_JWT_SECRET\)$/m);
    expect(hidden.stdout).toMatch(/^store\.url = "mysql:\/\/u@h:3306\/d" \(password left out\) +\(from TPWS_STORE\)$/m);
    expect(hidden.stdout).not.toContain('dbpass99');
  });

  it('refuses to be combined with another output format', () => {
    const res = tpWs(['print-config', '--origins', '--env']);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/cannot be used with/);
  });

  it('shows every key as a default with --defaults', () => {
    const res = tpWs(['print-config', '--origins', '--defaults'], { TPWS_PORT: '9' });
    expect(res.stdout.split('\n').filter((l) => l.includes(' = ')).every((l) => l.endsWith('(from default)'))).toBe(true);
  });
});

describe('tp-ws print-config with --teampass-root', () => {
  it('leaves the values read from TeamPass out of the JSON, so it loads back to the same configuration', () => {
    const first = tpWs(['print-config', '--teampass-root', FIXTURE, '--port', '9001']);
    expect(first.status).toBe(0);
    const printed = JSON.parse(first.stdout) as Record<string, Record<string, unknown>>;
    expect(printed.teampass.root).toBe(FIXTURE);
    expect(printed.server.port).toBe(9001);
    expect(printed.server).not.toHaveProperty('host');
    expect(printed.store).not.toHaveProperty('url');
    expect(printed.store).not.toHaveProperty('password');
    expect(first.stderr).toBe(`print-config: left out server.host, store.url, store.password, store.tablePrefix, log.level, limits.maxMessageBytes, limits.rateLimitMessages, limits.rateLimitWindowMs, limits.maxConnectionsPerUser, heartbeat.pingIntervalSec, heartbeat.pongTimeoutSec, retention.hours, retention.intervalSec: read from the TeamPass install ${FIXTURE}, which teampass.root names in the output; see them with --origins\n`);

    const file = join(tmp, 'printed.json');
    writeFileSync(file, first.stdout);
    const again = tpWs(['print-config', '--origins', '--config', file]);
    const before = tpWs(['print-config', '--origins', '--teampass-root', FIXTURE, '--port', '9001']);
    const valuesOf = (out: string) => out.split('\n').filter((l) => l.includes(' = ')).map((l) => l.replace(/ +\(from .*\)$/, ''));
    expect(valuesOf(again.stdout)).toEqual(valuesOf(before.stdout));
  });

  it('does not print the decrypted password with --show-secrets either, in JSON or --env', () => {
    // tpWs() fails the test if the password appears on stdout or stderr.
    for (const format of ['--json', '--env']) {
      const res = tpWs(['print-config', format, '--show-secrets', '--teampass-root', FIXTURE]);
      expect(res.status).toBe(0);
      expect(res.stderr).toContain('store.password');
    }
  });

  it('--env comments out the values read from TeamPass and keeps TPWS_TEAMPASS_ROOT', () => {
    const res = tpWs(['print-config', '--env', '--teampass-root', FIXTURE]);
    expect(res.stdout).toContain(`TPWS_TEAMPASS_ROOT=${FIXTURE}\n`);
    expect(res.stdout).toContain('# TPWS_PORT=  (read from the TeamPass install)\n');
    expect(res.stdout).toContain('# TPWS_STORE_PASSWORD=  (read from the TeamPass install)\n');
  });
});

describe('tp-ws check-config with --teampass-root', () => {
  it('accepts the sample install', () => {
    const res = tpWs(['check-config', '--teampass-root', FIXTURE]);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('configuration OK\n');
  });

  it('exits 2 naming the flag and the file when the install cannot be read', () => {
    const res = tpWs(['check-config', '--teampass-root', join(tmp, 'nope')]);
    expect(res.status).toBe(2);
    expect(res.stderr).toBe(`TPWS_ERR_TEAMPASS_CONFIG: in teampass.root (from --teampass-root): cannot read TeamPass's ${join(tmp, 'nope/app/config/settings.php')} (ENOENT: no such file): is ${join(tmp, 'nope')} TeamPass's installation directory (the one holding app/ and secrets/)?\n`);
  });

  it('exits 2 naming the PHP file for a bad value read from it', () => {
    const dir = join(tmp, 'bad-port');
    cpSync(FIXTURE, dir, { recursive: true });
    writeFileSync(join(dir, 'app/websocket/config/websocket.php'), "<?php\nreturn ['port' => 'eighty'];\n");
    const res = tpWs(['check-config', '--teampass-root', dir]);
    expect(res.status).toBe(2);
    expect(res.stderr).toBe(`TPWS_ERR_CONFIG_INVALID: in server.port (from TeamPass install ${join(dir, 'app/websocket/config/websocket.php')} ('port' line 2)): must be an integer from 0 to 65535 (got "eighty")\n`);
  });
});
