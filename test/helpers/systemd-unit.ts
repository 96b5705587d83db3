/**
 * A unit file of deploy/systemd as the deploy-systemd*.test.ts suites check
 * it without a running systemd: parsed, and copied for `systemd-analyze`
 * with only the paths this machine lacks replaced (verify checks that
 * ExecStart's program exists).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { findBinary } from './proxies.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Where the units expect the package: `npm install -g --prefix /opt/tp-ws` (README, "Installing for production"). */
export const INSTALL_ROOT = '/opt/tp-ws/lib/node_modules/tp-ws';
/** Highest exposure `systemd-analyze security --offline` may give a unit (0 best, 10 worst; 3.2 when written). */
export const MAX_EXPOSURE = 4.0;
export const SYSTEMD_ANALYZE = findBinary('systemd-analyze');

/** `[section] key=value` lines of a unit file, values of repeated keys in order (no continuation lines in ours). */
export function parseUnit(text: string): Map<string, string[]> {
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

export interface UnitUnderTest {
  name: string;
  text: string;
  entries: Map<string, string[]>;
  /** A temp directory for copies; removed by `cleanup`. */
  work: string;
  /** The single value of `key` (asserted to be single). */
  one(key: string, entries?: Map<string, string[]>): string;
  /** ExecStart split into words; the unit uses no quoting, which this asserts. */
  execStart(): string[];
  /** The unit as verify sees it on this machine, written to `dir` (with an extra `[Service]` line if given). */
  forThisMachine(dir: string, extraServiceLine?: string): { path: string; substituted: string[] };
  analyze(args: string[]): { code: number | null; output: string };
  /** `systemd-analyze verify` (no man-page lookup, no generators) and the output lines naming the unit or `alsoNamed`. */
  verify(path: string, alsoNamed?: string[]): { code: number | null; output: string; aboutUnit: string[] };
  cleanup(): void;
}

export function unitUnderTest(name: string): UnitUnderTest {
  const text = readFileSync(join(ROOT, 'deploy/systemd', name), 'utf8');
  const entries = parseUnit(text);
  const work = mkdtempSync(join(tmpdir(), `tpws-${name}-`));
  const one = (key: string, from = entries): string => {
    const values = from.get(key) ?? [];
    expect(values, key).toHaveLength(1);
    return values[0];
  };
  const execStart = (): string[] => {
    const line = one('Service.ExecStart');
    expect(line, 'ExecStart uses no quotes or specifiers').not.toMatch(/["'%$\\]/);
    return line.split(/\s+/);
  };
  const analyze = (args: string[]) => {
    const r = spawnSync(SYSTEMD_ANALYZE!, args, { encoding: 'utf8', cwd: work, env: { ...process.env, SYSTEMD_PAGER: 'cat', SYSTEMD_COLORS: '0' } });
    if (r.error) throw r.error;
    return { code: r.status, output: `${r.stdout}${r.stderr}` };
  };
  return {
    name, text, entries, work, one, execStart, analyze,
    forThisMachine(dir, extraServiceLine) {
      const [node, script] = execStart();
      let copy = text;
      const substituted: string[] = [];
      if (!existsSync(node)) {
        copy = copy.replaceAll(node, process.execPath);
        substituted.push(`${node} -> ${process.execPath}`);
      }
      if (!existsSync(script)) {
        const local = join(ROOT, script.slice(INSTALL_ROOT.length + 1));
        copy = copy.replaceAll(script, local);
        substituted.push(`${script} -> ${local}`);
      }
      if (extraServiceLine) copy = copy.replace('\n[Service]\n', `\n[Service]\n${extraServiceLine}\n`);
      const path = join(dir, name);
      writeFileSync(path, copy);
      return { path, substituted };
    },
    verify(path, alsoNamed = []) {
      const r = analyze(['verify', '--man=no', '--generators=no', path]);
      return { ...r, aboutUnit: r.output.split('\n').filter((l) => l.includes(name) || alsoNamed.some((n) => l.includes(n))) };
    },
    cleanup: () => rmSync(work, { recursive: true, force: true }),
  };
}
