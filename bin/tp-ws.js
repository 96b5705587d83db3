#!/usr/bin/env node
// Thin launcher: all logic lives in dist/cli (built by `npm run build`, shipped in the `npm pack` tarball).
const entry = new URL('../dist/cli/tp-ws.js', import.meta.url);
import(entry.href).then(
  (m) => m.main(process.argv),
  async (err) => {
    // Only a missing build gets the one-line hint; a module missing deeper inside keeps its real error.
    const { existsSync } = await import('node:fs');
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || existsSync(entry)) throw err;
    const root = decodeURIComponent(new URL('..', import.meta.url).pathname).replace(/\/$/, '');
    console.error(`tp-ws: the built code (dist/) is missing: run "npm run build" in ${root} (needs the dev dependencies), or install the package made by "npm pack"`);
    process.exitCode = 1;
  },
);
