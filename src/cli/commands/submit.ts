/** dispatch submit: each spec is started through the client layer; one bad spec does not stop the rest. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { startTask, waitRegistered } from '../../client/tasks';
import { taskWorkflowId } from '../../common/constants';
import { UserError } from '../../common/errors';
import type { Run } from '../context';
import { EXIT } from '../exit';
import { specsFromArgs, type SubmitFlags } from '../submit';

/** How long a submit without dispatch.db waits for the row to be registered when a node is pinned. */
const REGISTER_WAIT_MS = 20_000;

export function registerSubmit(program: Command, run: Run): void {
  program
    .command('submit [files...]')
    .description('submit tasks by flags, or from markdown spec files with YAML front matter')
    .option('--id <id>', 'task id: ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$')
    .option('--command <cmd>', 'shell command to run on the node')
    .option('--project <p>', 'project name', undefined)
    .option('--priority <n>', 'lower runs first (default 50)')
    .option('--depends-on <ids>', 'comma-separated task ids that must complete first')
    .option('--modifies <files>', 'comma-separated files; tasks sharing one never run at once')
    .option('--max-runtime <duration>', 'runtime cap, e.g. 30m or 2h (default from config, 2h)')
    .option('--node <name>', 'run only on this node')
    .option('--json', 'print one JSON object per task')
    .action((files: string[], o: SubmitFlags & { json?: boolean }) =>
      run(async (ctx) => {
        const cfg = ctx.config();
        const specs = specsFromArgs(files, o, cfg);
        const client = await ctx.client();
        // Without dispatch.db on this machine, Temporal alone tells a resubmission from a clash.
        const store = existsSync(ctx.dbPath) ? ctx.readStore() : null;
        let failed = 0;
        for (const spec of specs) {
          try {
            const known = store?.getTask(spec.id) ?? null;
            if (store && !known && spec.node !== null && !store.getNode(spec.node)) {
              throw new UserError(`unknown node ${spec.node}: \`dispatch node list\` shows the nodes, \`dispatch node add\` adds one`);
            }
            const outcome = await startTask(client, spec, cfg, known);
            const wf = taskWorkflowId(spec.id);
            // Without dispatch.db here, the pinned node is checked where the row is registered: wait for it.
            let note: string | undefined;
            if (!store && outcome === 'submitted' && spec.node !== null && !(await waitRegistered(client, spec.id, REGISTER_WAIT_MS))) {
              note = `node ${spec.node} not yet confirmed: no worker registered the task within ${REGISTER_WAIT_MS / 1000}s`;
            }
            if (o.json) console.log(JSON.stringify({ id: spec.id, workflow_id: wf, outcome, ...(note ? { note } : {}) }));
            else if (outcome === 'submitted') console.log(`submitted ${spec.id} (workflow ${wf})${note ? `; ${note}` : ''}`);
            else console.log(`${spec.id}: already submitted, unchanged`);
          } catch (e) {
            if (!(e instanceof UserError)) throw e;
            failed++;
            console.error(`dispatch: ${e.message}`);
          }
        }
        return failed ? EXIT.usage : EXIT.ok;
      }),
    );
}
