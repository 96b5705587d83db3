import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { renderConfigurationMarkdown } from '../../src/config/docs.js';
import { loadConfig } from '../../src/config/load.js';
import { SCHEMA } from '../../src/config/schema.js';
import { ERROR_CODES } from '../../src/errors.js';
import { CloseCode } from '../../src/protocol/close-codes.js';

function readDoc(name: string): string {
  return readFileSync(new URL(`../../docs/${name}`, import.meta.url), 'utf8');
}

describe('docs/configuration.md', () => {
  it('is exactly what the schema generates', () => {
    const expected = renderConfigurationMarkdown();
    const actual = readDoc('configuration.md');
    // toBe on two long strings prints a diff; the hint says how to fix it.
    expect(
      actual,
      'docs/configuration.md is out of date: run `npm run build && node bin/tp-ws.js print-config --markdown > docs/configuration.md`',
    ).toBe(expected);
  });

  it('renders the same text on every call', () => {
    expect(renderConfigurationMarkdown()).toBe(renderConfigurationMarkdown());
  });

  it('lists every key with its environment variable and flag', () => {
    const doc = renderConfigurationMarkdown();
    for (const spec of SCHEMA) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${spec.key}\` |`));
      expect(row, spec.key).toBeDefined();
      expect(row).toContain(`\`${spec.env}\``);
      if (spec.flag !== undefined) expect(row).toContain(`\`--${spec.flag}\``);
    }
  });

  it('shows an example config file that loads', () => {
    const json = /```json\n([\s\S]*?)\n```/.exec(renderConfigurationMarkdown())?.[1];
    expect(json).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'tp-ws-docs-'));
    try {
      const file = join(dir, 'tp-ws.json');
      writeFileSync(file, json as string);
      const cfg = loadConfig({ file, env: { HOME: '/home/alice' } });
      expect(cfg.ingest.socketGroup).toBe('www-data');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------
// Error codes: src/errors.ts ERROR_CODES and docs/errors.md must list the same
// codes (fastify test/internals/errors.test.js).
// ---------------------------------------------------------------------------

describe('docs/errors.md', () => {
  const doc = readDoc('errors.md');
  const documented = new Set(doc.match(/TPWS_ERR_[A-Z_]+/g) ?? []);

  it('documents every code of ERROR_CODES in its table', () => {
    for (const code of Object.keys(ERROR_CODES)) {
      expect(doc, `${code} is missing from docs/errors.md`).toContain(`| \`${code}\` |`);
    }
  });

  it('mentions no code that ERROR_CODES lacks', () => {
    const unknown = [...documented].filter((code) => !Object.hasOwn(ERROR_CODES, code));
    expect(unknown, 'codes in docs/errors.md that src/errors.ts does not define').toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Close codes: the table of docs/protocol.md lists exactly the codes of
// src/protocol/close-codes.ts, and an integration test sees each one sent.
// ---------------------------------------------------------------------------

describe('docs/protocol.md close codes', () => {
  const doc = readDoc('protocol.md');
  const table = doc.slice(doc.indexOf('## Close codes'));
  const listed = [...table.matchAll(/^\| (\d{4}) \|/gm)].map((m) => Number(m[1]));
  const defined = Object.values(CloseCode) as number[];

  it('lists every close code the daemon defines, and no other', () => {
    expect(listed.sort()).toEqual([...defined].sort());
  });

  it('has each code asserted on a real socket by an integration test', () => {
    const dir = new URL('../integration/', import.meta.url);
    const lines = readdirSync(dir).filter((f) => f.endsWith('.ts')).flatMap((f) => readFileSync(new URL(f, dir), 'utf8').split('\n'));
    for (const code of defined) {
      const asserted = lines.some((l) => l.includes('expect') && new RegExp(`\\b${code}\\b`).test(l));
      expect(asserted, `no test/integration expectation mentions close code ${code}`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------
// Every error the product throws carries a code of the catalogue (src/errors.ts):
// no bare Error, TypeError or RangeError is thrown or rejected with in src/
// (the benchmarks, not part of the package, excepted).
// ---------------------------------------------------------------------------

describe('errors thrown by the product', () => {
  it('all come from the catalogue', () => {
    const root = new URL('../../src/', import.meta.url);
    // The status page's script is browser code kept in a string, and the browser client
    // (src/client/) throws the page's own TypeErrors for bad arguments: their errors never leave the page.
    const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts') && !f.startsWith('bench/') && !f.startsWith('client/') && f !== 'admin/status-page.ts');
    const bare: string[] = [];
    for (const f of files) {
      readFileSync(new URL(f, root), 'utf8').split('\n').forEach((line, i) => {
        if (/(throw|reject\()\s*new (?!TpWsError\b|EventInvalid\b)[A-Z]\w*\(/.test(line)) bare.push(`src/${f}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(files.length).toBeGreaterThan(20);
    expect(bare).toEqual([]);
  });
});
