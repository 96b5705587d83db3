/**
 * The single source of truth for tp-ws configuration.
 *
 * Every key has: its dotted path in the `Config` object (and in a `--config`
 * JSON file), its `TPWS_*` environment name, its CLI flag where it has one, a
 * default, a one-line doc and a rule. `load.ts` merges file → env → flags and
 * validates against this list; `docs/configuration.md` is generated from it
 * (`tp-ws print-config --markdown`) and a test keeps the two in sync.
 */

import { isIP } from 'node:net';

import { parseStoreUrl } from '../store/store-url.js';

export type KeyType = 'string' | 'int' | 'bool' | 'list' | 'enum' | 'mode';

export interface KeySpec {
  /** Dotted path, e.g. `server.port`. Also the key path in a JSON config file. */
  readonly key: string;
  /** Environment variable name. */
  readonly env: string;
  /** Long CLI flag name without the dashes, when the key has a flag. */
  readonly flag?: string;
  readonly type: KeyType;
  /** For `enum`: the allowed values. */
  readonly values?: readonly string[];
  /** For `int`: inclusive bounds. */
  readonly min?: number;
  readonly max?: number;
  /** Default value, or a description of the computed default for the docs. */
  readonly default: string | number | boolean | readonly string[] | null;
  /** Shown in the docs instead of the literal default when it is computed at start. */
  readonly defaultDoc?: string;
  readonly doc: string;
  /** Never printed in clear: `print-config` leaves it out (`store.url`: its password) unless `--show-secrets`. */
  readonly secret?: boolean;
  /** Extra rule beyond type and bounds; returns the broken rule or null. */
  readonly check?: (value: unknown) => string | null;
}

export interface Config {
  stateDir: string;
  server: {
    host: string;
    port: number;
    trustedProxies: string[];
    maxConnections: number;
    handshakeTimeoutMs: number;
  };
  admin: { host: string; port: number };
  store: { url: string; password: string | null; passwordFile: string | null; tablePrefix: string };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  auth: {
    methods: string[];
    reconnectTokenTtlSec: number;
    jwt: {
      secret: string | null;
      secretFile: string | null;
      publicKeyFile: string | null;
      algorithms: string[];
      issuer: string | null;
      audience: string | null;
      claimUserId: string;
      claimLogin: string;
      claimDisplayName: string;
      claimAdmin: string;
      claimFolders: string;
    };
  };
  limits: {
    maxMessageBytes: number;
    maxFrameBytes: number;
    rateLimitMessages: number;
    rateLimitWindowMs: number;
    floodCloseAfter: number;
    maxConnectionsPerUser: number;
    maxToolConnectionsPerUser: number;
    authFailuresPerIp: number;
    authFailureWindowSec: number;
    maxBufferedBytes: number;
    maxPendingBeforeAuth: number;
  };
  heartbeat: { pingIntervalSec: number; pongTimeoutSec: number };
  shutdown: { timeoutMs: number };
  ingest: {
    socket: string;
    socketMode: string;
    socketGroup: string | null;
    maxFrameBytes: number;
    maxBatchEvents: number;
    maxPayloadBytes: number;
    ackAfter: 'journal' | 'delivery';
  };
  dedup: { windowSize: number; windowSec: number };
  journal: { batchSize: number; flushMs: number; maxQueue: number };
  resume: { ringSize: number; ringMaxAgeSec: number; maxEvents: number };
  poller: {
    enabled: boolean;
    intervalMs: number;
    idleIntervalMs: number;
    batchSize: number;
    maxAgeSec: number;
    maxBackoffMs: number;
  };
  retention: { hours: number; intervalSec: number };
  teampass: { root: string | null; kbLockTimeoutSec: number; editionLockTimeoutSec: number; lockReleaseGraceMs: number };
}

const ipList = (v: unknown): string | null => {
  // isIP, not a character class: "abc" or "1.2.3" must not pass as an address.
  const bad = (v as string[]).find((s) => isIP(s) === 0);
  return bad === undefined ? null : `"${bad}" is not an IP address`;
};

const AUTH_METHODS = ['teampass-token', 'jwt'] as const;

