/**
 * What clients do with task workflows: build a workflow's input from the config (or from a row),
 * start `task-<id>`, restart a requeued task, and send the typed signals. Used by the CLI, the
 * factory, the reaper and the allocator, so that each of these exists once.
 */
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowStartOptions } from '@temporalio/client';
import { TASK_QUEUE, TaskStatus, taskWorkflowId } from '../common/constants';
import { UserError } from '../common/errors';
import { ActivityFailure } from '../common/failures';
import { ApplicationFailure } from '@temporalio/common';
import { TaskNodeKey, TaskPriorityKey, TaskProjectKey, TaskStatusKey } from '../common/search-attributes';
import type { Assignment, TaskRow, TaskSpec, TaskWorkflowInput } from '../common/types';
import type { DispatchConfig } from '../config/config';
import { specHash } from '../spec/spec';
import type { taskWorkflow } from '../workflows/task';
import { assignedSignal, blockedSignal, cancelReasonSignal, reapSignal, stateQuery, TASK_WORKFLOW_TYPE } from '../workflows/definitions';

/** The submitter's config fixes the options that shape a task's supervision. */
export function taskWorkflowInput(spec: TaskSpec, cfg: DispatchConfig): TaskWorkflowInput {
  return {
    spec,
    specHash: specHash(spec),
    options: {
      leaseS: cfg.lease_s,
      maxAttempts: cfg.max_requeue,
      killGraceS: cfg.kill_grace,
      heartbeatRecordS: cfg.heartbeat_record_interval,
      queuePollS: cfg.queue_poll_interval,
      historyLimit: cfg.history_limit,
      launchTimeoutS: cfg.launch_timeout,
      fenceAfterS: cfg.fence_after,
    },
  };
}

