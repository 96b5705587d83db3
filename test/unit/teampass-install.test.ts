/**
 * readTeampassInstall on the sample TeamPass tree (test/fixtures/teampass,
 * copied to a temp dir whenever a test changes a file) and on broken ones:
 * what each PHP setting becomes, what is ignored and why, and errors that
 * name the file, the constant and the fix, never the password or the key.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { TpWsError } from '../../src/errors.js';
import { parseMysqlUrl } from '../../src/store/store-url.js';
import { readTeampassInstall, SETTINGS_PHP, WEBSOCKET_PHP } from '../../src/teampass/install.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/teampass', import.meta.url));
const PASSWORD = 's3cr3t-DB-pass';
const KEY_FILE = 'secrets/teampass-key-7f3a9c.txt';
const KEY_TEXT = readFileSync(join(FIXTURE, KEY_FILE), 'utf8').trim();
const SAMPLE_SETTINGS = readFileSync(join(FIXTURE, SETTINGS_PHP), 'utf8');

const tmp = mkdtempSync(join(tmpdir(), 'tp-ws-teampass-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let copies = 0;
/** A writable copy of the sample tree. */
function copyTree(): string {
  const dir = join(tmp, `tree-${++copies}`);
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

/** A copy with settings.php's define of `name` replaced by `line` (or removed when null). */
function withDefine(name: string, line: string | null): string {
  const dir = copyTree();
  const re = new RegExp(`^define\\("${name}", .*$`, 'm');
  expect(SAMPLE_SETTINGS).toMatch(re);
  writeFileSync(join(dir, SETTINGS_PHP), SAMPLE_SETTINGS.replace(re, line ?? ''));
  return dir;
}

function withWebsocketPhp(text: string): string {
  const dir = copyTree();
  writeFileSync(join(dir, WEBSOCKET_PHP), text);
  return dir;
}

function errorOf(fn: () => unknown): TpWsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TpWsError);
    const e = err as TpWsError;
    expect(e.code).toBe('TPWS_ERR_TEAMPASS_CONFIG');
    expect(e.message).not.toContain(PASSWORD);
    expect(e.message).not.toContain(KEY_TEXT);
    return e;
  }
  throw new Error('expected an error, got none');
}

/** key → value of an install, the password shown as its length only. */
function valuesOf(root: string, options = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of readTeampassInstall(root, options).values) out[k] = v.value;
  return out;
}

