/**
 * The package an operator installs, for real: `npm pack` of a copy
 * of the repository (so its prepack builds there, not in the dist/ the other
 * suites are running from), the tarball's contents, then `npm install -g
 * --prefix` of the tarball without dev dependencies — better-sqlite3 compiles
 * from source here, which is most of this file's time — and the installed
 * `tp-ws` and `tp-ws-emit` commands running a daemon that delivers an event.
 * And the launchers' one-line answer when dist/ was never built.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/ws-client.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** Not copied for packing: the copy builds its own dist/ and links the repository's node_modules. */
const NOT_COPIED = new Set(['.git', 'node_modules', 'dist', 'coverage', '.tmp']);
/** The native modules whose install scripts the operator allows (README, "Installing for production"). */
const NATIVE = 'better-sqlite3,bufferutil,msgpackr-extract';

const work = mkdtempSync(join(tmpdir(), 'tpws-pkg-'));
/** Every process this file starts (true: it leads its own process group), so afterAll stops whatever a failed test left running. */
const started = new Map<ChildProcess, boolean>();

/** SIGKILL a child we started; npm goes with its process group, so a compile it spawned stops too. */
function kill(child: ChildProcess, group: boolean): void {
  try {
    process.kill(group ? -child.pid! : child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

afterAll(() => {
  for (const [child, group] of started) if (child.exitCode === null && child.signalCode === null) kill(child, group);
  rmSync(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Environment without the caller's TPWS_* settings, so only the flags under test count. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPWS_')) env[k] = v;
  return env;
}

/** Run a command to its end; on timeout kill it (and, for npm, its process group) and fail with its output. */
function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs: number; group?: boolean }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const group = opts.group === true;
    const child = spawn(cmd, args, { cwd: opts.cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: group });
    started.set(child, group);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      kill(child, group);
      reject(new Error(`${cmd} ${args.join(' ')}: no exit within ${opts.timeoutMs} ms\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
    }, opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      started.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A failed command's output in the assertion message, not just its exit code. */
function expectSuccess(r: Run, what: string): void {
  expect(r.code, `${what} failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`).toBe(0);
}

describe('the npm pack tarball', () => {
  let tarball: string;
  let entries: string[];

  beforeAll(async () => {
    const copy = join(work, 'repo');
    cpSync(ROOT, copy, { recursive: true, filter: (src) => !NOT_COPIED.has(relative(ROOT, src).split(sep)[0]) });
    symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
    // Scripts on: prepack must build dist/ in a tree that has none.
    const packed = await run('npm', ['pack', '--pack-destination', work], { cwd: copy, timeoutMs: 120_000, group: true });
    expectSuccess(packed, 'npm pack');
    const name = readdirSync(work).find((f) => f.endsWith('.tgz'));
    expect(name, 'npm pack wrote no .tgz').toBeDefined();
    tarball = join(work, name!);
    const listed = await run('tar', ['-tzf', tarball], { timeoutMs: 30_000 });
    expectSuccess(listed, 'tar -tzf');
    entries = listed.stdout.split('\n').filter((l) => l !== '').map((l) => l.replace(/^package\//, ''));
  }, 180_000);

  it('holds the built code, the launchers, the migrations and the PHP emitter', () => {
    for (const file of ['package.json', 'README.md', 'LICENSE', 'bin/tp-ws.js', 'bin/tp-ws-emit.js', 'dist/cli/tp-ws.js', 'dist/cli/emit.js', 'dist/index.js', 'dist/index.d.ts', 'emitter/php/TpWsEmitter.php', 'docs/configuration.md',
      'dist/client/tp-ws-client.js', 'dist/client/tp-ws-client.mjs', 'dist/client/tp-ws-client.d.ts']) {
      expect(entries).toContain(file);
    }
    expect(entries.filter((e) => e.startsWith('migrations/mysql/') && e.endsWith('.sql')).length).toBeGreaterThan(0);
    expect(entries.filter((e) => e.startsWith('migrations/sqlite/') && e.endsWith('.sql')).length).toBeGreaterThan(0);
  });

  it('holds no tests, sources, benchmarks or source maps', () => {
    expect(entries.filter((e) => /^(test|src|dist\/bench|node_modules|\.ci)\//.test(e) || e.endsWith('.map') || e.endsWith('.tgz'))).toEqual([]);
  });

  it('installs without dev dependencies into a prefix, and the installed tp-ws and tp-ws-emit run a daemon that delivers an event', async () => {
    const prefix = join(work, 'opt-tp-ws');
    // The README's command. A file tarball is allowed by its absolute path (npm matches
    // non-registry packages by where they came from, not by name): npm counts tp-ws's
    // prepare, though it never runs from a tarball. --prefer-offline: the cache `npm ci`
    // just filled serves what it can.
    const installed = await run('npm', ['install', '-g', '--prefix', prefix, '--omit=dev', `--allow-scripts=${NATIVE},${tarball}`, '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: work, timeoutMs: 330_000, group: true });
    expectSuccess(installed, 'npm install -g --prefix');
    expect(installed.stderr).not.toMatch(/install-scripts/);
    const tpws = join(prefix, 'bin/tp-ws');
    const emitBin = join(prefix, 'bin/tp-ws-emit');

    const state = join(work, 'state');
    mkdirSync(state);
    const socket = join(state, 'ingest.sock');
    const daemon = spawn(tpws, ['serve', '--port', '0', '--admin-port', '0', '--state-dir', state, '--socket', socket], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    started.set(daemon, false);
    const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
    const logs: Record<string, unknown>[] = [];
    createInterface({ input: daemon.stdout! }).on('line', (l) => logs.push(JSON.parse(l) as Record<string, unknown>));
    const banner: string[] = [];
    const { url, version } = await new Promise<{ url: string; version: string }>((resolve, reject) => {
      createInterface({ input: daemon.stderr! }).on('line', (line) => {
        banner.push(line);
        const m = /^tp-ws (\S+) listening on (ws:\/\/\S+)$/.exec(line);
        if (m) resolve({ version: m[1], url: m[2] });
      });
      void exited.then((code) => reject(new Error(`tp-ws serve exited ${code} before listening:\n${banner.join('\n')}`)));
    });
    // Read from the installed package.json; the store's schema came from the installed migrations/.
    expect(version).toBe(VERSION);

    const token = await run(tpws, ['token', '--user', '1', '--state-dir', state], { timeoutMs: 30_000 });
    expectSuccess(token, 'tp-ws token');
    const { client, connected } = await TestClient.login(`${url}?token=${encodeURIComponent(token.stdout.trim())}`);
    expect(connected.user_id).toBe(1);

    const emitted = await run(emitBin, ['hello', '--user', '1', '--payload', '{"x":1}', '--socket', socket], { timeoutMs: 30_000 });
    expectSuccess(emitted, 'tp-ws-emit');
    const id = /^delivered via socket: id=(\S+) seq=\d+\n$/.exec(emitted.stderr)?.[1];
    expect(id, `tp-ws-emit said: ${emitted.stderr}`).toBeDefined();
    expect(await client.nextEvent()).toMatchObject({ type: 'event', event: 'hello', data: { x: 1 }, id });
    // The installed daemon serves the browser client it was packed with (docs/client.md).
    const served = await fetch(`http://${new URL(url).host}/ws/tp-ws-client.js`);
    expect(served.status).toBe(200);
    expect(await served.text()).toContain('TeamPassWebSocket');

    daemon.kill('SIGTERM');
    expect(await client.closed).toMatchObject({ code: 4200 });
    expect(await exited).toBe(0);
    expect(logs.find((l) => l.msg === 'tp-ws started')).toBeDefined();
  }, 360_000);
});

