import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'tp-ws.js');
const SECRET = 'correct-horse-battery-staple-0123456789';

const tmp = mkdtempSync(join(tmpdir(), 'tp-ws-config-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The host environment without TPWS_* or systemd/XDG variables, HOME in the temp dir. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(TPWS_|STATE_DIRECTORY$|RUNTIME_DIRECTORY$|XDG_STATE_HOME$)/.test(name)) env[name] = value;
  }
  return { ...env, HOME: tmp, ...extra };
}

function tpWs(args: string[], env: NodeJS.ProcessEnv = {}) {
  const res = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env: cleanEnv(env), encoding: 'utf8' });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** `print-config ARGS` parsed; with `--show-secrets` or no secret set, nothing is left out and stderr is empty. */
function printJson(args: string[], env: NodeJS.ProcessEnv = {}): Json {
  const res = tpWs(['print-config', ...args], env);
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  return JSON.parse(res.stdout) as Json;
}

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'tp-ws.js'))) {
    throw new Error('dist/cli/tp-ws.js is missing: run `npm run build` (npm test does it first)');
  }
});

describe('tp-ws check-config', () => {
  it('exits 2 and names the key, source and rule for an out-of-range --port', () => {
    const res = tpWs(['check-config', '--port', '70000']);
    expect(res.status).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toBe(
      'TPWS_ERR_CONFIG_INVALID: in server.port (from --port): must be an integer from 0 to 65535 (got "70000")\n',
    );
  });

  it('prints "configuration OK" and exits 0 for a valid configuration', () => {
    const res = tpWs(['check-config', '--port', '0', '--log-level', 'debug'], { TPWS_POLLER_ENABLED: 'no' });
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('configuration OK\n');
    expect(res.status).toBe(0);
  });

  it('names the environment variable when the bad value came from it', () => {
    const res = tpWs(['check-config'], { TPWS_SOCKET_MODE: '1777' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('in ingest.socketMode (from TPWS_SOCKET_MODE)');
  });

  it('rejects unknown keys of a --config file', () => {
    const file = join(tmp, 'typo.json');
    writeFileSync(file, JSON.stringify({ poller: { intervalMS: 100 } }));
    const res = tpWs(['check-config', '--config', file]);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('unknown key poller.intervalMS (did you mean poller.intervalMs?)');
  });

  it('reports an unreadable --config file as TPWS_ERR_CONFIG_FILE', () => {
    const res = tpWs(['check-config', '--config', join(tmp, 'missing.json')]);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/^TPWS_ERR_CONFIG_FILE: cannot read config file .*missing\.json: ENOENT\n$/);
  });

  it('with --strict, fails on TPWS_* variables that are not configuration keys', () => {
    expect(tpWs(['check-config'], { TPWS_PROT: '9' }).status).toBe(0);
    const res = tpWs(['check-config', '--strict'], { TPWS_PROT: '9' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('unknown environment variable TPWS_PROT (did you mean TPWS_PORT?)');
  });

  it('never prints a secret in its error', () => {
    const res = tpWs(['check-config'], { TPWS_JWT_SECRET: 'hunter2-too-short' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('in auth.jwt.secret (from TPWS_JWT_SECRET): must be at least 32 characters');
    expect(res.stderr).not.toContain('hunter2');
  });

  it('applies the rules of the store to store.url, as migrate and serve do', () => {
    const res = tpWs(['check-config', '--store', 'mysql://nohost/teampass']);
    expect(res.status).toBe(2);
    expect(res.stderr).toBe('TPWS_ERR_CONFIG_INVALID: in store.url (from --store): must name a user (expected mysql://user:pass@host:port/db)\n');
  });
});

describe('tp-ws print-config', () => {
  it('--defaults prints the defaults as a config file, ignoring TPWS_* variables', () => {
    const cfg = printJson(['--defaults'], { TPWS_PORT: '9' });
    expect(cfg.server.port).toBe(8080);
    expect(cfg.stateDir).toBe(join(tmp, '.local', 'state', 'tp-ws'));
    expect(cfg.store.url).toBe(`sqlite:${join(tmp, '.local', 'state', 'tp-ws', 'tp-ws.db')}`);
  });

  it('reflects TPWS_* variables, and flags over them', () => {
    expect(printJson([], { TPWS_PORT: '9' }).server.port).toBe(9);
    expect(printJson(['--port', '10'], { TPWS_PORT: '9' }).server.port).toBe(10);
  });

  it('follows systemd directories for the computed defaults', () => {
    const cfg = printJson([], { STATE_DIRECTORY: '/var/lib/tp-ws', RUNTIME_DIRECTORY: '/run/tp-ws' });
    expect(cfg.store.url).toBe('sqlite:/var/lib/tp-ws/tp-ws.db');
    expect(cfg.ingest.socket).toBe('/run/tp-ws/ingest.sock');
  });

  it('leaves secrets out unless --show-secrets, and says so on stderr', () => {
    const env = { TPWS_JWT_SECRET: SECRET, TPWS_STORE: 'mysql://tp:dbpass99@db:3306/teampass' };
    const res = tpWs(['print-config'], env);
    expect(res.status).toBe(0);
    expect(res.stdout).not.toContain(SECRET);
    expect(res.stdout).not.toContain('dbpass99');
    const cfg = JSON.parse(res.stdout) as Json;
    expect(cfg.auth.jwt).not.toHaveProperty('secret');
    expect(cfg.store.url).toBe('mysql://tp@db:3306/teampass');
    expect(res.stderr).toBe('print-config: left out the password of store.url, auth.jwt.secret: give them to the daemon through its environment (see docs/configuration.md), or print them with --show-secrets\n');

    const envOut = tpWs(['print-config', '--env'], env).stdout;
    expect(envOut).not.toContain(SECRET);
    expect(envOut).not.toContain('dbpass99');
    expect(envOut).toContain('# TPWS_JWT_SECRET=  (secret, left out)');

    const clear = printJson(['--show-secrets'], env);
    expect(clear.auth.jwt.secret).toBe(SECRET);
    expect(clear.store.url).toBe('mysql://tp:dbpass99@db:3306/teampass');
  });

  it('prints a config file that --config loads back to the same configuration', () => {
    const env = { TPWS_PORT: '9', TPWS_TRUSTED_PROXIES: '10.0.0.1, ::1', TPWS_SOCKET_GROUP: 'www-data', TPWS_STORE: 'mysql://tp:p%40ss@db:3306/teampass', TPWS_JWT_SECRET: SECRET };
    const original = printJson(['--show-secrets'], env);
    // With secrets: the file alone gives the same configuration.
    const withSecrets = join(tmp, 'round-trip-secrets.json');
    writeFileSync(withSecrets, tpWs(['print-config', '--show-secrets'], env).stdout);
    expect(printJson(['--config', withSecrets, '--show-secrets'])).toEqual(original);
    expect(tpWs(['check-config', '--config', withSecrets]).stdout).toBe('configuration OK\n');
    // Without: the file plus the secrets from the environment, the password as store.password.
    const withheld = join(tmp, 'round-trip.json');
    writeFileSync(withheld, tpWs(['print-config'], env).stdout);
    const back = printJson(['--config', withheld, '--show-secrets'], { TPWS_JWT_SECRET: SECRET, TPWS_STORE_PASSWORD: 'p@ss' });
    expect({ ...back, store: { ...back.store, url: null, password: null } }).toEqual({ ...original, store: { ...original.store, url: null } });
    expect(back.store.url).toBe('mysql://tp@db:3306/teampass');
    expect(back.store.password).toBe('p@ss');
  });

  it('--env prints TPWS_*=value lines that load back to the same configuration', () => {
    const res = tpWs(['print-config', '--env', '--socket-group', 'www-data'], { TPWS_PORT: '9', TPWS_TRUSTED_PROXIES: '10.0.0.1, ::1' });
    expect(res.status).toBe(0);
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines).toContain('TPWS_PORT=9');
    expect(lines).toContain('TPWS_TRUSTED_PROXIES=10.0.0.1,::1');
    expect(lines).toContain('TPWS_SOCKET_GROUP=www-data');
    expect(lines).toContain('# TPWS_JWT_ISSUER=');

    const back: NodeJS.ProcessEnv = {};
    for (const line of lines) {
      const m = /^(TPWS_[A-Z0-9_]+)=(.*)$/.exec(line);
      if (m) back[m[1]] = m[2].startsWith('"') ? (JSON.parse(m[2]) as string) : m[2];
    }
    expect(printJson([], back)).toEqual(printJson(['--socket-group', 'www-data'], { TPWS_PORT: '9', TPWS_TRUSTED_PROXIES: '10.0.0.1,::1' }));
  });

  it('--markdown prints the configuration reference', () => {
    const res = tpWs(['print-config', '--markdown']);
    expect(res.status).toBe(0);
    expect(res.stdout.startsWith('# Configuration\n')).toBe(true);
  });

  it('exits 2 on an invalid configuration', () => {
    const res = tpWs(['print-config'], { TPWS_LOG_LEVEL: 'loud' });
    expect(res.status).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('in log.level (from TPWS_LOG_LEVEL): must be one of');
  });
});
