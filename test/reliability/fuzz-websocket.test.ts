/**
 * Fuzzing the public WebSocket (issue #12): mutated and random messages,
 * hand-built frames that break RFC 6455, oversize declared lengths,
 * fragmented messages with control frames between the fragments, invalid
 * UTF-8, deep JSON, and a few hundred sockets doing it at once against a
 * daemon process whose memory is read from /proc. After each round a
 * separate probe must still get an event through.
 *
 * Builds on test/integration/robustness.test.ts (fixed malformed messages,
 * random text through a `ws` client); here the frames are written by hand.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt } from '../../src/auth/jwt.js';
import type { JwtKey } from '../../src/auth/jwt-key.js';
import { loadConfig } from '../../src/config/load.js';
import { ErrorCode } from '../../src/protocol/messages.js';
import { startDaemonProcess, type DaemonProcess } from '../browser/daemon-process.js';
import {
  Op, RawWs, ServingProbe, closePayload, deepJson, jsonish, mutateObject, percentiles, procMemory, randomBytes, validAction, wsFrame,
  type RawEnd,
} from '../helpers/fuzz.js';
import { Random } from '../helpers/random.js';
import { scenarioNote, scenarioRandom, withSeed } from '../helpers/reliability.js';
import { seedTeampass } from '../helpers/seed.js';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { until } from '../helpers/until.js';
import type { Message } from '../helpers/ws-client.js';

/** Every `error_code` docs/protocol.md lists. */
const DOCUMENTED_ERRORS = new Set<string>(Object.values(ErrorCode));
const FUZZ_USER = 9;
const PROBE_USER = 500;
const PIECES = ['{', '}', '[', ']', ':', ',', '"action"', '"subscribe"', '"unsubscribe"', '"resume"', '"start_item_view"', '"ping"', '"pong"', '"folder"', '"kb"',
  '"channel"', '"data"', '"folder_id"', '"item_id"', '"tab"', '"request_id"', '"r"', '1', '-1', '1e999', 'null', 'true', '"\\u0000"', '"\\ud800"', '"'];

