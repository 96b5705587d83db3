/**
 * deploy/systemd/teampass-websocket.service, checked without a running
 * systemd (the test machine is a container whose PID 1 is not systemd;
 * `systemd-analyze verify` and `security --offline` load unit files on their
 * own, as root or not).
 *
 * - `systemd-analyze verify` on a copy of the unit in a temp directory: exit 0
 *   and not one line about the unit. The copy differs from the file in one
 *   way only, when the machine has no tp-ws installed: verify checks that
 *   ExecStart's program exists, so `/usr/bin/node` becomes this Node
 *   (`process.execPath`) when absent, and `/opt/tp-ws/lib/node_modules/tp-ws/bin/tp-ws.js` becomes
 *   the repository's bin/tp-ws.js when absent; every other line is verified as
 *   shipped. A second copy with an unknown key proves verify reports problems
 *   here at all (it exits 0 on them, so the check is "no lines", not the code).
 * - ExecStart's command line parses with tp-ws's own CLI: every flag it uses
 *   is listed by `tp-ws serve --help`, and the Environment= variables and
 *   TimeoutStopSec agree with the config schema.
 *
 * Needs systemd-analyze (Debian: systemd). Missing in CI fails the suite,
 * elsewhere it is skipped loudly. The content checks always run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SCHEMA } from '../../src/config/schema.js';
import { describeRequiring } from '../helpers/requires.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const UNIT_NAME = 'teampass-websocket.service';
const UNIT_FILE = join(ROOT, 'deploy/systemd', UNIT_NAME);
const UNIT_TEXT = readFileSync(UNIT_FILE, 'utf8');
/** Where the unit expects tp-ws: the package's root (docs/teampass.md installs it there). */
const INSTALL_ROOT = '/opt/tp-ws/lib/node_modules/tp-ws';
/** Highest exposure `systemd-analyze security --offline` may give the unit (0 best, 10 worst; 3.2 when written). */
const MAX_EXPOSURE = 4.0;

