// tp-ws under PM2, for hosts that already run their Node services with it.
// On a systemd host deploy/systemd/tp-ws.service is simpler and hardened.
//
//   sudo -u tp-ws pm2 start /opt/tp-ws/lib/node_modules/tp-ws/deploy/pm2/ecosystem.config.cjs
//   sudo -u tp-ws pm2 save        # and `pm2 startup` once, to start at boot
//
// Run PM2 as the tp-ws user (deploy/README.md creates it), a member of the
// web server's group (www-data) so tp-ws can give its ingest socket to PHP.
// The ingest socket's directory must exist before tp-ws starts (/run is
// emptied at boot): see TPWS_SOCKET below.

'use strict';

module.exports = {
  apps: [
    {
      name: 'tp-ws',
      // Node runs tp-ws directly (interpreter 'none': PM2 starts the program
      // given in `script` as it is), so tp-ws gets PM2's signals itself and
      // no PM2 code runs inside it.
      script: '/usr/bin/node',
      args: ['/opt/tp-ws/lib/node_modules/tp-ws/bin/tp-ws.js', 'serve'],
      interpreter: 'none',

      // One process, never a cluster. Each tp-ws process owns its ingest
      // socket (a second one on the same path refuses to start) and its own
      // WebSocket clients; the store lets one process at a time poll the
      // events table. Cluster mode would share the port between processes
      // whose clients receive only the events that reach their own process,
      // and every process after the first would fail on the ingest socket.
      exec_mode: 'fork',
      instances: 1,

      autorestart: true,
      // A process that exits within 5 s of its start counts as a failed
      // start; PM2 stops trying after 10 in a row (a bad configuration).
      min_uptime: 5000,
      max_restarts: 10,
      restart_delay: 2000,

      // `pm2 stop` and `pm2 restart` send SIGINT, which tp-ws handles as it
      // does SIGTERM: it stops accepting, closes every socket with 4200
      // (clients reconnect at once), flushes its journal and closes the
      // store, within shutdown.timeoutMs (TPWS_SHUTDOWN_TIMEOUT_MS, 5 s by
      // default). PM2 sends SIGKILL after kill_timeout (1.6 s by default,
      // too short): keep it above shutdown.timeoutMs, and raise both
      // together.
      kill_timeout: 15000,

      // tp-ws writes JSON lines to stdout, each with its own time; PM2 keeps
      // them in its log files (`pm2 logs tp-ws`) without adding a prefix.
      time: false,

      // The same variables as deploy/env/tp-ws.env.example. Secrets belong in
      // files readable by tp-ws only (TPWS_STORE_PASSWORD_FILE,
      // TPWS_JWT_SECRET_FILE), not here: PM2 shows the environment in
      // `pm2 env` and keeps it in its dump file.
      env: {
        TPWS_HOST: '127.0.0.1',
        TPWS_PORT: '8080',
        TPWS_STATE_DIR: '/var/lib/tp-ws',
        // A directory made at every boot, owned by tp-ws, group www-data,
        // mode 0750; with systemd-tmpfiles, the line
        //   d /run/tp-ws 0750 tp-ws www-data -
        // in /etc/tmpfiles.d/tp-ws.conf.
        TPWS_SOCKET: '/run/tp-ws/ingest.sock',
        TPWS_SOCKET_MODE: '0660',
        TPWS_SOCKET_GROUP: 'www-data',
        // TPWS_STORE: 'mysql://tpws@127.0.0.1:3306/app',
        // TPWS_STORE_PASSWORD_FILE: '/etc/tp-ws/db-password',
      },
    },
  ],
};
