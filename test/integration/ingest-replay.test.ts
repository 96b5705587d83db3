/**
 * The ingest frame's `replay` mark (docs/ingest.md §Frames): a replayed event
 * takes the normal path, is counted under source `replay` and logged with its
 * original row; a bad mark is refused like any bad field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestClient, type IngestBatchAck } from '../../src/ingest/client.js';
import { FIX, seedFixture } from '../helpers/fixture.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';

describe('Ingest socket: the replay mark', () => {
  let d: TestDaemon;
  let alice: TestClient;
  let client: IngestClient;
  const bySource = () => ({ ...d.daemon.pipeline.counters.bySource });
  const replayLogs = () => d.logs.filter((l) => l.msg === 'replayed event accepted');

  beforeAll(async () => {
    d = await startDaemon();
    await seedFixture(d.daemon.config.store.url, 'teampass_');
    alice = (await TestClient.login(d.url(FIX.tokens.alice))).client;
    client = await IngestClient.connect(d.daemon.config.ingest.socket);
  });

  afterAll(async () => {
    client?.destroy();
    alice?.ws.terminate();
    await d?.stop();
  });

  it('delivers a replay: true event as any other, counts it under source replay and logs it with its row id', async () => {
    const before = bySource();
    const ack = await client.request({ id: 'rp-1', event_type: 'item_updated', target_type: 'user', target_id: FIX.users.alice, payload: '{"item_id":1}', replay: true, replay_row_id: 42 });
    expect(ack).toEqual({ ok: true, id: 'rp-1', seq: expect.any(Number) });
    expect(await alice.nextEvent()).toMatchObject({ event: 'item_updated', id: 'rp-1', data: { item_id: 1 } });
    expect(bySource()).toEqual({ ...before, replay: before.replay + 1 });
    expect(replayLogs().at(-1)).toMatchObject({ level: 'info', component: 'ingest', id: 'rp-1', event_type: 'item_updated', target_type: 'user', target_id: FIX.users.alice, replay_row_id: 42, duplicate: false });
  });

  it('counts replay: false, or no mark, under source socket and logs nothing', async () => {
    const before = bySource();
    const logged = replayLogs().length;
    for (const replay of [false, undefined]) {
      const ack = await client.request({ event_type: 'plain', target_type: 'user', target_id: FIX.users.alice, replay });
      expect(ack.ok).toBe(true);
      await alice.nextEvent();
    }
    expect(bySource()).toEqual({ ...before, socket: before.socket + 2 });
    expect(replayLogs()).toHaveLength(logged);
  });

  it('drops a replayed id that is inside the dedup window, and logs it as a duplicate', async () => {
    const before = bySource();
    const ack = await client.request({ id: 'rp-1', event_type: 'item_updated', target_type: 'user', target_id: FIX.users.alice, replay: true });
    expect(ack).toEqual({ ok: true, id: 'rp-1', seq: 0, duplicate: true });
    expect(bySource()).toEqual(before);
    expect(replayLogs().at(-1)).toMatchObject({ id: 'rp-1', replay_row_id: null, duplicate: true });
    const barrier = d.daemon.publish({ event_type: 'barrier', target_type: 'user', target_id: FIX.users.alice });
    expect((await alice.nextEvent()).id).toBe(barrier.id);
  });

  it('refuses a replay mark that is not a boolean, and a bad replay_row_id, naming the field', async () => {
    const base = { event_type: 'x', target_type: 'user', target_id: FIX.users.alice };
    expect(await client.request({ ...base, id: 'bad-1', replay: 'yes' })).toEqual({
      ok: false, id: 'bad-1', error: { code: 'TPWS_ERR_INVALID_EVENT', message: 'replay: must be true or false' },
    });
    expect(await client.request({ ...base, replay: true, replay_row_id: 0 })).toEqual({
      ok: false, error: { code: 'TPWS_ERR_INVALID_EVENT', message: 'replay_row_id: must be an integer from 1 to 4294967295' },
    });
    // Without replay: true, replay_row_id means nothing and is ignored.
    expect((await client.request({ ...base, replay_row_id: 'nonsense' })).ok).toBe(true);
    expect((await alice.nextEvent()).event).toBe('x');
  });

  it('marks each event of a batch on its own, in msgpack as in NDJSON', async () => {
    const mp = await IngestClient.connect(d.daemon.config.ingest.socket, { encoding: 'msgpack' });
    try {
      const before = bySource();
      const ev = (n: number, replay?: boolean) => ({ event_type: `b${n}`, target_type: 'user', target_id: FIX.users.alice, ...(replay === undefined ? {} : { replay }) });
      const ack = (await mp.request([ev(1, true), ev(2), ev(3, true)])) as IngestBatchAck;
      expect(ack.ok).toBe(true);
      expect(ack.results).toHaveLength(3);
      expect(bySource()).toEqual({ ...before, replay: before.replay + 2, socket: before.socket + 1 });
      expect((await alice.nextEvent()).event).toBe('b1');
      expect((await alice.nextEvent()).event).toBe('b2');
      expect((await alice.nextEvent()).event).toBe('b3');
    } finally {
      mp.destroy();
    }
  });
});
