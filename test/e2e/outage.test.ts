/**
 * Healthy tasks ride through the control plane: a Temporal outage longer than fence_after, and a
 * supervising worker frozen (SIGSTOP) past fence_after, stop no task whose node a worker can reach.
 * Each asserts from the marks the task writes itself and from its attempt directory, not from
 * dispatch's books alone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { markerFor, marks, longestGapMs } from '../helpers/marks';
import { startCluster, sleep, type Cluster } from '../helpers/cluster';

// Fifteen leases: a frozen worker's open polls may each take a retried slice and hold it for a lease
// before a live worker gets it (Temporal hands tasks to waiting polls; issue 24 item 4).
const FENCE_S = 30;
const LEASE_S = 2;
let c: Cluster;

before(async () => {
  c = await startCluster({
    nodes: 1,
    slots: 2,
    config: {
      lease_s: LEASE_S,
      heartbeat_record_interval: 4,
      kill_grace: 1,
      fence_after: FENCE_S,
      outage_tolerance: 120,
      probe_interval: 2,
      check_interval: 3,
    },
  });
  // The books' worker apart, so that it can be held back while the task's worker runs on.
  await c.startWorker('dispatch');
  await c.startWorker('dispatch-db');
  await c.cliOk(['schedules', 'apply']);
});
after(async () => {
  await c?.stop();
});

describe('riding through the control plane', () => {
  test('Temporal stopped for longer than fence_after and started again on the same database: the task runs on as its one attempt', async () => {
    await c.cliOk(['submit', '--id', 'outage-1', '--command', markerFor(85)]);
    const running = await c.waitStatus('outage-1', 'running');
    await sleep(3000);
    const outageS = 1.5 * FENCE_S;
    await c.temporal.stop();
    const stoppedAt = Date.now();
    try {
      await sleep(outageS * 1000);
    } finally {
      await c.temporal.restart();
    }
    const restartedAt = Date.now();
    const row = await c.waitStatus('outage-1', 'completed', 180_000);
    assert.equal(row.attempts, 1, 'no second attempt');
    assert.equal(row.pid, running.pid, 'the same process');
    const dir = running.run_dir!;
    assert.equal(existsSync(path.join(dir, 'fenced')), false, 'not fenced');
    const m = marks(dir);
    assert.ok(m.some((t) => t > stoppedAt + 500) && m.some((t) => t > restartedAt), 'it wrote marks through the outage and after');
    assert.ok(longestGapMs(m) < 3000, `the task never stopped (longest gap between marks ${longestGapMs(m)} ms)`);
    assert.ok(m[m.length - 1]! - m[0]! >= 80_000, 'it ran to its own end');
  });

  test('the supervising worker frozen past fence_after: another takes over, nothing fences, nothing runs twice', async () => {
    const other = await c.startWorker('dispatch');
    await c.cliOk(['submit', '--id', 'frozen-1', '--command', markerFor(70)]);
    const running = await c.waitStatus('frozen-1', 'running');
    await sleep(2000);
    const d = await c.client.workflow.getHandle('task-frozen-1').describe();
    const who = d.raw.pendingActivities?.find((a) => a.activityType?.name === 'supervise')?.lastWorkerIdentity ?? '';
    const pid = Number(/^(\d+)@/.exec(who)?.[1]);
    const frozen = c.workers.find((w) => w.proc.pid === pid);
    assert.ok(frozen, `the supervising worker (${who}) is one of ours`);
    frozen.proc.kill('SIGSTOP');
    const frozenAt = Date.now();
    let tookOverMs: number | null = null;
    try {
      while (Date.now() - frozenAt < (FENCE_S + 5) * 1000) {
        const p = (await c.client.workflow.getHandle('task-frozen-1').describe()).raw.pendingActivities?.find(
          (a) => a.activityType?.name === 'supervise',
        );
        if (tookOverMs === null && p?.lastWorkerIdentity && p.lastWorkerIdentity !== who && p.lastHeartbeatTime)
          tookOverMs = Date.now() - frozenAt;
        await sleep(250);
      }
    } finally {
      frozen.proc.kill('SIGCONT');
    }
    console.log(`takeover from the frozen worker: ${tookOverMs} ms (lease ${LEASE_S} s)`);
    const row = await c.waitStatus('frozen-1', 'completed', 120_000);
    assert.equal(row.attempts, 1);
    assert.equal(existsSync(path.join(running.run_dir!, 'fenced')), false, 'not fenced');
    assert.ok(longestGapMs(marks(running.run_dir!)) < 3000, 'the task never stopped');
    assert.ok(other.proc.exitCode === null, 'the other worker is alive');
  });

  test('a backlog between two slices longer than fence_after (the books worker held back): the task runs on', async () => {
    await c.cliOk(['submit', '--id', 'backlog-1', '--command', markerFor(70)]);
    const running = await c.waitStatus('backlog-1', 'running');
    await sleep(2000);
    // Every slice ends after heartbeat_record_interval and waits for the books (recordHeartbeat on
    // dispatch-db) before the next one starts: nothing supervises the task in between.
    const db = c.workers[1]!;
    db.proc.kill('SIGSTOP');
    try {
      await sleep(1.5 * FENCE_S * 1000);
    } finally {
      db.proc.kill('SIGCONT');
    }
    const row = await c.waitStatus('backlog-1', 'completed', 120_000);
    assert.equal(row.attempts, 1);
    assert.equal(existsSync(path.join(running.run_dir!, 'fenced')), false, 'not fenced');
    assert.ok(longestGapMs(marks(running.run_dir!)) < 3000, 'the task never stopped');
  });
});
