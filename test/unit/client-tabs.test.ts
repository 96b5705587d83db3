/**
 * Tab sharing: several clients in one process stand for the tabs of a
 * browser. They talk through Node's own BroadcastChannel and elect their
 * leader with a fake Web Locks manager; the daemon is a fake socket.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { channelNames } from '../../src/client/tab-channel.js';
import { TeamPassWebSocket, type ClientEnvironment } from '../../src/client/teampass-websocket.js';
import type { TeamPassWebSocketOptions, WebSocketConstructor } from '../../src/client/types.js';
import { FakeLocks, FakeSocket, settle, until } from './client-fakes.js';

const E1 = '019a0000-0000-7000-8000-000000000001';
const URL_A = 'wss://tp.example/ws';
let locks: FakeLocks;
let open: TeamPassWebSocket[];

function tab(token: string, options: TeamPassWebSocketOptions = {}): TeamPassWebSocket {
  const env: ClientEnvironment = {
    WebSocket: FakeSocket as unknown as WebSocketConstructor,
    locks,
    BroadcastChannel: BroadcastChannel as unknown as ClientEnvironment['BroadcastChannel'],
  };
  const c = new TeamPassWebSocket({ url: URL_A, token, ...options }, env);
  open.push(c);
  return c;
}

/** Event names and item ids a tab emitted, in order. */
function record(c: TeamPassWebSocket): string[] {
  const seen: string[] = [];
  c.on('*', (name, data) => seen.push(name === 'item_updated' ? `ev${data.item_id}` : name));
  return seen;
}

function event(seq: number): Record<string, unknown> {
  return { type: 'event', event: 'item_updated', data: { item_id: seq }, timestamp: 1, id: `id-${seq}`, seq, epoch: E1 };
}

/** Start tabs one after the other (the first to ask leads) and let the leader's socket authenticate. */
async function startTabs(...tabs: TeamPassWebSocket[]): Promise<FakeSocket> {
  for (const t of tabs) {
    t.connect();
    await settle();
  }
  await until(() => tabs[0].role === 'leader', 'first tab leads');
  expect(FakeSocket.all).toHaveLength(1);
  const socket = FakeSocket.last();
  socket.accept({ epoch: E1, seq: 0, reconnect_token: 'r'.repeat(64) });
  await until(() => tabs.every((t) => t.isConnectedNow()), 'every tab connected');
  return socket;
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  FakeSocket.reset();
  locks = new FakeLocks();
  open = [];
});

afterEach(async () => {
  for (const c of open) c.disconnect();
  await settle();
  vi.useRealTimers();
});

