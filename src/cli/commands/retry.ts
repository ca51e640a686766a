/** dispatch retry: a failed, cancelled or blocked task runs again as a new run of task-<id>, keeping its records. */
import type { Command } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { restartTask, taskInputFromRow } from '../../client/tasks';
import { TaskStatus, taskWorkflowId } from '../../common/constants';
import { NotFoundError, UserError } from '../../common/errors';
import { assertTaskId } from '../../common/validate';
import { fenceFallsAtMs } from '../../reaper/fence';
import type { Run } from '../context';
import { printJson } from '../format';

const RETRYABLE: string[] = [TaskStatus.failed, TaskStatus.cancelled, TaskStatus.blocked];

export function registerRetry(program: Command, run: Run): void {
  program
    .command('retry <id>')
    .description('run a failed, cancelled or blocked task again: same row, earlier attempts kept, a fresh budget of attempts')
    .option('--reason <text>', 'recorded in the task events')
    .option('--json', 'print {"id", "workflow_id", "run_id", "attempts", "max_attempts"}')
    .action((id: string, o: { reason?: string; json?: boolean }) =>
      run(async (ctx) => {
        assertTaskId(id);
        const cfg = ctx.config();
        const store = ctx.store();
        const row = store.getTask(id);
        if (!row) throw new NotFoundError(`unknown task ${id}`);
        if (!RETRYABLE.includes(row.status ?? '')) {
          const why = row.status === TaskStatus.completed ? 'it completed' : `it is ${row.status ?? 'in an unknown state'}`;
          throw new UserError(`task ${id} is not retried: ${why} (only failed, cancelled or blocked tasks are)`);
        }
        const node = row.node ? store.getNode(row.node) : null;
        if (node?.status === 'offline') {
          // Its last attempt may still run on the cut-off node until its watchdog has fenced it.
          const falls = fenceFallsAtMs(
            row,
            {
              killGraceS: cfg.kill_grace,
              leaseS: cfg.lease_s,
              heartbeatRecordS: cfg.heartbeat_record_interval,
              fenceAfterS: 0,
              horizonS: cfg.outage_tolerance,
            },
            null,
          );
          if (falls === null) {
            throw new UserError(
              `task ${id} is not retried yet: its last attempt on ${node.name} has no fence and ${node.name} is offline; retry once it is back`,
            );
          }
          if (Date.now() < falls) {
            throw new UserError(
              `task ${id} is not retried yet: its last attempt on ${node.name} may run until its fence falls at ${new Date(falls).toISOString()}`,
            );
          }
        }
        const input = taskInputFromRow(row, store.getSpecBody(id), cfg);
        if (!input) throw new UserError(`task ${id} cannot be run again: its row has no command (a legacy row)`);
        const client = await ctx.client();
        const wfId = row.workflow_id ?? taskWorkflowId(id);
        const d = await client.workflow
          .getHandle(wfId)
          .describe()
          .catch((e: unknown) => {
            if (e instanceof WorkflowNotFoundError) return null;
            throw e;
          });
        if (d?.status.name === 'RUNNING') throw new UserError(`task ${id} is not retried: its workflow ${wfId} is still running`);
        const reason = o.reason?.trim() ? o.reason.trim().slice(0, 500) : 'retried by operator';
        const r = store.retryTask(id, row, cfg.max_requeue, reason);
        if (!r.applied) throw new UserError(`task ${id} is not retried: ${r.reason ?? 'its row changed'}`);
        const budget = r.row?.max_attempts ?? (row.attempts ?? 0) + cfg.max_requeue;
        input.options.maxAttempts = budget;
        try {
          await restartTask(client, input);
        } catch (e) {
          store.undoRetry(row, `the new workflow could not be started: ${(e as Error).message.split('\n')[0]}`);
          throw e;
        }
        const runId = (await client.workflow.getHandle(wfId).describe()).runId;
        if (o.json) return printJson({ id, workflow_id: wfId, run_id: runId, attempts: row.attempts ?? 0, max_attempts: budget });
        console.log(`retrying ${id} (workflow ${wfId} run ${runId}): attempts ${(row.attempts ?? 0) + 1} to ${budget}`);
      }),
    );
}
