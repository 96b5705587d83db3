import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/ws-client.js';

const BIN = join(import.meta.dirname, '../../bin/tp-ws.js');

describe('tp-ws serve (the real CLI process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tpws-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts on an ephemeral port, prints how to connect, and on SIGTERM closes sockets with 4200 and exits 0', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--admin-port', '0', '--state-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const banner: string[] = [];
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stderr! }).on('line', (line) => {
        banner.push(line);
        const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)\/ws/.exec(line);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const logs: Record<string, unknown>[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => logs.push(JSON.parse(l)));
    await new Promise((r) => setTimeout(r, 50));
    expect(banner.join('\n')).toMatch(/npx tp-ws tail --user 1/);
    expect(banner.join('\n')).toMatch(/ingest: .*ingest\.sock/);

    // The token command signs with the same development secret the daemon created.
    const token = await new Promise<string>((resolve) => {
      const t = spawn(process.execPath, [BIN, 'token', '--user', '5', '--state-dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      t.stdout!.on('data', (b) => (out += b));
      t.on('exit', () => resolve(out.trim()));
    });
    const { client, connected } = await TestClient.login(`ws://127.0.0.1:${port}/ws?token=${token}`);
    expect(connected.user_id).toBe(5);
    expect(logs.find((l) => l.msg === 'tp-ws started')).toMatchObject({ port });

    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await client.closed).toEqual({ code: 4200, reason: 'server shutting down: reconnect' });
    expect(await exit).toBe(0);
  });

  it('refuses a bad flag value at start, naming the key and the rule', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', 'eighty', '--state-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b) => (err += b));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(2);
    expect(err).toMatch(/TPWS_ERR_CONFIG_INVALID: in server\.port \(from --port\): must be an integer/);
  });
});
