/**
 * Several processes writing one dispatch.db through the store's API never see "database is
 * locked": write transactions take the lock up front (BEGIN IMMEDIATE) and wait under busy_timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store, localNodeInput } from '../../src/store/store';

const WRITER = path.resolve(__dirname, '../../bench/writer.js');

test('four processes writing through the store for a few seconds get no SQLITE_BUSY errors', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-conc-'));
  const dbPath = path.join(dir, 'dispatch.db');
  const s = new Store(dbPath);
  s.addNode(localNodeInput('n1', 4, '/tmp/n1'));
  s.close();
  const outs = await Promise.all(
    [0, 1, 2, 3].map(
      (k) =>
        new Promise<{ writes: number; busy: number; other: number }>((resolve, reject) => {
          const p = spawn(process.execPath, [WRITER, dbPath, String(k), '4']);
          let out = '';
          p.stdout.on('data', (b) => (out += b));
          p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`writer ${k} exited ${code}`))));
        }),
    ),
  );
  const busy = outs.reduce((a, o) => a + o.busy, 0);
  assert.equal(busy, 0);
  assert.equal(
    outs.reduce((a, o) => a + o.other, 0),
    0,
  );
  assert.ok(
    outs.every((o) => o.writes > 0),
    'every writer made progress',
  );
  const check = new Store(dbPath, { readonly: true });
  try {
    assert.equal(check.getNode('n1')?.running_count, 0, 'slot books balance after the storm');
  } finally {
    check.close();
  }
});
