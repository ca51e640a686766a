/** Names and defaults shared by the workflow sandbox, activities, workers and the CLI. Pure: no I/O. */

export const TASK_QUEUE = 'dispatch' as const;
export const DB_TASK_QUEUE = 'dispatch-db' as const;
export const ALL_QUEUES = [TASK_QUEUE, DB_TASK_QUEUE] as const;

/** Task row statuses. Final ones are never changed by the system once reached. */
export const TaskStatus = {
  queued: 'queued',
  dispatched: 'dispatched',
  running: 'running',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
  blocked: 'blocked',
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];
export const FINAL_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled', 'blocked'];
export const ACTIVE_STATUSES: readonly TaskStatus[] = ['dispatched', 'running'];

/** Kinds of rows in the events table: what happened to a task or a node, in order. */
export const EventKind = {
  submitted: 'submitted',
  dispatched: 'dispatched',
  running: 'running',
  requeued: 'requeued',
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
  blocked: 'blocked',
  /** A late write from an old attempt, refused by the fence on (id, attempt, status). */
  fenceRefused: 'fence_refused',
  reaped: 'reaped',
  reapedRequeued: 'reaped_requeued',
  reapSkipped: 'reap_skipped',
  slotDriftFixed: 'slot_drift_fixed',
  nodeOffline: 'node_offline',
  nodeOnline: 'node_online',
  nodeRemoved: 'node_removed',
  /** `dispatch retry`: a final task queued again, with a fresh attempt budget. */
  retried: 'retried',
  /** A retry whose workflow could not be started: the row was put back as it was. */
  retryUndone: 'retry_undone',
  attemptDirsPruned: 'attempt_dirs_pruned',
  /** An attempt's watchdog stopped it after fence_after without a lease refresh (not fence_refused). */
  attemptFenced: 'attempt_fenced',
  /** The reaper left a ghost on an unreachable node until its fence has fallen. */
  fenceWaiting: 'fence_waiting',
  /**
   * A launch lost contact with its node before it answered: a process may have started there. The
   * attempt is given up only once its fence has fallen (or failed outright when fencing is off).
   */
  launchLost: 'launch_lost',
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];

export const NodeStatus = { online: 'online', drained: 'drained', offline: 'offline' } as const;
export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus];

/** Heartbeat timeout of the supervising activity, seconds (env TASK_LEASE_S). */
export const LEASE_S_DEFAULT = 30;
/** Attempts in total before a task fails for good (env TASK_MAX_REQUEUE). */
export const MAX_REQUEUE_DEFAULT = 3;
/**
 * Heartbeat timeout of every activity other than supervise: each worker heartbeats once a second
 * while an activity runs (src/activities/liveness.ts), so a worker killed in the middle of a database
 * step, a launch, a probe or a sweep is noticed within this time and the activity retried elsewhere.
 */
export const ACTIVITY_LIVENESS_TIMEOUT = '10s';
/** Heartbeat age after which a running row is stale (env TASK_STALE_S). */
export const STALE_S_DEFAULT = 900;
/** Rows handled per reaper batch (env TASK_REAP_BATCH). */
export const REAP_BATCH_DEFAULT = 200;
/** Default per-task runtime cap, seconds. */
export const MAX_RUNTIME_S_DEFAULT = 2 * 3600;
/** Grace between SIGTERM and SIGKILL, seconds. */
export const KILL_GRACE_S_DEFAULT = 10;
/**
 * How often the row's last_heartbeat is refreshed, seconds: the length of one supervise slice. Each
 * slice costs a running task about 14 history events, so 5 minutes keeps it near 170 events an hour
 * (the goal is 200). It does not delay anything: a process that ends is seen within a probe, and a
 * dead worker within the lease. It must stay well under stale_s (15 min): stale_s > this + lease_s.
 */
export const HEARTBEAT_RECORD_S_DEFAULT = 300;

/**
 * fence_after: how long an attempt runs on without a lease refresh from its supervisor before its
 * node stops it. 10 minutes is longer than what a healthy fleet goes through: a worker restart (a
 * new worker re-attaches within lease_s, 30 s), the supervise probe's own timeout (30 s), a Temporal
 * restart or a rolling deploy (a few minutes in which the supervise activities wait to be retried),
 * and short enough that a partitioned node's task is requeued about 11 minutes after contact ended.
 */
export const FENCE_AFTER_S_DEFAULT = 600;
/**
 * outage_tolerance: how long after its latest request that Temporal acknowledged a worker goes on
 * refreshing the lease of an attempt it supervises, seconds. A Temporal outage, a backlog of workflow
 * tasks or a slow server shorter than this (plus fence_after) stops no healthy task; a task on a node
 * that no supervisor reaches may run again only this much later (src/activities/refresh.ts,
 * docs/FENCE.md). 30 minutes covers an ordinary self-hosted upgrade or database failover.
 */
export const OUTAGE_TOLERANCE_S_DEFAULT = 1800;
/** Added to fence_after + kill_grace before a task on an unreachable node may run again. */
export const FENCE_MARGIN_S = 30;
/**
 * launch_timeout: how long a launch keeps retrying a node it cannot reach before the attempt is
 * given up, seconds. Every try that reaches the node starts or finds the same process (the launch
 * is idempotent per attempt directory), so no try can start a process later than this after the
 * launch began: the fence of a dispatched attempt is counted from there.
 */
export const LAUNCH_TIMEOUT_S_DEFAULT = 300;
/** One launch try's own timeout, seconds: a try begun just before launch_timeout ends within it. */
export const LAUNCH_TRY_S = 30;
/**
 * How long a launch waits on the node for its process to end before it reports it running (ms). A
 * command that ends at once (a typo, a no-op, a tiny script) is then booked in one step with its
 * exit, two round trips fewer; a longer one is reported running at most this much later.
 */
export const LAUNCH_EXIT_WAIT_MS = 100;

export const SEARCH_ATTRIBUTES = {
  project: 'TaskProject',
  node: 'TaskNode',
  status: 'TaskStatus',
  priority: 'TaskPriority',
} as const;

export function taskWorkflowId(taskId: string): string {
  return `task-${taskId}`;
}
