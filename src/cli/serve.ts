import type { Config } from '../config/schema.js';
import { Daemon } from '../daemon.js';
import { loadDefaults } from '../config/load.js';
import { redactStoreUrl } from '../store/open-store.js';
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

/**
 * `tp-ws serve`: run the daemon until SIGTERM/SIGINT. Logs are NDJSON on
 * stdout; a short human banner on stderr tells a newcomer how to connect.
 */
export async function runServe(cfg: Readonly<Config>): Promise<void> {
  const daemon = await Daemon.start({ config: cfg });
  const { ws, admin } = daemon.address;
  const host = ws.family === 'IPv6' ? `[${ws.address}]` : ws.address;
  const url = `ws://${host}:${ws.port}/ws`;
  const lines = [
    `tp-ws ${VERSION} listening on ${url}`,
    `  store:  ${redactStoreUrl(cfg.store.url)}`,
    `  ingest: ${daemon.ingest ? daemon.ingest.path : 'disabled'}`,
    admin ? `  admin:  http://${admin.address}:${admin.port}/healthz` : '  admin:  disabled',
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
  process.on('SIGHUP', () => daemon.log.warn('SIGHUP: configuration reload is not supported yet; restart to apply changes'));
  process.on('uncaughtException', (err) => {
    daemon.log.fatal({ err }, 'uncaught exception; exiting');
    daemon.log.flush();
    process.exit(1);
  });
}
