/**
 * `connect-storm`: authentication cost under a burst of connects. A daemon
 * authenticating TeamPass tokens (MariaDB when a server is configured, else
 * SQLite; teampass-daemon.ts) has one subscriber on folder 1 receiving 100
 * events/s through the ingest socket; then `clients` other TeamPass users
 * connect as fast as one client process can (`concurrency` handshakes in
 * flight at a time).
 *
 * Reported: connects per second over the storm, handshake time from TCP
 * connect to the `connected` message (p50/p99), the subscriber's latency
 * during the storm (sender's hrtime stamp → frame read), daemon CPU from
 * /proc over the storm, the storm client's CPU, and how busy the machine was.
 */
import { IngestClient } from '../ingest/client.js';
import { sleep } from './harness.js';
import { cpuSeconds, CpuWindow, MachineWindow } from './proc.js';
import { TeampassDaemon } from './teampass-daemon.js';
import { WsLoad } from './wsload.js';

export interface StormOptions {
  /** Sockets connecting in the storm (users 2..clients + 1). */
  clients: number;
  /** Handshakes in flight at once in the storm's client process. Default 100. */
  concurrency?: number;
  /** Events per second to the existing subscriber, during the storm. Default 100. */
  ratePerSec?: number;
  /** The whole scenario must end within this, ms. Default 180,000. */
  deadlineMs?: number;
}

const FOLDER = 1;

export async function benchConnectStorm(o: StormOptions): Promise<Record<string, unknown>> {
  if (!Number.isInteger(o.clients) || o.clients < 1 || o.clients > 20_000) throw new Error(`clients must be 1..20000, got ${o.clients}`);
  const concurrency = o.concurrency ?? 100;
  const rate = o.ratePerSec ?? 100;
  const deadline = Date.now() + (o.deadlineMs ?? 180_000);
  const daemon = await TeampassDaemon.start({ users: o.clients + 1, folderId: FOLDER, env: { TPWS_MAX_CONNECTIONS_PER_USER: '10' } });
  let subscriber: WsLoad | null = null;
  let storm: WsLoad | null = null;
  let ingest: IngestClient | null = null;
  try {
    subscriber = await WsLoad.start({ url: daemon.wsUrl, tokens: [daemon.tokens[0]], subscribeFolder: FOLDER });
    ingest = await IngestClient.connect(daemon.ingestSocket, { timeoutMs: 60_000 });
    const client = ingest;
    let acks = 0;
    const reader = (async () => {
      for (;;) acks += (await client.nextAcks()).length;
    })().catch(() => undefined);
    let n = 0;
    const send = () => client.send({ event_type: 'bench', target_type: 'folder', target_id: FOLDER, payload: { t0: process.hrtime.bigint().toString(), n: n++ } });

    // Warm up the subscriber path, then measure it only while the storm runs.
    for (let i = 0; i < 20; i++) {
      send();
      await sleep(1000 / rate);
    }
    await subscriber.waitForEventFrames(20, 5000);
    await subscriber.reset();

    let storming = true;
    const sender = (async () => {
      const start = Date.now();
      let sent = 0;
      while (storming && Date.now() < deadline) {
        send();
        sent++;
        await sleep(Math.max(0, start + (sent / rate) * 1000 - Date.now()));
      }
      return sent;
    })();
    const cpu = new CpuWindow(daemon.pid);
    const machine = new MachineWindow();
    const t0 = process.hrtime.bigint();
    storm = await WsLoad.start({
      url: daemon.wsUrl,
      tokens: daemon.tokens.slice(1, o.clients + 1),
      concurrency,
      connectTimeoutMs: Math.max(10_000, deadline - Date.now() - 10_000),
    });
    const stormMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const daemonCpu = cpu.read();
    const busy = machine.read();
    storming = false;
    const sentDuring = await sender;
    await subscriber.waitForEventFrames(sentDuring, 5000);
    const sub = await subscriber.report();
    const stormClientCpu = storm.pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
    ingest = null;
    await client.close();
    await reader;
    const cs = storm.connectStats;
    return {
      name: 'connect-storm',
      store: daemon.store,
      clients: o.clients,
      concurrency,
      connected: cs.sockets,
      failed: cs.failed,
      // The client process's own connect phase, and the same seen from here (process start included).
      connects_per_s: cs.wall_ms > 0 ? Math.round(cs.sockets / (cs.wall_ms / 1000)) : null,
      storm_wall_ms: Math.round(cs.wall_ms),
      storm_wall_with_process_start_ms: Math.round(stormMs),
      handshake_ms: cs.handshake_ms,
      subscriber: { rate_per_s: rate, events: sentDuring, received: sub.event_frames, latency_ms: sub.latency_ms },
      daemon_cpu_s: Math.round(daemonCpu.cpu_s * 1000) / 1000,
      storm_client_cpu_s: Math.round(stormClientCpu * 1000) / 1000,
      ingest_acks: acks,
      machine: busy,
    };
  } finally {
    await ingest?.close().catch(() => undefined);
    await storm?.stop();
    await subscriber?.stop();
    await daemon.stop();
  }
}

/** The `connect-storm` scenario: 1,000 clients (quick: 20, a CI smoke test). */
export function connectStorm(quick: boolean): Promise<Record<string, unknown>> {
  return benchConnectStorm(quick ? { clients: 20, ratePerSec: 20, deadlineMs: 60_000 } : { clients: 1000 });
}