describe('tab sharing', () => {
  it('three tabs share one socket and all receive every event, once', async () => {
    const [a, b, c] = [tab('t'.repeat(64)), tab('u'.repeat(64)), tab('v'.repeat(64))];
    const seen = [record(a), record(b), record(c)];
    const socket = await startTabs(a, b, c);
    expect([a.role, b.role, c.role]).toEqual(['leader', 'follower', 'follower']);
    for (let seq = 1; seq <= 3; seq++) socket.receive(event(seq));
    socket.receive({ type: 'event', event: 'item_viewers_changed', data: { item_id: 9, viewers: [] }, timestamp: 1 });
    await until(() => seen.every((s) => s.length >= 5), 'events relayed');
    await settle();
    for (const s of seen) expect(s).toEqual(['connected', 'ev1', 'ev2', 'ev3', 'item_viewers_changed']);
    expect(FakeSocket.all).toHaveLength(1);
    expect(b.getState().position).toEqual({ epoch: E1, seq: 3 });
  });

  it("a follower's send() goes through the leader's socket with its request id, and the reply comes back", async () => {
    const [a, b] = [tab('t'.repeat(64)), tab('u'.repeat(64))];
    const socket = await startTabs(a, b);
    const reply = b.subscribeToFolder(5);
    await until(() => socket.actions('subscribe').length === 1, 'subscribe forwarded');
    const sent = socket.actions('subscribe')[0];
    expect(sent).toMatchObject({ channel: 'folder', data: { folder_id: 5 } });
    socket.receive({ type: 'response', status: 'success', action: 'subscribed', channel: 'folder', folder_id: 5, locked_items: [], viewing_items: [], request_id: sent.request_id });
    await expect(reply).resolves.toMatchObject({ action: 'subscribed', request_id: sent.request_id });
    // An error reply is a rejection in the follower, as for a tab alone.
    const stats = b.send({ action: 'get_stats' });
    await until(() => socket.actions('get_stats').length === 1, 'get_stats forwarded');
    socket.receive({ type: 'error', error_code: 'forbidden', message: 'Admin access required', request_id: socket.actions('get_stats')[0].request_id });
    await expect(stats).rejects.toMatchObject({ message: 'Admin access required', code: 'forbidden' });
  });

  it('the socket holds the union of the subscriptions: unsubscribing what another tab holds is answered without the daemon', async () => {
    const [a, b] = [tab('t'.repeat(64)), tab('u'.repeat(64))];
    const socket = await startTabs(a, b);
    const answer = (m: Record<string, any>) =>
      socket.receive({ type: 'response', status: 'success', action: m.action === 'subscribe' ? 'subscribed' : 'unsubscribed', channel: 'folder', folder_id: 5, request_id: m.request_id });
    const subA = a.subscribeToFolder(5);
    answer(socket.actions('subscribe')[0]);
    await subA;
    const subB = b.subscribeToFolder(5);
    await until(() => socket.actions('subscribe').length === 2, 'second subscribe');
    answer(socket.actions('subscribe')[1]);
    await subB;
    await expect(b.unsubscribeFromFolder(5)).resolves.toMatchObject({ action: 'unsubscribed', folder_id: 5 });
    expect(socket.actions('unsubscribe')).toEqual([]);
    const unsubA = a.unsubscribeFromFolder(5);
    expect(socket.actions('unsubscribe')).toHaveLength(1);
    answer(socket.actions('unsubscribe')[0]);
    await unsubA;
  });

  it('a tab that goes away takes its subscriptions with it', async () => {
    const [a, b] = [tab('t'.repeat(64)), tab('u'.repeat(64))];
    const socket = await startTabs(a, b);
    void b.subscribeToFolder(9).catch(() => undefined);
    await until(() => socket.actions('subscribe').length === 1, 'subscribe forwarded');
    b.disconnect();
    await until(() => socket.actions('unsubscribe').length === 1, 'leader unsubscribes the gone tab’s folder');
    expect(socket.actions('unsubscribe')[0]).toMatchObject({ channel: 'folder', data: { folder_id: 9 } });
  });

  it('when the leader goes, the next tab connects with the shared reconnect token and resumes: nothing lost, nothing twice', async () => {
    const [a, b, c] = [tab('t'.repeat(64)), tab('u'.repeat(64)), tab('v'.repeat(64))];
    const seen = [record(b), record(c)];
    const s1 = await startTabs(a, b, c);
    void c.subscribeToFolder(7).catch(() => undefined);
    void b.subscribeToKb().catch(() => undefined);
    s1.receive(event(1));
    s1.receive(event(2));
    await until(() => seen.every((s) => s.includes('ev2')) && c.getState().position?.seq === 2, 'events 1-2 relayed');
    const pending = c.send({ action: 'get_status' }).catch((e: Error) => e.message);
    await until(() => s1.actions('get_status').length === 1, 'request forwarded');

    a.disconnect(); // the leader tab closes: its locks go, the next tab in line leads
    await until(() => b.role === 'leader', 'second tab leads');
    expect(await pending).toBe('Connection closed');
    const s2 = FakeSocket.last();
    expect(s2).not.toBe(s1);
    expect(s2.token).toBe('r'.repeat(64));
    s2.accept({ epoch: E1, seq: 4 });
    const resume = s2.sent[0];
    expect(resume).toMatchObject({ action: 'resume', data: { epoch: E1, seq: 2, kb: true } });
    expect(resume.data.folders).toEqual([7]);
    // The daemon replays from an older point than asked (2 is seen already), then goes live.
    s2.receive({ type: 'response', status: 'success', action: 'resumed', recovered: true, epoch: E1, seq: 4, replayed: 3, folders: [7], denied: [], kb: true, request_id: resume.request_id });
    for (const seq of [2, 3, 4, 5]) s2.receive(event(seq));
    await until(() => seen.every((s) => s.includes('ev5')), 'events relayed by the new leader');
    await settle();
    for (const s of seen) expect(s.filter((n) => n.startsWith('ev'))).toEqual(['ev1', 'ev2', 'ev3', 'ev4', 'ev5']);
    expect(seen[1]).toContain('resumed');
    expect(c.recovered).toBe(true);
  });

  it('a follower drops an event the new leader relays twice (ids it emitted before)', async () => {
    // The new leader remembers one id only, so it relays a replayed event again; the follower's own ids catch it.
    const [a, b, c] = [tab('t'.repeat(64)), tab('u'.repeat(64), { dedupSize: 1 }), tab('v'.repeat(64))];
    const seen = record(c);
    const s1 = await startTabs(a, b, c);
    for (const seq of [1, 2, 3]) s1.receive(event(seq));
    await until(() => seen.includes('ev3') && b.getState().position?.seq === 3, 'events relayed');
    a.disconnect();
    await until(() => b.role === 'leader', 'second tab leads');
    const s2 = FakeSocket.last();
    s2.accept({ epoch: E1, seq: 4 });
    s2.receive({ type: 'response', status: 'success', action: 'resumed', recovered: true, epoch: E1, seq: 4, replayed: 3, folders: [], denied: [], kb: false, request_id: s2.sent[0].request_id });
    for (const seq of [2, 3, 4]) s2.receive(event(seq));
    await until(() => seen.includes('ev4'), 'event 4 relayed');
    await settle();
    expect(seen.filter((n) => n.startsWith('ev'))).toEqual(['ev1', 'ev2', 'ev3', 'ev4']);
  });

  it('a new leader without a shared reconnect token uses its own token, and its own when the shared one is refused', async () => {
    const [a, b] = [tab('t'.repeat(64)), tab('u'.repeat(64))];
    await startTabs(a, b);
    a.disconnect();
    await until(() => b.role === 'leader', 'second tab leads');
    const s2 = FakeSocket.last();
    expect(s2.token).toBe('r'.repeat(64));
    s2.open();
    s2.receive({ type: 'error', error_code: 'auth_failed', message: 'Authentication required. Provide a valid session or JWT token.' });
    s2.serverClose(1000);
    await settle();
    await vi.advanceTimersToNextTimerAsync();
    expect(FakeSocket.all).toHaveLength(3);
    expect(FakeSocket.last().token).toBe('u'.repeat(64));
  });

  it('shareTabs: false gives each tab its own socket; tabs of two daemons never share', async () => {
    const [a, b] = [tab('t'.repeat(64), { shareTabs: false }), tab('u'.repeat(64), { shareTabs: false })];
    a.connect();
    b.connect();
    expect([a.role, b.role]).toEqual(['solo', 'solo']);
    expect(FakeSocket.all).toHaveLength(2);
    const [c, d] = [tab('v'.repeat(64)), tab('w'.repeat(64), { url: 'wss://other.example/ws' })];
    c.connect();
    d.connect();
    await until(() => c.role === 'leader' && d.role === 'leader', 'each daemon has its leader');
    expect(FakeSocket.all).toHaveLength(4);
  });

  it('names its channel and locks after the URL without the token', () => {
    expect(channelNames('wss://tp.example/ws?token=abc&x=1')).toEqual(channelNames('wss://tp.example/ws?x=1&token=def'));
    expect(channelNames('wss://tp.example/ws').channel).not.toBe(channelNames('wss://tp.example:8443/ws').channel);
  });
});

