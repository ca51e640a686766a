/**
 * The periodic sweeps as Temporal Schedules: created or updated idempotently, overlap SKIP, an
 * explicit catch-up window. Operators can also use `temporal schedule ...` on the same ids.
 */
import { ScheduleNotFoundError, type Client, type ScheduleOptions } from '@temporalio/client';
import { TASK_QUEUE } from '../common/constants';
import { UserError } from '../common/errors';
import type { DispatchConfig } from '../config/config';

export interface ScheduleDef {
  id: string;
  workflowType: string;
  everyS: number;
  args: unknown[];
  note: string;
  /**
   * Run timeout of each scheduled run: one hung run ends there, so overlap SKIP cannot hold the
   * later runs back for longer.
   */
  runTimeoutS: number;
}

/** Each bound is well above what a run does on a healthy fleet (the activities' own timeouts). */
const RUN_TIMEOUT_S = { reaper: 30 * 60, probe: 5 * 60, guardian: 15 * 60, factory: 15 * 60 } as const;

export const SCHEDULE_IDS = ['dispatch-reaper', 'dispatch-node-probe', 'dispatch-guardian', 'dispatch-factory'] as const;

export function scheduleDefs(cfg: DispatchConfig): ScheduleDef[] {
  const defs: ScheduleDef[] = [];
  if (cfg.enabled)
    defs.push({
      id: 'dispatch-reaper',
      workflowType: 'reaperWorkflow',
      everyS: cfg.check_interval,
      args: [{}],
      note: 'ghost reaper',
      runTimeoutS: RUN_TIMEOUT_S.reaper,
    });
  defs.push({
    id: 'dispatch-node-probe',
    workflowType: 'nodeProbeWorkflow',
    everyS: cfg.probe_interval,
    args: [{ killGraceS: cfg.kill_grace }],
    note: 'node probe',
    runTimeoutS: RUN_TIMEOUT_S.probe,
  });
  defs.push({
    id: 'dispatch-guardian',
    workflowType: 'guardianWorkflow',
    everyS: cfg.guardian_interval,
    args: [],
    note: 'dependency guardian',
    runTimeoutS: RUN_TIMEOUT_S.guardian,
  });
  if (cfg.factory)
    defs.push({
      id: 'dispatch-factory',
      workflowType: 'factoryWorkflow',
      everyS: cfg.factory.interval,
      args: [],
      note: 'spec factory',
      runTimeoutS: RUN_TIMEOUT_S.factory,
    });
  return defs;
}

function options(d: ScheduleDef): ScheduleOptions {
  return {
    scheduleId: d.id,
    spec: { intervals: [{ every: `${d.everyS}s` }] },
    action: {
      type: 'startWorkflow',
      workflowType: d.workflowType,
      taskQueue: TASK_QUEUE,
      args: d.args,
      workflowId: `${d.id}-run`,
      workflowRunTimeout: `${d.runTimeoutS}s`,
    },
    policies: { overlap: 'SKIP', catchupWindow: `${Math.max(60, d.everyS * 2)}s`, pauseOnFailure: false },
    memo: { note: d.note },
  };
}

export interface ApplyResult {
  id: string;
  outcome: 'created' | 'updated' | 'deleted';
  everyS?: number;
}

/** Creates or updates every schedule the config asks for; removes the ones it no longer asks for. */
export async function applySchedules(client: Client, cfg: DispatchConfig): Promise<ApplyResult[]> {
  const defs = scheduleDefs(cfg);
  const out: ApplyResult[] = [];
  for (const d of defs) {
    const o = options(d);
    const h = client.schedule.getHandle(d.id);
    try {
      await h.describe();
      await h.update((prev) => ({ ...prev, spec: o.spec, action: o.action as never, policies: { ...prev.policies, ...o.policies } }));
      out.push({ id: d.id, outcome: 'updated', everyS: d.everyS });
    } catch (e) {
      if (!(e instanceof ScheduleNotFoundError)) throw e;
      await client.schedule.create(o);
      out.push({ id: d.id, outcome: 'created', everyS: d.everyS });
    }
  }
  for (const id of SCHEDULE_IDS) {
    if (defs.some((d) => d.id === id)) continue;
    try {
      await client.schedule.getHandle(id).delete();
      out.push({ id, outcome: 'deleted' });
    } catch (e) {
      if (!(e instanceof ScheduleNotFoundError)) throw e;
    }
  }
  return out;
}

export function assertScheduleName(name: string): string {
  if (!(SCHEDULE_IDS as readonly string[]).includes(name))
    throw new UserError(`unknown schedule ${JSON.stringify(name)}: one of ${SCHEDULE_IDS.join(', ')}`);
  return name;
}

export async function listSchedules(
  client: Client,
): Promise<{ id: string; paused: boolean; every: string; recent: string | null; next: string | null }[]> {
  const out = [];
  for (const id of SCHEDULE_IDS) {
    try {
      const d = await client.schedule.getHandle(id).describe();
      const iv = d.spec.intervals?.[0]?.every;
      out.push({
        id,
        paused: d.state.paused,
        every: typeof iv === 'number' ? `${iv / 1000}s` : String(iv ?? '-'),
        recent: d.info.recentActions.at(-1)?.takenAt.toISOString() ?? null,
        next: d.info.nextActionTimes[0]?.toISOString() ?? null,
      });
    } catch (e) {
      if (!(e instanceof ScheduleNotFoundError)) throw e;
    }
  }
  return out;
}

export async function controlSchedule(client: Client, name: string, op: 'pause' | 'unpause' | 'trigger'): Promise<void> {
  const h = client.schedule.getHandle(assertScheduleName(name));
  try {
    if (op === 'pause') await h.pause('paused with dispatch schedules pause');
    else if (op === 'unpause') await h.unpause('unpaused with dispatch schedules unpause');
    else await h.trigger('SKIP');
  } catch (e) {
    if (e instanceof ScheduleNotFoundError) throw new UserError(`schedule ${name} does not exist: run \`dispatch schedules apply\``);
    throw e;
  }
}
