/**
 * The TeamPass layer of the config loader (`teampass.root`): between the
 * defaults and the config file, its store settings a unit, its errors
 * naming the PHP file, and the origin of every value.
 */
import { cpSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { describeOrigin, loadConfig, loadConfigWithOrigins, type ConfigSources } from '../../src/config/load.js';
import { SCHEMA } from '../../src/config/schema.js';
import { TpWsError } from '../../src/errors.js';
import { SETTINGS_PHP, WEBSOCKET_PHP } from '../../src/teampass/install.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/teampass', import.meta.url));
const SETTINGS = join(FIXTURE, SETTINGS_PHP);
const WEBSOCKET = join(FIXTURE, WEBSOCKET_PHP);
const PASSWORD = 's3cr3t-DB-pass';
const BASE_ENV: NodeJS.ProcessEnv = { HOME: '/home/alice' };

const tmp = mkdtempSync(join(tmpdir(), 'tp-ws-config-tp-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let count = 0;
function copyTree(): string {
  const dir = join(tmp, `tree-${++count}`);
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

function withWebsocketPhp(text: string): string {
  const dir = copyTree();
  writeFileSync(join(dir, WEBSOCKET_PHP), text);
  return dir;
}

function configFile(content: unknown): string {
  const path = join(tmp, `config-${++count}.json`);
  writeFileSync(path, JSON.stringify(content));
  return path;
}

function load(sources: ConfigSources = {}) {
  return loadConfigWithOrigins({ file: null, flags: {}, ...sources, env: { ...BASE_ENV, ...sources.env } });
}

function errorOf(fn: () => unknown): TpWsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TpWsError);
    expect((err as TpWsError).message).not.toContain(PASSWORD);
    return err as TpWsError;
  }
  throw new Error('expected an error, got none');
}

