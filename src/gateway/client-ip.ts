import { isIP } from 'node:net';

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else unchanged. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** Where a socket's client address came from. */
export interface ClientAddress {
  /** The client's address: forwarded by a trusted proxy, else the TCP peer. */
  ip: string;
  /**
   * True when the TCP peer is a trusted proxy that forwarded no client
   * address (no usable `X-Forwarded-For` or `X-Real-IP`): `ip` is then the
   * proxy's own, shared by every client behind it.
   */
  unforwarded: boolean;
  /** The header the address came from, or null for the TCP peer's own. */
  via: 'x-forwarded-for' | 'x-real-ip' | null;
}

/** Request headers, lower-case names; `x-forwarded-for` and `x-real-ip` are read. */
export type ForwardingHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * The client address of a request (docs/protocol.md §Client address).
 * Forwarding headers are believed only when the TCP peer is a trusted proxy:
 * `X-Forwarded-For` is walked from the right, skipping trusted hops, and the
 * first untrusted address is the client (a malformed entry stops the walk at
 * the last address known good); without a usable `X-Forwarded-For`,
 * `X-Real-IP` (what TeamPass's nginx example sets) is taken when it is one
 * valid address. When both are present and the last X-Forwarded-For hop is
 * not the X-Real-IP address, the proxy did not write X-Forwarded-For (the
 * client did): X-Real-IP is taken.
 */
export function clientAddress(peer: string | undefined, headers: ForwardingHeaders, trusted: ReadonlySet<string>): ClientAddress {
  const peerIp = normalizeIp(peer ?? '');
  if (!trusted.has(peerIp)) return { ip: peerIp, unforwarded: false, via: null };
  const real = headers['x-real-ip'];
  const realIp = typeof real === 'string' ? normalizeIp(real.trim()) : '';
  const xff = headers['x-forwarded-for'];
  // A proxy that sets X-Real-IP but does not write X-Forwarded-For (TeamPass's nginx
  // example) passes the client's own X-Forwarded-For through: its last hop is then not
  // the address the proxy saw, and only X-Real-IP can be believed.
  const xffIsClients = xff !== undefined && isIP(realIp) !== 0 && lastHop(xff) !== realIp;
  if (xff !== undefined && !xffIsClients) {
    const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((h) => h.trim()).filter((h) => h !== '');
    let ip: string | null = null;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeIp(hops[i]);
      if (isIP(hop) === 0) break;
      ip = hop;
      if (!trusted.has(hop)) break;
    }
    if (ip !== null) return { ip, unforwarded: false, via: 'x-forwarded-for' };
  }
  if (isIP(realIp) !== 0) return { ip: realIp, unforwarded: false, via: 'x-real-ip' };
  return { ip: peerIp, unforwarded: true, via: null };
}

/** Loopback addresses are exempt from the failed-auth limit (TeamPass behaviour: the local admin probe). */
/** The last (right-most) entry of an X-Forwarded-For header, normalized. */
function lastHop(xff: string | string[]): string {
  const hops = (Array.isArray(xff) ? xff.join(',') : xff).split(',').map((h) => h.trim()).filter((h) => h !== '');
  return hops.length === 0 ? '' : normalizeIp(hops[hops.length - 1]);
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip === '';
}

/**
 * Whether failed authentications from this address count against it
 * (docs/protocol.md §Client address): not for loopback (TeamPass's rule),
 * and not for a trusted proxy's own address when it forwarded none, since
 * every client behind it shares that address and one bad client would lock
 * all of them out.
 */
export function countsAuthFailures(addr: ClientAddress): boolean {
  return !isLoopback(addr.ip) && !addr.unforwarded;
}
