/**
 * The names every client uses to talk to a task workflow: its signals, its query, the shapes they
 * carry, and the failure types it ends with. These names are permanent: a running workflow and
 * every recorded history know them.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Assignment, NodeRow, ProcessIdentity } from '../common/types';

export const TASK_WORKFLOW_TYPE = 'taskWorkflow';

export interface TaskState {
  taskId: string;
  status: string;
  attempt: number;
  node: string | null;
  identity: ProcessIdentity | null;
  error: string | null;
  command: string;
  /** The row exists (the register activity answered); absent in runs started before it existed. */
  registered?: boolean;
}

/** What signals told a run, handed to the next run across continue-as-new. */
export interface CarriedSignals {
  /** An assignment not yet taken. */
  assignment: Assignment | null;
  blocked: string | null;
  /** The reason of `dispatch cancel --reason`, when one was sent. */
  cancelReason: string | null;
  /** The reaper's rule, when it sent `reap`: this workflow must not book the row. */
  reapedBy: string | null;
}

/** Carried over continueAsNew while an attempt is running. */
export interface TaskResume {
  attempt: number;
  node: NodeRow;
  identity: ProcessIdentity;
  launchedAtMs: number;
  /** Absent in runs started before signals were carried. */
  carried?: CarriedSignals;
}

/** Carried over continueAsNew while the task waits for a slot: the row exists, nothing runs. */
export interface QueuedResume {
  queued: true;
  attempt: number;
  carried: CarriedSignals;
}

/** patched() ids. Permanent: histories recorded with them replay only while the code knows them. */
export const Patch = {
  /** Queue poll from options.queuePollS, continue-as-new while queued, history_limit while running. */
  boundedHistory: 'bounded-history-v1',
  /**
   * A launch that lost contact with its node (its outcome unknown) is given up only once the process
   * it may have started has fenced itself; with no fence, the task fails instead of running again.
   */
  launchLostFence: 'launch-lost-fence-v1',
  /**
   * The launch waits briefly for its process to end; one that did is booked running and finished in
   * one step (finishLaunched), without mark running, a supervise slice and a separate finish.
   */
  launchExit: 'launch-exit-v1',
} as const;

/** The allocator gave this task a slot (the register activity's answer may carry it instead). */
export const assignedSignal = defineSignal<[Assignment]>('assigned');
/** A dependency failed: the task ends as blocked with the reason. */
export const blockedSignal = defineSignal<[{ reason: string }]>('blocked');
/**
 * Cancels the task as a cancel request does (kill, book cancelled with the reason, free the slot),
 * for operators who signal: `temporal workflow signal -w task-<id> --name cancel --input '"why"'`.
 * The run then completes (its state says cancelled): only a cancel request ends a run as cancelled.
 */
export const cancelSignal = defineSignal<[string?]>('cancel');
/** Sent by `dispatch cancel --reason` just before the cancel request. */
export const cancelReasonSignal = defineSignal<[string]>('cancelReason');
/** Sent by the reaper before it cancels: the reaper kills and books; the workflow only stops. */
export const reapSignal = defineSignal<[{ rule: string }]>('reap');
export const stateQuery = defineQuery<TaskState>('state');

export { TaskFailure } from '../common/failures';
