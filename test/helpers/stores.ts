/**
 * Run one suite against every store kind: the embedded SQLite file and a real
 * MariaDB/MySQL database (gated like `describeMysql`).
 *
 *   describeStores('Store', ({ kind, newStoreUrl }) => {
 *     it('…', async () => { const store = openStore(await newStoreUrl(), 'teampass_'); … });
 *   });
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe } from 'vitest';
import { createTestDatabase, describeMysql } from './mysql.js';

export const STORE_KINDS = ['sqlite', 'mysql'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export interface StoreCase {
  kind: StoreKind;
  /** A fresh, empty store URL, and how to remove it. */
  makeUrl(): Promise<{ url: string; cleanup(): Promise<void> }>;
}

/** One case per store kind, e.g. as `describe.each` input. SQLite files live in a temp dir under `os.tmpdir()`. */
export function storeCases(): StoreCase[] {
  return [
    {
      kind: 'sqlite',
      async makeUrl() {
        const dir = await mkdtemp(join(tmpdir(), 'tpws-store-'));
        return { url: `sqlite:${join(dir, 'tp-ws.db')}`, cleanup: () => rm(dir, { recursive: true, force: true }) };
      },
    },
    {
      kind: 'mysql',
      async makeUrl() {
        const db = await createTestDatabase();
        return { url: db.url, cleanup: db.drop };
      },
    },
  ];
}

export interface StoreSuiteContext {
  kind: StoreKind;
  /** A new empty database (SQLite file or MySQL database) for this suite; removed in `afterAll`. */
  newStoreUrl(): Promise<string>;
}

/**
 * `describe(\`${name} [kind]\`)` once per store kind. The MySQL block follows
 * `describeMysql`: skipped loudly without `TPWS_TEST_MYSQL_URL`, failing in CI.
 * Every URL handed out by `newStoreUrl` is cleaned up after the block; close
 * the stores you opened before that (in your own `afterAll`/`afterEach`).
 */
export function describeStores(name: string, fn: (ctx: StoreSuiteContext) => void): void {
  for (const c of storeCases()) {
    const body = () => {
      const cleanups: (() => Promise<void>)[] = [];
      afterAll(async () => {
        for (const cleanup of cleanups.reverse()) await cleanup();
      });
      fn({
        kind: c.kind,
        async newStoreUrl() {
          const { url, cleanup } = await c.makeUrl();
          cleanups.push(cleanup);
          return url;
        },
      });
    };
    if (c.kind === 'mysql') describeMysql(`${name} [mysql]`, body);
    else describe(`${name} [sqlite]`, body);
  }
}
