/**
 * Fuzzing the ingest socket (issue #12, docs/ingest.md): NDJSON and
 * msgpack connections carrying valid events, mutated events (wrong types for
 * every field, missing and extra fields, huge strings, deep payloads, ids of
 * the wrong shape), batches mixing garbage and valid events, random bytes,
 * oversize frames and frames cut off by a close, on one connection and on a
 * hundred at once. Every frame gets one ack in order with a documented
 * code, every accepted event reaches its WebSocket client exactly once, each
 * rejection is counted and logged with its code, and the daemon keeps serving.
 *
 * Builds on test/integration/ingest-raw.test.ts (the protocol, case by case)
 * and robustness.test.ts (random bytes, checked only for survival).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import { ERROR_CODES } from '../../src/errors.js';
import { encodeMsgpackFrame } from '../../src/ingest/msgpack-codec.js';
import { RawIngest, ServingProbe, deepJson, jsonish, mutateObject, percentiles, randomBytes, validEvent, wrongValue, type Ack } from '../helpers/fuzz.js';
import { Random } from '../helpers/random.js';
import { scenarioNote, scenarioRandom, withSeed } from '../helpers/reliability.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';

type Enc = 'ndjson' | 'msgpack';
const WATCHER = 77;
const PROBE_USER = 500;
const MAX_FRAME = 1_048_576;
const PIECES = ['{', '}', '[', ']', ':', ',', '"event_type"', '"x"', '"target_type"', '"user"', '"broadcast"', '"target_id"', `${WATCHER}`, '-1', '"payload"', 'null', '"id"', '1e999', '"\\ud800"', '""', ' '];
const ACK_CODES = new Set(['TPWS_ERR_INVALID_EVENT', 'TPWS_ERR_BAD_FRAME', 'TPWS_ERR_FRAME_TOO_LARGE', 'TPWS_ERR_BATCH_TOO_LARGE']);

/** One frame of a fuzz stream: its bytes on the wire, and what its ack must be (null: no ack, a blank line). */
interface FuzzFrame {
  kind: string;
  bytes: Buffer;
  check: ((ack: Ack) => void) | null;
}

/** Values only msgpack can carry: bytes, timestamps, maps with non-string keys. */
function msgpackOnlyValue(rng: Random): unknown {
  return rng.pick<() => unknown>([() => randomBytes(rng, rng.int(0, 40)), () => new Date(rng.int(0, 2e12)), () => new Map([[1, 'a']]), () => -0, () => Number.NaN])();
}

/** An event frame's body in `enc`: NDJSON text (no newline) or a msgpack body with its length prefix. */
function encode(enc: Enc, value: unknown): Buffer {
  return enc === 'ndjson' ? Buffer.from(JSON.stringify(value) + '\n') : encodeMsgpackFrame(value);
}

/** A raw msgpack body, length-prefixed. */
function lengthPrefixed(body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(body.length);
  return Buffer.concat([h, body]);
}

/** msgpack of `{"a":{"a":…}}` nested `depth` deep, built by hand (an encoder would recurse). */
function deepMsgpackEvent(id: string, depth: number): Buffer {
  const head = encodeMsgpackFrame({ id, event_type: 'fuzz_deep', target_type: 'user', target_id: WATCHER }).subarray(4);
  // Turn the 4-entry fixmap into 5 entries and append "payload": {a: {a: … 1}}.
  const body = Buffer.concat([Buffer.from([0x85]), head.subarray(1), Buffer.from([0xa7, ...Buffer.from('payload')]), Buffer.alloc(depth * 3, Buffer.from([0x81, 0xa1, 0x61])), Buffer.from([0x01])]);
  return lengthPrefixed(body);
}

/**
 * The fuzz stream's frames. Acks are checked against the documented rules:
 * valid events are accepted, broken ones refused with their code; for
 * random input any documented ack will do, but there must be exactly one.
 */
class FrameMaker {
  /** Ids acked ok (not as duplicates): each must reach the watcher once. */
  readonly accepted: string[] = [];
  readonly errorsByCode = new Map<string, number>();
  private n = 0;

  constructor(private readonly rng: Random, private readonly tag: string) {}

