/**
 * Renders `docs/configuration.md` from `SCHEMA`, so the reference can never
 * disagree with the loader (centrifugo generates its config docs the same
 * way). `test/unit/docs-sync.test.ts` fails when the committed file drifts.
 *
 * The output is deterministic: no dates, no host paths.
 */

import { TpWsError, isTpWsError } from '../errors.js';
import { SECRETS_DIR, SETTINGS_PHP, SETTINGS_PHP_MAPPING, WEBSOCKET_PHP, WEBSOCKET_PHP_MAPPING, type TeampassMapping } from '../teampass/install.js';
import { loadConfig } from './load.js';
import { SCHEMA, type KeySpec } from './schema.js';

/** Section order of the reference, with a one-line lead for each. */
const SECTIONS: ReadonlyArray<readonly [string, string]> = [
  ['stateDir', 'Where tp-ws keeps its own files.'],
  ['server', 'The public WebSocket listener, the one nginx or Apache proxies `/ws` to.'],
  ['admin', 'The admin listener: `/healthz` and `/readyz`, off the public port.'],
  ['store', 'The database that holds the TeamPass-shaped tables (`<prefix>websocket_events`, tokens, users).'],
  ['log', 'JSON log lines on stdout, for journald.'],
  ['auth', 'How a WebSocket client proves who it is.'],
  ['limits', 'Per-socket, per-user and per-IP limits of the WebSocket gateway. The defaults are TeamPass 3.2\'s.'],
  ['heartbeat', 'Keeping idle sockets alive and dropping dead ones.'],
  ['shutdown', 'What SIGTERM does.'],
  ['ingest', 'The Unix socket where PHP pushes events.'],
  ['dedup', 'The window of event ids remembered so an event reaching the daemon twice is delivered once.'],
  ['journal', 'Socket events written back to the events table, so it holds the full history.'],
  ['poller', 'The table poller that drains rows with `processed = 0` from the events table.'],
  ['retention', 'Cleanup of old events and expired tokens.'],
  ['teampass', 'TeamPass-specific behaviour.'],
];

function section(key: string): string {
  return key.split('.')[0];
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function code(text: string): string {
  return `\`${text}\``;
}

/** `1048576` → `1048576` (1 MiB), for byte sizes only. */
function withUnit(spec: KeySpec, n: number): string {
  if (!/Bytes$/.test(spec.key) || n < 1024 || n % 1024 !== 0) return code(String(n));
  const mib = n / 1_048_576;
  return `${code(String(n))} (${Number.isInteger(mib) ? `${mib} MiB` : `${n / 1024} KiB`})`;
}

function formatDefault(spec: KeySpec): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc;
  const d = spec.default;
  if (d === null) return 'unset';
  if (typeof d === 'number') return withUnit(spec, d);
  if (typeof d === 'boolean') return code(String(d));
  if (typeof d === 'string') return d === '' ? '`""`' : code(d);
  return code(d.join(','));
}

function formatRule(spec: KeySpec): string {
  const parts: string[] = [];
  switch (spec.type) {
    case 'int':
      parts.push(spec.min !== undefined && spec.max !== undefined ? `Integer, ${spec.min} to ${spec.max}.` : 'Integer.');
      break;
    case 'bool':
      parts.push('Boolean.');
      break;
    case 'list':
      parts.push('List.');
      break;
    case 'enum':
      parts.push(`One of ${(spec.values ?? []).map(code).join(', ')}.`);
      break;
    case 'mode':
      parts.push('Octal mode, at most `0777`.');
      break;
    case 'string':
      parts.push('String.');
      break;
  }
  if (spec.secret) {
    parts.push(
      spec.key === 'store.url'
        ? 'Secret: never shown in errors; `print-config` prints it without its password.'
        : 'Secret: never shown in errors; `print-config` leaves it out.',
    );
  }
  return parts.join(' ');
}

