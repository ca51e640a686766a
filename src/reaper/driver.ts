/**
 * The one driver of a ghost sweep: plan, stop the ghosts' workflows, kill, apply, in batches of
 * at most `reap_batch` ghosts, then one notification. The reaper workflow passes its activity
 * proxies as the steps; `dispatch reap --direct` and the worker's start-up sweep pass local
 * functions (src/reaper/in-process.ts). Pure: it runs inside the workflow sandbox, so it imports
 * only types.
 */
import type { SweepOverrides } from './options';
import type { GhostKill, SweepPlan, SweepReport } from './sweep';

export interface SweepSteps {
  plan(overrides: SweepOverrides): Promise<SweepPlan>;
  /** Signal `reap` and cancel (or terminate) the open workflows of the plan's ghosts. */
  stopWorkflows(plan: SweepPlan): Promise<Record<string, string>>;
  kill(plan: SweepPlan): Promise<Record<string, GhostKill>>;
  apply(plan: SweepPlan, kills: Record<string, GhostKill>): Promise<SweepReport>;
  notify(url: string, report: SweepReport): Promise<void>;
}

/** Batches per sweep at most: a sweep ends even when every batch is full. */
export const MAX_SWEEP_BATCHES = 20;

export function mergeReports(a: SweepReport | null, b: SweepReport): SweepReport {
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
    ...(a.fence_waiting || b.fence_waiting ? { fence_waiting: mergeWaits(a.fence_waiting ?? [], b.fence_waiting ?? []) } : {}),
  };
}

/** Each waiting ghost once, as the latest batch saw it. */
function mergeWaits<T extends { id: string }>(a: T[], b: T[]): T[] {
  const ids = new Set(b.map((w) => w.id));
  return [...a.filter((w) => !ids.has(w.id)), ...b];
}

export async function driveSweep(steps: SweepSteps, overrides: SweepOverrides = {}, maxBatches = MAX_SWEEP_BATCHES): Promise<SweepReport> {
  let report: SweepReport | null = null;
  let notifyUrl: string | null = null;
  for (let i = 0; i < maxBatches; i++) {
    const plan = await steps.plan(overrides);
    notifyUrl = plan.options.notifyUrl;
    if (!plan.options.dryRun && plan.ghosts.length) await steps.stopWorkflows(plan);
    const kills = plan.ghosts.length ? await steps.kill(plan) : {};
    const batch = await steps.apply(plan, kills);
    report = mergeReports(report, batch);
    // Skipped rows stay active and would be planned again: stop when a batch was not full or
    // cleaned nothing.
    if (plan.options.dryRun || plan.ghosts.length < plan.options.batch || batch.cleaned.length === 0) break;
  }
  const final = report!;
  if (notifyUrl && !final.dry_run && final.cleaned.length > 0) await steps.notify(notifyUrl, final);
  return final;
}

/** One-line summary for logs; null when the sweep did nothing worth a line. */
export function summarize(r: SweepReport): string | null {
  if (r.ghosts_found === 0 && r.drift_fixed.length === 0 && r.locks_released === 0) return null;
  const rules = [...new Set(r.ghosts.map((g) => g.rule))].join(',');
  const head = `reaper${r.dry_run ? ' (dry run)' : ''}: ${r.ghosts_found} ghosts${rules ? ` [${rules}]` : ''}`;
  return `${head}, ${r.cleaned.length} cleaned, ${r.skipped.length} skipped, ${r.drift_fixed.length} drift fixed, ${r.locks_released} locks released`;
}
