/**
 * The ingest socket spoken with nothing but `node:net`, written from
 * docs/ingest.md alone: if an emitter written from the spec works, this
 * passes. No project code is imported besides the test helpers that start a
 * daemon and observe delivery through a real WebSocket client. msgpack is
 * encoded and decoded by hand below (no library), as a PHP or C emitter would.
 */
import { createConnection, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIX, seedFixture } from '../helpers/fixture.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';

// ---------------------------------------------------------------------------
// msgpack by hand (the subset an event and an ack need)

function mpEncode(value: unknown): Buffer {
  const out: Buffer[] = [];
  const head = (...bytes: number[]) => out.push(Buffer.from(bytes));
  const sized = (len: number, fix: number | null, fixMax: number, c8: number | null, c16: number, c32: number) => {
    if (fix !== null && len <= fixMax) head(fix | len);
    else if (c8 !== null && len <= 0xff) head(c8, len);
    else if (len <= 0xffff) head(c16, len >> 8, len & 0xff);
    else {
      const b = Buffer.alloc(5);
      b[0] = c32;
      b.writeUInt32BE(len, 1);
      out.push(b);
    }
  };
  const walk = (v: unknown): void => {
    if (v === null || v === undefined) head(0xc0);
    else if (v === false) head(0xc2);
    else if (v === true) head(0xc3);
    else if (typeof v === 'number' && Number.isInteger(v)) {
      const b = Buffer.alloc(9);
      if (v >= 0 && v < 128) head(v);
      else if (v < 0 && v >= -32) head(v & 0xff);
      else if (v >= 0 && v <= 0xff) head(0xcc, v);
      else if (v >= 0 && v <= 0xffff) (b[0] = 0xcd, b.writeUInt16BE(v, 1), out.push(b.subarray(0, 3)));
      else if (v >= 0 && v <= 0xffffffff) (b[0] = 0xce, b.writeUInt32BE(v, 1), out.push(b.subarray(0, 5)));
      else if (v >= 0) (b[0] = 0xcf, b.writeBigUInt64BE(BigInt(v), 1), out.push(b));
      else if (v >= -128) (b[0] = 0xd0, b.writeInt8(v, 1), out.push(b.subarray(0, 2)));
      else if (v >= -32768) (b[0] = 0xd1, b.writeInt16BE(v, 1), out.push(b.subarray(0, 3)));
      else if (v >= -(2 ** 31)) (b[0] = 0xd2, b.writeInt32BE(v, 1), out.push(b.subarray(0, 5)));
      else (b[0] = 0xd3, b.writeBigInt64BE(BigInt(v), 1), out.push(b));
    } else if (typeof v === 'number') {
      const b = Buffer.alloc(9);
      b[0] = 0xcb;
      b.writeDoubleBE(v, 1);
      out.push(b);
    } else if (typeof v === 'string') {
      const s = Buffer.from(v, 'utf8');
      sized(s.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      out.push(s);
    } else if (Buffer.isBuffer(v)) {
      sized(v.length, null, 0, 0xc4, 0xc5, 0xc6);
      out.push(v);
    } else if (Array.isArray(v)) {
      sized(v.length, 0x90, 15, null, 0xdc, 0xdd);
      v.forEach(walk);
    } else if (typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
      sized(entries.length, 0x80, 15, null, 0xde, 0xdf);
      for (const [k, x] of entries) (walk(k), walk(x));
    } else throw new Error(`cannot encode ${typeof v}`);
  };
  walk(value);
  return Buffer.concat(out);
}

function mpDecode(buf: Buffer): unknown {
  let o = 0;
  const take = (n: number) => {
    if (o + n > buf.length) throw new Error('msgpack: truncated');
    const s = buf.subarray(o, o + n);
    o += n;
    return s;
  };
  const str = (n: number) => take(n).toString('utf8');
  const arr = (n: number) => Array.from({ length: n }, () => read());
  const map = (n: number) => {
    const m: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const k = read();
      m[String(k)] = read();
    }
    return m;
  };
  const read = (): unknown => {
    const t = take(1)[0];
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return t - 0x100;
    if (t >= 0x80 && t <= 0x8f) return map(t & 0x0f);
    if (t >= 0x90 && t <= 0x9f) return arr(t & 0x0f);
    if (t >= 0xa0 && t <= 0xbf) return str(t & 0x1f);
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return take(take(1)[0]);
      case 0xc5: return take(take(2).readUInt16BE(0));
      case 0xc6: return take(take(4).readUInt32BE(0));
      case 0xca: return take(4).readFloatBE(0);
      case 0xcb: return take(8).readDoubleBE(0);
      case 0xcc: return take(1)[0];
      case 0xcd: return take(2).readUInt16BE(0);
      case 0xce: return take(4).readUInt32BE(0);
      case 0xcf: return Number(take(8).readBigUInt64BE(0));
      case 0xd0: return take(1).readInt8(0);
      case 0xd1: return take(2).readInt16BE(0);
      case 0xd2: return take(4).readInt32BE(0);
      case 0xd3: return Number(take(8).readBigInt64BE(0));
      case 0xd9: return str(take(1)[0]);
      case 0xda: return str(take(2).readUInt16BE(0));
      case 0xdb: return str(take(4).readUInt32BE(0));
      case 0xdc: return arr(take(2).readUInt16BE(0));
      case 0xdd: return arr(take(4).readUInt32BE(0));
      case 0xde: return map(take(2).readUInt16BE(0));
      case 0xdf: return map(take(4).readUInt32BE(0));
      default: throw new Error(`msgpack: unsupported type byte 0x${t.toString(16)}`);
    }
  };
  const v = read();
  if (o !== buf.length) throw new Error('msgpack: trailing bytes');
  return v;
}

