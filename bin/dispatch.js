#!/usr/bin/env node
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const main = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
if (!fs.existsSync(main)) {
  console.error('dispatch is not built yet: run `npm run build` (or `npm run setup`) in ' + path.join(__dirname, '..'));
  process.exit(3);
}
// process.exit drops what a pipe has not taken yet (dispatch logs | ..., tasks --json > file):
// exit only once stdout and stderr have written out everything before it.
const flushed = (s) => new Promise((resolve) => (s.writableLength === 0 ? resolve() : s.write('', () => resolve())));
const exit = (code) => Promise.all([flushed(process.stdout), flushed(process.stderr)]).then(() => process.exit(code));
require(main)
  .main(process.argv)
  .then(
    (code) => exit(code ?? 0),
    () => exit(1),
  );
