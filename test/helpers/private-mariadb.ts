import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./start-mariadb.sh', import.meta.url));

function parseExports(out: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of out.matchAll(/^export (\w+)=(.*)$/gm)) env[m[1]] = m[2];
  return env;
}

/**
 * A MariaDB server of the test's own, for tests that kill it: started by
 * test/helpers/start-mariadb.sh, restarted on the same data directory and port.
 */
export class PrivateMariadb {
  private constructor(readonly url: string, public pid: number, readonly datadir: string, readonly port: number) {}

  static start(): PrivateMariadb {
    const env = parseExports(execFileSync('bash', [SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    const url = env.TPWS_TEST_MYSQL_URL;
    return new PrivateMariadb(url, Number(env.TPWS_TEST_MYSQL_PID), env.TPWS_TEST_MYSQL_DATADIR, Number(new URL(url).port));
  }

  /** SIGKILL the server and wait until it is gone. */
  async kill(): Promise<void> {
    process.kill(this.pid, 'SIGKILL');
    while (alive(this.pid)) await new Promise((r) => setTimeout(r, 20));
  }

  restart(): void {
    const env = parseExports(execFileSync('bash', [SCRIPT, '--restart', this.datadir, String(this.port)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    this.pid = Number(env.TPWS_TEST_MYSQL_PID);
  }

  async stop(): Promise<void> {
    if (alive(this.pid)) process.kill(this.pid, 'SIGTERM');
    for (let i = 0; i < 300 && alive(this.pid); i++) await new Promise((r) => setTimeout(r, 50));
    rmSync(this.datadir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
