/**
 * Reliability: config files and CLI flags, random and mutated (issue #12,
 * fuzzing every input). In-process, hundreds of seeded cases go through
 * `loadConfig` (the one validating entry point of every command): each bad
 * value must be a TpWsError naming its key and source on one line, never
 * another exception, and random valid configs must load to what was written.
 * Then a seeded sample of the same cases, plus mutated flags, runs through
 * the real `tp-ws` and `tp-ws-emit` processes: one line on stderr, the
 * documented exit code (2), no stack trace, no daemon left running.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { loadConfig, type ConfigSources } from '../../src/config/load.js';
import { SCHEMA, type KeySpec } from '../../src/config/schema.js';
import { isTpWsError } from '../../src/errors.js';
import { cleanEnv } from '../helpers/doctor-cli.js';
import type { Random } from '../helpers/random.js';
import { scenarioNote, scenarioRandom, withSeed } from '../helpers/reliability.js';

const TP_WS = fileURLToPath(new URL('../../bin/tp-ws.js', import.meta.url));
const TP_WS_EMIT = fileURLToPath(new URL('../../bin/tp-ws-emit.js', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;

const tmp = mkdtempSync(join(tmpdir(), 'tpws-fuzz-config-'));
afterAll(() => {
  try { chmodSync(join(tmp, 'unreadable.json'), 0o600); } catch { /* not made (root) */ }
  rmSync(tmp, { recursive: true, force: true });
});
const ENV: NodeJS.ProcessEnv = { HOME: tmp };
const rng = scenarioRandom();

let files = 0;
function file(content: string | Buffer): string {
  const path = join(tmp, `c${++files}.json`);
  writeFileSync(path, content);
  return path;
}

/** A config file nested from dotted `values` (the shape `--config` takes). */
function nested(values: ReadonlyMap<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of values) {
    const parts = key.split('.');
    let o = out;
    for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
    o[parts[parts.length - 1]] = value;
  }
  return out;
}

/** What loading gave: the config, or the error's code and message (anything but a TpWsError is rethrown). */
type Outcome = { ok: true; cfg: ReturnType<typeof loadConfig> } | { ok: false; code: string; message: string };
function attempt(sources: ConfigSources): Outcome {
  try {
    return { ok: true, cfg: loadConfig({ flags: {}, ...sources, env: { ...ENV, ...sources.env } }) };
  } catch (err) {
    if (!isTpWsError(err)) throw new Error(`loadConfig threw a non-tp-ws error (${String(err)}) for ${JSON.stringify(sources).slice(0, 300)}`, { cause: err });
    return { ok: false, code: err.code, message: err.message };
  }
}

/** One line, short enough to read, no stack. */
function expectOneLine(message: string, context: string): void {
  expect(message, context).not.toMatch(/\n/);
  expect(message.length, `${context}: ${message.slice(0, 200)}…`).toBeLessThan(600);
}

/** Stands for a 50,000-deep array, written into the file as text (JSON.stringify cannot nest that deep). */
const DEEP = '\u0000deep';
const DEEP_TEXT = `${'['.repeat(50_000)}1${']'.repeat(50_000)}`;
function jsonText(data: unknown): string {
  return JSON.stringify(data).replace(JSON.stringify(DEEP), DEEP_TEXT);
}

