import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { configToPrintable, findUnknownEnv, loadConfig, type ConfigSources } from '../../src/config/load.js';
import { SCHEMA } from '../../src/config/schema.js';
import { TpWsError } from '../../src/errors.js';

const HOME = '/home/alice';
/** A fixed, minimal environment so the host's TPWS_* or XDG variables never leak in. */
const BASE_ENV: NodeJS.ProcessEnv = { HOME };

const tmp = mkdtempSync(join(tmpdir(), 'tp-ws-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let fileCount = 0;
/** Writes `content` (JSON-encoded unless a string) to a fresh temp file. */
function configFile(content: unknown): string {
  const path = join(tmp, `config-${++fileCount}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function load(sources: ConfigSources = {}) {
  return loadConfig({ file: null, flags: {}, ...sources, env: { ...BASE_ENV, ...sources.env } });
}

/** The error `fn` throws, asserted to be a TpWsError. */
function errorOf(fn: () => unknown): TpWsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TpWsError);
    return err as TpWsError;
  }
  throw new Error('expected an error, got none');
}

function invalidEnv(name: string, value: string): TpWsError {
  const err = errorOf(() => load({ env: { [name]: value } }));
  expect(err.code).toBe('TPWS_ERR_CONFIG_INVALID');
  return err;
}

const SECRET = 'correct-horse-battery-staple-0123456789';

describe('loadConfig', () => {
  describe('defaults', () => {
    it('has defaults that pass their own rules (loadConfig checks only given values)', () => {
      for (const spec of SCHEMA) {
        if (spec.check === undefined || spec.default === null) continue;
        expect({ key: spec.key, broken: spec.check(spec.default) }).toEqual({ key: spec.key, broken: null });
      }
    });

    it('still checks a given value equal in kind to a default', () => {
      expect(() => loadConfig({ env: { TPWS_TRUSTED_PROXIES: '127.0.0.1,abc' } })).toThrow(/in server\.trustedProxies \(from TPWS_TRUSTED_PROXIES\): "abc" is not an IP address/);
    });

    it('gives every schema key its default when nothing is set', () => {
      const cfg = load();
      const { values } = configToPrintable(cfg, { showSecrets: true });
      for (const spec of SCHEMA) {
        expect(values.get(spec.key), spec.key).not.toBeUndefined();
        if (spec.default !== null) expect(values.get(spec.key), spec.key).toEqual(spec.default);
      }
      expect(cfg.server.port).toBe(8080);
      expect(cfg.server.trustedProxies).toEqual(['127.0.0.1', '::1']);
      expect(cfg.poller.enabled).toBe(true);
      expect(cfg.auth.jwt.secret).toBeNull();
      expect(cfg.ingest.socketMode).toBe('0660');
    });

    it('puts the state directory under ~/.local/state and derives the store and socket from it', () => {
      const cfg = load();
      expect(cfg.stateDir).toBe('/home/alice/.local/state/tp-ws');
      expect(cfg.store.url).toBe('sqlite:/home/alice/.local/state/tp-ws/tp-ws.db');
      expect(cfg.ingest.socket).toBe('/home/alice/.local/state/tp-ws/ingest.sock');
    });

    it('uses the first path of $STATE_DIRECTORY (systemd) before XDG', () => {
      const cfg = load({ env: { STATE_DIRECTORY: '/var/lib/tp-ws:/var/lib/other', XDG_STATE_HOME: '/x/state' } });
      expect(cfg.stateDir).toBe('/var/lib/tp-ws');
      expect(cfg.store.url).toBe('sqlite:/var/lib/tp-ws/tp-ws.db');
    });

    it('uses $XDG_STATE_HOME/tp-ws, ignoring a relative XDG_STATE_HOME as the XDG spec says', () => {
      expect(load({ env: { XDG_STATE_HOME: '/x/state' } }).stateDir).toBe('/x/state/tp-ws');
      expect(load({ env: { XDG_STATE_HOME: 'relative/state' } }).stateDir).toBe('/home/alice/.local/state/tp-ws');
    });

    it('puts the ingest socket in $RUNTIME_DIRECTORY when systemd sets it', () => {
      const cfg = load({ env: { RUNTIME_DIRECTORY: '/run/tp-ws', STATE_DIRECTORY: '/var/lib/tp-ws' } });
      expect(cfg.ingest.socket).toBe('/run/tp-ws/ingest.sock');
      expect(cfg.store.url).toBe('sqlite:/var/lib/tp-ws/tp-ws.db');
    });

    it('resolves a relative stateDir against the working directory and derives from it', () => {
      const cfg = load({ flags: { 'state-dir': 'var/state' } });
      expect(cfg.stateDir).toBe(resolve(process.cwd(), 'var/state'));
      expect(cfg.store.url).toBe(`sqlite:${resolve(process.cwd(), 'var/state', 'tp-ws.db')}`);
    });

    it('keeps an explicit store URL and ingest socket over the computed ones', () => {
      const cfg = load({ env: { TPWS_STORE: 'sqlite:/data/x.db', TPWS_SOCKET: '/tmp/in.sock', RUNTIME_DIRECTORY: '/run/tp-ws' } });
      expect(cfg.store.url).toBe('sqlite:/data/x.db');
      expect(cfg.ingest.socket).toBe('/tmp/in.sock');
    });
  });

  describe('precedence', () => {
    const file = () => configFile({ server: { port: 9000, host: '0.0.0.0' }, log: { level: 'debug' } });

    it('lets the file override defaults', () => {
      const cfg = load({ file: file() });
      expect(cfg.server.port).toBe(9000);
      expect(cfg.server.host).toBe('0.0.0.0');
      expect(cfg.log.level).toBe('debug');
    });

    it('lets the environment override the file', () => {
      const cfg = load({ file: file(), env: { TPWS_PORT: '9001' } });
      expect(cfg.server.port).toBe(9001);
      expect(cfg.server.host).toBe('0.0.0.0');
    });

    it('lets flags override the environment', () => {
      const cfg = load({ file: file(), env: { TPWS_PORT: '9001', TPWS_LOG_LEVEL: 'warn' }, flags: { port: '9002' } });
      expect(cfg.server.port).toBe(9002);
      expect(cfg.log.level).toBe('warn');
    });

    it('accepts flags keyed kebab-case or camelCase, and ignores undefined and unrelated flags', () => {
      expect(load({ flags: { 'table-prefix': 'x_' } }).store.tablePrefix).toBe('x_');
      expect(load({ flags: { tablePrefix: 'y_', strict: true, config: undefined } }).store.tablePrefix).toBe('y_');
      expect(load({ env: { TPWS_PORT: '7' }, flags: { port: undefined } }).server.port).toBe(7);
    });

    it('reads process.env when no env is passed', () => {
      const saved = process.env.TPWS_SHUTDOWN_TIMEOUT_MS;
      process.env.TPWS_SHUTDOWN_TIMEOUT_MS = '1234';
      try {
        expect(loadConfig({}).shutdown.timeoutMs).toBe(1234);
      } finally {
        if (saved === undefined) delete process.env.TPWS_SHUTDOWN_TIMEOUT_MS;
        else process.env.TPWS_SHUTDOWN_TIMEOUT_MS = saved;
      }
    });
  });

  describe('int', () => {
    it('parses decimal strings and JSON integers, including negatives where allowed', () => {
      expect(load({ env: { TPWS_PORT: ' 80 ' } }).server.port).toBe(80);
      expect(load({ file: configFile({ server: { port: 81 } }) }).server.port).toBe(81);
      expect(load({ flags: { 'admin-port': '-1' } }).admin.port).toBe(-1);
    });

    it.each(['12abc', '1.5', '', '0x50', '1e3'])('rejects %j naming the key, the source and the rule', (value) => {
      const err = invalidEnv('TPWS_PORT', value);
      expect(err.message).toContain('in server.port (from TPWS_PORT): must be an integer from 0 to 65535');
    });

    it('rejects a JSON float from the file, naming the file', () => {
      const path = configFile({ server: { port: 80.5 } });
      const err = errorOf(() => load({ file: path }));
      expect(err.message).toBe(`in server.port (from config file ${path}): must be an integer from 0 to 65535 (got 80.5)`);
    });

    it('enforces bounds and names the flag', () => {
      const err = errorOf(() => load({ flags: { port: '70000' } }));
      expect(err.message).toBe('in server.port (from --port): must be an integer from 0 to 65535 (got "70000")');
      expect(invalidEnv('TPWS_POLLER_INTERVAL_MS', '5').message).toContain('in poller.intervalMs (from TPWS_POLLER_INTERVAL_MS): must be an integer from 10 to 600000');
      expect(load({ env: { TPWS_PORT: '0' } }).server.port).toBe(0);
      expect(load({ env: { TPWS_PORT: '65535' } }).server.port).toBe(65535);
    });
  });

  describe('bool', () => {
    it.each([
      ['true', true], ['false', false], ['1', true], ['0', false], ['yes', true], ['no', false], ['TRUE', true], [' No ', false],
    ])('reads %j as %s', (value, expected) => {
      expect(load({ env: { TPWS_POLLER_ENABLED: value } }).poller.enabled).toBe(expected);
    });

    it('takes JSON booleans from the file', () => {
      expect(load({ file: configFile({ poller: { enabled: false } }) }).poller.enabled).toBe(false);
    });

    it('rejects anything else', () => {
      expect(invalidEnv('TPWS_POLLER_ENABLED', 'maybe').message).toContain(
        'in poller.enabled (from TPWS_POLLER_ENABLED): must be a boolean: true, false, 1, 0, yes or no',
      );
    });
  });

  describe('list', () => {
    it('splits on commas, trims and drops empty items', () => {
      expect(load({ env: { TPWS_TRUSTED_PROXIES: ' 10.0.0.1 , ,::1,' } }).server.trustedProxies).toEqual(['10.0.0.1', '::1']);
    });

    it('takes a JSON array of strings from the file', () => {
      expect(load({ file: configFile({ auth: { methods: ['jwt'] } }) }).auth.methods).toEqual(['jwt']);
    });

    it('rejects a JSON array holding non-strings', () => {
      const err = errorOf(() => load({ file: configFile({ auth: { methods: ['jwt', 1] } }) }));
      expect(err.message).toContain('in auth.methods (from config file');
      expect(err.message).toContain('must be a comma-separated string or a JSON array of strings');
    });

    it('allows an empty trusted-proxy list (trust no peer)', () => {
      expect(load({ env: { TPWS_TRUSTED_PROXIES: '' } }).server.trustedProxies).toEqual([]);
    });

    it('rejects an item that is not an IP address in server.trustedProxies', () => {
      expect(invalidEnv('TPWS_TRUSTED_PROXIES', '127.0.0.1,abc').message).toContain(
        'in server.trustedProxies (from TPWS_TRUSTED_PROXIES): "abc" is not an IP address',
      );
    });

    it('rejects an unknown authentication method, naming it', () => {
      const err = errorOf(() => load({ flags: { auth: 'jwt,ldap' } }));
      expect(err.message).toContain('in auth.methods (from --auth): "ldap" is not one of teampass-token, jwt');
    });

    it('rejects an empty list of authentication methods', () => {
      expect(invalidEnv('TPWS_AUTH_METHODS', ' , ').message).toContain('must name at least one method');
    });

    it('rejects an unknown JWT algorithm', () => {
      expect(invalidEnv('TPWS_JWT_ALGORITHMS', 'HS256,none').message).toContain('"none" is not HS256, RS256 or ES256');
    });
  });

  describe('enum', () => {
    it('accepts a listed value', () => {
      expect(load({ flags: { logLevel: 'trace' } }).log.level).toBe('trace');
    });

    it('rejects others, listing the allowed values', () => {
      expect(invalidEnv('TPWS_LOG_LEVEL', 'verbose').message).toBe(
        'in log.level (from TPWS_LOG_LEVEL): must be one of trace, debug, info, warn, error, fatal, silent (got "verbose")',
      );
    });
  });

  describe('mode', () => {
    it.each([
      ['660', '0660'], ['0600', '0600'], ['0777', '0777'], ['7', '0007'], ['0000', '0000'],
    ])('normalizes %j to %j', (value, expected) => {
      expect(load({ env: { TPWS_SOCKET_MODE: value } }).ingest.socketMode).toBe(expected);
    });

    it.each(['1777', '0778', '888', 'rw-rw----', '', '01777'])('rejects %j', (value) => {
      expect(invalidEnv('TPWS_SOCKET_MODE', value).message).toContain(
        'in ingest.socketMode (from TPWS_SOCKET_MODE): must be an octal file mode from 0000 to 0777',
      );
    });

    it('rejects a JSON number in the file (660 and 0o660 would both be plausible)', () => {
      const err = errorOf(() => load({ file: configFile({ ingest: { socketMode: 660 } }) }));
      expect(err.message).toContain('in ingest.socketMode (from config file');
    });
  });

  describe('string', () => {
    it('rejects an empty string where empty means nothing', () => {
      expect(invalidEnv('TPWS_HOST', '').message).toBe('in server.host (from TPWS_HOST): must not be empty');
    });

    it('accepts an empty ingest socket (disabled) and an empty table prefix', () => {
      const cfg = load({ env: { TPWS_SOCKET: '', TPWS_TABLE_PREFIX: '' } });
      expect(cfg.ingest.socket).toBe('');
      expect(cfg.store.tablePrefix).toBe('');
    });

    it('runs the key\'s own rule', () => {
      expect(invalidEnv('TPWS_TABLE_PREFIX', 'bad-prefix').message).toContain('must be 0-32 characters of [A-Za-z0-9_]');
    });

    it('keeps null defaults null and accepts null from the file for them', () => {
      const cfg = load({ file: configFile({ auth: { jwt: { issuer: null } }, ingest: { socketGroup: null } }) });
      expect(cfg.auth.jwt.issuer).toBeNull();
      expect(cfg.ingest.socketGroup).toBeNull();
    });

    it('rejects null from the file for a key with a real default', () => {
      const err = errorOf(() => load({ file: configFile({ server: { host: null } }) }));
      expect(err.message).toContain('in server.host (from config file');
      expect(err.message).toContain('must not be null');
    });

    it('rejects a non-string from the file', () => {
      expect(errorOf(() => load({ file: configFile({ ingest: { socketGroup: 33 } }) })).message).toContain('must be a string');
    });
  });

  describe('secrets', () => {
    it('never puts a secret value in an error', () => {
      const short = 'hunter2-short-secret';
      const err = invalidEnv('TPWS_JWT_SECRET', short);
      expect(err.message).toBe('in auth.jwt.secret (from TPWS_JWT_SECRET): must be at least 32 characters');
      expect(err.message).not.toContain(short);

      const url = 'postgres://tp:hunter2@db/teampass';
      const storeErr = invalidEnv('TPWS_STORE', url);
      expect(storeErr.message).toContain('in store.url (from TPWS_STORE)');
      expect(storeErr.message).not.toContain('hunter2');

      const fileErr = errorOf(() => load({ file: configFile({ auth: { jwt: { secret: ['hunter2'] } } }) }));
      expect(fileErr.message).not.toContain('hunter2');
    });

    it('does not quote the file text when the JSON is broken', () => {
      const path = configFile('{\n  "auth": {"jwt": {"secret": hunter2hunter2}}\n}');
      const err = errorOf(() => load({ file: path }));
      expect(err.code).toBe('TPWS_ERR_CONFIG_FILE');
      expect(err.message).toContain(`config file ${path} is not valid JSON`);
      expect(err.message).not.toContain('hunter2hunter2');
    });

    it('leaves secrets out of printable output unless asked, and the password out of the store URL', () => {
      const cfg = load({ env: { TPWS_JWT_SECRET: SECRET, TPWS_STORE: 'mysql://tp:s3cr%40t@db:3306/teampass' } });
      const { values, withheld } = configToPrintable(cfg);
      expect(values.has('auth.jwt.secret')).toBe(false);
      expect(values.get('store.url')).toBe('mysql://tp@db:3306/teampass');
      expect(withheld).toEqual(['store.url', 'auth.jwt.secret']);
      const text = JSON.stringify([...values]);
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('s3cr');

      const clear = configToPrintable(cfg, { showSecrets: true });
      expect(clear.values.get('auth.jwt.secret')).toBe(SECRET);
      expect(clear.values.get('store.url')).toBe('mysql://tp:s3cr%40t@db:3306/teampass');
      expect(clear.withheld).toEqual([]);
    });

    it('takes a password holding a raw "@" out whole', () => {
      const cfg = load({ env: { TPWS_STORE: 'mysql://tp:p@ss@db/teampass' } });
      expect(configToPrintable(cfg).values.get('store.url')).toBe('mysql://tp@db/teampass');
    });

    it('prints unset secrets as null and SQLite URLs as they are', () => {
      const { values, withheld } = configToPrintable(load());
      expect(values.get('auth.jwt.secret')).toBeNull();
      expect(values.get('store.url')).toBe('sqlite:/home/alice/.local/state/tp-ws/tp-ws.db');
      expect(withheld).toEqual([]);
    });
  });

  describe('store password', () => {
    const url = 'mysql://tp@db:3306/teampass';

    it('takes store.password or store.passwordFile for a URL without one', () => {
      expect(load({ env: { TPWS_STORE: url, TPWS_STORE_PASSWORD: 'p@ss/w:rd#%?' } }).store.password).toBe('p@ss/w:rd#%?');
      expect(load({ env: { TPWS_STORE: url }, flags: { 'store-password-file': '/etc/tp-ws/db-password' } }).store.passwordFile).toBe('/etc/tp-ws/db-password');
    });

    it('refuses a password given twice, both keys, or a password for SQLite, naming the keys', () => {
      expect(invalidEnv('TPWS_STORE_PASSWORD', 'x').message).toBe('in store.password (from TPWS_STORE_PASSWORD): only a mysql:// store.url takes a password');
      const twice = errorOf(() => load({ env: { TPWS_STORE: 'mysql://tp:pw@db/teampass', TPWS_STORE_PASSWORD: 'hunter2' } }));
      expect(twice.message).toBe('in store.password (from TPWS_STORE_PASSWORD) and store.url (from TPWS_STORE): the password is given twice; keep one');
      const both = errorOf(() => load({ env: { TPWS_STORE: url, TPWS_STORE_PASSWORD: 'hunter2', TPWS_STORE_PASSWORD_FILE: '/x' } }));
      expect(both.message).toContain('set only one of them');
      for (const e of [twice, both]) expect(e.message).not.toContain('hunter2');
    });

    it('checks store.url by the rules of the store that opens it', () => {
      expect(invalidEnv('TPWS_STORE', 'mysql://nohost').message).toBe('in store.url (from TPWS_STORE): must name a database (expected mysql://user:pass@host:port/db)');
      expect(invalidEnv('TPWS_STORE', 'mysql://nohost/db').message).toContain('must name a user');
      expect(invalidEnv('TPWS_STORE', 'mysql://u:p@db').message).toContain('must name a database');
      expect(invalidEnv('TPWS_STORE', 'mysql://u:p@db/tp?ssl=1').message).toContain('has an unsupported parameter "ssl"');
    });
  });

  describe('result', () => {
    it('is deeply frozen', () => {
      const cfg = load();
      expect(Object.isFrozen(cfg)).toBe(true);
      expect(Object.isFrozen(cfg.auth.jwt)).toBe(true);
      expect(Object.isFrozen(cfg.server.trustedProxies)).toBe(true);
      expect(() => {
        (cfg.server as { port: number }).port = 1;
      }).toThrow(TypeError);
      expect(() => (cfg.auth.methods as string[]).push('x')).toThrow(TypeError);
    });

    it('does not share arrays with the schema defaults', () => {
      const spec = SCHEMA.find((s) => s.key === 'server.trustedProxies');
      expect(load().server.trustedProxies).not.toBe(spec?.default);
      expect(Object.isFrozen(spec?.default)).toBe(false);
      const { values } = configToPrintable(load());
      (values.get('server.trustedProxies') as string[]).push('10.0.0.1');
      expect(load().server.trustedProxies).toEqual(['127.0.0.1', '::1']);
    });
  });

  describe('config file', () => {
    it('rejects unknown keys, naming them with a hint', () => {
      const path = configFile({ server: { prot: 1 }, bogus: true });
      const err = errorOf(() => load({ file: path }));
      expect(err.code).toBe('TPWS_ERR_CONFIG_INVALID');
      expect(err.message).toBe(`in config file ${path}: unknown keys server.prot (did you mean server.port?), bogus`);
    });

    it('rejects dotted names, pointing to the nested form', () => {
      const err = errorOf(() => load({ file: configFile({ 'server.port': 1 }) }));
      expect(err.message).toContain('unknown key server.port (write it nested: {"server":{"port":…}})');
    });

    it('rejects a section that is not an object', () => {
      expect(errorOf(() => load({ file: configFile({ server: 5 }) })).message).toContain('in server (from config file');
    });

    it('reports a missing file as TPWS_ERR_CONFIG_FILE', () => {
      const err = errorOf(() => load({ file: join(tmp, 'missing.json') }));
      expect(err.code).toBe('TPWS_ERR_CONFIG_FILE');
      expect(err.message).toContain('ENOENT');
    });

    it.each([['[]'], ['null'], ['42']])('reports a file holding %s as TPWS_ERR_CONFIG_FILE', (text) => {
      const err = errorOf(() => load({ file: configFile(text) }));
      expect(err.code).toBe('TPWS_ERR_CONFIG_FILE');
      expect(err.message).toContain('must hold a JSON object');
    });

    it('accepts an empty object', () => {
      expect(load({ file: configFile({}) }).server.port).toBe(8080);
    });
  });

  describe('cross-key rules', () => {
    it('requires limits.maxFrameBytes ≥ limits.maxMessageBytes', () => {
      const err = errorOf(() => load({ env: { TPWS_MAX_FRAME_BYTES: '2048', TPWS_MAX_MESSAGE_BYTES: '4096' } }));
      expect(err.message).toBe(
        'in limits.maxFrameBytes (from TPWS_MAX_FRAME_BYTES): must be ≥ limits.maxMessageBytes (4096 from TPWS_MAX_MESSAGE_BYTES) (got 2048)',
      );
      expect(load({ env: { TPWS_MAX_FRAME_BYTES: '4096', TPWS_MAX_MESSAGE_BYTES: '4096' } }).limits.maxFrameBytes).toBe(4096);
    });

    it('requires heartbeat.pongTimeoutSec ≥ heartbeat.pingIntervalSec', () => {
      const err = errorOf(() => load({ env: { TPWS_PONG_TIMEOUT_SEC: '20' } }));
      expect(err.message).toContain('in heartbeat.pongTimeoutSec (from TPWS_PONG_TIMEOUT_SEC): must be ≥ heartbeat.pingIntervalSec (30 from default)');
      expect(load({ env: { TPWS_PONG_TIMEOUT_SEC: '30' } }).heartbeat.pongTimeoutSec).toBe(30);
    });

    it('refuses both auth.jwt.secret and auth.jwt.secretFile, without quoting the secret', () => {
      const path = configFile({ auth: { jwt: { secretFile: '/etc/tp-ws/jwt.secret' } } });
      const err = errorOf(() => load({ file: path, env: { TPWS_JWT_SECRET: SECRET } }));
      expect(err.message).toBe(
        `in auth.jwt.secret (from TPWS_JWT_SECRET) and auth.jwt.secretFile (from config file ${path}): set only one of them`,
      );
    });
  });
});

describe('findUnknownEnv', () => {
  it('lists TPWS_* variables no key reads, with a hint, and ignores the rest', () => {
    expect(findUnknownEnv({ TPWS_PROT: '1', TPWS_PORT: '1', PATH: '/bin', TPWS_ZZZ_UNRELATED_THING: 'x' })).toEqual([
      'TPWS_PROT (did you mean TPWS_PORT?)',
      'TPWS_ZZZ_UNRELATED_THING',
    ]);
  });
});

describe('SCHEMA', () => {
  it('has unique keys, env names and flags, all env names prefixed TPWS_', () => {
    const unique = (xs: readonly unknown[]) => new Set(xs).size === xs.length;
    expect(unique(SCHEMA.map((s) => s.key))).toBe(true);
    expect(unique(SCHEMA.map((s) => s.env))).toBe(true);
    expect(unique(SCHEMA.filter((s) => s.flag).map((s) => s.flag))).toBe(true);
    for (const s of SCHEMA) expect(s.env).toMatch(/^TPWS_[A-Z0-9_]+$/);
  });
});
