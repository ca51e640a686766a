/** The reaper's Temporal side: asking about workflows, and stopping the open ones of ghosts. */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { signalReap } from '../client/tasks';
import { taskWorkflowId } from '../common/constants';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import type { Inspect, RefreshEnd, SweepPlan } from './sweep';
import type { WorkflowState } from './rules';

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) {
        const k = i++;
        out[k] = await fn(items[k]!);
      }
    }),
  );
  return out;
}

export function temporalInspector(client: Client): Inspect {
  return async (ids) => {
    const states = await mapLimit(ids, 20, async (id): Promise<WorkflowState> => {
      try {
        const d = await client.workflow.getHandle(id).describe();
        return d.status.name === 'RUNNING' ? 'open' : 'closed';
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) return 'missing';
        return 'unknown';
      }
    });
    return new Map(ids.map((id, k) => [id, states[k]!]));
  };
}

/**
 * What a worker reported of its refresh window (heartbeat details, slice result): `refreshLeftMs`
 * (may be negative: a window that had ended), -Infinity when it said it never had one, null when it
 * said nothing (a worker from before this was reported).
 */
function leftOf(payload: Payload | null | undefined): number | null {
  if (!payload) return null;
  try {
    const v = defaultPayloadConverter.fromPayload(payload) as { refreshLeftMs?: unknown } | null;
    if (!v || typeof v !== 'object' || !('refreshLeftMs' in v)) return null;
    const left = v.refreshLeftMs;
    if (left === null) return -Infinity;
    return typeof left === 'number' && Number.isFinite(left) ? left : null;
  } catch {
    return null;
  }
}

/**
 * The latest moment (ms, Temporal's clock) at which any worker may still refresh the lease of the
 * task's attempt, from what Temporal recorded of its supervision (the rule: src/activities/refresh.ts;
 * the argument: docs/FENCE.md). Each record R of a worker's request carries what was left of that
 * worker's refresh window when it sent it, so R + left bounds that window:
 * - the pending supervise slice's latest heartbeat: its time + its `refreshLeftMs`;
 * - every supervise slice closed in this run, newest first: a completion at its time + the
 *   `refreshLeftMs` in its result; a failure, timeout or cancel at its time + the horizon (its
 *   worker's window cannot outlast that);
 * - a slice retried (attempt > 1): the earlier tries' workers stopped being acknowledged before the
 *   retry was scheduled (pending) or started (closed), + the horizon;
 * - a run continued from an earlier one: its first event + the horizon.
 * A record without `refreshLeftMs` (a worker from before it) counts the whole horizon. -Infinity:
 * no worker ever had a window in this run. `missing`: Temporal does not know the workflow;
 * `unknown`: it could not be asked (the sweep waits).
 */
export function temporalRefreshEnd(client: Client, horizonS: number): RefreshEnd {
  const namespace = client.options.namespace;
  const H = horizonS * 1000;
  return async (ids) => {
    const got = await mapLimit(ids, 20, async (id): Promise<number | 'missing' | 'unknown'> => {
      try {
        const d = await client.workflow.getHandle(id).describe();
        let best = -Infinity;
        const add = (t: number | undefined, left: number) => {
          if (typeof t === 'number' && Number.isFinite(t)) best = Math.max(best, t + left);
        };
        for (const a of d.raw.pendingActivities ?? []) {
          if (a.activityType?.name !== 'supervise') continue;
          const hb = optionalTsToMs(a.lastHeartbeatTime);
          if (hb !== undefined) add(hb, leftOf(a.heartbeatDetails?.payloads?.[0]) ?? H);
          else if (a.heartbeatDetails?.payloads?.length) add(optionalTsToMs(a.scheduledTime), H);
          if ((a.attempt ?? 1) > 1) {
            add(optionalTsToMs(a.scheduledTime), H);
            add(optionalTsToMs(a.lastAttemptCompleteTime), H);
          }
        }
        // Closed slices, newest first, until nothing older can matter.
        const closures = new Map<string, number[]>();
        let token: Uint8Array | undefined;
        let seen = 0;
        scan: for (;;) {
          const page = await client.workflowService.getWorkflowExecutionHistoryReverse({
            namespace,
            execution: { workflowId: id, runId: d.runId },
            maximumPageSize: 200,
            nextPageToken: token,
          });
          for (const ev of page.history?.events ?? []) {
            seen++;
            const at = optionalTsToMs(ev.eventTime);
            if (at === undefined) continue;
            const sched = (x: { scheduledEventId?: unknown } | null | undefined) => (x?.scheduledEventId ?? '').toString();
            const keep = (k: string, v: number) => closures.set(k, [...(closures.get(k) ?? []), v]);
            if (ev.activityTaskCompletedEventAttributes) {
              const a = ev.activityTaskCompletedEventAttributes;
              keep(sched(a), at + (leftOf(a.result?.payloads?.[0]) ?? H));
            } else if (ev.activityTaskFailedEventAttributes) keep(sched(ev.activityTaskFailedEventAttributes), at + H);
            else if (ev.activityTaskTimedOutEventAttributes) keep(sched(ev.activityTaskTimedOutEventAttributes), at + H);
            else if (ev.activityTaskCanceledEventAttributes) keep(sched(ev.activityTaskCanceledEventAttributes), at + H);
            else if (ev.activityTaskStartedEventAttributes) {
              const a = ev.activityTaskStartedEventAttributes;
              if ((a.attempt ?? 1) > 1) keep(sched(a), at + H);
            } else if (ev.activityTaskScheduledEventAttributes) {
              const k = (ev.eventId ?? '').toString();
              const vs = closures.get(k);
              closures.delete(k);
              if (vs && ev.activityTaskScheduledEventAttributes.activityType?.name === 'supervise')
                for (const v of vs) best = Math.max(best, v);
            } else if (ev.workflowExecutionStartedEventAttributes?.continuedExecutionRunId) add(at, H);
            // Older events can only give older bounds once every closure seen is resolved.
            if (closures.size === 0 && at + H <= best) break scan;
            if (seen > 20_000) return 'unknown';
          }
          if (!page.nextPageToken?.length) break;
          token = page.nextPageToken;
        }
        return best;
      } catch (e) {
        return e instanceof WorkflowNotFoundError ? 'missing' : 'unknown';
      }
    });
    return new Map(ids.map((id, k) => [id, got[k]!]));
  };
}

/**
 * Phase 2: nothing may act on a ghost later. Signal `reap` (so the workflow does not book the
 * row itself), request cancellation, and terminate whatever has not closed within `waitMs`.
 */
export async function stopGhostWorkflows(client: Client, plan: SweepPlan, waitMs = 10_000): Promise<Record<string, string>> {
  const res: Record<string, string> = {};
  const open = plan.ghosts.filter((g) => g.workflow === 'open' || g.workflow === 'unknown');
  await mapLimit(open, 20, async (g) => {
    const h = client.workflow.getHandle(taskWorkflowId(g.id));
    try {
      await signalReap(client, g.id, g.rule);
      await h.cancel();
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) {
        res[g.id] = 'missing';
        return;
      }
    }
    const until = Date.now() + waitMs;
    while (Date.now() < until) {
      try {
        if ((await h.describe()).status.name !== 'RUNNING') {
          res[g.id] = 'cancelled';
          return;
        }
      } catch {
        res[g.id] = 'missing';
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    try {
      await h.terminate(`dispatch reaper: ghost (${g.rule}); cancel did not finish in ${waitMs / 1000}s`);
      res[g.id] = 'terminated';
    } catch (e) {
      res[g.id] = `terminate failed: ${(e as Error).message}`;
    }
  });
  return res;
}