/** A value `spec`'s own rules refuse, whatever the other keys hold. */
function badValue(spec: KeySpec, rng: Random): unknown {
  const common: unknown[] = [{}, [{ a: 1 }]];
  if (spec.default !== null) common.push(null);
  const typed: Record<KeySpec['type'], unknown[]> = {
    int: ['abc', '12x', '', '1e3', '0x10', 'line\nbreak', 1.5, true, (spec.min ?? 0) - 1, (spec.max ?? 0) + 1, 2 ** 53, -(2 ** 60), 'x'.repeat(100_000), DEEP],
    bool: ['maybe', 2, -1, 'truee', '', [true]],
    list: [5, true, [1, 2], ['a', null]],
    enum: ['nope', 3, 'INFO', '', [spec.values?.[0]]],
    mode: [660, '0999', 'rwx', '07777', '', '0o660'],
    string: [5, true, ['a'], ...(['ingest.socket', 'store.tablePrefix'].includes(spec.key) ? [] : [''])],
  };
  const checked: Record<string, unknown[]> = {
    'server.trustedProxies': [['1.2.3'], ['127.0.0.1', 'proxy.local'], '10.0.0.1,not-an-ip'],
    'auth.methods': [[], '', ['php-session'], 'jwt,ldap'],
    'auth.jwt.algorithms': [['HS512'], 'none'],
    'store.tablePrefix': ['bad-prefix', 'x'.repeat(33), 'drop table;'],
    'store.url': ['ftp://u:SECRETPW@host/db', 'mysql://u:SECRETPW@host', 'mysql://', 'sqlite:', 'postgres://u:SECRETPW@h/db'],
    'auth.jwt.secret': ['short', 'x'.repeat(31)],
  };
  return rng.pick([...common, ...typed[spec.type], ...(checked[spec.key] ?? [])]);
}

const OCTAL = '01234567';
const IPS = ['127.0.0.1', '::1', '10.1.2.3', '192.168.0.254', '2001:db8::7', '::ffff:10.0.0.1'];
const TEXT = ['a', 'é', 'ünïcödé', '"quoted"', 'back\\slash', '日本', '🙂', 'with space', '-dash', '$HOME'];

/** A value every rule of `spec` accepts, and what the loaded config holds for it (undefined: not compared). */
function goodValue(spec: KeySpec, rng: Random): { raw: unknown; expected?: unknown } {
  switch (spec.type) {
    case 'int': {
      const lo = spec.min ?? 0;
      const hi = spec.max ?? 1_000_000;
      const n = rng.pick([lo, hi, rng.int(lo, Math.min(hi, lo + 1000)), rng.int(lo, hi)]);
      return rng.chance(0.3) ? { raw: ` ${n} `, expected: n } : { raw: n, expected: n };
    }
    case 'bool': {
      const raw = rng.pick<unknown>([true, false, 'yes', 'no', 'TRUE', '0', 1, 0]);
      return { raw, expected: [true, 'yes', 'TRUE', 1].includes(raw as never) };
    }
    case 'enum': {
      const v = rng.pick(spec.values ?? []);
      return { raw: rng.chance(0.2) ? ` ${v}` : v, expected: v };
    }
    case 'mode': {
      const digits = Array.from({ length: 3 }, () => OCTAL[rng.int(0, 7)]).join('');
      return { raw: rng.chance(0.5) ? `0${digits}` : digits, expected: `0${digits}` };
    }
    case 'list': {
      const pool = spec.key === 'server.trustedProxies' ? IPS : spec.key === 'auth.methods' ? ['teampass-token', 'jwt'] : spec.key === 'auth.jwt.algorithms' ? ['HS256', 'RS256', 'ES256'] : TEXT;
      const items = pool.filter(() => rng.chance(0.5));
      if (items.length === 0) items.push(pool[0]);
      return { raw: rng.chance(0.5) ? items : items.join(' , '), expected: items };
    }
    case 'string': {
      switch (spec.key) {
        case 'store.tablePrefix': {
          const v = Array.from({ length: rng.int(0, 32) }, () => rng.pick([...'abcXYZ019_'])).join('');
          return { raw: v, expected: v };
        }
        case 'store.url': return { raw: `sqlite:${join(tmp, `s${rng.int(1, 99)}.db`)}` };
        case 'auth.jwt.secret': return { raw: Array.from({ length: rng.int(32, 80) }, () => rng.pick(TEXT)).join('') };
        case 'stateDir': case 'teampass.root': case 'ingest.socket': return { raw: join(tmp, 'state') };
        default: {
          const v = Array.from({ length: rng.int(1, 6) }, () => rng.pick(TEXT)).join('');
          return { raw: v, expected: v };
        }
      }
    }
  }
}

