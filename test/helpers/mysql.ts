/**
 * The MySQL test gate. `TPWS_TEST_MYSQL_URL` names a server (no database) where
 * the tests may create and drop `tpws_test_*` databases:
 *
 *   eval "$(bash test/helpers/start-mariadb.sh)"
 *
 * Without it the MySQL suites are skipped, loudly; in CI (`CI` set) they fail.
 */
import { randomBytes } from 'node:crypto';
import { createConnection } from 'mysql2/promise';
import { mysqlConnectionOptions } from '../../src/store/mysql-store.js';
import { parseMysqlUrl } from '../../src/store/store-url.js';
import { describeRequiring } from './requires.js';

/** `mysql://user:pass@host:port/` of the test server, or undefined when none is configured. */
export const MYSQL_URL: string | undefined = process.env.TPWS_TEST_MYSQL_URL || undefined;

const ENABLE_HINT = 'eval "$(bash test/helpers/start-mariadb.sh)"';

/** Run `sql` on the test server without selecting a database. */
async function onServer(sql: string): Promise<void> {
  if (!MYSQL_URL) throw new Error('TPWS_TEST_MYSQL_URL is not set');
  const conn = await createConnection(mysqlConnectionOptions(parseMysqlUrl(MYSQL_URL, { requireDatabase: false })));
  try {
    await conn.query(sql);
  } finally {
    await conn.end();
  }
}

/**
 * Create an empty database `tpws_test_<hex>` (utf8mb4_unicode_ci, like TeamPass)
 * and return its URL; `drop()` removes it.
 */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tpws_test_${randomBytes(6).toString('hex')}`;
  await onServer(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  const url = new URL(MYSQL_URL!);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => onServer(`DROP DATABASE IF EXISTS \`${name}\``) };
}

/** `describe` for a suite that needs MySQL: runs it when `TPWS_TEST_MYSQL_URL` is set, otherwise it fails in CI and skips loudly elsewhere. */
export function describeMysql(name: string, fn: () => void): void {
  describeRequiring(name, { missing: MYSQL_URL ? undefined : 'TPWS_TEST_MYSQL_URL is not set', needs: 'MariaDB (TPWS_TEST_MYSQL_URL)', hint: ENABLE_HINT }, fn);
}
