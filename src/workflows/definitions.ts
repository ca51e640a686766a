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
}

/** Carried over continueAsNew while an attempt is running. */
export interface TaskResume {
  attempt: number;
  node: NodeRow;
  identity: ProcessIdentity;
  launchedAtMs: number;
}

/** The allocator gave this task a slot (the register activity's answer may carry it instead). */
export const assignedSignal = defineSignal<[Assignment]>('assigned');
/** A dependency failed: the task ends as blocked with the reason. */
export const blockedSignal = defineSignal<[{ reason: string }]>('blocked');
/** Sent by `dispatch cancel --reason` just before the cancel request. */
export const cancelReasonSignal = defineSignal<[string]>('cancelReason');
/** Sent by the reaper before it cancels: the reaper kills and books; the workflow only stops. */
export const reapSignal = defineSignal<[{ rule: string }]>('reap');
export const stateQuery = defineQuery<TaskState>('state');

export { TaskFailure } from '../common/failures';
