/**
 * Two lives of one task id on the same node work dir: a task runs and completes; then a fresh
 * dispatch.db and a fresh Temporal dev server, pointed at the same work dir, get the same task id.
 * The second life must run its command: the first life's attempt directory (exited 0) must never
 * make it complete, and is left in place.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../helpers/cluster';

const workDir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-shared-workdir-'));
const marks = path.join(workDir, 'runs.log');
const clusters: Cluster[] = [];

after(async () => {
  for (const c of clusters) await c.stop().catch(() => undefined);
});

async function life(): Promise<Cluster> {
  const c = await startCluster({ nodes: 0 });
  clusters.push(c);
  await c.cliOk(['node', 'add', 'here', '--local', '--work-dir', workDir, '--slots', '1']);
  await c.startWorker();
  return c;
}

describe('attempt directories of an earlier life', () => {
  test('a fresh database and Temporal on the same work dir run the command again; the old directory is left in place', async () => {
    const command = `echo "$DISPATCH_ATTEMPT_TOKEN" >> ${marks}; echo ran`;
    const first = await life();
    await first.cliOk(['submit', '--id', 'S15-ghost-task-cleaner', '--command', command]);
    const r1 = await first.waitStatus('S15-ghost-task-cleaner', 'completed');
    const oldDir = path.join(workDir, 'S15-ghost-task-cleaner', 'attempt-1');
    assert.equal(r1.run_dir, oldDir);
    const oldStatus = readFileSync(path.join(oldDir, 'status.json'), 'utf8');
    assert.equal(JSON.parse(oldStatus).exit_code, 0);
    await first.stop();
    clusters.length = 0;

    const second = await life();
    await second.cliOk(['submit', '--id', 'S15-ghost-task-cleaner', '--command', command]);
    const r2 = await second.waitStatus('S15-ghost-task-cleaner', 'completed');
    // The command really ran twice: once per life, each with its own attempt token.
    const lines = readFileSync(marks, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2, `the command ran ${lines.length} times: ${lines.join(', ')}`);
    assert.notEqual(lines[0], lines[1]);
    assert.match(lines[1]!, /^[0-9a-f]{32}$/);
    assert.equal(r2.attempt_token, lines[1]);
    // Its own directory, named so that attempt readers still find it; the old one untouched.
    assert.equal(r2.run_dir, `${oldDir}.${lines[1]!.slice(0, 12)}`);
    assert.equal(readFileSync(path.join(r2.run_dir!, 'stdout'), 'utf8'), 'ran\n');
    assert.equal(JSON.parse(readFileSync(path.join(r2.run_dir!, 'status.json'), 'utf8')).token, lines[1]);
    assert.equal(readFileSync(path.join(oldDir, 'status.json'), 'utf8'), oldStatus, 'the earlier life left in place');
    assert.ok(existsSync(path.join(oldDir, 'stdout')));
    assert.deepEqual(
      readdirSync(path.dirname(oldDir))
        .filter((d) => d.startsWith('attempt-'))
        .sort(),
      ['attempt-1', path.basename(r2.run_dir!)],
    );
    const events = second.read((s) => s.events('S15-ghost-task-cleaner').map((e) => e.kind));
    assert.ok(events.includes('running'), `events: ${events.join(', ')}`);
  });
});