/** How many replies a text message must get: none for a well-formed `pong` (TeamPass answers none), one for anything else. */
function expectedReplies(text: Buffer, binary: boolean): number {
  if (binary) return 1;
  try {
    const v = JSON.parse(text.toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return 1;
    const o = v as Record<string, unknown>;
    const ridOk = o.request_id === undefined || o.request_id === null || typeof o.request_id === 'string';
    return o.action === 'pong' && ridOk && text.length <= 262144 ? 0 : 1;
  } catch {
    return 1;
  }
}

/** The request_id a reply must echo when it has one: the message's string, else null. */
function echoedRid(text: Buffer): string | null {
  try {
    const v = JSON.parse(text.toString('utf8')) as Record<string, unknown>;
    return typeof v?.request_id === 'string' ? v.request_id : null;
  } catch {
    return null;
  }
}

/** Replies to a message: everything but events (presence, probe) and heartbeat pings. */
function replies(ws: RawWs): Message[] {
  const out = ws.messages.filter((m) => m.type !== 'event' && m.type !== 'ping');
  ws.messages.length = 0;
  return out;
}

/** One message of the first test: what it is, its bytes, whether it goes in a binary frame. */
function fuzzMessage(rng: Random, i: number): { kind: string; bytes: Buffer; binary: boolean } {
  const kind = rng.pick(['mutated', 'valid', 'jsonish', 'bytes-text', 'bytes-binary', 'deep'], [50, 15, 15, 8, 7, 5]);
  const rid = `f${i}`;
  switch (kind) {
    case 'mutated': return { kind, bytes: Buffer.from(JSON.stringify(mutateObject(rng, validAction(rng, rid)))), binary: false };
    case 'valid': return { kind, bytes: Buffer.from(JSON.stringify(validAction(rng, rid))), binary: false };
    case 'jsonish': return { kind, bytes: Buffer.from(jsonish(rng, PIECES)), binary: false };
    case 'bytes-text': return { kind, bytes: randomBytes(rng, rng.int(0, 300)), binary: false };
    case 'bytes-binary': return { kind, bytes: randomBytes(rng, rng.int(0, 300)), binary: true };
    default: {
      // Deep values where the handlers read fields: data, data.folder_id, data.folders, request_id.
      const deep = deepJson(rng.int(1000, 20_000), rng.pick(['array', 'object'] as const));
      const where = rng.int(0, 3);
      const text = where === 0 ? `{"action":"ping","request_id":"${rid}","data":${deep}}`
        : where === 1 ? `{"action":"subscribe","channel":"folder","request_id":"${rid}","data":{"folder_id":${deep}}}`
          : where === 2 ? `{"action":"resume","request_id":"${rid}","data":{"epoch":"e","seq":1,"folders":${deep}}}`
            : `{"action":"start_item_view","request_id":${deep},"data":{"item_id":1}}`;
      return { kind, bytes: Buffer.from(text), binary: false };
    }
  }
}

describe('fuzz: WebSocket messages and frames (in-process daemon)', () => {
  let d: TestDaemon;
  let token: string;
  let port: number;
  let probe: ServingProbe;

  beforeAll(async () => {
    // Rate limits off, so every message reaches the parser; a 256 KiB message limit, so
    // a 100,000-deep JSON value is parsed rather than refused for its size.
    d = await startDaemon({ 'limits.rateLimitMessages': 100000, 'limits.floodCloseAfter': 1000000, 'limits.maxMessageBytes': 262144 });
    const key = d.daemon.jwtKey!;
    token = await mintJwt(key, d.daemon.config.auth.jwt, { userId: FUZZ_USER, admin: true, ttlSec: 600 });
    port = d.daemon.address.ws.port;
    probe = await ServingProbe.open(d.url(await mintJwt(key, d.daemon.config.auth.jwt, { userId: PROBE_USER, ttlSec: 600 })), d.daemon.ingest!.path, PROBE_USER);
  });
  afterAll(async () => {
    await probe?.close();
    await d?.stop();
  });

  it('answers every mutated, random and deeply nested message with exactly one documented reply, on a socket that stays open', async () => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const ws = await RawWs.login(port, token);
      const kinds = new Map<string, number>();
      const codes = new Map<string, number>();
      const N = 500;
      for (let i = 0; i < N; i++) {
        const m = fuzzMessage(rng, i);
        kinds.set(m.kind, (kinds.get(m.kind) ?? 0) + 1);
        ws.write(wsFrame({ opcode: m.binary ? Op.BINARY : Op.TEXT, payload: m.bytes }));
        await ws.roundTrip(`sentinel${i}`).catch((err: Error) => {
          throw new Error(`message ${i} (${m.kind}) was not followed by its sentinel's pong: ${err.message}\nmessage: ${m.bytes.toString('utf8').slice(0, 300)}`);
        });
        const got = replies(ws);
        const what = `message ${i} (${m.kind}): ${m.bytes.toString('utf8').slice(0, 200)}\nreplies: ${JSON.stringify(got).slice(0, 400)}`;
        expect(got.length, what).toBe(expectedReplies(m.bytes, m.binary));
        for (const r of got) {
          if (r.type === 'error') {
            expect(DOCUMENTED_ERRORS.has(r.error_code), what).toBe(true);
            codes.set(r.error_code, (codes.get(r.error_code) ?? 0) + 1);
          } else expect(['response', 'pong', 'status', 'stats'], what).toContain(r.type);
          if ('request_id' in r) expect(r.request_id, what).toBe(m.binary ? null : echoedRid(m.bytes));
        }
      }
      ws.write(wsFrame({ opcode: Op.CLOSE, payload: closePayload(1000) }));
      expect((await ws.end()).code).toBe(1000);
      await probe.check('mutated messages');
      scenarioNote('fuzz-websocket messages',
        `${N} messages on one socket (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}), each followed by a ping: each got exactly one reply (none for pong), errors all documented (${[...codes].map(([k, n]) => `${k} ${n}`).join(', ')}), socket open to the end; probe event delivered`, rng.seed);
    });
  });

  it('answers pipelined messages in the order they arrived, errors included', async () => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const ws = await RawWs.login(port, token);
      const N = 300;
      const sent: { m: ReturnType<typeof fuzzMessage>; rid: string }[] = [];
      // Every message gets a request_id where it can carry one, so each reply names its message.
      for (let i = 0; i < N; i++) {
        const m = fuzzMessage(rng, i);
        sent.push({ m, rid: `f${i}` });
        ws.write(wsFrame({ opcode: m.binary ? Op.BINARY : Op.TEXT, payload: m.bytes }));
      }
      await ws.roundTrip('pipelined-end', 30_000);
      const got = replies(ws).filter((r) => r.request_id !== 'pipelined-end');
      const expected = sent.filter((x) => expectedReplies(x.m.bytes, x.m.binary) === 1);
      expect(got.length).toBe(expected.length);
      // Replies that name their message (a string request_id) come in the messages' order.
      const order = got.map((r) => (typeof r.request_id === 'string' && /^f\d+$/.test(r.request_id) ? Number(r.request_id.slice(1)) : null)).filter((n): n is number => n !== null);
      const sorted = [...order].sort((a, b) => a - b);
      expect(order, 'request_id order of the replies').toEqual(sorted);
      // And every reply sits where its message does: the i-th reply answers the i-th message that needs one.
      got.forEach((r, i) => {
        const want = echoedRid(expected[i].m.bytes);
        if ('request_id' in r) expect(r.request_id, `reply ${i}: ${JSON.stringify(r).slice(0, 200)} for ${expected[i].m.bytes.toString('utf8').slice(0, 120)}`).toBe(expected[i].m.binary ? null : want);
      });
      ws.destroy();
      scenarioNote('fuzz-websocket pipelined', `${N} fuzz messages written at once on one socket: ${got.length} replies, in the order of the messages that need one (${order.length} named by request_id)`, rng.seed);
    });
  });

  it('closes frames that break RFC 6455 with 1002, too many fragments with 1008 and oversize lengths up to 2^63-1 with 1009: counted and logged with their code', async () => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const text = (s: string, o: Partial<Parameters<typeof wsFrame>[0]> = {}) => wsFrame({ opcode: Op.TEXT, payload: s, ...o });
      const max = d.daemon.config.limits.maxFrameBytes;
      const cases: { name: string; bytes: () => Buffer; close: number; wsCode: string }[] = [
        { name: 'an unmasked client frame', bytes: () => text('{"action":"ping"}', { mask: false }), close: 1002, wsCode: 'WS_ERR_EXPECTED_MASK' },
        { name: 'RSV1 without compression', bytes: () => text('{}', { rsv: 4 }), close: 1002, wsCode: 'WS_ERR_UNEXPECTED_RSV_1' },
        { name: 'RSV2 or RSV3', bytes: () => text('{}', { rsv: rng.pick([1, 2, 3]) }), close: 1002, wsCode: 'WS_ERR_UNEXPECTED_RSV_2_3' },
        { name: 'a reserved data opcode', bytes: () => wsFrame({ opcode: rng.int(3, 7), payload: '{}' }), close: 1002, wsCode: 'WS_ERR_INVALID_OPCODE' },
        { name: 'a reserved control opcode', bytes: () => wsFrame({ opcode: rng.int(0xb, 0xf) }), close: 1002, wsCode: 'WS_ERR_INVALID_OPCODE' },
        { name: 'a continuation without a start', bytes: () => wsFrame({ opcode: Op.CONT, payload: '"x"}' }), close: 1002, wsCode: 'WS_ERR_INVALID_OPCODE' },
        { name: 'a new message inside a fragmented one', bytes: () => Buffer.concat([text('{"act', { fin: false }), text('{"action":"ping"}')]), close: 1002, wsCode: 'WS_ERR_INVALID_OPCODE' },
        { name: 'a 126-byte ping', bytes: () => wsFrame({ opcode: Op.PING, payload: randomBytes(rng, 126) }), close: 1002, wsCode: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH' },
        { name: 'a fragmented ping', bytes: () => wsFrame({ opcode: Op.PING, payload: 'a', fin: false }), close: 1002, wsCode: 'WS_ERR_EXPECTED_FIN' },
        { name: 'a close with a 1-byte payload', bytes: () => wsFrame({ opcode: Op.CLOSE, payload: Buffer.from([3]) }), close: 1002, wsCode: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH' },
        { name: 'a close with an invalid code', bytes: () => wsFrame({ opcode: Op.CLOSE, payload: closePayload(rng.pick([0, 999, 1004, 1005, 1006, 1015, 2999, 5000])) }), close: 1002, wsCode: 'WS_ERR_INVALID_CLOSE_CODE' },
        { name: '16,385 fragments of one message', bytes: () => Buffer.concat([text('[', { fin: false }), ...Array.from({ length: 16_384 }, (_, k) => wsFrame({ opcode: Op.CONT, payload: ' ', fin: k === 16_383 }))]), close: 1008, wsCode: 'WS_ERR_TOO_MANY_BUFFERED_PARTS' },
        { name: 'a declared length of 2^63-1', bytes: () => wsFrame({ opcode: Op.TEXT, declaredLength: 2n ** 63n - 1n }), close: 1009, wsCode: 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH' },
        { name: 'a declared length with the top bit set', bytes: () => wsFrame({ opcode: Op.BINARY, declaredLength: 2n ** 63n + BigInt(rng.int(0, 1000)) }), close: 1009, wsCode: 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH' },
        { name: 'a declared length of 2^32', bytes: () => wsFrame({ opcode: Op.TEXT, declaredLength: 2n ** 32n }), close: 1009, wsCode: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' },
        { name: 'a declared length of limits.maxFrameBytes + 1', bytes: () => wsFrame({ opcode: Op.TEXT, declaredLength: BigInt(max + 1) }), close: 1009, wsCode: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' },
        { name: 'fragments adding up past limits.maxFrameBytes', bytes: () => Buffer.concat([text('"' + 'a'.repeat(max / 2), { fin: false }), wsFrame({ opcode: Op.CONT, payload: 'b'.repeat(max / 2 + 10) })]), close: 1009, wsCode: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' },
      ];
      const before = new Map(d.daemon.gateway.closes);
      const logsBefore = d.logs.length;
      const got: string[] = [];
      for (const c of cases) {
        const ws = await RawWs.login(port, token);
        // Valid traffic first, so the violation comes mid-stream, not as the first frame.
        await ws.roundTrip('before');
        ws.write(c.bytes());
        const end = await ws.end();
        expect(end.code, c.name).toBe(c.close);
        got.push(`${c.name} ${end.code}`);
        await probe.check(c.name);
      }
      const delta = (code: number) => (d.daemon.gateway.closes.get(code) ?? 0) - (before.get(code) ?? 0);
      for (const code of [1002, 1008, 1009]) expect(delta(code), `tpws_closes_total{code="${code}"}`).toBe(cases.filter((c) => c.close === code).length);
      const lines = d.logs.slice(logsBefore).filter((l) => l.msg === 'websocket protocol error; socket closed');
      expect(lines.map((l) => l.code)).toEqual(cases.map((c) => c.wsCode));
      expect(lines.map((l) => l.close_code)).toEqual(cases.map((c) => c.close));
      scenarioNote('fuzz-websocket frames',
        `${cases.length} hand-built frames, each on its own authenticated socket after a valid ping: ${got.join('; ')}; each close counted in tpws_closes_total and logged with ws's code; probe event delivered after each (p50 ${percentiles(probe.latencies).p50} ms)`, rng.seed);
    });
  });

  it('answers fragmented messages with control frames between fragments, invalid UTF-8 (whole or split), binary, empty, oversize and 100,000-deep messages, and keeps the socket', async () => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const ws = await RawWs.login(port, token);
      const frag = (text: Buffer | string, parts: number, between?: () => Buffer, opcode: number = Op.TEXT) => {
        const b = typeof text === 'string' ? Buffer.from(text) : text;
        const cuts = [0, ...Array.from({ length: parts - 1 }, () => rng.int(0, b.length)).sort((x, y) => x - y), b.length];
        const out: Buffer[] = [];
        for (let k = 0; k < parts; k++) {
          out.push(wsFrame({ opcode: k === 0 ? opcode : Op.CONT, payload: b.subarray(cuts[k], cuts[k + 1]), fin: k === parts - 1 }));
          if (between && k < parts - 1) out.push(between());
        }
        return Buffer.concat(out);
      };
      const control = () => rng.chance(0.5) ? wsFrame({ opcode: Op.PING, payload: randomBytes(rng, rng.int(0, 125)) }) : wsFrame({ opcode: Op.PONG, payload: randomBytes(rng, rng.int(0, 125)) });
      // A valid 3-byte character split between two fragments, and an invalid sequence split the same way.
      const euro = Buffer.from('{"action":"ping","request_id":"€€"}');
      const split = euro.indexOf(0xe2) + 1;
      const badUtf8 = Buffer.from([...Buffer.from('{"action":"ping","request_id":"'), 0xe2, 0x82, 0x28, ...Buffer.from('"}')]);
      const cases: { name: string; bytes: Buffer; expect: Record<string, unknown> }[] = [
        { name: 'a ping action in 5 fragments with pings and pongs between them', bytes: frag('{"action":"ping","request_id":"frag"}', 5, control), expect: { type: 'pong', request_id: 'frag' } },
        { name: 'a UTF-8 character split across fragments', bytes: Buffer.concat([wsFrame({ opcode: Op.TEXT, payload: euro.subarray(0, split), fin: false }), control(), wsFrame({ opcode: Op.CONT, payload: euro.subarray(split) })]), expect: { type: 'pong', request_id: '€€' } },
        { name: 'invalid UTF-8 in one frame', bytes: wsFrame({ opcode: Op.TEXT, payload: badUtf8 }), expect: { error_code: 'invalid_json', message: 'Message must be valid UTF-8 JSON.' } },
        { name: 'invalid UTF-8 split across fragments', bytes: frag(badUtf8, 3, control), expect: { error_code: 'invalid_json', message: 'Message must be valid UTF-8 JSON.' } },
        { name: 'a lone surrogate encoded in UTF-8 (CESU)', bytes: wsFrame({ opcode: Op.TEXT, payload: Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]) }), expect: { error_code: 'invalid_json', message: 'Message must be valid UTF-8 JSON.' } },
        { name: 'a fragmented binary message', bytes: frag('{"action":"ping"}', 3, control, Op.BINARY), expect: { error_code: 'invalid_json', message: 'Binary frames are not supported; send JSON text frames.' } },
        { name: 'an empty text frame', bytes: wsFrame({ opcode: Op.TEXT }), expect: { error_code: 'invalid_json' } },
        { name: 'a message over limits.maxMessageBytes', bytes: frag(`{"action":"ping","pad":"${'x'.repeat(262144)}"}`, 4, control), expect: { error_code: 'message_too_large' } },
        { name: '100,000 nested arrays in data', bytes: wsFrame({ opcode: Op.TEXT, payload: `{"action":"ping","request_id":"deep","data":${deepJson(100_000)}}` }), expect: { type: 'pong', request_id: 'deep' } },
        { name: '100,000 nested arrays as the message', bytes: wsFrame({ opcode: Op.TEXT, payload: deepJson(100_000) }), expect: { error_code: 'invalid_request' } },
        { name: '40,000 nested objects as data.folder_id', bytes: wsFrame({ opcode: Op.TEXT, payload: `{"action":"subscribe","channel":"folder","request_id":"deepf","data":{"folder_id":${deepJson(40_000, 'object')}}}` }), expect: { request_id: 'deepf' } },
      ];
      const got: string[] = [];
      for (const c of cases) {
        ws.write(c.bytes);
        const r = await ws.next((m) => m.type !== 'event' && m.type !== 'ping');
        expect(r, c.name).toMatchObject(c.expect);
        if (r.type === 'error') expect(DOCUMENTED_ERRORS.has(r.error_code), c.name).toBe(true);
        got.push(`${c.name}: ${r.type === 'error' ? r.error_code : r.type}`);
        await ws.roundTrip(`after-${got.length}`);
        expect(replies(ws), c.name).toEqual([]);
      }
      // Every RFC 6455 ping between fragments was answered with its payload.
      expect(ws.pongs.length).toBeGreaterThan(0);
      ws.write(wsFrame({ opcode: Op.CLOSE, payload: closePayload(1000, Buffer.from([0xff, 0xfe])) }));
      const end: RawEnd = await ws.end();
      await probe.check('fragments');
      // The tokens themselves never reach the log (only `has_token`).
      const all = JSON.stringify(d.logs);
      expect(all.includes(token)).toBe(false);
      scenarioNote('fuzz-websocket fragments',
        `${cases.length} messages on one socket (${got.join('; ')}); ${ws.pongs.length} RFC 6455 pongs for the pings between fragments; a close with an invalid UTF-8 reason answered ${end.code}; no token in ${d.logs.length} log lines; probe event delivered`, rng.seed);
    });
  });
});