/** Keys a random valid config leaves out: a TeamPass root must exist; a password needs a MySQL URL (one of the two secrets). */
const NOT_RANDOM = new Set(['teampass.root', 'store.password', 'store.passwordFile', 'auth.jwt.secretFile', 'auth.jwt.publicKeyFile']);

/** A random valid set of values (cross-key rules kept), with what each should load as. */
function validValues(rng: Random): { values: Map<string, unknown>; expected: Map<string, unknown> } {
  const values = new Map<string, unknown>();
  const expected = new Map<string, unknown>();
  for (const spec of SCHEMA) {
    if (NOT_RANDOM.has(spec.key) || !rng.chance(0.4)) continue;
    if (spec.default === null && rng.chance(0.15)) {
      values.set(spec.key, null);
      continue;
    }
    const { raw, expected: e } = goodValue(spec, rng);
    values.set(spec.key, raw);
    if (e !== undefined) expected.set(spec.key, e);
  }
  // limits.maxFrameBytes ≥ limits.maxMessageBytes, heartbeat.pongTimeoutSec ≥ heartbeat.pingIntervalSec.
  for (const [low, high] of [['limits.maxMessageBytes', 'limits.maxFrameBytes'], ['heartbeat.pingIntervalSec', 'heartbeat.pongTimeoutSec']]) {
    const spec = SCHEMA.find((s) => s.key === high)!;
    const lowValue = (expected.get(low) as number | undefined) ?? (SCHEMA.find((s) => s.key === low)!.default as number);
    const highValue = (expected.get(high) as number | undefined) ?? (spec.default as number);
    if (highValue < lowValue) {
      const v = Math.min(spec.max!, lowValue);
      values.set(high, v);
      expected.set(high, v);
      if (v < lowValue) { values.set(low, v); expected.set(low, v); }
    }
  }
  return { values, expected };
}

function configValue(cfg: unknown, key: string): unknown {
  return key.split('.').reduce((o, k) => (o as Record<string, unknown>)[k], cfg);
}

/** `bin ARGS` to its end, with a clean environment; killed (and reported) if still running after 20 s. */
function runBin(bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [bin, ...args], { env: cleanEnv(ENV), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; if (c.pid !== undefined) process.kill(c.pid, 'SIGKILL'); }, 20_000);
    c.stdout!.on('data', (b) => (stdout += b));
    c.stderr!.on('data', (b) => (stderr += b));
    c.on('error', reject);
    c.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, timedOut }); });
  });
}

/** A bad config file and the key (or file-level word) its error must name. */
interface BadFile { path: string; names: string; code: 'TPWS_ERR_CONFIG_INVALID' | 'TPWS_ERR_CONFIG_FILE' }

