/** dispatch worker */
import type { Command } from 'commander';
import { parseQueues, runWorker } from '../../workers/worker';
import type { Run } from '../context';

export function registerWorker(program: Command, run: Run): void {
  program
    .command('worker')
    .description('run the workflows and activities (both task queues unless --queues)')
    .option('--queues <list>', 'comma-separated: dispatch,dispatch-db')
    .action((o: { queues?: string }) =>
      run(async (ctx) => {
        const queues = parseQueues(o.queues);
        await runWorker({ address: ctx.address, namespace: ctx.namespace, dbPath: ctx.dbPath, config: ctx.config(), queues });
      }),
    );
}
