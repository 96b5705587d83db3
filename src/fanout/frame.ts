/**
 * WebSocket text frames built once and written as they are.
 *
 * A server's frames are not masked (RFC 6455 §5.1), so every recipient of an
 * event receives exactly the same bytes: the frame is built once per event
 * and the same Buffer goes to every socket, instead of one header and one
 * system call per recipient through `ws.send`.
 */

/** FIN bit set, opcode 1 (text): one whole, unfragmented text message. */
const FIN_TEXT = 0x81;

/** The complete unmasked text frame carrying `text` (UTF-8). */
export function textFrame(text: string): Buffer {
  const len = Buffer.byteLength(text);
  const header = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + len);
  frame[0] = FIN_TEXT;
  if (header === 2) {
    frame[1] = len;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    frame.writeUInt32BE(len >>> 0, 6);
  }
  frame.write(text, header, 'utf8');
  return frame;
}
