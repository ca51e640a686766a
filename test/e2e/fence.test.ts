/**
 * Self-fencing: a node cut off from its supervisor stops its tasks after fence_after, and a task
 * on an unreachable node runs again elsewhere only after its first copy is gone, which the test
 * reads from the marks the two copies write themselves, not from dispatch's records.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MARKER, marks } from '../helpers/marks';
import { startCluster, sleep, type Cluster } from '../helpers/cluster';
import { isAlive, listPids } from '../helpers/proc';

const FENCE_S = 12;
let c: Cluster;

before(async () => {
  c = await startCluster({
    nodes: 2,
    slots: 1,
    config: {
      lease_s: 3,
      heartbeat_record_interval: 2,
      kill_grace: 1,
      fence_after: FENCE_S,
      outage_tolerance: 6,
      ghost_action: 'requeue',
      probe_interval: 2,
      check_interval: 3,
    },
  });
  await c.startWorker();
  await c.cliOk(['schedules', 'apply']);
});
after(async () => {
  await c?.stop();
});

/** The watchdog process of an attempt directory (its argv names the directory). */
function watchdogOf(dir: string): number | null {
  for (const pid of listPids()) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv.includes('dispatch-watchdog') && argv.includes(dir)) return pid;
    } catch {
      /* gone */
    }
  }
  return null;
}

function sessionOf(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(s.slice(s.lastIndexOf(') ') + 2).split(' ')[3]);
}

describe('self-fencing', () => {
  test('a worker SIGKILLed mid-task fences nothing: the new worker re-attaches long before fence_after', async () => {
    await c.cliOk(['submit', '--id', 'wk-1', '--command', 'sleep 20']);
    const running = await c.waitStatus('wk-1', 'running');
    const wd = watchdogOf(running.run_dir!);
    assert.ok(wd, 'the attempt has a watchdog');
    assert.notEqual(sessionOf(wd), sessionOf(running.pid!), 'the watchdog lives outside the task session');
    c.workers[0]!.kill9();
    await sleep(1000);
    await c.startWorker();
    const row = await c.waitStatus('wk-1', 'completed', 90_000);
    assert.equal(row.attempts, 1);
    assert.equal(row.pid, running.pid);
    assert.equal(existsSync(path.join(row.run_dir!, 'fenced')), false, 'not fenced');
    assert.doesNotMatch(readFileSync(path.join(row.run_dir!, 'status.json'), 'utf8'), /fenced_at/);
    // The watchdog sees the end on its next tick, which may come after the books say completed.
    const log = path.join(row.run_dir!, 'watchdog.log');
    const until = Date.now() + 30_000;
    while (!existsSync(log) && Date.now() < until) await sleep(200);
    assert.match(readFileSync(log, 'utf8'), /ended: the task exited/);
  });

  test('a task that SIGKILLs its own process group does not take its watchdog with it', async () => {
    await c.cliOk(['submit', '--id', 'suicide-1', '--command', 'while [ ! -e "$DISPATCH_DIR/go" ]; do sleep 0.1; done; kill -KILL 0']);
    const running = await c.waitStatus('suicide-1', 'running');
    const wd = watchdogOf(running.run_dir!);
    assert.ok(wd);
    writeFileSync(path.join(running.run_dir!, 'go'), '');
    // The group is gone; the watchdog notices on its own and records why it ended: it was not killed.
    const until = Date.now() + 30_000;
    while (!existsSync(path.join(running.run_dir!, 'watchdog.log')) && Date.now() < until) await sleep(200);
    assert.match(readFileSync(path.join(running.run_dir!, 'watchdog.log'), 'utf8'), /ended: the runner is gone/);
    assert.equal(isAlive(running.pid!), false);
    await c.cli(['cancel', 'suicide-1']);
  });

  test('a node cut off: its task fences itself; the requeued attempt on the other node starts only after the first copy is gone', async () => {
    await c.cliOk(['submit', '--id', 'part-1', '--command', MARKER]);
    const first = await c.waitStatus('part-1', 'running');
    const node = c.nodes.find((n) => n.name === first.node)!;
    const firstDir = first.run_dir!;
    await sleep(1000);
    const cutAt = Date.now();
    await node.stop(); // the listener and every connection: a partition; the task keeps running
    try {
      const second = await c.waitTask('part-1', (t) => t.attempts === 2 && t.status === 'running', 'running again', 180_000);
      assert.notEqual(second.node, first.node);
      const secondDir = second.run_dir!;
      // Wait for the second copy's first mark.
      const until = Date.now() + 30_000;
      while (!existsSync(path.join(secondDir, 'marks')) && Date.now() < until) await sleep(100);
      const firstMarks = marks(firstDir);
      const secondMarks = marks(secondDir);
      const lastOfFirst = Math.max(...firstMarks);
      const firstOfSecond = Math.min(...secondMarks);
      assert.ok(lastOfFirst < firstOfSecond, `the first copy wrote until ${lastOfFirst}, the second began at ${firstOfSecond}`);
      // The first copy stopped itself about fence_after after contact ended, not before.
      assert.ok(lastOfFirst - cutAt >= (FENCE_S - 4) * 1000, `fenced ${lastOfFirst - cutAt} ms after the cut`);
      assert.equal(isAlive(first.pid!), false);
      const st = JSON.parse(readFileSync(path.join(firstDir, 'status.json'), 'utf8'));
      assert.equal(st.state, 'exited');
      assert.equal(typeof st.fenced_at, 'number');
      const fenced = JSON.parse(readFileSync(path.join(firstDir, 'fenced'), 'utf8'));
      assert.equal(fenced.fence_after_s, FENCE_S);
      // While waiting, the reaper said so.
      const waited = c.read((s) => s.reaperRuns(200)).some((r) => /"fence_waiting":\[\{"id":"part-1"/.test(r.report));
      assert.ok(waited, 'a reaper report lists part-1 as waiting for its fence');
    } finally {
      await node.start();
    }
    // Back online: the recovery finds nothing left to kill and books the fenced attempt. Its bound
    // is the probe schedule's cadence plus a recovery command's 30 s timeout, twice over: a CI run
    // here saw the probe schedule pause 32 s and the first recovery's listing time out on a
    // just-restarted sshd, so the next probe round is the one that books it.
    await c.waitTask('part-1', (t) => t.fenced_attempt === 1, 'fenced attempt booked', 150_000);
    const tasks = JSON.parse(await c.cliOk(['tasks', '--json']));
    const row = tasks.find((t: { id: string }) => t.id === 'part-1');
    assert.equal(row.fenced_attempt, 1);
    assert.ok(row.fenced_at);
    const kinds = c.read((s) => s.events('part-1')).map((e) => e.kind);
    assert.ok(kinds.includes('attempt_fenced'), kinds.join(', '));
    // dispatch show names how each attempt ended: the first fenced itself.
    const shown = JSON.parse(await c.cliOk(['show', 'part-1', '--json'])) as { attempt_history: { attempt: number; ended_by: string }[] };
    assert.equal(shown.attempt_history.find((a) => a.attempt === 1)?.ended_by, 'fenced');
    await c.cliOk(['cancel', 'part-1']);
    c.assertBooks();
  });
});
