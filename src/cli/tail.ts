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

/** Connection-level refusals of the gateway (docs/protocol.md §Authentication). */
const REFUSALS: ReadonlySet<string> = new Set(['auth_failed', 'rate_limited', 'max_connections']);

/**
 * `tp-ws tail`: connect like a browser would, answer the server's pings,
 * optionally subscribe, and print every message as one JSON line.
 *
 * Ends with exit code 0 when the user stops it (SIGINT/SIGTERM) or the
 * daemon closes the socket with 1000; 1 for any other close (the code and
 * reason are printed). A connection that cannot be made
 * (`TPWS_ERR_CONNECT`) or that the daemon refuses (`TPWS_ERR_AUTH_FAILED`,
 * with the daemon's error and a hint) is an error: one line, exit 2.
 */
export async function runTail(cfg: Readonly<Config>, f: TailFlags): Promise<void> {
  const token = f.token ?? (f.user !== undefined ? await mintFromFlags(cfg, f) : null);
  if (token === null) throw new TpWsError('TPWS_ERR_CONFIG_INVALID', 'in tail: give --token or --user');
  const base = f.url ?? `ws://${cfg.server.host.includes(':') ? `[${cfg.server.host}]` : cfg.server.host}:${cfg.server.port}/ws`;
  const url = `${base}${base.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
  const ws = new WebSocket(url);
  let n = 0;
  let connected = false;
  let refusal: { error_code: string; message: string } | null = null;
  let stopped = false;
  const send = (m: Record<string, unknown>) => ws.send(JSON.stringify(m));
  await new Promise<void>((resolve, reject) => {
    const pinger = setInterval(() => send({ action: 'ping', request_id: `tail_${++n}` }), 25_000);
    const stop = () => { stopped = true; ws.close(1000, 'tail stopped'); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let finished = false;
    const done = (err?: TpWsError) => {
      if (finished) return;
      finished = true;
      clearInterval(pinger);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (err) reject(err);
      else resolve();
    };
    ws.on('open', () => {
      for (const id of f.folder ?? []) send({ action: 'subscribe', channel: 'folder', data: { folder_id: Number(id) }, request_id: `tail_${++n}` });
      if (f.kb) send({ action: 'subscribe', channel: 'kb', data: {}, request_id: `tail_${++n}` });
    });
    ws.on('message', (data) => {
      const text = data.toString();
      process.stdout.write(text + '\n');
      let m: { type?: string; error_code?: unknown; message?: unknown };
      try {
        m = JSON.parse(text) as typeof m;
      } catch {
        return; // printed as is
      }
      if (m.type === 'connected') connected = true;
      else if (m.type === 'ping') send({ action: 'pong' });
      else if (!connected && m.type === 'error' && typeof m.error_code === 'string' && REFUSALS.has(m.error_code)) {
        refusal = { error_code: m.error_code, message: String(m.message) };
      }
    });
    ws.on('close', (code, reason) => {
      if (finished) return; // a failed connection: 'error' said it
      if (refusal !== null) return done(refusalError(refusal, base, f, cfg));
      process.stderr.write(`closed: ${code} ${reason.toString()}\n`);
      process.exitCode = stopped || code === 1000 ? 0 : 1;
      done();
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      if (connected || refusal !== null) return; // 'close' follows and says what happened
      const hint = err.code === 'ECONNREFUSED'
        ? `nothing listens there: is the daemon running, and on this port? Give tail the daemon's --port/--host (or --url)`
        : err.message;
      done(new TpWsError('TPWS_ERR_CONNECT', `cannot connect to ${base}: ${err.code ?? 'error'}: ${hint}`));
    });
  });
}

function refusalError(r: { error_code: string; message: string }, base: string, f: TailFlags, cfg: Readonly<Config>): TpWsError {
  let hint = '';
  if (r.error_code === 'auth_failed') {
    hint = f.token !== undefined
      ? ' The token is unknown or expired.'
      : ` The token was signed with the development secret of ${cfg.stateDir}: if the daemon was started with another --state-dir (or auth.jwt.* settings), give tail the same.`;
  }
  return new TpWsError('TPWS_ERR_AUTH_FAILED', `${base} refused the connection: ${r.error_code}: ${r.message}${hint}`);
}
