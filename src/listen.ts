/**
 * Binding a listener, with an error an operator can act on. The gateway, the
 * admin listener and the ingest socket all listen through here.
 */
import type { Server } from 'node:net';
import { TpWsError } from './errors.js';

/** What to bind, and the setting (key and flag) that chose it, for the error message. */
export type ListenTarget =
  | { host: string; port: number; setting: string; flag: string }
  | { path: string; setting: string; flag: string };

/**
 * `server.listen()` as a promise. Rejects with `TPWS_ERR_LISTEN` naming the
 * address, the setting and its flag, and what the system error means
 * (address in use, permission denied, address not on this machine).
 */
export function listen(server: Server, target: ListenTarget): Promise<void> {
  const where = 'path' in target ? `socket ${target.path}` : `${target.host}:${target.port}`;
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new TpWsError('TPWS_ERR_LISTEN', `cannot listen on ${where} (${target.setting}, ${target.flag}): ${explain(err, target)}`, { cause: err }));
    };
    server.once('error', onError);
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    if ('path' in target) server.listen(target.path, onListening);
    else server.listen(target.port, target.host, onListening);
  });
}

function explain(err: NodeJS.ErrnoException, target: ListenTarget): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return `address in use: another process listens there (another tp-ws, or TeamPass's own daemon?); stop it or choose another ${target.flag}`;
    case 'EACCES':
      return 'path' in target
        ? `permission denied: this user cannot create files in the socket's directory; choose another ${target.flag}`
        : `permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another ${target.flag}`;
    case 'EADDRNOTAVAIL':
      return `this machine has no such address; choose another ${target.flag === '--port' ? '--host' : target.flag === '--admin-port' ? '--admin-host' : target.flag}`;
    default:
      return `${err.code ?? 'error'}: ${err.message}`;
  }
}
