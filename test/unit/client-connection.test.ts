/**
 * The whole client on one socket (no tab sharing), driven through a fake
 * WebSocket whose server side each test plays: TeamPass's API and wire
 * behaviour, the reconnect rules and the resume, with fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TeamPassWebSocket } from '../../src/client/teampass-websocket.js';
import type { TeamPassWebSocketOptions, WebSocketConstructor } from '../../src/client/types.js';
import { FakeSocket, settle } from './client-fakes.js';

const E1 = '019a0000-0000-7000-8000-000000000001';
const E2 = '019a0000-0000-7000-8000-000000000002';
const TOKEN = 'a'.repeat(64);

class FakeDocument extends EventTarget {
  visibilityState = 'visible';
}

let page: EventTarget;
let doc: FakeDocument;

function client(options: TeamPassWebSocketOptions = {}): TeamPassWebSocket {
  return new TeamPassWebSocket(
    { url: 'wss://tp.example/ws', token: TOKEN, WebSocket: FakeSocket as unknown as WebSocketConstructor, ...options },
    { window: page, document: doc },
  );
}

/** Every emitted (name, data), through the `*` wildcard. */
function record(c: TeamPassWebSocket): Array<[string, any]> {
  const seen: Array<[string, any]> = [];
  c.on('*', (name, data) => seen.push([name, data]));
  return seen;
}

function event(id: string, seq: number, epoch = E1, name = 'item_updated'): Record<string, unknown> {
  return { type: 'event', event: name, data: { item_id: seq }, timestamp: 1, id, seq, epoch };
}

