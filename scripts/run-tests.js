// Runs the test files one at a time (2-core machines; each e2e file starts its own Temporal dev
// server and sshd processes) with node's built-in runner. Unit tests first.
const { spawnSync } = require('node:child_process');
const { readdirSync, statSync } = require('node:fs');
const path = require('node:path');

function find(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const root = path.resolve(__dirname, '../dist/test');
// Arguments: parts of paths to run only those files; `--skip PART` leaves files out.
const argv = process.argv.slice(2);
const skip = [];
const only = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--skip') skip.push(argv[++i]);
  else only.push(argv[i]);
}
let files = find(root);
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));
if (skip.length) files = files.filter((f) => !skip.some((o) => f.includes(o)));
files.sort((a, b) => Number(a.includes('/e2e/')) - Number(b.includes('/e2e/')) || a.localeCompare(b));
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
