/**
 * deploy/systemd/tp-ws.service (the generic unit, user tp-ws) and the files
 * that go with it: the EnvironmentFile example, and the supervisor and PM2
 * examples for hosts that run tp-ws without systemd.
 *
 * The unit is checked as deploy-systemd.test.ts checks
 * teampass-websocket.service, without a running systemd:
 * `systemd-analyze verify` on a copy whose only changes, when tp-ws is not
 * installed here, are ExecStart's node and tp-ws.js paths (verify checks the
 * program exists); a broken copy to prove verify reports problems here; and
 * `systemd-analyze security --offline`. Its content is checked against
 * tp-ws's own CLI and schema, and its hardening against the TeamPass unit's.
 *
 * Needs systemd-analyze (Debian: systemd) for the first part: missing in CI
 * fails the suite, elsewhere it is skipped loudly. The rest always runs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { SCHEMA } from '../../src/config/schema.js';
import { describeRequiring } from '../helpers/requires.js';

import { INSTALL_ROOT, MAX_EXPOSURE, ROOT, SYSTEMD_ANALYZE, parseUnit, unitUnderTest } from '../helpers/systemd-unit.js';

const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
const T = unitUnderTest('tp-ws.service');
afterAll(() => T.cleanup());
const { one, execStart, work } = T;
const UNIT = T.entries;
const ENV_NAMES = new Set(SCHEMA.map((s) => s.env));
const SHUTDOWN_TIMEOUT_MS = Number(SCHEMA.find((s) => s.key === 'shutdown.timeoutMs')!.default);

/** `Environment=` lines of the unit as a map. */
function unitEnvironment(): Map<string, string> {
  return new Map((UNIT.get('Service.Environment') ?? []).map((e) => e.split('=', 2) as [string, string]));
}

/** The caller's environment without TPWS_* (which would leak into check-config). */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TPWS_')) env[k] = v;
  return env;
}

describeRequiring(
  'deploy/systemd/tp-ws.service under systemd-analyze',
  { missing: SYSTEMD_ANALYZE ? undefined : 'systemd-analyze is not installed', needs: 'systemd-analyze', hint: 'apt-get install systemd (Debian)' },
  () => {
    it('passes `systemd-analyze verify` with exit 0 and no line about the unit', () => {
      const { path, substituted } = T.forThisMachine(mkdtempSync(join(work, 'verify-')));
      if (substituted.length > 0) console.info(`deploy-systemd-generic: tp-ws is not installed here; verified with ${substituted.join(', ')}`);
      const r = T.verify(path);
      expect(r.aboutUnit, r.output).toEqual([]);
      expect(r.code, r.output).toBe(0);
    });

    it('reports a broken copy of the unit, so "no line" above means something', () => {
      const { path } = T.forThisMachine(mkdtempSync(join(work, 'broken-')), 'NoSuchDirective=yes');
      const r = T.verify(path);
      expect(r.aboutUnit.some((l) => l.includes("Unknown key 'NoSuchDirective'")), r.output).toBe(true);
    });

    it(`keeps the offline security exposure at or under ${MAX_EXPOSURE}`, () => {
      const { path } = T.forThisMachine(mkdtempSync(join(work, 'security-')));
      const r = T.analyze(['security', '--offline=true', '--no-pager', path]);
      const m = /Overall exposure level for tp-ws\.service: (\d+(?:\.\d+)?)/.exec(r.output);
      expect(m, r.output).not.toBeNull();
      expect(Number(m![1]), r.output).toBeLessThanOrEqual(MAX_EXPOSURE);
    });
  },
);

