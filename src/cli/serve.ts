import type { Config } from '../config/schema.js';
import { Daemon } from '../daemon.js';
import { loadConfig } from '../config/load.js';
import { redactStoreUrl } from '../store/open-store.js';
import { VERSION } from '../version.js';

/**
 * `tp-ws serve`: run the daemon until SIGTERM/SIGINT. Logs are NDJSON on
 * stdout; a short human banner on stderr tells a newcomer how to connect.
 */
/** The socket path tp-ws-emit finds by itself (same computed default). */
function defaultSocket(cfg: Readonly<Config>): string {
  return loadConfig({ env: process.env }).ingest.socket === cfg.ingest.socket ? cfg.ingest.socket : '';
}

export async function runServe(cfg: Readonly<Config>): Promise<void> {
  const daemon = await Daemon.start({ config: cfg });
  const { ws, admin } = daemon.address;
  const host = ws.family === 'IPv6' ? `[${ws.address}]` : ws.address;
  const url = `ws://${host}:${ws.port}/ws`;
  const flags = cfg.server.port === 8080 ? '' : ` --port ${ws.port}`;
  const lines = [
    `tp-ws ${VERSION} listening on ${url}`,
    `  store:  ${redactStoreUrl(cfg.store.url)}`,
    `  ingest: ${daemon.ingest ? daemon.ingest.path : 'disabled'}`,
    admin ? `  admin:  http://${admin.address}:${admin.port}/healthz` : '  admin:  disabled',
  ];
  if (daemon.jwtKey?.source === 'development') {
    lines.push(
      '  connect a client (development JWT secret in the state directory):',
      `    npx tp-ws tail --user 1${flags}`,
      `    or: ${url}?token=$(npx tp-ws token --user 1)`,
      '  send it an event:',
      `    npx tp-ws-emit hello --user 1 --payload '{"text":"hi"}'${cfg.ingest.socket === defaultSocket(cfg) ? '' : ` --socket ${cfg.ingest.socket}`}`,
    );
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