function parseList(v: string | null): string[] {
  try {
    const a: unknown = JSON.parse(v ?? '[]');
    return Array.isArray(a) ? a.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** The workflow input of a task as its row records it; null for a row that cannot be run again. */
export function taskInputFromRow(row: TaskRow, specBody: string | null, cfg: DispatchConfig): TaskWorkflowInput | null {
  if (!row.command || !row.spec_hash) return null;
  const spec: TaskSpec = {
    id: row.id,
    project: row.project ?? 'default',
    priority: row.priority ?? 50,
    dependsOn: parseList(row.depends_on),
    modifies: parseList(row.modifies),
    command: row.command,
    specBody,
    executor: row.executor ?? null,
    estimatedMinutes: null,
    maxRuntimeS: row.max_runtime_s ?? cfg.max_runtime,
    node: row.pin_node,
  };
  // A retried task keeps the budget `dispatch retry` gave it.
  const options = { ...taskWorkflowInput(spec, cfg).options, maxAttempts: row.max_attempts ?? cfg.max_requeue };
  return { spec, specHash: row.spec_hash, options };
}

/** One line: the command (shortened), its project and priority. */
export function taskSummary(spec: TaskSpec): string {
  const cmd = spec.command.replace(/\s+/g, ' ').trim();
  const short = cmd.length > 100 ? `${cmd.slice(0, 99)}…` : cmd;
  return `${short} (project ${spec.project}, priority ${spec.priority})`;
}

/** The one place the start options of a task workflow are built. */
function startOptions(
  input: TaskWorkflowInput,
  reuse: WorkflowStartOptions['workflowIdReusePolicy'],
): WorkflowStartOptions<typeof taskWorkflow> {
  const { spec } = input;
  return {
    workflowId: taskWorkflowId(spec.id),
    taskQueue: TASK_QUEUE,
    args: [input],
    workflowIdReusePolicy: reuse,
    memo: { command: spec.command, spec_hash: input.specHash, project: spec.project, executor: spec.executor },
    // What the Web UI shows for the task without opening its input.
    staticSummary: taskSummary(spec),
    staticDetails: [
      `**command** \`${spec.command.slice(0, 2000)}\``,
      `**project** ${spec.project} · **priority** ${spec.priority}${spec.node ? ` · **node** ${spec.node}` : ''}`,
      `**max runtime** ${spec.maxRuntimeS}s${spec.executor ? ` · **executor** ${spec.executor}` : ''}`,
      ...(spec.dependsOn.length ? [`**depends on** ${spec.dependsOn.join(', ')}`] : []),
      ...(spec.modifies.length ? [`**modifies** ${spec.modifies.join(', ')}`] : []),
    ].join('\n\n'),
    typedSearchAttributes: [
      { key: TaskProjectKey, value: spec.project },
      { key: TaskPriorityKey, value: spec.priority },
      { key: TaskStatusKey, value: TaskStatus.queued },
      { key: TaskNodeKey, value: spec.node ?? '' },
    ],
  };
}

export type SubmitOutcome = 'submitted' | 'unchanged';

/**
 * Starts task-<id>; an identical resubmission is a no-op, a different task under a used id an error.
 * `known` is the row when the caller can read dispatch.db (null on a machine without it).
 */
export async function startTask(client: Client, spec: TaskSpec, cfg: DispatchConfig, known: TaskRow | null): Promise<SubmitOutcome> {
  const input = taskWorkflowInput(spec, cfg);
  if (known) {
    if (known.spec_hash === input.specHash) return 'unchanged';
    throw new UserError(`task id ${spec.id} is already used by a different task (status ${known.status ?? 'unknown'})`);
  }
  const workflowId = taskWorkflowId(spec.id);
  try {
    await client.workflow.start(TASK_WORKFLOW_TYPE, startOptions(input, 'REJECT_DUPLICATE'));
    return 'submitted';
  } catch (e) {
    if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    const h = client.workflow.getHandle(workflowId);
    const d = await h.describe();
    if (d.status.name === 'FAILED' && (await refusedAtRegistration(h))) {
      // Its registration was refused (an unknown node, ...): no row was written, so this is a new submission.
      await client.workflow.start(TASK_WORKFLOW_TYPE, startOptions(input, 'ALLOW_DUPLICATE'));
      // Refused again (the same clash), it says so here rather than pretend it was submitted.
      await waitRegistered(client, spec.id, 20_000);
      return 'submitted';
    }
    if (d.memo?.spec_hash === input.specHash) return 'unchanged';
    throw new UserError(`task id ${spec.id} is already used by a different task (workflow ${workflowId})`);
  }
}

/**
 * Waits until task-<id> has registered its row, for `timeoutMs` at most: the register activity is
 * where a submission is checked against dispatch.db (an unknown node, a clash). Returns false when
 * no worker answered in time; throws a UserError with the reason when registration refused it.
 */
export async function waitRegistered(client: Client, taskId: string, timeoutMs: number): Promise<boolean> {
  const h = handle(client, taskId);
  const until = Date.now() + timeoutMs;
  for (let wait = 100; Date.now() < until; wait = Math.min(1000, wait * 2)) {
    const d = await h.describe();
    if (d.status.name === 'FAILED') {
      const why = await h.result().then(
        () => 'failed',
        (e: unknown) => innermostMessage(e),
      );
      throw new UserError(`task ${taskId} refused: ${why}`);
    }
    if (d.status.name !== 'RUNNING') return true;
    const st = await h.query(stateQuery).catch(() => null);
    if (st?.registered) return true;
    await new Promise((r) => setTimeout(r, wait));
  }
  return false;
}

/** True when the run failed because its register activity refused the submission (no row exists). */
async function refusedAtRegistration(h: ReturnType<Client['workflow']['getHandle']>): Promise<boolean> {
  const err = await h.result().then(
    () => null,
    (e: unknown) => e,
  );
  for (let c: unknown = err; c instanceof Error; c = c.cause) {
    if (c instanceof ApplicationFailure && c.type === ActivityFailure.invalidSubmission) return true;
  }
  return false;
}

function innermostMessage(e: unknown): string {
  let m = e instanceof Error ? e.message : String(e);
  for (let c: unknown = e; c instanceof Error; c = c.cause) m = c.message;
  return m;
}

/** A new run of task-<id> for a row that is queued again (reaper requeue); its old run is closed. */
export async function restartTask(client: Client, input: TaskWorkflowInput): Promise<void> {
  await client.workflow.start(TASK_WORKFLOW_TYPE, startOptions(input, 'ALLOW_DUPLICATE'));
}

const handle = (client: Client, taskId: string) => client.workflow.getHandle(taskWorkflowId(taskId));

export function signalAssigned(client: Client, a: Assignment): Promise<void> {
  return handle(client, a.taskId).signal(assignedSignal, a);
}

export function signalBlocked(client: Client, taskId: string, reason: string): Promise<void> {
  return handle(client, taskId).signal(blockedSignal, { reason });
}

export function signalCancelReason(client: Client, taskId: string, reason: string): Promise<void> {
  return handle(client, taskId).signal(cancelReasonSignal, reason);
}

export function signalReap(client: Client, taskId: string, rule: string): Promise<void> {
  return handle(client, taskId).signal(reapSignal, { rule });
}
