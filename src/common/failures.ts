/**
 * The ApplicationFailure types dispatch's workflows and activities end with. They are recorded in
 * workflow histories and read by retry policies, so they never change once released.
 */

/** How a task workflow ends when it does not complete. */
export const TaskFailure = {
  /** The row moved on outside the workflow (reaped, cancelled, changed by an operator). */
  rowChanged: 'RowChanged',
  launchFailed: 'LaunchFailed',
  blocked: 'TaskBlocked',
  failed: 'TaskFailed',
} as const;
export type TaskFailure = (typeof TaskFailure)[keyof typeof TaskFailure];

/** Why an activity failed. */
export const ActivityFailure = {
  invalidSubmission: 'InvalidSubmission',
  unknownNode: 'UnknownNode',
  /** Wrong host key or unreadable key file: retrying will not help. */
  nodeConfig: 'NodeConfig',
  nodeUnreachable: 'NodeUnreachable',
  launchFailed: 'LaunchFailed',
  killFailed: 'KillFailed',
} as const;
export type ActivityFailure = (typeof ActivityFailure)[keyof typeof ActivityFailure];
