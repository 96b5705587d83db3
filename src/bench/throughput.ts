import { IngestClient, type IngestFrame } from '../ingest/client.js';
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
    // The run is capped at 60 s below; the client's own wait must not end it first.
    const client = await IngestClient.connect(daemon.socket, { timeoutMs: 60_000 });
    const frames = Math.ceil(o.events / o.batch);
    let acks = 0;
    // Acks are read while the frames are written (the daemon stops reading a
    // sender that leaves its acks unread); a failed connection ends the count.
    const done = (async () => {
      while (acks < frames) acks += (await client.nextAcks()).length;
    })().catch(() => undefined);
    const one = (n: number) => ({ event_type: 'bench', target_type: 'user', target_id: (n % 1000) + 1, payload: { n } });
    const start = process.hrtime.bigint();
    for (let f = 0; f < frames; f++) {
      const frame: IngestFrame = o.batch === 1 ? one(f) : Array.from({ length: o.batch }, (_, i) => one(f * o.batch + i));
      if (!client.send(frame)) await client.drained();
    }
    await Promise.race([done, sleep(60_000)]);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    void client.close();
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
