/** dispatch dev: the CLI side only turns flags and the Ctx into runDev's plain options. */
import type { Command } from 'commander';
import os from 'node:os';
import { DEFAULT_NAMESPACE } from '../../client/connection';
import { runDev } from '../../workers/dev';
import { positiveInt } from '../args';
import type { Run } from '../context';

export function registerDev(program: Command, run: Run): void {
  program
    .command('dev')
    .description('the main job: Temporal dev server (UI :8233), a worker and a local node, all on this machine')
    .option('--port <n>', 'Temporal frontend port', '7233')
    .option('--ui-port <n>', 'Web UI port', '8233')
    .option('--local-slots <n>', 'slots of the local node (default: CPU count)')
    .action((o: { port: string; uiPort: string; localSlots?: string }) =>
      run(async (ctx) => {
        await runDev({
          port: positiveInt('--port', o.port, 1),
          uiPort: positiveInt('--ui-port', o.uiPort, 1),
          localSlots: o.localSlots ? positiveInt('--local-slots', o.localSlots, 1) : os.cpus().length,
          dbPath: ctx.dbPath,
          // The dev server it starts, whatever a profile or TEMPORAL_* says.
          namespace: ctx.globals.namespace ?? DEFAULT_NAMESPACE,
          config: ctx.config(),
          // Through the Ctx, so main() closes the store when dev ends.
          openStore: () => ctx.store(),
        });
      }),
    );
}
