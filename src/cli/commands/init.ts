/** dispatch init */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import type { Run } from '../context';

export function registerInit(program: Command, run: Run): void {
  program
    .command('init')
    .description('create dispatch.db, or adopt a legacy one in place (every row kept)')
    .action(() =>
      run(async (ctx) => {
        const existed = existsSync(ctx.dbPath);
        const s = ctx.store();
        const n = s.taskCount();
        console.log(`${existed ? 'adopted' : 'created'} ${ctx.dbPath} (${n} task rows, ${s.listNodes().length} nodes)`);
      }),
    );
}