describe('config and CLI fuzzing', () => {
  const badFiles: BadFile[] = [];
  const counts = { wrongValue: 0, unknownKey: 0, envFlag: 0, fileLevel: 0, mutated: 0, mutatedLoaded: 0, valid: 0, cli: 0 };

  it('every bad value in a config file, the environment or a flag is one line naming its key and source', () => withSeed(rng, async () => {
    for (let i = 0; i < 400; i++) {
      const { values } = validValues(rng);
      const spec = rng.pick(SCHEMA);
      const bad = badValue(spec, rng);
      values.set(spec.key, bad);
      const path = file(jsonText(nested(values)));
      const r = attempt({ file: path });
      const context = `${spec.key} = ${JSON.stringify(bad)?.slice(0, 80)}`;
      expect(r.ok, context).toBe(false);
      if (r.ok) continue;
      expect(r.code, context).toBe('TPWS_ERR_CONFIG_INVALID');
      expect(r.message, context).toContain(`in ${spec.key} (from config file ${path})`);
      expectOneLine(r.message, context);
      // A secret is never quoted: neither the password in a store URL nor a JWT secret.
      if (spec.secret && typeof bad === 'string') expect(r.message, `${spec.key} is secret`).not.toContain(bad.includes('SECRETPW') ? 'SECRETPW' : bad.length >= 20 ? bad : '\u0000');
      if (i % 20 === 0) badFiles.push({ path, names: spec.key, code: 'TPWS_ERR_CONFIG_INVALID' });
      counts.wrongValue++;
    }
    // Unknown keys at the top, inside a section, dotted, and a section that is not an object.
    for (let i = 0; i < 60; i++) {
      const { values } = validValues(rng);
      const section = rng.pick(['server', 'limits', 'auth', 'auth.jwt', 'ingest', 'poller']);
      const kind = rng.pick(['typo', 'top', 'dotted', 'scalar-section', 'odd-name', 'many']);
      const data = nested(values);
      let names: string;
      if (kind === 'typo') {
        const key = rng.pick(SCHEMA.filter((s) => s.key.startsWith(`${section}.`))).key;
        names = `${key.slice(0, -1)}X`;
        values.set(names, 1);
      } else if (kind === 'top') {
        names = `unknown${rng.int(1, 999)}`;
        values.set(names, 'x');
      } else if (kind === 'odd-name') {
        const name = rng.pick(['line\nbreak', 'tab\there', 'x'.repeat(50_000), '\u0000nul', 'é😀']);
        values.set(name, 1);
        names = JSON.stringify(name).slice(0, 20);
      } else if (kind === 'many') {
        for (let k = 0; k < 5000; k++) values.set(`junk${k}`, k);
        names = 'and 4995 more';
      } else if (kind === 'dotted') {
        names = `${section}.${rng.pick(['port', 'x'])}`;
        (data as Record<string, unknown>)[names] = 1;
      } else {
        names = section;
        values.clear();
        values.set(section, rng.pick<unknown>([1, 'x', [], true]));
      }
      const text = kind === 'dotted' ? JSON.stringify(data) : JSON.stringify(nested(values));
      const path = file(text);
      const r = attempt({ file: path });
      expect(r.ok, `${kind} ${names}`).toBe(false);
      if (r.ok) continue;
      expect(r.code).toBe('TPWS_ERR_CONFIG_INVALID');
      expect(r.message, `${kind} ${names}`).toContain(names);
      expectOneLine(r.message, names);
      if (i % 15 === 0) badFiles.push({ path, names, code: 'TPWS_ERR_CONFIG_INVALID' });
      counts.unknownKey++;
    }
    // The same rules from TPWS_* variables and flags (strings only there).
    for (let i = 0; i < 150; i++) {
      const spec = rng.pick(SCHEMA.filter((s) => s.type !== 'string' || s.check !== undefined));
      const bad = badValue(spec, rng);
      // The environment and flags give strings; a list key also takes an array's items joined.
      if (!(typeof bad === 'string' || (spec.type === 'list' && Array.isArray(bad))) || bad === DEEP) continue;
      const raw = Array.isArray(bad) ? bad.join(',') : bad;
      // A list from a string drops empty items: "," and "" are an empty list, which only auth.methods refuses.
      if (spec.type === 'list' && raw.split(',').every((s) => s.trim() === '') && spec.key !== 'auth.methods') continue;
      if (raw === '' && spec.type === 'list' && spec.key !== 'auth.methods') continue;
      const viaFlag = spec.flag !== undefined && rng.chance(0.5);
      const r = attempt(viaFlag ? { flags: { [spec.flag!]: raw } } : { env: { [spec.env]: raw } });
      const context = `${viaFlag ? `--${spec.flag}` : spec.env} = ${JSON.stringify(raw).slice(0, 80)}`;
      expect(r.ok, context).toBe(false);
      if (r.ok) continue;
      expect(r.message, context).toContain(`in ${spec.key} (from ${viaFlag ? `--${spec.flag}` : spec.env})`);
      expectOneLine(r.message, context);
      counts.envFlag++;
    }
  }));

  it('files that are not config files at all are refused with TPWS_ERR_CONFIG_FILE, without reading them whole', () => withSeed(rng, async () => {
    const dir = join(tmp, 'a-directory');
    mkdirSync(dir);
    const sparse = join(tmp, 'sparse.json');
    writeFileSync(sparse, '{');
    truncateSync(sparse, 3 * 1024 ** 3); // 3 GiB, no disk: the loader read it whole before
    const loop = join(tmp, 'loop.json');
    symlinkSync(loop, loop);
    const cases: [string, string, RegExp][] = [
      ['empty file', file(''), /is not valid JSON/],
      ['whitespace', file(' \n\t '), /is not valid JSON/],
      ['array', file('[{"server":{"port":1}}]'), /must hold a JSON object/],
      ['number', file('8080'), /must hold a JSON object/],
      ['null', file('null'), /must hold a JSON object/],
      ['string', file('"{}"'), /must hold a JSON object/],
      ['a directory', dir, /cannot read config file .*: EISDIR/],
      ['missing', join(tmp, 'missing.json'), /cannot read config file .*: ENOENT/],
      ['through a file', join(file('{}'), 'x.json'), /cannot read config file .*: ENOTDIR/],
      ['symlink loop', loop, /cannot read config file .*: ELOOP/],
      ['invalid UTF-8 in a value', file(Buffer.concat([Buffer.from('{"server":\n{"host":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')])), /is not valid UTF-8 \(line 2, byte 22\)/],
      ['Latin-1 secret', file(Buffer.concat([Buffer.from('{"auth":{"jwt":{"secret":"'), Buffer.from('s\xe9cret-'.repeat(8), 'latin1'), Buffer.from('"}}}')])), /is not valid UTF-8/],
      ['UTF-16', file(Buffer.from('\ufeff{"server":{"port":1}}', 'utf16le')), /is not valid UTF-8/],
      ['2 MiB of valid JSON', file(JSON.stringify({ auth: { jwt: { claimLogin: 'x'.repeat(2 * 1024 * 1024) } } })), /is larger than 1024 KiB/],
      ['3 GiB sparse file', sparse, /is larger than 1024 KiB/],
      ['/dev/zero', '/dev/zero', /is larger than 1024 KiB/],
    ];
    if (!IS_ROOT) {
      const unreadable = join(tmp, 'unreadable.json');
      writeFileSync(unreadable, '{}');
      chmodSync(unreadable, 0);
      cases.push(['unreadable', unreadable, /cannot read config file .*: EACCES/]);
    }
    for (const [what, path, re] of cases) {
      const r = attempt({ file: path });
      expect(r.ok, what).toBe(false);
      if (r.ok) continue;
      expect(r.code, what).toBe('TPWS_ERR_CONFIG_FILE');
      expect(r.message, what).toMatch(re);
      expectOneLine(r.message, what);
      counts.fileLevel++;
    }
    for (const [what, path] of cases.filter(([w]) => ['empty file', 'a directory', 'invalid UTF-8 in a value', '3 GiB sparse file', 'array'].includes(w))) {
      badFiles.push({ path, names: what === 'a directory' ? 'EISDIR' : path, code: 'TPWS_ERR_CONFIG_FILE' });
    }
    // A byte-order mark is not an error (Windows editors write one).
    const bom = attempt({ file: file(`\ufeff${JSON.stringify({ server: { port: 1234 } })}`) });
    expect(bom.ok && bom.cfg.server.port).toBe(1234);

    // Mutated valid files: truncated (never valid JSON) or with random bytes changed, inserted or
    // removed (anything may come out): loading gives a config or a tp-ws error, nothing else.
    for (let i = 0; i < 300; i++) {
      const text = Buffer.from(JSON.stringify(nested(validValues(rng).values)));
      let bytes: Buffer;
      if (rng.chance(0.3)) {
        bytes = text.subarray(0, rng.int(0, text.length - 1));
      } else {
        const b = [...text];
        for (let m = rng.int(1, 4); m > 0; m--) {
          const at = rng.int(0, b.length - 1);
          const byte = rng.pick([rng.int(0, 255), ...Buffer.from('{}[]",:0-.e\\ ntf')]);
          const op = rng.int(0, 2);
          if (op === 0) b[at] = byte;
          else if (op === 1) b.splice(at, 0, byte);
          else b.splice(at, 1);
        }
        bytes = Buffer.from(b);
      }
      const r = attempt({ file: file(bytes) });
      if (r.ok) counts.mutatedLoaded++;
      else expectOneLine(r.message, bytes.toString('latin1').slice(0, 100));
      counts.mutated++;
    }
  }));

  it('random valid config files load to the values written', () => withSeed(rng, async () => {
    for (let i = 0; i < 200; i++) {
      const { values, expected } = validValues(rng);
      const r = attempt({ file: file(JSON.stringify(nested(values))) });
      if (!r.ok) throw new Error(`valid config refused: ${r.message}\n${JSON.stringify(nested(values))}`);
      for (const [key, value] of expected) expect(configValue(r.cfg, key), key).toEqual(value);
      counts.valid++;
    }
  }));

  it('the CLI ends every bad config file and flag with one line and exit 2, and never starts the daemon', () => withSeed(rng, async () => {
    const state = ['--state-dir', join(tmp, 'cli-state'), '--socket', ''];
    const sample = <T,>(items: T[], n: number): T[] => Array.from({ length: n }, () => rng.pick(items));
    type Case = { bin: string; args: string[]; names: string; prefix: RegExp };
    const TPWS = /^TPWS_ERR_CONFIG_(INVALID|FILE): /;
    const cases: Case[] = [];
    for (const f of sample(badFiles, 5)) {
      const cmd = rng.pick(['serve', 'check-config', 'serve', 'migrate']);
      const extra = cmd === 'serve' ? ['--port', '0', '--admin-port', '-1'] : [];
      cases.push({ bin: TP_WS, args: [cmd, '--config', f.path, ...extra, '--state-dir', join(tmp, 'cli-state')], names: f.names, prefix: new RegExp(`^${f.code}: `) });
    }
    const flagged = SCHEMA.filter((s) => s.flag !== undefined && (s.type !== 'string' || s.check !== undefined));
    for (const spec of sample(flagged, 3)) {
      let bad = badValue(spec, rng);
      if (typeof bad !== 'string' || bad === '' || bad === DEEP || bad.length > 1000) bad = spec.type === 'list' ? '300.1.1.1' : 'not-valid!';
      cases.push({ bin: TP_WS, args: ['serve', '--port', '0', '--admin-port', '-1', ...state, `--${spec.flag}`, bad as string], names: `in ${spec.key} (from --${spec.flag})`, prefix: TPWS });
    }
    const commands = ['serve', 'token', 'tail', 'replay', 'status', 'check-config', 'print-config', 'migrate', 'doctor'];
    for (let i = 0; i < 4; i++) {
      const cmd = rng.pick(commands);
      const flag = rng.pick(['--prot', '--state_dir', '--confg', '-x', '--user-id', '--folder']);
      cases.push({ bin: TP_WS, args: [cmd, ...state, flag], names: flag, prefix: TPWS });
    }
    for (const cmd of sample(commands, 1)) cases.push({ bin: TP_WS, args: [cmd, ...state, '--port'], names: '--port', prefix: TPWS });
    cases.push(rng.chance(0.5)
      ? { bin: TP_WS, args: ['serve', ...state, 'extra'], names: 'too many arguments', prefix: TPWS }
      : { bin: TP_WS, args: ['config', 'check'], names: "unknown command 'config'", prefix: TPWS });
    for (const [flag, value] of sample([['--user', 'abc'], ['--user', '0'], ['--ttl', '-5'], ['--folders', '1,x']], 1)) {
      cases.push({ bin: TP_WS, args: [rng.pick(['token', 'tail']), ...state, '--user', '1', flag, value], names: `in ${flag}`, prefix: TPWS });
    }
    for (const [flag, value] of sample([['--since', 'yesterday'], ['--from-id', '-1'], ['--rate', 'fast'], ['--target', 'group:1'], ['--status', 'done']], 2)) {
      cases.push({ bin: TP_WS, args: ['replay', ...state, flag, value], names: `in ${flag}`, prefix: TPWS });
    }
    cases.push({ bin: TP_WS, args: ['status', '--url', rng.pick(['foo', 'ftp://x', ''])], names: 'in --url', prefix: TPWS });
    const emitFlags: [string[], string][] = [
      [['--bogus'], "'--bogus'"], [['x', '--user', 'abc'], '--user'], [['x', '--folder', '0'], '--folder'],
      [['x', '--user', '1', '--payload', '[1]'], '--payload'], [['x', '--user', '1', '--payload', '{'], '--payload'],
      [['x', '--user', '1', '--config', rng.pick(badFiles).path], 'TPWS_ERR_CONFIG'], [['x', '--user'], '--user'],
      [['x', '--user', '1', '--port', 'x'], '--port'],
    ];
    for (const [args, names] of sample(emitFlags, 3)) cases.push({ bin: TP_WS_EMIT, args, names, prefix: /^tp-ws-emit: invalid: TPWS_ERR_[A-Z_]+: / });

    const failures: string[] = [];
    for (let i = 0; i < cases.length; i += 5) {
      await Promise.all(cases.slice(i, i + 5).map(async (c) => {
        const r = await runBin(c.bin, c.args);
        const lines = (r.stderr + r.stdout).split('\n').filter((l) => l.trim() !== '');
        const what = `${c.bin === TP_WS ? 'tp-ws' : 'tp-ws-emit'} ${c.args.join(' ').slice(0, 200)} → exit ${r.code}: ${(r.stderr + r.stdout).slice(0, 400)}`;
        if (r.timedOut || r.code !== 2 || lines.length !== 1 || !c.prefix.test(lines[0]) || !lines[0].includes(c.names) || /listening on/.test(r.stderr)) failures.push(what);
        counts.cli++;
      }));
    }
    expect(failures).toEqual([]);
    scenarioNote('fuzz-config', `${counts.wrongValue} file configs with one bad value (every key, wrong types, out of range, null, 50,000-deep arrays, 100 KB strings), ${counts.unknownKey} unknown/dotted keys and non-object sections, ${counts.envFlag} bad TPWS_* variables and flags: each a one-line TPWS_ERR_CONFIG_INVALID naming key and source; ${counts.fileLevel} non-config files (empty, directory, ENOENT/ENOTDIR/ELOOP${IS_ROOT ? '' : '/EACCES'}, invalid UTF-8, UTF-16, 2 MiB, a 3 GiB sparse file, /dev/zero) refused with TPWS_ERR_CONFIG_FILE; ${counts.mutated} byte-mutated files (${counts.mutatedLoaded} still loaded) gave a config or a one-line tp-ws error, never another exception; ${counts.valid} random valid configs loaded as written; ${counts.cli} CLI runs (tp-ws serve/check-config/migrate/token/tail/replay/status/print-config/doctor, tp-ws-emit) with bad files and mutated flags: exit 2, one line naming the key or flag, no stack, no daemon`, rng.seed);
  }), 60_000);
});