  make(enc: Enc): FuzzFrame {
    const rng = this.rng;
    const id = `${this.tag}-${++this.n}`;
    const kind = rng.pick(['valid', 'mutated', 'batch', 'deep', 'huge', 'oversize', 'scalar', 'long-batch', 'jsonish', 'bytes'], [20, 35, 15, 4, 6, 3, 3, 2, 9, 8]);
    switch (kind) {
      case 'valid':
        return { kind, bytes: encode(enc, validEvent(rng, id, WATCHER)), check: (a) => this.expectOk(a, id) };
      case 'mutated': {
        const ev = mutateObject(rng, validEvent(rng, id, WATCHER));
        if (enc === 'msgpack' && rng.chance(0.3)) ev[rng.pick(['payload', 'created_at', 'target_id', 'id', 'event_type'])] = msgpackOnlyValue(rng);
        return { kind, bytes: encode(enc, ev), check: (a) => this.expectEventResult(a) };
      }
      case 'batch': {
        const list = Array.from({ length: rng.int(0, 15) }, (_, k) => {
          const r = rng.int(0, 2);
          const ev = validEvent(rng, `${id}.${k}`, WATCHER);
          return r === 0 ? ev : r === 1 ? mutateObject(rng, ev) : wrongValue(rng);
        });
        return {
          kind, bytes: encode(enc, list), check: (a) => {
            expect(a.results, JSON.stringify(a).slice(0, 300)).toHaveLength(list.length);
            for (const r of a.results as Ack[]) this.expectEventResult(r);
            expect(a.ok).toBe((a.results as Ack[]).every((r) => r.ok));
          },
        };
      }
      case 'deep': {
        const depth = rng.int(50_000, 100_000);
        const bytes = enc === 'ndjson'
          ? Buffer.from(`{"id":"${id}","event_type":"fuzz_deep","target_type":"user","target_id":${WATCHER},"payload":${deepJson(depth, 'object')}}\n`)
          : deepMsgpackEvent(id, depth);
        // Too deep to encode again (INVALID_EVENT), or to decode at all (BAD_FRAME): refused either way.
        return { kind: `deep`, bytes, check: (a) => this.expectError(a, ['TPWS_ERR_INVALID_EVENT', 'TPWS_ERR_BAD_FRAME']) };
      }
      case 'huge': {
        const field = rng.pick(['payload', 'event_type', 'id']);
        const big = 'x'.repeat(rng.int(70_000, 900_000));
        const ev = { ...validEvent(rng, id, WATCHER), [field]: field === 'payload' ? (rng.chance(0.5) ? { big } : JSON.stringify({ big })) : big };
        return { kind, bytes: encode(enc, ev), check: (a) => this.expectError(a, ['TPWS_ERR_INVALID_EVENT']) };
      }
      case 'oversize': {
        // NDJSON only: an oversize msgpack frame ends the connection (its own test).
        if (enc === 'msgpack') return this.make(enc);
        return { kind, bytes: Buffer.from(`{"pad":"${'o'.repeat(MAX_FRAME)}"}\n`), check: (a) => this.expectError(a, ['TPWS_ERR_FRAME_TOO_LARGE']) };
      }
      case 'scalar':
        // Valid JSON / msgpack, but neither an event nor a batch.
        return { kind, bytes: encode(enc, rng.pick([null, 0, -1, 1.5, '', 'event', true, false])), check: (a) => this.expectError(a, ['TPWS_ERR_BAD_FRAME']) };
      case 'long-batch':
        // One more event than ingest.maxBatchEvents (1,000): refused whole, none delivered.
        return { kind, bytes: encode(enc, Array.from({ length: 1001 }, (_, k) => validEvent(rng, `${id}.${k}`, WATCHER))), check: (a) => this.expectError(a, ['TPWS_ERR_BATCH_TOO_LARGE']) };
      case 'jsonish': {
        const text = jsonish(rng, PIECES);
        const bytes = enc === 'ndjson' ? Buffer.from(text + '\n') : lengthPrefixed(Buffer.from(text));
        return { kind, bytes, check: blankLine(enc, bytes) ? null : (a) => this.expectAny(a) };
      }
      default: {
        const body = randomBytes(rng, rng.int(0, 400));
        if (enc === 'ndjson') for (let i = 0; i < body.length; i++) if (body[i] === 0x0a) body[i] = 0x20;
        const bytes = enc === 'ndjson' ? Buffer.concat([body, Buffer.from('\n')]) : lengthPrefixed(body);
        return { kind, bytes, check: blankLine(enc, bytes) ? null : (a) => this.expectAny(a) };
      }
    }
  }

