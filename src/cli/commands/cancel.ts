/** dispatch cancel: a Temporal cancel request; the task workflow kills the process group and books the row. */
import type { Command } from 'commander';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { signalCancelReason } from '../../client/tasks';
import { taskWorkflowId } from '../../common/constants';
import { UserError } from '../../common/errors';
import { assertTaskId } from '../../common/validate';
import type { Run } from '../context';

/** True when a workflow result failed because the workflow ended cancelled. */
export function endedCancelled(e: unknown): boolean {
  return e instanceof WorkflowFailedError && e.cause instanceof CancelledFailure;
}

export function registerCancel(program: Command, run: Run): void {
  program
    .command('cancel <id>')
    .description('cancel a task: kills its process group (TERM, grace, KILL) and frees its slot')
    .option('--reason <text>', 'recorded on the row')
    .option('--wait', 'wait until the workflow has finished cancelling')
    .action((id: string, o: { reason?: string; wait?: boolean }) =>
      run(async (ctx) => {
        assertTaskId(id);
        const client = await ctx.client();
        const h = client.workflow.getHandle(taskWorkflowId(id));
        try {
          const d = await h.describe();
          if (d.status.name !== 'RUNNING') {
            throw new UserError(`task ${id} is not running in Temporal (workflow ${d.status.name.toLowerCase()})`);
          }
          // The reason goes first so the workflow has it when it handles the cancel.
          if (o.reason) await signalCancelReason(client, id, o.reason);
          await h.cancel();
        } catch (e) {
          if (e instanceof WorkflowNotFoundError) {
            throw new UserError(`no workflow ${taskWorkflowId(id)}: unknown task, or a legacy row (the reaper handles those)`);
          }
          throw e;
        }
        console.log(`cancel requested for ${id}`);
        if (o.wait) {
          await h.result().catch((e: unknown) => {
            if (!endedCancelled(e)) throw e;
          });
          console.log(`${id} cancelled`);
        }
      }),
    );
}
