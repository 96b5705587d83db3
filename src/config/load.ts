/**
 * Loads the tp-ws configuration: defaults < TeamPass install (when
 * `teampass.root` is set) < JSON config file < `TPWS_*` environment < CLI
 * flags, every value parsed and validated against `SCHEMA`, then
 * deep-frozen. Where each value came from is kept (`loadConfigWithOrigins`)
 * for errors and for `print-config --origins`.
 *
 * Errors name the key, where the value came from and the broken rule
 * (`in server.port (from --port): must be an integer from 0 to 65535`), the
 * way centrifugo's `validate.go` does. The value itself is quoted only for
 * keys that are not `secret`.
 */

import { isUtf8 } from 'node:buffer';
import { closeSync, openSync, readSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

import { TpWsError, isTpWsError } from '../errors.js';
import { parseStoreUrl, withoutStorePassword } from '../store/store-url.js';
import { readTeampassInstall, type TeampassInstall } from '../teampass/install.js';
import { SCHEMA, type Config, type KeySpec } from './schema.js';

/** Where configuration values come from; every field is optional. */
export interface ConfigSources {
  /** Path of a JSON config file (`--config FILE`); null or absent for none. */
  file?: string | null;
  /**
   * Environment read for `TPWS_*` keys and for the computed defaults
   * (`STATE_DIRECTORY`, `XDG_STATE_HOME`, `RUNTIME_DIRECTORY`, `HOME`).
   * Default: `process.env`.
   */
  env?: NodeJS.ProcessEnv;
  /**
   * Flag values keyed by the KeySpec `flag` name, kebab-case (`table-prefix`)
   * or camelCase as commander gives them (`tablePrefix`). `undefined` and
   * `null` mean "not given"; keys that are not config flags are ignored.
   */
  flags?: Record<string, unknown>;
}

/**
 * Where one value came from: the schema default (computed ones included), a
 * config file, an environment variable, a flag, or a TeamPass install's PHP
 * file (`from` names the PHP constant or key and its line).
 */
export type ConfigOrigin =
  | { readonly kind: 'default' }
  | { readonly kind: 'teampass'; readonly file: string; readonly from: string }
  | { readonly kind: 'file'; readonly file: string }
  | { readonly kind: 'env'; readonly name: string }
  | { readonly kind: 'flag'; readonly name: string };

type Origin = ConfigOrigin;

interface Resolved {
  value: unknown;
  origin: Origin;
}

/** What a TeamPass install contributed, without the values (the decrypted password stays in the config only). */
export type TeampassSummary = Omit<TeampassInstall, 'values'>;

/** A loaded configuration with the origin of every value. */
export interface LoadedConfig {
  /** The validated, deep-frozen configuration (what `loadConfig` returns). */
  readonly config: Readonly<Config>;
  /** Dotted key → where its value came from, for every schema key, in schema order. */
  readonly origins: ReadonlyMap<string, ConfigOrigin>;
  /** The TeamPass install read for `teampass.root` (files, ignored settings), or null when it is unset. */
  readonly teampass: TeampassSummary | null;
  /** The JSON config file read, or null. */
  readonly file: string | null;
}

/**
 * String keys where `""` is a meaningful value. `ingest.socket = ""` disables
 * the ingest socket; `store.tablePrefix = ""` is a TeamPass install created
 * without a table prefix (the schema's own rule allows 0 characters).
 */
const EMPTY_ALLOWED: ReadonlySet<string> = new Set(['ingest.socket', 'store.tablePrefix']);

const SPEC_BY_KEY: ReadonlyMap<string, KeySpec> = new Map(SCHEMA.map((s) => [s.key, s]));
const KEYS: readonly string[] = SCHEMA.map((s) => s.key);

/**
 * An origin in words, as errors and `print-config --origins` show it:
 * `default`, `config file PATH`, `TPWS_PORT`, `--port`, or
 * `TeamPass install /path/websocket.php ('port' line 6)`.
 */
export function describeOrigin(origin: ConfigOrigin): string {
  switch (origin.kind) {
    case 'default':
      return 'default';
    case 'teampass':
      return `TeamPass install ${origin.file} (${origin.from})`;
    case 'file':
      return `config file ${origin.file}`;
    case 'env':
      return origin.name;
    case 'flag':
      return `--${origin.name}`;
  }
}

/** Longest value or name quoted in an error: the message stays one readable line. */
const QUOTE_MAX = 60;

/**
 * A value as an error quotes it: JSON (so a newline is `\n`, not a line
 * break), cut at `QUOTE_MAX` characters; a value JSON cannot render (an
 * array nested too deep for it) is named by its type.
 */
function quote(raw: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(raw) ?? typeof raw;
  } catch {
    text = Array.isArray(raw) ? 'an array nested too deep to show' : typeof raw;
  }
  return text.length > QUOTE_MAX ? `${text.slice(0, QUOTE_MAX)}… (${text.length} characters)` : text;
}

