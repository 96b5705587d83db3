import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { renderConfigurationMarkdown } from '../../src/config/docs.js';
import { loadConfig } from '../../src/config/load.js';
import { SCHEMA } from '../../src/config/schema.js';
import { ERROR_CODES } from '../../src/errors.js';

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
