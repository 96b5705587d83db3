/**
 * Doctor check 5, `proxy` (with `--proxy-url`): a WebSocket upgrade through
 * the reverse proxy must succeed (101); the daemon must see the client's
 * address through it; and the proxy's read timeout must outlast the
 * server's ping interval.
 *
 * For the address, doctor upgrades twice to `<proxy-url>?tpws_probe=<nonce>`
 * (no token: the daemon answers auth_failed and closes, which is fine), then
 * finds both nonces in the admin listener's `GET /upgrades` (the last
 * upgrades: TCP peer, the address the daemon took, from which header):
 *
 * - the plain probe shows what the proxy itself forwards: nginx passes a
 *   client's request headers on unchanged unless told otherwise, so a probe
 *   carrying its own header could not tell "the proxy appends the address it
 *   saw" from "the proxy forwards nothing";
 * - the probe with an `X-Forwarded-For: 192.0.2.1` of its own shows whether
 *   a client can claim an address: believed while the proxy set no
 *   X-Forwarded-For itself (or appended to it from an untrusted hop), it
 *   means the proxy passes the client's header through unchanged.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Config } from '../config/schema.js';
import { normalizeIp } from '../gateway/client-ip.js';
import type { UpgradeRecord } from '../gateway/gateway.js';
import { error, ok, warn, type Finding } from './finding.js';
import { connectHost, getJson, isLoopbackHost } from './local-net.js';
import { findProxyTimeouts, type ProxyTimeout } from './proxy-config.js';

/** The client address doctor claims in its own X-Forwarded-For (TEST-NET-1, RFC 5737). */
export const PROBE_FORWARDED_FOR = '192.0.2.1';
const UPGRADE_TIMEOUT_MS = 3000;
const UPGRADES_WAIT_MS = 1000;
const NGINX_TIMEOUT_MS = 2000;

export interface ProxyCheckOptions {
  /** `--proxy-url`: `https://teampass.example/ws`, `http://127.0.0.1:8443/ws` (ws:// and wss:// too). */
  url: string;
  /** `--proxy-insecure`: do not verify the proxy's TLS certificate. */
  insecure: boolean;
}

type UpgradeOutcome =
  | { kind: 'upgraded'; localAddress: string }
  | { kind: 'status'; status: number; server: string | null }
  | { kind: 'failed'; code: string; message: string };

/** The `Server` header of an answer, or null. */
function serverHeader(res: IncomingMessage): string | null {
  const v = res.headers.server;
  return v === undefined ? null : String(v);
}

/**
 * One WebSocket upgrade request through the proxy, with `forwardedFor` as
 * its own X-Forwarded-For when given; the socket is closed as soon as the
 * answer is in.
 */
function upgradeThrough(url: URL, insecure: boolean, forwardedFor: string | null): Promise<UpgradeOutcome> {
  return new Promise((resolve) => {
    const secure = url.protocol === 'https:';
    const options = {
      method: 'GET',
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      servername: secure ? url.hostname : undefined,
      rejectUnauthorized: !insecure,
      headers: {
        host: url.host,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'user-agent': 'tp-ws-doctor',
        ...(forwardedFor === null ? {} : { 'x-forwarded-for': forwardedFor }),
      },
      agent: false as const,
    };
    let settled = false;
    let req: ClientRequest;
    const done = (outcome: UpgradeOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done({ kind: 'failed', code: 'TIMEOUT', message: `no answer within ${UPGRADE_TIMEOUT_MS / 1000} s` }), UPGRADE_TIMEOUT_MS);
    req = (secure ? httpsRequest : httpRequest)(options);
    req.on('upgrade', (res: IncomingMessage, socket: Socket) => {
      const localAddress = socket.localAddress ?? '';
      socket.destroy();
      done(res.statusCode === 101 ? { kind: 'upgraded', localAddress } : { kind: 'status', status: res.statusCode ?? 0, server: serverHeader(res) });
    });
    req.on('response', (res: IncomingMessage) => {
      res.resume();
      done({ kind: 'status', status: res.statusCode ?? 0, server: serverHeader(res) });
    });
    req.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'failed', code: err.code ?? 'ERROR', message: err.message }));
    req.end();
  });
}

