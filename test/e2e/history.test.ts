/**
 * Bounded history: with small settings a task continues as new while queued and while running,
 * and what signals told a run (a cancel reason, the reaper's reap) crosses to the next run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { startCluster, sleep, type Cluster } from '../helpers/cluster';
import { isAlive } from '../helpers/proc';

let c: Cluster;

before(async () => {
  c = await startCluster({
    nodes: 1,
    slots: 2,
    config: { queue_poll_interval: 1, history_limit: 30, lease_s: 3, heartbeat_record_interval: 1 },
  });
  await c.startWorker();
});
after(async () => {
  await c?.stop();
});

/** The run id of the current run of task-<id>, and whether it was continued from an earlier one. */
async function currentRun(id: string): Promise<{ runId: string; continued: boolean }> {
  const h = c.client.workflow.getHandle(`task-${id}`);
  const d = await h.describe();
  const history = await c.client.workflow.getHandle(`task-${id}`, d.runId).fetchHistory();
  const start = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  return { runId: d.runId, continued: Boolean(start?.continuedExecutionRunId) };
}

/** Waits until task-<id> has continued as new `n` times after `since` (a run id), or throws. */
async function continuedSince(id: string, since: string | null, timeoutMs = 60_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await currentRun(id);
    if (r.continued && r.runId !== since) return r.runId;
    if (Date.now() > until) throw new Error(`task-${id} did not continue as new (run ${r.runId})`);
    await sleep(300);
  }
}

describe('bounded history', () => {
  test('a queued task continues as new while it waits, then runs once its dependency completes', async () => {
    await c.cliOk(['submit', '--id', 'q-wait', '--depends-on', 'q-dep', '--command', 'echo ran']);
    await c.waitStatus('q-wait', 'queued');
    const first = await continuedSince('q-wait', null);
    await continuedSince('q-wait', first);
    await c.cliOk(['submit', '--id', 'q-dep', '--command', 'true']);
    const row = await c.waitStatus('q-wait', 'completed', 60_000);
    assert.equal(row.attempts, 1);
  });

  test('a cancel reason sent before a continue-as-new is what the cancel books', async () => {
    await c.cliOk(['submit', '--id', 'q-cancel', '--depends-on', 'never-submitted', '--command', 'true']);
    await c.waitStatus('q-cancel', 'queued');
    const before = (await currentRun('q-cancel')).runId;
    await c.client.workflow.getHandle('task-q-cancel').signal('cancelReason', 'straddles a continue-as-new');
    await continuedSince('q-cancel', before);
    await c.client.workflow.getHandle('task-q-cancel').cancel();
    const row = await c.waitStatus('q-cancel', 'cancelled');
    assert.match(row.error ?? '', /cancelled: straddles a continue-as-new/);
  });

  test('a running task continues as new between supervise slices, keeps its one process and completes', async () => {
    await c.cliOk(['submit', '--id', 'r-ok', '--command', 'sleep 8']);
    const running = await c.waitStatus('r-ok', 'running');
    await continuedSince('r-ok', null);
    const row = await c.waitStatus('r-ok', 'completed', 60_000);
    assert.equal(row.attempts, 1);
    assert.equal(row.pid, running.pid, 'the continued run re-attached to the same process');
    assert.deepEqual(readdirSync(path.dirname(row.run_dir!)), ['attempt-1'], 'one launch');
  });

  test("the reaper's reap signal crosses a continue-as-new: the cancel that follows kills but does not book the row", async () => {
    await c.cliOk(['submit', '--id', 'r-reap', '--command', 'sleep 600']);
    const running = await c.waitStatus('r-reap', 'running');
    const before = (await currentRun('r-reap')).runId;
    await c.client.workflow.getHandle('task-r-reap').signal('reap', { rule: 'stale-heartbeat' });
    await continuedSince('r-reap', before);
    await c.client.workflow.getHandle('task-r-reap').cancel();
    const state = await c.client.workflow
      .getHandle('task-r-reap')
      .result()
      .then(
        () => 'completed',
        () => 'ended',
      );
    assert.equal(state, 'ended');
    await sleep(500);
    assert.equal(isAlive(running.pid!), false, 'the process was killed');
    assert.equal(c.task('r-reap')!.status, 'running', 'the workflow left the booking to the reaper');
    // The reaper books it (orphaned: the workflow is closed and the row has not changed for 2 leases).
    await sleep(7_000);
    const report = JSON.parse(await c.cliOk(['reap', '--json', '--ids', 'r-reap']));
    assert.deepEqual(report.cleaned, ['r-reap']);
    assert.equal(c.task('r-reap')!.status, 'failed');
  });
});
