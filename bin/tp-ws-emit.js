#!/usr/bin/env node
// Thin launcher: all logic lives in dist/cli/emit.js (built by `npm install`).
import('../dist/cli/emit.js').then((m) => m.main(process.argv.slice(2)));
