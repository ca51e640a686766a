// Copies the node scripts (src/shell/scripts/*.sh) next to the compiled src/shell/scripts.js,
// which reads them at load. Stale copies go first, so a deleted script cannot linger in dist.
const { copyFileSync, mkdirSync, readdirSync, rmSync } = require('node:fs');
const path = require('node:path');

const from = path.resolve(__dirname, '../src/shell/scripts');
const to = path.resolve(__dirname, '../dist/src/shell/scripts');
mkdirSync(to, { recursive: true });
for (const name of readdirSync(to)) if (name.endsWith('.sh')) rmSync(path.join(to, name));
const names = readdirSync(from).filter((n) => n.endsWith('.sh'));
if (names.length === 0) {
  console.error(`no .sh files in ${from}`);
  process.exit(1);
}
for (const name of names) copyFileSync(path.join(from, name), path.join(to, name));
