/**
 * The coalesced send path (src/fanout/session.ts, flush-queue.ts): one
 * frame per event shared by every recipient, queued per socket and written
 * once per turn. What it must keep of `ws.send`: every message whole and in
 * order, nothing lost when a reader pauses below the limit, the close frame
 * after what was sent before it, and memory bounded for a reader that stops.
 */
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';
import { until } from '../helpers/until.js';

const FOLDER = 7;

describe('send path', () => {
  let d: TestDaemon;
  const clients: TestClient[] = [];
  const login = async (userId: number) => {
    const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId, folders: [FOLDER], ttlSec: 3600 });
    const { client } = await TestClient.login(d.url(token));
    clients.push(client);
    return client;
  };
  const rawSocket = (c: TestClient) => (c.ws as unknown as { _socket: Socket })._socket;
  const serverSession = (userId: number) => [...d.daemon.hub.userSessions(userId)][0];

  beforeAll(async () => {
    d = await startDaemon({ 'limits.rateLimitMessages': 1000 });
  });
  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await d?.stop();
  });

  it('delivers a burst published in one turn to every subscriber whole and in order, across every frame length encoding', async () => {
    const subs = await Promise.all(Array.from({ length: 40 }, (_, i) => login(100 + i)));
    for (const c of subs) expect((await c.request({ action: 'subscribe', channel: 'folder', data: { folder_id: FOLDER } })).status).toBe('success');
    // Payload sizes put frames on both sides of the 7-, 16- and 64-bit length encodings and of the 32 KiB write chunk.
    const sizes = [1, 90, 130, 5_000, 40_000, 65_450, 10];
    const total = 140; // 2.2 MB per subscriber in one turn: under the 4 MiB slow-consumer limit
    for (let n = 0; n < total; n++) {
      const r = d.daemon.publish({ event_type: 'burst', target_type: 'folder', target_id: FOLDER, payload: { n, pad: 'p'.repeat(sizes[n % sizes.length]) } });
      expect(r.duplicate).toBe(false);
    }
    for (const c of subs) {
      const got: number[] = [];
      const seqs: number[] = [];
      for (let i = 0; i < total; i++) {
        const m = await c.nextEvent();
        got.push(m.data.n);
        seqs.push(m.seq);
        expect(m.data.pad.length).toBe(sizes[m.data.n % sizes.length]);
      }
      expect(got).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
  });

  it('keeps replies and events in the order they were sent', async () => {
    const c = await login(200);
    const session = serverSession(200);
    // Alternating in one turn: an event (a frame shared by its recipients) and a reply to this socket alone.
    for (let i = 0; i < 20; i++) {
      d.daemon.publish({ event_type: 'ordered', target_type: 'user', target_id: 200, payload: { i } });
      session.send({ type: 'response', status: 'success', i });
    }
    const last = await c.next((m) => m.type === 'response' && m.i === 19); // taken out of `received`
    const seen = [...c.received, last].filter((m) => m.type === 'event' || m.type === 'response').map((m) => `${m.type}:${m.type === 'event' ? m.data.i : m.i}`);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => [`event:${i}`, `response:${i}`]).flat());
  });

  it('resumes a reader that paused below the limit without losing a message, holding at most a chunk in Node meanwhile', async () => {
    // A limit far above what the kernel's socket buffers absorb, so messages do wait in the daemon.
    const big = await startDaemon({ 'limits.maxBufferedBytes': 64 * 1024 * 1024 });
    try {
      const token = await mintJwt(big.daemon.jwtKey!, big.daemon.config.auth.jwt, { userId: 300, ttlSec: 3600 });
      const { client: c } = await TestClient.login(big.url(token));
      clients.push(c);
      const raw = rawSocket(c);
      raw.pause();
      const session = [...big.daemon.hub.userSessions(300)][0];
      const sock = (session.ws as unknown as { _socket: Socket })._socket;
      const total = 600;
      let maxInNode = 0;
      let maxQueued = 0;
      for (let n = 0; n < total; n++) {
        big.daemon.publish({ event_type: 'paused', target_type: 'user', target_id: 300, payload: { n, pad: 'q'.repeat(60_000) } });
        if (n % 20 === 0) {
          await new Promise((r) => setTimeout(r, 1));
          maxInNode = Math.max(maxInNode, sock.writableLength);
          maxQueued = Math.max(maxQueued, session.bufferedBytes);
        }
      }
      // 36 MB sent, under the limit: the socket stays open; what the kernel has not taken waits in the
      // session's queue, while Node's own buffer holds at most one write past its high-water mark
      // (a chunk of up to 32 KiB, or one larger frame written as it is).
      expect(session.closed).toBe(false);
      expect(maxQueued).toBeGreaterThan(1024 * 1024);
      expect(maxInNode).toBeLessThanOrEqual(sock.writableHighWaterMark + 64 * 1024);
      raw.resume();
      for (let n = 0; n < total; n++) expect((await c.nextEvent()).data.n).toBe(n);
      await until(() => session.bufferedBytes === 0, 'the queue to drain');
    } finally {
      await big.stop();
    }
  });

  it('writes what was sent before a close ahead of the close frame', async () => {
    const c = await login(400);
    const session = serverSession(400);
    for (let n = 0; n < 50; n++) d.daemon.publish({ event_type: 'last', target_type: 'user', target_id: 400, payload: { n } });
    session.close(CloseCode.SESSION_EXPIRED);
    const { code } = await c.closed;
    expect(code).toBe(CloseCode.SESSION_EXPIRED);
    expect(c.received.filter((m) => m.type === 'event').map((m) => m.data.n)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('drops the queue of a slow consumer it closes, and counts every queued byte against the limit', async () => {
    const c = await login(500);
    rawSocket(c).pause();
    const session = serverSession(500);
    const max = d.daemon.config.limits.maxBufferedBytes;
    const pad = 'z'.repeat(60_000);
    let n = 0;
    while (!session.closed && n < 1000) {
      d.daemon.publish({ event_type: 'flood', target_type: 'user', target_id: 500, payload: { n: n++, pad } });
    }
    // Published in one turn: nothing reached the socket, so only the queued bytes can have tripped the rule.
    expect(session.closed).toBe(true);
    expect(n).toBeLessThanOrEqual(Math.ceil(max / 60_000) + 1);
    rawSocket(c).resume();
    expect((await c.closed).code).toBe(CloseCode.SLOW_CONSUMER);
  });
});
