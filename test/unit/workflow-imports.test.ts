/** Workflow code runs in Temporal's deterministic sandbox: it may import only types from I/O code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const dir = path.resolve(__dirname, '../../../src/workflows');
const BANNED = /^(node:|fs$|child_process$|net$|http$|ssh2$|better-sqlite3$|@temporalio\/(client|worker|activity)$)/;
const LOCAL_IO = /\/(activities|shell|store|workers|cli|config|spec|schedules)\//;

test('workflow files import no Node built-ins, ssh2, better-sqlite3 or I/O modules except as types', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 2);
  for (const f of files) {
    const src = readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']+)';/gms)) {
      const isType = Boolean(m[1]);
      const spec = m[2]!;
      assert.ok(!BANNED.test(spec), `${f} imports ${spec}`);
      if (!isType) assert.ok(!LOCAL_IO.test(`/${spec.replace(/^\.\.\//, '')}/`), `${f} imports ${spec} at run time`);
    }
  }
});
