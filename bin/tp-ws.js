#!/usr/bin/env node
// Thin launcher: all logic lives in dist/cli (built by `npm install`).
import('../dist/cli/tp-ws.js').then((m) => m.main(process.argv));
