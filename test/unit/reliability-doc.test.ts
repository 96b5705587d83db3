/**
 * docs/reliability.md states each guarantee with the tests that hold it.
 * These checks keep the page and the suite in step: every test it cites
 * exists under that name, and every reliability scenario is cited.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url);
const doc = readFileSync(new URL('docs/reliability.md', ROOT), 'utf8');
/** Citations look like: `test/reliability/kill-under-load.test.ts` › "every acked … event". */
const citations = [...doc.matchAll(/`(test\/[\w/.-]+\.test\.ts)` › "([^"]+)"/g)].map((m) => ({ file: m[1], name: m[2] }));

/** A test file's text with `\'` unescaped, so a cited name matches the source literal. */
function source(file: string): string {
  return readFileSync(new URL(file, ROOT), 'utf8').replace(/\\'/g, "'");
}

describe('docs/reliability.md', () => {
  it('cites tests', () => {
    expect(citations.length).toBeGreaterThan(10);
  });

  it('cites only test files that exist, by names they contain', () => {
    const wrong = citations.filter((c) => !existsSync(new URL(c.file, ROOT)) || !source(c.file).includes(c.name));
    expect(wrong).toEqual([]);
  });

  it('cites every scenario of the reliability suite', () => {
    const files = readdirSync(new URL('test/reliability/', ROOT)).filter((f) => f.endsWith('.test.ts')).map((f) => `test/reliability/${f}`);
    expect(files.length).toBeGreaterThan(0);
    const cited = new Set(citations.map((c) => c.file));
    expect(files.filter((f) => !cited.has(f))).toEqual([]);
  });
});
