import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { Hub } from '../../src/fanout/hub.js';
import { TablePoller } from '../../src/ingest/table-poller.js';
import { createLogger } from '../../src/log.js';
import { Deduper } from '../../src/pipeline/dedup.js';
import { History } from '../../src/pipeline/history.js';
import { position } from '../../src/pipeline/position.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { openStore } from '../../src/store/open-store.js';
import { PROCESSED } from '../../src/store/store.js';
import { describeStores } from '../helpers/stores.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';
import { until } from '../helpers/until.js';
import { IngestClient } from '../../src/ingest/client.js';
import { openSeeder, type Seeder } from '../helpers/seed.js';

const P = 'teampass_';

describeStores('ingest socket and table poller', ({ newStoreUrl }) => {
  let d: TestDaemon;
  let sql: Seeder;
  let alice: TestClient; // user 1, subscribed to folder 10
  let bob: TestClient; // user 2
  let ingest: IngestClient;

  const row = async (uuid: string) => (await sql.execSql<{ processed: number; event_uuid: string; payload: string; target_type: string; target_id: number | null; event_type: string }>(
    'SELECT processed, event_uuid, payload, target_type, target_id, event_type FROM {{prefix}}websocket_events WHERE event_uuid = ?', [uuid]))[0];
  const rowById = async (id: number) => (await sql.execSql<{ processed: number }>('SELECT processed FROM {{prefix}}websocket_events WHERE id = ?', [id]))[0];
  /** Insert a row the way TeamPass's emitWebSocketEvent() does (no event_uuid). */
  const teampassInsert = async (eventType: string, targetType: string, targetId: number | null, payload: string, createdSql?: string): Promise<number> => {
    await sql.execSql(
      `INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload${createdSql ? ', created_at' : ''}) VALUES (?, ?, ?, ?${createdSql ? `, ${createdSql}` : ''})`,
      [eventType, targetType, targetId, payload],
    );
    // This connection's own last insert (the journal inserts rows concurrently).
    return Number((await sql.execSql<{ id: number }>(`SELECT ${sql.kind === 'sqlite' ? 'last_insert_rowid()' : 'LAST_INSERT_ID()'} AS id`))[0].id);
  };
  /** A broadcast barrier: everything a client got before it was sent earlier. */
  const barrier = async () => {
    const { id } = d.daemon.publish({ event_type: 'barrier', target_type: 'broadcast' });
    for (const c of [alice, bob]) expect((await c.nextEvent()).id).toBe(id);
  };

  beforeAll(async () => {
    const url = await newStoreUrl();
    d = await startDaemon({ 'store.url': url, 'poller.intervalMs': 20, 'poller.idleIntervalMs': 20 });
    sql = await openSeeder(url, P);
    const jwt = (userId: number, folders: number[]) => mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId, folders, ttlSec: 600 });
    alice = (await TestClient.login(d.url(await jwt(1, [10])))).client;
    bob = (await TestClient.login(d.url(await jwt(2, [])))).client;
    await alice.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } });
    ingest = await IngestClient.connect(d.daemon.ingest!.path);
  });

  afterAll(async () => {
    await ingest?.close();
    for (const c of [alice, bob]) c?.ws.terminate();
    await sql?.close();
    await d?.stop();
  });

  describe('socket', () => {
    it('acks an NDJSON event with its id and seq, delivers it, and journals it as processed', async () => {
      const ack = await ingest.request({ id: 'evt-ndjson-1', event_type: 'item_updated', target_type: 'folder', target_id: 10, payload: { item_id: 4, label: 'é/x' } });
      expect(ack).toEqual({ ok: true, id: 'evt-ndjson-1', seq: expect.any(Number) });
      const m = await alice.nextEvent();
      expect(m).toMatchObject({ event: 'item_updated', id: 'evt-ndjson-1', seq: ack.seq, data: { item_id: 4, label: 'é/x' } });
      // The ack waited for the journal: the row is already there.
      expect(await row('evt-ndjson-1')).toMatchObject({ processed: PROCESSED.DELIVERED, event_type: 'item_updated', target_type: 'folder', target_id: 10 });
      expect(d.daemon.pipeline.counters.bySource.socket).toBe(1);
      const stored = (await row('evt-ndjson-1')).payload;
      expect(typeof stored === 'string' ? JSON.parse(stored) : stored).toEqual({ item_id: 4, label: 'é/x' });
    });

    it('assigns a UUIDv7 when the sender gave no id', async () => {
      const ack = await ingest.request({ event_type: 'hello', target_type: 'user', target_id: 2 });
      expect(ack.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect((await bob.nextEvent()).id).toBe(ack.id);
    });

    it('takes length-prefixed msgpack batches and answers per event, in msgpack', async () => {
      const mp = await IngestClient.connect(d.daemon.ingest!.path, { encoding: 'msgpack' });
      const ack = await mp.request([
        { id: 'mp-1', event_type: 'task_completed', target_type: 'user', target_id: 2, payload: { n: 1 } },
        { id: 'mp-2', event_type: 'oops', target_type: 'room' },
        { id: 'mp-3', event_type: 'task_completed', target_type: 'user', target_id: 2, payload: [] },
      ]);
      expect(ack).toEqual({
        ok: false,
        results: [
          { ok: true, id: 'mp-1', seq: expect.any(Number) },
          { ok: false, id: 'mp-2', error: { code: 'TPWS_ERR_INVALID_EVENT', message: 'target_type: must be one of user, folder, kb, broadcast' } },
          { ok: true, id: 'mp-3', seq: expect.any(Number) },
        ],
      });
      expect((await bob.nextEvent()).id).toBe('mp-1');
      expect(await bob.nextEvent()).toMatchObject({ id: 'mp-3', data: {} });
      await mp.close();
    });

    it('pipelines: many frames in one write, a frame split over many writes, acks in order', async () => {
      const frames = Array.from({ length: 50 }, (_, i) => ingest.encode({ id: `pipe-${i}`, event_type: 'p', target_type: 'user', target_id: 2 }));
      ingest.writeRaw(Buffer.concat(frames.slice(0, 25)));
      for (const b of Buffer.concat(frames.slice(25))) ingest.writeRaw(Buffer.from([b]));
      for (let i = 0; i < 50; i++) expect((await ingest.nextAck()).id).toBe(`pipe-${i}`);
      for (let i = 0; i < 50; i++) expect((await bob.nextEvent()).id).toBe(`pipe-${i}`);
    });

    it('answers bad frames with a stable code and keeps the NDJSON connection', async () => {
      ingest.writeRaw('{"event_type": nope}\n');
      expect(await ingest.nextAck()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_BAD_FRAME' } });
      ingest.writeRaw('42\n');
      expect(await ingest.nextAck()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_BAD_FRAME', message: 'a frame must be one event (an object) or a batch (an array of events)' } });
      ingest.writeRaw(JSON.stringify({ event_type: 'x', target_type: 'user', target_id: 'me', id: 'wrong-type' }) + '\n');
      expect(await ingest.nextAck()).toEqual({ ok: false, id: 'wrong-type', error: { code: 'TPWS_ERR_INVALID_EVENT', message: 'target_id: must be an integer from 1 to 4294967295' } });
      ingest.writeRaw(JSON.stringify({ event_type: 'x', target_type: 'kb', payload: { big: 'x'.repeat(70_000) } }) + '\n');
      expect(await ingest.nextAck()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_INVALID_EVENT', message: 'payload: must be at most 65536 bytes encoded' } });
      ingest.writeRaw(JSON.stringify(Array.from({ length: 1001 }, () => ({ event_type: 'x', target_type: 'kb' }))) + '\n');
      expect(await ingest.nextAck()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_BATCH_TOO_LARGE' } });
      expect(await ingest.request({ event_type: 'still-ok', target_type: 'user', target_id: 2 })).toMatchObject({ ok: true });
      expect((await bob.nextEvent()).event).toBe('still-ok');
    });

    it('answers an oversize NDJSON line, skips it and goes on', async () => {
      ingest.writeRaw('{"pad":"' + 'z'.repeat(4 * 1024 * 1024) + '"}\n');
      expect(await ingest.nextAck()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_FRAME_TOO_LARGE' } });
      expect(await ingest.request({ event_type: 'after-big', target_type: 'user', target_id: 2 })).toMatchObject({ ok: true });
      expect((await bob.nextEvent()).event).toBe('after-big');
    });

    it('closes a msgpack connection after an oversize length, and one with an unknown first byte', async () => {
      const mp = await IngestClient.connect(d.daemon.ingest!.path, { encoding: 'msgpack' });
      mp.writeRaw(Buffer.from([0x00, 0xff, 0xff, 0xff]));
      expect(await mp.nextAck()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_FRAME_TOO_LARGE' } });
      await mp.closed;
      const bad = await IngestClient.connect(d.daemon.ingest!.path);
      bad.writeRaw('GET / HTTP/1.1\r\n\r\n');
      expect(await bad.nextAck()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_BAD_FRAME' } });
      await bad.closed;
    });

    it('does not fan out an id twice: the second send is acked as a duplicate', async () => {
      expect(await ingest.request({ id: 'twice', event_type: 'once', target_type: 'user', target_id: 2 })).toMatchObject({ ok: true, seq: expect.any(Number) });
      expect(await ingest.request({ id: 'twice', event_type: 'once', target_type: 'user', target_id: 2 })).toEqual({ ok: true, id: 'twice', seq: 0, duplicate: true });
      expect((await bob.nextEvent()).id).toBe('twice');
      await barrier();
    });

    it('creates the socket with mode 0660', () => {
      expect(statSync(d.daemon.ingest!.path).mode & 0o777).toBe(0o660);
    });
  });

  describe('table poller', () => {
    it('delivers a row inserted by plain SQL (as TeamPass does) once, to the right sockets, and marks it processed', async () => {
      const fromTable = d.daemon.pipeline.counters.bySource.table;
      const id = await teampassInsert('item_created', 'folder', 10, '{"item_id":9,"label":"from php","server_timestamp":1763769600}');
      const m = await alice.nextEvent();
      expect(d.daemon.pipeline.counters.bySource.table).toBe(fromTable + 1);
      expect(m).toMatchObject({ event: 'item_created', id: `row-${id}`, data: { item_id: 9, label: 'from php', server_timestamp: 1763769600 } });
      await until(async () => (await rowById(id)).processed === PROCESSED.DELIVERED, 'processed = 1');
      await barrier();
    });

    it('delivers a table row whose id was already delivered by the socket only once', async () => {
      // The row comes first (an outbox row), the poller delivers it; the same id then arrives by socket.
      await sql.execSql("INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload, event_uuid) VALUES ('dual', 'user', 2, '{}', 'dual-1')");
      expect((await bob.nextEvent()).id).toBe('dual-1');
      expect(await ingest.request({ id: 'dual-1', event_type: 'dual', target_type: 'user', target_id: 2 })).toMatchObject({ ok: true, duplicate: true });
      await barrier();
      expect((await row('dual-1')).processed).toBe(PROCESSED.DELIVERED);
    });

    it('marks a poison row rejected once and never delivers or retries it', async () => {
      const before = d.daemon.poller!.counters.rowsRejected;
      const a = await teampassInsert('bad_payload', 'user', 2, '"just a string"');
      const b = await teampassInsert('no_target', 'user', null, '{}');
      await until(async () => (await rowById(a)).processed === PROCESSED.REJECTED && (await rowById(b)).processed === PROCESSED.REJECTED, 'rejected rows');
      const polls = d.daemon.poller!.counters.polls;
      await until(() => d.daemon.poller!.counters.polls >= polls + 3, 'three more polls');
      expect(d.daemon.poller!.counters.rowsRejected - before).toBe(2);
      await barrier();
      expect(d.logs.filter((l) => l.msg === 'events table row rejected' && (l.row_id === a || l.row_id === b))).toHaveLength(2);
    });

    it('marks a row older than poller.maxAgeSec expired instead of delivering it', async () => {
      const id = await teampassInsert('session_expired', 'user', 2, '{"reason":"session_timeout"}', sql.timeSql(-3600));
      await until(async () => (await rowById(id)).processed !== PROCESSED.PENDING, 'row handled');
      expect((await rowById(id)).processed).toBe(PROCESSED.EXPIRED);
      await barrier();
    });
  });
});

describe('ingest flow control', () => {
  it('stops reading a sender that does not read its acks, and goes on when it does', async () => {
    const d = await startDaemon();
    try {
      // Acks of ~40 bytes each: 60,000 of them are well past the 1 MiB of unread
      // acks the daemon allows plus what the kernel buffers, however fast the journal.
      const total = 60_000;
      const sender = await IngestClient.connect(d.daemon.ingest!.path);
      sender.socket.pause(); // read no acks
      const frames: Buffer[] = [];
      for (let i = 0; i < total; i++) frames.push(sender.encode({ id: `fc-${i}`, event_type: 'flow', target_type: 'user', target_id: 99 }));
      sender.writeRaw(Buffer.concat(frames));
      // Wait until the daemon has stopped taking frames.
      let last = -1;
      await until(async () => {
        const now = d.daemon.ingest!.counters.frames;
        const stable = now === last && now > 0;
        last = now;
        await new Promise((r) => setTimeout(r, 100));
        return stable;
      }, 'the daemon to stop reading');
      expect(d.daemon.ingest!.counters.frames).toBeLessThan(total);
      sender.socket.resume();
      for (let i = 0; i < total; i++) expect(await sender.nextAck()).toMatchObject({ ok: true, id: `fc-${i}` });
      expect(d.daemon.ingest!.counters.frames).toBe(total);
      await sender.close();
    } finally {
      await d.stop();
    }
  });
});

describe('ingest flow control while the journal lags', () => {
  it('stops reading after 4,096 frames waiting for their acks, and goes on as the journal writes', async () => {
    // A journal that waits 1.5 s before its first write: no ack can leave meanwhile.
    const d = await startDaemon({ 'journal.flushMs': 1500 });
    try {
      const total = 20_000;
      const sender = await IngestClient.connect(d.daemon.ingest!.path, { timeoutMs: 10_000 });
      const frames: Buffer[] = [];
      for (let i = 0; i < total; i++) frames.push(sender.encode({ id: `lag-${i}`, event_type: 'flow', target_type: 'user', target_id: 99 }));
      sender.writeRaw(Buffer.concat(frames));
      await until(() => d.daemon.ingest!.counters.frames > 4096, 'the first frames');
      await new Promise((r) => setTimeout(r, 300));
      expect(d.daemon.ingest!.counters.frames).toBeLessThan(total);
      expect(d.daemon.journal.queued).toBeLessThan(total);
      for (let i = 0; i < total; i++) expect(await sender.nextAck()).toMatchObject({ ok: true, id: `lag-${i}` });
      await sender.close();
    } finally {
      await d.stop();
    }
  });
});

describe('ingest socket file', () => {
  it('replaces a stale socket file and refuses one a live daemon owns', async () => {
    const d = await startDaemon();
    const path = join(d.stateDir, 'second.sock');
    // A socket file left behind by a crashed process: bound, then the server vanished without unlinking.
    const stale = createServer();
    await new Promise<void>((r) => stale.listen(path, () => r()));
    const handle = (stale as unknown as { _handle: { close(): void } })._handle;
    handle.close(); // closes the fd without removing the file
    const d2 = await startDaemon({ 'ingest.socket': path });
    expect(d2.daemon.ingest!.path).toBe(path);
    await expect(startDaemon({ 'ingest.socket': path })).rejects.toMatchObject({ code: 'TPWS_ERR_SOCKET_IN_USE' });
    await d2.stop();
    await d.stop();
  });

  it('refuses a path too long for a Unix socket with a clear error', async () => {
    const d = await startDaemon();
    const path = join(d.stateDir, 'x'.repeat(120), 'ingest.sock');
    await expect(startDaemon({ 'ingest.socket': path })).rejects.toMatchObject({ code: 'TPWS_ERR_LISTEN', message: expect.stringMatching(/at most 107/) });
    await d.stop();
  });

  it('refuses to replace a path that is not a socket', async () => {
    const d = await startDaemon();
    const path = join(d.stateDir, 'not-a-socket');
    writeFileSync(path, 'keep me');
    chmodSync(path, 0o600);
    await expect(startDaemon({ 'ingest.socket': path })).rejects.toMatchObject({ code: 'TPWS_ERR_LISTEN' });
    await d.stop();
  });
});

describeStores('retention', ({ newStoreUrl }) => {
  it('deletes processed events older than retention.hours and expired tokens, keeps the rest', async () => {
    const url = await newStoreUrl();
    const d = await startDaemon({ 'store.url': url, 'retention.intervalSec': 1, 'retention.hours': 1 });
    const sql = await openSeeder(url, P);
    try {
      const ins = (uuid: string, processed: number, processedAgoSec: number | null) => sql.execSql(
        `INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload, event_uuid, processed, processed_at) VALUES ('r', 'user', 1, '{}', ?, ?, ${processedAgoSec === null ? 'NULL' : sql.timeSql(-processedAgoSec)})`,
        [uuid, processed],
      );
      await ins('old-delivered', PROCESSED.DELIVERED, 7200);
      await ins('old-rejected', PROCESSED.REJECTED, 7200);
      await ins('recent', PROCESSED.DELIVERED, 60);
      await sql.seedToken(1, 'e'.repeat(64), -60);
      await sql.seedToken(1, 'a'.repeat(64), 3600);
      const uuids = async () => (await sql.execSql<{ event_uuid: string }>("SELECT event_uuid FROM {{prefix}}websocket_events WHERE event_type = 'r' ORDER BY event_uuid")).map((r) => r.event_uuid);
      const tokens = async () => (await sql.execSql<{ token: string }>('SELECT token FROM {{prefix}}websocket_tokens')).map((r) => r.token);
      // The two deletes are two calls: wait for both.
      await until(async () => (await uuids()).length === 1 && (await tokens()).length === 1, 'retention cleanup');
      expect(await uuids()).toEqual(['recent']);
      expect(await tokens()).toEqual(['a'.repeat(64)]);
    } finally {
      await sql.close();
      await d.stop();
    }
  });
});

describeStores('TablePoller draining a backlog', ({ newStoreUrl }) => {
  it('reads batch after batch from the last id, then by the flag again: a row committed late under a lower id is still delivered', async () => {
    const url = await newStoreUrl();
    const store = openStore(url, P);
    await store.migrate();
    const sql = await openSeeder(url, P);
    const delivered: string[] = [];
    const history = new History('test-epoch', store, { ringSize: 100, ringMaxAgeMs: 60_000, maxEvents: 1000 });
    await history.start();
    const pipeline = new Pipeline(new Hub(), new Deduper(1000, 60_000), history, { observers: [{ delivered: (e) => void delivered.push(e.id) }] });
    const poller = new TablePoller(store, pipeline, createLogger('silent'), {
      intervalMs: 111, idleIntervalMs: 222, batchSize: 3, maxAgeSec: 300, maxBackoffMs: 1000, maxPayloadBytes: 65_536,
    });
    const insert = (id: number) => sql.execSql(
      `INSERT INTO {{prefix}}websocket_events (id, event_type, target_type, target_id, payload) VALUES (?, 'backlog', 'broadcast', NULL, '{}')`, [id]);
    try {
      for (let id = 100; id <= 106; id++) await insert(id);
      const delays = [await poller.tick()]; // 100-102, a full batch
      await insert(50); // commits now, under an id below the batches read so far
      for (let i = 0; i < 4; i++) delays.push(await poller.tick()); // 103-105 (full), 106 (end of the drain), 50, nothing
      expect(delivered).toEqual([100, 101, 102, 103, 104, 105, 106, 50].map((id) => `row-${id}`));
      // Full batches and the end of a drain poll again at once; then the usual intervals.
      expect(delays).toEqual([0, 0, 0, 111, 222]);
      const rows = await sql.execSql<{ processed: number; tpws_pos: number }>('SELECT processed, tpws_pos FROM {{prefix}}websocket_events ORDER BY tpws_pos');
      expect(rows.map((r) => Number(r.processed))).toEqual(Array(8).fill(PROCESSED.DELIVERED));
      // Each row keeps the position it was fanned out at: seq 1 to 8 of this epoch, in delivery order.
      expect(rows.map((r) => Number(r.tpws_pos))).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((seq) => position(history.epochNo, seq)));
    } finally {
      await sql.close();
      await store.close();
    }
  });
});