describe('readTeampassInstall', () => {
  describe('on the sample tree', () => {
    const install = readTeampassInstall(FIXTURE);
    const settings = join(FIXTURE, SETTINGS_PHP);
    const websocket = join(FIXTURE, WEBSOCKET_PHP);

    it('derives the store from settings.php, with DB_PASSWD decrypted', () => {
      expect(install.root).toBe(FIXTURE);
      expect(install.settingsFile).toBe(settings);
      expect(install.values.get('store.url')).toEqual({ value: 'mysql://teampass@127.0.0.1:3306/teampass', file: settings, from: 'DB_HOST line 3, DB_PORT line 8, DB_USER line 4, DB_NAME line 6' });
      expect(install.values.get('store.password')).toEqual({ value: PASSWORD, file: settings, from: `DB_PASSWD line 5, decrypted with ${join(FIXTURE, KEY_FILE)}` });
      expect(install.values.get('store.tablePrefix')).toEqual({ value: 'teampass_', file: settings, from: 'DB_PREFIX line 7' });
    });

    it('maps every websocket.php key TeamPass ships to its tp-ws key', () => {
      expect(install.websocketFile).toBe(websocket);
      const fromWebsocket = Object.fromEntries([...install.values].filter(([, v]) => v.file === websocket).map(([k, v]) => [k, v.value]));
      expect(fromWebsocket).toEqual({
        'server.host': '127.0.0.1',
        'server.port': 8080,
        'limits.maxConnectionsPerUser': 5,
        'limits.maxMessageBytes': 65536,
        'limits.rateLimitMessages': 10,
        'limits.rateLimitWindowMs': 1000,
        'heartbeat.pingIntervalSec': 30,
        'heartbeat.pongTimeoutSec': 60,
        'log.level': 'info',
        'retention.hours': 24,
        'retention.intervalSec': 3600,
      });
      expect(install.values.get('server.port')?.from).toBe("'port' line 6");
    });

    it('lists what it does not take, with the reason', () => {
      expect(install.ignored.map((i) => [relative(FIXTURE, i.file), i.name, i.line])).toEqual([
        [SETTINGS_PHP, 'DB_ENCODING', 9],
        [SETTINGS_PHP, 'DB_SSL', 10],
        [SETTINGS_PHP, 'DB_CONNECT_OPTIONS', 11],
        [WEBSOCKET_PHP, 'poll_interval_ms', 7],
        [WEBSOCKET_PHP, 'poll_batch_size', 8],
        [WEBSOCKET_PHP, 'log_file', 15],
      ]);
      const reason = (name: string) => install.ignored.find((i) => i.name === name)?.reason;
      expect(reason('poll_interval_ms')).toContain('poller.intervalMs');
      expect(reason('log_file')).toContain('stdout');
      expect(reason('DB_ENCODING')).toContain('utf8mb4');
    });

    it('resolves a relative root against the working directory', () => {
      expect(readTeampassInstall(relative(process.cwd(), FIXTURE)).settingsFile).toBe(settings);
    });
  });

  describe('store options', () => {
    it('derives no store URL or password when storeUrl is false, and needs no DB_* constant nor key file then', () => {
      const dir = withDefine('DB_HOST', null);
      unlinkSync(join(dir, KEY_FILE));
      const v = valuesOf(dir, { storeUrl: false });
      expect(v['store.url']).toBeUndefined();
      expect(v['store.password']).toBeUndefined();
      expect(v['store.tablePrefix']).toBe('teampass_');
    });

    it('does not read the key file when storePassword is false', () => {
      const dir = copyTree();
      unlinkSync(join(dir, KEY_FILE));
      const v = valuesOf(dir, { storePassword: false });
      expect(v['store.url']).toBe('mysql://teampass@127.0.0.1:3306/teampass');
      expect(v['store.password']).toBeUndefined();
    });
  });

  describe('settings.php values', () => {
    it('takes a DB_PASSWD that does not start with def as is, and sets none for an empty one', () => {
      expect(valuesOf(withDefine('DB_PASSWD', `define("DB_PASSWD", 'plain p@ss');`))['store.password']).toBe('plain p@ss');
      expect(valuesOf(withDefine('DB_PASSWD', `define("DB_PASSWD", "");`))).not.toHaveProperty('store.password');
    });

    it('percent-encodes user and database, brackets an IPv6 host, and the URL parses back to them', () => {
      const dir = copyTree();
      writeFileSync(join(dir, SETTINGS_PHP), SAMPLE_SETTINGS
        .replace(/define\("DB_USER", .*/, `define("DB_USER", 'tp user@x/y:z');`)
        .replace(/define\("DB_NAME", .*/, `define("DB_NAME", 'tp#db%1');`)
        .replace(/define\("DB_HOST", .*/, `define("DB_HOST", '::1');`)
        .replace(/define\("DB_PORT", .*/, 'define("DB_PORT", 3307);'));
      const url = valuesOf(dir)['store.url'] as string;
      expect(url).toBe('mysql://tp%20user%40x%2Fy%3Az@[::1]:3307/tp%23db%251');
      expect(parseMysqlUrl(url)).toMatchObject({ user: 'tp user@x/y:z', database: 'tp#db%1', host: '::1', port: 3307, password: '' });
    });

    it('defaults DB_PORT to 3306 when it is not defined', () => {
      expect(valuesOf(withDefine('DB_PORT', null))['store.url']).toBe('mysql://teampass@127.0.0.1:3306/teampass');
    });

    it('leaves store.tablePrefix to the default when DB_PREFIX is not defined, and takes an empty one', () => {
      expect(valuesOf(withDefine('DB_PREFIX', null))).not.toHaveProperty('store.tablePrefix');
      expect(valuesOf(withDefine('DB_PREFIX', 'define("DB_PREFIX", "");'))['store.tablePrefix']).toBe('');
    });

    it('finds the key in SECUREPATH when secrets/ does not hold it (older installs)', () => {
      const dir = copyTree();
      mkdirSync(join(dir, 'outside'));
      cpSync(join(dir, KEY_FILE), join(dir, 'outside/teampass-key-7f3a9c.txt'));
      unlinkSync(join(dir, KEY_FILE));
      writeFileSync(join(dir, SETTINGS_PHP), `${SAMPLE_SETTINGS}\ndefine("SECUREPATH", "${join(dir, 'outside')}");\n`);
      const install = readTeampassInstall(dir);
      expect(install.values.get('store.password')?.value).toBe(PASSWORD);
      expect(install.values.get('store.password')?.from).toContain(join(dir, 'outside/teampass-key-7f3a9c.txt'));
    });
  });

  describe('errors', () => {
    it('names settings.php and the fix when the root is not a TeamPass install', () => {
      const empty = join(tmp, 'empty');
      mkdirSync(empty);
      expect(errorOf(() => readTeampassInstall(empty)).message).toBe(
        `cannot read TeamPass's ${join(empty, SETTINGS_PHP)} (ENOENT: no such file): is ${empty} TeamPass's installation directory (the one holding app/ and secrets/)?`,
      );
      expect(errorOf(() => readTeampassInstall(join(tmp, 'nowhere'))).message).toContain('ENOENT: no such file');
    });

    it('says when settings.php cannot be read', () => {
      const dir = copyTree();
      rmSync(join(dir, SETTINGS_PHP));
      mkdirSync(join(dir, SETTINGS_PHP));
      expect(errorOf(() => readTeampassInstall(dir)).message).toBe(
        `cannot read TeamPass's ${join(dir, SETTINGS_PHP)} (EISDIR: it is a directory): tp-ws's user must be able to read it (e.g. be in the group of TeamPass's web server user)`,
      );
    });

    it('refuses a settings.php larger than 1 MiB', () => {
      const dir = copyTree();
      writeFileSync(join(dir, SETTINGS_PHP), `${SAMPLE_SETTINGS}//${'x'.repeat(1_048_576)}`);
      expect(errorOf(() => readTeampassInstall(dir)).message).toContain('(EFBIG: larger than 1048576 bytes, not a TeamPass settings file)');
    });

    it.each(['DB_HOST', 'DB_USER', 'DB_NAME', 'DB_PASSWD'])('names the file and the constant when %s is missing', (name) => {
      const dir = withDefine(name, null);
      expect(errorOf(() => readTeampassInstall(dir)).message).toMatch(new RegExp(
        `^${join(dir, SETTINGS_PHP).replace(/[.]/g, '\\.')} defines no ${name} \\(define\\("${name}", "…"\\)\\): TeamPass's installer writes it; fix it, or give store\\.`,
      ));
    });

    it('adds what the parser stumbled on to a missing-constant error', () => {
      const dir = copyTree();
      writeFileSync(join(dir, SETTINGS_PHP), '<?php\ndefine("DB_HOST", "h");\ndefine("DB_USER", "u);\n');
      expect(errorOf(() => readTeampassInstall(dir)).message).toContain('defines no DB_USER');
      expect(errorOf(() => readTeampassInstall(dir)).message).toContain('(the parser also found: line 3: unterminated string');
    });

    it('refuses a DB_* constant that is no literal, saying tp-ws does not run PHP', () => {
      const dir = withDefine('DB_HOST', `define("DB_HOST", getenv('DB_HOST'));`);
      expect(errorOf(() => readTeampassInstall(dir)).message).toBe(
        `DB_HOST in ${join(dir, SETTINGS_PHP)} (line 3) is an expression, not a literal: tp-ws reads settings.php without running PHP, so it must be a literal; fix it, or give store.url (with store.password or store.passwordFile) instead`,
      );
    });

    it('refuses a bad DB_PORT or DB_HOST, an empty DB_USER, and a DB_PREFIX that is no string', () => {
      expect(errorOf(() => readTeampassInstall(withDefine('DB_PORT', 'define("DB_PORT", "70000");'))).message).toContain('DB_PORT in ');
      expect(errorOf(() => readTeampassInstall(withDefine('DB_PORT', 'define("DB_PORT", true);'))).message).toContain('must be a string, not boolean');
      expect(errorOf(() => readTeampassInstall(withDefine('DB_HOST', 'define("DB_HOST", "p:db.local");'))).message).toContain('is not a host name or IP address');
      expect(errorOf(() => readTeampassInstall(withDefine('DB_USER', 'define("DB_USER", "");'))).message).toContain('DB_USER in ');
      expect(errorOf(() => readTeampassInstall(withDefine('DB_PREFIX', 'define("DB_PREFIX", PREFIX);'))).message).toContain('give store.tablePrefix (--table-prefix) instead');
    });

    it('says so when DB_PASSWD is encrypted but SECUREFILE is not defined', () => {
      const dir = withDefine('SECUREFILE', null);
      expect(errorOf(() => readTeampassInstall(dir)).message).toContain('defines no SECUREFILE');
    });

    it('names the key file it could not read, and the fix', () => {
      const dir = copyTree();
      unlinkSync(join(dir, KEY_FILE));
      expect(errorOf(() => readTeampassInstall(dir)).message).toBe(
        `DB_PASSWD in ${join(dir, SETTINGS_PHP)} is Defuse-encrypted, but its key file named by SECUREFILE cannot be read: ${join(dir, KEY_FILE)} (ENOENT: no such file); tp-ws's user must be able to read it, or give store.password or store.passwordFile instead`,
      );
    });

    it('refuses a corrupted key file without quoting it', () => {
      const dir = copyTree();
      writeFileSync(join(dir, KEY_FILE), KEY_TEXT.replace(/.$/, (c) => (c === '0' ? '1' : '0')));
      expect(errorOf(() => readTeampassInstall(dir)).message).toBe(
        `the Defuse key file ${join(dir, KEY_FILE)} (SECUREFILE in ${join(dir, SETTINGS_PHP)}): Defuse key is corrupted: its checksum does not match; restore TeamPass's key file`,
      );
    });

    it('says DB_PASSWD does not decrypt with another valid key, quoting neither', () => {
      const dir = copyTree();
      const vectors = JSON.parse(readFileSync(join(FIXTURE, 'defuse-vectors.json'), 'utf8')) as { key_ascii_safe: string }[];
      const other = vectors.map((v) => v.key_ascii_safe).find((k) => k !== KEY_TEXT) as string;
      writeFileSync(join(dir, KEY_FILE), `${other}\n`);
      const err = errorOf(() => readTeampassInstall(dir));
      expect(err.message).toBe(
        `DB_PASSWD in ${join(dir, SETTINGS_PHP)} (line 5) does not decrypt with the key file ${join(dir, KEY_FILE)}: wrong key or modified ciphertext (the HMAC does not match); is it the key this TeamPass was installed with? Else give store.password or store.passwordFile instead`,
      );
      expect(err.message).not.toContain(other);
    });
  });

  describe('websocket.php', () => {
    it('is optional: without it only settings.php counts', () => {
      const dir = copyTree();
      unlinkSync(join(dir, WEBSOCKET_PHP));
      const install = readTeampassInstall(dir);
      expect(install.websocketFile).toBeNull();
      expect([...install.values.keys()]).toEqual(['store.url', 'store.password', 'store.tablePrefix']);
    });

    it('turns TeamPass log levels into tp-ws ones and passes unknown ones on for the schema to refuse', () => {
      for (const [teampass, tpws] of [['debug', 'debug'], ['info', 'info'], ['warning', 'warn'], ['error', 'error'], ['WARNING', 'warn'], ['verbose', 'verbose']]) {
        expect(valuesOf(withWebsocketPhp(`<?php return ['log_level' => '${teampass}'];`))['log.level'], teampass).toBe(tpws);
      }
    });

    it('ignores, with the reason, values that are no literal, null values and keys it does not know', () => {
      const dir = withWebsocketPhp(`<?php
return [
    'host' => getenv('WS_HOST') ?: '0.0.0.0',
    'port' => null,
    'ping_interval_sec' => 15,
    'ssl_cert' => '/etc/cert.pem',
];`);
      const install = readTeampassInstall(dir);
      expect(install.values.get('heartbeat.pingIntervalSec')?.value).toBe(15);
      expect(install.values.has('server.host')).toBe(false);
      expect(install.values.has('server.port')).toBe(false);
      const ws = install.ignored.filter((i) => i.file === join(dir, WEBSOCKET_PHP));
      expect(ws.map((i) => [i.name, i.line, i.reason])).toEqual([
        ['host', 3, 'an expression, not a literal: tp-ws reads websocket.php without running PHP; the server.host from elsewhere (or its default) applies'],
        ['port', 4, "null: the server.port from elsewhere (or its default) applies, as TeamPass's ?? fallback does"],
        ['ssl_cert', 6, "not a setting of TeamPass's websocket.php that tp-ws knows"],
      ]);
    });

    it('passes values on as PHP holds them, for the schema to check against its rules', () => {
      expect(valuesOf(withWebsocketPhp("<?php return ['port' => '9000', 'max_message_size' => 1.5, 'host' => true];"))).toMatchObject({
        'server.port': '9000',
        'limits.maxMessageBytes': 1.5,
        'server.host': true,
      });
    });

    it('refuses a websocket.php that returns no array, naming it and the fix', () => {
      const dir = withWebsocketPhp('<?php\n$config = ["port" => 8080];\n');
      expect(errorOf(() => readTeampassInstall(dir)).message).toBe(
        `${join(dir, WEBSOCKET_PHP)} does not return an array literal (return [ 'host' => '127.0.0.1', 'port' => 8080, ... ];) as TeamPass's websocket.php does; fix it, or remove it to use the defaults`,
      );
    });

    it('says when websocket.php exists but cannot be read', () => {
      const dir = copyTree();
      unlinkSync(join(dir, WEBSOCKET_PHP));
      mkdirSync(join(dir, WEBSOCKET_PHP));
      expect(errorOf(() => readTeampassInstall(dir)).message).toBe(
        `cannot read TeamPass's ${join(dir, WEBSOCKET_PHP)} (EISDIR: it is a directory): tp-ws's user must be able to read it, or remove it to use the defaults`,
      );
    });
  });
});
