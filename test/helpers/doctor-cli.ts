/**
 * Running `tp-ws doctor` and `tp-ws serve` as real processes for the doctor
 * suites (test/integration/doctor.test.ts, test/mysql/doctor-mysql.test.ts):
 * a clean environment, the JSON report parsed, a daemon on ephemeral ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { run, type Run } from './run.js';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const BIN = fileURLToPath(new URL('../../bin/tp-ws.js', import.meta.url));
export const IS_ROOT = process.getuid?.() === 0;
/** A real account that is not ours: PHP's on Debian, else nobody. */
export const PHP_USER = /^www-data:/m.test(readFileSync('/etc/passwd', 'utf8')) ? 'www-data' : 'nobody';
/** Socket flags PHP_USER can write through: group PHP_USER when we may give it (root), else writable by all. */
export const SOCKET_ARGS = IS_ROOT ? ['--socket-group', PHP_USER, '--socket-mode', '0660'] : ['--socket-mode', '0666'];

export interface Finding { check: string; code: string; severity: 'ok' | 'warn' | 'error'; message: string; fix: string | null }
export interface Doctor { code: number | null; findings: Finding[]; summary: { ok: number; warn: number; error: number }; stdout: string; stderr: string }

/** The host environment without TPWS_* and systemd directory variables, plus `extra`. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPWS_') && !/^(STATE_DIRECTORY|RUNTIME_DIRECTORY|XDG_STATE_HOME)$/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** `tp-ws ARGS` to its end, in a clean environment plus `env`. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run(process.execPath, [BIN, ...args], { env: cleanEnv(env) });
}

/** `tp-ws doctor --json --php-user PHP_USER ARGS`, parsed. */
export async function doctor(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Doctor> {
  const r = await runCli(['doctor', '--json', '--php-user', PHP_USER, ...args], env);
  let parsed: { findings: Finding[]; summary: Doctor['summary'] };
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch {
    throw new Error(`doctor printed no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
  return { ...r, ...parsed };
}

/** The one finding with `code`, failing with the whole report when it is absent. */
export function finding(d: Doctor, code: string): Finding {
  const f = d.findings.filter((x) => x.code === code);
  expect(f, `${code} in ${JSON.stringify(d.findings, null, 2)}`).toHaveLength(1);
  return f[0];
}

/** The findings that are not ok. */
export function notOk(d: Doctor): Finding[] {
  return d.findings.filter((f) => f.severity !== 'ok');
}

export interface Served { child: ChildProcess; port: number; adminPort: number }

/** `tp-ws serve --port 0 --admin-port 0 ARGS` until its banner names both ports. */
export async function serve(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--admin-port', '0', '--log-level', 'warn', ...args], { env: cleanEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
  let port = 0;
  let adminPort = 0;
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      port ||= Number(/listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(line)?.[1] ?? 0);
      adminPort ||= Number(/admin: +http:\/\/127\.0\.0\.1:(\d+)/.exec(line)?.[1] ?? 0);
      if (port > 0 && adminPort > 0) resolve();
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
  });
  return { child, port, adminPort };
}

/** SIGTERM a child and wait for its exit. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** A port nothing listens on (bound, read, released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
