#!/usr/bin/env bash
# Start a throwaway MariaDB for the MySQL test suite and print what to export.
#
#   eval "$(bash test/helpers/start-mariadb.sh)"
#   npm test
#   kill "$TPWS_TEST_MYSQL_PID"; rm -rf "$TPWS_TEST_MYSQL_DATADIR"
#
# stdout carries only `export NAME=value` lines; progress and errors go to stderr.
# The server listens on 127.0.0.1 on a free port, with a fresh data directory
# under $TMPDIR, and a user `tpws` (random password) allowed to create and drop
# the per-test-file databases `tpws_test_*`, and test users with their grants.
set -euo pipefail

# Debian puts mariadbd in /usr/sbin, which a non-root PATH may lack.
PATH="$PATH:/usr/sbin:/usr/local/sbin"
command -v mariadbd >/dev/null 2>&1 || { echo "start-mariadb: mariadbd not found (apt-get install mariadb-server)" >&2; exit 1; }

# `--restart DATADIR PORT` starts a server again on the data directory of one
# that was stopped or killed (the failure tests do this); nothing is re-created.
restart=
if [ "${1:-}" = "--restart" ]; then
  restart=1
  datadir=$2
  port=$3
else
  datadir=$(mktemp -d "${TMPDIR:-/tmp}/tpws-mariadb.XXXXXX")
  password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
fi
sock="$datadir/mysqld.sock"
log="$datadir/error.log"

# mariadbd refuses to run as root unless told to; as another user it simply runs as that user.
user_opt=()
[ "$(id -u)" -eq 0 ] && user_opt=(--user=root)

fail() {
  echo "start-mariadb: $1" >&2
  [ -f "$log" ] && tail -n 20 "$log" >&2
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  [ -n "$restart" ] || rm -rf "$datadir"
  exit 1
}

[ -n "$restart" ] || mariadb-install-db --no-defaults "${user_opt[@]}" --datadir="$datadir/data" \
  --auth-root-authentication-method=socket --skip-test-db >"$datadir/install.log" 2>&1 \
  || { cat "$datadir/install.log" >&2; fail "mariadb-install-db failed"; }

# Detached from our stdout so that `eval "$(...)"` returns as soon as this script exits.
mariadbd --no-defaults "${user_opt[@]}" --datadir="$datadir/data" --socket="$sock" \
  --port="$port" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$datadir/mariadbd.pid" \
  --log-error="$log" --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=2 \
  </dev/null >/dev/null 2>&1 &
pid=$!

for _ in $(seq 1 300); do
  mariadb-admin --no-defaults --socket="$sock" -u "$(id -un)" ping >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "mariadbd exited during start-up"
  sleep 0.1
done
mariadb-admin --no-defaults --socket="$sock" -u "$(id -un)" ping >/dev/null 2>&1 || fail "mariadbd did not answer within 30 s"

if [ -n "$restart" ]; then
  echo "start-mariadb: MariaDB restarted, pid $pid on 127.0.0.1:$port" >&2
  echo "export TPWS_TEST_MYSQL_PID=$pid"
  exit 0
fi

mariadb --no-defaults --socket="$sock" -u "$(id -un)" <<SQL || fail "could not create the tpws user"
CREATE USER 'tpws'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'tpws'@'127.0.0.1' WITH GRANT OPTION;
SQL

echo "start-mariadb: MariaDB pid $pid on 127.0.0.1:$port (datadir $datadir)" >&2
echo "export TPWS_TEST_MYSQL_URL=mysql://tpws:$password@127.0.0.1:$port/"
echo "export TPWS_TEST_MYSQL_PID=$pid"
echo "export TPWS_TEST_MYSQL_DATADIR=$datadir"
