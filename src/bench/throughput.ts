import { connect } from 'node:net';
import { DaemonProcess, sleep } from './harness.js';

export interface ThroughputOptions {
  events: number;
  /** Events per frame: 1 = single-event frames, pipelined. */
  batch: number;
}

/**
 * Ingest throughput over one socket connection: `events` user events written
 * as fast as the socket takes them (pipelined, acks read concurrently), into a
 * daemon process on the embedded store; measured from the first write to the
 * last ack (each ack means fanned out and journaled).
 */
export async function benchIngestThroughput(o: ThroughputOptions): Promise<Record<string, unknown>> {
  const daemon = await DaemonProcess.start();
  try {
    const sock = connect(daemon.socket);
    await new Promise((r) => sock.once('connect', r));
    const frames = Math.ceil(o.events / o.batch);
    let acks = 0;
    const done = new Promise<void>((resolve) => {
      sock.on('data', (b: Buffer) => {
        for (const c of b) if (c === 0x0a) acks++;
        if (acks >= frames) resolve();
      });
    });
    const one = (n: number) => JSON.stringify({ event_type: 'bench', target_type: 'user', target_id: (n % 1000) + 1, payload: { n } });
    const start = process.hrtime.bigint();
    for (let f = 0; f < frames; f++) {
      const line = o.batch === 1 ? one(f) : '[' + Array.from({ length: o.batch }, (_, i) => one(f * o.batch + i)).join(',') + ']';
      if (!sock.write(line + '\n')) await new Promise((r) => sock.once('drain', r));
    }
    await Promise.race([done, sleep(60_000)]);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    sock.end();
    return {
      name: 'ingest-throughput-one-connection',
      store: 'sqlite',
      events: o.events,
      events_per_frame: o.batch,
      acked_frames: acks,
      seconds: Math.round(seconds * 1000) / 1000,
      events_per_s: Math.round(Math.min(acks * o.batch, o.events) / seconds),
    };
  } finally {
    await daemon.stop();
  }
}
