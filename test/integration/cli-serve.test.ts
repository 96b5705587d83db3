import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/ws-client.js';
import { run as runCommand, type Run } from '../helpers/run.js';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/tp-ws.js');

/** Run a command to its end from the repository root, collecting its output. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return runCommand(cmd, args, { cwd: ROOT, env });
}

interface Served {
  child: ChildProcess;
  port: number;
  banner: string[];
  /** The daemon's `tp-ws started` log line (stdout). */
  started: Promise<Record<string, unknown>>;
}

/** Start `tp-ws serve` with these flags; resolves with the banner once it names the port. */
async function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const banner: string[] = [];
  const started = new Promise<Record<string, unknown>>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const line = JSON.parse(l) as Record<string, unknown>;
      if (line.msg === 'tp-ws started') resolve(line);
    });
  });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      banner.push(line);
      const m = /listening on ws:\/\/127\.0\.0\.1:(\d+)\/ws/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}`)));
  });
  // The banner is written in one piece: every line has arrived with the first.
  await new Promise((r) => setImmediate(r));
  return { child, port, banner, started };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return; // already gone ('exit' will not come again)
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

describe('tp-ws serve (the real CLI process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tpws-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('starts on an ephemeral port, prints how to connect, and on SIGTERM closes sockets with 4200 and exits 0', async () => {
    const { child, port, banner, started } = await serve(['--port', '0', '--admin-port', '0', '--state-dir', dir]);
    expect(await started).toMatchObject({ port });
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

    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await client.closed).toEqual({ code: 4200, reason: 'server shutting down: reconnect' });
    expect(await exit).toBe(0);
  });

  it('reloads its config file on SIGHUP: live keys applied, others named as needing a restart, a broken file kept out', async () => {
    const conf = join(dir, 'reload.json');
    writeFileSync(conf, JSON.stringify({ limits: { maxConnectionsPerUser: 5 } }));
    const s = await serve(['--config', conf, '--port', '0', '--admin-port', '-1', '--state-dir', join(dir, 'reload'), '--socket', join(dir, 'reload.sock')]);
    const lines: Record<string, unknown>[] = [];
    createInterface({ input: s.child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
    const logged = async (pred: (l: Record<string, unknown>) => boolean) => {
      for (let i = 0; i < 200 && !lines.some(pred); i++) await new Promise((r) => setTimeout(r, 25));
      return lines.find(pred);
    };
    try {
      await s.started;
      writeFileSync(conf, JSON.stringify({ limits: { maxConnectionsPerUser: 2 }, dedup: { windowSize: 10 } }));
      s.child.kill('SIGHUP');
      const reloaded = await logged((l) => String(l.msg).startsWith('SIGHUP: configuration reloaded'));
      expect(reloaded).toMatchObject({ applied: ['limits.maxConnectionsPerUser'], restart_needed: ['dedup.windowSize'] });
      writeFileSync(conf, '{ not json');
      s.child.kill('SIGHUP');
      const refused = await logged((l) => String(l.msg).startsWith('SIGHUP: the configuration is not valid'));
      expect(refused).toMatchObject({ level: 'error', code: 'TPWS_ERR_CONFIG_FILE' });
      expect(s.child.exitCode).toBeNull();
    } finally {
      await stop(s.child);
    }
  });

  it('refuses a bad flag value at start, naming the key and the rule', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', 'eighty', '--state-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (b) => (err += b));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(2);
    expect(err).toMatch(/TPWS_ERR_CONFIG_INVALID: in server\.port \(from --port\): must be an integer/);
  });

  it.each([
    ['--port', 'server.port'],
    ['--admin-port', 'admin.port'],
  ])('says which setting to change when %s is taken by another process', async (flag, key) => {
    const other = createServer();
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    const taken = (other.address() as AddressInfo).port;
    try {
      const args = ['serve', '--port', '0', '--admin-port', '0', '--state-dir', mkdtempSync(join(dir, 'inuse-')), flag, String(taken)];
      const r = await run(process.execPath, [BIN, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`TPWS_ERR_LISTEN: cannot listen on 127.0.0.1:${taken} (${key}, ${flag}): address in use: another process listens there (another tp-ws, or TeamPass's own daemon?); stop it or choose another ${flag}`);
    } finally {
      other.close();
    }
  });

  describe('the banner of a daemon started with its own --state-dir and port', () => {
    const state = mkdtempSync(join(dir, 'state-'));
    let daemon: Awaited<ReturnType<typeof serve>>;
    const line = (prefix: string) => {
      const l = daemon.banner.map((b) => b.trim()).find((b) => b.startsWith(prefix));
      expect(l, `banner line starting with ${prefix}`).toBeDefined();
      return l!;
    };

    afterAll(async () => daemon && stop(daemon.child));

    it('prints tail, token and tp-ws-emit commands that work as printed, in another shell', async () => {
      daemon = await serve(['--port', '0', '--admin-port', '-1', '--state-dir', state]);
      const tailCmd = line('npx tp-ws tail');
      expect(tailCmd).toBe(`npx tp-ws tail --user 1 --state-dir ${state} --port ${daemon.port}`);
      // tail, as printed, until it has printed `connected`.
      // Its own process group: Ctrl-C reaches sh, npx and tail alike.
      const tail = spawn('sh', ['-c', tailCmd], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const lines: Record<string, any>[] = [];
      const seen = (pred: (m: Record<string, any>) => boolean) => new Promise<Record<string, any>>((resolve) => {
        const check = () => { const m = lines.find(pred); if (m) resolve(m); else setTimeout(check, 20); };
        check();
      });
      createInterface({ input: tail.stdout! }).on('line', (l) => lines.push(JSON.parse(l)));
      let tailErr = '';
      tail.stderr!.on('data', (b) => (tailErr += b));
      const tailExit = new Promise<void>((r) => tail.once('close', () => r()));
      expect(await seen((m) => m.type === 'connected')).toMatchObject({ user_id: 1 });

      // tp-ws-emit, as printed: delivered through the socket (exit 0), and tail prints the event.
      const emitted = await run('sh', ['-c', line('npx tp-ws-emit')]);
      expect(emitted.code, emitted.stderr).toBe(0);
      expect(await seen((m) => m.type === 'event')).toMatchObject({ event: 'hello', data: { text: 'hi' } });

      // The token command inside the printed URL signs a token this daemon accepts.
      const tokenCmd = /\$\((npx tp-ws token[^)]*)\)/.exec(line('or: ws://'))?.[1];
      expect(tokenCmd).toBeDefined();
      const token = await run('sh', ['-c', tokenCmd!]);
      expect(token.code, token.stderr).toBe(0);
      const { client, connected } = await TestClient.login(`ws://127.0.0.1:${daemon.port}/ws?token=${token.stdout.trim()}`);
      expect(connected.user_id).toBe(1);
      client.ws.terminate();

      // Ctrl-C: tail closes the socket itself (1000) and ends.
      process.kill(-tail.pid!, 'SIGINT');
      await tailExit;
      expect(tailErr).toBe('closed: 1000 tail stopped\n');
    });

    it('tail exits 2 with TPWS_ERR_AUTH_FAILED and a hint when the token is signed with another state directory', async () => {
      const other = mkdtempSync(join(dir, 'other-'));
      writeFileSync(join(other, 'jwt-dev-secret'), `${'x'.repeat(48)}\n`, { mode: 0o600 });
      const r = await run(process.execPath, [BIN, 'tail', '--user', '1', '--state-dir', other, '--port', String(daemon.port)]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^TPWS_ERR_AUTH_FAILED: ws:\/\/127\.0\.0\.1:\d+\/ws refused the connection: auth_failed: .* give tail the same\.\n$/);
    });

    it('tail exits 2 with TPWS_ERR_AUTH_FAILED for an unknown token', async () => {
      const r = await run(process.execPath, [BIN, 'tail', '--token', 'f'.repeat(64), '--port', String(daemon.port), '--state-dir', state]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^TPWS_ERR_AUTH_FAILED: .*auth_failed: .*The token is unknown or expired\.\n$/);
    });

    it('tail and token say where the development secret is missing instead of making one the daemon does not know', async () => {
      const empty = mkdtempSync(join(dir, 'empty-'));
      for (const args of [['tail', '--user', '1', '--port', String(daemon.port)], ['token', '--user', '1']]) {
        const r = await run(process.execPath, [BIN, ...args, '--state-dir', empty]);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/^TPWS_ERR_CONFIG_INVALID: in stateDir: no development JWT secret at .*jwt-dev-secret/);
      }
    });

    it('tail exits 2 with TPWS_ERR_CONNECT when nothing listens on the port', async () => {
      const r = await run(process.execPath, [BIN, 'tail', '--user', '1', '--state-dir', state, '--port', '1']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^TPWS_ERR_CONNECT: cannot connect to ws:\/\/127\.0\.0\.1:1\/ws: ECONNREFUSED: .*--port/);
    });
  });
});

