/**
 * The periodic sweeps, each started by a Temporal Schedule (see src/schedules). Each run is short;
 * the schedule is the loop, so no workflow history grows without bound.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ReaperDbActivities, ReaperNodeActivities, SweepOverrides } from '../activities/reaper';
import { ACTIVITY_LIVENESS_TIMEOUT, DB_TASK_QUEUE, TASK_QUEUE } from '../common/constants';
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

/** Batches of at most TASK_REAP_BATCH ghosts; this many batches per run at most. */
const MAX_BATCHES = 20;

export interface ReaperInput {
  overrides?: SweepOverrides;
}

function merge(a: SweepReport | null, b: SweepReport): SweepReport {
  if (!a) return b;
  return {
    ...b,
    ghosts_found: a.ghosts_found + b.ghosts_found,
    cleaned: [...a.cleaned, ...b.cleaned],
    skipped: [...a.skipped, ...b.skipped],
    drift_fixed: [...a.drift_fixed, ...b.drift_fixed],
    ghosts: [...a.ghosts, ...b.ghosts],
    requeued: [...a.requeued, ...b.requeued],
    locks_released: a.locks_released + b.locks_released,
    timestamp: a.timestamp,
  };
}

export async function reaperWorkflow(input: ReaperInput = {}): Promise<SweepReport> {
  let report: SweepReport | null = null;
  let notifyUrl: string | null = null;
  for (let i = 0; i < MAX_BATCHES; i++) {
    const plan = await db.reaperPlan(input.overrides ?? {});
    notifyUrl = plan.options.notifyUrl;
    if (!plan.options.dryRun && plan.ghosts.length) await nodes.reaperStopWorkflows(plan);
    const kills = plan.ghosts.length ? await nodes.reaperKill(plan) : {};
    report = merge(report, await db.reaperApply(plan, kills));
    // Skipped rows stay active: stop when a batch made no progress or was not full.
    if (plan.options.dryRun || plan.ghosts.length < plan.options.batch || (report.cleaned.length === 0 && plan.ghosts.length > 0)) break;
  }
  const final = report!;
  if (notifyUrl && !final.dry_run && final.cleaned.length > 0) await nodes.notify(notifyUrl, final);
  return final;
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
