/** The reaper's Temporal side: asking about workflows, and stopping the open ones of ghosts. */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { signalReap } from '../client/tasks';
import { taskWorkflowId } from '../common/constants';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Inspect, LeaseAcks, SweepPlan } from './sweep';
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
 * The supervise activity's record of the last lease refresh its node acknowledged (heartbeat
 * details `leaseAckAt`, ms), per workflow; null where the workflow, the activity or the record is
 * missing, or Temporal could not be asked.
 */
export function temporalLeaseAcks(client: Client): LeaseAcks {
  return async (ids) => {
    const acks = await mapLimit(ids, 20, async (id): Promise<number | null> => {
      try {
        const d = await client.workflow.getHandle(id).describe();
        const act = (d.raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'supervise');
        const payload = act?.heartbeatDetails?.payloads?.[0];
        if (!payload) return null;
        const details = defaultPayloadConverter.fromPayload(payload) as { leaseAckAt?: unknown } | null;
        return typeof details?.leaseAckAt === 'number' && Number.isFinite(details.leaseAckAt) ? details.leaseAckAt : null;
      } catch {
        return null;
      }
    });
    return new Map(ids.map((id, k) => [id, acks[k]!]));
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
