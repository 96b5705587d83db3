/**
 * `SqliteStore` runs its SQL in a worker thread. These tests check
 * what that buys and what it must not break: the main loop keeps running while
 * a write waits for another process's lock; bulk calls are chunked and let
 * other calls through; errors keep their codes across the thread boundary; a
 * dead thread fails calls instead of hanging them; close() ends the thread.
 *
 * The worker runs the built `dist/store/sqlite-worker.js`: `npm test` builds
 * first (run `npm run build` before `npx vitest` on this file alone).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTpWsError, TpWsError } from '../../src/errors.js';
import { parseEvent } from '../../src/event.js';
import { Journal } from '../../src/pipeline/journal.js';
import { kWorker, SqliteStore } from '../../src/store/sqlite-store.js';
import { PROCESSED, type EventInsert } from '../../src/store/store.js';

const PREFIX = 'teampass_';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BETTER_SQLITE3 = createRequire(import.meta.url).resolve('better-sqlite3');

const event = (id: string): EventInsert => ({ eventUuid: id, eventType: 'item_updated', targetType: 'folder', targetId: 7, payload: '{}' });
const token = (n: number) => n.toString(16).padStart(64, '0');

/** A promise's state, without waiting for it. */
function track<T>(p: Promise<T>): { settled: boolean; promise: Promise<T> } {
  const t = { settled: false, promise: p };
  p.then(() => { t.settled = true; }, () => { t.settled = true; });
  return t;
}

/** Resolve on the next turn of the main loop's timers (not a wait for anything). */
const timerTick = () => new Promise<void>((r) => setTimeout(r, 0));
const immediateTick = () => new Promise<void>((r) => setImmediate(r));

/**
 * Another process holding the file's write lock (`BEGIN IMMEDIATE`), as PHP or
 * a second daemon would, until `release()` commits and ends it.
 */
