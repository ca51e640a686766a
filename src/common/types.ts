/** Data shapes passed between the CLI, workflows and activities. Pure types. */
import type { TaskStatus, NodeStatus } from './constants';

/** What a submission describes; the workflow's input. */
export interface TaskSpec {
  id: string;
  project: string;
  priority: number;
  dependsOn: string[];
  modifies: string[];
  /** The shell command to run on the node (already expanded from an executor template). */
  command: string;
  /** Body of the spec file, copied to the node as spec.md; null when submitted by flags. */
  specBody: string | null;
  executor: string | null;
  estimatedMinutes: number | null;
  maxRuntimeS: number;
  /** Pin to one node; null lets the scheduler choose. */
  node: string | null;
}

/** Everything the task workflow needs that comes from config, fixed at submission. */
export interface TaskRuntimeOptions {
  leaseS: number;
  maxAttempts: number;
  killGraceS: number;
  heartbeatRecordS: number;
  /** Fallback check of a queued task, seconds (absent in inputs from before it existed: 15 s). */
  queuePollS?: number;
  /** Continue as new before a run's history passes this many events (absent: 8000 while running). */
  historyLimit?: number;
  /** How long a launch retries an unreachable node, seconds (absent: LAUNCH_TIMEOUT_S_DEFAULT). */
  launchTimeoutS?: number;
  /** The submitter's fence_after, seconds: used when a lost launch does not report its worker's. */
  fenceAfterS?: number;
}

export interface TaskWorkflowInput {
  spec: TaskSpec;
  options: TaskRuntimeOptions;
  /** sha256 of the canonical spec; resubmitting the same hash is a no-op. */
  specHash: string;
}

/** Who a running process is: checked on the node before any signal. */
export interface ProcessIdentity {
  node: string;
  pid: number;
  /** /proc/<pid>/stat field 22. */
  starttime: string;
  bootId: string;
  /** The attempt directory on the node. */
  dir: string;
  taskId: string;
  attempt: number;
  /** The attempt token written into the directory; absent for attempts launched before tokens. */
  token?: string;
  /** fence_after of the attempt's watchdog, seconds; absent when it has none (fencing off, or older). */
  fenceAfterS?: number;
}

export interface Assignment {
  taskId: string;
  node: string;
  attempt: number;
  /** The attempt's token (see isAttemptToken); absent only for rows dispatched before tokens. */
  token?: string;
  /** The node's row as it was at assignment, so the workflow needs no extra round trip for it. */
  nodeRow?: NodeRow;
}

/** One attempt of a task as the attempts table keeps it (migration 4). */
export interface AttemptRecord {
  task_id: string;
  attempt: number;
  node: string | null;
  dispatched_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  pid: number | null;
  proc_starttime: string | null;
  run_dir: string | null;
  exit_code: number | null;
  /** The task's status when the attempt ended: completed, failed, queued (run again), cancelled. */
  status: string | null;
  error: string | null;
  /** When its watchdog fenced it (node clock, ISO), as node recovery found. */
  fenced_at: string | null;
}

export interface TaskRow {
  id: string;
  project: string | null;
  status: string | null;
  node: string | null;
  pid: number | null;
  started_at: string | null;
  updated_at: string | null;
  attempts: number | null;
  error: string | null;
  priority: number | null;
  seq: number | null;
  depends_on: string | null;
  modifies: string | null;
  command: string | null;
  spec_hash: string | null;
  executor: string | null;
  max_runtime_s: number | null;
  pin_node: string | null;
  proc_starttime: string | null;
  boot_id: string | null;
  run_dir: string | null;
  last_heartbeat: string | null;
  dispatched_at: string | null;
  finished_at: string | null;
  exit_code: number | null;
  reaped_count: number | null;
  workflow_id: string | null;
  created_at: string | null;
  attempt_token: string | null;
  /** fence_after of the current attempt's watchdog, seconds; null: it has none. */
  fence_after_s?: number | null;
  /** The last attempt whose watchdog fenced it, and when (node clock, ISO), as node recovery found. */
  fenced_attempt?: number | null;
  fenced_at?: string | null;
  /** The attempt budget set by `dispatch retry` (null: max_requeue from the config). */
  max_attempts?: number | null;
}

export interface NodeRow {
  name: string;
  host: string | null;
  slots: number | null;
  running_count: number | null;
  kind: 'ssh' | 'local' | null;
  port: number | null;
  user: string | null;
  key_path: string | null;
  known_hosts: string | null;
  insecure_ignore_host_key: number | null;
  work_dir: string | null;
  status: NodeStatus | string | null;
  last_seen_at: string | null;
  missed_probes: number | null;
}

export type { TaskStatus, NodeStatus };
