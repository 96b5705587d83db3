import WebSocket from 'ws';
import type { Config } from '../config/schema.js';
import { TpWsError } from '../errors.js';
import { mintFromFlags, type TokenFlags } from './token.js';

export interface TailFlags extends TokenFlags {
  url?: string;
  token?: string;
  folder?: string[];
  kb?: boolean;
}

/**
 * `tp-ws tail`: connect like a browser would, answer the server's pings,
 * optionally subscribe, and print every message as one JSON line. Exits when
 * the socket closes (code 0 for 1000, else 1).
 */
export async function runTail(cfg: Readonly<Config>, f: TailFlags): Promise<void> {
  const token = f.token ?? (f.user !== undefined ? await mintFromFlags(cfg, f) : null);
  if (token === null) throw new TpWsError('TPWS_ERR_CONFIG_INVALID', 'in tail: give --token or --user');
  const base = f.url ?? `ws://${cfg.server.host.includes(':') ? `[${cfg.server.host}]` : cfg.server.host}:${cfg.server.port}/ws`;
  const url = `${base}${base.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  const ws = new WebSocket(url);
  let n = 0;
  const send = (m: Record<string, unknown>) => ws.send(JSON.stringify(m));
  await new Promise<void>((resolve, reject) => {
    const pinger = setInterval(() => send({ action: 'ping', request_id: `tail_${++n}` }), 25_000);
    ws.on('open', () => {
      for (const id of f.folder ?? []) send({ action: 'subscribe', channel: 'folder', data: { folder_id: Number(id) }, request_id: `tail_${++n}` });
      if (f.kb) send({ action: 'subscribe', channel: 'kb', data: {}, request_id: `tail_${++n}` });
    });
    ws.on('message', (data) => {
      const text = data.toString();
      process.stdout.write(text + '\n');
      try {
        if ((JSON.parse(text) as { type?: string }).type === 'ping') send({ action: 'pong' });
      } catch { /* printed as is */ }
    });
    ws.on('close', (code, reason) => {
      clearInterval(pinger);
      process.stderr.write(`closed: ${code} ${reason.toString()}\n`);
      process.exitCode = code === 1000 ? 0 : 1;
      resolve();
    });
    ws.on('error', (err) => {
      clearInterval(pinger);
      reject(new TpWsError('TPWS_ERR_LISTEN', `cannot connect to ${base}: ${err.message}`));
    });
    const stop = () => ws.close(1000, 'tail stopped');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
