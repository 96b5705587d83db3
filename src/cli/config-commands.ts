/**
 * The configuration side of the `tp-ws` CLI: the flags every daemon command
 * shares (`addConfigOptions`), loading a config from parsed flags, and the
 * `check-config` and `print-config` commands (centrifugo `checkconfig` /
 * `defaultconfig`).
 *
 * Flags are plain strings with no commander defaults: a commander default
 * would always be "given" and so would shadow the file and the environment.
 * Parsing and validation are `loadConfig`'s job.
 */

import { Option, type Command } from 'commander';

import { renderConfigurationMarkdown } from '../config/docs.js';
import {
  configToPrintable,
  describeOrigin,
  findUnknownEnv,
  loadConfigWithOrigins,
  loadDefaults,
  toConfigFile,
  type ConfigOrigin,
  type LoadedConfig,
} from '../config/load.js';
import { SCHEMA, type Config, type KeySpec } from '../config/schema.js';
import { TpWsError, isTpWsError } from '../errors.js';

/** Value placeholders shown in `--help`; other flags fall back to their type. */
const PLACEHOLDERS: Readonly<Record<string, string>> = {
  port: 'n',
  'admin-port': 'n',
  host: 'addr',
  'admin-host': 'addr',
  socket: 'path',
  store: 'url',
  'table-prefix': 'prefix',
  'log-level': 'level',
  'state-dir': 'dir',
  'trusted-proxies': 'ips',
  auth: 'methods',
  'socket-mode': 'mode',
  'socket-group': 'group',
};

function helpDefault(spec: KeySpec): string {
  if (spec.defaultDoc !== undefined) return spec.defaultDoc.replace(/`/g, '');
  const d = spec.default;
  if (d === null) return 'unset';
  if (Array.isArray(d)) return d.join(',');
  return String(d);
}

function helpText(spec: KeySpec): string {
  const doc = spec.doc.replace(/`/g, '');
  const values = spec.type === 'enum' ? `; one of ${(spec.values ?? []).join(', ')}` : '';
  return `${doc} (env ${spec.env}; default: ${helpDefault(spec)}${values})`;
}

/**
 * Adds `--config <file>` and one string-valued option per schema key that has
 * a flag (`--port <n>`, `--store <url>`, …) to `cmd`, each with its one-line
 * doc, environment variable and default in the help text. No commander
 * defaults are set, so an absent flag never hides the file or environment.
 *
 * @param cmd - the command to extend
 * @returns `cmd`, for chaining
 */
export function addConfigOptions(cmd: Command): Command {
  cmd.option('--config <file>', 'JSON config file; keys are nested objects, e.g. {"server":{"port":8080}} (see docs/configuration.md)');
  for (const spec of SCHEMA) {
    if (spec.flag === undefined) continue;
    const placeholder = PLACEHOLDERS[spec.flag] ?? spec.type;
    cmd.addOption(new Option(`--${spec.flag} <${placeholder}>`, helpText(spec)));
  }
  return cmd;
}

/**
 * Loads the configuration from a command's parsed options: `opts.config` is
 * the file, config flags come from `opts` (camelCase as commander gives
 * them), anything else in `opts` is ignored.
 *
 * @param opts - `command.opts()`
 * @param env - environment to read (default `process.env`)
 * @throws TpWsError `TPWS_ERR_CONFIG_FILE` or `TPWS_ERR_CONFIG_INVALID`
 */
export function loadConfigFromCommand(opts: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  return loadConfigWithOriginsFromCommand(opts, env).config;
}

/**
 * `loadConfigFromCommand` with the origin of every value and the summary of
 * the TeamPass install (`loadConfigWithOrigins`).
 *
 * @param opts - `command.opts()`
 * @param env - environment to read (default `process.env`)
 * @throws TpWsError `TPWS_ERR_CONFIG_FILE`, `TPWS_ERR_CONFIG_INVALID` or `TPWS_ERR_TEAMPASS_CONFIG`
 */
