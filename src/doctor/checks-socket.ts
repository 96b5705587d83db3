/**
 * Doctor check 3, `socket`: the ingest socket PHP publishes to. Is there a
 * live daemon on it (or a stale file, or nothing), do its mode and group
 * match `ingest.socketMode`/`ingest.socketGroup`, and above all: can the
 * PHP user connect? That needs search (x) permission on every directory
 * from `/` down and write (w) permission on the socket file; the finding
 * names the component that blocks and the command that opens it.
 */
import { lstatSync, statSync, type Stats } from 'node:fs';
import { connect } from 'node:net';
import { dirname, resolve, sep } from 'node:path';
import type { Config } from '../config/schema.js';
import { error, ok, warn, type Finding } from './finding.js';
import { accessFor, groupId, groupName, lookupAccount, modeText, octal, userName, type AccountFiles, type UnixAccount } from './unix-account.js';

/** Unix socket paths hold at most 107 bytes (sockaddr_un, with its NUL). */
const MAX_SOCKET_PATH_BYTES = 107;
/** The ingest socket of the systemd unit in deploy/systemd (RuntimeDirectory=tp-ws). */
const SYSTEMD_SOCKET = '/run/tp-ws/ingest.sock';
/** PHP's user on Debian and Ubuntu, checked when `--php-user` is not given. */
const DEFAULT_PHP_USER = 'www-data';

export interface SocketCheckOptions {
  /** `--php-user`: whose access to check; null for www-data when that account exists. */
  phpUser: string | null;
  env: NodeJS.ProcessEnv;
  /** Account files (default /etc/passwd, /etc/group). */
  files?: AccountFiles;
}

type Liveness = 'live' | 'stale' | 'unknown';

/** Whether a daemon answers on the socket (1 s at most). */
function probe(path: string): Promise<Liveness> {
  return new Promise((resolve) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      s.destroy();
      resolve('unknown');
    }, 1000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('live');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === 'ECONNREFUSED' ? 'stale' : 'unknown');
    });
  });
}

function statOrNull(path: string, lstat = false): Stats | null {
  try {
    return lstat ? lstatSync(path) : statSync(path);
  } catch {
    return null;
  }
}

/** `/`, `/run`, `/run/tp-ws` for `/run/tp-ws`. */
function ancestry(dir: string): string[] {
  const parts = dir.split(sep).filter((p) => p !== '');
  const out = ['/'];
  for (let i = 1; i <= parts.length; i++) out.push(`/${parts.slice(0, i).join('/')}`);
  return out;
}

function describeAccount(a: UnixAccount): string {
  return `${a.name} (uid ${a.uid}, groups ${a.groups.map((g) => g.name).join(',')})`;
}

/** The first directory on the way to `dir` this process may not search (EACCES), or null. */
function unreadable(dir: string): string | null {
  for (const d of ancestry(dir)) {
    try {
      statSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EACCES') return dirname(d);
      return null;
    }
  }
  return null;
}