describe('the launchers without a build', () => {
  /** bin/ and package.json as a clone has them before any build. */
  function unbuiltTree(): string {
    const dir = mkdtempSync(join(work, 'unbuilt-'));
    cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    return dir;
  }

  it.each([
    ['tp-ws', 'tp-ws.js', ['serve']],
    ['tp-ws-emit', 'tp-ws-emit.js', ['hello', '--user', '1']],
  ])('%s says in one line that dist/ is missing and how to build it, and exits 1', async (name, file, args) => {
    const dir = unbuiltTree();
    const r = await run(process.execPath, [join(dir, 'bin', file), ...args], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${name}: the built code (dist/) is missing: run "npm run build" in ${dir} (needs the dev dependencies), or install the package made by "npm pack"\n`);
  });

  it('keeps the real error when a module deeper inside the build is missing', async () => {
    const dir = unbuiltTree();
    mkdirSync(join(dir, 'dist/cli'), { recursive: true });
    writeFileSync(join(dir, 'dist/cli/tp-ws.js'), "import './gone.js';\nexport function main() {}\n");
    const r = await run(process.execPath, [join(dir, 'bin/tp-ws.js'), 'serve'], { timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_MODULE_NOT_FOUND/);
    expect(r.stderr).toContain(join(dir, 'dist/cli/gone.js'));
    expect(r.stderr).not.toMatch(/built code \(dist\/\) is missing/);
  });
});
