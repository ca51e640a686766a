/**
 * Activities on the `dispatch-db` queue: the only code that writes dispatch.db. Only the worker on
 * the machine that holds the file polls this queue, so one process writes the database.
 */
import { EventKind, TaskStatus } from '../common/constants';
import { log } from '@temporalio/activity';
import { ActivityFailure } from '../common/failures';
import { ApplicationFailure } from '@temporalio/common';
import { UserError } from '../common/errors';
import type { NodeRow, ProcessIdentity, TaskSpec } from '../common/types';
import type { AllocationResult, AttemptOutcome, Store } from '../store/store';

export interface AllocationTrigger {
  /** Ask for an allocation pass soon (a slot freed or a task arrived). */
  kick(): void;
  /** One allocation pass now; the others it assigns are signalled, `except` is not. */
  allocateNow(except?: string): AllocationResult;
}

export interface AssignmentView {
  status: string | null;
  node: string | null;
  attempt: number;
  error: string | null;
  /** Present when the row is dispatched and the node still exists: no getNode round trip needed. */
  nodeRow?: NodeRow;
  /** The dispatched attempt's token (absent for rows dispatched before tokens). */
  token?: string;
}

export function createDbActivities(deps: { store: Store; allocator: AllocationTrigger }) {
  const { store, allocator } = deps;
  const view = (id: string): AssignmentView => {
    const r = store.getTask(id);
    const v: AssignmentView = { status: r?.status ?? null, node: r?.node ?? null, attempt: r?.attempts ?? 0, error: r?.error ?? null };
    if (v.status === TaskStatus.dispatched && v.node) v.nodeRow = store.getNode(v.node) ?? undefined;
    if (v.status === TaskStatus.dispatched && r?.attempt_token) v.token = r.attempt_token;
    return v;
  };
  return {
    async registerTask(spec: TaskSpec, specHash: string, workflowId: string): Promise<AssignmentView & { created: boolean }> {
      try {
        const { created } = store.registerTask(spec, specHash, workflowId);
        // A free slot is handed out right here: the answer carries the assignment and its node.
        if (created) allocator.allocateNow(spec.id);
        else allocator.kick();
        return { created, ...view(spec.id) };
      } catch (e) {
        if (e instanceof UserError) throw ApplicationFailure.nonRetryable(e.message, ActivityFailure.invalidSubmission);
        throw e;
      }
    },

    async getAssignment(taskId: string): Promise<AssignmentView> {
      allocator.kick();
      return view(taskId);
    },

    async getNode(name: string): Promise<NodeRow> {
      const n = store.getNode(name);
      if (!n) throw ApplicationFailure.nonRetryable(`node ${name} does not exist`, ActivityFailure.unknownNode);
      return n;
    },

    async markRunning(identity: ProcessIdentity): Promise<{ applied: boolean; status: string | null }> {
      const r = store.markRunning(identity);
      return { applied: r.applied, status: r.row?.status ?? null };
    },

    /** A launch lost contact with its node: booked as an event while the workflow waits out the fence. */
    async recordLaunchLost(taskId: string, attempt: number, detail: Record<string, unknown>): Promise<void> {
      store.event(taskId, attempt, EventKind.launchLost, detail);
      log.warn('launch lost contact with its node', { task: taskId, attempt, ...detail });
    },

    async recordHeartbeat(taskId: string, attempt: number): Promise<{ applied: boolean }> {
      return { applied: store.recordHeartbeat(taskId, attempt).applied };
    },

    async finishAttempt(
      taskId: string,
      attempt: number,
      outcome: AttemptOutcome,
      maxAttempts: number,
    ): Promise<{ applied: boolean; status: string | null; error: string | null }> {
      const r = store.finishAttempt(taskId, attempt, outcome, maxAttempts);
      allocator.kick();
      if (r.applied) log.info('attempt finished', { task: taskId, attempt, status: r.status });
      return { applied: r.applied, status: r.row?.status ?? null, error: r.row?.error ?? null };
    },

    /** A launch that found its process already ended: booked running and finished at once. */
    async finishLaunched(
      identity: ProcessIdentity,
      outcome: AttemptOutcome,
      maxAttempts: number,
    ): Promise<{ applied: boolean; status: string | null; error: string | null }> {
      const r = store.finishLaunched(identity, outcome, maxAttempts);
      allocator.kick();
      if (r.applied) log.info('attempt finished at launch', { task: identity.taskId, attempt: identity.attempt, status: r.status });
      return { applied: r.applied, status: r.row?.status ?? null, error: r.row?.error ?? null };
    },

    /** attempt null: the task never launched (queued, or dispatched but not yet started). */
    async cancelTask(taskId: string, attempt: number | null, reason: string): Promise<{ applied: boolean; status: string | null }> {
      let r = store.cancel(taskId, attempt, reason);
      if (!r.applied && attempt === null && r.row?.status === TaskStatus.dispatched) {
        // Dispatched but the workflow was cancelled before it launched: nothing runs, free the slot.
        r = store.cancel(taskId, r.row.attempts, reason);
      }
      allocator.kick();
      return { applied: r.applied, status: r.row?.status ?? null };
    },
  };
}

export type DbActivities = ReturnType<typeof createDbActivities>;
