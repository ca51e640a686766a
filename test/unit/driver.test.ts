/** The one sweep driver, with recording steps: batching, the stop rule, the merge, one notification. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { driveSweep, mergeReports, type SweepSteps } from '../../src/reaper/driver';
import type { GhostPlan, SweepOptions, SweepPlan, SweepReport } from '../../src/reaper/sweep';

const OPTIONS: SweepOptions = {
  dryRun: false,
  ids: null,
  project: null,
  staleS: 900,
  thresholdHours: 2,
  maxAttempts: 3,
  action: 'fail',
  autoKill: true,
  batch: 3,
  leaseS: 30,
  killGraceS: 10,
  notifyUrl: 'http://127.0.0.1:9/hook',
  fenceAfterS: 600,
  heartbeatRecordS: 300,
};

function ghost(id: string): GhostPlan {
  return {
    id,
    rule: 'orphaned',
    seen: { status: 'running', attempts: 1, updated_at: null, last_heartbeat: null },
    node: null,
    pid: null,
    identity: null,
    legacy: true,
    workflow: 'missing',
    canRequeue: false,
  };
}

/** Ghosts g0..g(n-1); `stuck` ones are never cleaned (their row keeps being planned first). */
function fleet(n: number, o: Partial<SweepOptions> = {}, stuck: string[] = []) {
  let left = Array.from({ length: n }, (_, i) => `g${i}`);
  const calls: string[] = [];
  const options = { ...OPTIONS, ...o };
  const steps: SweepSteps = {
    async plan() {
      calls.push('plan');
      return { timestamp: `t${calls.length}`, options, ghosts: left.slice(0, options.batch).map(ghost) } as SweepPlan;
    },
    async stopWorkflows() {
      calls.push('stop');
      return {};
    },
    async kill() {
      calls.push('kill');
      return {};
    },
    async apply(plan) {
      calls.push('apply');
      const cleaned = options.dryRun ? [] : plan.ghosts.map((g) => g.id).filter((id) => !stuck.includes(id));
      left = left.filter((id) => !cleaned.includes(id));
      const skipped = plan.ghosts.filter((g) => stuck.includes(g.id)).map((g) => ({ id: g.id, reason: 'row changed' }));
      const report: SweepReport = {
        ghosts_found: plan.ghosts.length,
        cleaned,
        skipped,
        drift_fixed: [],
        dry_run: options.dryRun,
        timestamp: plan.timestamp,
        ghosts: plan.ghosts.map((g) => ({ id: g.id, rule: g.rule, node: null, pid: null, kill: 'not-signalled', action: 'fail' })),
        requeued: [],
        locks_released: 0,
      };
      return report;
    },
    async notify() {
      calls.push('notify');
    },
  };
  return { steps, calls };
}

describe('driveSweep', () => {
  test('cleans more ghosts than one batch holds, batch after batch, and notifies once with the merged report', async () => {
    const { steps, calls } = fleet(7);
    const r = await driveSweep(steps);
    assert.deepEqual(r.cleaned, ['g0', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6']);
    assert.equal(r.ghosts_found, 7);
    assert.equal(r.timestamp, 't1', 'the report is timed by its first batch');
    assert.deepEqual(calls, ['plan', 'stop', 'kill', 'apply', 'plan', 'stop', 'kill', 'apply', 'plan', 'stop', 'kill', 'apply', 'notify']);
  });

  test('a dry run plans one batch, stops no workflow and notifies nobody', async () => {
    const { steps, calls } = fleet(7, { dryRun: true });
    const r = await driveSweep(steps);
    assert.equal(r.ghosts_found, 3);
    assert.deepEqual(calls, ['plan', 'kill', 'apply']);
  });

  test('a full batch that cleaned nothing ends the sweep instead of planning the same rows again', async () => {
    const { steps, calls } = fleet(3, {}, ['g0', 'g1', 'g2']);
    const r = await driveSweep(steps);
    assert.equal(r.cleaned.length, 0);
    assert.equal(r.skipped.length, 3);
    assert.deepEqual(calls, ['plan', 'stop', 'kill', 'apply']);
  });

  test('no ghosts: one plan and one apply (the books are still recounted), no kill, no notification', async () => {
    const { steps, calls } = fleet(0);
    await driveSweep(steps);
    assert.deepEqual(calls, ['plan', 'apply']);
  });

  test('stops after the batch limit even when every batch is full', async () => {
    const { steps, calls } = fleet(100);
    const r = await driveSweep(steps, {}, 4);
    assert.equal(r.cleaned.length, 12);
    assert.equal(calls.filter((c) => c === 'plan').length, 4);
  });

  test('mergeReports of null and a report is the report', () => {
    const { steps } = fleet(1);
    return steps.plan({}).then(async (p) => {
      const r = await steps.apply(p, {});
      assert.equal(mergeReports(null, r), r);
    });
  });
});