export function loadConfigWithOriginsFromCommand(opts: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const file = typeof opts.config === 'string' ? opts.config : null;
  return loadConfigWithOrigins({ file, env, flags: opts });
}

/** Where the config commands read and write; tests pass their own. */
export interface ConfigCommandIo {
  /** Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Default: `process.stdout`. */
  stdout?: { write(chunk: string): unknown };
  /** Default: `process.stderr`. */
  stderr?: { write(chunk: string): unknown };
}

/** Shell- and systemd-`EnvironmentFile`-safe rendering of one value. */
function envLine(name: string, value: unknown): string {
  if (value === null) return `# ${name}=`;
  const text = Array.isArray(value) ? value.join(',') : String(value);
  if (/^[A-Za-z0-9_./:,@%+=-]*$/.test(text)) return `${name}=${text}`;
  return `${name}="${text.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
}

/** Lines wider than this are not padded to align the origins column. */
const ORIGIN_COLUMN_MAX = 60;

/**
 * `print-config --origins`: one line per key, `key = value   (from ORIGIN)`,
 * values as JSON; withheld secrets are named, not shown, and a secret read
 * from TeamPass (the decrypted `DB_PASSWD`) is never shown. The TeamPass
 * settings that were not taken follow as `#` comments, with the reason.
 */
function renderOrigins(loaded: LoadedConfig, showSecrets: boolean): string {
  const { values, withheld } = configToPrintable(loaded.config, { showSecrets });
  const rows = SCHEMA.map((spec) => {
    const origin = loaded.origins.get(spec.key) as ConfigOrigin;
    let shown: string;
    if (spec.secret && origin.kind === 'teampass' && spec.key !== 'store.url') shown = '(decrypted from TeamPass, never printed)';
    else if (!values.has(spec.key)) shown = '(secret, left out)';
    else shown = `${JSON.stringify(values.get(spec.key))}${withheld.includes(spec.key) ? ' (password left out)' : ''}`;
    return [`${spec.key} = ${shown}`, describeOrigin(origin)] as const;
  });
  const width = Math.min(ORIGIN_COLUMN_MAX, Math.max(...rows.map(([left]) => left.length)));
  const lines = rows.map(([left, from]) => `${left.padEnd(width)}   (from ${from})`);
  const ignored = loaded.teampass?.ignored ?? [];
  if (ignored.length > 0) {
    lines.push('# not taken from the TeamPass install:');
    for (const i of ignored) lines.push(`#   ${i.file} line ${i.line}: ${i.name}: ${i.reason.replace(/`/g, '')}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Registers `check-config` and `print-config` on `program`.
 *
 * - `check-config [config flags] [--strict]`: prints `configuration OK`, or
 *   the error on stderr with exit code 2. `--strict` also refuses `TPWS_*`
 *   variables that no key reads.
 * - `print-config [config flags] [--defaults] [--json|--env|--markdown|--origins]
 *   [--show-secrets]`: prints the resulting configuration (JSON by default),
 *   secrets redacted unless `--show-secrets`. Values read from a TeamPass
 *   install are left out of `--json` and `--env` (the printed
 *   `teampass.root` reads them again, so the output loads back to the same
 *   configuration); `--origins` shows every value with where it came from.
 *
 * Errors set `process.exitCode = 2` rather than exiting, so output is flushed.
 *
 * @param program - the root `tp-ws` command
 * @param io - environment and output streams (default: the process's)
 */
export function registerConfigCommands(program: Command, io: ConfigCommandIo = {}): void {
  const env = (): NodeJS.ProcessEnv => io.env ?? process.env;
  const out = (text: string): void => void (io.stdout ?? process.stdout).write(text);
  const fail = (err: unknown): void => {
    if (!isTpWsError(err)) throw err;
    (io.stderr ?? process.stderr).write(`${err.code}: ${err.message}\n`);
    process.exitCode = 2;
  };

  const check = program
    .command('check-config')
    .description('Validate the configuration (file, TPWS_* environment, flags) and exit 0, or print the error and exit 2');
  addConfigOptions(check)
    .option('--strict', 'also fail on TPWS_* environment variables that are not configuration keys')
    .action((opts: Record<string, unknown>) => {
      try {
        loadConfigFromCommand(opts, env());
        if (opts.strict === true) {
          const unknown = findUnknownEnv(env());
          if (unknown.length > 0) {
            throw new TpWsError(
              'TPWS_ERR_CONFIG_INVALID',
              `unknown environment variable${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (--strict)`,
            );
          }
        }
        out('configuration OK\n');
      } catch (err) {
        fail(err);
      }
    });

  const print = program
    .command('print-config')
    .description('Print the resulting configuration, in a form --config (or an environment file) loads back; secrets are left out unless --show-secrets');
  addConfigOptions(print)
    .option('--defaults', 'print the defaults only, ignoring the config file, TPWS_* environment and flags')
    .addOption(new Option('--json', 'print a JSON config file, as --config reads it (the default)').conflicts(['env', 'markdown', 'origins']))
    .addOption(new Option('--env', 'print TPWS_*=value lines, usable as a systemd EnvironmentFile').conflicts(['markdown', 'origins']))
    .addOption(new Option('--markdown', 'print the configuration reference (docs/configuration.md)').conflicts(['origins']))
    .option('--origins', 'print one line per key: key = value (from --flag | TPWS_* | config file | TeamPass install | default)')
    .option('--show-secrets', 'print secret values in clear (never the database password decrypted from TeamPass)')
    .action((opts: Record<string, unknown>) => {
      if (opts.markdown === true) {
        out(renderConfigurationMarkdown());
        return;
      }
      let loaded: LoadedConfig;
      try {
        if (opts.defaults === true) {
          const config = loadDefaults(env());
          loaded = { config, origins: new Map(SCHEMA.map((spec) => [spec.key, { kind: 'default' }])), teampass: null, file: null };
        } else {
          loaded = loadConfigWithOriginsFromCommand(opts, env());
        }
      } catch (err) {
        fail(err);
        return;
      }
      if (opts.origins === true) {
        out(renderOrigins(loaded, opts.showSecrets === true));
        return;
      }
      const { values, withheld: allWithheld } = configToPrintable(loaded.config, { showSecrets: opts.showSecrets === true });
      // Values read from TeamPass stay out: teampass.root, printed, reads
      // them again, and printing the store URL would make it explicit and so
      // drop the password TeamPass gives with it.
      const fromTeampass = SCHEMA.filter((spec) => loaded.origins.get(spec.key)?.kind === 'teampass').map((spec) => spec.key);
      for (const key of fromTeampass) values.delete(key);
      const withheld = allWithheld.filter((key) => !fromTeampass.includes(key));
      if (opts.env === true) {
        const lines = SCHEMA.map((spec) => {
          if (values.has(spec.key)) return envLine(spec.env, values.get(spec.key));
          return fromTeampass.includes(spec.key) ? `# ${spec.env}=  (read from the TeamPass install)` : `# ${spec.env}=  (secret, left out)`;
        });
        out(`${lines.join('\n')}\n`);
      } else {
        out(`${JSON.stringify(toConfigFile(values), null, 2)}\n`);
      }
      if (withheld.length > 0) {
        const names = withheld.map((k) => (k === 'store.url' ? 'the password of store.url' : k));
        (io.stderr ?? process.stderr).write(`print-config: left out ${names.join(', ')}: give ${withheld.length > 1 ? 'them' : 'it'} to the daemon through its environment (see docs/configuration.md), or print ${withheld.length > 1 ? 'them' : 'it'} with --show-secrets\n`);
      }
      if (fromTeampass.length > 0) {
        (io.stderr ?? process.stderr).write(`print-config: left out ${fromTeampass.join(', ')}: read from the TeamPass install ${loaded.teampass?.root ?? ''}, which teampass.root names in the output; see them with --origins\n`);
      }
    });
}
