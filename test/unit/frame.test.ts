import { describe, expect, it } from 'vitest';
import { Receiver } from 'ws';
import { textFrame } from '../../src/fanout/frame.js';

/** Parse frames as a WebSocket client does (ws's own Receiver, client side: frames unmasked). */
function parse(bytes: Buffer): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const out: string[] = [];
    const r = new Receiver({ isServer: false, maxPayload: 0 });
    r.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) reject(new Error('binary frame'));
      out.push(data.toString('utf8'));
    });
    r.on('error', reject);
    r.write(bytes, () => resolve(out));
  });
}

describe('textFrame', () => {
  it('builds frames a client parses back to the same text, at every length encoding', async () => {
    // 7-bit (≤125), 16-bit (126–65535) and 64-bit (≥65536) lengths, at and around each boundary.
    const texts = [0, 1, 125, 126, 127, 65535, 65536, 200_000].map((n) => 'a'.repeat(n));
    texts.push('é€😀 multi-byte UTF-8'.repeat(9)); // 126+ bytes though fewer characters
    const frames = texts.map((t) => textFrame(t));
    expect(await parse(Buffer.concat(frames))).toEqual(texts);
  });

  it('uses the shortest length encoding (RFC 6455 §5.2)', () => {
    expect([...textFrame('abc').subarray(0, 2)]).toEqual([0x81, 3]);
    expect([...textFrame('a'.repeat(126)).subarray(0, 4)]).toEqual([0x81, 126, 0, 126]);
    expect([...textFrame('a'.repeat(65536)).subarray(0, 10)]).toEqual([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
  });
});