export async function checkSocket(cfg: Readonly<Config>, o: SocketCheckOptions): Promise<Finding[]> {
  const path = cfg.ingest.socket === '' ? '' : resolve(cfg.ingest.socket);
  const files = o.files;
  if (path === '') return [ok('socket', 'disabled', 'the ingest socket is disabled (ingest.socket is empty): PHP publishes through the events table, delivered by the poller')];
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    return [error('socket', 'path_length', `the ingest socket path is ${Buffer.byteLength(path)} bytes long; Unix sockets allow at most ${MAX_SOCKET_PATH_BYTES}, so tp-ws cannot listen there`, `choose a shorter path: TPWS_SOCKET=${SYSTEMD_SOCKET} (--socket)`)];
  }
  const findings: Finding[] = [];
  const dir = dirname(path);
  const st = statOrNull(path, true);
  let socketStat: Stats | null = null;
  const blind = unreadable(dir);
  if (blind !== null) {
    return [warn('socket', 'not_visible', `this user cannot look into ${blind} (permission denied), so the socket ${path} cannot be checked`, 'run doctor as root, or as the daemon\'s user: sudo -u www-data tp-ws doctor …')];
  }
  if (statOrNull(dir) === null) {
    findings.push(warn('socket', 'absent', `the ingest socket's directory ${dir} does not exist: tp-ws is not running with this ingest.socket (it creates the directory, mode 0750, at start)`, `start tp-ws (systemctl start teampass-websocket); if it runs, give doctor its socket: --socket PATH${path !== SYSTEMD_SOCKET && statOrNull(SYSTEMD_SOCKET, true)?.isSocket() ? ` (${SYSTEMD_SOCKET} exists: the systemd unit's)` : ''}`));
  } else if (st === null) {
    const systemd = path !== SYSTEMD_SOCKET && statOrNull(SYSTEMD_SOCKET, true)?.isSocket() === true;
    findings.push(warn(
      'socket', 'absent',
      `no ingest socket at ${path}: tp-ws is not running, or listens on another ingest.socket${systemd ? ` (there is one at ${SYSTEMD_SOCKET}, the systemd unit's: run doctor with --socket ${SYSTEMD_SOCKET})` : ''}; PHP falls back to the events table meanwhile`,
      systemd ? `tp-ws doctor --socket ${SYSTEMD_SOCKET} …` : 'start tp-ws: systemctl start teampass-websocket (or tp-ws serve)',
    ));
  } else if (!st.isSocket()) {
    findings.push(error('socket', 'not_socket', `${path} exists and is not a socket: tp-ws refuses to replace it and does not start`, `move it away (mv ${path} ${path}.old), or choose another ingest.socket (--socket)`));
  } else {
    socketStat = st;
    const live = await probe(path);
    if (live === 'stale') {
      findings.push(warn('socket', 'stale', `${path} is a socket file nobody answers on: left by a daemon that stopped without removing it; tp-ws replaces it at start`, 'start tp-ws: systemctl start teampass-websocket (or tp-ws serve)'));
    } else {
      const group = groupName(st.gid, files);
      findings.push(ok('socket', 'live', `${live === 'live' ? 'a daemon answers on' : 'found'} ${path} (${modeText(st.mode, 's')} ${userName(st.uid, files)}:${group})`));
      const want = Number.parseInt(cfg.ingest.socketMode, 8);
      if ((st.mode & 0o777) !== want) {
        findings.push(warn('socket', 'mode', `${path} has mode ${octal(st.mode)}, but ingest.socketMode is ${cfg.ingest.socketMode}: the running daemon was started with another configuration than this doctor run, or the file was changed since`, `run doctor with the daemon's configuration; to apply this one, restart tp-ws (systemctl restart teampass-websocket); for now: chmod ${cfg.ingest.socketMode} ${path}`));
      }
      if (cfg.ingest.socketGroup !== null) {
        const gid = groupId(cfg.ingest.socketGroup, files);
        if (gid !== null && gid !== st.gid) {
          findings.push(warn('socket', 'group', `${path} belongs to group ${group}, but ingest.socketGroup is ${cfg.ingest.socketGroup}: the running daemon was started with another configuration, or could not change the group`, `restart tp-ws with this configuration (its user must be root or a member of ${cfg.ingest.socketGroup}); for now: chgrp ${cfg.ingest.socketGroup} ${path}`));
        }
      }
    }
  }

  findings.push(phpAccess(cfg, o, path, socketStat));
  return findings;
}

/** Can the PHP user connect: search on every directory, write on the socket (or, before it exists, on what the configured mode and group will give). */
function phpAccess(cfg: Readonly<Config>, o: SocketCheckOptions, path: string, socketStat: Stats | null): Finding {
  // `path` is absolute (checkSocket resolved it).
  const files = o.files;
  const name = o.phpUser ?? (lookupAccount(DEFAULT_PHP_USER, files) !== null ? DEFAULT_PHP_USER : null);
  if (name === null) return ok('socket', 'php_access', `not checked who may write the socket: no ${DEFAULT_PHP_USER} account here; give PHP's user with --php-user USER`);
  const account = lookupAccount(name, files);
  if (account === null) return warn('socket', 'php_access', `no user ${name} in /etc/passwd: cannot check whether PHP may write the socket`, 'give the user PHP-FPM or Apache runs as: --php-user USER (ps -o user= -C php-fpm8.2,apache2)');
  const who = describeAccount(account);
  const primary = account.groups[0].name;
  const dir = dirname(path);
  const systemdDir = dir === o.env.RUNTIME_DIRECTORY?.split(':')[0] || dir.startsWith('/run/');

  for (const d of ancestry(dir)) {
    const st = statOrNull(d);
    if (st === null) break; // a missing directory is reported above; tp-ws creates it with mode 0750
    const a = accessFor(account, st, 'x');
    if (a.granted) continue;
    const inGroup = account.groups.some((g) => g.gid === st.gid);
    const owner = `${userName(st.uid, files)}:${groupName(st.gid, files)}`;
    const fixes = [inGroup ? `chmod g+x ${d}` : `chgrp ${primary} ${d} && chmod g+x ${d} (or chmod o+x ${d}, to let every user through)`];
    if (d === dir && systemdDir) fixes.push(`under systemd this is the unit's RuntimeDirectory, recreated at each start: in [Service] set RuntimeDirectoryMode=0750 and Group=${primary} (the daemon's group)`);
    else if (d === dir && d === cfg.stateDir) fixes.push(`or keep the state directory private and put the socket where PHP may reach it: TPWS_SOCKET=${SYSTEMD_SOCKET} (systemd RuntimeDirectory=tp-ws, RuntimeDirectoryMode=0750, Group=${primary})`);
    return error(
      'socket', 'php_access',
      `${who} cannot connect to ${path}: the directory ${d} (${modeText(st.mode, 'd')} ${owner}) gives it no search (x) permission (it is "${a.via}" there), so every PHP emit falls back to the table`,
      fixes.join('; '),
    );
  }

  if (socketStat !== null) {
    const a = accessFor(account, socketStat, 'w');
    const group = groupName(socketStat.gid, files);
    if (a.granted) return ok('socket', 'php_access', `${who} can connect to ${path}: every directory lets it through and the socket grants write as ${a.via}`);
    const inGroup = account.groups.some((g) => g.gid === socketStat.gid);
    const fix = inGroup
      ? `set ingest.socketMode to 0660 (TPWS_SOCKET_MODE=0660 or --socket-mode 0660) and restart tp-ws; until then: chmod g+w ${path}`
      : `set ingest.socketGroup to ${primary} and ingest.socketMode to 0660 (TPWS_SOCKET_GROUP=${primary} TPWS_SOCKET_MODE=0660; tp-ws's user must be root or a member of ${primary}) and restart tp-ws; until then: chgrp ${primary} ${path} && chmod 0660 ${path}`;
    return error(
      'socket', 'php_access',
      `${who} cannot connect to ${path}: the socket (${modeText(socketStat.mode, 's')} ${userName(socketStat.uid, files)}:${group}) gives it no write (w) permission (it is "${a.via}" there), so every PHP emit falls back to the table`,
      fix,
    );
  }

  // No socket yet: what the configured mode and group will give.
  const mode = Number.parseInt(cfg.ingest.socketMode, 8);
  if ((mode & 0o002) !== 0) return ok('socket', 'php_access', `${who} may pass every directory to ${path}, and ingest.socketMode ${cfg.ingest.socketMode} lets any user write the socket once tp-ws creates it`);
  if (cfg.ingest.socketGroup === null) {
    return ok('socket', 'php_access', `${who} may pass every directory to ${path}; whether it may write the socket depends on tp-ws's user (ingest.socketGroup is unset, so the socket gets that user's group): run doctor again once tp-ws runs`);
  }
  const gid = groupId(cfg.ingest.socketGroup, files);
  if (gid !== null && account.groups.some((g) => g.gid === gid) && (mode & 0o020) !== 0) {
    return ok('socket', 'php_access', `${who} may pass every directory to ${path}, and the socket tp-ws creates (mode ${cfg.ingest.socketMode}, group ${cfg.ingest.socketGroup}) will let it write`);
  }
  return warn(
    'socket', 'php_access',
    `when tp-ws creates ${path} (mode ${cfg.ingest.socketMode}, group ${cfg.ingest.socketGroup}), ${who} will not be able to write it`,
    `TPWS_SOCKET_GROUP=${primary} TPWS_SOCKET_MODE=0660 (ingest.socketGroup, ingest.socketMode)`,
  );
}
