/**
 * Benchmark client process: opens N WebSocket connections (one user each),
 * answers server pings, and for every `event` whose payload carries `t0`
 * (process.hrtime.bigint() of the sender, in ns — CLOCK_MONOTONIC is shared by
 * all processes of the machine) records the delivery latency. Driven by its
 * parent over IPC: `{ cmd: 'connect', url, tokens }` → `{ ready }`,
 * `{ cmd: 'report' }` → `{ latenciesUs, received }`.
 */
import WebSocket from 'ws';

const sockets: WebSocket[] = [];
let latenciesUs: number[] = [];
let received = 0;

function onMessage(data: WebSocket.RawData): void {
  const now = process.hrtime.bigint();
  const m = JSON.parse(data.toString()) as { type: string; data?: { t0?: string } };
  if (m.type !== 'event' || m.data?.t0 === undefined) return;
  received++;
  latenciesUs.push(Number(now - BigInt(m.data.t0)) / 1000);
}

async function connectAll(url: string, tokens: string[]): Promise<void> {
  const batch = 100;
  for (let i = 0; i < tokens.length; i += batch) {
    await Promise.all(tokens.slice(i, i + batch).map((t) => new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`${url}?token=${t}`, { perMessageDeflate: false });
      ws.once('message', () => resolve()); // `connected`
      ws.once('error', reject);
      ws.on('message', onMessage);
      sockets.push(ws);
    })));
  }
}

process.on('message', (msg: { cmd: string; url?: string; tokens?: string[] }) => {
  if (msg.cmd === 'connect') {
    connectAll(msg.url!, msg.tokens!).then(
      () => process.send!({ ready: sockets.length }),
      (err: Error) => process.send!({ error: err.message }),
    );
  } else if (msg.cmd === 'report') {
    process.send!({ latenciesUs, received });
    latenciesUs = [];
    received = 0;
  } else if (msg.cmd === 'close') {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }
});
