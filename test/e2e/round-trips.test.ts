/**
 * Round trips per task, counted from real histories: a command that ends before its launch reports
 * it needs three workflow tasks and two activity tasks (register; booked running and ended in one
 * step), plus the local launch; a longer one adds mark running, a supervise slice that completes
 * asynchronously through the worker's watcher, and the finish. Both book the same rows.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster } from '../helpers/cluster';
import { activityTypes, countRoundTrips } from '../helpers/round-trips';

let c: Cluster;

before(async () => {
  c = await startCluster({ nodes: 1, slots: 2, config: { lease_s: 3, heartbeat_record_interval: 30 } });
  await c.startWorker();
});
after(async () => {
  await c?.stop();
});

/** The run's history once it has closed: the row is booked by an activity, before the last workflow task. */
async function history(id: string) {
  const h = c.client.workflow.getHandle(`task-${id}`);
  await h.result().catch(() => undefined);
  return (await h.fetchHistory()).events ?? [];
}

describe('round trips per task', () => {
  test('a command that ends at once is booked running and ended in one step: 3 workflow tasks, 2 activity tasks', async () => {
    await c.cliOk(['submit', '--id', 'rt-true', '--command', 'true']);
    const row = await c.waitStatus('rt-true', 'completed');
    assert.ok(row.started_at && row.pid, 'the row records when and which process ran');
    const ev = await history('rt-true');
    assert.deepEqual(countRoundTrips(ev), { workflow_tasks: 3, activity_tasks: 2, local_activities: 1 });
    assert.deepEqual(activityTypes(ev), ['registerTask', 'finishLaunched']);
    const show = JSON.parse(await c.cliOk(['show', 'rt-true', '--json'])) as {
      attempt_history: { attempt: number; ended_by: string; started_at: string | null; exit_code: number | null }[];
      events: { kind: string }[];
    };
    assert.equal(show.attempt_history.length, 1);
    assert.equal(show.attempt_history[0]!.ended_by, 'exited');
    assert.ok(show.attempt_history[0]!.started_at);
    assert.deepEqual(
      show.events.map((e) => e.kind).filter((k) => k === 'running' || k === 'completed'),
      ['running', 'completed'],
    );
  });

  test('a failing command that ends at once is retried within its budget, each attempt in one step', async () => {
    await c.cliOk(['submit', '--id', 'rt-fail', '--command', 'exit 3']);
    const row = await c.waitStatus('rt-fail', 'failed');
    assert.equal(row.exit_code, 3);
    const ev = await history('rt-fail');
    const types = activityTypes(ev);
    assert.equal(types.filter((t) => t === 'finishLaunched').length, row.attempts, 'one finishLaunched per attempt');
    assert.ok(!types.includes('supervise'), 'nothing to supervise');
  });

  test('a longer command is marked running, supervised through the watcher, then finished', async () => {
    await c.cliOk(['submit', '--id', 'rt-sleep', '--command', 'sleep 2']);
    await c.waitStatus('rt-sleep', 'running');
    await c.waitStatus('rt-sleep', 'completed', 30_000);
    const ev = await history('rt-sleep');
    assert.deepEqual(activityTypes(ev), ['registerTask', 'supervise', 'markRunning', 'finishAttempt']);
    const rt = countRoundTrips(ev);
    assert.equal(rt.activity_tasks, 4);
    assert.ok(rt.workflow_tasks >= 4 && rt.workflow_tasks <= 5, `workflow tasks ${rt.workflow_tasks}`);
  });
});
