/** dispatch worker */
import type { Command } from 'commander';
import { parseQueues, runWorker } from '../../workers/worker';
import type { Run } from '../context';

export function registerWorker(program: Command, run: Run): void {
  program
    .command('worker')
    .description('run the workflows and activities (both task queues unless --queues)')
    .option('--queues <list>', 'comma-separated: dispatch,dispatch-db')
    .option(
      '--workflow-bundle <path>',
      'run this workflow bundle instead of the built dist/workflow-bundle.js (env DISPATCH_WORKFLOW_BUNDLE; see docs/WORKFLOWS.md)',
    )
    .action((o: { queues?: string; workflowBundle?: string }) =>
      run(async (ctx) => {
        const queues = parseQueues(o.queues);
        const workflowBundle = o.workflowBundle ?? (process.env.DISPATCH_WORKFLOW_BUNDLE || undefined);
        await runWorker({
          address: ctx.address,
          namespace: ctx.namespace,
          dbPath: ctx.dbPath,
          config: ctx.config(),
          queues,
          workflowBundle,
        });
      }),
    );
}