async function holdWriteLock(path: string, started: ChildProcess[]): Promise<{ release(): Promise<void> }> {
  const script = `
    const Database = require(${JSON.stringify(BETTER_SQLITE3)});
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    process.stdin.once('data', () => { db.exec('COMMIT'); db.close(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['-e', script, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(child);
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (l) => (l === 'locked' ? resolve() : reject(new Error(l))));
    child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
  });
  return {
    async release() {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin!.write('commit\n');
      await exited;
    },
  };
}

/** Run `node` with `args` to its end. */
function runNode(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => { stdout += b; });
    child.stderr!.on('data', (b: Buffer) => { stderr += b; });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('SqliteStore in a worker thread', () => {
  let dir: string;
  let path: string;
  let store: SqliteStore;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tpws-sqlite-worker-'));
    path = join(dir, 'tp-ws.db');
    store = new SqliteStore({ path, prefix: PREFIX });
    await store.migrate();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Columns of the events table by event_uuid, read by a connection of this test. */
  function rows(): Map<string, number> {
    const db = new Database(path, { readonly: true });
    try {
      const all = db.prepare(`SELECT event_uuid, processed FROM ${PREFIX}websocket_events`).all() as { event_uuid: string; processed: number }[];
      return new Map(all.map((r) => [r.event_uuid, r.processed]));
    } finally {
      db.close();
    }
  }

  describe('while another process holds the write lock', () => {
    it('keeps the main loop running while journalEvents waits, and writes once the lock is released', async () => {
      const lock = await holdWriteLock(path, children);
      const call = track(store.journalEvents([event('locked-1'), event('locked-2')]));
      // With the old synchronous store none of these callbacks could run until
      // journalEvents returned (after the lock, or busy_timeout's 5 s).
      let ticks = 0;
      for (let i = 0; i < 20; i++) {
        await immediateTick();
        await timerTick();
        ticks++;
      }
      expect(ticks).toBe(20);
      expect(call.settled).toBe(false);
      await lock.release();
      await expect(call.promise).resolves.toBeUndefined();
      expect(rows()).toEqual(new Map([['locked-1', PROCESSED.DELIVERED], ['locked-2', PROCESSED.DELIVERED]]));
    });

    it('lets the journal settle a slow write as pending (slowWriteMs can fire), then writes it', async () => {
      const journal = new Journal(store, pino({ level: 'silent' }), { batchSize: 500, flushMs: 0, maxQueue: 1000, maxBackoffMs: 100, slowWriteMs: 20 });
      const lock = await holdWriteLock(path, children);
      const ev = parseEvent({ id: 'slow-1', event_type: 'j', target_type: 'user', target_id: 1 }, { maxPayloadBytes: 1000 }, () => 'slow-1');
      expect(await journal.write(ev)).toBe('pending');
      expect(journal.counters.written).toBe(0);
      await lock.release();
      await journal.close(10_000);
      expect(journal.counters.written).toBe(1);
      expect(rows().get('slow-1')).toBe(PROCESSED.DELIVERED);
    });
  });

  describe('an idle poll waiting in the thread (#waitForPending)', () => {
    it('ends when another connection commits a pending row, and the next read finds it', async () => {
      expect(await store.fetchPending(10)).toEqual([]);
      const waiting = track(store.waitForPending(10, 600_000, new AbortController().signal));
      // Another process's insert, as PHP or tp-ws-emit's fallback would make it.
      const db = new Database(path);
      db.prepare(`INSERT INTO ${PREFIX}websocket_events (event_uuid, event_type, target_type, target_id, payload) VALUES ('other-1', 'x', 'broadcast', NULL, '{}')`).run();
      db.close();
      await waiting.promise;
      expect((await store.fetchPending(10)).map((r) => r.eventUuid)).toEqual(['other-1']);
    });

    it('ends when this store inserts a pending row itself (the readiness canary)', async () => {
      expect(await store.fetchPending(10)).toEqual([]);
      const waiting = store.waitForPending(10, 600_000, new AbortController().signal);
      await store.insertPendingEvent(event('own-1'));
      await waiting;
      expect((await store.fetchPending(10)).map((r) => r.eventUuid)).toEqual(['own-1']);
    });

    it('ends at once on abort, and close() does not wait for it', async () => {
      expect(await store.fetchPending(10)).toEqual([]);
      const ac = new AbortController();
      const waiting = store.waitForPending(10, 600_000, ac.signal);
      ac.abort();
      await waiting;
      const again = store.waitForPending(10, 600_000, new AbortController().signal);
      await store.close();
      await again;
    });
  });

  describe('bulk calls', () => {
    it('extends every token of a list longer than one chunk', async () => {
      const n = 2_500;
      await store.insertTokens(Array.from({ length: n }, (_, i) => ({ userId: 1, token: token(i) })), 10);
      const db = new Database(path);
      db.prepare(`INSERT INTO ${PREFIX}users (id, login) VALUES (1, 'alice')`).run();
      db.close();
      await store.extendTokens(Array.from({ length: n }, (_, i) => token(i)), 3600);
      for (const i of [0, 999, 1000, 1999, 2000, n - 1]) {
        const found = await store.findTokenUser(token(i));
        expect(Math.abs(found!.expiresAt - (Date.now() + 3600_000))).toBeLessThan(5_000);
      }
    });

    it('runs a call made during a long extendTokens between its chunks, not after it', async () => {
      const order: string[] = [];
      const big = store.extendTokens(Array.from({ length: 50_000 }, (_, i) => token(i)), 60).then(() => order.push('extendTokens'));
      const small = store.getMisc('nothing').then(() => order.push('getMisc'));
      await Promise.all([big, small]);
      expect(order).toEqual(['getMisc', 'extendTokens']);
    });

    it('marks and deletes more rows than one chunk', async () => {
      const n = 2_500;
      const ids: number[] = [];
      for (let i = 0; i < n; i++) ids.push(await store.insertPendingEvent(event(`bulk-${i}`)));
      await store.insertPendingEvent(event('stays-pending'));
      await store.markProcessed(ids, PROCESSED.REJECTED);
      const marked = rows();
      expect([...marked.values()].filter((p) => p === PROCESSED.REJECTED)).toHaveLength(n);
      const db = new Database(path);
      db.prepare(`UPDATE ${PREFIX}websocket_events SET processed_at = datetime('now', '-48 hours') WHERE processed <> 0`).run();
      db.close();
      expect(await store.deleteOldEvents(24)).toBe(n);
      expect(rows()).toEqual(new Map([['stays-pending', PROCESSED.PENDING]]));
    });
  });

  describe('errors across the thread boundary', () => {
    it('keeps the TpWsError code and the driver code in cause', async () => {
      await store.insertPendingEvent(event('dup'));
      const err = await store.insertPendingEvent(event('dup')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TpWsError);
      expect(isTpWsError(err, 'TPWS_ERR_STORE_UNAVAILABLE')).toBe(true);
      expect((err as TpWsError).message).toBe('sqlite store: insertPendingEvent failed (SQLITE_CONSTRAINT_UNIQUE)');
      expect(((err as TpWsError).cause as { code: string }).code).toBe('SQLITE_CONSTRAINT_UNIQUE');
    });

    it('rejects migrate with TPWS_ERR_MIGRATION naming the file and the reason', async () => {
      const other = join(dir, 'clash.db');
      const db = new Database(other);
      db.exec(`CREATE TABLE ${PREFIX}websocket_events (x INTEGER)`); // no columns for the schema's indexes
      db.close();
      const s = new SqliteStore({ path: other, prefix: PREFIX });
      try {
        const err = await s.migrate().catch((e: unknown) => e);
        expect(isTpWsError(err, 'TPWS_ERR_MIGRATION')).toBe(true);
        expect((err as Error).message).toMatch(/^sqlite migration 001_schema\.sql failed \(SQLITE_ERROR: .*processed/);
      } finally {
        await s.close();
      }
    });

    it('rejects every call with the open error when the file cannot be opened, and closes cleanly', async () => {
      const notADir = join(dir, 'file');
      writeFileSync(notADir, '');
      const s = new SqliteStore({ path: join(notADir, 'tp-ws.db'), prefix: PREFIX });
      for (const call of [s.migrate(), s.ping()]) {
        const err = await call.catch((e: unknown) => e);
        expect(isTpWsError(err, 'TPWS_ERR_STORE_UNAVAILABLE')).toBe(true);
        expect((err as Error).message).toMatch(/^sqlite store: open failed \(E[A-Z]+\)$/);
      }
      await s.close();
    });
  });

  describe('a worker that dies', () => {
    it('fails the pending and every later call with TPWS_ERR_STORE_UNAVAILABLE', async () => {
      const worker = store[kWorker]!;
      const exited = new Promise((r) => worker.once('exit', r));
      // A request the thread cannot even read: it throws there, uncaught, and the thread ends.
      worker.postMessage(null);
      const pending = store.ping().catch((e: unknown) => e);
      await exited;
      for (const err of [await pending, await store.getMisc('x').catch((e: unknown) => e)]) {
        expect(isTpWsError(err, 'TPWS_ERR_STORE_UNAVAILABLE')).toBe(true);
        expect((err as Error).message).toMatch(/worker failed: TypeError/);
      }
      await store.close();
    });

    it('fails calls when the thread is terminated from outside', async () => {
      await store[kWorker]!.terminate();
      const err = await store.journalEvents([event('lost')]).catch((e: unknown) => e);
      expect(isTpWsError(err, 'TPWS_ERR_STORE_UNAVAILABLE')).toBe(true);
      expect((err as Error).message).toBe('sqlite store: journalEvents failed (worker stopped with exit code 1)');
    });
  });

  describe('#close', () => {
    it('is idempotent, stops the thread, and later calls reject with TPWS_ERR_STORE_UNAVAILABLE', async () => {
      await store.journalEvents([event('before-close')]);
      await Promise.all([store.close(), store.close()]);
      await store.close();
      expect(store[kWorker]!.threadId).toBe(-1);
      const err = await store.ping().catch((e: unknown) => e);
      expect(isTpWsError(err, 'TPWS_ERR_STORE_UNAVAILABLE')).toBe(true);
      expect(rows().get('before-close')).toBe(PROCESSED.DELIVERED);
    });

    it('finishes a call made before it', async () => {
      const write = store.journalEvents([event('just-before')]);
      await store.close();
      await expect(write).resolves.toBeUndefined();
      expect(rows().get('just-before')).toBe(PROCESSED.DELIVERED);
    });
  });

  describe('the process around it', () => {
    it('tp-ws migrate exits once done', async () => {
      const r = await runNode([join(ROOT, 'bin/tp-ws.js'), 'migrate', '--store', `sqlite:${join(dir, 'cli.db')}`]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('applied 001_schema.sql');
    });

    it('is kept alive by a pending call, and not by an idle store that was never closed', async () => {
      const url = new URL('dist/store/sqlite-store.js', `file://${ROOT}/`).href;
      const script = `
        const { SqliteStore } = await import(${JSON.stringify(url)});
        const s = new SqliteStore({ path: process.argv[1], prefix: 'teampass_' });
        const r = await s.migrate();
        process.stdout.write(JSON.stringify(r));
      `;
      const r = await runNode(['--input-type=module', '-e', script, join(dir, 'alive.db')]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ applied: ['001_schema.sql', '002_history.sql'], mode: 'full' });
    });
  });
});
