import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { describeStores } from '../helpers/stores.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient, type Message } from '../helpers/ws-client.js';
import { FIX, seedFixture } from '../helpers/fixture.js';
import { openSeeder } from '../helpers/seed.js';
import { until } from '../helpers/until.js';

const U = FIX.users;
const PREFIX = 'teampass_';

/** One event of each routing that matters to alice, and some that do not, tagged by `data.n`. */
function mixedEvents(base: number): { input: Record<string, unknown>; forAlice: boolean }[] {
  return [
    { input: { event_type: 'item_created', target_type: 'folder', target_id: 10, payload: { n: base + 1, folder_id: 10 } }, forAlice: true },
    { input: { event_type: 'item_created', target_type: 'folder', target_id: 11, payload: { n: base + 2, folder_id: 11 } }, forAlice: false }, // not subscribed
    { input: { event_type: 'task_completed', target_type: 'user', target_id: U.alice, payload: { n: base + 3 } }, forAlice: true },
    { input: { event_type: 'task_completed', target_type: 'user', target_id: U.bob, payload: { n: base + 4 } }, forAlice: false },
    { input: { event_type: 'fields_updated', target_type: 'broadcast', payload: { n: base + 5 } }, forAlice: true },
    { input: { event_type: 'item_updated', target_type: 'folder', target_id: 10, payload: { n: base + 6, exclude_user_id: U.alice } }, forAlice: false }, // her own change
    { input: { event_type: 'kb_updated', target_type: 'kb', payload: { n: base + 7 } }, forAlice: false }, // not subscribed to kb
    { input: { event_type: 'item_deleted', target_type: 'folder', target_id: 10, payload: { n: base + 8, folder_id: 10 } }, forAlice: true },
  ];
}

/** Collect `count` messages after the `resumed` reply; returns the reply and the replayed events. */
async function resumeAndCollect(c: TestClient, data: Record<string, unknown>): Promise<{ reply: Message; replayed: Message[] }> {
  const reply = await c.request({ action: 'resume', data });
  expect(reply).toMatchObject({ type: 'response', status: 'success', action: 'resumed' });
  const replayed: Message[] = [];
  for (let i = 0; i < reply.replayed; i++) replayed.push(await c.nextEvent());
  return { reply, replayed };
}

