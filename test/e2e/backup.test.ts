/**
 * dispatch backup: a consistent copy of a database that is being written (a worker running tasks,
 * and another process appending events as fast as it can), checked on its own.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startCluster, sleep, type Cluster } from '../helpers/cluster';

let c: Cluster;

before(async () => {
  c = await startCluster({ nodes: 1, slots: 4 });
  await c.startWorker();
});
after(async () => {
  await c?.stop();
});

describe('dispatch backup', () => {
  test('copies a live database consistently while tasks run and another process writes', async () => {
    const storeJs = path.resolve(__dirname, '../../src/store/store.js');
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const { Store } = require(${JSON.stringify(storeJs)});
         const s = new Store(${JSON.stringify(c.dbPath)});
         let n = 0;
         const end = Date.now() + 15000;
         while (Date.now() < end) { s.event(null, null, 'backup_test_write', { n: n++ }); }
         s.close();
         console.log(n);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let written = '';
    writer.stdout.on('data', (b: Buffer) => (written += b.toString()));
    const submits = Array.from({ length: 12 }, (_, i) => c.cliOk(['submit', '--id', `b-${i}`, '--command', 'sleep 1']));
    await sleep(2000);
    const dest = path.join(c.dir, 'copy.db');
    const out = JSON.parse(await c.cliOk(['backup', dest, '--json']));
    assert.equal(out.integrity, 'ok');
    assert.equal(out.path, dest);
    await Promise.all(submits);
    await new Promise((r) => writer.on('close', r));
    assert.ok(Number(written) > 0, 'the writer wrote while the backup ran');

    const copy = new Database(dest, { readonly: true });
    try {
      assert.equal(copy.pragma('integrity_check', { simple: true }), 'ok');
      const events = (copy.prepare(`SELECT COUNT(*) AS n FROM events`).get() as { n: number }).n;
      assert.equal(events, out.events);
      const writes = copy.prepare(`SELECT detail FROM events WHERE kind = 'backup_test_write' ORDER BY id`).all() as { detail: string }[];
      // A snapshot: the writer's events in the copy are a gap-free prefix of what it wrote.
      const ns = writes.map((w) => JSON.parse(w.detail).n as number);
      assert.ok(ns.length > 0, 'the copy holds writes made before it started');
      assert.deepEqual(ns, [...ns.keys()], 'a prefix with no gaps');
      assert.ok(ns.length < Number(written), 'writes after the snapshot are not in it');
      assert.equal(copy.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      copy.close();
    }
    for (let i = 0; i < 12; i++) await c.waitStatus(`b-${i}`, 'completed');
  });

  test('refuses an existing path, and the database itself, without touching either', async () => {
    const existing = path.join(c.dir, 'exists.db');
    writeFileSync(existing, 'keep me');
    const r = await c.cli(['backup', existing]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /exists: choose a new path/);
    const same = await c.cli(['backup', c.dbPath]);
    assert.notEqual(same.code, 0);
    assert.match(same.stderr, /the database itself/);
    assert.equal(existsSync(`${existing}.partial-${process.pid}`), false);
  });
});