  /** A frame-level error with one of `codes`, and no results. */
  expectError(a: Ack, codes: string[]): void {
    expect(a.ok, JSON.stringify(a).slice(0, 300)).toBe(false);
    expect(codes, JSON.stringify(a).slice(0, 300)).toContain(a.error?.code);
    this.countError(a.error.code);
  }

  /** An event's result: accepted (then delivered) or refused as INVALID_EVENT. */
  expectEventResult(a: Ack): void {
    if (a.ok) this.accept(a);
    else {
      expect(a.error?.code, JSON.stringify(a).slice(0, 300)).toBe('TPWS_ERR_INVALID_EVENT');
      this.countError(a.error.code);
    }
  }

  /** Any documented ack (random input): a batch's per-event results, one event's, or a frame error. */
  expectAny(a: Ack): void {
    if (Array.isArray(a.results)) for (const r of a.results as Ack[]) this.expectEventResult(r);
    else if (a.ok) this.accept(a);
    else {
      expect(ACK_CODES, JSON.stringify(a).slice(0, 300)).toContain(a.error?.code);
      this.countError(a.error.code);
    }
  }

  private expectOk(a: Ack, id: string): void {
    expect(a, JSON.stringify(a).slice(0, 300)).toMatchObject({ ok: true, id });
    this.accept(a);
  }

  private accept(a: Ack): void {
    expect(typeof a.id).toBe('string');
    if (a.duplicate === true) expect(a.seq).toBe(0);
    else {
      expect(a.seq).toBeGreaterThan(0);
      this.accepted.push(a.id as string);
    }
  }

  private countError(code: string): void {
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1);
  }
}

/** NDJSON skips blank lines (no ack); a msgpack frame is never blank. */
function blankLine(enc: Enc, bytes: Buffer): boolean {
  return enc === 'ndjson' && /^[ \t\r]*\n$/.test(bytes.toString('latin1'));
}

