/**
 * The built client files (npm run build writes them): the script-tag bundle
 * defines TeamPass's global, and the ES module works as the sources do.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { FakeSocket } from './client-fakes.js';

const DIST = fileURLToPath(new URL('../../dist/client/', import.meta.url));

describe('dist/client', () => {
  it('tp-ws-client.js defines window.TeamPassWebSocket and window.TpWs, as a script tag would', () => {
    const page: Record<string, any> = {};
    page.window = page;
    runInNewContext(readFileSync(`${DIST}tp-ws-client.js`, 'utf8'), page);
    expect(typeof page.TeamPassWebSocket).toBe('function');
    expect(page.TpWs.TeamPassWebSocket).toBe(page.TeamPassWebSocket);
    expect(page.TpWs.CloseCode.SESSION_EXPIRED).toBe(4001);
    expect(page.TpWs.reconnectPolicy(4200)).toBe('now');
  });

  it('tp-ws-client.mjs exports the client, which connects like the sources', async () => {
    const mod = await import(`${DIST}tp-ws-client.mjs`);
    FakeSocket.reset();
    const c = new mod.TeamPassWebSocket({ url: 'wss://tp.example/ws', token: 'abc', WebSocket: FakeSocket, shareTabs: false });
    c.connect();
    expect(FakeSocket.last().url).toBe('wss://tp.example/ws?token=abc');
    FakeSocket.last().accept();
    expect(c.isConnectedNow()).toBe(true);
    c.disconnect();
  });

  it('tp-ws-client.d.ts declares the public API', () => {
    const dts = readFileSync(`${DIST}tp-ws-client.d.ts`, 'utf8');
    for (const name of ['TeamPassWebSocket', 'TeamPassWebSocketOptions', 'ResumeResult', 'CloseCode', 'reconnectPolicy']) expect(dts).toContain(name);
  });
});