describeStores('resume (docs/protocol.md §Resume)', ({ newStoreUrl }) => {
  let url: string;
  let d: TestDaemon;
  const clients: TestClient[] = [];
  const login = async (token: string, daemon = d) => {
    const r = await TestClient.login(daemon.url(token));
    clients.push(r.client);
    return r;
  };

  beforeAll(async () => {
    url = await newStoreUrl();
    d = await startDaemon({ 'store.url': url, 'limits.rateLimitMessages': 1000 });
    await seedFixture(url, PREFIX);
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.ws.terminate();
  });

  afterAll(async () => {
    await d?.stop();
  });

  it('gives every event a position: seq follows connected.seq by one within the epoch, and pings carry the head', async () => {
    const { client, connected } = await login(FIX.tokens.alice);
    expect(connected.epoch).toBe(d.daemon.pipeline.epoch);
    expect(connected.seq).toBe(d.daemon.history.seq);
    await client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } });
    const r1 = d.daemon.publish({ event_type: 'item_created', target_type: 'folder', target_id: 10, payload: { folder_id: 10 } });
    const r2 = d.daemon.publish({ event_type: 'task_completed', target_type: 'user', target_id: U.alice, payload: {} });
    const e1 = await client.nextEvent();
    const e2 = await client.nextEvent();
    expect([e1.seq, e2.seq]).toEqual([connected.seq + 1, connected.seq + 2]);
    expect([e1.id, e2.id]).toEqual([r1.id, r2.id]);
    expect(e1.epoch).toBe(connected.epoch);
    // The TeamPass fields come first, unchanged.
    expect(Object.keys(e1)).toEqual(['type', 'event', 'data', 'timestamp', 'id', 'seq', 'epoch']);
  });

  it('replays, in order, exactly the missed events the socket may receive now, then goes on live', async () => {
    const first = await login(FIX.tokens.alice);
    await first.client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } });
    d.daemon.publish({ event_type: 'item_created', target_type: 'folder', target_id: 10, payload: { n: 0 } });
    const last = await first.client.nextEvent();
    first.client.ws.terminate();

    const events = mixedEvents(100);
    for (const e of events) d.daemon.publish(e.input);

    const { client } = await login(FIX.tokens.alice);
    const { reply, replayed } = await resumeAndCollect(client, { epoch: last.epoch, seq: last.seq, folders: [10] });
    expect(reply).toMatchObject({ recovered: true, epoch: d.daemon.pipeline.epoch, seq: d.daemon.history.seq, folders: [10], denied: [], kb: false });
    expect(replayed.map((e) => e.data.n)).toEqual(events.filter((e) => e.forAlice).map((e) => e.input.payload && (e.input.payload as { n: number }).n));
    for (let i = 1; i < replayed.length; i++) expect(replayed[i].seq).toBeGreaterThan(replayed[i - 1].seq);

    // Subscribed by the resume: a live folder event arrives after the replay.
    d.daemon.publish({ event_type: 'item_created', target_type: 'folder', target_id: 10, payload: { n: 999 } });
    const live = await client.nextEvent();
    expect(live.data.n).toBe(999);
    expect(live.seq).toBe(reply.seq + 1);
  });

  it('a resume at the head replays nothing and says recovered', async () => {
    const { client, connected } = await login(FIX.tokens.bob);
    const { reply } = await resumeAndCollect(client, { epoch: connected.epoch, seq: connected.seq });
    expect(reply).toMatchObject({ recovered: true, replayed: 0, seq: connected.seq });
  });

  it('does not subscribe, nor replay, a folder the user may not read now', async () => {
    const first = await login(FIX.tokens.bob);
    const start = first.connected;
    first.client.ws.terminate();
    d.daemon.publish({ event_type: 'item_created', target_type: 'folder', target_id: 10, payload: { n: 1 } });
    d.daemon.publish({ event_type: 'item_created', target_type: 'folder', target_id: 11, payload: { n: 2 } }); // bob cannot read 11
    const { client } = await login(FIX.tokens.bob);
    const { reply, replayed } = await resumeAndCollect(client, { epoch: start.epoch, seq: start.seq, folders: [10, 11] });
    expect(reply).toMatchObject({ recovered: true, folders: [10], denied: [11], replayed: 1 });
    expect(replayed.map((e) => e.data.n)).toEqual([1]);
    const status = await client.request({ action: 'get_status' });
    expect(status.subscriptions).toEqual(['folder:10']);
  });

  it('access revoked while away: the lost folder\'s missed events are not replayed', async () => {
    const first = await login(FIX.tokens.carol);
    const seed = await openSeeder(url, PREFIX);
    try {
      await seed.execSql('INSERT INTO {{prefix}}users_groups (user_id, group_id) VALUES (?, ?)', [U.carol, 20]);
      const second = await login(FIX.tokens.carol);
      const sub = await second.client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 20 } });
      expect(sub.action).toBe('subscribed');
      const from = second.connected;
      first.client.ws.terminate();
      second.client.ws.terminate();
      d.daemon.publish({ event_type: 'item_created', target_type: 'folder', target_id: 20, payload: { n: 1 } });
      await seed.execSql('DELETE FROM {{prefix}}users_groups WHERE user_id = ? AND group_id = ?', [U.carol, 20]);
      d.daemon.publish({ event_type: 'item_created', target_type: 'folder', target_id: 20, payload: { n: 2 } });
      d.daemon.publish({ event_type: 'task_completed', target_type: 'user', target_id: U.carol, payload: { n: 3 } });
      const { client } = await login(FIX.tokens.carol);
      const { reply, replayed } = await resumeAndCollect(client, { epoch: from.epoch, seq: from.seq, folders: [20] });
      expect(reply).toMatchObject({ recovered: true, folders: [], denied: [20] });
      expect(replayed.map((e) => e.data.n)).toEqual([3]);
    } finally {
      await seed.close();
    }
  });

  it('an epoch this database never had: recovered false, subscriptions made, live events follow', async () => {
    const { client } = await login(FIX.tokens.alice);
    const { reply } = await resumeAndCollect(client, { epoch: 'not-an-epoch-of-this-db', seq: 5, folders: [10] });
    expect(reply).toMatchObject({ recovered: false, reason: 'unknown_epoch', replayed: 0, folders: [10], seq: d.daemon.history.seq });
    d.daemon.publish({ event_type: 'item_created', target_type: 'folder', target_id: 10, payload: { n: 7 } });
    expect((await client.nextEvent()).data.n).toBe(7);
  });

  it('a position ahead of the head is a gap', async () => {
    const { client, connected } = await login(FIX.tokens.alice);
    const { reply } = await resumeAndCollect(client, { epoch: connected.epoch, seq: connected.seq + 50 });
    expect(reply).toMatchObject({ recovered: false, reason: 'gap' });
  });

  it('answers a malformed resume with invalid_request and keeps the socket', async () => {
    const { client } = await login(FIX.tokens.alice);
    const bad: Record<string, unknown>[] = [
      {},
      { epoch: 'e', seq: -1 },
      { epoch: 'e', seq: 1.5 },
      { epoch: 'e', seq: 2 ** 32 },
      { epoch: 'x'.repeat(65), seq: 1 },
      { epoch: 'e f', seq: 1 },
      { epoch: 'e', seq: 1, folders: 'all' },
      { epoch: 'e', seq: 1, folders: [0] },
      { epoch: 'e', seq: 1, folders: new Array(1001).fill(1) },
      { epoch: 'e', seq: 1, kb: 'yes' },
    ];
    for (const data of bad) {
      const r = await client.request({ action: 'resume', data });
      expect(r).toMatchObject({ type: 'error', error_code: 'invalid_request', message: expect.any(String) });
    }
    expect((await client.request({ action: 'ping' })).type).toBe('pong');
  });

  it('events fanned out while a resume is answered come once each, after the replay, in order', async () => {
    const first = await login(FIX.tokens.alice);
    const from = first.connected;
    first.client.ws.terminate();
    for (let i = 0; i < 50; i++) d.daemon.publish({ event_type: 'task_completed', target_type: 'user', target_id: U.alice, payload: { i } });
    const { client } = await login(FIX.tokens.alice);
    // Live events keep coming, on every turn, while the resume is received and answered.
    let n = 50;
    const timer = setInterval(() => {
      for (let k = 0; k < 5; k++) d.daemon.publish({ event_type: 'task_completed', target_type: 'user', target_id: U.alice, payload: { i: n++ } });
    }, 1);
    client.send({ action: 'resume', request_id: 'r1', data: { epoch: from.epoch, seq: from.seq } });
    const replyAt = () => client.received.findIndex((m) => m.request_id === 'r1');
    await until(() => replyAt() >= 0, 'the resumed reply');
    await new Promise((r) => setTimeout(r, 30));
    clearInterval(timer);
    const reply = client.received[replyAt()];
    expect(reply.recovered).toBe(true);
    // After the reply: the replay, then what was held, then live — every event once, in order.
    await until(() => client.received.length - replyAt() - 1 >= n, `${n} events after the reply`);
    const after = client.received.slice(replyAt() + 1).filter((m) => m.type === 'event');
    expect(after.map((e) => e.data.i)).toEqual([...Array(n).keys()]);
    expect(after.slice(0, reply.replayed).every((e) => e.seq <= reply.seq)).toBe(true);
    expect(after.slice(reply.replayed).every((e) => e.seq > reply.seq)).toBe(true);
    for (let i = 1; i < after.length; i++) expect(after[i].seq).toBe(after[i - 1].seq + 1);
  });

  it('past resume.maxEvents it answers too_many rather than a partial replay', async () => {
    const small = await startDaemon({ 'store.url': url, 'resume.maxEvents': 5, 'poller.enabled': false });
    try {
      const first = await TestClient.login(small.url(FIX.tokens.alice));
      first.client.ws.terminate();
      for (let i = 0; i < 6; i++) small.daemon.publish({ event_type: 'fields_updated', target_type: 'broadcast', payload: { i } });
      const { client } = await TestClient.login(small.url(FIX.tokens.alice));
      const { reply } = await resumeAndCollect(client, { epoch: first.connected.epoch, seq: first.connected.seq });
      expect(reply).toMatchObject({ recovered: false, reason: 'too_many', replayed: 0 });
      client.ws.terminate();
    } finally {
      await small.stop();
    }
  });

  it('a ring smaller than the gap: the older part comes from the table, the rest from the ring, with no seam', async () => {
    const small = await startDaemon({ 'store.url': url, 'resume.ringSize': 3, 'poller.enabled': false });
    try {
      const first = await TestClient.login(small.url(FIX.tokens.alice));
      first.client.ws.terminate();
      for (let i = 0; i < 10; i++) small.daemon.publish({ event_type: 'fields_updated', target_type: 'broadcast', payload: { i } });
      expect(small.daemon.history.size).toBe(3);
      await until(() => small.daemon.journal.queued === 0 && small.daemon.journal.counters.written >= 10, 'the journal to write the 10 events');
      const { client } = await TestClient.login(small.url(FIX.tokens.alice));
      const { reply, replayed } = await resumeAndCollect(client, { epoch: first.connected.epoch, seq: first.connected.seq });
      expect(reply).toMatchObject({ recovered: true, replayed: 10 });
      expect(replayed.map((e) => e.data.i)).toEqual([...Array(10).keys()]);
      client.ws.terminate();
    } finally {
      await small.stop();
    }
  });

  it('history pruned by retention past the position: recovered false (gap), not a partial replay', async () => {
    const small = await startDaemon({ 'store.url': url, 'resume.ringSize': 0, 'poller.enabled': false });
    const seed = await openSeeder(url, PREFIX);
    try {
      const first = await TestClient.login(small.url(FIX.tokens.alice));
      first.client.ws.terminate();
      for (let i = 0; i < 3; i++) small.daemon.publish({ event_type: 'fields_updated', target_type: 'broadcast', payload: { i } });
      await until(() => small.daemon.journal.queued === 0, 'the journal');
      // What retention records when it deletes rows: the highest position deleted.
      const [row] = await seed.execSql<{ p: number }>('SELECT MIN(tpws_pos) AS p FROM {{prefix}}websocket_events WHERE tpws_pos IS NOT NULL AND tpws_pos > ?',
        [small.daemon.history.head - 3]);
      await seed.execSql('DELETE FROM {{prefix}}tpws_state WHERE name = ?', ['history_floor']);
      await seed.execSql('INSERT INTO {{prefix}}tpws_state (name, value) VALUES (?, ?)', ['history_floor', Number(row.p)]);
      const { client } = await TestClient.login(small.url(FIX.tokens.alice));
      const { reply } = await resumeAndCollect(client, { epoch: first.connected.epoch, seq: first.connected.seq });
      expect(reply).toMatchObject({ recovered: false, reason: 'gap', replayed: 0 });
      client.ws.terminate();
    } finally {
      await seed.execSql('DELETE FROM {{prefix}}tpws_state WHERE name = ?', ['history_floor']);
      await seed.close();
      await small.stop();
    }
  });

  it('serves the built browser client on the WebSocket port, under any prefix, revalidated by ETag', async () => {
    const base = d.url().replace(/^ws/, 'http').replace(/\/ws$/, '');
    for (const [path, marker] of [['/ws/tp-ws-client.js', 'TeamPassWebSocket'], ['/tp-ws-client.mjs', 'export']] as const) {
      const r = await fetch(base + path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(r.headers.get('cache-control')).toBe('no-cache');
      const body = await r.text();
      expect(body).toContain(marker);
      const again = await fetch(base + path, { headers: { 'if-none-match': r.headers.get('etag')! } });
      expect(again.status).toBe(304);
    }
    // Anything else is still the WebSocket endpoint.
    for (const path of ['/ws', '/ws/tp-ws-client.js.map', '/ws/other.js']) expect((await fetch(base + path)).status, path).toBe(426);
    expect((await fetch(base + '/ws/tp-ws-client.js', { method: 'POST' })).status).toBe(426);
  });

  describe('across a daemon restart (the events table)', () => {
    it('an event sent again after a restart is not fanned out twice, and leaves no hole in the history', async () => {
      const a = await startDaemon({ 'store.url': url, 'poller.enabled': false });
      const first = await TestClient.login(a.url(FIX.tokens.alice));
      first.client.ws.terminate();
      a.daemon.publish({ id: 'sent-twice', event_type: 'fields_updated', target_type: 'broadcast', payload: { n: 1 } });
      await a.stop();
      const b = await startDaemon({ 'store.url': url, 'poller.enabled': false });
      try {
        // A sender retrying after the restart (its ack was lost): the new run knows the id from the table.
        expect(b.daemon.publish({ id: 'sent-twice', event_type: 'fields_updated', target_type: 'broadcast', payload: { n: 1 } })).toMatchObject({ duplicate: true });
        b.daemon.publish({ event_type: 'fields_updated', target_type: 'broadcast', payload: { n: 2 } });
      } finally {
        await b.stop();
      }
      const c = await startDaemon({ 'store.url': url, 'poller.enabled': false, 'resume.ringSize': 0 });
      try {
        const { client } = await TestClient.login(c.url(FIX.tokens.alice));
        const { reply, replayed } = await resumeAndCollect(client, { epoch: first.connected.epoch, seq: first.connected.seq });
        expect(reply).toMatchObject({ recovered: true });
        expect(replayed.map((e) => [e.id, e.data.n])).toEqual([['sent-twice', 1], [expect.any(String), 2]]);
        client.ws.terminate();
      } finally {
        await c.stop();
      }
    });

    it('a row TeamPass inserted is replayed under the id it was delivered with (row-<id>)', async () => {
      // The suite's daemon holds the table's poller lock: it delivers the row.
      const seed = await openSeeder(url, PREFIX);
      try {
        const { client: live, connected } = await login(FIX.tokens.alice);
        await seed.execSql(`INSERT INTO {{prefix}}websocket_events (event_type, target_type, target_id, payload) VALUES ('task_completed', 'user', ?, '{"n":1}')`, [U.alice]);
        const delivered = await live.nextEvent();
        expect(delivered.id).toMatch(/^row-\d+$/);
        await until(async () => Number((await seed.execSql<{ n: number }>('SELECT COUNT(*) AS n FROM {{prefix}}websocket_events WHERE tpws_pos IS NOT NULL AND event_uuid IS NULL'))[0].n) >= 1, 'the row marked with its position');
        live.ws.terminate();
        const { client } = await login(FIX.tokens.alice);
        const { replayed } = await resumeAndCollect(client, { epoch: connected.epoch, seq: connected.seq });
        expect(replayed.map((e) => e.id)).toEqual([delivered.id]);
        // And from the table, by a daemon with no ring.
        const c = await startDaemon({ 'store.url': url, 'poller.enabled': false, 'resume.ringSize': 0 });
        try {
          const other = await TestClient.login(c.url(FIX.tokens.alice));
          const fromTable = await resumeAndCollect(other.client, { epoch: connected.epoch, seq: connected.seq });
          // (Other daemon runs of this suite follow in the table: only this run's events are compared.)
          expect(fromTable.replayed.filter((e) => e.epoch === connected.epoch).map((e) => e.id)).toEqual([delivered.id]);
          other.client.ws.terminate();
        } finally {
          await c.stop();
        }
      } finally {
        await seed.close();
      }
    });

    it('resumes from the previous run\'s position, from the table and from the ring it refilled at start', async () => {
      for (const ringSize of [0, 10_000]) {
        const a = await startDaemon({ 'store.url': url, 'poller.enabled': false });
        const first = await TestClient.login(a.url(FIX.tokens.alice));
        await first.client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 10 } });
        a.daemon.publish({ event_type: 'item_created', target_type: 'folder', target_id: 10, payload: { n: 0 } });
        const seen = await first.client.nextEvent();
        first.client.ws.terminate();
        const before = mixedEvents(200);
        for (const e of before) a.daemon.publish(e.input);
        await a.stop(); // the journal is written on the way down

        const b = await startDaemon({ 'store.url': url, 'poller.enabled': false, 'resume.ringSize': ringSize });
        try {
          expect(b.daemon.pipeline.epoch).not.toBe(seen.epoch);
          const after = mixedEvents(300);
          for (const e of after) b.daemon.publish(e.input);
          const { client } = await TestClient.login(b.url(FIX.tokens.alice));
          const { reply, replayed } = await resumeAndCollect(client, { epoch: seen.epoch, seq: seen.seq, folders: [10] });
          expect(reply).toMatchObject({ recovered: true, epoch: b.daemon.pipeline.epoch });
          const want = [...before, ...after].filter((e) => e.forAlice).map((e) => (e.input.payload as { n: number }).n);
          expect(replayed.map((e) => e.data.n), `ringSize ${ringSize}`).toEqual(want);
          // Old events keep their old epoch and seq; new ones start the new epoch at 1.
          expect(replayed[0].epoch).toBe(seen.epoch);
          expect(replayed[0].seq).toBe(seen.seq + 1);
          expect(replayed.at(-1)!.epoch).toBe(b.daemon.pipeline.epoch);
          client.ws.terminate();
        } finally {
          await b.stop();
        }
      }
    });
  });
});