describe('presence per tab (docs/protocol.md §Presence)', () => {
  const quiet = (p: Promise<unknown>): void => void p.catch(() => undefined);
  const TAB_ID = /^[A-Za-z0-9_-]{1,64}$/;

  it("names the sending tab in every presence action, the leader's own too, so two tabs keep two views", async () => {
    const [a, b] = [tab('t'.repeat(64)), tab('u'.repeat(64))];
    const socket = await startTabs(a, b);
    quiet(a.startItemView(1, 5));
    // TeamPass's init script sends presence with send(); a tab named by the page is replaced by the sender's.
    quiet(b.send({ action: 'start_item_view', data: { item_id: 2, folder_id: 5, tab: 'another-tab' } }));
    await until(() => socket.actions('start_item_view').length === 2, 'both views sent');
    const [viewA, viewB] = socket.actions('start_item_view');
    expect(viewA.data).toMatchObject({ item_id: 1, folder_id: 5 });
    expect(viewB.data).toMatchObject({ item_id: 2, folder_id: 5 });
    expect(viewA.data.tab).toMatch(TAB_ID);
    expect(viewB.data.tab).toMatch(TAB_ID);
    expect(viewB.data.tab).not.toBe(viewA.data.tab);
    expect(viewB.data.tab).not.toBe('another-tab');

    quiet(b.startKbView(3));
    quiet(b.send({ action: 'stop_kb_view' }));
    quiet(a.stopItemView());
    await until(() => socket.actions('stop_item_view').length === 1 && socket.actions('stop_kb_view').length === 1, 'stops sent');
    expect(socket.actions('start_kb_view')[0].data).toEqual({ kb_id: 3, tab: viewB.data.tab });
    expect(socket.actions('stop_kb_view')[0].data).toEqual({ tab: viewB.data.tab });
    expect(socket.actions('stop_item_view')[0].data).toEqual({ tab: viewA.data.tab });
    // Other actions are sent as they are.
    quiet(b.getStatus());
    await until(() => socket.actions('get_status').length === 1, 'get_status forwarded');
    expect(socket.actions('get_status')[0].data).toBeUndefined();
  });

  it("ends a gone tab's views on the shared socket", async () => {
    const [a, b] = [tab('t'.repeat(64)), tab('u'.repeat(64))];
    const socket = await startTabs(a, b);
    quiet(b.startItemView(2, 5));
    await until(() => socket.actions('start_item_view').length === 1, 'view sent');
    const tabB = socket.actions('start_item_view')[0].data.tab;
    b.disconnect();
    await until(() => socket.actions('stop_item_view').length === 1 && socket.actions('stop_kb_view').length === 1, 'gone tab’s views stopped');
    expect(socket.actions('stop_item_view')[0].data).toEqual({ tab: tabB });
    expect(socket.actions('stop_kb_view')[0].data).toEqual({ tab: tabB });
  });

  it('ignores a tab message whose tab id the daemon would refuse', async () => {
    const [a] = [tab('t'.repeat(64))];
    const socket = await startTabs(a);
    const intruder = new BroadcastChannel(channelNames(URL_A).channel);
    intruder.postMessage({ tpws: 1, t: 'request', tab: 'not a tab id', payload: { action: 'start_item_view', request_id: 'req_x', data: { item_id: 9 } } });
    intruder.postMessage({ tpws: 1, t: 'request', tab: 'real-tab', payload: { action: 'get_status', request_id: 'req_y' } });
    await until(() => socket.actions('get_status').length === 1, 'the valid request served');
    intruder.close();
    expect(socket.actions('start_item_view')).toEqual([]);
  });

  it("after a leader handover, every tab's views are started again on the new socket, each with its tab", async () => {
    const [a, b, c] = [tab('t'.repeat(64)), tab('u'.repeat(64)), tab('v'.repeat(64))];
    const s1 = await startTabs(a, b, c);
    quiet(b.startKbView(3));
    quiet(c.send({ action: 'start_item_view', data: { item_id: 2, folder_id: 5 } }));
    quiet(a.startItemView(1, 5));
    await until(() => s1.actions('start_item_view').length === 2 && s1.actions('start_kb_view').length === 1, 'views sent');
    const tabOf = (m: Record<string, any>) => m.data.tab as string;
    const tabB = tabOf(s1.actions('start_kb_view')[0]);
    const tabC = tabOf(s1.actions('start_item_view').find((m) => m.data.item_id === 2)!);
    a.disconnect();
    await until(() => b.role === 'leader', 'second tab leads');
    const s2 = FakeSocket.last();
    s2.accept({ epoch: E1, seq: 0 });
    s2.receive({ type: 'response', status: 'success', action: 'resumed', recovered: true, epoch: E1, seq: 0, replayed: 0, folders: [], denied: [], kb: false, request_id: s2.sent[0].request_id });
    await until(() => s2.actions('start_item_view').length === 1 && s2.actions('start_kb_view').length === 1, 'views started again');
    await settle();
    expect(s2.actions('start_kb_view')).toMatchObject([{ data: { kb_id: 3, tab: tabB } }]);
    // The old leader's view went with it.
    expect(s2.actions('start_item_view')).toMatchObject([{ data: { item_id: 2, folder_id: 5, tab: tabC } }]);
  });

  it('after a reconnect, a solo tab starts again the views it holds, not those it stopped or the daemon refused', async () => {
    const a = tab('t'.repeat(64), { shareTabs: false });
    a.connect();
    const s1 = FakeSocket.last();
    s1.accept({ epoch: E1, seq: 0 });
    quiet(a.startItemView(1, 5));
    quiet(a.startItemView(2, 5));
    quiet(a.stopItemView(1)); // another item: the view of item 2 stays
    const kb = a.startKbView(3);
    s1.receive({ type: 'error', error_code: 'not_found', message: 'KB article not found', request_id: s1.actions('start_kb_view')[0].request_id });
    await expect(kb).rejects.toMatchObject({ code: 'not_found' });
    s1.serverClose(1006);
    await settle();
    while (FakeSocket.all.length === 1) await vi.advanceTimersToNextTimerAsync();
    const s2 = FakeSocket.last();
    s2.accept({ epoch: E1, seq: 0 });
    expect(s2.actions('start_item_view')).toEqual([]);
    s2.receive({ type: 'response', status: 'success', action: 'resumed', recovered: true, epoch: E1, seq: 0, replayed: 0, folders: [], denied: [], kb: false, request_id: s2.sent[0].request_id });
    expect(s2.actions('start_item_view').map((m) => m.data)).toEqual([{ item_id: 2, folder_id: 5 }]);
    expect(s2.actions('start_kb_view')).toEqual([]);
    quiet(a.stopItemView());
    s2.serverClose(1006);
    await settle();
    while (FakeSocket.all.length === 2) await vi.advanceTimersToNextTimerAsync();
    const s3 = FakeSocket.last();
    s3.accept({ epoch: E1, seq: 0 });
    s3.receive({ type: 'response', status: 'success', action: 'resumed', recovered: true, epoch: E1, seq: 0, replayed: 0, folders: [], denied: [], kb: false, request_id: s3.sent[0].request_id });
    expect(s3.actions('start_item_view')).toEqual([]);
  });

  it('a solo tab sends presence as the page gives it, without a tab', async () => {
    const a = tab('t'.repeat(64), { shareTabs: false });
    a.connect();
    const socket = FakeSocket.last();
    socket.accept({ epoch: E1, seq: 0 });
    quiet(a.startItemView(1, 5));
    quiet(a.send({ action: 'start_kb_view', data: { kb_id: 3 } }));
    quiet(a.stopItemView(1));
    quiet(a.stopKbView());
    expect(a.role).toBe('solo');
    expect(socket.actions('start_item_view')[0].data).toEqual({ item_id: 1, folder_id: 5 });
    expect(socket.actions('start_kb_view')[0].data).toEqual({ kb_id: 3 });
    expect(socket.actions('stop_item_view')[0].data).toEqual({ item_id: 1 });
    expect(socket.actions('stop_kb_view')[0].data).toEqual({});
  });
});
