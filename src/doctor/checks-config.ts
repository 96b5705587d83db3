/**
 * Doctor check 1, `config`: the configuration loads by the rules `serve`
 * uses (defaults < TeamPass install < `--config` file < `TPWS_*` < flags),
 * no `TPWS_*` variable is misspelt, and what a TeamPass install gave and
 * what of it was left aside.
 */
import { describeOrigin, findUnknownEnv, type LoadedConfig } from '../config/load.js';
import { loadConfigWithOriginsFromCommand } from '../cli/config-commands.js';
import { shellWord } from '../cli/serve.js';
import { isTpWsError } from '../errors.js';
import { redactStoreUrl, withoutStorePassword } from '../store/store-url.js';
import { error, ok, warn, type Finding } from './finding.js';

/** What the config check found, and the configuration the other checks use (null when it did not load). */
export interface ConfigCheck {
  findings: Finding[];
  loaded: LoadedConfig | null;
}

const LOAD_FIXES: Readonly<Record<string, string>> = {
  TPWS_ERR_CONFIG_INVALID: 'fix the value where the message says it came from, then run `tp-ws check-config` with the same flags and environment',
  TPWS_ERR_CONFIG_FILE: 'check the --config path, that tp-ws\'s user may read it, and its JSON (`python3 -m json.tool FILE`)',
  TPWS_ERR_TEAMPASS_CONFIG: 'point --teampass-root (TPWS_TEAMPASS_ROOT) at TeamPass\'s directory (the one holding app/ and secrets/) and let tp-ws\'s user read app/config/settings.php and the secrets file, or give store.url with store.password or store.passwordFile instead',
  TPWS_ERR_STORE_URL: 'write store.url as sqlite:PATH or mysql://user@host:port/db (TPWS_STORE, --store)',
};

/**
 * Loads the configuration from a command's parsed options and environment.
 *
 * @param opts - `command.opts()` of `tp-ws doctor` (config flags; others are ignored)
 * @param env - the environment read for `TPWS_*` and the computed defaults
 */
export function checkConfig(opts: Record<string, unknown>, env: NodeJS.ProcessEnv): ConfigCheck {
  const findings: Finding[] = [];
  let loaded: LoadedConfig;
  try {
    loaded = loadConfigWithOriginsFromCommand(opts, env);
  } catch (err) {
    if (!isTpWsError(err)) throw err;
    findings.push(error('config', 'invalid', `the configuration does not load, so tp-ws serve would not start: ${err.code}: ${err.message}`, LOAD_FIXES[err.code] ?? 'fix the configuration as the message says'));
    return { findings, loaded: null };
  }

  const sources = new Set<string>();
  for (const origin of loaded.origins.values()) {
    if (origin.kind === 'file') sources.add(`config file ${origin.file}`);
    else if (origin.kind === 'env') sources.add(origin.name);
    else if (origin.kind === 'flag') sources.add(`--${origin.name}`);
  }
  if (loaded.teampass !== null) sources.add(`TeamPass install ${loaded.teampass.root}`);
  const from = sources.size === 0 ? 'defaults only' : [...sources].join(', ');
  findings.push(ok('config', 'loaded', `the configuration loads as tp-ws serve would load it (${from}); store ${redactStoreUrl(loaded.config.store.url)}`));

  const unknown = findUnknownEnv(env);
  if (unknown.length > 0) {
    const names = unknown.map((u) => u.split(' ')[0]);
    findings.push(warn(
      'config', 'unknown_env',
      `no setting reads the environment variable${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: ${unknown.length > 1 ? 'they are' : 'it is'} ignored, so the value meant there has no effect`,
      `rename or remove ${names.join(', ')} (\`unset ${names.join(' ')}\`; under systemd, in the unit's Environment= or EnvironmentFile=); the names are in docs/configuration.md`,
    ));
  }

  if (loaded.teampass !== null) {
    const taken: string[] = [];
    for (const [key, origin] of loaded.origins) {
      if (origin.kind !== 'teampass') continue;
      taken.push(`${key} (${describeOrigin(origin).replace(/^TeamPass install /, '')})`);
    }
    findings.push(ok(
      'config', 'teampass_read',
      taken.length > 0
        ? `read from the TeamPass install ${loaded.teampass.root}: ${taken.join('; ')}`
        : `the TeamPass install ${loaded.teampass.root} gave no value that is not set elsewhere`,
    ));
    if (loaded.teampass.ignored.length > 0) {
      const ignored = loaded.teampass.ignored.map((i) => `${i.name} (line ${i.line}): ${i.reason.replace(/`/g, '')}`);
      findings.push(ok('config', 'teampass_ignored', `TeamPass settings not taken: ${ignored.join('; ')}`));
    }
  }
  return { findings, loaded };
}

/** Keys whose flag a printed `tp-ws migrate` or `tp-ws serve` must repeat to reach the same store. */
const STORE_KEYS = ['stateDir', 'teampass.root', 'store.url', 'store.passwordFile', 'store.tablePrefix'] as const;

/**
 * The arguments that make another `tp-ws` command read the same store as
 * this run: `--config FILE` and the store flags that were given (the URL
 * without its password). `TPWS_*` variables are the shell's, so they carry
 * over by themselves. Empty when everything came from the environment or
 * the defaults.
 */
export function sameStoreArgs(loaded: LoadedConfig): string {
  const args: string[] = [];
  const files = new Set<string>();
  for (const origin of loaded.origins.values()) if (origin.kind === 'file') files.add(origin.file);
  for (const file of files) args.push('--config', shellWord(file));
  const cfg = loaded.config as unknown as Record<string, Record<string, unknown>> & { stateDir: string };
  for (const key of STORE_KEYS) {
    const origin = loaded.origins.get(key);
    if (origin?.kind !== 'flag') continue;
    let value: unknown = cfg;
    for (const part of key.split('.')) value = (value as Record<string, unknown>)[part];
    let text = String(value);
    if (key === 'store.url') text = withoutStorePassword(text) ?? text;
    args.push(`--${origin.name}`, shellWord(text));
  }
  return args.length === 0 ? '' : ` ${args.join(' ')}`;
}
