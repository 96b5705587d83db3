/**
 * The msgpack side of the ingest wire (docs/ingest.md §Encoding): a frame is
 * a 4-byte big-endian length, then one msgpack value.
 *
 * Its own module so that only msgpack users load msgpackr: `IngestClient`
 * `import()`s it for a msgpack connection, and `tp-ws-emit` (NDJSON) never
 * does; its cold start is the budget (src/cli/emit.ts).
 */
import { Packr } from 'msgpackr';

// The daemon's options (src/ingest/unix-socket.ts): plain maps, never records;
// maps decode as objects and 64-bit integers as numbers, as JSON.parse would.
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
