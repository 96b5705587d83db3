import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The browser client (src/client/, built to dist/client/), served by the
 * daemon on its WebSocket port so that a page loads it from the path its
 * proxy already forwards: any path ending in `/tp-ws-client.js` (script tag)
 * or `/tp-ws-client.mjs` (ES module), e.g. `/ws/tp-ws-client.js` behind
 * nginx's `location /ws` (docs/client.md).
 */
const FILES: Record<string, string> = {
  'tp-ws-client.js': 'text/javascript; charset=utf-8',
  'tp-ws-client.mjs': 'text/javascript; charset=utf-8',
};

/** The file names served (a path must end in `/<name>`). */
export const CLIENT_FILES: readonly string[] = Object.keys(FILES);

/** dist/client/ next to this module once built (dist/gateway/client-files.js); from src/ under vitest. */
const DIR = import.meta.url.endsWith('.ts') ? new URL('../../dist/client/', import.meta.url) : new URL('../client/', import.meta.url);

interface Loaded {
  body: Buffer;
  etag: string;
}

/**
 * Read once, at the first request that finds it: the files do not change
 * while the daemon runs. A missing file is looked for again at the next
 * request (a build may be writing it).
 */
const cache = new Map<string, Loaded>();

function load(name: string): Loaded | null {
  let f = cache.get(name);
  if (f === undefined) {
    let body: Buffer;
    try {
      body = readFileSync(new URL(name, DIR));
    } catch {
      return null;
    }
    f = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
    cache.set(name, f);
  }
  return f;
}

/** Answer a GET/HEAD for a client file; false when the request is not for one. */
export function serveClientFile(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const path = (req.url ?? '').split('?', 1)[0];
  const name = path.slice(path.lastIndexOf('/') + 1);
  const type = Object.hasOwn(FILES, name) ? FILES[name] : undefined;
  if (type === undefined || !path.endsWith(`/${name}`)) return false;
  const f = load(name);
  if (f === null) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end(`tp-ws: ${name} is not built (npm run build)\n`);
    return true;
  }
  // Revalidated at each load (no-cache), so a page gets a new client right after an upgrade.
  const headers = {
    'content-type': type, etag: f.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff',
    'access-control-allow-origin': '*', 'content-length': String(f.body.length),
  };
  if (req.headers['if-none-match'] === f.etag) {
    res.writeHead(304, { etag: f.etag, 'cache-control': 'no-cache' });
    res.end();
    return true;
  }
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : f.body);
  return true;
}
