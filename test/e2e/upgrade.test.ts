/**
 * A rolling upgrade: tasks start on a worker running bundle A (the built one); a worker running
 * bundle B starts, whose patched change adds a command on the path that the in-flight tasks take
 * next (after each supervise slice); A is stopped. Every task completes on B, with no workflow task
 * failure, one launch, and heartbeat records that go on; new tasks take the patched branch. The
 * same change without patched() would have broken the in-flight tasks (checked by replay).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { startCluster, type Cluster, type WorkerProc } from '../helpers/cluster';

const BUNDLE_A = path.resolve(__dirname, '../../workflow-bundle.js');
const PATCH_ID = 'upgrade-test-extra-step';
const IN_FLIGHT = ['up-1', 'up-2', 'up-3', 'up-4'];
const AFTER = ['up-new-1', 'up-new-2'];

let c: Cluster;
let bundleB: string;
let unpatchedB: string;

/** Bundle A with one more command after each recorded heartbeat: behind patched(), or not. */
function variant(withPatch: boolean): string {
  const code = readFileSync(BUNDLE_A, 'utf8');
  const from = /( *)if \(verdict\.state === 'running'\)\n\s*await db\.recordHeartbeat\(this\.spec\.id, this\.state\.attempt\);\n/;
  assert.match(code, from, 'the bundle no longer has the lines this test extends: update the test with the code');
  const extra = withPatch
    ? `if ((0, workflow_1.patched)(${JSON.stringify(PATCH_ID)})) await db.getAssignment(this.spec.id);`
    : 'await db.getAssignment(this.spec.id);';
  const out = code.replace(
    from,
    (_m, indent: string) =>
      `${indent}if (verdict.state === 'running') {\n${indent}  await db.recordHeartbeat(this.spec.id, this.state.attempt);\n${indent}  ${extra}\n${indent}}\n`,
  );
  const file = path.join(c.dir, withPatch ? 'bundle-b.js' : 'bundle-b-unpatched.js');
  writeFileSync(file, out);
  return file;
}

async function events(id: string) {
  return (await c.client.workflow.getHandle(`task-${id}`).fetchHistory()).events ?? [];
}

type Ev = Awaited<ReturnType<typeof events>>[number];
/** Patch markers of PATCH_ID (the id is in the marker's JSON payload). */
const patchMarkers = (evs: Ev[]) =>
  evs.filter((e) => {
    const m = e.markerRecordedEventAttributes;
    if (m?.markerName !== 'core_patch') return false;
    const data = Object.values(m.details ?? {}).flatMap((p) => (p.payloads ?? []).map((x) => Buffer.from(x.data ?? []).toString()));
    return data.some((d) => d.includes(PATCH_ID));
  }).length;
const activityNames = (evs: Ev[]) =>
  evs.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name!);

before(async () => {
  c = await startCluster({ nodes: 2, slots: 4, config: { lease_s: 3, heartbeat_record_interval: 2 } });
  bundleB = variant(true);
  unpatchedB = variant(false);
});
after(async () => {
  await c?.stop();
});

describe('rolling upgrade', () => {
  test('in-flight tasks move from bundle A to bundle B with its patched step: one launch each, no nondeterminism, heartbeats go on', async () => {
    await c.startWorker('dispatch-db');
    const a: WorkerProc = await c.startWorker('dispatch', { DISPATCH_WORKFLOW_BUNDLE: BUNDLE_A });
    for (const id of IN_FLIGHT) await c.cliOk(['submit', '--id', id, '--command', 'sleep 25']);
    const started = new Map<string, number | null>();
    for (const id of IN_FLIGHT) {
      const row = await c.waitTask(id, (t) => t.status === 'running' && t.last_heartbeat !== null, 'running with a heartbeat recorded');
      started.set(id, row.pid);
    }
    for (const id of IN_FLIGHT) assert.equal(patchMarkers(await events(id)), 0, `${id} ran bundle A so far`);

    await c.startWorker('dispatch', { DISPATCH_WORKFLOW_BUNDLE: bundleB });
    await a.stop();
    const stoppedAt = new Date().toISOString();

    for (const id of AFTER) await c.cliOk(['submit', '--id', id, '--command', 'sleep 6']);
    for (const id of [...IN_FLIGHT, ...AFTER]) {
      const row = await c.waitStatus(id, 'completed', 120_000);
      assert.equal(row.attempts, 1, `${id}: one attempt`);
      assert.deepEqual(readdirSync(path.dirname(row.run_dir!)), ['attempt-1'], `${id}: one launch`);
      if (started.has(id)) assert.equal(row.pid, started.get(id), `${id}: re-attached to the process it launched`);
      const evs = await events(id);
      const failed = evs.filter((e) => e.workflowTaskFailedEventAttributes);
      assert.deepEqual(
        failed.map((e) => e.workflowTaskFailedEventAttributes!.failure?.message),
        [],
        `${id}: no workflow task failed (nondeterminism shows as one)`,
      );
      assert.equal(patchMarkers(evs), 1, `${id} took the patched branch once`);
      const acts = activityNames(evs);
      assert.ok(acts.includes('getAssignment'), `${id}: the patched step ran (${acts.join(', ')})`);
      assert.ok(acts.indexOf('getAssignment') > acts.indexOf('recordHeartbeat'), `${id}: the step follows a recorded heartbeat`);
    }
    // Heartbeat records went on across the cutover: each in-flight row was refreshed after A stopped,
    // and none was reaped as stale.
    for (const id of IN_FLIGHT) {
      const hbs = c.read((s) => s.events(id)).map((e) => e.kind);
      assert.ok(!hbs.some((k) => k.startsWith('reap')), `${id} was not reaped: ${hbs.join(', ')}`);
    }
    const rows = c.read((s) => IN_FLIGHT.map((id) => s.getTask(id)!));
    for (const r of rows) assert.ok(r.last_heartbeat! > stoppedAt || r.finished_at! > stoppedAt, `${r.id}: recorded after A stopped`);
    c.assertBooks();
  });

  test('the same change without patched() would have broken the in-flight tasks: their histories fail to replay on it', async () => {
    const history = await c.client.workflow.getHandle(`task-${IN_FLIGHT[0]}`).fetchHistory();
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: { codePath: unpatchedB }, replayName: 'upgrade-unpatched' }, history),
      (e: Error) => /DeterminismViolation|Nondeterminism|TMPRL1100/i.test(`${e.name} ${e.message}`),
    );
    await Worker.runReplayHistory({ workflowBundle: { codePath: bundleB }, replayName: 'upgrade-patched' }, history);
  });
});
