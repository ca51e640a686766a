/** dispatch backup PATH */
import type { Command } from 'commander';
import path from 'node:path';
import { UserError } from '../../common/errors';
import type { Run } from '../context';

export function registerBackup(program: Command, run: Run): void {
  program
    .command('backup')
    .description('copy dispatch.db to PATH while the worker runs (SQLite online backup), then check the copy')
    .argument('<path>', 'where the copy goes (must not exist)')
    .option('--json', 'print the report as JSON')
    .action((dest: string, o: { json?: boolean }) =>
      run(async (ctx) => {
        const target = path.resolve(dest);
        if (target === ctx.dbPath) throw new UserError('the backup path is the database itself');
        // Read-only would refuse a WAL database that needs recovery; the backup API only reads.
        const store = ctx.readStore();
        let r;
        try {
          r = await store.backup(target);
        } catch (e) {
          throw new UserError(`backup of ${ctx.dbPath} failed: ${(e as Error).message}`);
        }
        if (o.json) console.log(JSON.stringify(r));
        else
          console.log(
            `backed up ${ctx.dbPath} to ${r.path}: ${r.tasks} tasks, ${r.events} events, ${r.nodes} nodes, ${r.bytes} bytes, integrity ok`,
          );
      }),
    );
}