/** A key name from a config file as an error shows it: as is when it is plain, else quoted. */
function keyName(path: string): string {
  return /^[A-Za-z0-9_.-]{1,80}$/.test(path) ? path : quote(path);
}

function invalid(spec: KeySpec, origin: Origin, rule: string, raw?: unknown): TpWsError {
  // A secret's value (JWT secret, MySQL URL with its password) never goes
  // into a message: messages end up in logs and terminals.
  const got = spec.secret || raw === undefined ? '' : ` (got ${quote(raw)})`;
  return new TpWsError('TPWS_ERR_CONFIG_INVALID', `in ${spec.key} (from ${describeOrigin(origin)}): ${rule}${got}`);
}

function intRule(spec: KeySpec): string {
  if (spec.min !== undefined && spec.max !== undefined) return `must be an integer from ${spec.min} to ${spec.max}`;
  if (spec.min !== undefined) return `must be an integer ≥ ${spec.min}`;
  if (spec.max !== undefined) return `must be an integer ≤ ${spec.max}`;
  return 'must be an integer';
}

const BOOL_WORDS: Readonly<Record<string, boolean>> = { true: true, false: false, 1: true, 0: false, yes: true, no: false };

/**
 * Turns one raw value (a string from env or flags, or any JSON value from the
 * file) into the typed value of `spec`, or throws naming the rule.
 * `null` from the file means "unset" and is allowed only where the default is
 * null; it is handled by the caller.
 */
function parseValue(spec: KeySpec, raw: unknown, origin: Origin): unknown {
  switch (spec.type) {
    case 'int': {
      let n: number;
      if (typeof raw === 'number') {
        n = raw;
      } else if (typeof raw === 'string' && /^\s*[-+]?\d+\s*$/.test(raw)) {
        n = Number(raw.trim());
      } else {
        throw invalid(spec, origin, intRule(spec), raw);
      }
      if (!Number.isSafeInteger(n)) throw invalid(spec, origin, intRule(spec), raw);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw invalid(spec, origin, intRule(spec), raw);
      }
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const word = typeof raw === 'string' || typeof raw === 'number' ? String(raw).trim().toLowerCase() : undefined;
      if (word !== undefined && Object.hasOwn(BOOL_WORDS, word)) return BOOL_WORDS[word];
      throw invalid(spec, origin, 'must be a boolean: true, false, 1, 0, yes or no', raw);
    }
    case 'list': {
      let items: string[];
      if (typeof raw === 'string') {
        items = raw.split(',');
      } else if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) {
        items = raw as string[];
      } else {
        throw invalid(spec, origin, 'must be a comma-separated string or a JSON array of strings', raw);
      }
      return items.map((s) => s.trim()).filter((s) => s !== '');
    }
    case 'enum': {
      const values = spec.values ?? [];
      if (typeof raw === 'string' && values.includes(raw.trim())) return raw.trim();
      throw invalid(spec, origin, `must be one of ${values.join(', ')}`, raw);
    }
    case 'mode': {
      // Octal digits only, as chmod takes them. A JSON number is refused: 660
      // and 0o660 (= 432) would both be plausible readings of it.
      const rule = 'must be an octal file mode from 0000 to 0777 given as a string, e.g. "0660"';
      if (typeof raw !== 'string' || !/^\s*[0-7]{1,4}\s*$/.test(raw)) throw invalid(spec, origin, rule, raw);
      const mode = Number.parseInt(raw.trim(), 8);
      if (mode > 0o777) throw invalid(spec, origin, rule, raw);
      return `0${mode.toString(8).padStart(3, '0')}`;
    }
    case 'string': {
      if (typeof raw !== 'string') throw invalid(spec, origin, 'must be a string', raw);
      if (raw === '' && !EMPTY_ALLOWED.has(spec.key)) throw invalid(spec, origin, 'must not be empty');
      return raw;
    }
  }
}

