/** dispatch worker */
import type { Command } from 'commander';
import { UserError } from '../../common/errors';
import { isMetricsAddress } from '../../common/validate';
import { DEPLOYMENT_NAME_DEFAULT, parseQueues, runWorker } from '../../workers/worker';
import type { Run } from '../context';

/** Build ids and deployment names: letters, digits and . _ - (Temporal refuses some others). */
function nameOk(flag: string, v: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(v))
    throw new UserError(`${flag} ${JSON.stringify(v)}: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  return v;
}

export function registerWorker(program: Command, run: Run): void {
  program
    .command('worker')
    .description('run the workflows and activities (both task queues unless --queues)')
    .option('--queues <list>', 'comma-separated: dispatch,dispatch-db')
    .option(
      '--workflow-bundle <path>',
      'run this workflow bundle instead of the built dist/workflow-bundle.js (env DISPATCH_WORKFLOW_BUNDLE; see docs/WORKFLOWS.md)',
    )
    .option('--build-id <id>', 'Worker Versioning: poll as this build of the worker deployment; tasks auto-upgrade (docs/WORKFLOWS.md)')
    .option('--deployment <name>', `worker deployment name for --build-id (default ${DEPLOYMENT_NAME_DEFAULT})`)
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (config metrics_address; docs/METRICS.md)')
    .action((o: { queues?: string; workflowBundle?: string; buildId?: string; deployment?: string; metrics?: string }) =>
      run(async (ctx) => {
        const queues = parseQueues(o.queues);
        const workflowBundle = o.workflowBundle ?? (process.env.DISPATCH_WORKFLOW_BUNDLE || undefined);
        if (o.deployment !== undefined && o.buildId === undefined) throw new UserError('--deployment needs --build-id');
        if (o.metrics !== undefined && !isMetricsAddress(o.metrics))
          throw new UserError(`--metrics: expected HOST:PORT (e.g. 127.0.0.1:9464), got ${JSON.stringify(o.metrics)}`);
        await runWorker({
          temporal: ctx.temporal(),
          dbPath: ctx.dbPath,
          config: ctx.config(),
          queues,
          workflowBundle,
          buildId: o.buildId === undefined ? undefined : nameOk('--build-id', o.buildId),
          deploymentName: o.deployment === undefined ? undefined : nameOk('--deployment', o.deployment),
          metricsAddress: o.metrics,
        });
      }),
    );
}