describe('loadConfigWithOrigins with teampass.root', () => {
  it('takes the store, listener, limits, heartbeat, retention and log level from the install', () => {
    const { config } = load({ flags: { teampassRoot: FIXTURE } });
    expect(config.teampass.root).toBe(FIXTURE);
    expect(config.store).toEqual({ url: 'mysql://teampass@127.0.0.1:3306/teampass', password: PASSWORD, passwordFile: null, tablePrefix: 'teampass_' });
    expect(config.server.host).toBe('127.0.0.1');
    expect(config.server.port).toBe(8080);
    expect(config.limits.maxMessageBytes).toBe(65536);
    expect(config.heartbeat).toEqual({ pingIntervalSec: 30, pongTimeoutSec: 60 });
    expect(config.retention).toEqual({ hours: 24, intervalSec: 3600 });
    expect(config.log.level).toBe('info');
    expect(Object.isFrozen(config.store)).toBe(true);
  });

  it('says where every value came from: the PHP file and name, or the default', () => {
    const { origins } = load({ flags: { 'teampass-root': FIXTURE } });
    expect([...origins.keys()]).toEqual(SCHEMA.map((s) => s.key));
    expect(describeOrigin(origins.get('teampass.root')!)).toBe('--teampass-root');
    expect(describeOrigin(origins.get('server.port')!)).toBe(`TeamPass install ${WEBSOCKET} ('port' line 6)`);
    expect(describeOrigin(origins.get('store.url')!)).toBe(`TeamPass install ${SETTINGS} (DB_HOST line 3, DB_PORT line 8, DB_USER line 4, DB_NAME line 6)`);
    expect(describeOrigin(origins.get('store.password')!)).toBe(`TeamPass install ${SETTINGS} (DB_PASSWD line 5, decrypted with ${join(FIXTURE, 'secrets/teampass-key-7f3a9c.txt')})`);
    expect(describeOrigin(origins.get('poller.intervalMs')!)).toBe('default');
  });

  it('reads the root from TPWS_TEAMPASS_ROOT or the config file too, resolving a relative one', () => {
    expect(load({ env: { TPWS_TEAMPASS_ROOT: relative(process.cwd(), FIXTURE) } }).config.teampass.root).toBe(FIXTURE);
    const file = configFile({ teampass: { root: FIXTURE } });
    const { config, origins } = load({ file });
    expect(config.store.password).toBe(PASSWORD);
    expect(describeOrigin(origins.get('teampass.root')!)).toBe(`config file ${file}`);
  });

  it('reads nothing from TeamPass without teampass.root', () => {
    const { config, teampass } = load();
    expect(config.teampass.root).toBeNull();
    expect(config.store.url).toBe('sqlite:/home/alice/.local/state/tp-ws/tp-ws.db');
    expect(teampass).toBeNull();
  });

  it('lets the config file, the environment and flags win over the install', () => {
    const file = configFile({ server: { port: 9001 }, heartbeat: { pingIntervalSec: 20 } });
    const { config, origins } = load({ file, env: { TPWS_HOST: '0.0.0.0', TPWS_TEAMPASS_ROOT: FIXTURE }, flags: { tablePrefix: 'tp_' } });
    expect(config.server.port).toBe(9001);
    expect(config.heartbeat.pingIntervalSec).toBe(20);
    expect(config.heartbeat.pongTimeoutSec).toBe(60);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.store.tablePrefix).toBe('tp_');
    expect(describeOrigin(origins.get('server.port')!)).toBe(`config file ${file}`);
    expect(describeOrigin(origins.get('server.host')!)).toBe('TPWS_HOST');
    expect(describeOrigin(origins.get('store.tablePrefix')!)).toBe('--table-prefix');
  });

  it('returns a summary of the install that holds no value, so no password', () => {
    const { teampass } = load({ flags: { teampassRoot: FIXTURE } });
    expect(teampass).toMatchObject({ root: FIXTURE, settingsFile: SETTINGS, websocketFile: WEBSOCKET });
    expect(teampass).not.toHaveProperty('values');
    expect(teampass!.ignored.map((i) => i.name)).toEqual(['DB_ENCODING', 'DB_SSL', 'DB_CONNECT_OPTIONS', 'poll_interval_ms', 'poll_batch_size', 'log_file']);
    expect(JSON.stringify(teampass)).not.toContain(PASSWORD);
  });

  it('is what loadConfig returns', () => {
    expect(loadConfig({ file: null, env: BASE_ENV, flags: { teampassRoot: FIXTURE } })).toEqual(load({ flags: { teampassRoot: FIXTURE } }).config);
  });

  describe('the store settings, one unit', () => {
    it('drops the derived URL and password when store.url is given, without reading the key file', () => {
      const dir = copyTree();
      unlinkSync(join(dir, 'secrets/teampass-key-7f3a9c.txt'));
      const { config, origins } = load({ flags: { teampassRoot: dir, store: 'mysql://other@db:3306/other' } });
      expect(config.store.url).toBe('mysql://other@db:3306/other');
      expect(config.store.password).toBeNull();
      expect(config.store.tablePrefix).toBe('teampass_');
      expect(describeOrigin(origins.get('store.password')!)).toBe('default');
    });

    it('keeps the derived URL but not the password when store.passwordFile or store.password is given', () => {
      const dir = copyTree();
      unlinkSync(join(dir, 'secrets/teampass-key-7f3a9c.txt'));
      const viaFile = load({ flags: { teampassRoot: dir, storePasswordFile: '/run/credentials/db' } }).config.store;
      expect(viaFile).toMatchObject({ url: 'mysql://teampass@127.0.0.1:3306/teampass', password: null, passwordFile: '/run/credentials/db' });
      const viaEnv = load({ env: { TPWS_STORE_PASSWORD: 'given' }, flags: { teampassRoot: dir } }).config.store;
      expect(viaEnv).toMatchObject({ url: 'mysql://teampass@127.0.0.1:3306/teampass', password: 'given' });
    });

    it('treats a null in the config file as unset: it neither drops nor replaces a derived value', () => {
      const file = configFile({ store: { url: null, password: null, passwordFile: null }, teampass: { root: FIXTURE } });
      const { config, origins } = load({ file });
      expect(config.store).toMatchObject({ url: 'mysql://teampass@127.0.0.1:3306/teampass', password: PASSWORD, passwordFile: null });
      expect(origins.get('store.password')?.kind).toBe('teampass');
    });

    it('lets an explicit SQLite store stand beside a TeamPass root', () => {
      const { config } = load({ env: { TPWS_STORE: 'sqlite:/tmp/x.db' }, flags: { teampassRoot: FIXTURE } });
      expect(config.store.url).toBe('sqlite:/tmp/x.db');
      expect(config.store.password).toBeNull();
    });
  });

  describe('errors', () => {
    it('name the PHP file, the key and the rule for a value read from TeamPass', () => {
      const dir = withWebsocketPhp("<?php\nreturn [\n  'port' => 70000,\n];\n");
      const err = errorOf(() => load({ flags: { teampassRoot: dir } }));
      expect(err.code).toBe('TPWS_ERR_CONFIG_INVALID');
      expect(err.message).toBe(`in server.port (from TeamPass install ${join(dir, WEBSOCKET_PHP)} ('port' line 3)): must be an integer from 0 to 65535 (got 70000)`);
    });

    it('name both PHP origins for a rule between two TeamPass values', () => {
      const dir = withWebsocketPhp("<?php return ['ping_interval_sec' => 60, 'pong_timeout_sec' => 30];");
      const err = errorOf(() => load({ flags: { teampassRoot: dir } }));
      expect(err.message).toBe(`in heartbeat.pongTimeoutSec (from TeamPass install ${join(dir, WEBSOCKET_PHP)} ('pong_timeout_sec' line 1)): must be ≥ heartbeat.pingIntervalSec (60 from TeamPass install ${join(dir, WEBSOCKET_PHP)} ('ping_interval_sec' line 1)) (got 30)`);
    });

    it('refuse an unknown TeamPass log level with tp-ws\'s list', () => {
      const err = errorOf(() => load({ flags: { teampassRoot: withWebsocketPhp("<?php return ['log_level' => 'notice'];") } }));
      expect(err.message).toMatch(/^in log\.level \(from TeamPass install .*websocket\.php \('log_level' line 1\)\): must be one of trace, debug, info, warn, error, fatal, silent \(got "notice"\)$/);
    });

    it('do not happen for a TeamPass value a flag replaces', () => {
      const dir = withWebsocketPhp("<?php return ['port' => 70000];");
      expect(load({ flags: { teampassRoot: dir, port: '8080' } }).config.server.port).toBe(8080);
    });

    it('name teampass.root and where it was set when the install cannot be read', () => {
      const missing = join(tmp, 'no-teampass');
      const err = errorOf(() => load({ env: { TPWS_TEAMPASS_ROOT: missing } }));
      expect(err.code).toBe('TPWS_ERR_TEAMPASS_CONFIG');
      expect(err.message).toBe(`in teampass.root (from TPWS_TEAMPASS_ROOT): cannot read TeamPass's ${join(missing, SETTINGS_PHP)} (ENOENT: no such file): is ${missing} TeamPass's installation directory (the one holding app/ and secrets/)?`);
    });

    it('never quote the derived password, whatever else fails', () => {
      // errorOf() also checks that the message does not contain the password.
      const dir = withWebsocketPhp("<?php return ['port' => 'eighty'];");
      const err = errorOf(() => load({ flags: { teampassRoot: dir } }));
      expect(err.message).toContain("in server.port (from TeamPass install");
      expect(String(err.stack)).not.toContain(PASSWORD);
    });
  });

  it('raises limits.maxFrameBytes, left at its default, to a larger max_message_size from TeamPass', () => {
    const dir = withWebsocketPhp("<?php return ['max_message_size' => 2097152];");
    const { config, origins } = load({ flags: { teampassRoot: dir } });
    expect(config.limits.maxMessageBytes).toBe(2097152);
    expect(config.limits.maxFrameBytes).toBe(2097152);
    expect(describeOrigin(origins.get('limits.maxFrameBytes')!)).toBe(`TeamPass install ${join(dir, WEBSOCKET_PHP)} ('max_message_size' line 1, raised to match limits.maxMessageBytes)`);
    // A frame limit given explicitly is kept, and the rule between the two applies.
    expect(errorOf(() => load({ env: { TPWS_MAX_FRAME_BYTES: '1048576' }, flags: { teampassRoot: dir } })).message).toContain('in limits.maxFrameBytes (from TPWS_MAX_FRAME_BYTES): must be ≥ limits.maxMessageBytes (2097152 from TeamPass install');
  });

  it('maps TeamPass\'s warning level to warn', () => {
    expect(load({ flags: { teampassRoot: withWebsocketPhp("<?php return ['log_level' => 'warning'];") } }).config.log.level).toBe('warn');
  });
});
