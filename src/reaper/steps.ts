/**
 * The steps of a sweep as plain functions. The reaper's activities wrap them one by one (their
 * workers hold the store, or the node pool); the in-process sweep (`dispatch reap --direct`, the
 * worker's start-up sweep) hands them to the same driver directly.
 */
import type { Client } from '@temporalio/client';
import { restartTask, taskInputFromRow } from '../client/tasks';
import type { DispatchConfig } from '../config/config';
import type { ShellPool } from '../shell/pool';
import type { Store } from '../store/store';
import { driveSweep, summarize, type SweepSteps } from './driver';
import { sweepOptions, type SweepOverrides } from './options';
import { applySweep, killGhosts, planSweep, type GhostKill, type SweepPlan, type SweepReport } from './sweep';
import { stopGhostWorkflows, temporalInspector, temporalRefreshEnd } from './temporal';

export interface SweepDbDeps {
  store: Store;
  /** null when Temporal is not used (`reap --direct`): workflows are neither asked about nor restarted. */
  client: Client | null;
  config: DispatchConfig;
  log: (line: string) => void;
  /** After a batch is booked: slots may have freed (the allocator's kick). */
  afterApply?: () => void;
}

/**
 * `temporalNowMs`: now on Temporal's clock, given by the reaper's plan activity (its scheduled time);
 * absent in-process, where tasks on unreachable nodes are left to the scheduled reaper.
 */
export function planStep(deps: SweepDbDeps, overrides: SweepOverrides, temporalNowMs: number | null = null): Promise<SweepPlan> {
  const inspect = deps.client ? temporalInspector(deps.client) : undefined;
  const o = sweepOptions(deps.config, overrides);
  const refreshEnd = deps.client ? temporalRefreshEnd(deps.client, deps.config.outage_tolerance) : undefined;
  return planSweep(deps.store, o, inspect, Date.now(), refreshEnd, temporalNowMs);
}

/** Books the batch, restarts the workflows of requeued tasks, and logs a line when it did something. */
export async function applyStep(deps: SweepDbDeps, plan: SweepPlan, kills: Record<string, GhostKill>): Promise<SweepReport> {
  const report = applySweep(deps.store, plan, kills);
  if (deps.client) await restartRequeued(deps, report.requeued);
  deps.afterApply?.();
  const line = summarize(report);
  if (line) deps.log(line);
  return report;
}

async function restartRequeued(deps: SweepDbDeps, ids: string[]): Promise<void> {
  for (const id of ids) {
    const row = deps.store.getTask(id);
    const input = row ? taskInputFromRow(row, deps.store.getSpecBody(id), deps.config) : null;
    if (!input) continue;
    try {
      await restartTask(deps.client!, input);
    } catch (e) {
      deps.log(`could not restart the workflow of requeued ${id}: ${(e as Error).message}`);
    }
  }
}

/** Webhook URLs often carry a token in the path or query: log only where it goes. */
function redact(url: string): string {
  try {
    return `${new URL(url).origin}/...`;
  } catch {
    return '(invalid URL)';
  }
}

/** POSTs the report; a failure is logged, never fatal. */
export async function postWebhook(url: string, report: unknown, log: (line: string) => void = (l) => console.warn(l)): Promise<void> {
  try {
    const body = JSON.stringify(report);
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    if (!r.ok) log(`[dispatch] webhook ${redact(url)} answered ${r.status}`);
  } catch (e) {
    log(`[dispatch] webhook ${redact(url)} failed: ${(e as Error).message}`);
  }
}

/** Every step in this process, for the one driver. */
export function inProcessSteps(deps: SweepDbDeps & { pool: ShellPool }): SweepSteps {
  return {
    plan: (o) => planStep(deps, o),
    stopWorkflows: async (plan) => (deps.client ? stopGhostWorkflows(deps.client, plan) : {}),
    kill: (plan) => killGhosts(deps.pool, plan),
    apply: (plan, kills) => applyStep(deps, plan, kills),
    notify: (url, report) => postWebhook(url, report),
  };
}

/** `dispatch reap --direct` and the worker's start-up sweep: the same sweep as the reaper workflow. */
export function sweepInProcess(deps: SweepDbDeps & { pool: ShellPool }, overrides: SweepOverrides = {}): Promise<SweepReport> {
  return driveSweep(inProcessSteps(deps), overrides);
}
