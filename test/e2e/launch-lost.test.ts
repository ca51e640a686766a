/**
 * A launch whose answer is lost to a partition: the node started the process, dispatch never heard.
 * The attempt is given up only once that process has fenced itself, so no second copy overlaps it
 * (the chaos suite found the overlap: the lost launch was booked launch-failed and requeued at
 * once). With fencing off nothing bounds the first copy, and the task fails instead of running again.
 * The node's sshd runs every command through a wrapper that, once armed, runs the launch and then
 * withholds its answer until the test cuts the node off.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MARKER, marks } from '../helpers/marks';
import { nodeAddArgs, startCluster, sleep, type Cluster } from '../helpers/cluster';
import { startSshd, type SshNode } from '../helpers/sshd';
import { ShellPool } from '../../src/shell/pool';
import { NodeUnreachableError } from '../../src/common/errors';

// Longer than launch_timeout, as by default (600 s against 300 s): the lost copy outlives the launch tries.
const FENCE_S = 40;
const KILL_GRACE_S = 1;
const LAUNCH_TIMEOUT_S = 30;
const CONFIG = {
  lease_s: 3,
  heartbeat_record_interval: 2,
  kill_grace: KILL_GRACE_S,
  fence_after: FENCE_S,
  launch_timeout: LAUNCH_TIMEOUT_S,
  ghost_action: 'requeue',
  // The node stays online in the books: the workflow's own path is what this file tests (the
  // reaper's node-offline gate is tested in fence.test.ts).
  probe_interval: 3600,
  check_interval: 3600,
};
let c: Cluster;
let lossy: SshNode;
let good: SshNode;
let arm: string;
let fired: string;

before(async () => {
  c = await startCluster({ nodes: 0, config: CONFIG });
  arm = path.join(c.dir, 'arm-lost-launch');
  fired = path.join(c.dir, 'launch-answer-withheld');
  const wrapper = path.join(c.dir, 'lossy-wrapper.sh');
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      'case "$SSH_ORIGINAL_COMMAND" in *dispatch-launch*)',
      `  if [ -e '${arm}' ]; then rm -f '${arm}'`,
      `    /bin/sh -c "$SSH_ORIGINAL_COMMAND" > '${fired}.out' 2>&1; touch '${fired}'; sleep 120; exit 0`,
      '  fi ;;',
      'esac',
      'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"',
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
  lossy = await startSshd('lossy', { baseDir: c.dir, forceCommand: wrapper });
  good = await startSshd('good', { baseDir: c.dir });
  c.nodes.push(lossy, good);
  await c.cliOk(nodeAddArgs(lossy, 1));
  await c.cliOk(nodeAddArgs(good, 1));
  await c.startWorker();
});
after(async () => {
  await c?.stop();
});

async function waitFile(file: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Submits a task that lands on the lossy node, and cuts the node off once its launch has run there. */
async function loseLaunch(id: string): Promise<{ firstDir: string; cutAt: number }> {
  await c.cliOk(['node', 'drain', 'good']);
  writeFileSync(arm, '');
  await c.cliOk(['submit', '--id', id, '--command', MARKER]);
  await waitFile(fired, 60_000);
  const firstDir = path.join(lossy.workDir, id, 'attempt-1');
  await waitFile(path.join(firstDir, 'marks'), 10_000);
  await lossy.stop(); // the launch's answer never leaves the node
  const cutAt = Date.now();
  rmSync(fired);
  await c.cliOk(['node', 'drain', 'lossy']);
  await c.cliOk(['node', 'resume', 'good']);
  return { firstDir, cutAt };
}

describe('a launch whose answer is lost', () => {
  test('a command whose connection drops before it reports its exit is an unreachable node, not a failed command', async () => {
    const row = c.read((s) => s.getNode('good'))!;
    const pool = new ShellPool();
    try {
      const pending = pool.get(row).exec('sleep 20', { timeoutMs: 60_000 });
      await sleep(1000);
      await good.stop();
      await assert.rejects(
        pending,
        (e: unknown) => e instanceof NodeUnreachableError && /connection lost before the command finished/.test(e.message),
      );
    } finally {
      pool.closeAll();
      await good.start();
    }
  });

  test('the attempt is given up only after its fence has fallen: the second copy starts after the first is gone', async () => {
    const { firstDir, cutAt } = await loseLaunch('lost-1');
    try {
      const second = await c.waitTask('lost-1', (t) => t.attempts === 2 && t.status === 'running', 'running again', 180_000);
      assert.equal(second.node, 'good');
      const secondDir = second.run_dir!;
      await waitFile(path.join(secondDir, 'marks'), 30_000);
      const lastOfFirst = Math.max(...marks(firstDir));
      const firstOfSecond = Math.min(...marks(secondDir));
      assert.ok(lastOfFirst < firstOfSecond, `the first copy wrote until ${lastOfFirst}, the second began at ${firstOfSecond}`);
      // The first copy stopped itself about fence_after after its launch, not before.
      assert.ok(lastOfFirst - cutAt >= (FENCE_S - 4) * 1000, `fenced ${lastOfFirst - cutAt} ms after the cut`);
      // Its launch tried for launch_timeout, then waited out fence_after + kill_grace + the margin.
      assert.ok(
        firstOfSecond - cutAt >= (LAUNCH_TIMEOUT_S - 5 + FENCE_S + KILL_GRACE_S + 30) * 1000,
        `second copy ${firstOfSecond - cutAt} ms after the cut`,
      );
      const st = JSON.parse(readFileSync(path.join(firstDir, 'status.json'), 'utf8'));
      assert.equal(typeof st.fenced_at, 'number', 'the first copy fenced itself');
      const events = c.read((s) => s.events('lost-1'));
      const lost = events.find((e) => e.kind === 'launch_lost');
      assert.ok(lost, events.map((e) => e.kind).join(', '));
      assert.equal(lost.attempt, 1);
      assert.match(lost.detail ?? '', /"fence_after_s":40/);
      const requeued = events.find((e) => e.kind === 'requeued' && e.attempt === 1);
      assert.match(requeued?.detail ?? '', /given up once its fence had fallen/);
    } finally {
      await lossy.start();
    }
    await c.cliOk(['cancel', 'lost-1']);
    await c.waitTask('lost-1', (t) => t.status === 'cancelled', 'cancelled');
    c.assertBooks();
  });

  test('with fencing off, a lost launch fails the task instead of running a second copy', async () => {
    await c.cliOk(['node', 'resume', 'lossy']);
    await c.workers[0]!.stop();
    writeFileSync(c.configPath, JSON.stringify({ ...CONFIG, fence_after: 0 }, null, 2));
    await c.startWorker();
    const { firstDir } = await loseLaunch('lost-off');
    try {
      const row = await c.waitStatus('lost-off', 'failed', 120_000);
      assert.equal(row.attempts, 1, 'never run again');
      assert.match(row.error ?? '', /fencing is off, so it is not run again/);
      assert.ok(marks(firstDir).length > 0);
    } finally {
      // Nothing fences this copy: the test stops it (its group is its session leader's pid).
      const st = JSON.parse(readFileSync(path.join(firstDir, 'status.json'), 'utf8')) as { pid: number };
      try {
        process.kill(-st.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await lossy.start();
    }
    c.assertBooks();
  });
});
