/** The reaper's Temporal side: asking about workflows, and stopping the open ones of ghosts. */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { signalReap } from '../client/tasks';
import { taskWorkflowId } from '../common/constants';
import type { Inspect, SweepPlan } from './sweep';
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