describe('fuzz: the ingest socket (NDJSON and msgpack)', () => {
  let d: TestDaemon;
  let watcher: TestClient;
  let probe: ServingProbe;
  let path: string;

  beforeAll(async () => {
    d = await startDaemon({ 'ingest.maxFrameBytes': MAX_FRAME });
    path = d.daemon.ingest!.path;
    const key = d.daemon.jwtKey!;
    ({ client: watcher } = await TestClient.login(d.url(await mintJwt(key, d.daemon.config.auth.jwt, { userId: WATCHER, ttlSec: 600 }))));
    probe = await ServingProbe.open(d.url(await mintJwt(key, d.daemon.config.auth.jwt, { userId: PROBE_USER, ttlSec: 600 })), path, PROBE_USER);
  });
  afterAll(async () => {
    await probe?.close();
    await watcher?.close();
    await d?.stop();
  });

  /** Each accepted id reached the watcher exactly once (after a barrier event sent last). */
  async function expectDeliveredOnce(ids: string[], label: string): Promise<void> {
    const barrier = `barrier-${label}`;
    const sender = await RawIngest.open(path);
    sender.write(`{"id":"${barrier}","event_type":"barrier","target_type":"user","target_id":${WATCHER}}\n`);
    await sender.waitAcks(1);
    sender.socket.end();
    await watcher.next((m) => m.type === 'event' && m.id === barrier, 20_000);
    const got = watcher.received.filter((m) => m.type === 'event').map((m) => m.id as string);
    watcher.received.length = 0;
    const count = new Map<string, number>();
    for (const id of got) count.set(id, (count.get(id) ?? 0) + 1);
    for (const id of ids) expect(count.get(id), `event ${id} delivered`).toBe(1);
    // Nothing else reached the watcher: no refused event, no duplicate.
    expect(got.length, 'events delivered to the watcher').toBe(ids.length);
  }

  /** Error acks and log lines by code since `since`: they must match the daemon's counters. */
  function expectAccounted(before: Partial<Record<string, number>>, logsFrom: number, ours: Map<string, number>): string {
    const after = d.daemon.ingest!.counters.errors as Record<string, number>;
    const out: string[] = [];
    for (const code of Object.keys(ERROR_CODES)) {
      const delta = (after[code] ?? 0) - (before[code] ?? 0);
      expect(delta, `tpws_ingest_acks_total{result="${code}"}`).toBe(ours.get(code) ?? 0);
      const logged = d.logs.slice(logsFrom).filter((l) => l.code === code).length;
      expect(logged, `log lines with code ${code}`).toBe(ours.get(code) ?? 0);
      if (delta > 0) out.push(`${code.replace('TPWS_ERR_', '')} ${delta}`);
    }
    return out.join(', ');
  }

  it.each(['ndjson', 'msgpack'] as const)('%s: 300 pipelined fuzz frames get one ack each, in order, with documented codes; accepted events are delivered once', async (enc) => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const before = { ...d.daemon.ingest!.counters.errors };
      const logsFrom = d.logs.length;
      const maker = new FrameMaker(rng, `${enc}-${rng.seed}`);
      const frames = Array.from({ length: 300 }, () => maker.make(enc));
      const conn = await RawIngest.open(path);
      if (enc === 'ndjson') conn.write('\n');
      // Written in pieces of random sizes: frames split across writes and several in one.
      const all = Buffer.concat(frames.map((f) => f.bytes));
      for (let off = 0; off < all.length;) {
        const n = rng.int(1, 200_000);
        conn.write(all.subarray(off, off + n));
        off += n;
      }
      const acked = frames.filter((f) => f.check !== null);
      const acks = await conn.waitAcks(acked.length, 30_000);
      acked.forEach((f, i) => {
        try {
          f.check!(acks[i]);
        } catch (err) {
          throw new Error(`frame ${i} (${f.kind}): ${(err as Error).message}\nframe: ${f.bytes.subarray(0, 200).toString('latin1')}`);
        }
      });
      conn.socket.end();
      await conn.closed;
      expect(conn.acks.length).toBe(acked.length);
      await expectDeliveredOnce(maker.accepted, `${enc}-${rng.seed}`);
      await probe.check(enc);
      const kinds = new Map<string, number>();
      for (const f of frames) kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
      const accounted = expectAccounted(before, logsFrom, maker.errorsByCode);
      scenarioNote(`fuzz-ingest ${enc}`,
        `300 frames on one connection in random-sized writes (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}): ${acks.length} acks in order, ${maker.accepted.length} events accepted and each delivered once, nothing else delivered; refusals counted and logged by code (${accounted}); probe event delivered`, rng.seed);
    });
  });

  it('closes a connection after an oversize msgpack length or an unknown first byte, and drops a frame cut off by a close, without delivering it', async () => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const before = { ...d.daemon.ingest!.counters.errors };
      const logsFrom = d.logs.length;
      const ours = new Map<string, number>();
      const note: string[] = [];
      const valid = (i: number) => ({ id: `cut-${rng.seed}-${i}`, event_type: 'fuzz_cut', target_type: 'user', target_id: WATCHER });
      let n = 0;
      /** `maxBefore` valid frames (0 when `tail` must be the connection's first byte), then `tail`. */
      const endsWith = async (name: string, enc: Enc, tail: Buffer, code: string | null, maxBefore = 5) => {
        const conn = await RawIngest.open(path);
        // A msgpack length whose first byte is not 0x00 needs a frame before it (the first byte picks the encoding).
        const k = rng.int(enc === 'msgpack' && tail[0] !== 0 ? 1 : 0, maxBefore);
        const ids: string[] = [];
        for (let i = 0; i < k; i++) {
          const ev = valid(++n);
          ids.push(ev.id);
          conn.write(encode(enc, ev));
        }
        conn.write(tail);
        if (code === null) {
          // Cut off: wait for the acks of what came before, then close mid-frame.
          await conn.waitAcks(k);
          conn.socket.end();
        }
        await conn.closed;
        expect(conn.acks.slice(0, k).map((a) => a.ok), name).toEqual(ids.map(() => true));
        if (code !== null) {
          expect(conn.acks, name).toHaveLength(k + 1);
          expect(conn.acks[k], name).toMatchObject({ ok: false, error: { code } });
          ours.set(code, (ours.get(code) ?? 0) + 1);
        } else expect(conn.acks, name).toHaveLength(k);
        note.push(`${name}: ${k} ok then ${code ?? 'no ack'}`);
        return ids;
      };
      const accepted: string[] = [];
      const big = 2 ** 32 - 1 - rng.int(0, 2 ** 31);
      const lenHead = (len: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(len); return b; };
      accepted.push(...await endsWith('msgpack length over ingest.maxFrameBytes', 'msgpack', Buffer.concat([lenHead(rng.pick([MAX_FRAME + 1, big, 2 ** 32 - 1])), randomBytes(rng, 100)]), 'TPWS_ERR_FRAME_TOO_LARGE'));
      const first = rng.pick([...Array(256).keys()].filter((b) => ![0x00, 0x7b, 0x5b, 0x20, 0x09, 0x0d, 0x0a].includes(b)));
      await endsWith(`first byte 0x${first.toString(16)}`, 'ndjson', Buffer.concat([Buffer.from([first]), randomBytes(rng, 50), Buffer.from('\n')]), 'TPWS_ERR_BAD_FRAME', 0);
      const cutJson = Buffer.from(JSON.stringify(valid(++n)));
      accepted.push(...await endsWith('NDJSON line cut off by a close', 'ndjson', cutJson.subarray(0, rng.int(1, cutJson.length)), null));
      const cutMp = encodeMsgpackFrame(valid(++n));
      accepted.push(...await endsWith('msgpack frame cut off by a close', 'msgpack', cutMp.subarray(0, rng.int(1, cutMp.length - 1)), null));
      await expectDeliveredOnce(accepted, `cut-${rng.seed}`);
      await probe.check('cut connections');
      const accounted = expectAccounted(before, logsFrom, ours);
      scenarioNote('fuzz-ingest connection ends', `${note.join('; ')}; the cut-off events were not delivered, the others once; refusals counted and logged (${accounted}); probe event delivered`, rng.seed);
    });
  });

  it('serves 100 connections fuzzing at once, NDJSON and msgpack, some cut off mid-frame: each accepted event delivered once', async () => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const before = { ...d.daemon.ingest!.counters.errors };
      const logsFrom = d.logs.length;
      const makers: FrameMaker[] = [];
      let cut = 0;
      let frames = 0;
      await Promise.all(Array.from({ length: 100 }, async (_, c) => {
        const own = new Random(rng.int(0, 2 ** 31));
        const enc: Enc = own.chance(0.5) ? 'ndjson' : 'msgpack';
        const maker = new FrameMaker(own, `many-${rng.seed}-${c}`);
        makers.push(maker);
        const list = Array.from({ length: own.int(1, 25) }, () => maker.make(enc));
        frames += list.length;
        const conn = await RawIngest.open(path);
        // NDJSON: a blank line first picks the encoding whatever the first frame is (random bytes would not).
        if (enc === 'ndjson') conn.write('\n');
        for (const f of list) conn.write(f.bytes);
        const acked = list.filter((f) => f.check !== null);
        const acks = await conn.waitAcks(acked.length, 40_000);
        acked.forEach((f, i) => f.check!(acks[i]));
        if (own.chance(0.3)) {
          cut++;
          // A frame cut off by the close: never acked, never delivered.
          const last = encode(enc, { id: `never-${rng.seed}-${c}`, event_type: 'never', target_type: 'user', target_id: WATCHER });
          conn.write(last.subarray(0, own.int(1, last.length - 1)));
        }
        conn.socket.end();
        await conn.closed;
        expect(conn.acks).toHaveLength(acked.length);
      }));
      const accepted = makers.flatMap((m) => m.accepted);
      await expectDeliveredOnce(accepted, `many-${rng.seed}`);
      await probe.check('100 connections');
      const errors = new Map<string, number>();
      for (const m of makers) for (const [k, v] of m.errorsByCode) errors.set(k, (errors.get(k) ?? 0) + v);
      const accounted = expectAccounted(before, logsFrom, errors);
      scenarioNote('fuzz-ingest connections', `100 connections at once, ${frames} frames, ${cut} cut off mid-frame by a close: every frame acked in order, ${accepted.length} accepted events each delivered once and nothing else; refusals counted and logged (${accounted}); probe p50 ${percentiles(probe.latencies).p50} ms`, rng.seed);
    });
  });
});