/** The upgrades carrying `nonces` in the admin listener's `/upgrades` (null for one not seen), or why they could not be read. */
async function findProbes(cfg: Readonly<Config>, nonces: readonly string[]): Promise<(UpgradeRecord | null)[] | 'no_endpoint' | 'no_answer'> {
  const host = connectHost(cfg.admin.host);
  const end = Date.now() + UPGRADES_WAIT_MS;
  for (;;) {
    const r = await getJson(host, cfg.admin.port, '/upgrades', 1000);
    if (r === null) return 'no_answer';
    if (r.status === 404) return 'no_endpoint';
    const raw = (r.json as { upgrades?: unknown } | null)?.upgrades;
    const list = Array.isArray(raw) ? (raw as unknown[]).filter((u): u is UpgradeRecord => u !== null && typeof u === 'object') : [];
    const hits = nonces.map((n) => list.find((u) => u.probe === n) ?? null);
    // The daemon records an upgrade as it handles it: give it a moment before calling a nonce missing.
    if (hits.every((h) => h !== null) || Date.now() >= end) return hits;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const NGINX_XFF = 'nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; in the location that proxies to tp-ws';
const APACHE_XFF = 'Apache: ProxyAddHeaders On (the default; remove a ProxyAddHeaders Off)';
const NGINX_UPGRADE = 'nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection $connection_upgrade; (deploy/nginx/tp-ws.conf)';

export async function checkProxy(cfg: Readonly<Config>, o: ProxyCheckOptions): Promise<Finding[]> {
  let url: URL | null = null;
  try {
    url = new URL(o.url.replace(/^ws(s?):/i, 'http$1:'));
  } catch {
    // reported below
  }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    return [error('proxy', 'url', `--proxy-url ${JSON.stringify(o.url)} is not an http(s):// or ws(s):// URL`, '--proxy-url https://teampass.example/ws (the address browsers use)')];
  }
  const plainNonce = randomBytes(9).toString('hex');
  const claimNonce = randomBytes(9).toString('hex');
  const shown = `${url.protocol}//${url.host}${url.pathname}`;
  const proxyPort = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  const withNonce = (nonce: string): URL => {
    const u = new URL(url);
    u.searchParams.set('tpws_probe', nonce);
    return u;
  };

  const [plain, claim, timeouts] = await Promise.all([
    upgradeThrough(withNonce(plainNonce), o.insecure, null),
    upgradeThrough(withNonce(claimNonce), o.insecure, PROBE_FORWARDED_FOR),
    cfg.server.port > 0 ? findProxyTimeouts(cfg.server.port, proxyPort, NGINX_TIMEOUT_MS) : Promise.resolve({ found: [], notes: ['server.port is 0'] }),
  ]);
  const findings = await upgradeFindings(cfg, shown, { outcome: plain, nonce: plainNonce }, { outcome: claim, nonce: claimNonce });
  findings.push(timeoutFinding(cfg, timeouts.found, timeouts.notes));
  return findings;
}

interface Probe {
  outcome: UpgradeOutcome;
  nonce: string;
}

async function upgradeFindings(cfg: Readonly<Config>, shown: string, plain: Probe, claim: Probe): Promise<Finding[]> {
  const outcome = plain.outcome;
  const daemon = `${cfg.server.host}:${cfg.server.port}`;
  if (outcome.kind === 'failed') {
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(outcome.code)) {
      return [error('proxy', 'tls', `the TLS certificate of ${shown} is not trusted here (${outcome.code}); browsers may refuse it too`, 'install a certificate from a CA the clients trust; to check the rest anyway: --proxy-insecure')];
    }
    const words: Record<string, string> = {
      ECONNREFUSED: 'nothing listens there: is the web server running (systemctl status nginx / apache2), and is the port right?',
      ENOTFOUND: 'the host name does not resolve',
      TIMEOUT: 'no answer: a firewall, or a proxy that waits for an upstream that does not answer',
      ECONNRESET: 'the connection was reset (a TLS port spoken to in plain http, or the reverse?)',
    };
    return [error('proxy', 'unreachable', `the WebSocket upgrade through ${shown} failed: ${outcome.code}: ${words[outcome.code] ?? outcome.message}`, 'check the URL browsers use, and that the web server runs: curl -i -N -H "Connection: Upgrade" -H "Upgrade: websocket" -H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" ' + shown)];
  }
  if (outcome.kind === 'status') {
    const s = outcome.status;
    const by = outcome.server === null ? '' : ` (Server: ${outcome.server})`;
    if (s === 404) return [error('proxy', 'upgrade', `${shown} answered 404${by}: the web server has no location for this path that proxies to tp-ws`, `nginx: location ${new URL(shown).pathname} { proxy_pass http://${daemon}; … } (deploy/nginx/tp-ws.conf); Apache: ProxyPass ${new URL(shown).pathname} ws://${daemon}${new URL(shown).pathname}`)];
    if (s === 502 || s === 503 || s === 504) return [error('proxy', 'upgrade', `${shown} answered ${s}${by}: the proxy cannot reach its upstream; is tp-ws running on ${daemon}, and does proxy_pass point there?`, `start tp-ws (systemctl start teampass-websocket), and make proxy_pass (nginx) or ProxyPass (Apache) point at http://${daemon}`)];
    if (s === 426 || s === 400 || (s >= 200 && s < 300)) {
      return [error('proxy', 'upgrade', `${shown} answered ${s}${by} instead of 101 Switching Protocols: the proxy does not pass the Upgrade and Connection headers on, so the daemon saw a plain HTTP request`, `${NGINX_UPGRADE}; Apache 2.4.47+: ProxyPass /ws http://${daemon}/ws upgrade=websocket (older: mod_proxy_wstunnel and ws://)`)];
    }
    return [error('proxy', 'upgrade', `${shown} answered ${s}${by} instead of 101 Switching Protocols`, `look at the web server's error log for ${new URL(shown).pathname}; the nginx location to use is deploy/nginx/tp-ws.conf`)];
  }

  const upgraded = ok('proxy', 'upgrade', `a WebSocket upgrade through ${shown} succeeds (101)`);
  if (cfg.admin.port <= 0) {
    return [upgraded, warn('proxy', 'forwarding_unknown', 'could not determine whether the daemon sees clients\' addresses: the admin listener is off (admin.port) and doctor reads the daemon\'s view from its /upgrades', 'run doctor with the daemon\'s admin.port, or enable it on loopback (TPWS_ADMIN_PORT=8081)')];
  }
  const records = await findProbes(cfg, [plain.nonce, claim.nonce]);
  if (records === 'no_answer' || records === 'no_endpoint') {
    return [upgraded, warn(
      'proxy', 'forwarding_unknown',
      records === 'no_endpoint'
        ? 'could not determine whether the daemon sees clients\' addresses: this tp-ws has no /upgrades on its admin listener (an older version)'
        : `could not determine whether the daemon sees clients' addresses: its admin listener ${connectHost(cfg.admin.host)}:${cfg.admin.port} did not answer`,
      records === 'no_endpoint' ? 'upgrade tp-ws, or check by hand that the proxy sets X-Forwarded-For (nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;)' : 'run doctor with the daemon\'s configuration (admin.host, admin.port)',
    )];
  }
  const [seen, claimed] = records;
  if (seen === null) {
    return [upgraded, error(
      'proxy', 'other_backend',
      `the upgrade through ${shown} succeeded, but this tp-ws (admin ${connectHost(cfg.admin.host)}:${cfg.admin.port}) never saw it: the proxy forwards to another WebSocket server (TeamPass's old PHP daemon, another tp-ws, another port)`,
      `point the proxy at this daemon: proxy_pass http://${daemon}; (nginx) or ProxyPass … ws://${daemon}/… (Apache); or run doctor with the configuration of the daemon the proxy uses`,
    )];
  }
  const claimLocal = claim.outcome.kind === 'upgraded' ? claim.outcome.localAddress : null;
  return [upgraded, forwardingFinding(cfg, seen, claimed, claimLocal)];
}