describe('deploy/systemd/tp-ws.service contents', () => {
  it('runs `node <package root>/bin/tp-ws.js serve` with flags `tp-ws serve --help` lists', () => {
    const [node, script, command, ...args] = execStart();
    expect(node).toMatch(/\/node$/);
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(script).toBe(`${INSTALL_ROOT}/${pkg.bin['tp-ws']}`);
    expect(command).toBe('serve');
    const help = spawnSync(process.execPath, [join(ROOT, 'bin/tp-ws.js'), 'serve', '--help'], { encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    const listed = new Set([...help.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]));
    for (const flag of args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0])) expect(listed, `${flag} in tp-ws serve --help`).toContain(flag);
  });

  it('runs as the dedicated user tp-ws, in the group its ingest socket and runtime directory are given to', () => {
    expect(one('Service.DynamicUser')).toBe('no');
    expect(one('Service.User')).toBe('tp-ws');
    // /run/tp-ws belongs to User:Group with RuntimeDirectoryMode, and an unprivileged process can
    // chgrp a file only to a group it is in: PHP reaches the socket only if both are the web server's group.
    expect(one('Service.RuntimeDirectory')).toBe('tp-ws');
    expect(one('Service.RuntimeDirectoryMode')).toBe('0750');
    expect(unitEnvironment().get('TPWS_SOCKET_GROUP')).toBe(one('Service.Group'));
    expect(unitEnvironment().get('TPWS_SOCKET_MODE')).toBe('0660');
    expect(one('Service.StateDirectoryMode')).toBe('0700');
  });

  it('sets only environment variables tp-ws reads, with values check-config accepts', () => {
    const set = unitEnvironment();
    for (const name of set.keys()) expect(ENV_NAMES, name).toContain(name);
    const check = spawnSync(process.execPath, [join(ROOT, 'bin/tp-ws.js'), 'check-config'], { encoding: 'utf8', env: { ...cleanEnv(), ...Object.fromEntries(set) } });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  });

  it('reads /etc/tp-ws/tp-ws.env when present, reloads on SIGHUP, restarts always, logs to the journal', () => {
    expect(one('Service.EnvironmentFile')).toBe('-/etc/tp-ws/tp-ws.env');
    expect(one('Service.ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('Service.Restart')).toBe('always');
    expect(one('Service.StandardOutput')).toBe('journal');
    expect(one('Service.LimitNOFILE')).toBe('65536');
  });

  it('gives tp-ws more time to stop than its own shutdown timeout', () => {
    expect(one('Service.KillSignal')).toBe('SIGTERM');
    expect(Number(one('Service.TimeoutStopSec')) * 1000).toBeGreaterThan(SHUTDOWN_TIMEOUT_MS);
  });

  it('has every hardening setting of teampass-websocket.service, with the same value', () => {
    const teampassText = read('deploy/systemd/teampass-websocket.service');
    const marker = '# --- Hardening';
    expect(teampassText).toContain(marker);
    const hardening = parseUnit(`[Service]\n${teampassText.slice(teampassText.indexOf(marker)).split('\n[Install]')[0]}`);
    expect(hardening.size).toBeGreaterThan(10);
    for (const [key, values] of hardening) expect(UNIT.get(key), key).toEqual(values);
    for (const key of ['Service.UMask', 'Service.ProtectSystem', 'Service.CapabilityBoundingSet']) expect(one(key)).toBe(one(key, parseUnit(teampassText)));
    expect(UNIT.has('Service.MemoryDenyWriteExecute')).toBe(false);
  });
});

describe('deploy/env/tp-ws.env.example', () => {
  const text = read('deploy/env/tp-ws.env.example');
  const assignments = [...text.matchAll(/^(#?)(TPWS_[A-Z0-9_]+)=(.*)$/gm)].map((m) => ({ active: m[1] === '', name: m[2], value: m[3] }));
  const active = Object.fromEntries(assignments.filter((a) => a.active).map((a) => [a.name, a.value]));

  it('names only variables tp-ws reads, commented out or not', () => {
    const named = new Set([...text.matchAll(/\bTPWS_[A-Z0-9_]+/g)].map((m) => m[0]));
    expect(named.size).toBeGreaterThan(15);
    for (const name of named) expect(ENV_NAMES, name).toContain(name);
  });

  it('says to keep it mode 0600, as it may hold TPWS_STORE_PASSWORD', () => {
    expect(text).toMatch(/0600/);
    expect(text).toMatch(/TPWS_STORE_PASSWORD/);
  });

  it('has active lines check-config accepts as they are', () => {
    expect(Object.keys(active).length).toBeGreaterThan(0);
    const check = spawnSync(process.execPath, [join(ROOT, 'bin/tp-ws.js'), 'check-config'], { encoding: 'utf8', env: { ...cleanEnv(), ...active } });
    expect(check.status, `${check.stdout}${check.stderr}`).toBe(0);
  });

  it('gives examples whose values the schema accepts', () => {
    // A password needs a mysql:// store (the example's TPWS_STORE); the TeamPass root is read at load, so it is
    // only named here.
    const store = assignments.find((a) => a.name === 'TPWS_STORE')!;
    for (const a of assignments.filter((x) => !x.active && x.name !== 'TPWS_TEAMPASS_ROOT')) {
      const env = { HOME: work, TPWS_STATE_DIR: join(work, 'state'), ...active, TPWS_STORE: store.value, [a.name]: a.value };
      expect(() => loadConfig({ env }), `${a.name}=${a.value}`).not.toThrow();
    }
  });
});

describe('deploy/supervisor/tp-ws.conf and deploy/pm2/ecosystem.config.cjs', () => {
  const [unitNode, unitScript, unitCommand] = execStart();

  /** `key=value` lines of the [program:tp-ws] section (supervisor's INI; `;` starts a comment). */
  const supervisor = new Map(
    read('deploy/supervisor/tp-ws.conf').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith(';') && !l.startsWith('['))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]),
  );

  it('supervisor: the unit\'s command, one process, TERM with time to shut down, restarted', () => {
    expect(supervisor.get('command')).toBe(`${unitNode} ${unitScript} ${unitCommand}`);
    expect(supervisor.get('numprocs')).toBe('1');
    expect(supervisor.get('stopsignal')).toBe('TERM');
    expect(Number(supervisor.get('stopwaitsecs')) * 1000).toBeGreaterThan(SHUTDOWN_TIMEOUT_MS);
    expect(supervisor.get('autorestart')).toBe('true');
    const env = [...(supervisor.get('environment') ?? '').matchAll(/([A-Z_][A-Z0-9_]*)="[^"]*"/g)].map((m) => m[1]);
    expect(env).toContain('TPWS_SOCKET_GROUP');
    for (const name of env.filter((n) => n.startsWith('TPWS_'))) expect(ENV_NAMES, name).toContain(name);
  });

  it('PM2: the unit\'s command, one forked process, kill_timeout above the shutdown timeout', () => {
    const require = createRequire(import.meta.url);
    const { apps } = require(join(ROOT, 'deploy/pm2/ecosystem.config.cjs')) as { apps: Record<string, unknown>[] };
    expect(apps).toHaveLength(1);
    const app = apps[0];
    expect([app.script, ...(app.args as string[])]).toEqual([unitNode, unitScript, unitCommand]);
    expect(app.interpreter).toBe('none');
    expect(app.exec_mode).toBe('fork');
    expect(app.instances).toBe(1);
    expect(app.autorestart).toBe(true);
    expect(app.kill_timeout as number).toBeGreaterThan(SHUTDOWN_TIMEOUT_MS);
    for (const name of Object.keys(app.env as object).filter((n) => n.startsWith('TPWS_'))) expect(ENV_NAMES, name).toContain(name);
  });
});
