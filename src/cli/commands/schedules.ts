/** dispatch schedules apply | list | pause | unpause | trigger */
import type { Command } from 'commander';
import { applySchedules, controlSchedule, listSchedules } from '../../schedules/schedules';
import type { Run } from '../context';
import { printJson, table } from '../format';

export function registerSchedules(program: Command, run: Run): void {
  const sched = program.command('schedules').description('the periodic sweeps as Temporal Schedules');
  sched
    .command('apply')
    .description('create or update the schedules from the config (idempotent)')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      run(async (ctx) => {
        const res = await applySchedules(await ctx.client(), ctx.config());
        if (o.json) return printJson(res);
        for (const r of res) console.log(`${r.id}: ${r.outcome}${r.everyS ? ` (every ${r.everyS}s)` : ''}`);
      }),
    );
  sched
    .command('list')
    .description('list the dispatch schedules')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      run(async (ctx) => {
        const rows = await listSchedules(await ctx.client());
        if (o.json) return printJson(rows);
        if (!rows.length) console.log('no schedules: run `dispatch schedules apply`');
        else console.log(table(rows, ['id', 'every', 'paused', 'recent', 'next']));
      }),
    );
  for (const op of ['pause', 'unpause', 'trigger'] as const) {
    sched
      .command(`${op} <name>`)
      .description(`${op} a schedule (dispatch-reaper, dispatch-node-probe, dispatch-guardian, dispatch-factory)`)
      .action((name: string) =>
        run(async (ctx) => {
          await controlSchedule(await ctx.client(), name, op);
          console.log(`${name}: ${op}${op === 'trigger' ? 'ed' : 'd'}`);
        }),
      );
  }
}