describe('fuzz: a few hundred sockets at once against a daemon process (memory bounded)', () => {
  const SECRET = 'fuzz-websocket-secret-0123456789abcdef-xyz';
  const ROUNDS = 3;
  const SOCKETS = 200;
  let dir: string;
  let proc: DaemonProcess;
  let key: JwtKey;
  const claims = loadConfig({ env: {} }).auth.jwt;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tpws-fuzzws-'));
    proc = await startDaemonProcess(`sqlite:${join(dir, 'tp-ws.db')}`, { TPWS_JWT_SECRET: SECRET });
    key = { kind: 'secret', key: new TextEncoder().encode(SECRET), algorithms: ['HS256'], source: 'config' };
  });
  afterAll(async () => {
    await proc?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** One socket's run: pipelined fuzz, then one way to end (documented outcome for each). */
  async function oneSocket(rng: Random, userId: number, outcomes: Map<string, number>): Promise<void> {
    const ws = await RawWs.login(proc.port, await mintJwt(key, claims, { userId, admin: true, ttlSec: 600 }));
    const n = rng.int(5, 25);
    for (let i = 0; i < n; i++) {
      const m = fuzzMessage(rng, i);
      if (rng.chance(0.2)) {
        // Fragmented, with a control frame in the middle.
        const cut = rng.int(0, m.bytes.length);
        ws.write(Buffer.concat([
          wsFrame({ opcode: m.binary ? Op.BINARY : Op.TEXT, payload: m.bytes.subarray(0, cut), fin: false }),
          wsFrame({ opcode: Op.PING, payload: randomBytes(rng, rng.int(0, 125)) }),
          wsFrame({ opcode: Op.CONT, payload: m.bytes.subarray(cut) }),
        ]));
      } else ws.write(wsFrame({ opcode: m.binary ? Op.BINARY : Op.TEXT, payload: m.bytes }));
    }
    if (rng.chance(0.1)) ws.text(`{"action":"ping","pad":"${'p'.repeat(rng.int(300_000, 900_000))}"}`);
    const ending = rng.pick(['close', 'violation', 'huge-length', 'garbage'], [40, 25, 20, 15]);
    let end: RawEnd;
    if (ending === 'close') {
      // Everything before was answered (possibly `rate_limited`: the daemon's default limits apply).
      ws.text('{"action":"ping","request_id":"last"}');
      const last = await ws.next((m) => m.request_id === 'last', 20_000);
      expect(['pong', 'error']).toContain(last.type);
      ws.write(wsFrame({ opcode: Op.CLOSE, payload: closePayload(1000) }));
      end = await ws.end(20_000);
      expect(end.code).toBe(1000);
    } else if (ending === 'violation') {
      ws.write(wsFrame({ opcode: rng.int(3, 7), payload: 'x' }));
      end = await ws.end(20_000);
      expect(end.code).toBe(1002);
    } else if (ending === 'huge-length') {
      ws.write(wsFrame({ opcode: Op.TEXT, declaredLength: 2n ** BigInt(rng.int(21, 63)) - 1n }));
      end = await ws.end(20_000);
      expect(end.code).toBe(1009);
    } else {
      ws.write(randomBytes(rng, rng.int(1, 2000)));
      ws.socket.end();
      end = await ws.end(20_000);
    }
    for (const m of ws.messages) if (m.type === 'error') expect(DOCUMENTED_ERRORS.has(m.error_code), JSON.stringify(m)).toBe(true);
    const key2 = `${ending} ${end.code}`;
    outcomes.set(key2, (outcomes.get(key2) ?? 0) + 1);
  }

  it(`${ROUNDS} rounds of ${SOCKETS} sockets fuzzing at once: every socket ends as documented, the probe gets through after each round, RSS grows < 100 MB`, async () => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const probe = await ServingProbe.open(`ws://127.0.0.1:${proc.port}/ws?token=${await mintJwt(key, claims, { userId: PROBE_USER, ttlSec: 600 })}`, proc.socket, PROBE_USER);
      await probe.check('start');
      const base = procMemory(proc.pid);
      const outcomes = new Map<string, number>();
      const rss: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Each socket its own generator (seeded from the scenario's), so interleavings do not change what each sends.
        const seeds = Array.from({ length: SOCKETS }, () => rng.int(0, 2 ** 31));
        await Promise.all(seeds.map((s, k) => oneSocket(new Random(s), 1000 + round * SOCKETS + k, outcomes)));
        await probe.check(`round ${round + 1}`);
        rss.push(procMemory(proc.pid).rssKb);
      }
      const after = procMemory(proc.pid);
      await probe.close();
      const mb = (kb: number) => Math.round(kb / 102.4) / 10;
      const growth = after.rssKb - base.rssKb;
      expect(proc.child.exitCode).toBe(null);
      expect(growth, `RSS ${mb(base.rssKb)} MB -> ${mb(after.rssKb)} MB`).toBeLessThan(100 * 1024);
      scenarioNote('fuzz-websocket sockets',
        `${ROUNDS}x${SOCKETS} sockets at once against tp-ws serve, each pipelining 5-25 fuzz messages (20% fragmented around a ping, 10% a 0.3-0.9 MB message) then ending: ${[...outcomes].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}; probe after each round (p50 ${percentiles(probe.latencies).p50} ms, max ${percentiles(probe.latencies).max} ms); daemon RSS ${mb(base.rssKb)} MB before, ${rss.map(mb).join(' / ')} MB after each round, peak (VmHWM) ${mb(after.hwmKb)} MB`, rng.seed);
    });
  }, 55_000);
});

