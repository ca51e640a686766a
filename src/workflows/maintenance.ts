/**
 * The periodic sweeps, each started by a Temporal Schedule (see src/schedules). Each run is short;
 * the schedule is the loop, so no workflow history grows without bound.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ReaperDbActivities, ReaperNodeActivities } from '../activities/reaper';
import { ACTIVITY_LIVENESS_TIMEOUT, DB_TASK_QUEUE, TASK_QUEUE } from '../common/constants';
import { driveSweep } from '../reaper/driver';
import type { SweepOverrides } from '../reaper/options';
import type { SweepReport } from '../reaper/sweep';

const db = proxyActivities<ReaperDbActivities>({
  taskQueue: DB_TASK_QUEUE,
  startToCloseTimeout: '2m',
  heartbeatTimeout: ACTIVITY_LIVENESS_TIMEOUT,
  retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5 },
});
const nodes = proxyActivities<ReaperNodeActivities>({
  taskQueue: TASK_QUEUE,
  startToCloseTimeout: '5m',
  heartbeatTimeout: ACTIVITY_LIVENESS_TIMEOUT,
  retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 3 },
});

export interface ReaperInput {
  overrides?: SweepOverrides;
}

/** The one sweep driver, with activities as its steps. */
export async function reaperWorkflow(input: ReaperInput = {}): Promise<SweepReport> {
  return driveSweep(
    {
      plan: (o) => db.reaperPlan(o),
      stopWorkflows: (plan) => nodes.reaperStopWorkflows(plan),
      kill: (plan) => nodes.reaperKill(plan),
      apply: (plan, kills) => db.reaperApply(plan, kills),
      notify: (url, report) => nodes.notify(url, report),
    },
    input.overrides ?? {},
  );
}

export interface NodeProbeInput {
  killGraceS?: number;
}

export async function nodeProbeWorkflow(input: NodeProbeInput = {}): Promise<{ probed: number; offline: string[]; recovered: string[] }> {
  const list = await db.listNodes();
  const results = await nodes.probeNodes(list);
  const { recover, wentOffline } = await db.recordProbes(results);
  const recovered: string[] = [];
  for (const r of recover) {
    const cleanup = await nodes.cleanupNode(r.node, r.current, input.killGraceS ?? 10);
    if (await db.markNodeOnline(r.node.name, cleanup)) recovered.push(r.node.name);
  }
  return { probed: list.length, offline: wentOffline, recovered };
}

export async function guardianWorkflow(): Promise<Awaited<ReturnType<ReaperDbActivities['guardianScan']>> & { pruned: number }> {
  const scan = await db.guardianScan();
  const { nodes: targets, cutoffEpochS } = await db.retentionTargets();
  const results = await Promise.all(targets.map((t) => nodes.pruneRuns(t.node, t.current, cutoffEpochS)));
  await db.recordPrune(results);
  return { ...scan, pruned: results.reduce((a, r) => a + r.removed.length, 0) };
}

export async function factoryWorkflow(): Promise<Awaited<ReturnType<ReaperDbActivities['factoryRun']>>> {
  return db.factoryRun();
}

/** Does nothing: the benchmark's baseline for the server's rate of workflows. */
export async function emptyWorkflow(): Promise<void> {}
