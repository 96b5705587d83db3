/**
 * The msgpack side of the ingest wire (docs/ingest.md §Encoding): a frame is
 * a 4-byte big-endian length, then one msgpack value.
 *
 * One codec for both ends: the daemon's ingest socket, and `IngestClient`,
 * which `import()`s it only for a msgpack connection, so `tp-ws-emit`
 * (NDJSON) never loads msgpackr; its cold start is the budget.
 */
import { Packr } from 'msgpackr';

// Shared by the daemon (src/ingest/unix-socket.ts) and the client: plain maps,
// never records; maps decode as objects and 64-bit integers as numbers, as
// JSON.parse would.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** One length-prefixed msgpack frame holding `value`. */
export function encodeMsgpackFrame(value: unknown): Buffer {
  const body = packr.pack(value);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** The value of one frame's body (without its length prefix). Throws on bytes that are not msgpack. */
export function decodeMsgpack(body: Buffer): unknown {
  return packr.unpack(body);
}
