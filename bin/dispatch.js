#!/usr/bin/env node
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const main = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
if (!fs.existsSync(main)) {
  console.error('dispatch is not built yet: run `npm run build` (or `npm run setup`) in ' + path.join(__dirname, '..'));
  process.exit(3);
}
require(main)
  .main(process.argv)
  .then(
    (code) => process.exit(code ?? 0),
    () => process.exit(1),
  );