const SEARCH_PATH = [...(process.env.PATH ?? '/usr/bin:/bin').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
const SYSTEMD_ANALYZE = SEARCH_PATH.map((d) => join(d, 'systemd-analyze')).find((p) => existsSync(p));

/** `[section] key=value` lines of a unit file, values of repeated keys in order (no continuation lines in ours). */
function parseUnit(text: string): Map<string, string[]> {
  const entries = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.endsWith('\\')) throw new Error(`continuation lines are not parsed here: ${line}`);
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`not a key=value line: ${line}`);
    const key = `${section}.${line.slice(0, eq).trim()}`;
    entries.set(key, [...(entries.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return entries;
}

const UNIT = parseUnit(UNIT_TEXT);

function one(key: string): string {
  const values = UNIT.get(key) ?? [];
  expect(values, key).toHaveLength(1);
  return values[0];
}

/** ExecStart split into words; the unit uses no quoting, which this asserts. */
function execStart(): string[] {
  const line = one('Service.ExecStart');
  expect(line, 'ExecStart uses no quotes or specifiers').not.toMatch(/["'%$\\]/);
  return line.split(/\s+/);
}

const work = mkdtempSync(join(tmpdir(), 'tpws-systemd-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The unit as verify sees it on this machine (see the file comment), written to `dir`. */
function unitForThisMachine(dir: string, extraServiceLine?: string): { path: string; substituted: string[] } {
  const [node, script] = execStart();
  let text = UNIT_TEXT;
  const substituted: string[] = [];
  if (!existsSync(node)) {
    text = text.replaceAll(node, process.execPath);
    substituted.push(`${node} -> ${process.execPath}`);
  }
  if (!existsSync(script)) {
    const local = join(ROOT, script.slice(INSTALL_ROOT.length + 1));
    text = text.replaceAll(script, local);
    substituted.push(`${script} -> ${local}`);
  }
  if (extraServiceLine) text = text.replace('\n[Service]\n', `\n[Service]\n${extraServiceLine}\n`);
  const path = join(dir, UNIT_NAME);
  writeFileSync(path, text);
  return { path, substituted };
}

function systemdAnalyze(args: string[]): { code: number | null; output: string } {
  const r = spawnSync(SYSTEMD_ANALYZE!, args, { encoding: 'utf8', cwd: work, env: { ...process.env, SYSTEMD_PAGER: 'cat', SYSTEMD_COLORS: '0' } });
  if (r.error) throw r.error;
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** `systemd-analyze verify` of the unit: no man-page lookup (Documentation= names a file), no generators. */
function verify(path: string): { code: number | null; output: string; aboutUnit: string[] } {
  const r = systemdAnalyze(['verify', '--man=no', '--generators=no', path]);
  const aboutUnit = r.output.split('\n').filter((l) => l.includes(UNIT_NAME) || l.includes('teampass-websocket'));
  return { ...r, aboutUnit };
}

describeRequiring(
  'deploy/systemd/teampass-websocket.service under systemd-analyze',
  { missing: SYSTEMD_ANALYZE ? undefined : 'systemd-analyze is not installed', needs: 'systemd-analyze', hint: 'apt-get install systemd (Debian)' },
  () => {
    it('passes `systemd-analyze verify` with exit 0 and no line about the unit', () => {
      const dir = mkdtempSync(join(work, 'verify-'));
      const { path, substituted } = unitForThisMachine(dir);
      // Said once per run, so a reader of the log knows what was verified.
      if (substituted.length > 0) console.info(`deploy-systemd: tp-ws is not installed here; verified with ${substituted.join(', ')}`);
      const r = verify(path);
      expect(r.aboutUnit, r.output).toEqual([]);
      expect(r.code, r.output).toBe(0);
    });

    it('reports a broken copy of the unit, so "no line" above means something', () => {
      const dir = mkdtempSync(join(work, 'broken-'));
      const { path } = unitForThisMachine(dir, 'NoSuchDirective=yes');
      const r = verify(path);
      expect(r.aboutUnit.some((l) => l.includes("Unknown key 'NoSuchDirective'")), r.output).toBe(true);
    });

    it(`keeps the offline security exposure at or under ${MAX_EXPOSURE}`, () => {
      const dir = mkdtempSync(join(work, 'security-'));
      const { path } = unitForThisMachine(dir);
      const r = systemdAnalyze(['security', '--offline=true', '--no-pager', path]);
      const m = /Overall exposure level for teampass-websocket\.service: (\d+(?:\.\d+)?)/.exec(r.output);
      expect(m, r.output).not.toBeNull();
      expect(Number(m![1]), r.output).toBeLessThanOrEqual(MAX_EXPOSURE);
    });
  },
);

describe('deploy/systemd/teampass-websocket.service contents', () => {
  it('runs `node <package root>/bin/tp-ws.js serve`, the bin of the package', () => {
    const [node, script, command] = execStart();
    expect(node).toMatch(/\/node$/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(script).toBe(`${INSTALL_ROOT}/${pkg.bin['tp-ws']}`);
    expect(command).toBe('serve');
  });

  it('uses only flags that `tp-ws serve --help` lists, each with its value', () => {
    const [, , , ...args] = execStart();
    const help = spawnSync(process.execPath, [join(ROOT, 'bin/tp-ws.js'), 'serve', '--help'], { encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    const listed = new Set([...help.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]));
    expect(listed.size, help.stdout).toBeGreaterThan(5);
    const flags = args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]);
    expect(flags).toContain('--teampass-root');
    for (const flag of flags) expect(listed, `${flag} in tp-ws serve --help`).toContain(flag);
    // Every flag here takes a value: none is followed by another flag or the end.
    args.forEach((a, i) => {
      if (a.startsWith('--') && !a.includes('=')) expect(args[i + 1], `value of ${a}`).toMatch(/^[^-]/);
    });
  });

  it('sets only environment variables tp-ws reads, with values its schema accepts', () => {
    const envNames = new Set(SCHEMA.map((s) => s.env));
    const set = new Map((UNIT.get('Service.Environment') ?? []).map((e) => e.split('=', 2) as [string, string]));
    expect([...set.keys()].sort()).toEqual(['TPWS_SOCKET_GROUP', 'TPWS_SOCKET_MODE']);
    for (const name of set.keys()) expect(envNames, name).toContain(name);
    expect(set.get('TPWS_SOCKET_MODE')).toBe('0660');
    expect(set.get('TPWS_SOCKET_GROUP')).toBe(one('Service.Group'));
    // The values as the daemon would validate them at start (caller's TPWS_* left out).
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPWS_')) env[k] = v;
    const check = spawnSync(process.execPath, [join(ROOT, 'bin/tp-ws.js'), 'check-config'], { encoding: 'utf8', env: { ...env, ...Object.fromEntries(set) } });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  });

  it('gives tp-ws more time to stop than its own shutdown timeout', () => {
    const spec = SCHEMA.find((s) => s.key === 'shutdown.timeoutMs');
    expect(spec).toBeDefined();
    const stopSec = one('Service.TimeoutStopSec');
    expect(stopSec).toMatch(/^\d+$/);
    expect(Number(stopSec) * 1000).toBeGreaterThan(Number(spec!.default));
    expect(one('Service.KillSignal')).toBe('SIGTERM');
  });

  it('does not set MemoryDenyWriteExecute, which Node\'s JIT cannot run under', () => {
    expect(UNIT.has('Service.MemoryDenyWriteExecute')).toBe(false);
  });
});
