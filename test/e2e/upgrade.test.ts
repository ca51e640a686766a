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
import { execFileSync } from 'node:child_process';
import { Worker } from '@temporalio/worker';
import { sleep, startCluster, type Cluster, type WorkerProc } from '../helpers/cluster';
import { temporalBin } from '../helpers/temporal';

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
  // The recorded heartbeat of a running slice: the extra step goes right after it.
  const from = /( *)await db\.recordHeartbeat\(this\.spec\.id, this\.state\.attempt\);\n/;
  assert.match(code, from, 'the bundle no longer has the lines this test extends: update the test with the code');
  const extra = withPatch
    ? `if ((0, workflow_1.patched)(${JSON.stringify(PATCH_ID)})) await db.getAssignment(this.spec.id);`
    : 'await db.getAssignment(this.spec.id);';
  const out = code.replace(
    from,
    (_m, indent: string) => `${indent}await db.recordHeartbeat(this.spec.id, this.state.attempt);\n${indent}${extra}\n`,
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

interface Rollout {
  /** Starts the worker of bundle A (or B), on the `dispatch` queue. */
  startA(): Promise<WorkerProc>;
  startB(): Promise<WorkerProc>;
  /** Between starting B and stopping A (Worker Versioning: make B the current version). */
  cutover?(): Promise<void>;
}

/** Runs `inFlight` tasks across a rollout from A to B, then `later` tasks on B, and checks every promise. */
async function rollingUpgrade(prefix: string, r: Rollout): Promise<void> {
  const inFlight = IN_FLIGHT.map((id) => `${prefix}${id}`);
  const later = AFTER.map((id) => `${prefix}${id}`);
  const a = await r.startA();
  for (const id of inFlight) await c.cliOk(['submit', '--id', id, '--command', 'sleep 25']);
  const started = new Map<string, number | null>();
  for (const id of inFlight) {
    const row = await c.waitTask(id, (t) => t.status === 'running' && t.last_heartbeat !== null, 'running with a heartbeat recorded');
    started.set(id, row.pid);
  }
  for (const id of inFlight) assert.equal(patchMarkers(await events(id)), 0, `${id} ran bundle A so far`);

  const b = await r.startB();
  await r.cutover?.();
  await a.stop();
  const stoppedAt = new Date().toISOString();

  for (const id of later) await c.cliOk(['submit', '--id', id, '--command', 'sleep 6']);
  for (const id of [...inFlight, ...later]) {
    const row = await c.waitStatus(id, 'completed', 120_000);
    assert.equal(row.attempts, 1, `${id}: one attempt`);
    assert.deepEqual(readdirSync(path.dirname(row.run_dir!)), ['attempt-1'], `${id}: one launch`);
    if (started.has(id)) {
      assert.equal(row.pid, started.get(id), `${id}: re-attached to the process it launched`);
      // Heartbeat records went on across the cutover, and nothing was reaped as stale.
      assert.ok(row.last_heartbeat! > stoppedAt, `${id}: last_heartbeat ${row.last_heartbeat} recorded after A stopped (${stoppedAt})`);
      const kinds = c.read((s) => s.events(id)).map((e) => e.kind);
      assert.ok(!kinds.some((k) => k.startsWith('reap')), `${id} was not reaped: ${kinds.join(', ')}`);
    }
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
  c.assertBooks();
  await b.stop();
}

function temporalCli(args: string[]): string {
  return execFileSync(temporalBin(), [...args, '--address', c.temporal.address], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('rolling upgrade', () => {
  test('unversioned workers: in-flight tasks move from bundle A to bundle B with its patched step: one launch each, no nondeterminism, heartbeats go on', async () => {
    await c.startWorker('dispatch-db');
    await rollingUpgrade('', {
      startA: () => c.startWorker('dispatch', { DISPATCH_WORKFLOW_BUNDLE: BUNDLE_A }),
      startB: () => c.startWorker('dispatch', { DISPATCH_WORKFLOW_BUNDLE: bundleB }),
    });
  });

  test('the same change without patched() would have broken the in-flight tasks: their histories fail to replay on it', async () => {
    const history = await c.client.workflow.getHandle(`task-${IN_FLIGHT[0]}`).fetchHistory();
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: { codePath: unpatchedB }, replayName: 'upgrade-unpatched' }, history),
      (e: Error) => /DeterminismViolation|Nondeterminism|TMPRL1100/i.test(`${e.name} ${e.message}`),
    );
    await Worker.runReplayHistory({ workflowBundle: { codePath: bundleB }, replayName: 'upgrade-patched' }, history);
  });

  test('Worker Versioning (--build-id, auto-upgrade): B becomes the current version, in-flight tasks move to it and complete on it', async () => {
    // A new version's pollers reach the server a moment after the worker says it polls: until the
    // server has seen them on every task queue of the current version, it refuses the switch.
    const setCurrent = async (build: string) => {
      const until = Date.now() + 60_000;
      for (;;) {
        try {
          return temporalCli([
            'worker',
            'deployment',
            'set-current-version',
            '--deployment-name',
            'dispatch',
            '--build-id',
            build,
            '--yes',
          ]);
        } catch (e) {
          if (Date.now() > until) throw e;
          await sleep(500);
        }
      }
    };
    await rollingUpgrade('v-', {
      startA: async () => {
        const w = await c.startWorker('dispatch', { DISPATCH_WORKFLOW_BUNDLE: BUNDLE_A }, ['--build-id', 'build-a']);
        await setCurrent('build-a');
        return w;
      },
      startB: () => c.startWorker('dispatch', { DISPATCH_WORKFLOW_BUNDLE: bundleB }, ['--build-id', 'build-b']),
      cutover: async () => {
        await setCurrent('build-b');
      },
    });
    for (const id of [...IN_FLIGHT, ...AFTER]) {
      const d = await c.client.workflow.getHandle(`task-v-${id}`).describe();
      const v = d.raw.workflowExecutionInfo?.versioningInfo;
      assert.equal(v?.deploymentVersion?.buildId, 'build-b', `task-v-${id} ended on build-b`);
    }
  });
});
