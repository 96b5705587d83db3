import { connect, type Socket } from 'node:net';
import { Packr, Unpackr } from 'msgpackr';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export type Ack = Record<string, any>;

/**
 * A test sender on the ingest socket (docs/ingest.md), in either encoding.
 * Acks are queued as they arrive; `nextAck()` takes them in order.
 */
export class IngestClient {
  private readonly acks: Ack[] = [];
  private waiters: ((a: Ack) => void)[] = [];
  private buf = Buffer.alloc(0);
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket, readonly encoding: 'ndjson' | 'msgpack') {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
  }

  static connect(path: string, encoding: 'ndjson' | 'msgpack' = 'ndjson'): Promise<IngestClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new IngestClient(s, encoding)));
      s.once('error', reject);
    });
  }

  /** Encode one frame (an event object or a batch array). */
  frame(value: unknown): Buffer {
    if (this.encoding === 'ndjson') return Buffer.from(JSON.stringify(value) + '\n');
    const body = packr.pack(value);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    return Buffer.concat([head, body]);
  }

  send(value: unknown): void {
    this.socket.write(this.frame(value));
  }

  /** Send a frame and wait for its ack (use only without other acks pending). */
  async request(value: unknown): Promise<Ack> {
    this.send(value);
    return this.nextAck();
  }

  writeRaw(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  nextAck(timeoutMs = 5000): Promise<Ack> {
    const a = this.acks.shift();
    if (a !== undefined) return Promise.resolve(a);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no ack within ' + timeoutMs + ' ms')), timeoutMs);
      this.waiters.push((ack) => { clearTimeout(t); resolve(ack); });
    });
  }

  close(): Promise<void> {
    this.socket.end();
    return this.closed;
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      let ack: Ack;
      if (this.encoding === 'ndjson') {
        const nl = this.buf.indexOf(0x0a);
        if (nl < 0) break;
        ack = JSON.parse(this.buf.subarray(0, nl).toString());
        this.buf = this.buf.subarray(nl + 1);
      } else {
        if (this.buf.length < 4) break;
        const len = this.buf.readUInt32BE(0);
        if (this.buf.length < 4 + len) break;
        ack = unpackr.unpack(this.buf.subarray(4, 4 + len)) as Ack;
        this.buf = this.buf.subarray(4 + len);
      }
      const w = this.waiters.shift();
      if (w) w(ack);
      else this.acks.push(ack);
    }
  }
}