/** A length-prefixed msgpack frame: 4-byte big-endian length, then the body. */
function mpFrame(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

describe('hand-rolled msgpack (self-check)', () => {
  it('round-trips the shapes used here, with the canonical bytes for small values', () => {
    expect(mpEncode({ a: 1 })).toEqual(Buffer.from([0x81, 0xa1, 0x61, 0x01]));
    expect(mpEncode([true, false, null, -1])).toEqual(Buffer.from([0x94, 0xc3, 0xc2, 0xc0, 0xff]));
    const v = { s: 'é'.repeat(40), n: [0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -33, -129, -40000, -3e9, 1.5], m: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])), a: Array.from({ length: 20 }, (_, i) => i) };
    expect(mpDecode(mpEncode(v))).toEqual(v);
  });
});

// ---------------------------------------------------------------------------
// A raw connection

type Ack = Record<string, any>;

class Raw {
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  closed = false;
  readonly sock: Socket;
  readonly done: Promise<void>;

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    sock.on('error', () => undefined);
    this.done = new Promise((resolve) => sock.on('close', () => {
      this.closed = true;
      this.wake?.();
      resolve();
    }));
  }

  static connect(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = createConnection({ path });
      s.once('connect', () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.sock.write(data);
  }

  /** Write byte by byte, one write per event-loop turn, so the daemon sees many small reads. */
  async trickle(data: string | Buffer): Promise<void> {
    const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
    for (let i = 0; i < b.length; i++) {
      await new Promise<void>((r) => this.sock.write(b.subarray(i, i + 1), () => r()));
      await new Promise((r) => setImmediate(r));
    }
  }

  private async until<T>(extract: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = extract();
      if (v !== undefined) return v;
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; unread: ${JSON.stringify(this.buf.toString())}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; unread: ${JSON.stringify(this.buf.toString())}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          resolve();
        };
      });
    }
  }

  /** The next NDJSON ack line, parsed. */
  line(timeoutMs = 5000): Promise<Ack> {
    return this.until(() => {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) return undefined;
      const text = this.buf.subarray(0, nl).toString('utf8');
      this.buf = this.buf.subarray(nl + 1);
      return JSON.parse(text) as Ack;
    }, timeoutMs, 'ack line');
  }

  /** The next length-prefixed msgpack ack, decoded. */
  msgpack(timeoutMs = 5000): Promise<Ack> {
    return this.until(() => {
      if (this.buf.length < 4) return undefined;
      const n = this.buf.readUInt32BE(0);
      if (this.buf.length < 4 + n) return undefined;
      const body = this.buf.subarray(4, 4 + n);
      this.buf = this.buf.subarray(4 + n);
      return mpDecode(body) as Ack;
    }, timeoutMs, 'msgpack ack');
  }

  /** Wait for the daemon to close the connection; the bytes it sent before stay readable. */
  async closedWithin(timeoutMs = 5000): Promise<boolean> {
    await Promise.race([this.done, new Promise((r) => setTimeout(r, timeoutMs))]);
    return this.closed;
  }

  get unread(): number {
    return this.buf.length;
  }

  end(): void {
    this.sock.destroy();
  }
}