export const SCHEMA: readonly KeySpec[] = [
  {
    key: 'stateDir', env: 'TPWS_STATE_DIR', flag: 'state-dir', type: 'string', default: null,
    defaultDoc: '`$STATE_DIRECTORY` (systemd), else `$XDG_STATE_HOME/tp-ws`, else `~/.local/state/tp-ws`',
    doc: 'Directory for the embedded SQLite store, the development JWT secret and the default ingest socket.',
  },
  { key: 'server.host', env: 'TPWS_HOST', flag: 'host', type: 'string', default: '127.0.0.1', doc: 'Address the public WebSocket listener binds to.' },
  { key: 'server.port', env: 'TPWS_PORT', flag: 'port', type: 'int', min: 0, max: 65535, default: 8080, doc: 'Port of the public WebSocket listener; 0 picks a free port (the bound port is logged).' },
  {
    key: 'server.trustedProxies', env: 'TPWS_TRUSTED_PROXIES', flag: 'trusted-proxies', type: 'list',
    default: ['127.0.0.1', '::1'], check: ipList,
    doc: 'Peers whose `X-Forwarded-For` or `X-Real-IP` header is believed (comma-separated IPs). Other peers are taken at their socket address.',
  },
  { key: 'server.maxConnections', env: 'TPWS_MAX_CONNECTIONS', type: 'int', min: 1, max: 10_000_000, default: 100_000, doc: 'Total WebSocket connections accepted; past it new upgrades get HTTP 503.' },
  {
    key: 'server.handshakeTimeoutMs', env: 'TPWS_HANDSHAKE_TIMEOUT_MS', type: 'int', min: 500, max: 600_000, default: 10_000,
    doc: 'Time a new TCP connection has to send its complete HTTP request (the WebSocket upgrade); a connection still sending headers then (slowloris), or that sent nothing, is closed. Open WebSockets are not affected.',
  },
  { key: 'admin.host', env: 'TPWS_ADMIN_HOST', flag: 'admin-host', type: 'string', default: '127.0.0.1', doc: 'Address of the admin listener (`/healthz`, `/readyz`). Keep it off the public network.' },
  { key: 'admin.port', env: 'TPWS_ADMIN_PORT', flag: 'admin-port', type: 'int', min: -1, max: 65535, default: 8081, doc: 'Port of the admin listener; 0 picks a free port, -1 disables it.' },
  {
    key: 'store.url', env: 'TPWS_STORE', flag: 'store', type: 'string', default: null,
    defaultDoc: '`sqlite:<stateDir>/tp-ws.db`',
    check: (v) => {
      // The rules of the store that opens it (src/store/store-url.ts), so check-config and migrate agree.
      try {
        parseStoreUrl(String(v));
        return null;
      } catch (err) {
        return (err as Error).message.replace(/^store URL /, '');
      }
    },
    doc: 'Where the TeamPass-shaped tables live: `sqlite:PATH` (embedded) or `mysql://user:pass@host:port/db` (`?socket=PATH` for a Unix socket). A password with `@ / : # % ?` must be percent-encoded here; `store.password` takes it as is.', secret: true,
  },
  {
    key: 'store.password', env: 'TPWS_STORE_PASSWORD', type: 'string', default: null, secret: true,
    doc: 'MySQL password, when `store.url` holds none: any characters, no encoding. Not a flag (command lines are visible to every user); prefer `store.passwordFile`.',
  },
  {
    key: 'store.passwordFile', env: 'TPWS_STORE_PASSWORD_FILE', flag: 'store-password-file', type: 'string', default: null,
    doc: 'File whose first line is the MySQL password (e.g. `$CREDENTIALS_DIRECTORY/db-password` under systemd), when `store.url` holds none.',
  },
  {
    key: 'store.tablePrefix', env: 'TPWS_TABLE_PREFIX', flag: 'table-prefix', type: 'string', default: 'teampass_',
    check: (v) => (/^[A-Za-z0-9_]{0,32}$/.test(String(v)) ? null : 'must be 0-32 characters of [A-Za-z0-9_]'),
    doc: 'Prefix of every table name (TeamPass `DB_PREFIX`).',
  },
  { key: 'log.level', env: 'TPWS_LOG_LEVEL', flag: 'log-level', type: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info', doc: 'Minimum level of the JSON log lines written to stdout.' },
  {
    key: 'auth.methods', env: 'TPWS_AUTH_METHODS', flag: 'auth', type: 'list', default: ['teampass-token', 'jwt'],
    check: (v) => {
      const list = v as string[];
      if (list.length === 0) return 'must name at least one method';
      const bad = list.find((m) => !(AUTH_METHODS as readonly string[]).includes(m));
      return bad === undefined ? null : `"${bad}" is not one of ${AUTH_METHODS.join(', ')}`;
    },
    doc: 'Authenticators tried in order for the `?token=` of a WebSocket upgrade: `teampass-token`, `jwt`.',
  },
  { key: 'auth.reconnectTokenTtlSec', env: 'TPWS_RECONNECT_TOKEN_TTL_SEC', type: 'int', min: 60, max: 86400, default: 3600, doc: 'Lifetime of a reconnect token; the daemon keeps the token of every open socket fresh, so a drop after hours still reconnects.' },
  { key: 'auth.jwt.secret', env: 'TPWS_JWT_SECRET', type: 'string', default: null, secret: true, check: (v) => (v === null || String(v).length >= 32 ? null : 'must be at least 32 characters'), doc: 'HS256 secret. When no secret, secret file or public key is set, a development secret is generated in the state directory.' },
  { key: 'auth.jwt.secretFile', env: 'TPWS_JWT_SECRET_FILE', type: 'string', default: null, doc: 'File holding the HS256 secret (first line).' },
  { key: 'auth.jwt.publicKeyFile', env: 'TPWS_JWT_PUBLIC_KEY_FILE', type: 'string', default: null, doc: 'PEM (SPKI) public key for RS256 or ES256 tokens.' },
  {
    key: 'auth.jwt.algorithms', env: 'TPWS_JWT_ALGORITHMS', type: 'list', default: ['HS256', 'RS256', 'ES256'],
    check: (v) => { const bad = (v as string[]).find((a) => !['HS256', 'RS256', 'ES256'].includes(a)); return bad ? `"${bad}" is not HS256, RS256 or ES256` : null; },
    doc: 'JWT algorithms accepted (the key type narrows them further).',
  },
  { key: 'auth.jwt.issuer', env: 'TPWS_JWT_ISSUER', type: 'string', default: null, doc: 'Required `iss` claim, when set.' },
  { key: 'auth.jwt.audience', env: 'TPWS_JWT_AUDIENCE', type: 'string', default: null, doc: 'Required `aud` claim, when set.' },
  { key: 'auth.jwt.claimUserId', env: 'TPWS_JWT_CLAIM_USER_ID', type: 'string', default: 'sub', doc: 'Claim holding the numeric user id.' },
  { key: 'auth.jwt.claimLogin', env: 'TPWS_JWT_CLAIM_LOGIN', type: 'string', default: 'login', doc: 'Claim holding the login (falls back to `user<id>`).' },
  { key: 'auth.jwt.claimDisplayName', env: 'TPWS_JWT_CLAIM_DISPLAY_NAME', type: 'string', default: 'name', doc: 'Claim holding the display name (falls back to the login).' },
  { key: 'auth.jwt.claimAdmin', env: 'TPWS_JWT_CLAIM_ADMIN', type: 'string', default: 'admin', doc: 'Claim holding the admin flag (true, 1 or "1").' },
  { key: 'auth.jwt.claimFolders', env: 'TPWS_JWT_CLAIM_FOLDERS', type: 'string', default: 'folders', doc: 'Claim holding accessible folder ids (array or comma-separated string).' },
  { key: 'limits.maxMessageBytes', env: 'TPWS_MAX_MESSAGE_BYTES', type: 'int', min: 1024, max: 16_777_216, default: 65536, doc: 'Client messages larger than this get a `message_too_large` error (socket kept).' },
  { key: 'limits.maxFrameBytes', env: 'TPWS_MAX_FRAME_BYTES', type: 'int', min: 1024, max: 67_108_864, default: 1_048_576, doc: 'Hard cap on one client message; past it the socket is closed with 1009. Must be ≥ limits.maxMessageBytes.' },
  { key: 'limits.rateLimitMessages', env: 'TPWS_RATE_LIMIT_MESSAGES', type: 'int', min: 1, max: 100_000, default: 10, doc: 'Client messages allowed per window (`pong` exempt); excess gets `rate_limited`.' },
  { key: 'limits.rateLimitWindowMs', env: 'TPWS_RATE_LIMIT_WINDOW_MS', type: 'int', min: 10, max: 3_600_000, default: 1000, doc: 'Sliding window of the per-socket message rate limit.' },
  { key: 'limits.floodCloseAfter', env: 'TPWS_FLOOD_CLOSE_AFTER', type: 'int', min: 1, max: 1_000_000, default: 200, doc: 'Rate-limited messages within one window after which the socket is closed (4101).' },
  { key: 'limits.maxConnectionsPerUser', env: 'TPWS_MAX_CONNECTIONS_PER_USER', type: 'int', min: 1, max: 10_000, default: 5, doc: 'Simultaneous sockets per user; one more gets `max_connections`.' },
  { key: 'limits.maxToolConnectionsPerUser', env: 'TPWS_MAX_TOOL_CONNECTIONS_PER_USER', type: 'int', min: 1, max: 10_000, default: 5, doc: 'Simultaneous sockets per user that carry no `Origin` header (not a browser: TeamPass\'s dashboard probe, scripts), counted apart from `limits.maxConnectionsPerUser`, so the probe gets its answer while the admin has every browser slot in use.' },
  { key: 'limits.authFailuresPerIp', env: 'TPWS_AUTH_FAILURES_PER_IP', type: 'int', min: 1, max: 1_000_000, default: 10, doc: 'Failed authentications per client IP within the window before `rate_limited`.' },
  { key: 'limits.authFailureWindowSec', env: 'TPWS_AUTH_FAILURE_WINDOW_SEC', type: 'int', min: 1, max: 86400, default: 60, doc: 'Sliding window of the failed-authentication limit.' },
  { key: 'limits.maxBufferedBytes', env: 'TPWS_MAX_BUFFERED_BYTES', type: 'int', min: 1024, max: 1_073_741_824, default: 4_194_304, doc: 'Unsent bytes queued for one socket; past it the socket is closed as a slow consumer (4100).' },
  { key: 'limits.maxPendingBeforeAuth', env: 'TPWS_MAX_PENDING_BEFORE_AUTH', type: 'int', min: 0, max: 1000, default: 32, doc: 'Client messages held while authentication is still running; more are answered `rate_limited`.' },
  { key: 'heartbeat.pingIntervalSec', env: 'TPWS_PING_INTERVAL_SEC', type: 'int', min: 1, max: 3600, default: 30, doc: 'Interval of the server `ping` message (also sent to clients in `connected.config.ping_interval`).' },
  { key: 'heartbeat.pongTimeoutSec', env: 'TPWS_PONG_TIMEOUT_SEC', type: 'int', min: 1, max: 86400, default: 60, doc: 'A socket with no client ping/pong (JSON or RFC 6455) for longer than this is closed (4102).' },
  { key: 'shutdown.timeoutMs', env: 'TPWS_SHUTDOWN_TIMEOUT_MS', type: 'int', min: 0, max: 600_000, default: 5000, doc: 'On SIGTERM, how long closing sockets may take before they are cut.' },
  { key: 'ingest.socket', env: 'TPWS_SOCKET', flag: 'socket', type: 'string', default: null, defaultDoc: '`$RUNTIME_DIRECTORY/ingest.sock` (systemd), else `<stateDir>/ingest.sock`', doc: 'Path of the Unix socket where PHP pushes events; empty string disables it.' },
  { key: 'ingest.socketMode', env: 'TPWS_SOCKET_MODE', flag: 'socket-mode', type: 'mode', default: '0660', doc: 'Octal file mode of the ingest socket.' },
  { key: 'ingest.socketGroup', env: 'TPWS_SOCKET_GROUP', flag: 'socket-group', type: 'string', default: null, doc: 'Group (name or gid) given to the ingest socket, e.g. `www-data`.' },
  { key: 'ingest.maxFrameBytes', env: 'TPWS_INGEST_MAX_FRAME_BYTES', type: 'int', min: 1024, max: 268_435_456, default: 4_194_304, doc: 'Largest ingest frame (one event or one batch).' },
  { key: 'ingest.maxBatchEvents', env: 'TPWS_INGEST_MAX_BATCH_EVENTS', type: 'int', min: 1, max: 100_000, default: 1000, doc: 'Most events in one ingest batch frame.' },
  { key: 'ingest.maxPayloadBytes', env: 'TPWS_MAX_PAYLOAD_BYTES', type: 'int', min: 256, max: 16_777_216, default: 65536, doc: 'Largest event payload, JSON-encoded.' },
  { key: 'ingest.ackAfter', env: 'TPWS_INGEST_ACK_AFTER', type: 'enum', values: ['journal', 'delivery'], default: 'journal', doc: 'When an ingest ack is sent: `journal` once the event is fanned out and written to the events table (durable history), `delivery` as soon as it is fanned out (faster acks; the journal write follows).' },
  { key: 'dedup.windowSize', env: 'TPWS_DEDUP_WINDOW_SIZE', type: 'int', min: 1, max: 10_000_000, default: 100_000, doc: 'Event ids remembered for de-duplication (oldest forgotten first).' },
  { key: 'dedup.windowSec', env: 'TPWS_DEDUP_WINDOW_SEC', type: 'int', min: 1, max: 604_800, default: 3600, doc: 'How long an event id is remembered for de-duplication.' },
  { key: 'journal.batchSize', env: 'TPWS_JOURNAL_BATCH_SIZE', type: 'int', min: 1, max: 10_000, default: 500, doc: 'Socket events written to the events table per INSERT.' },
  { key: 'journal.flushMs', env: 'TPWS_JOURNAL_FLUSH_MS', type: 'int', min: 0, max: 60_000, default: 0, doc: 'Extra wait to gather socket events into one INSERT when the journal is idle (0: write at once; a busy journal batches by itself).' },
  { key: 'journal.maxQueue', env: 'TPWS_JOURNAL_MAX_QUEUE', type: 'int', min: 1, max: 10_000_000, default: 100_000, doc: 'Socket events kept in memory while the store is down; past it the oldest are dropped from the history (they were delivered).' },
  { key: 'resume.ringSize', env: 'TPWS_RESUME_RING_SIZE', type: 'int', min: 0, max: 1_000_000, default: 10_000, doc: 'Recent events kept in memory to answer a client\'s `resume` (docs/protocol.md §Resume); older ones are read from the events table. 0 reads every resume from the table.' },
  { key: 'resume.ringMaxAgeSec', env: 'TPWS_RESUME_RING_MAX_AGE_SEC', type: 'int', min: 1, max: 86_400, default: 600, doc: 'Events older than this leave the in-memory ring (they stay in the events table for `retention.hours`).' },
  { key: 'resume.maxEvents', env: 'TPWS_RESUME_MAX_EVENTS', type: 'int', min: 1, max: 1_000_000, default: 10_000, doc: 'Most events one `resume` may scan (every channel\'s, not only the client\'s); a longer gap is answered `recovered: false`, and the client reloads its state.' },
  { key: 'poller.enabled', env: 'TPWS_POLLER_ENABLED', type: 'bool', default: true, doc: 'Poll the events table for rows with `processed = 0`.' },
  { key: 'poller.intervalMs', env: 'TPWS_POLLER_INTERVAL_MS', type: 'int', min: 10, max: 600_000, default: 100, doc: 'Poll interval after a batch that found rows but was not full (a full batch polls again at once).' },
  { key: 'poller.idleIntervalMs', env: 'TPWS_POLLER_IDLE_INTERVAL_MS', type: 'int', min: 10, max: 600_000, default: 250, doc: 'Poll interval while the table has nothing to deliver (TeamPass polled every 500 ms, in a transaction).' },
  { key: 'poller.batchSize', env: 'TPWS_POLLER_BATCH_SIZE', type: 'int', min: 1, max: 100_000, default: 1000, doc: 'Rows read per poll.' },
  { key: 'poller.maxAgeSec', env: 'TPWS_POLLER_MAX_AGE_SEC', type: 'int', min: 1, max: 31_536_000, default: 300, doc: 'Rows older than this when first seen are marked expired (processed = 3), not delivered.' },
  { key: 'poller.maxBackoffMs', env: 'TPWS_POLLER_MAX_BACKOFF_MS', type: 'int', min: 10, max: 600_000, default: 5000, doc: 'Cap of the exponential backoff (with jitter) while the store is down.' },
  { key: 'retention.hours', env: 'TPWS_RETENTION_HOURS', type: 'int', min: 1, max: 87_600, default: 24, doc: 'Processed events older than this are deleted by the hourly cleanup.' },
  { key: 'retention.intervalSec', env: 'TPWS_RETENTION_INTERVAL_SEC', type: 'int', min: 1, max: 86_400, default: 3600, doc: 'Interval of the cleanup of old events and expired tokens.' },
  {
    key: 'teampass.root', env: 'TPWS_TEAMPASS_ROOT', flag: 'teampass-root', type: 'string', default: null,
    doc: 'TeamPass installation directory: its `app/config/settings.php` (database, table prefix, Defuse-encrypted password) and `app/websocket/config/websocket.php` (host, port, limits, retention) are read in place. Values set in a config file, the environment or by flags win over what is read.',
  },
  { key: 'teampass.editionLockTimeoutSec', env: 'TPWS_EDITION_LOCK_TIMEOUT_SEC', type: 'int', min: 1, max: 86_400, default: 300, doc: 'Age after which an item edit lock is no longer reported (TeamPass EDITION_LOCK_HEARTBEAT_TIMEOUT).' },
  { key: 'teampass.kbLockTimeoutSec', env: 'TPWS_KB_LOCK_TIMEOUT_SEC', type: 'int', min: 1, max: 86_400, default: 300, doc: 'Age after which a KB edit lock is no longer reported.' },
  { key: 'teampass.lockReleaseGraceMs', env: 'TPWS_LOCK_RELEASE_GRACE_MS', type: 'int', min: 0, max: 3_600_000, default: 5000, doc: 'After a user\'s last socket closes, how long to wait before releasing their item and KB edit locks (`*_edition_stopped`, reason `disconnected`); a new socket of the user within it cancels the release, so a page navigation keeps the lock.' },
];
