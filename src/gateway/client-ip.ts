import { isIP } from 'node:net';

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else unchanged. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/**
 * The client address of a request. `X-Forwarded-For` is believed only when
 * the TCP peer is a trusted proxy; it is then walked from the right, skipping
 * trusted hops, and the first untrusted address is the client. A malformed
 * entry stops the walk at the last address known good.
 */
export function clientIp(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: ReadonlySet<string>): string {
  let ip = normalizeIp(peer ?? '');
  if (!trusted.has(ip) || forwardedFor === undefined) return ip;
  const header = Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor;
  const hops = header.split(',').map((h) => h.trim()).filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i]);
    if (isIP(hop) === 0) return ip;
    ip = hop;
    if (!trusted.has(hop)) return hop;
  }
  return ip;
}

/** Loopback addresses are exempt from the failed-auth limit (TeamPass behaviour: the local admin probe and a proxy without XFF). */
export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip === '';
}
