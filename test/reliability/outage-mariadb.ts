/**
 * Faults on a PrivateMariadb for the store-outage scenario, none of which
 * blocks the event loop: the daemon under test runs in the test's process, so
 * a synchronous restart (PrivateMariadb.restart) would freeze it too and hide
 * what it does while the database comes back.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { PrivateMariadb } from '../helpers/private-mariadb.js';
import { until } from '../helpers/until.js';

const SCRIPT = fileURLToPath(new URL('../helpers/start-mariadb.sh', import.meta.url));
const run = promisify(execFile);

/** Start the killed server again on its data directory and port, asynchronously; `db.pid` becomes the new server's. */
export async function restartMariadb(db: PrivateMariadb): Promise<void> {
  const { stdout } = await run('bash', [SCRIPT, '--restart', db.datadir, String(db.port)], { encoding: 'utf8' });
  const pid = /^export TPWS_TEST_MYSQL_PID=(\d+)$/m.exec(stdout)?.[1];
  if (pid === undefined) throw new Error(`start-mariadb.sh --restart printed no pid: ${stdout}`);
  db.pid = Number(pid);
}

/**
 * SIGSTOP the server and wait until every one of its threads is stopped, so
 * that whatever the daemon sends from now on meets a hung server.
 */
export async function hang(db: PrivateMariadb): Promise<void> {
  process.kill(db.pid, 'SIGSTOP');
  await until(() => threadStates(db.pid).every((s) => s === 'T'), 'every MariaDB thread stopped');
}

/** SIGCONT the server (idempotent; a server already gone is fine). */
export function resume(db: PrivateMariadb): void {
  try {
    process.kill(db.pid, 'SIGCONT');
  } catch {
    // gone
  }
}

/** The scheduler state letter of each thread of `pid` (`T`: stopped), from /proc. */
function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      return []; // a thread that ended meanwhile
    }
    // The command name (in parentheses) may hold spaces: the state follows its closing parenthesis.
    const at = stat.lastIndexOf(')') + 2;
    return [stat.slice(at, at + 1)];
  });
}
