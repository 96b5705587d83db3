import type { Config } from '../config/schema.js';
import { Daemon, type ConfigSource } from '../daemon.js';
import { loadDefaults, type LoadedConfig } from '../config/load.js';
import { redactStoreUrl } from '../store/store-url.js';
import { VERSION } from '../version.js';

/** A word for a POSIX shell: as is when it is safe, else single-quoted. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_\/.:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The commands the banner suggests, with every flag a second terminal needs
 * to reach this daemon: the state directory holding the development JWT
 * secret, the port and host of the listener, the ingest socket — each only
 * where it differs from what the command finds by itself (its defaults, from
 * a shell without this daemon's TPWS_* variables). A test runs them as printed.
 */
export function bannerCommands(cfg: Readonly<Config>, wsPort: number, socketPath: string | null, env: NodeJS.ProcessEnv = process.env): { tail: string; token: string; emit: string | null } {
  const dflt = loadDefaults(env);
  const client: string[] = [];
  if (cfg.stateDir !== dflt.stateDir) client.push('--state-dir', shellWord(cfg.stateDir));
  if (cfg.server.host !== dflt.server.host) client.push('--host', shellWord(cfg.server.host));
  if (wsPort !== dflt.server.port) client.push('--port', String(wsPort));
  const tokenFlags = cfg.stateDir !== dflt.stateDir ? ` --state-dir ${shellWord(cfg.stateDir)}` : '';
  const socketFlag = socketPath !== null && socketPath !== dflt.ingest.socket ? ` --socket ${shellWord(socketPath)}` : '';
  return {
    tail: ['npx tp-ws tail --user 1', ...client].join(' '),
    token: `npx tp-ws token --user 1${tokenFlags}`,
    emit: socketPath === null ? null : `npx tp-ws-emit hello --user 1 --payload '{"text":"hi"}'${socketFlag}`,
  };
}

export interface ServeOptions {
  /** Load the configuration again, from the same sources (SIGHUP). */
  reload?: () => LoadedConfig;
}

function configSource(loaded: LoadedConfig): ConfigSource {
  return { file: loaded.file, teampassRoot: loaded.teampass?.root ?? null };
}

/**
 * `tp-ws serve`: run the daemon until SIGTERM/SIGINT; SIGHUP reloads the
 * configuration (docs/operations.md §Reloading). Logs are NDJSON on stdout;
 * a short human banner on stderr tells a newcomer how to connect.
 */
export async function runServe(loaded: LoadedConfig, opts: ServeOptions = {}): Promise<void> {
  const cfg = loaded.config;
  // A SIGHUP's default action ends the process: until the daemon is up (and its reload handler set,
  // before the banner says it is), one is ignored rather than fatal.
  let onHup = (): void => {};
  process.on('SIGHUP', () => onHup());
  const daemon = await Daemon.start({ config: cfg, configSource: configSource(loaded) });
  if (loaded.teampass !== null) {
    const t = loaded.teampass;
    daemon.log.info({ root: t.root, settings: t.settingsFile, websocket: t.websocketFile }, 'configuration read from the TeamPass installation');
    for (const i of t.ignored) daemon.log.info({ file: i.file, setting: i.name, line: i.line, reason: i.reason }, 'TeamPass setting not taken');
  }
  // Signals are handled before the banner announces the daemon: a supervisor (or a test) that reacts
  // to the banner at once finds them in place.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      daemon.log.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    stopping = true;
    daemon.log.info({ signal }, 'signal received; shutting down');
    daemon.close().then(
      () => { daemon.log.flush(); process.exitCode = 0; },
      (err: unknown) => { daemon.log.error({ err }, 'shutdown failed'); process.exitCode = 1; },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  onHup = () => {
    if (opts.reload === undefined) return;
    let next: LoadedConfig;
    try {
      next = opts.reload();
    } catch (err) {
      daemon.log.error({ code: (err as { code?: string }).code, reason: (err as Error).message }, 'SIGHUP: the configuration is not valid; the running one is kept');
      return;
    }
    const r = daemon.reload(next.config, configSource(next));
    daemon.log.info({ applied: r.applied, restart_needed: r.restartNeeded }, r.restartNeeded.length === 0 ? 'SIGHUP: configuration reloaded' : 'SIGHUP: configuration reloaded; some changes need a restart');
  };
  const { ws, admin } = daemon.address;
  const host = ws.family === 'IPv6' ? `[${ws.address}]` : ws.address;
  const url = `ws://${host}:${ws.port}/ws`;
  const lines = [
    `tp-ws ${VERSION} listening on ${url}`,
    `  store:  ${redactStoreUrl(cfg.store.url)}`,
    `  ingest: ${daemon.ingest ? daemon.ingest.path : 'disabled'}`,
    admin ? `  admin:  http://${admin.address}:${admin.port}/ (status page; /healthz, /readyz, /metrics)` : '  admin:  disabled',
  ];
  if (daemon.jwtKey?.source === 'development') {
    const cmd = bannerCommands(cfg, ws.port, daemon.ingest?.path ?? null);
    lines.push(
      '  connect a client (development JWT secret in the state directory):',
      `    ${cmd.tail}`,
      `    or: ${url}?token=$(${cmd.token})`,
    );
    if (cmd.emit !== null) lines.push('  send it an event:', `    ${cmd.emit}`);
  }
  process.stderr.write(lines.join('\n') + '\n');

  process.on('uncaughtException', (err) => {
    daemon.log.fatal({ err }, 'uncaught exception; exiting');
    daemon.log.flush();
    process.exit(1);
  });
}
