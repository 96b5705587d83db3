/**
 * Does TeamPass look for the daemon where tp-ws listens? TeamPass's PHP side
 * never reads `websocket.php`: its health check and dashboard probe connect
 * to misc `websocket_host:websocket_port`, and the browser URL is `/ws`
 * (through the web server's proxy) when that host is loopback, else
 * `ws://websocket_host:websocket_port` directly (reference §2.3, §7.1). When
 * the two disagree, the dashboard shows the daemon stopped while it runs,
 * or browsers cannot connect. This module only
 * decides and words the warning; the daemon logs it.
 */

import { isIP } from 'node:net';

/** The warning for a misc host/port that does not reach tp-ws's listener. */
export interface ListenAgreementWarning {
  /** One sentence saying what disagrees and what it breaks. */
  readonly message: string;
  /** misc `websocket_host`, as stored. */
  readonly misc_host: string;
  /** misc `websocket_port`, as stored. */
  readonly misc_port: string;
  /** Where tp-ws listens (`server.host`). */
  readonly host: string;
  /** The port tp-ws is bound to. */
  readonly port: number;
  /** What to change, on either side. */
  readonly fix: string;
}

/** The hosts TeamPass itself treats as loopback when it picks the browser URL (reference §7.1). */
const TEAMPASS_LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Lower case, no brackets, IPv4-mapped IPv6 as IPv4. */
function normalize(host: string): string {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null ? mapped[1] : h;
}

function isLoopbackAddress(h: string): boolean {
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/**
 * Whether a client connecting to `target` (misc `websocket_host`) reaches a
 * listener bound to `bound` (`server.host`). Stricter than "both are
 * loopback" on purpose: PHP's probe to `127.0.0.1` does not reach a
 * listener bound to `::1` only, nor one on `127.0.0.2`; `0.0.0.0` takes no
 * IPv6 client. `::` takes both families (Node listens dual-stack). A name
 * other than `localhost` is not resolved: it agrees with a wildcard
 * listener (IPv4 or both) or with the same name only.
 */
function reaches(target: string, bound: string): boolean {
  if (target === bound) return true;
  if (bound === '::') return true;
  const targetFamily = isIP(target); // 0 for a name
  if (bound === '0.0.0.0') return targetFamily !== 6;
  if (target === 'localhost') return isLoopbackAddress(bound);
  // A listener bound to "localhost" is on 127.0.0.1 or ::1 depending on the resolver: either loopback address may reach it.
  if (bound === 'localhost') return target === '127.0.0.1' || target === '::1';
  return false;
}

/**
 * Checks misc `websocket_host`/`websocket_port` against where tp-ws listens.
 *
 * - Either misc row missing (or empty) → null: not a TeamPass database, or
 *   the WebSocket feature was never set up.
 * - The port must be equal.
 * - A loopback misc host (`127.0.0.1`, `localhost`, `::1`: browsers go
 *   through the proxy at `/ws`, PHP probes that address) agrees when tp-ws
 *   listens on a loopback or wildcard address that a client of that address
 *   reaches (so `127.0.0.1` vs `::1` does not agree).
 * - Any other misc host (browsers use `ws://host:port` directly) agrees only
 *   when tp-ws listens on that address or on a wildcard (`0.0.0.0` takes no
 *   IPv6 address; `::` takes all). A host name is not resolved.
 *
 * @param getMisc - reads one misc value of type `admin` by key; null when the row is absent. Its rejection is passed on.
 * @param listen - `server.host` and the port tp-ws is bound to (the real one when `server.port` is 0)
 * @returns null when they agree (or there is nothing to compare), else the warning
 */
export async function checkListenAgreement(
  getMisc: (key: string) => Promise<string | null>,
  listen: { host: string; port: number },
): Promise<ListenAgreementWarning | null> {
  const [miscHost, miscPort] = await Promise.all([getMisc('websocket_host'), getMisc('websocket_port')]);
  if (miscHost === null || miscPort === null || miscHost.trim() === '' || miscPort.trim() === '') return null;

  const target = normalize(miscHost);
  const bound = normalize(listen.host);
  const portAgrees = /^\d{1,5}$/.test(miscPort.trim()) && Number(miscPort.trim()) === listen.port;
  const hostAgrees = reaches(target, bound);
  if (portAgrees && hostAgrees) return null;

  const loopback = TEAMPASS_LOOPBACK.has(target);
  const problems: string[] = [];
  const flags: string[] = [];
  const misc: string[] = [];
  if (!portAgrees) {
    problems.push(`TeamPass's websocket_port is ${JSON.stringify(miscPort)} but tp-ws listens on port ${listen.port}`);
    if (/^\d{1,5}$/.test(miscPort.trim())) flags.push(`--port ${Number(miscPort.trim())}`);
    misc.push(`websocket_port to ${listen.port}`);
  }
  if (!hostAgrees) {
    problems.push(`TeamPass's websocket_host is ${JSON.stringify(miscHost)} but tp-ws listens on ${listen.host}`);
    if (loopback) {
      flags.push(`--host ${target === 'localhost' ? '127.0.0.1' : target}`);
      // Pointing TeamPass at a non-loopback address would also move browsers
      // off the proxy: suggest it only between loopback addresses.
      if (isLoopbackAddress(bound)) misc.push(`websocket_host to ${listen.host}`);
      else if (bound === '0.0.0.0') misc.push('websocket_host to 127.0.0.1');
    } else {
      const named = isIP(target) === 0 ? ` (or the address ${miscHost.trim()} resolves to)` : '';
      flags.push(`--host ${isIP(target) === 6 ? '::' : '0.0.0.0'}${named}`);
      misc.push('websocket_host to 127.0.0.1 (browsers then connect through the web server\'s proxy at /ws)');
    }
  }
  const breaks = loopback
    ? 'TeamPass\'s dashboard probe and health check connect there, so they report the daemon stopped'
    : 'browsers connect there directly, and TeamPass\'s dashboard probe and health check too, so they cannot reach tp-ws';
  const fix = [
    flags.length > 0 ? `start tp-ws with ${flags.join(' ')}` : null,
    misc.length > 0 ? `set TeamPass's ${misc.join(' and ')}` : null,
  ].filter((x) => x !== null).join(', or ');
  return {
    message: `${problems.join('; ')}: ${breaks}`,
    misc_host: miscHost,
    misc_port: miscPort,
    host: listen.host,
    port: listen.port,
    fix: `${fix[0].toUpperCase()}${fix.slice(1)}`,
  };
}
