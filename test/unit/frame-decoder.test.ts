import { describe, expect, it } from 'vitest';
import { FrameDecoder, type DecodedItem } from '../../src/ingest/frame-decoder.js';

const frames = (items: DecodedItem[]) => items.map((i) => (i.kind === 'frame' ? i.body.toString() : i.kind));

function lp(body: string | Buffer): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length);
  return Buffer.concat([h, b]);
}

describe('FrameDecoder', () => {
  describe('NDJSON', () => {
    it('picks NDJSON from a leading { [ or whitespace', () => {
      for (const first of ['{', '[', ' ', '\t', '\n', '\r']) {
        const d = new FrameDecoder(100);
        d.push(Buffer.from(first));
        expect(d.encoding).toBe('ndjson');
      }
    });

    it('yields one frame per line, CRLF accepted, blank lines skipped', () => {
      const d = new FrameDecoder(100);
      expect(frames(d.push(Buffer.from('{"a":1}\n\n  \r\n{"b":2}\r\n{"c"')))).toEqual(['{"a":1}', '{"b":2}']);
      expect(frames(d.push(Buffer.from(':3}\n')))).toEqual(['{"c":3}']);
    });

    it('reassembles a frame spanning many 1-byte writes', () => {
      const d = new FrameDecoder(100);
      const out: DecodedItem[] = [];
      for (const byte of Buffer.from('{"x":"split"}\n')) out.push(...d.push(Buffer.from([byte])));
      expect(frames(out)).toEqual(['{"x":"split"}']);
    });

    it('reports an oversize line once, skips the rest of it, and goes on', () => {
      const d = new FrameDecoder(10);
      expect(frames(d.push(Buffer.from('{"a":"0123456789')))).toEqual(['too-large']);
      expect(frames(d.push(Buffer.from('more more more')))).toEqual([]);
      expect(frames(d.push(Buffer.from('end"}\n{"ok":1}\n')))).toEqual(['{"ok":1}']);
      expect(d.fatal).toBe(false);
      expect(frames(d.push(Buffer.from('{"a":"0123456789"}\n{"b":2}\n')))).toEqual(['too-large', '{"b":2}']);
    });
  });

  describe('length-prefixed', () => {
    it('picks msgpack framing from a leading 0x00 and splits frames', () => {
      const d = new FrameDecoder(100);
      expect(frames(d.push(Buffer.concat([lp('one'), lp('two'), lp('thr')])))).toEqual(['one', 'two', 'thr']);
      expect(d.encoding).toBe('msgpack');
    });

    it('waits for the rest of a header or a body split across writes', () => {
      const d = new FrameDecoder(100);
      const all = Buffer.concat([lp('hello'), lp('world')]);
      const out: DecodedItem[] = [];
      for (let i = 0; i < all.length; i++) out.push(...d.push(all.subarray(i, i + 1)));
      expect(frames(out)).toEqual(['hello', 'world']);
      expect(d.buffered).toBe(0);
    });

    it('accepts an empty body', () => {
      const d = new FrameDecoder(100);
      expect(d.push(lp(''))).toEqual([{ kind: 'frame', body: Buffer.alloc(0) }]);
    });

    it('stops for good on a length over the limit', () => {
      const d = new FrameDecoder(100);
      const h = Buffer.alloc(4);
      h.writeUInt32BE(101);
      expect(d.push(Buffer.concat([lp('ok'), h]))).toEqual([{ kind: 'frame', body: Buffer.from('ok') }, { kind: 'too-large', size: 101 }]);
      expect(d.fatal).toBe(true);
      expect(d.push(lp('after'))).toEqual([]);
    });
  });

  it('refuses an unknown first byte for good', () => {
    const d = new FrameDecoder(100);
    expect(d.push(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual([{ kind: 'bad-start', byte: 0x47 }]);
    expect(d.fatal).toBe(true);
    expect(d.push(Buffer.from('{"a":1}\n'))).toEqual([]);
  });
});
