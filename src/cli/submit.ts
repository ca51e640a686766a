/** dispatch submit: flags or spec files -> one workflow task-<id> each. */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { readFileSync } from 'node:fs';
import { TASK_QUEUE, taskWorkflowId } from '../common/constants';
import { parseDurationSeconds } from '../common/duration';
import { SpecError, UserError } from '../common/errors';
import { TaskNodeKey, TaskPriorityKey, TaskProjectKey, TaskStatusKey } from '../common/search-attributes';
import type { TaskSpec, TaskWorkflowInput } from '../common/types';
import type { DispatchConfig } from '../config/config';
import { buildTaskSpec, parseSpecText, specHash, type SpecDefaults } from '../spec/spec';
import type { Store } from '../store/store';

export interface SubmitFlags {
  id?: string;
  command?: string;
  project?: string;
  priority?: string;
  dependsOn?: string;
  modifies?: string;
  maxRuntime?: string;
  node?: string;
}

export function specDefaults(cfg: DispatchConfig): SpecDefaults {
  return { maxRuntimeS: cfg.max_runtime, executors: cfg.executors };
}

export function specsFromArgs(files: string[], flags: SubmitFlags, cfg: DispatchConfig): TaskSpec[] {
  const defaults = specDefaults(cfg);
  if (files.length > 0) {
    if (flags.id || flags.command) throw new UserError('give either spec files or --id/--command, not both');
    return files.map((f) => {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch (e) {
        throw new SpecError(f, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      return parseSpecText(text, f, defaults);
    });
  }
  if (!flags.id || !flags.command) throw new UserError('submit needs --id and --command, or one or more spec files (see dispatch submit --help)');
  if (flags.maxRuntime !== undefined) parseDurationSeconds(flags.maxRuntime, '--max-runtime');
  return [
    buildTaskSpec(
      {
        task_id: flags.id,
        command: flags.command,
        project: flags.project,
        priority: flags.priority,
        depends_on: flags.dependsOn,
        modifies: flags.modifies,
        max_runtime: flags.maxRuntime,
        node: flags.node,
      },
      null,
      defaults,
      '--id ' + flags.id,
    ),
  ];
}

export function workflowInput(spec: TaskSpec, cfg: DispatchConfig): TaskWorkflowInput {
  return {
    spec,
    specHash: specHash(spec),
    options: {
      leaseS: cfg.lease_s,
      maxAttempts: cfg.max_requeue,
      killGraceS: cfg.kill_grace,
      heartbeatRecordS: cfg.heartbeat_record_interval,
    },
  };
}

export type SubmitOutcome = 'submitted' | 'unchanged';

/** Starts task-<id>; an identical resubmission is a no-op, a different task under a used id an error. */
export async function submitOne(client: Client, spec: TaskSpec, cfg: DispatchConfig, store: Store | null): Promise<SubmitOutcome> {
  const input = workflowInput(spec, cfg);
  const existing = store?.getTask(spec.id);
  if (existing) {
    if (existing.spec_hash === input.specHash) return 'unchanged';
    throw new UserError(`task id ${spec.id} is already used by a different task (status ${existing.status ?? 'unknown'})`);
  }
  const workflowId = taskWorkflowId(spec.id);
  try {
    await client.workflow.start('taskWorkflow', {
      workflowId,
      taskQueue: TASK_QUEUE,
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      memo: { command: spec.command, spec_hash: input.specHash, project: spec.project, executor: spec.executor },
      typedSearchAttributes: [
        { key: TaskProjectKey, value: spec.project },
        { key: TaskPriorityKey, value: spec.priority },
        { key: TaskStatusKey, value: 'queued' },
        { key: TaskNodeKey, value: spec.node ?? '' },
      ],
    });
    return 'submitted';
  } catch (e) {
    if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    const d = await client.workflow.getHandle(workflowId).describe();
    if (d.memo?.spec_hash === input.specHash) return 'unchanged';
    throw new UserError(`task id ${spec.id} is already used by a different task (workflow ${workflowId})`);
  }
}