describe('fuzz: messages sent while authentication waits for the store', () => {
  let d: TestDaemon;

  beforeAll(async () => {
    // Small limits keep the test light; the rule is the same at the defaults (32 × 1 MiB could be held before).
    d = await startDaemon({ 'auth.methods': 'teampass-token', 'limits.maxFrameBytes': 131072, 'limits.maxMessageBytes': 4096, 'limits.rateLimitMessages': 100000 });
  });
  afterAll(async () => d?.stop());

  it('holds at most limits.maxPendingBeforeAuth small messages per socket: oversize ones are answered message_too_large without being kept', async () => {
    const rng = scenarioRandom();
    await withSeed(rng, async () => {
      const url = d.daemon.config.store.url!;
      const token = randomBytes(rng, 32).toString('hex');
      await seedTeampass(url, 'teampass_', { users: [{ id: 1, login: 'alice' }], tokens: [{ userId: 1, token, ttlSec: 3600 }] });
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      // Another connection holds the write lock: each connect's reconnect-token INSERT waits (busy_timeout, 5 s).
      const lock = new Database(url.slice('sqlite:'.length));
      lock.exec('BEGIN IMMEDIATE');
      const SOCKETS = 4;
      const HELD = d.daemon.config.limits.maxPendingBeforeAuth;
      const size = rng.int(100_000, 130_000);
      let released = false;
      try {
        gc();
        await new Promise((r) => setTimeout(r, 50));
        const before = process.memoryUsage().arrayBuffers;
        const received = d.daemon.gateway.counters.messagesReceived;
        const sockets = await Promise.all(Array.from({ length: SOCKETS }, () => RawWs.open(d.daemon.address.ws.port, token)));
        for (const ws of sockets) for (let k = 0; k < HELD; k++) ws.text(`{"action":"ping","pad":"${'p'.repeat(size)}"}`);
        await until(() => d.daemon.gateway.counters.messagesReceived - received >= SOCKETS * HELD, 'the messages held before authentication');
        expect(sockets.every((ws) => ws.messages.length === 0), 'no verdict yet').toBe(true);
        // Freed buffers leave the count when V8's background sweeper gets to them (late on a loaded
        // machine): the least of a few collections is what is really still referenced.
        let held = Infinity;
        for (let i = 0; i < 10 && held > 1024 * 1024; i++) {
          gc();
          await new Promise((r) => setTimeout(r, 50));
          held = Math.min(held, process.memoryUsage().arrayBuffers - before);
        }
        lock.exec('COMMIT');
        released = true;
        for (const ws of sockets) {
          expect((await ws.next(() => true, 20_000)).type).toBe('connected');
          for (let k = 0; k < HELD; k++) expect(await ws.next((m) => m.type === 'error', 20_000)).toMatchObject({ error_code: 'message_too_large' });
          await ws.roundTrip('after');
          ws.destroy();
        }
        const mb = (b: number) => Math.round(b / 104857.6) / 10;
        // Kept whole, the messages would hold SOCKETS × HELD × size (≈ 13-17 MB); as lengths, nothing.
        expect(held, `${mb(held)} MB held`).toBeLessThan((SOCKETS * HELD * size) / 4);
        scenarioNote('fuzz-websocket before auth', `${SOCKETS} sockets each sent ${HELD} messages of ${Math.round(size / 1024)} KiB while their authentication waited on a locked store: ${mb(held)} MB held (whole they would be ${mb(SOCKETS * HELD * size)} MB); after the verdict each got connected, then ${HELD} message_too_large in order, and a pong`, rng.seed);
      } finally {
        if (!released) lock.exec('ROLLBACK');
        lock.close();
      }
    });
  });
});
