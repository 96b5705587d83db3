import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';
import { IngestClient } from '../../src/ingest/client.js';

/** A seeded PRNG (mulberry32) so a failing random run can be replayed from its seed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('robustness: malformed input never crashes the daemon', () => {
  let d: TestDaemon;
  let token: string;

  beforeAll(async () => {
    // A high rate limit so every malformed frame reaches the parser instead of being rate-limited.
    d = await startDaemon({ 'limits.rateLimitMessages': 100000, 'limits.floodCloseAfter': 1000000 });
    token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId: 9, admin: true, ttlSec: 600 });
  });
  afterAll(async () => d?.stop());

  async function stillServing(): Promise<void> {
    const { client } = await TestClient.login(d.url(token));
    expect((await client.request({ action: 'get_stats' })).type).toBe('stats');
    await client.close();
  }

  it.each([
    ['null', 'null', 'invalid_request'],
    ['a number', '5', 'invalid_request'],
    ['a string', '"x"', 'invalid_request'],
    ['true', 'true', 'invalid_request'],
    ['an array', '[1,2]', 'invalid_request'],
    ['a numeric request_id', '{"action":"ping","request_id":1}', 'invalid_request'],
    ['an object request_id', '{"action":"ping","request_id":{}}', 'invalid_request'],
    ['broken JSON', '{"action":', 'invalid_json'],
    ['an array action', '{"action":["ping"]}', 'unknown_action'],
    ['a number action', '{"action":7}', 'unknown_action'],
    ['data not an object', '{"action":"unsubscribe","channel":"folder","data":"x"}', 'invalid_request'],
    ['an object channel', '{"action":"subscribe","channel":{"a":1},"request_id":"c"}', 'invalid_channel'],
    ['a deeply nested value', '['.repeat(5000) + ']'.repeat(5000), 'invalid_request'],
  ])('answers %s with an error and keeps the socket', async (_name, frame, code) => {
    const { client } = await TestClient.login(d.url(token));
    client.send(frame);
    expect((await client.next((m) => m.type === 'error')).error_code).toBe(code);
    expect((await client.request({ action: 'ping' })).type).toBe('pong');
    await client.close();
  });

  it('caps folder subscriptions at 1,000 per socket', async () => {
    const { client } = await TestClient.login(d.url(token)); // an admin: any folder id is allowed
    for (let f = 1; f <= 1000; f++) client.send({ action: 'subscribe', channel: 'folder', data: { folder_id: f }, request_id: `s${f}` });
    await client.next((m) => m.request_id === 's1000', 20_000);
    expect(client.received.filter((m) => m.type === 'error')).toEqual([]);
    expect(await client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 1001 } })).toMatchObject({ error_code: 'invalid_request', message: 'At most 1000 folder subscriptions per connection' });
    expect(await client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 7 } })).toMatchObject({ action: 'subscribed', folder_id: 7 });
    await client.close();
  });

  it('answers a binary frame and invalid UTF-8 with invalid_json', async () => {
    const { client } = await TestClient.login(d.url(token));
    client.ws.send(Buffer.from('{"action":"ping"}'), { binary: true });
    expect(await client.next((m) => m.type === 'error')).toMatchObject({ error_code: 'invalid_json', message: 'Binary frames are not supported; send JSON text frames.' });
    client.ws.send(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), { binary: false });
    expect(await client.next((m) => m.type === 'error')).toMatchObject({ error_code: 'invalid_json', message: 'Message must be valid UTF-8 JSON.' });
    expect((await client.request({ action: 'ping' })).type).toBe('pong');
    await client.close();
  });

  it('survives a few thousand random frames and keeps serving', async () => {
    const seed = Number(process.env.TPWS_FUZZ_SEED ?? 20261122);
    const rand = prng(seed);
    const { client } = await TestClient.login(d.url(token));
    const pieces = ['{', '}', '[', ']', '"action"', ':', ',', '"subscribe"', '"folder"', '"data"', '{"folder_id":', '1', '-1', 'null', '"request_id"', '"\\u0000"', '1e999', 'true', '"kb"', '"ping"', '"get_status"', '"unsubscribe"', '"channel"'];
    for (let i = 0; i < 3000; i++) {
      const r = rand();
      if (r < 0.3) client.ws.send(randomBytes(Math.floor(rand() * 200)), { binary: rand() < 0.5 });
      else {
        let s = '';
        const n = 1 + Math.floor(rand() * 12);
        for (let k = 0; k < n; k++) s += pieces[Math.floor(rand() * pieces.length)];
        client.send(s);
      }
    }
    client.send({ action: 'ping', request_id: 'last' });
    expect((await client.next((m) => m.request_id === 'last', 20_000)).type).toBe('pong');
    await client.close();
    await stillServing();
  });

  it('survives garbage and truncated handshakes on the raw TCP port', async () => {
    const port = d.daemon.address.ws.port;
    const send = (bytes: Buffer | string) => new Promise<void>((resolve) => {
      const s: Socket = connect(port, '127.0.0.1', () => {
        s.end(bytes);
      });
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
    await send(randomBytes(4096));
    await send('GET /ws?token=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    await send('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\xfe\xff');
    await send('POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello');
    await stillServing();
  });

  it('survives clients that vanish mid-authentication', async () => {
    for (let i = 0; i < 50; i++) {
      const c = new TestClient(d.url(i % 2 ? token : 'f'.repeat(64)));
      c.opened.then(() => c.ws.terminate(), () => {});
    }
    await stillServing();
  });
});

describe('robustness: garbage on the ingest socket never crashes the daemon', () => {
  it('survives random bytes and random JSON-ish lines on many connections, then still acks and delivers', async () => {
    const d = await startDaemon();
    try {
      const rand = prng(Number(process.env.TPWS_FUZZ_SEED ?? 7));
      const pieces = ['{', '}', '[', ']', '"event_type"', ':', ',', '"target_type"', '"user"', '"target_id"', '1', '-1', '"payload"', 'null', '"id"', '"x"', '1e999', '"\\ud800"', '\n'];
      for (let c = 0; c < 40; c++) {
        // Plain node:net, not IngestClient: the garbage is the point, and a client
        // would drop the connection at the first answer it cannot read.
        const conn = await new Promise<Socket>((resolve, reject) => {
          const s = connect(d.daemon.ingest!.path, () => resolve(s)).once('error', reject);
        });
        conn.on('error', () => undefined); // the daemon closes some of them mid-write
        for (let i = 0; i < 50; i++) {
          if (rand() < 0.3) conn.write(randomBytes(Math.floor(rand() * 300)));
          else {
            let s = c % 2 === 0 ? '{' : '';
            const n = 1 + Math.floor(rand() * 10);
            for (let k = 0; k < n; k++) s += pieces[Math.floor(rand() * pieces.length)];
            conn.write(s + (rand() < 0.8 ? '\n' : ''));
          }
        }
        conn.destroy();
      }
      const token = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId: 3, ttlSec: 60 });
      const { client } = await TestClient.login(d.url(token));
      const sender = await IngestClient.connect(d.daemon.ingest!.path);
      const ack = await sender.request({ event_type: 'after_fuzz', target_type: 'user', target_id: 3 });
      expect(ack).toMatchObject({ ok: true });
      expect((await client.nextEvent()).id).toBe(ack.id);
      await sender.close();
      await client.close();
    } finally {
      await d.stop();
    }
  });
});