/**
 * What the daemon made of doctor's upgrades: the proxy trusted, the
 * client's address forwarded, and a client's own X-Forwarded-For not
 * believed as is.
 *
 * @param seen - the plain probe's record
 * @param claimed - the record of the probe that claimed 192.0.2.1, or null
 * @param claimLocal - the address doctor connected from for that probe (what the proxy saw)
 */
function forwardingFinding(cfg: Readonly<Config>, seen: UpgradeRecord, claimed: UpgradeRecord | null, claimLocal: string | null): Finding {
  const trusted = new Set(cfg.server.trustedProxies.map(normalizeIp));
  const peer = normalizeIp(seen.peer);
  if (!trusted.has(peer)) {
    const list = [...cfg.server.trustedProxies, peer].join(',');
    return (isLoopbackHost(peer) ? warn : error)(
      'proxy', 'untrusted',
      `the daemon sees the proxy at ${peer}, which is not in server.trustedProxies (${cfg.server.trustedProxies.join(', ') || 'empty'}): it ignores the proxy's X-Forwarded-For, so every client behind it has the address ${peer}${isLoopbackHost(peer) ? '' : ', and one client\'s failed logins can rate-limit all of them (limits.authFailuresPerIp)'}`,
      `TPWS_TRUSTED_PROXIES=${list} (--trusted-proxies ${list}, "server":{"trustedProxies":[…]})`,
    );
  }
  // Believed as is: the proxy set no X-Forwarded-For of its own (so this one
  // is the client's), or appended to it the address of a hop that is not
  // trusted (so the walk should have stopped there).
  const spoofable = claimed !== null && claimed.forwarded === 'x-forwarded-for' && claimed.ip === PROBE_FORWARDED_FOR
    && (seen.forwarded !== 'x-forwarded-for' || (claimLocal !== null && !trusted.has(normalizeIp(claimLocal))));
  const spoofText = `it passes a client's own X-Forwarded-For on unchanged, which the daemon reads first, so a client can claim any address (doctor claimed ${PROBE_FORWARDED_FOR} and the daemon took it)`;
  if (seen.forwarded === null) {
    return warn(
      'proxy', 'drops_client_address',
      `the proxy (${peer}) forwards no client address: a plain upgrade reached the daemon without X-Forwarded-For or X-Real-IP, so every client has the proxy's address in the logs and the failed-login limit cannot apply to them${spoofable ? `; and ${spoofText}` : ''}`,
      `${NGINX_XFF}; ${APACHE_XFF}`,
    );
  }
  if (spoofable) {
    return warn('proxy', 'spoofable', `the proxy (${peer}) forwards the client's address in ${seen.forwarded === 'x-real-ip' ? 'X-Real-IP' : 'X-Forwarded-For'}, but ${spoofText}`, `${NGINX_XFF} (it appends the address the proxy saw, and the daemon walks the header from the right); ${APACHE_XFF}`);
  }
  return ok('proxy', 'forwarded', `the proxy (${peer}, trusted) forwards the client's address: the daemon took ${seen.ip} from ${seen.forwarded === 'x-forwarded-for' ? 'X-Forwarded-For' : 'X-Real-IP'}${claimed !== null && claimed.ip === PROBE_FORWARDED_FOR ? ` (and ${PROBE_FORWARDED_FOR}, claimed by doctor, behind this machine's own address, a trusted hop)` : ''}`);
}

/** The proxy's read timeout against the ping interval. */
function timeoutFinding(cfg: Readonly<Config>, found: ProxyTimeout[], notes: string[]): Finding {
  const ping = cfg.heartbeat.pingIntervalSec;
  const fix = `nginx: proxy_read_timeout 1h; in the location that proxies to tp-ws; Apache: ProxyPass /ws ws://${cfg.server.host}:${cfg.server.port}/ws timeout=3600 (or ProxyTimeout 3600)`;
  if (found.length === 0) {
    return warn('proxy', 'read_timeout', `could not determine the proxy's read timeout: no local nginx or Apache configuration proxies to port ${cfg.server.port}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}; it must be longer than heartbeat.pingIntervalSec (${ping} s), or the proxy closes quiet sockets`, fix);
  }
  const mine = found.filter((f) => f.onProxyPort);
  const relevant = mine.length > 0 ? mine : found;
  const shortest = relevant.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  const what = `${shortest.server} ${shortest.source}, for ${shortest.proxies}`;
  if (shortest.seconds <= ping) {
    return warn(
      'proxy', 'read_timeout',
      `the proxy's read timeout (${what}) is ${shortest.seconds} s, not longer than heartbeat.pingIntervalSec (${ping} s): the proxy closes a quiet socket before the next server ping, so idle clients are cut and reconnect every ${shortest.seconds} s`,
      fix,
    );
  }
  return ok('proxy', 'read_timeout', `the proxy's read timeout (${what}) is ${shortest.seconds} s, longer than heartbeat.pingIntervalSec (${ping} s)`);
}