function table(specs: readonly KeySpec[]): string {
  const rows = specs.map((s) =>
    [code(s.key), code(s.env), s.flag !== undefined ? code(`--${s.flag}`) : '', formatDefault(s), `${s.doc} ${formatRule(s)}`]
      .map(cell)
      .join(' | '),
  );
  return ['| key | env | flag | default | description |', '|---|---|---|---|---|', ...rows.map((r) => `| ${r} |`)].join('\n');
}

/** One mapping table of a TeamPass file: its setting, the tp-ws key it sets (or none) and how or why. */
function mappingTable(rows: readonly TeampassMapping[], php: string): string {
  const lines = rows.map((r) => [r.php.split(', ').map(code).join(', '), r.key === null ? 'not taken' : code(r.key), r.note].map(cell).join(' | '));
  return [`| ${php} | tp-ws key | how, or why not |`, '|---|---|---|', ...lines.map((l) => `| ${l} |`)].join('\n');
}

/** The real message for a bad `--port`, so the example cannot go stale. */
function sampleError(): string {
  try {
    loadConfig({ file: null, env: {}, flags: { port: '70000' } });
  } catch (err) {
    if (isTpWsError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
  throw new TpWsError('TPWS_ERR_INTERNAL', 'the configuration example is stale: --port 70000 was accepted');
}

const EXAMPLE_FILE = {
  server: { host: '127.0.0.1', port: 8080, trustedProxies: ['127.0.0.1', '::1'] },
  store: { url: 'mysql://teampass:secret@localhost:3306/teampass', tablePrefix: 'teampass_' },
  auth: { methods: ['teampass-token'] },
  ingest: { socketMode: '0660', socketGroup: 'www-data' },
  log: { level: 'info' },
};

/**
 * The full text of `docs/configuration.md`, generated from `SCHEMA`: how the
 * sources combine, the file format, value formats, cross-key rules, how
 * errors look, the `check-config`/`print-config` commands, then one table per
 * section (key, env, flag, default, description with the rule).
 *
 * @returns Markdown, ending with a newline; identical on every call
 */
export function renderConfigurationMarkdown(): string {
  const out: string[] = [];
  out.push(
    '# Configuration',
    '',
    '<!-- Generated from src/config/schema.ts: run `node bin/tp-ws.js print-config --markdown > docs/configuration.md`. Do not edit by hand. -->',
    '',
    'Every setting of the `tp-ws` daemon has a built-in default, a key in the JSON',
    'config file, a `TPWS_*` environment variable, and for the common ones a flag.',
    'Sources are applied in this order, and a later one wins:',
    '',
    '1. the built-in defaults listed below;',
    '2. the TeamPass installation named by `teampass.root` (`--teampass-root DIR`),',
    '   when it is set: see [Reading a TeamPass installation](#reading-a-teampass-installation);',
    '3. the JSON file given with `--config FILE`;',
    '4. `TPWS_*` environment variables (for example from a systemd `EnvironmentFile=`);',
    '5. command-line flags.',
    '',
    '## Config file',
    '',
    'The file holds one JSON object whose nesting follows the dotted keys:',
    '`server.port` is `{"server":{"port":8080}}`. Only the keys you set are',
    'needed. An unknown key is an error, so a typo cannot silently fall back to',
    'a default. `null` is accepted for keys whose default is unset. The file is',
    'UTF-8 (a byte-order mark is allowed) and at most 1 MiB; anything else is',
    'refused with `TPWS_ERR_CONFIG_FILE` (a byte that is not UTF-8 would otherwise',
    'load as U+FFFD inside a secret or a path).',
    '',
    '```json',
    JSON.stringify(EXAMPLE_FILE, null, 2),
    '```',
    '',
    'Keep a file that holds a MySQL password or a JWT secret readable by the',
    'daemon\'s user only, or use `store.passwordFile` and `auth.jwt.secretFile`.',
    '',
    '## Value formats',
    '',
    '- **Integer**: decimal digits, for example `8080`. `12abc` and `1.5` are refused. The allowed range is in each key\'s description.',
    '- **Boolean**: `true`, `false`, `1`, `0`, `yes` or `no` (JSON `true`/`false` in the file).',
    '- **List**: comma-separated in the environment and flags (`127.0.0.1,::1`),',
    '  spaces around items trimmed and empty items dropped; a JSON array of strings in the file.',
    '- **One of**: exactly one of the listed words.',
    '- **Octal mode**: a string of octal digits such as `0660` or `660`, at most `0777`. In the file it must be a string (`"0660"`).',
    '- **String**: any text. The empty string is refused, except for `ingest.socket`',
    '  (empty disables the ingest socket) and `store.tablePrefix` (tables without a prefix).',
    '- A relative `stateDir` is resolved against the working directory at start.',
    '',
    '## Rules between keys',
    '',
    '- `limits.maxFrameBytes` must be ≥ `limits.maxMessageBytes`.',
    '- `heartbeat.pongTimeoutSec` must be ≥ `heartbeat.pingIntervalSec`.',
    '- Set at most one of `auth.jwt.secret` and `auth.jwt.secretFile`.',
    '- Set at most one of `store.password` and `store.passwordFile`, only with a',
    '  `mysql://` `store.url`, and only when the URL holds no password.',
    '',
    '## Errors',
    '',
    'A bad value stops the daemon before it opens any socket. The message names',
    'the key, where the value came from (`default`, `config file PATH`, the',
    'environment variable, or the flag) and the rule it broke:',
    '',
    '```console',
    '$ tp-ws check-config --port 70000',
    sampleError(),
    '$ echo $?',
    '2',
    '```',
    '',
    'Values of secret keys are never quoted in errors. A config file that cannot',
    'be read or is not a JSON object gives `TPWS_ERR_CONFIG_FILE`; a TeamPass',
    'installation whose files cannot be read or used gives `TPWS_ERR_TEAMPASS_CONFIG`;',
    'every other configuration error is `TPWS_ERR_CONFIG_INVALID` (see [errors.md](errors.md)).',
    '',
    '## Reading a TeamPass installation',
    '',
    '`--teampass-root DIR` (`TPWS_TEAMPASS_ROOT`, `teampass.root` in the file) names',
    'TeamPass\'s installation directory, the one holding `app/` and `secrets/`. tp-ws',
    'then reads two of TeamPass\'s files in place, as TeamPass\'s own daemon does:',
    `\`${SETTINGS_PHP}\` (required) and \`${WEBSOCKET_PHP}\``,
    '(optional: without it the defaults apply, which are TeamPass\'s).',
    'It never runs PHP: it takes the literal values (strings,',
    'numbers, `true`, `false`) of the `define("NAME", value)` calls and of the',
    '`return [ \'key\' => value, … ];` array, and skips anything else, such as',
    '`__DIR__ . \'/../logs/websocket.log\'`.',
    '',
    mappingTable(SETTINGS_PHP_MAPPING, '`settings.php`'),
    '',
    mappingTable(WEBSOCKET_PHP_MAPPING, '`websocket.php`'),
    '',
    '- **Precedence**: the config file, `TPWS_*` variables and flags win over what is',
    '  read from TeamPass (a key set to `null` in the file counts as unset). The store URL and',
    '  its password are one unit: giving `store.url` drops both values read from',
    '  TeamPass; giving `store.password` or `store.passwordFile` drops the password',
    '  read from TeamPass and keeps its URL.',
    `- **The password**: a \`DB_PASSWD\` that starts with \`def\` is decrypted (Defuse v2) with the`,
    `  key file \`${SECRETS_DIR}/<SECUREFILE>\` of the installation directory (or`,
    '  `<SECUREPATH>/<SECUREFILE>` when `settings.php` defines `SECUREPATH` and the',
    '  first is missing), so tp-ws\'s user must be able to read that file and',
    '  `settings.php`. The password is decrypted in memory only: it is never logged,',
    '  quoted in an error or printed (`print-config` leaves it out even with',
    '  `--show-secrets`).',
    '- **Errors**: `DB_HOST`, `DB_USER`, `DB_NAME` and `DB_PASSWD` must be literal',
    '  `define`s (while tp-ws derives the store); a missing one, an unreadable file or a',
    '  key that does not decrypt `DB_PASSWD` stops tp-ws with `TPWS_ERR_TEAMPASS_CONFIG`',
    '  naming the file, the constant and the fix. A value read from TeamPass is checked',
    '  by the rules below; the error names its PHP file, the setting and its line:',
    '  `in server.port (from TeamPass install /var/www/html/TeamPass/app/websocket/config/websocket.php (\'port\' line 6)): must be an integer from 0 to 65535 (got 70000)`.',
    '- **`DB_HOST` `localhost`**: PHP\'s mysqli reaches `localhost` through the MySQL',
    '  server\'s Unix socket, tp-ws over TCP. If the server listens on its socket only,',
    '  give `store.url` with `?socket=PATH`, and the password through',
    '  `store.password` or `store.passwordFile`.',
    '- **Where each value came from**: `tp-ws print-config --teampass-root DIR --origins`',
    '  prints every key with its origin, for example',
    '  `(from TeamPass install …/websocket.php (\'port\' line 6))`, and then the',
    '  TeamPass settings that were not taken, with the reason.',
    '',
    '## Checking and printing',
    '',
    '- `tp-ws check-config [--config FILE] [flags]` loads the configuration as `serve`',
    '  would, prints `configuration OK` and exits 0, or prints the error and exits 2.',
    '  With `--strict` it also fails on `TPWS_*` environment variables that no key reads.',
    '- Every `tp-ws` command (`serve` too) stops on a bad configuration or flag before',
    '  doing anything, with one line on stderr and exit 2: `TPWS_ERR_CONFIG_INVALID`',
    '  naming the key or flag, `TPWS_ERR_CONFIG_FILE` for a config file that cannot',
    '  be read or is not a JSON object, and for a usage error (a flag the command does',
    '  not know, a flag without its value, an extra argument)',
    '  `TPWS_ERR_CONFIG_INVALID: unknown option \'--prot\' (see tp-ws serve --help)`.',
    '- `tp-ws print-config [--config FILE] [flags]` prints the resulting configuration:',
    '  `--json` (the default) as a config file that `--config` loads back unchanged,',
    '  `--env` as `TPWS_*=value` lines (an environment file), `--markdown` as this',
    '  document. `--defaults` ignores the file, the `TPWS_*` environment and the flags',
    '  (computed defaults still follow `STATE_DIRECTORY`, `XDG_STATE_HOME`,',
    '  `RUNTIME_DIRECTORY` and `HOME`). Secrets are printed only with',
    '  `--show-secrets`; otherwise they are left out (the password of `store.url`',
    '  too) and stderr names them, so the output loads back once they come from',
    '  the environment (`TPWS_JWT_SECRET`, `TPWS_STORE_PASSWORD`, …).',
    '  Values read from a TeamPass installation are left out of `--json` and `--env`',
    '  too: the printed `teampass.root` reads them again, so the output still loads',
    '  back to the same configuration. `--origins` prints one line per key,',
    '  `key = value   (from ORIGIN)`, where the origin is `default`, `config file PATH`,',
    '  the environment variable, the flag, or `TeamPass install FILE (SETTING line N)`.',
    '',
    '## Keys',
  );

  const known = new Set(SECTIONS.map(([name]) => name));
  const extra = [...new Set(SCHEMA.map((s) => section(s.key)))].filter((name) => !known.has(name));
  const sections: ReadonlyArray<readonly [string, string]> = [...SECTIONS, ...extra.map((name) => [name, ''] as const)];
  for (const [name, lead] of sections) {
    const specs = SCHEMA.filter((s) => section(s.key) === name);
    if (specs.length === 0) continue;
    out.push('', `### ${name}`, '');
    if (lead !== '') out.push(lead, '');
    out.push(table(specs));
  }
  out.push('');
  return out.join('\n');
}
