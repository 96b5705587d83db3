/**
 * Splits an ingest byte stream into frames (docs/ingest.md §Encoding). Pure:
 * fed with `push(chunk)`, it returns what it found; it knows nothing about
 * sockets, JSON or msgpack.
 *
 * The first byte of the stream picks the encoding:
 * - `{`, `[`, space, tab, CR, LF → NDJSON: a frame is a line (without `\n`
 *   and a trailing `\r`); blank lines are skipped. A line longer than
 *   `maxFrameBytes` yields a `too-large` item and the rest of it is skipped.
 * - `0x00` → 4-byte big-endian length + body. A length over `maxFrameBytes`
 *   yields `too-large` and the decoder stops (`fatal`): the stream cannot be
 *   trusted any more.
 * - anything else → `bad-start`, fatal.
 */
export type Encoding = 'ndjson' | 'msgpack';

export type DecodedItem =
  | { kind: 'frame'; body: Buffer }
  | { kind: 'too-large'; size: number }
  | { kind: 'bad-start'; byte: number };

const NDJSON_START = new Set([0x7b, 0x5b, 0x20, 0x09, 0x0d, 0x0a]);

export class FrameDecoder {
  encoding: Encoding | null = null;
  /** Set after a fatal item: the owner must stop reading and close. */
  fatal = false;
  private buf: Buffer = Buffer.alloc(0);
  /** NDJSON: skipping the rest of an oversize line. */
  private skipping = false;

  constructor(private readonly maxFrameBytes: number) {}

  /** Bytes held waiting for the rest of a frame. */
  get buffered(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): DecodedItem[] {
    if (this.fatal || chunk.length === 0) return [];
    if (this.encoding === null) {
      const first = chunk[0];
      if (first === 0x00) this.encoding = 'msgpack';
      else if (NDJSON_START.has(first)) this.encoding = 'ndjson';
      else {
        this.fatal = true;
        return [{ kind: 'bad-start', byte: first }];
      }
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return this.encoding === 'ndjson' ? this.lines() : this.lengthPrefixed();
  }

  private lines(): DecodedItem[] {
    const out: DecodedItem[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf(0x0a, start);
      if (nl < 0) break;
      if (this.skipping) {
        this.skipping = false;
      } else {
        let end = nl;
        if (end > start && this.buf[end - 1] === 0x0d) end--;
        if (end - start > this.maxFrameBytes) out.push({ kind: 'too-large', size: end - start });
        else if (!isBlank(this.buf, start, end)) out.push({ kind: 'frame', body: this.buf.subarray(start, end) });
      }
      start = nl + 1;
    }
    let rest = this.buf.subarray(start);
    if (!this.skipping && rest.length > this.maxFrameBytes) {
      out.push({ kind: 'too-large', size: rest.length });
      this.skipping = true;
    }
    if (this.skipping) rest = Buffer.alloc(0);
    // Copy so the held remainder does not pin the whole chunk it came from.
    this.buf = rest.length === 0 ? Buffer.alloc(0) : Buffer.from(rest);
    return out;
  }

  private lengthPrefixed(): DecodedItem[] {
    const out: DecodedItem[] = [];
    let off = 0;
    while (this.buf.length - off >= 4) {
      const len = this.buf.readUInt32BE(off);
      if (len > this.maxFrameBytes) {
        out.push({ kind: 'too-large', size: len });
        this.fatal = true;
        this.buf = Buffer.alloc(0);
        return out;
      }
      if (this.buf.length - off - 4 < len) break;
      out.push({ kind: 'frame', body: this.buf.subarray(off + 4, off + 4 + len) });
      off += 4 + len;
    }
    const rest = this.buf.subarray(off);
    this.buf = rest.length === 0 ? Buffer.alloc(0) : Buffer.from(rest);
    return out;
  }
}

function isBlank(b: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}
