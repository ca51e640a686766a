/**
 * When a queued task may run, as far as its dependencies go. Pure: the caller looks statuses up,
 * so the allocator and the guardian apply the same rule.
 */
import { TaskStatus } from '../common/constants';

export type DependencyVerdict =
  | { kind: 'ready' }
  | { kind: 'waiting' }
  /** `by` names the dependency and its status; `reason` is what the row's error and the result say. */
  | { kind: 'blocked'; dep: string; status: string; by: string; reason: string };

/** A dependency in one of these states will never complete: the task that waits on it never runs. */
const FINAL_WITHOUT_SUCCESS: ReadonlySet<string> = new Set([TaskStatus.failed, TaskStatus.cancelled, TaskStatus.blocked]);

/**
 * Blocked by the first dependency (in the listed order) that ended without success; otherwise
 * waiting while any dependency is not completed (a missing one included); otherwise ready.
 */
export function dependencyVerdict(deps: readonly string[], statusOf: (id: string) => string | null | undefined): DependencyVerdict {
  let waiting = false;
  for (const dep of deps) {
    const status = statusOf(dep);
    if (status === TaskStatus.completed) continue;
    if (status != null && FINAL_WITHOUT_SUCCESS.has(status)) {
      const by = `dependency ${dep} ${status}`;
      return { kind: 'blocked', dep, status, by, reason: `blocked: ${by}` };
    }
    waiting = true;
  }
  return waiting ? { kind: 'waiting' } : { kind: 'ready' };
}
