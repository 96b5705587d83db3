import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { describeSocketError, IngestClient, isBatchAck, type IngestAck } from '../../src/ingest/client.js';

const dir = mkdtempSync(join(tmpdir(), 'tpws-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;

/** What a connection to the stand-in daemon wrote, and its socket to answer on. */
interface Peer {
  socket: Socket;
  bytes: Buffer;
  /** Resolves once `bytes` holds at least `n` bytes. */
  received(n: number): Promise<Buffer>;
}

/** A stand-in daemon on a temp socket path: the test reads the frames and writes the acks itself. */
async function fakeDaemon(): Promise<{ path: string; peer(): Promise<Peer>; close(): Promise<void> }> {
  const path = join(dir, `d${seq++}.sock`);
  const peers: Peer[] = [];
  let onPeer: (() => void) | null = null;
  const server: Server = createServer((socket) => {
    let wake: (() => void) | null = null;
    const peer: Peer = {
      socket,
      bytes: Buffer.alloc(0),
      async received(n) {
        while (peer.bytes.length < n) await new Promise<void>((r) => (wake = r));
        return peer.bytes;
      },
    };
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      peer.bytes = Buffer.concat([peer.bytes, d]);
      wake?.();
    });
    peers.push(peer);
    onPeer?.();
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    async peer() {
      while (peers.length === 0) await new Promise<void>((r) => (onPeer = r));
      return peers[0];
    },
    close: () => {
      for (const p of peers) p.socket.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

const fakes: { close(): Promise<void> }[] = [];
const clients: IngestClient[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients.splice(0)) c.destroy();
  for (const f of fakes.splice(0)) await f.close();
});

async function connected(encoding: 'ndjson' | 'msgpack' = 'ndjson', timeoutMs?: number) {
  const daemon = await fakeDaemon();
  fakes.push(daemon);
  const client = await IngestClient.connect(daemon.path, { encoding, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  clients.push(client);
  return { client, peer: await daemon.peer() };
}

const daemonPackr = new Packr({ useRecords: false });
function msgpackAck(value: unknown): Buffer {
  const body = daemonPackr.pack(value);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

const ev = (id: string) => ({ id, event_type: 't', target_type: 'user', target_id: 1 });
const ok = (id: string, seq: number) => ({ ok: true, id, seq });

describe('IngestClient', () => {
  describe('.connect', () => {
    it('rejects with TPWS_ERR_UNAVAILABLE and the ENOENT hint when nothing is at the path', async () => {
      const err = await IngestClient.connect(join(dir, 'absent.sock')).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TPWS_ERR_UNAVAILABLE', message: 'no socket at this path (ENOENT: is the daemon running?)' });
      expect((err as Error).cause).toMatchObject({ code: 'ENOENT' });
    });

    it('rejects with the ECONNREFUSED hint for a socket file nobody listens on', async () => {
      const path = join(dir, 'stale.sock');
      // A daemon killed while listening leaves its socket file behind.
      spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
      await expect(IngestClient.connect(path)).rejects.toMatchObject({ code: 'TPWS_ERR_UNAVAILABLE', message: 'connection refused (ECONNREFUSED: no daemon listening)' });
    });

    it('loads msgpackr only for a msgpack connection', async () => {
      const daemon = await fakeDaemon();
      fakes.push(daemon);
      // A fresh process: which modules does each encoding load? (tp-ws-emit's cold start depends on it.)
      const hook = `data:text/javascript,${encodeURIComponent('export async function resolve(s, c, next) { const r = await next(s, c); if (r.url.includes("/msgpackr/")) process.stdout.write("msgpackr\\n"); return r; }')}`;
      const built = new URL('../../dist/ingest/client.js', import.meta.url).href; // `npm test` builds first
      const script = (encoding: string) => `
        import { register } from 'node:module';
        register(${JSON.stringify(hook)});
        const { IngestClient } = await import(${JSON.stringify(built)});
        const c = await IngestClient.connect(${JSON.stringify(daemon.path)}, { encoding: '${encoding}' });
        c.destroy();
        process.stdout.write('connected\\n');`;
      const run = (encoding: string) => spawnSync(process.execPath, ['--input-type=module', '-e', script(encoding)], { encoding: 'utf8' });
      const ndjson = run('ndjson');
      expect(ndjson.stderr).toBe('');
      expect(ndjson.stdout).toBe('connected\n');
      expect(run('msgpack').stdout).toContain('msgpackr\n');
    });

    it('refuses a timeout that is not a positive number', async () => {
      await expect(IngestClient.connect(join(dir, 'absent.sock'), { timeoutMs: 0 })).rejects.toMatchObject({ code: 'TPWS_ERR_CONFIG_INVALID' });
    });
  });

  describe('NDJSON', () => {
    it('writes one line per frame, and one write for sendAll', async () => {
      const { client, peer } = await connected();
      client.send(ev('a'));
      client.sendAll([ev('b'), [ev('c'), ev('d')]]);
      const want = [ev('a'), ev('b'), [ev('c'), ev('d')]].map((f) => `${JSON.stringify(f)}\n`).join('');
      expect((await peer.received(Buffer.byteLength(want))).toString()).toBe(want);
      expect(client.encode(ev('a')).toString()).toBe(`${JSON.stringify(ev('a'))}\n`);
    });

    it('hands out acks in frame order, whether they came before or after they were asked for', async () => {
      const { client, peer } = await connected();
      const first = client.nextAck(); // asked for before it arrives
      peer.socket.write(['a', 'b', 'c'].map((id, i) => `${JSON.stringify(ok(id, i + 1))}\n`).join(''));
      expect(await first).toEqual(ok('a', 1));
      // These came with the first one, before anyone asked for them.
      expect(await client.nextAck()).toEqual(ok('b', 2));
      expect(await client.nextAck()).toEqual(ok('c', 3));
      // An ack split over many writes, CRLF and a blank line included.
      const split = client.nextAck();
      for (const byte of Buffer.from(`\n${JSON.stringify(ok('d', 4))}\r\n`)) peer.socket.write(Buffer.from([byte]));
      expect(await split).toEqual(ok('d', 4));
    });

    it('skips a blank line among the acks of one read', async () => {
      const { client, peer } = await connected();
      peer.socket.write(`${JSON.stringify(ok('a', 1))}\n\n${JSON.stringify(ok('b', 2))}\r\n`);
      expect(await client.nextAck()).toEqual(ok('a', 1));
      expect(await client.nextAck()).toEqual(ok('b', 2));
    });

    it('refuses a line holding two values, after the acks before it', async () => {
      const { client, peer } = await connected();
      peer.socket.write(`${JSON.stringify(ok('a', 1))}\n${JSON.stringify(ok('b', 2))},${JSON.stringify(ok('c', 3))}\n`);
      await client.closed;
      expect(await client.nextAcks()).toEqual([ok('a', 1)]);
      await expect(client.nextAck()).rejects.toMatchObject({ code: 'TPWS_ERR_BAD_FRAME', message: 'the daemon answered with an unreadable ack' });
    });

    it('pipelines request(): the promises settle in frame order', async () => {
      const { client, peer } = await connected();
      const acks = ['a', 'b', 'c'].map((id) => client.request(ev(id)));
      const lines = (await peer.received(1)).toString();
      expect(lines.startsWith(JSON.stringify(ev('a')))).toBe(true);
      peer.socket.write(['a', 'b', 'c'].map((id, i) => `${JSON.stringify(ok(id, i + 1))}\n`).join(''));
      expect(await Promise.all(acks)).toEqual([ok('a', 1), ok('b', 2), ok('c', 3)]);
    });

    it('gives a batch frame its results, typed by isBatchAck', async () => {
      const { client, peer } = await connected();
      const pending = client.request([ev('a'), { event_type: 'x', target_type: 'room' }]);
      const batch = { ok: false, results: [ok('a', 1), { ok: false, error: { code: 'TPWS_ERR_INVALID_EVENT', message: 'target_type: must be one of user, folder, kb, broadcast' } }] };
      peer.socket.write(`${JSON.stringify(batch)}\n`);
      const ack = await pending;
      expect(ack).toEqual(batch);
      expect(isBatchAck(ack)).toBe(true);
      expect(isBatchAck({ ok: false, error: { code: 'TPWS_ERR_BATCH_TOO_LARGE', message: 'split it' } })).toBe(false);
    });
  });

  describe('#nextAcks', () => {
    it('takes every ack received so far, in frame order, and waits when there is none', async () => {
      const { client, peer } = await connected();
      const first = client.nextAck();
      const rest = client.nextAcks();
      peer.socket.write(['a', 'b', 'c'].map((id, i) => `${JSON.stringify(ok(id, i + 1))}\n`).join(''));
      expect(await first).toEqual(ok('a', 1));
      expect(await rest).toEqual([ok('b', 2), ok('c', 3)]);
      peer.socket.write(`${JSON.stringify(ok('d', 4))}\n`);
      expect(await client.nextAcks()).toEqual([ok('d', 4)]);
    });

    it('hands out the acks before a bad one, then rejects', async () => {
      const { client, peer } = await connected();
      peer.socket.write(`${JSON.stringify(ok('a', 1))}\n${JSON.stringify(ok('b', 2))}\nnot json\n`);
      await client.closed;
      expect(await client.nextAcks()).toEqual([ok('a', 1), ok('b', 2)]);
      await expect(client.nextAcks()).rejects.toMatchObject({ code: 'TPWS_ERR_BAD_FRAME', message: 'the daemon answered with an unreadable ack' });
    });
  });

  describe('msgpack', () => {
    it('writes length-prefixed frames the daemon decodes, and reads acks split anywhere', async () => {
      const { client, peer } = await connected('msgpack');
      const pending = client.request(ev('m'));
      const bytes = await peer.received(4);
      const len = bytes.readUInt32BE(0);
      const frame = await peer.received(4 + len);
      expect(new Packr({ useRecords: false, mapsAsObjects: true }).unpack(frame.subarray(4, 4 + len))).toEqual(ev('m'));
      expect(client.encode(ev('m'))).toEqual(frame.subarray(0, 4 + len));
      // seq as a uint64: decoded as a number, as JSON.parse would.
      const ack = Buffer.concat([msgpackAck({ ok: true, id: 'm', seq: 2 ** 40 }), msgpackAck(ok('n', 2))]);
      for (let i = 0; i < ack.length; i += 3) peer.socket.write(ack.subarray(i, i + 3));
      expect(await pending).toEqual({ ok: true, id: 'm', seq: 2 ** 40 });
      expect(await client.nextAck()).toEqual(ok('n', 2));
    });
  });

  describe('failures', () => {
    it('an unreadable ack fails the connection with TPWS_ERR_BAD_FRAME, after the acks before it', async () => {
      const { client, peer } = await connected();
      const waits = [client.nextAck(), client.nextAck(), client.nextAck()];
      for (const w of waits) w.catch(() => undefined);
      peer.socket.write(`${JSON.stringify(ok('a', 1))}\n{"ok": tru\n`);
      expect(await waits[0]).toEqual(ok('a', 1));
      for (const w of waits.slice(1)) await expect(w).rejects.toMatchObject({ code: 'TPWS_ERR_BAD_FRAME', message: 'the daemon answered with an unreadable ack' });
      await client.closed; // dropped: a later ack could not be trusted
      await expect(client.nextAck()).rejects.toMatchObject({ code: 'TPWS_ERR_BAD_FRAME' });
      expect(client.send(ev('x'))).toBe(false);
    });

    it('an answer without a boolean ok is an unexpected ack', async () => {
      const { client, peer } = await connected();
      peer.socket.write('[1,2]\n');
      await expect(client.nextAck()).rejects.toMatchObject({ code: 'TPWS_ERR_BAD_FRAME', message: 'the daemon answered with an unexpected ack' });
    });

    it('an ack in the other encoding is refused', async () => {
      const { client, peer } = await connected('msgpack');
      peer.socket.write(`${JSON.stringify(ok('a', 1))}\n`);
      await expect(client.nextAck()).rejects.toMatchObject({ code: 'TPWS_ERR_BAD_FRAME' });
    });

    it('the daemon closing the connection rejects every waiting call; acks received before are still handed out', async () => {
      const { client, peer } = await connected();
      const first = client.request(ev('a'));
      const second = client.request(ev('b'));
      second.catch(() => undefined);
      peer.socket.end(`${JSON.stringify(ok('a', 1))}\n`);
      expect(await first).toEqual(ok('a', 1));
      await expect(second).rejects.toMatchObject({ code: 'TPWS_ERR_UNAVAILABLE', message: 'the daemon closed the connection' });
    });

    it('close() ends the connection; calls after it reject', async () => {
      const { client, peer } = await connected();
      const peerClosed = new Promise((r) => peer.socket.once('close', r));
      await client.close();
      await peerClosed;
      await expect(client.request(ev('a'))).rejects.toMatchObject({ code: 'TPWS_ERR_UNAVAILABLE', message: 'the connection was closed by the sender' });
      await client.close(); // idempotent
    });
  });

  describe('timeouts', () => {
    it('no ack within timeoutMs: every waiting call rejects and the connection is dropped', async () => {
      const { client, peer } = await connected('ndjson', 1000);
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const waits = [client.request(ev('a')), client.request(ev('b'))];
      for (const w of waits) w.catch(() => undefined);
      const peerClosed = new Promise((r) => peer.socket.once('close', r));
      vi.advanceTimersByTime(1000);
      for (const w of waits) await expect(w).rejects.toMatchObject({ code: 'TPWS_ERR_UNAVAILABLE', message: 'no ack within 1000 ms' });
      await peerClosed; // a late ack must not be taken for the next frame's
    });

    it('each ack restarts the wait, so a long pipeline is not cut off while acks keep coming', async () => {
      const { client, peer } = await connected('ndjson', 1000);
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const waits = ['a', 'b', 'c'].map((id) => client.request(ev(id)));
      const acks: IngestAck[] = [];
      for (const [i, id] of ['a', 'b', 'c'].entries()) {
        vi.advanceTimersByTime(900);
        peer.socket.write(`${JSON.stringify(ok(id, i + 1))}\n`);
        acks.push(await waits[i]);
      }
      expect(acks).toEqual([ok('a', 1), ok('b', 2), ok('c', 3)]);
    });

    it('no wait runs while no ack is awaited', async () => {
      const { client, peer } = await connected('ndjson', 1000);
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      client.send(ev('a'));
      vi.advanceTimersByTime(5000);
      peer.socket.write(`${JSON.stringify(ok('a', 1))}\n`);
      expect(await client.nextAck()).toEqual(ok('a', 1));
    });
  });
});

describe('describeSocketError', () => {
  it('names the usual cause of the errors a Unix-socket sender meets', () => {
    const err = (code: string, message = code) => Object.assign(new Error(message), { code });
    expect(describeSocketError(err('ENOENT'))).toBe('no socket at this path (ENOENT: is the daemon running?)');
    expect(describeSocketError(err('ECONNREFUSED'))).toBe('connection refused (ECONNREFUSED: no daemon listening)');
    expect(describeSocketError(err('EACCES'))).toBe('permission denied (EACCES: check ingest.socketGroup and ingest.socketMode)');
    expect(describeSocketError(err('EPIPE', 'write EPIPE'))).toBe('EPIPE: write EPIPE');
  });
});
