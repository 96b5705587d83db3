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
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SCHEMA } from '../../src/config/schema.js';
import { describeRequiring } from '../helpers/requires.js';
import { INSTALL_ROOT, MAX_EXPOSURE, ROOT, SYSTEMD_ANALYZE, unitUnderTest } from '../helpers/systemd-unit.js';

const T = unitUnderTest('teampass-websocket.service');
afterAll(() => T.cleanup());
const { one, execStart, work } = T;
const UNIT = T.entries;

describeRequiring(
  'deploy/systemd/teampass-websocket.service under systemd-analyze',
  { missing: SYSTEMD_ANALYZE ? undefined : 'systemd-analyze is not installed', needs: 'systemd-analyze', hint: 'apt-get install systemd (Debian)' },
  () => {
    it('passes `systemd-analyze verify` with exit 0 and no line about the unit', () => {
      const dir = mkdtempSync(join(work, 'verify-'));
      const { path, substituted } = T.forThisMachine(dir);
      // Said once per run, so a reader of the log knows what was verified.
      if (substituted.length > 0) console.info(`deploy-systemd: tp-ws is not installed here; verified with ${substituted.join(', ')}`);
      const r = T.verify(path, ['teampass-websocket']);
      expect(r.aboutUnit, r.output).toEqual([]);
      expect(r.code, r.output).toBe(0);
    });

    it('reports a broken copy of the unit, so "no line" above means something', () => {
      const dir = mkdtempSync(join(work, 'broken-'));
      const { path } = T.forThisMachine(dir, 'NoSuchDirective=yes');
      const r = T.verify(path, ['teampass-websocket']);
      expect(r.aboutUnit.some((l) => l.includes("Unknown key 'NoSuchDirective'")), r.output).toBe(true);
    });

    it(`keeps the offline security exposure at or under ${MAX_EXPOSURE}`, () => {
      const dir = mkdtempSync(join(work, 'security-'));
      const { path } = T.forThisMachine(dir);
      const r = T.analyze(['security', '--offline=true', '--no-pager', path]);
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