/** Levenshtein distance, for "did you mean" hints on unknown names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** Unknown keys listed in one error (a file of thousands still gives one short line). */
const UNKNOWN_SHOWN = 5;

function suggest(name: string, candidates: readonly string[]): string {
  // Names are at most ~40 characters: a long one is no typo of them (and costs length × 40 per key).
  if (name.length > 80) return '';
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(name, c);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 4)) ? ` (did you mean ${best}?)` : '';
}

/** `{"a":{"b":…}}` for `a.b`, for the hint on dotted names in the file. */
function nestedExample(path: string): string {
  return path.split('.').reduceRight((inner, part) => `{"${part}":${inner}}`, '…');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Largest config file read. A complete one is a few KiB; the bound keeps a
 * wrong `--config` (a log file, a disk image, `/dev/zero`) from being read
 * into memory whole.
 */
const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/** Up to `max + 1` bytes of `file` (more than `max` means too large); reads pipes and devices too. */
function readBounded(file: string, max: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(max + 1);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * Where the first byte that is not UTF-8 is, as `line L, byte B`: the first
 * U+FFFD of the decoded text that the file does not spell as EF BF BD.
 */
function firstBadByte(bytes: Buffer, decoded: string): string {
  for (let i = decoded.indexOf('\uFFFD'); i >= 0; i = decoded.indexOf('\uFFFD', i + 1)) {
    const before = decoded.slice(0, i);
    const off = Buffer.byteLength(before);
    if (bytes[off] !== 0xef || bytes[off + 1] !== 0xbf || bytes[off + 2] !== 0xbd) return `line ${before.split('\n').length}, byte ${off + 1}`;
  }
  return `${bytes.length} bytes`;
}

/**
 * Reads the JSON config file into a flat dotted map. Unknown keys (and
 * sections that are not objects) are rejected, all at once, so a typo does
 * not silently fall back to a default.
 */
function readConfigFile(file: string): Map<string, unknown> {
  let bytes: Buffer;
  try {
    bytes = readBounded(file, MAX_CONFIG_FILE_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new TpWsError('TPWS_ERR_CONFIG_FILE', `cannot read config file ${file}: ${code}`, { cause: err });
  }
  if (bytes.length > MAX_CONFIG_FILE_BYTES) {
    throw new TpWsError('TPWS_ERR_CONFIG_FILE', `config file ${file} is larger than ${MAX_CONFIG_FILE_BYTES / 1024} KiB: not a tp-ws config file (did --config name the wrong file?)`);
  }
  // Decoding would turn bytes that are not UTF-8 into U+FFFD inside a string value (a
  // secret, a path) and load a value nobody wrote: refuse the file, naming where.
  const decoded = bytes.toString('utf8');
  if (!isUtf8(bytes)) throw new TpWsError('TPWS_ERR_CONFIG_FILE', `config file ${file} is not valid UTF-8 (${firstBadByte(bytes, decoded)})`);
  // A byte-order mark (some Windows editors write one) is not part of the JSON.
  const text = decoded.replace(/^\uFEFF/, '');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    // V8 quotes the offending text ("…" is not valid JSON), which may be a
    // secret: keep only the parser's description and locate it ourselves.
    const msg = String((err as Error).message).replace(/, ".*" is not valid JSON$/s, '');
    const pos = /at position (\d+)/.exec(msg);
    let where = '';
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      where = ` (line ${line}, column ${before.length - before.lastIndexOf('\n')})`;
    }
    throw new TpWsError('TPWS_ERR_CONFIG_FILE', `config file ${file} is not valid JSON: ${msg.replace(/ (in JSON )?at position \d+.*$/s, '')}${where}`);
  }
  if (!isPlainObject(data)) {
    throw new TpWsError('TPWS_ERR_CONFIG_FILE', `config file ${file} must hold a JSON object such as {"server":{"port":8080}}`);
  }

  const flat = new Map<string, unknown>();
  // Described only for the ones the error shows: a hint costs a distance to every key name.
  const unknown: (() => string)[] = [];
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [name, value] of Object.entries(obj)) {
      const path = prefix + name;
      if (name.includes('.')) {
        // One spelling only: a dotted name next to its nested twin would
        // leave it unclear which one wins.
        unknown.push(() => `${keyName(path)} (write it nested: ${nestedExample(keyName(path))})`);
      } else if (SPEC_BY_KEY.has(path)) {
        flat.set(path, value);
      } else if (SCHEMA.some((s) => s.key.startsWith(`${path}.`))) {
        if (!isPlainObject(value)) {
          throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in ${path} (from config file ${file}): must be an object of ${path}.* keys`);
        }
        walk(value, `${path}.`);
      } else {
        unknown.push(() => keyName(path) + suggest(path, KEYS));
      }
    }
  };
  walk(data, '');
  if (unknown.length > 0) {
    throw new TpWsError(
      'TPWS_ERR_CONFIG_INVALID',
      `in config file ${file}: unknown key${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, UNKNOWN_SHOWN).map((describe) => describe()).join(', ')}${unknown.length > UNKNOWN_SHOWN ? ` and ${unknown.length - UNKNOWN_SHOWN} more` : ''}`,
    );
  }
  return flat;
}

function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** First entry of a colon-separated list of paths, as systemd sets them. */
function firstPath(value: string | undefined): string | undefined {
  return value?.split(':').find((p) => p !== '');
}

/** The state directory used when none is configured. */
function defaultStateDir(env: NodeJS.ProcessEnv): string {
  const systemd = firstPath(env.STATE_DIRECTORY);
  if (systemd !== undefined) return resolve(systemd);
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_STATE_HOME;
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'tp-ws');
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir();
  return join(home, '.local', 'state', 'tp-ws');
}

/** Sets `value` at the dotted `key` path of `target`, creating sections. */
function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let obj = target;
  for (const part of parts.slice(0, -1)) {
    obj = (obj[part] ??= {}) as Record<string, unknown>;
  }
  obj[parts[parts.length - 1]] = value;
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Builds the configuration from defaults, a JSON file, the environment and
 * flags (later sources win), validates every key and the cross-key rules,
 * and returns a deep-frozen `Config`. Same as
 * `loadConfigWithOrigins(sources).config`, which documents the TeamPass layer.
 *
 * Computed defaults: `stateDir` = `$STATE_DIRECTORY` (first path) else
 * `$XDG_STATE_HOME/tp-ws` else `~/.local/state/tp-ws`; `store.url` =
 * `sqlite:<stateDir>/tp-ws.db`; `ingest.socket` =
 * `$RUNTIME_DIRECTORY/ingest.sock` else `<stateDir>/ingest.sock`. A relative
 * `stateDir` is resolved against the current directory.
 *
 * @param sources - file path, environment (default `process.env`) and flags
 * @returns the validated, frozen configuration
 * @throws TpWsError `TPWS_ERR_CONFIG_FILE` when the file cannot be read or is
 *   not a JSON object; `TPWS_ERR_CONFIG_INVALID` naming the key, its source
 *   and the rule for any bad value or unknown file key;
 *   `TPWS_ERR_TEAMPASS_CONFIG` when `teampass.root` is set and its files
 *   cannot be read
 */
export function loadConfig(sources: ConfigSources = {}): Readonly<Config> {
  return loadConfigWithOrigins(sources).config;
}

/**
 * Reads the TeamPass install named by the explicitly given `teampass.root`,
 * deriving only the store settings that were not given explicitly: the
 * store URL and its password are one unit (a `store.url` given drops both;
 * a `store.password` or `store.passwordFile` given drops the derived
 * password), so a password is never paired with a URL it was not meant for.
 */
function readTeampassLayer(explicit: ReadonlyMap<string, Resolved>): TeampassInstall | null {
  const root = explicit.get('teampass.root');
  if (root === undefined || root.value === null) return null;
  root.value = resolve(root.value as string);
  // A null from the config file means "unset" (print-config writes one for
  // every unset key), so it neither drops nor replaces a derived value.
  const given = (key: string): boolean => (explicit.get(key)?.value ?? null) !== null;
  const storeUrl = !given('store.url');
  const storePassword = storeUrl && !given('store.password') && !given('store.passwordFile');
  try {
    return readTeampassInstall(root.value as string, { storeUrl, storePassword });
  } catch (err) {
    if (!isTpWsError(err)) throw err;
    throw new TpWsError(err.code, `in teampass.root (from ${describeOrigin(root.origin)}): ${err.message}`, { cause: err });
  }
}

/**
 * `loadConfig`, also returning where each value came from and what a
 * TeamPass install contributed.
 *
 * When `teampass.root` is set (config file, `TPWS_TEAMPASS_ROOT` or
 * `--teampass-root`; resolved first, against the working directory), the
 * values read from that TeamPass install (`src/teampass/install.ts`) come
 * between the defaults and the config file: the file, the environment and
 * flags win over them (a `null` in the file is "unset" and does not). They
 * are validated by the same rules, and errors
 * name their PHP file as the origin. When `limits.maxMessageBytes` comes
 * from TeamPass above the default `limits.maxFrameBytes`, the frame limit
 * is raised to match (TeamPass has one limit; a valid TeamPass value must
 * not fail tp-ws's rule between the two).
 *
 * @param sources - file path, environment (default `process.env`) and flags
 * @returns the frozen configuration, the origin of every key, and a summary
 *   of the TeamPass install (null without `teampass.root`)
 * @throws TpWsError as `loadConfig`
 */
export function loadConfigWithOrigins(sources: ConfigSources = {}): LoadedConfig {
  const env = sources.env ?? process.env;
  const flags = sources.flags ?? {};
  const fileValues = sources.file !== undefined && sources.file !== null ? readConfigFile(sources.file) : new Map<string, unknown>();

  // Values given explicitly (file < env < flag), before any default.
  const explicit = new Map<string, Resolved>();
  for (const spec of SCHEMA) {
    let r: Resolved | undefined;
    if (fileValues.has(spec.key)) {
      const origin: Origin = { kind: 'file', file: sources.file as string };
      const raw = fileValues.get(spec.key);
      if (raw === null) {
        if (spec.default !== null) throw invalid(spec, origin, 'must not be null (remove the key to use the default)');
        r = { value: null, origin };
      } else {
        r = { value: parseValue(spec, raw, origin), origin };
      }
    }

    const envRaw = env[spec.env];
    if (envRaw !== undefined) {
      const origin: Origin = { kind: 'env', name: spec.env };
      r = { value: parseValue(spec, envRaw, origin), origin };
    }

    if (spec.flag !== undefined) {
      const flagRaw = flags[spec.flag] ?? flags[camelCase(spec.flag)];
      if (flagRaw !== undefined && flagRaw !== null) {
        const origin: Origin = { kind: 'flag', name: spec.flag };
        r = { value: parseValue(spec, flagRaw, origin), origin };
      }
    }
    if (r !== undefined) explicit.set(spec.key, r);
  }

  const install = readTeampassLayer(explicit);

  const resolved = new Map<string, Resolved>();
  for (const spec of SCHEMA) {
    let r = explicit.get(spec.key);
    const fromTeampass = install?.values.get(spec.key);
    if ((r === undefined || r.value === null) && fromTeampass !== undefined) {
      const origin: Origin = { kind: 'teampass', file: fromTeampass.file, from: fromTeampass.from };
      r = { value: parseValue(spec, fromTeampass.value, origin), origin };
    }
    // Copy array defaults: the result is frozen and must not freeze SCHEMA.
    r ??= { value: Array.isArray(spec.default) ? [...(spec.default as readonly string[])] : spec.default, origin: { kind: 'default' } };
    resolved.set(spec.key, r);
  }

  const message = resolved.get('limits.maxMessageBytes') as Resolved;
  const frame = resolved.get('limits.maxFrameBytes') as Resolved;
  if (message.origin.kind === 'teampass' && frame.origin.kind === 'default' && (message.value as number) > (frame.value as number)) {
    resolved.set('limits.maxFrameBytes', { value: message.value, origin: { ...message.origin, from: `${message.origin.from}, raised to match limits.maxMessageBytes` } });
  }

  // Computed defaults, in dependency order: stateDir feeds the other two.
  const stateDir = resolved.get('stateDir') as Resolved;
  stateDir.value = stateDir.value === null ? defaultStateDir(env) : resolve(stateDir.value as string);
  const dir = stateDir.value as string;
  const storeUrl = resolved.get('store.url') as Resolved;
  if (storeUrl.value === null) storeUrl.value = `sqlite:${join(dir, 'tp-ws.db')}`;
  const socket = resolved.get('ingest.socket') as Resolved;
  if (socket.value === null) {
    const runtime = firstPath(env.RUNTIME_DIRECTORY);
    socket.value = join(runtime ?? dir, 'ingest.sock');
  }

  // Defaults are the schema's own values and pass their rules (a unit test
  // holds them to it), so only given values are checked: a short-lived
  // command such as tp-ws-emit then pays for no check it did not ask for.
  for (const spec of SCHEMA) {
    const r = resolved.get(spec.key) as Resolved;
    if (r.value === null || spec.check === undefined || r.origin.kind === 'default') continue;
    const broken = spec.check(r.value);
    if (broken !== null) throw invalid(spec, r.origin, broken, r.value);
  }

  checkCrossKeys(resolved);

  const cfg: Record<string, unknown> = {};
  const origins = new Map<string, ConfigOrigin>();
  for (const spec of SCHEMA) {
    const r = resolved.get(spec.key) as Resolved;
    setPath(cfg, spec.key, r.value);
    origins.set(spec.key, r.origin);
  }
  let teampass: TeampassSummary | null = null;
  if (install !== null) {
    const { values: _values, ...summary } = install;
    teampass = deepFreeze({ ...summary, ignored: [...summary.ignored] });
  }
  return { config: deepFreeze(cfg as unknown as Config), origins, teampass, file: sources.file ?? null };
}

/** Environment variables that computed defaults read (`stateDir`, `store.url`, `ingest.socket`). */
const DEFAULTS_ENV = ['STATE_DIRECTORY', 'XDG_STATE_HOME', 'RUNTIME_DIRECTORY', 'HOME'] as const;

/**
 * The configuration with no file, no `TPWS_*` variable and no flag: the
 * schema's defaults, with the computed ones (state directory, socket path)
 * still following the systemd and XDG variables of `env`, since they say
 * where this process would put things.
 *
 * @param env - environment to take the systemd/XDG/HOME variables from
 */
export function loadDefaults(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const kept: NodeJS.ProcessEnv = {};
  for (const name of DEFAULTS_ENV) if (env[name] !== undefined) kept[name] = env[name];
  return loadConfig({ file: null, env: kept, flags: {} });
}

/** Rules that involve two keys; the message names both and their sources. */
function checkCrossKeys(resolved: ReadonlyMap<string, Resolved>): void {
  const get = (key: string): Resolved => resolved.get(key) as Resolved;
  const spec = (key: string): KeySpec => SPEC_BY_KEY.get(key) as KeySpec;
  const from = (key: string): string => describeOrigin(get(key).origin);

  const msg = get('limits.maxMessageBytes');
  const frame = get('limits.maxFrameBytes');
  if ((frame.value as number) < (msg.value as number)) {
    throw invalid(
      spec('limits.maxFrameBytes'),
      frame.origin,
      `must be ≥ limits.maxMessageBytes (${msg.value as number} from ${from('limits.maxMessageBytes')})`,
      frame.value,
    );
  }

  const ping = get('heartbeat.pingIntervalSec');
  const pong = get('heartbeat.pongTimeoutSec');
  if ((pong.value as number) < (ping.value as number)) {
    throw invalid(
      spec('heartbeat.pongTimeoutSec'),
      pong.origin,
      `must be ≥ heartbeat.pingIntervalSec (${ping.value as number} from ${from('heartbeat.pingIntervalSec')})`,
      pong.value,
    );
  }

  const password = get('store.password');
  const passwordFile = get('store.passwordFile');
  if (password.value !== null && passwordFile.value !== null) {
    throw new TpWsError(
      'TPWS_ERR_CONFIG_INVALID',
      `in store.password (from ${from('store.password')}) and store.passwordFile (from ${from('store.passwordFile')}): set only one of them`,
    );
  }
  if (password.value !== null || passwordFile.value !== null) {
    const key = password.value !== null ? 'store.password' : 'store.passwordFile';
    const store = parseStoreUrl(get('store.url').value as string);
    if (store.kind !== 'mysql') {
      throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in ${key} (from ${from(key)}): only a mysql:// store.url takes a password`);
    }
    if (store.hasPassword) {
      throw new TpWsError('TPWS_ERR_CONFIG_INVALID', `in ${key} (from ${from(key)}) and store.url (from ${from('store.url')}): the password is given twice; keep one`);
    }
  }

  const secret = get('auth.jwt.secret');
  const secretFile = get('auth.jwt.secretFile');
  if (secret.value !== null && secretFile.value !== null) {
    throw new TpWsError(
      'TPWS_ERR_CONFIG_INVALID',
      `in auth.jwt.secret (from ${from('auth.jwt.secret')}) and auth.jwt.secretFile (from ${from('auth.jwt.secretFile')}): set only one of them`,
    );
  }
}