/** Run the client's timers up to its reconnect (whatever its delay) and return the new socket. */
async function nextSocket(): Promise<FakeSocket> {
  const before = FakeSocket.all.length;
  await settle();
  for (let i = 0; i < 5 && FakeSocket.all.length === before; i++) await vi.advanceTimersToNextTimerAsync();
  expect(FakeSocket.all.length).toBe(before + 1);
  return FakeSocket.last();
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  FakeSocket.reset();
  page = new EventTarget();
  doc = new FakeDocument();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('TeamPass client behaviour', () => {
  it('appends the token to the URL as TeamPass does, and uses the reconnect token from connected next time', async () => {
    const c = client({ url: 'wss://tp.example/ws?x=1' });
    c.connect();
    const s1 = FakeSocket.last();
    expect(s1.url).toBe(`wss://tp.example/ws?x=1&token=${TOKEN}`);
    s1.accept({ reconnect_token: 'b'.repeat(64) });
    s1.serverClose(1006);
    const s2 = await nextSocket();
    expect(s2.token).toBe('b'.repeat(64));
    c.disconnect();
  });

  it('answers a server ping with {"action":"pong"} and pings every 25 s with a request id', async () => {
    const c = client();
    c.connect();
    const s = FakeSocket.last();
    s.accept();
    s.receive({ type: 'ping', timestamp: 1 });
    expect(s.sent.at(-1)).toEqual({ action: 'pong' });
    await vi.advanceTimersByTimeAsync(25_000);
    const ping = s.sent.at(-1)!;
    expect(ping.action).toBe('ping');
    expect(ping.request_id).toMatch(/^req_[a-z0-9]+$/);
    s.receive({ type: 'pong', timestamp: 2, request_id: ping.request_id });
    c.disconnect();
  });

  it('send(): resolves with the reply of its request id, rejects with the daemon error, a timeout, or Not connected', async () => {
    const c = client();
    await expect(c.send({ action: 'get_status' })).rejects.toThrow('Not connected');
    c.connect();
    const s = FakeSocket.last();
    s.accept();
    const status = c.getStatus();
    const rid = s.sent.at(-1)!.request_id;
    s.receive({ type: 'status', connected: true, request_id: rid });
    await expect(status).resolves.toMatchObject({ type: 'status', request_id: rid });

    const forbidden = c.send({ action: 'get_stats' });
    s.receive({ type: 'error', error_code: 'forbidden', message: 'Admin access required', request_id: s.sent.at(-1)!.request_id });
    await expect(forbidden).rejects.toMatchObject({ message: 'Admin access required', code: 'forbidden' });

    const late = c.send({ action: 'get_status' });
    const caught = late.catch((e: Error) => e);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(((await caught) as Error).message).toBe('Request timeout');
    c.disconnect();
  });

  it('emits events to their handlers, then to * with (name, data); connected and server_error too', () => {
    const c = client();
    const all = record(c);
    const updated: unknown[] = [];
    c.on('item_updated', (d) => updated.push(d));
    c.connect();
    const s = FakeSocket.last();
    s.accept({ epoch: E1, seq: 0 });
    s.receive(event('e1', 1));
    s.receive({ type: 'error', error_code: 'invalid_json', message: 'Message must be valid JSON.' });
    expect(updated).toEqual([{ item_id: 1 }]);
    expect(all.map(([n]) => n)).toEqual(['connected', 'item_updated', 'server_error']);
    c.disconnect();
  });

  it('calls onOpen, onClose and onReconnecting; disconnect() closes 1000 "Client disconnect" and does not reconnect', async () => {
    const c = client();
    const calls: string[] = [];
    c.onOpen(() => calls.push('open'))
      .onClose((e) => calls.push(`close ${e.code}`))
      .onReconnecting((attempt, delay) => calls.push(`reconnecting ${attempt} ${delay < 500}`));
    c.connect();
    const s1 = FakeSocket.last();
    s1.accept();
    expect(c.isConnectedNow()).toBe(true);
    s1.serverClose(1006);
    const s2 = await nextSocket();
    s2.accept();
    c.disconnect();
    await settle();
    expect(s2.closedByClient).toEqual({ code: 1000, reason: 'Client disconnect' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(calls).toEqual(['open', 'close 1006', 'reconnecting 1 true', 'open', 'close 1000']);
    expect(c.getState().stopped).toBe('disconnected');
  });

  it('subscribes, at the first connected, to what was asked before, as TeamPass does (folder, then kb with data {})', () => {
    const c = client();
    void c.subscribeToFolder(5).catch(() => undefined);
    void c.subscribeToKb().catch(() => undefined);
    expect(c.getSubscriptions()).toEqual(['folder:5', 'kb:0']);
    c.connect();
    const s = FakeSocket.last();
    s.accept({ epoch: E1, seq: 3 });
    expect(s.sent.map(({ request_id, ...m }) => m)).toEqual([
      { action: 'subscribe', channel: 'folder', data: { folder_id: 5 } },
      { action: 'subscribe', channel: 'kb', data: {} },
    ]);
    c.disconnect();
  });

  it('refuses a folder id that is not a positive integer', async () => {
    const c = client();
    await expect(c.subscribeToFolder(0)).rejects.toThrow(TypeError);
    await expect(c.subscribeToFolder('7x' as unknown as number)).rejects.toThrow(TypeError);
    expect(c.getSubscriptions()).toEqual([]);
  });
});

describe('reconnect rules', () => {
  it('counts attempts until connected: a socket that opens and is refused does not reset them', async () => {
    const c = client({ getToken: () => 'c'.repeat(64) });
    const attempts: number[] = [];
    c.onReconnecting((attempt) => attempts.push(attempt));
    c.connect();
    FakeSocket.last().open();
    FakeSocket.last().serverClose(1006);
    for (let i = 0; i < 2; i++) {
      const s = await nextSocket();
      s.open(); // opened, then refused: TeamPass reset its counter here
      s.receive({ type: 'error', error_code: 'max_connections', message: 'Maximum 5 simultaneous connections per user.' });
      s.serverClose(1000);
    }
    const s = await nextSocket();
    s.accept();
    expect(c.getState().reconnectAttempts).toBe(0);
    s.serverClose(1006);
    await nextSocket();
    expect(attempts).toEqual([1, 2, 3, 1]);
    c.disconnect();
  });

  it('waits a full-jitter delay within the doubling window', async () => {
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const c = client({ minReconnectDelay: 100, maxReconnectDelay: 1000 });
    const delays: number[] = [];
    c.onReconnecting((_a, d) => delays.push(d));
    c.connect();
    for (let i = 0; i < 6; i++) {
      FakeSocket.last().serverClose(1006);
      await nextSocket();
    }
    random.mockRestore();
    expect(delays).toEqual([99, 199, 399, 799, 999, 999]);
    c.disconnect();
  });

  it('a terminal close (4001) stops and says why with `terminated`', async () => {
    const c = client();
    const all = record(c);
    c.connect();
    const s = FakeSocket.last();
    s.accept();
    s.serverClose(4001, 'session expired: log in again');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(FakeSocket.all).toHaveLength(1);
    expect(all.at(-1)).toEqual(['terminated', { code: 4001, reason: 'session expired: log in again' }]);
    expect(c.getState().stopped).toBe('terminated');
  });

  it('4200 reconnects at once (within the first window)', async () => {
    const c = client();
    c.connect();
    FakeSocket.last().accept();
    FakeSocket.last().serverClose(4200);
    await vi.advanceTimersByTimeAsync(500);
    expect(FakeSocket.all).toHaveLength(2);
    c.disconnect();
  });

  it('auth_failed before connected: asks getToken and reconnects with its token', async () => {
    const getToken = vi.fn(async () => 'd'.repeat(64));
    const c = client({ getToken });
    c.connect();
    const s1 = FakeSocket.last();
    s1.open();
    s1.receive({ type: 'error', error_code: 'auth_failed', message: 'Authentication required. Provide a valid session or JWT token.' });
    s1.serverClose(1000);
    const s2 = await nextSocket();
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(s2.token).toBe('d'.repeat(64));
    c.disconnect();
  });

  it('auth_failed without getToken, or getToken giving null, the same token or throwing: stops with auth_failed, no loop', async () => {
    const sources: Array<TeamPassWebSocketOptions['getToken']> = [undefined, () => null, () => TOKEN, async () => Promise.reject(new Error('down'))];
    for (const getToken of sources) {
      FakeSocket.reset();
      const c = client({ getToken });
      const all = record(c);
      c.connect();
      const s = FakeSocket.last();
      s.open();
      s.receive({ type: 'error', error_code: 'auth_failed', message: 'Authentication required. Provide a valid session or JWT token.' });
      s.serverClose(1000);
      await settle();
      await vi.advanceTimersByTimeAsync(120_000);
      expect(FakeSocket.all).toHaveLength(1);
      expect(all.at(-1)).toEqual(['auth_failed', { code: 1000, message: 'Authentication required. Provide a valid session or JWT token.' }]);
      expect(c.getState().stopped).toBe('auth_failed');
    }
  });

  it('4103 (token expired) takes the same refresh path', async () => {
    const c = client({ getToken: () => 'e'.repeat(64) });
    c.connect();
    FakeSocket.last().accept();
    FakeSocket.last().serverClose(4103, 'token expired: reconnect with a new token');
    const s2 = await nextSocket();
    expect(s2.token).toBe('e'.repeat(64));
    c.disconnect();
  });

  it('maxReconnectAttempts: emits reconnect_failed with the count and stops', async () => {
    const c = client({ maxReconnectAttempts: 2 });
    const all = record(c);
    c.connect();
    FakeSocket.last().serverClose(1006);
    (await nextSocket()).serverClose(1006);
    (await nextSocket()).serverClose(1006);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(FakeSocket.all).toHaveLength(3);
    expect(all.at(-1)).toEqual(['reconnect_failed', { attempts: 2 }]);
  });

  it('online, or the page becoming visible, retries at once while a reconnect waits', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const c = client({ minReconnectDelay: 10_000, maxReconnectDelay: 10_000 });
    c.connect();
    FakeSocket.last().serverClose(1006);
    page.dispatchEvent(new Event('online'));
    expect(FakeSocket.all).toHaveLength(2);
    FakeSocket.last().serverClose(1006);
    doc.visibilityState = 'hidden';
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(FakeSocket.all).toHaveLength(2);
    doc.visibilityState = 'visible';
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(FakeSocket.all).toHaveLength(3);
    vi.mocked(Math.random).mockRestore();
    c.disconnect();
  });

  it('a socket not connected within requestTimeout (hung handshake) is dropped and retried', async () => {
    const c = client();
    const attempts: number[] = [];
    c.onReconnecting((attempt) => attempts.push(attempt));
    c.connect();
    const s = FakeSocket.last();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(s.closedByClient?.reason).toBe('no connected message');
    const s2 = await nextSocket();
    s2.accept();
    await vi.advanceTimersByTimeAsync(20_000); // past the handshake timeout, before the first ping
    expect(s2.closedByClient).toBeNull();
    expect(attempts).toEqual([1]);
    c.disconnect();
  });

  it('a ping left unanswered drops the socket and reconnects without waiting for the close', async () => {
    const c = client();
    c.connect();
    const s = FakeSocket.last();
    s.accept();
    await vi.advanceTimersByTimeAsync(25_000 + 10_000);
    expect(s.closedByClient?.reason).toBe('no pong');
    await nextSocket();
    c.disconnect();
  });
});

describe('resume', () => {
  /** A client connected once at (E1, 10) with folders 5 and 7 and the KB, then dropped. */
  async function droppedClient(options: TeamPassWebSocketOptions = {}) {
    const c = client(options);
    const all = record(c);
    void c.subscribeToFolder(5).catch(() => undefined);
    void c.subscribeToFolder(7).catch(() => undefined);
    void c.subscribeToKb().catch(() => undefined);
    c.connect();
    const s1 = FakeSocket.last();
    s1.accept({ epoch: E1, seq: 10 });
    s1.receive(event('e11', 11));
    s1.serverClose(1006);
    const s2 = await nextSocket();
    return { c, all, s2 };
  }

  it('sends resume as the first message after connected, with the position and the subscriptions, and no subscribe', async () => {
    const { c, s2 } = await droppedClient();
    s2.accept({ epoch: E1, seq: 20 });
    expect(s2.sent).toHaveLength(1);
    expect(s2.sent[0]).toMatchObject({ action: 'resume', data: { epoch: E1, seq: 11, folders: [5, 7], kb: true } });
    expect(s2.actions('subscribe')).toEqual([]);
    c.disconnect();
  });

  it('ignores positioned events before the reply, emits the replay once and in order, then live events', async () => {
    const { c, all, s2 } = await droppedClient();
    s2.accept({ epoch: E1, seq: 14 });
    const rid = s2.sent[0].request_id;
    s2.receive(event('e13', 13)); // written before the reply: part of the replay
    s2.receive({ type: 'event', event: 'item_viewers_changed', data: { item_id: 1 }, timestamp: 1 });
    s2.receive({ type: 'response', status: 'success', action: 'resumed', recovered: true, epoch: E1, seq: 14, replayed: 3, folders: [5, 7], denied: [], kb: true, request_id: rid });
    s2.receive(event('e11', 11)); // already emitted before the drop
    s2.receive(event('e12', 12));
    s2.receive(event('e13', 13));
    s2.receive(event('e15', 15));
    const names = all.filter(([n]) => n !== 'connected').map(([n, d]) => (n === 'item_updated' ? `ev${d.item_id}` : n));
    expect(names).toEqual(['ev11', 'item_viewers_changed', 'resumed', 'ev12', 'ev13', 'ev15']);
    expect(all.find(([n]) => n === 'resumed')![1]).toEqual({ recovered: true, replayed: 3 });
    expect(c.recovered).toBe(true);
    expect(c.getState().position).toEqual({ epoch: E1, seq: 15 });
    c.disconnect();
  });

  it('recovered:false: says why, takes the new position, and the app reads client.recovered', async () => {
    const { c, all, s2 } = await droppedClient();
    s2.accept({ epoch: E2, seq: 3 });
    const rid = s2.sent[0].request_id;
    s2.receive({ type: 'response', status: 'success', action: 'resumed', recovered: false, reason: 'unknown_epoch', epoch: E2, seq: 3, replayed: 0, folders: [5], denied: [7], kb: true, request_id: rid });
    expect(all.at(-1)).toEqual(['resumed', { recovered: false, reason: 'unknown_epoch', replayed: 0 }]);
    expect(c.recovered).toBe(false);
    expect(c.getState().position).toEqual({ epoch: E2, seq: 3 });
    // Folder 7 was refused: no longer in the set.
    expect(c.getSubscriptions()).toEqual(['folder:5', 'kb:0']);
    c.disconnect();
  });

  it('a refused resume (rate_limited) drops the socket and reconnects with backoff', async () => {
    const { c, s2 } = await droppedClient();
    s2.accept({ epoch: E1, seq: 14 });
    s2.receive({ type: 'error', error_code: 'rate_limited', message: 'Too many requests, please slow down', request_id: s2.sent[0].request_id });
    expect(s2.closedByClient).not.toBeNull();
    const s3 = await nextSocket();
    s3.accept({ epoch: E1, seq: 14 });
    expect(s3.sent[0]).toMatchObject({ action: 'resume', data: { epoch: E1, seq: 11 } });
    c.disconnect();
  });

  it('a daemon without positions (no epoch in connected): subscribes as TeamPass and reports recovered:false, unsupported', async () => {
    const { c, all, s2 } = await droppedClient();
    s2.accept();
    expect(s2.actions('resume')).toEqual([]);
    expect(s2.actions('subscribe')).toHaveLength(3);
    expect(all.at(-1)).toEqual(['resumed', { recovered: false, reason: 'unsupported', replayed: 0 }]);
    c.disconnect();
  });

  it('disconnect() then connect() resumes from where it was', async () => {
    const { c, s2 } = await droppedClient();
    s2.accept({ epoch: E1, seq: 11 });
    s2.receive({ type: 'response', status: 'success', action: 'resumed', recovered: true, epoch: E1, seq: 11, replayed: 0, folders: [5, 7], denied: [], kb: true, request_id: s2.sent[0].request_id });
    c.disconnect();
    await settle();
    c.connect();
    const s3 = FakeSocket.last();
    s3.accept({ epoch: E1, seq: 30 });
    expect(s3.sent[0]).toMatchObject({ action: 'resume', data: { epoch: E1, seq: 11 } });
    c.disconnect();
  });
});
