/** dispatch reap: one sweep, through the reaper workflow or (--direct) in this process. */
import type { Command } from 'commander';
import { TASK_QUEUE } from '../../common/constants';
import { UserError } from '../../common/errors';
import { assertTaskId } from '../../common/validate';
import type { SweepOverrides } from '../../reaper/options';
import { sweepInProcess } from '../../reaper/steps';
import type { SweepReport } from '../../reaper/sweep';
import { ShellPool } from '../../shell/pool';
import { positiveInt, positiveNumber } from '../args';
import type { Ctx, Run } from '../context';
import { printJson, table } from '../format';

interface ReapFlags {
  dryRun?: boolean;
  ids?: string;
  project?: string;
  staleMinutes?: string;
  thresholdHours?: string;
  maxAttempts?: string;
  action?: string;
  direct?: boolean;
  json?: boolean;
}

function overridesFrom(o: ReapFlags, ctx: Ctx): SweepOverrides {
  const ov: SweepOverrides = { dryRun: o.dryRun === true };
  if (o.ids) ov.ids = o.ids.split(',').map((x) => assertTaskId(x.trim()));
  if (o.project) ov.project = o.project;
  if (o.staleMinutes !== undefined) {
    ov.staleS = positiveNumber('--stale-minutes', o.staleMinutes) * 60;
    const floor = ctx.config().heartbeat_record_interval + ctx.config().lease_s;
    if (ov.staleS <= floor) {
      throw new UserError(
        `--stale-minutes must be longer than heartbeat_record_interval + lease_s (${floor}s): ` +
          'live tasks refresh their heartbeat only that often',
      );
    }
  }
  if (o.thresholdHours !== undefined) ov.thresholdHours = positiveNumber('--threshold-hours', o.thresholdHours);
  if (o.maxAttempts !== undefined) ov.maxAttempts = positiveInt('--max-attempts', o.maxAttempts, 1);
  if (o.action !== undefined) {
    if (o.action !== 'fail' && o.action !== 'requeue') throw new UserError('--action must be fail or requeue');
    ov.action = o.action;
  }
  return ov;
}

function printReport(report: SweepReport): void {
  const prefix = report.dry_run ? 'DRY RUN: nothing changed. ' : '';
  console.log(
    `${prefix}${report.ghosts_found} ghosts, ${report.cleaned.length} cleaned, ${report.skipped.length} skipped, ` +
      `${report.drift_fixed.length} slot counts fixed, ${report.locks_released} locks released`,
  );
  if (report.ghosts.length) {
    const rows = report.ghosts.map((g) => ({ ...g, kill: report.dry_run ? `would: ${g.kill}` : g.kill }));
    console.log(table(rows, ['id', 'rule', 'node', 'pid', 'kill', 'action', 'note']));
  }
  for (const s of report.skipped) console.log(`skipped ${s.id}: ${s.reason}`);
  for (const d of report.drift_fixed) {
    console.log(`${report.dry_run ? 'would fix' : 'fixed'} ${d.node}: running_count ${d.running_count_was} -> ${d.running_count_now}`);
  }
}

export function registerReap(program: Command, run: Run): void {
  program
    .command('reap')
    .description('run one ghost sweep now (through Temporal, or --direct in this process) and print the report')
    .option('--dry-run', 'change nothing, kill nothing; list what would be done')
    .option('--ids <ids>', 'only these task ids (comma-separated)')
    .option('--project <p>', 'only this project')
    .option('--stale-minutes <n>', 'heartbeat age that makes a running task stale (default TASK_STALE_S)')
    .option('--threshold-hours <h>', 'running longer than this is overtime (default threshold_hours)')
    .option('--max-attempts <n>', 'requeue only while attempts are below this (default TASK_MAX_REQUEUE)')
    .option('--action <a>', 'fail or requeue (default ghost_action)')
    .option('--direct', 'run the sweep in this process without Temporal (when the server is down)')
    .option('--json', 'print exactly the report object')
    .action((o: ReapFlags) =>
      run(async (ctx) => {
        const ov = overridesFrom(o, ctx);
        const cfg = ctx.config();
        let report: SweepReport;
        if (o.direct) {
          const store = ctx.store();
          const pool = new ShellPool();
          try {
            report = await sweepInProcess({ store, pool, client: null, config: cfg, log: (l) => console.error(`[dispatch] ${l}`) }, ov);
          } finally {
            pool.closeAll();
          }
        } else {
          const client = await ctx.client();
          report = await client.workflow.execute('reaperWorkflow', {
            taskQueue: TASK_QUEUE,
            workflowId: `dispatch-reap-${new Date().toISOString().replace(/[:.]/g, '-')}`,
            args: [{ overrides: ov }],
            workflowExecutionTimeout: '30m',
          });
        }
        if (o.json) {
          const { ghosts_found, cleaned, skipped, drift_fixed, dry_run, timestamp } = report;
          const { ghosts, requeued, locks_released } = report;
          return printJson({ ghosts_found, cleaned, skipped, drift_fixed, dry_run, timestamp, ghosts, requeued, locks_released });
        }
        printReport(report);
      }),
    );
}