/**
 * `TPWS_*` variables of `env` that no schema key reads, each with a "did you
 * mean" hint when one is close. Used by `tp-ws check-config --strict`.
 *
 * @param env - the environment to scan
 * @returns the unknown names, sorted, hints included
 */
export function findUnknownEnv(env: NodeJS.ProcessEnv): string[] {
  const known = SCHEMA.map((s) => s.env);
  return Object.keys(env)
    .filter((name) => name.startsWith('TPWS_') && !known.includes(name))
    .sort()
    .map((name) => name + suggest(name, known));
}

/** The configuration as `print-config` shows it. */
export interface PrintableConfig {
  /** Dotted key → value, in schema order; withheld secrets are absent. */
  values: Map<string, unknown>;
  /** Keys left out because they are secret (and `store.url` when only its password was taken out). */
  withheld: string[];
}

/**
 * The configuration for `tp-ws print-config`, in schema order. Without
 * `showSecrets`, secret values that are set are withheld (absent, not
 * masked: printed output loads back as a config file or an environment
 * file, and a mask would load as a wrong value), except `store.url`, which
 * is kept with only the password of a `mysql://` URL taken out.
 *
 * @param cfg - a loaded configuration
 * @param opts.showSecrets - print secrets in clear (default false)
 */
export function configToPrintable(cfg: Config, opts: { showSecrets?: boolean } = {}): PrintableConfig {
  const values = new Map<string, unknown>();
  const withheld: string[] = [];
  for (const spec of SCHEMA) {
    let value: unknown = cfg;
    for (const part of spec.key.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
    if (value === undefined) value = null;
    if (spec.secret && !opts.showSecrets && value !== null && value !== '') {
      if (spec.key !== 'store.url') {
        withheld.push(spec.key);
        continue;
      }
      const stripped = withoutStorePassword(String(value));
      if (stripped !== null) {
        withheld.push(spec.key);
        value = stripped;
      }
    }
    values.set(spec.key, Array.isArray(value) ? [...value] : value);
  }
  return { values, withheld };
}

/** Nested object of dotted `values`, the shape of a `--config` file. */
export function toConfigFile(values: ReadonlyMap<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of values) setPath(out, key, value);
  return out;
}