// ---------------------------------------------------------------------------

const MAX_FRAME = 2048;

describe('ingest socket, raw protocol (docs/ingest.md)', () => {
  let d: TestDaemon;
  let path: string;
  let alice: TestClient;
  const conns: Raw[] = [];
  const open = async () => {
    const c = await Raw.connect(path);
    conns.push(c);
    return c;
  };
  let n = 0;
  const uid = (tag: string) => `raw-${tag}-${process.pid}-${++n}`;
  const toAlice = (extra: Record<string, unknown> = {}) => ({ event_type: 'raw_test', target_type: 'user', target_id: FIX.users.alice, ...extra });

  beforeAll(async () => {
    d = await startDaemon({ 'ingest.maxFrameBytes': MAX_FRAME });
    path = d.daemon.config.ingest.socket;
    await seedFixture(d.daemon.config.store.url, d.daemon.config.store.tablePrefix);
    alice = (await TestClient.login(d.url(FIX.tokens.alice))).client;
  });

  afterAll(async () => {
    for (const c of conns) c.end();
    alice?.ws.terminate();
    await d?.stop();
  });

  describe('NDJSON', () => {
    it('one event: ack ok with a daemon-assigned id and a seq; a WebSocket client receives it', async () => {
      const c = await open();
      c.write(`${JSON.stringify(toAlice({ payload: { item_id: 42, text: 'héllo\nworld' } }))}\n`);
      const ack = await c.line();
      expect(ack).toMatchObject({ ok: true, id: expect.any(String), seq: expect.any(Number) });
      expect(ack.id).toMatch(/^[A-Za-z0-9._:-]{1,64}$/);
      expect(ack).not.toHaveProperty('error');
      const m = await alice.nextEvent();
      expect(m).toMatchObject({ type: 'event', event: 'raw_test', data: { item_id: 42, text: 'héllo\nworld' }, id: ack.id, seq: ack.seq });
    });

    it('the sender\'s id is kept; exclude_user_id is copied into the payload; created_at is honoured', async () => {
      const c = await open();
      const id = uid('keep');
      c.write(`${JSON.stringify(toAlice({ id, exclude_user_id: FIX.users.bob, created_at: 1_763_769_600_000, unknown_field: 'ignored' }))}\n`);
      expect(await c.line()).toMatchObject({ ok: true, id });
      const m = await alice.nextEvent();
      expect(m).toMatchObject({ id, data: { exclude_user_id: FIX.users.bob }, timestamp: 1_763_769_600 });
    });

    it('pipelined: several frames in one write get their acks in order', async () => {
      const c = await open();
      const ids = [uid('p'), uid('p'), uid('p'), uid('p')];
      c.write(ids.map((id) => `${JSON.stringify(toAlice({ id }))}\n`).join(''));
      const acks = [];
      for (let i = 0; i < ids.length; i++) acks.push(await c.line());
      expect(acks.map((a) => a.id)).toEqual(ids);
      expect(acks.every((a) => a.ok === true)).toBe(true);
      for (let i = 1; i < acks.length; i++) expect(acks[i].seq).toBeGreaterThan(acks[i - 1].seq);
      for (const id of ids) expect((await alice.nextEvent()).id).toBe(id);
    });

    it('one frame split across 1-byte writes, then another frame: both acked, in order', async () => {
      const c = await open();
      const [a, b] = [uid('t'), uid('t')];
      await c.trickle(`${JSON.stringify(toAlice({ id: a, payload: { x: 'é' } }))}\r\n${JSON.stringify(toAlice({ id: b }))}\n`);
      expect(await c.line()).toMatchObject({ ok: true, id: a });
      expect(await c.line()).toMatchObject({ ok: true, id: b });
      expect(await alice.nextEvent()).toMatchObject({ id: a, data: { x: 'é' } });
      expect((await alice.nextEvent()).id).toBe(b);
    });

    it('blank lines are ignored (no ack); CRLF is accepted; a leading space selects NDJSON', async () => {
      const c = await open();
      const id = uid('blank');
      c.write(`  \r\n\n\t\n${JSON.stringify(toAlice({ id }))}\r\n\n`);
      expect(await c.line()).toMatchObject({ ok: true, id });
      const id2 = uid('blank');
      c.write(`${JSON.stringify(toAlice({ id: id2 }))}\n`);
      expect(await c.line()).toMatchObject({ ok: true, id: id2 }); // the blank lines produced no ack in between
      await alice.nextEvent();
      await alice.nextEvent();
    });

    it('a batch with one invalid event: one ack, a result per event in order, the valid ones delivered', async () => {
      const c = await open();
      const [a, b, e] = [uid('b'), uid('b'), uid('b')];
      c.write(`${JSON.stringify([toAlice({ id: a }), { id: b, event_type: 'x', target_type: 'room' }, toAlice({ id: e, payload: [] })])}\n`);
      const ack = await c.line();
      expect(ack).toEqual({
        ok: false,
        results: [
          { ok: true, id: a, seq: expect.any(Number) },
          { ok: false, id: b, error: { code: 'TPWS_ERR_INVALID_EVENT', message: expect.stringContaining('target_type') } },
          { ok: true, id: e, seq: expect.any(Number) },
        ],
      });
      expect((await alice.nextEvent()).id).toBe(a);
      expect(await alice.nextEvent()).toMatchObject({ id: e, data: {} }); // PHP's [] payload counts as {}
    });

    it('an all-valid batch: ok true', async () => {
      const c = await open();
      const ids = [uid('ok'), uid('ok')];
      c.write(`${JSON.stringify(ids.map((id) => toAlice({ id })))}\n`);
      expect(await c.line()).toEqual({ ok: true, results: ids.map((id) => ({ ok: true, id, seq: expect.any(Number) })) });
      await alice.nextEvent();
      await alice.nextEvent();
    });

    it.each([
      ['target_id out of range', { target_id: 4294967296 }, 'target_id'],
      ['target_id missing for user', { target_id: undefined }, 'target_id'],
      ['event_type too long', { event_type: 'e'.repeat(51) }, 'event_type'],
      ['event_type not printable ASCII', { event_type: 'é' }, 'event_type'],
      ['event_type with a space (the rule says so)', { event_type: 'item updated' }, 'event_type'],
      ['payload not an object', { payload: 'text' }, 'payload'],
      ['bad id', { id: 'has space' }, 'id'],
    ])('TPWS_ERR_INVALID_EVENT for %s, naming the field; the connection is kept', async (_name, patch, field) => {
      const c = await open();
      c.write(`${JSON.stringify(toAlice(patch))}\n`);
      const ack = await c.line();
      expect(ack).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_INVALID_EVENT', message: expect.stringContaining(field) } });
      expect(ack).not.toHaveProperty('results');
      const id = uid('after');
      c.write(`${JSON.stringify(toAlice({ id }))}\n`);
      expect(await c.line()).toMatchObject({ ok: true, id });
      expect((await alice.nextEvent()).id).toBe(id);
    });

    it('an invalid event with a usable id: the error ack carries that id', async () => {
      const c = await open();
      const id = uid('badid');
      c.write(`${JSON.stringify({ id, event_type: 'x', target_type: 'user' })}\n`);
      expect(await c.line()).toMatchObject({ ok: false, id, error: { code: 'TPWS_ERR_INVALID_EVENT' } });
    });

    it('kb and broadcast ignore target_id', async () => {
      const c = await open();
      const id = uid('bc');
      c.write(`${JSON.stringify({ id, event_type: 'raw_test', target_type: 'broadcast', target_id: 'whatever' })}\n`);
      expect(await c.line()).toMatchObject({ ok: true, id });
      expect((await alice.nextEvent()).id).toBe(id);
    });

    it('a broken JSON line: TPWS_ERR_BAD_FRAME (no id, no results), and the connection still works', async () => {
      const c = await open();
      c.write('{"event_type": "x", oops\n');
      const ack = await c.line();
      expect(ack).toEqual({ ok: false, error: { code: 'TPWS_ERR_BAD_FRAME', message: expect.any(String) } });
      const id = uid('afterbad');
      c.write(`${JSON.stringify(toAlice({ id }))}\n`);
      expect(await c.line()).toMatchObject({ ok: true, id });
      expect((await alice.nextEvent()).id).toBe(id);
    });

    it.each([['a number', '42'], ['a string', '"hello"'], ['null', 'null']])('a frame that is %s, not an object or array: TPWS_ERR_BAD_FRAME, connection kept', async (_n, frame) => {
      const c = await open();
      c.write(`${JSON.stringify(toAlice({ id: uid('first') }))}\n${frame}\n`);
      expect((await c.line()).ok).toBe(true);
      expect(await c.line()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_BAD_FRAME' } });
      const id = uid('kept');
      c.write(`${JSON.stringify(toAlice({ id }))}\n`);
      expect(await c.line()).toMatchObject({ ok: true, id });
      await alice.nextEvent();
      await alice.nextEvent();
    });

    it('a line of exactly ingest.maxFrameBytes is accepted; one byte more is TPWS_ERR_FRAME_TOO_LARGE', async () => {
      const c = await open();
      const sized = (bytes: number, id: string) => {
        const base = JSON.stringify(toAlice({ id, payload: { pad: '' } }));
        return JSON.stringify(toAlice({ id, payload: { pad: 'p'.repeat(bytes - base.length) } }));
      };
      const fits = sized(MAX_FRAME, uid('fits'));
      const over = sized(MAX_FRAME + 1, uid('over'));
      expect([Buffer.byteLength(fits), Buffer.byteLength(over)]).toEqual([MAX_FRAME, MAX_FRAME + 1]);
      c.write(`${fits}\n`);
      expect(await c.line()).toMatchObject({ ok: true });
      c.write(`${over}\n`);
      expect(await c.line()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_FRAME_TOO_LARGE' } });
      await alice.nextEvent();
    });

    it('an oversize line sent in pieces: TPWS_ERR_FRAME_TOO_LARGE once, the rest of the line skipped, the connection still works', async () => {
      const c = await open();
      const big = JSON.stringify(toAlice({ payload: { pad: 'x'.repeat(MAX_FRAME * 4) } }));
      for (let i = 0; i < big.length; i += 1000) {
        c.write(big.slice(i, i + 1000));
        await new Promise((r) => setImmediate(r));
      }
      c.write('\n');
      const ack = await c.line();
      expect(ack).toEqual({ ok: false, error: { code: 'TPWS_ERR_FRAME_TOO_LARGE', message: expect.any(String) } });
      const id = uid('aftertoolarge');
      c.write(`${JSON.stringify(toAlice({ id }))}\n`);
      expect(await c.line()).toMatchObject({ ok: true, id }); // not a second error ack for the skipped tail
      expect((await alice.nextEvent()).id).toBe(id);
    });

    it('a batch of more than ingest.maxBatchEvents (1,000) events: TPWS_ERR_BATCH_TOO_LARGE, connection kept', async () => {
      const batch = Array.from({ length: 1001 }, () => ({ event_type: 'x', target_type: 'kb' }));
      // The batch must fit in a frame to be judged on its count: bigger frames for this one daemon.
      const d2 = await startDaemon();
      try {
        const c2 = await Raw.connect(d2.daemon.config.ingest.socket);
        conns.push(c2);
        c2.write(`${JSON.stringify(batch)}\n`);
        const ack = await c2.line();
        expect(ack).toEqual({ ok: false, error: { code: 'TPWS_ERR_BATCH_TOO_LARGE', message: expect.any(String) } });
        c2.write(`${JSON.stringify(batch.slice(0, 1000))}\n`);
        const ok = await c2.line();
        expect(ok.ok).toBe(true);
        expect(ok.results).toHaveLength(1000);
      } finally {
        await d2.stop();
      }
    });

    it('duplicate id: the second send is ok with duplicate: true and is not delivered again', async () => {
      const c = await open();
      const id = uid('dup');
      c.write(`${JSON.stringify(toAlice({ id }))}\n`);
      const first = await c.line();
      expect(first).toMatchObject({ ok: true, id });
      expect(first.duplicate).not.toBe(true);
      c.write(`${JSON.stringify(toAlice({ id }))}\n`);
      const second = await c.line();
      expect(second).toMatchObject({ ok: true, id, duplicate: true });
      // On another connection too: the window is the daemon's, not the connection's.
      const c2 = await open();
      c2.write(`${JSON.stringify(toAlice({ id }))}\n`);
      expect(await c2.line()).toMatchObject({ ok: true, id, duplicate: true });
      expect((await alice.nextEvent()).id).toBe(id);
      const barrier = uid('barrier');
      c.write(`${JSON.stringify(toAlice({ id: barrier }))}\n`);
      await c.line();
      expect((await alice.nextEvent()).id).toBe(barrier);
    });

    it('an unknown first byte: one NDJSON TPWS_ERR_BAD_FRAME ack, then the connection is closed', async () => {
      const c = await open();
      c.write(`hello ${JSON.stringify(toAlice())}\n`);
      const ack = await c.line();
      expect(ack).toEqual({ ok: false, error: { code: 'TPWS_ERR_BAD_FRAME', message: expect.any(String) } });
      expect(await c.closedWithin()).toBe(true);
      expect(c.unread).toBe(0);
    });

    it('many connections at once, each with its own acks', async () => {
      const cs = await Promise.all(Array.from({ length: 20 }, () => open()));
      const ids = cs.map(() => uid('many'));
      cs.forEach((c, i) => c.write(`${JSON.stringify({ id: ids[i], event_type: 'many', target_type: 'user', target_id: 999 })}\n`));
      const acks = await Promise.all(cs.map((c) => c.line()));
      expect(acks.map((a) => a.id)).toEqual(ids);
      expect(acks.every((a) => a.ok)).toBe(true);
    });
  });

  describe('length-prefixed msgpack', () => {
    it('one event: a msgpack ack with id and seq; a WebSocket client receives it', async () => {
      const c = await open();
      const id = uid('mp');
      c.write(mpFrame(mpEncode(toAlice({ id, payload: { item_id: 7, label: 'x/é', nested: { ok: true, none: null, list: [1, -2, 3.5] } } }))));
      const ack = await c.msgpack();
      expect(ack).toMatchObject({ ok: true, id, seq: expect.any(Number) });
      expect(await alice.nextEvent()).toMatchObject({ id, seq: ack.seq, data: { item_id: 7, label: 'x/é', nested: { ok: true, none: null, list: [1, -2, 3.5] } } });
    });

    it('pipelined frames, one of them split across 1-byte writes: acks in order', async () => {
      const c = await open();
      const ids = [uid('mpp'), uid('mpp'), uid('mpp')];
      const frames = ids.map((id) => mpFrame(mpEncode(toAlice({ id }))));
      c.write(Buffer.concat([frames[0], frames[1]]));
      await c.trickle(frames[2]);
      for (const id of ids) expect(await c.msgpack()).toMatchObject({ ok: true, id });
      for (const id of ids) expect((await alice.nextEvent()).id).toBe(id);
    });

    it('a batch (msgpack array) with one invalid event: per-event results; an empty array payload counts as {}', async () => {
      const c = await open();
      const [a, b] = [uid('mpb'), uid('mpb')];
      c.write(mpFrame(mpEncode([toAlice({ id: a, payload: [] }), { id: b, event_type: 'x', target_type: 'folder' }])));
      const ack = await c.msgpack();
      expect(ack).toEqual({
        ok: false,
        results: [
          { ok: true, id: a, seq: expect.any(Number) },
          { ok: false, id: b, error: { code: 'TPWS_ERR_INVALID_EVENT', message: expect.stringContaining('target_id') } },
        ],
      });
      expect(await alice.nextEvent()).toMatchObject({ id: a, data: {} });
    });

    it('duplicate id: duplicate: true', async () => {
      const c = await open();
      const id = uid('mpdup');
      c.write(mpFrame(mpEncode(toAlice({ id }))));
      expect(await c.msgpack()).toMatchObject({ ok: true, id });
      c.write(mpFrame(mpEncode(toAlice({ id }))));
      expect(await c.msgpack()).toMatchObject({ ok: true, id, duplicate: true });
      await alice.nextEvent();
    });

    it('a body that is not msgpack: TPWS_ERR_BAD_FRAME, connection kept', async () => {
      const c = await open();
      c.write(mpFrame(Buffer.from([0xc1, 0x00, 0x00]))); // 0xc1 is never used
      expect(await c.msgpack()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_BAD_FRAME' } });
      c.write(mpFrame(mpEncode(42))); // valid msgpack, but not a map or an array
      expect(await c.msgpack()).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_BAD_FRAME' } });
      const id = uid('mpafter');
      c.write(mpFrame(mpEncode(toAlice({ id }))));
      expect(await c.msgpack()).toMatchObject({ ok: true, id });
      await alice.nextEvent();
    });

    it('a frame longer than ingest.maxFrameBytes: TPWS_ERR_FRAME_TOO_LARGE, then the connection is closed', async () => {
      const c = await open();
      const head = Buffer.alloc(4);
      head.writeUInt32BE(MAX_FRAME + 1, 0);
      c.write(head);
      c.write(Buffer.alloc(100, 0x61));
      const ack = await c.msgpack();
      expect(ack).toEqual({ ok: false, error: { code: 'TPWS_ERR_FRAME_TOO_LARGE', message: expect.any(String) } });
      expect(await c.closedWithin()).toBe(true);
    });

    it('a frame of exactly ingest.maxFrameBytes is accepted', async () => {
      const c = await open();
      const id = uid('mpfits');
      const base = mpEncode(toAlice({ id, payload: { pad: '' } })).length;
      // str8 header up to 255 bytes, str16 after: pad so the body is exactly MAX_FRAME.
      const body = mpEncode(toAlice({ id, payload: { pad: 'p'.repeat(MAX_FRAME - base - 2) } }));
      expect(body.length).toBe(MAX_FRAME);
      c.write(mpFrame(body));
      expect(await c.msgpack()).toMatchObject({ ok: true, id });
      await alice.nextEvent();
    });
  });

  describe('shutdown', () => {
    it('frames sent while the daemon shuts down get an ok or TPWS_ERR_UNAVAILABLE ack, or none; the connection is then closed', async () => {
      const d2 = await startDaemon();
      const c = await Raw.connect(d2.daemon.config.ingest.socket);
      conns.push(c);
      c.write(`${JSON.stringify({ event_type: 'x', target_type: 'kb' })}\n`);
      expect((await c.line()).ok).toBe(true);
      const stopping = d2.stop();
      c.write(`${JSON.stringify({ event_type: 'y', target_type: 'kb' })}\n`);
      await stopping;
      expect(await c.closedWithin()).toBe(true);
      const acks: Ack[] = [];
      while (c.unread > 0) acks.push(await c.line(100));
      for (const a of acks) {
        if (a.ok !== true) expect(a).toMatchObject({ ok: false, error: { code: 'TPWS_ERR_UNAVAILABLE' } });
      }
    });
  });
});
