/**
 * Doctor check 4, `ports`: `server.port` and `admin.port`: free (tp-ws is
 * not running), held by tp-ws (its admin listener answers `/healthz`, or
 * the listening process is `tp-ws serve`), or taken by something else,
 * named with `lsof` (TeamPass's own PHP daemon, typically). And the admin
 * listener must not face the network.
 */
import type { Config } from '../config/schema.js';
import { error, ok, warn, type Finding } from './finding.js';
import { bindProbe, commandText, connectHost, getJson, isLoopbackHost, isTpWsServe, listenersOf, type Listener } from './local-net.js';

const HTTP_TIMEOUT_MS = 1500;
const LSOF_TIMEOUT_MS = 1500;

interface Health {
  uptime_s?: number;
  connections?: number;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Who holds the port, in words, and whether lsof could tell. */
function holders(listeners: Listener[] | null, port: number): string {
  if (listeners === null) return `(install lsof to see which process, or run: ss -ltnp 'sport = :${port}')`;
  if (listeners.length === 0) return `(lsof shows no process: run doctor as root to see other users' processes, or: ss -ltnp 'sport = :${port}')`;
  return listeners.map((l) => `pid ${l.pid}: ${commandText(l.argv)}`).join('; ');
}

/** Whether a command line looks like TeamPass's own PHP daemon. */
function isTeampassDaemon(argv: string[] | null): boolean {
  return argv !== null && argv.some((a) => /websocket\/bin\/server\.php$/.test(a));
}

export async function checkPorts(cfg: Readonly<Config>): Promise<Finding[]> {
  const findings: Finding[] = [];
  const { server, admin } = cfg;
  const adminOn = admin.port > 0;
  const healthz = adminOn ? await getJson(connectHost(admin.host), admin.port, '/healthz', HTTP_TIMEOUT_MS) : null;
  const health = healthz !== null && healthz.status === 200 && (healthz.json as { status?: unknown } | null)?.status === 'ok' ? (healthz.json as Health) : null;
  const uptime = health === null ? '' : `up ${health.uptime_s ?? '?'} s, ${health.connections ?? '?'} connection(s)`;
  const healthText = health === null ? '' : `; /healthz: ${uptime}`;

  let serverIsTpWs = false;
  const where = hostPort(server.host, server.port);
  if (server.port === 0) {
    findings.push(ok('ports', 'server', 'server.port is 0: tp-ws picks a free port at start (TeamPass\'s misc websocket_port cannot match it)'));
  } else {
    const state = await bindProbe(server.host, server.port);
    if (state === 'free') {
      findings.push(warn(
        'ports', 'server_free',
        `nothing listens on ${where} (server.port): tp-ws is not running with this configuration${health !== null ? `, although a tp-ws answers on its admin port ${admin.port}: it listens on another server.port; run doctor with the daemon's configuration` : ''}`,
        'start tp-ws: systemctl start teampass-websocket (or tp-ws serve)',
      ));
    } else if (state === 'in_use') {
      const listeners = await listenersOf(server.port, LSOF_TIMEOUT_MS);
      const named = listeners?.filter((l) => l.argv !== null) ?? [];
      serverIsTpWs = named.some((l) => isTpWsServe(l.argv)) || (named.length === 0 && health !== null);
      if (serverIsTpWs) {
        const pid = named.find((l) => isTpWsServe(l.argv))?.pid;
        findings.push(ok('ports', 'server', `tp-ws listens on ${where} (server.port${pid === undefined ? '' : `, pid ${pid}`}${healthText})`));
      } else {
        const teampass = named.some((l) => isTeampassDaemon(l.argv));
        const pids = named.map((l) => l.pid);
        findings.push(error(
          'ports', 'server_taken',
          `${where} (server.port) is taken by another process${teampass ? ', TeamPass\'s own PHP daemon' : ''}: ${holders(listeners, server.port)}; tp-ws cannot listen there`,
          [
            teampass ? 'stop TeamPass\'s daemon for good: systemctl disable --now teampass-websocket (if the unit still runs PHP\'s server.php), then start tp-ws' : `stop it${pids.length > 0 ? ` (kill ${pids.join(' ')})` : ''}`,
            `or give tp-ws another port (TPWS_PORT, --port) and set TeamPass's misc websocket_port and the proxy's proxy_pass to match`,
          ].join(', '),
        ));
      }
    } else {
      findings.push(error(
        'ports', 'server_unusable',
        state === 'EADDRNOTAVAIL'
          ? `server.host ${server.host} is not an address of this machine: tp-ws cannot listen on ${where}`
          : state === 'EACCES'
            ? `${where}: ports below 1024 need root or CAP_NET_BIND_SERVICE`
            : `cannot listen on ${where}: ${state}`,
        state === 'EADDRNOTAVAIL' ? 'set server.host to an address of this machine (ip -brief address), e.g. TPWS_HOST=127.0.0.1' : 'choose a port above 1024: TPWS_PORT=8080 (--port), behind the web server\'s proxy',
      ));
    }
  }

  const adminWhere = hostPort(admin.host, admin.port);
  if (admin.port === -1) {
    findings.push(ok('ports', 'admin', 'the admin listener is disabled (admin.port -1): no /healthz or /readyz'));
  } else if (admin.port === 0) {
    findings.push(ok('ports', 'admin', 'admin.port is 0: tp-ws picks a free port at start'));
  } else {
    const state = await bindProbe(admin.host, admin.port);
    if (state === 'free') {
      if (serverIsTpWs) {
        findings.push(warn('ports', 'admin_free', `tp-ws runs, but nothing listens on ${adminWhere} (admin.port): the daemon runs with another admin.host/admin.port than this doctor run`, 'run doctor with the daemon\'s configuration (its --config, flags and TPWS_* environment)'));
      } else {
        findings.push(ok('ports', 'admin', `${adminWhere} (admin.port) is free for tp-ws's admin listener`));
      }
    } else if (state === 'in_use') {
      if (health !== null) {
        findings.push(ok('ports', 'admin', `tp-ws's admin listener answers on http://${hostPort(connectHost(admin.host), admin.port)}/healthz (${uptime})`));
      } else {
        const listeners = await listenersOf(admin.port, LSOF_TIMEOUT_MS);
        const tpws = listeners?.some((l) => isTpWsServe(l.argv)) === true;
        if (tpws) {
          findings.push(warn('ports', 'admin_unhealthy', `a tp-ws holds ${adminWhere} (admin.port) but /healthz did not answer "ok" within ${HTTP_TIMEOUT_MS / 1000} s: it is starting, stopping or stuck`, 'look at its log: journalctl -u teampass-websocket -n 50'));
        } else {
          findings.push(error('ports', 'admin_taken', `${adminWhere} (admin.port) is taken by another process: ${holders(listeners, admin.port)}; tp-ws cannot open its admin listener and does not start`, 'stop that process, or choose another admin port: TPWS_ADMIN_PORT=8091 (--admin-port), or -1 to disable the admin listener'));
        }
      }
    } else {
      findings.push(error('ports', 'admin_unusable', `cannot listen on ${adminWhere} (admin.port): ${state === 'EADDRNOTAVAIL' ? `${admin.host} is not an address of this machine` : state}`, 'TPWS_ADMIN_HOST=127.0.0.1 (--admin-host), TPWS_ADMIN_PORT above 1024'));
    }
  }

  if (admin.port !== -1 && !isLoopbackHost(admin.host)) {
    findings.push(warn(
      'ports', 'admin_public',
      `the admin listener binds ${admin.host} (admin.host), not loopback: /healthz, /readyz and the other admin endpoints (daemon internals, client addresses) answer anyone who reaches this machine`,
      'keep it on loopback: TPWS_ADMIN_HOST=127.0.0.1 (--admin-host 127.0.0.1, "admin":{"host":"127.0.0.1"}); scrape it through the web server or an SSH tunnel if needed',
    ));
  }
  return findings;
}
