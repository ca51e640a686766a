/** `dispatch dev`: everything local. Temporal dev server (state in .dispatch/), db, local node, worker. */
import { Connection } from '@temporalio/client';
import path from 'node:path';
import { UserError } from '../common/errors';
import type { Ctx } from '../cli/context';
import { startDevServer } from './temporal-bin';
import { runWorker } from './worker';
import { Client } from '@temporalio/client';
import { applySchedules } from '../schedules/schedules';
import { localNodeInput } from '../store/store';

export async function waitForTemporal(address: string, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    if (!alive()) throw new UserError('the Temporal dev server exited during start-up (is the port in use?)');
    try {
      const c = await Connection.connect({ address, connectTimeout: 1000 });
      await c.workflowService.getSystemInfo({});
      await c.close();
      return;
    } catch (e) {
      last = (e as Error).message;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  throw new UserError(`Temporal at ${address} did not become ready in ${timeoutMs / 1000}s: ${last}`);
}

export async function runDev(ctx: Ctx, o: { port: number; uiPort: number; localSlots: number }): Promise<void> {
  const cfg = ctx.config(); // refuse a broken config before starting anything
  const stateDir = path.resolve('.dispatch', 'temporal');
  const address = `127.0.0.1:${o.port}`;
  const server = startDevServer({ dir: stateDir, port: o.port, uiPort: o.uiPort });
  let exited = false;
  server.on('exit', () => (exited = true));
  const stopServer = (): void => {
    if (!exited) server.kill('SIGTERM');
  };
  process.on('exit', stopServer);
  try {
    await waitForTemporal(address, 60_000, () => !exited);
    const store = ctx.store();
    if (!store.getNode('local')) {
      store.addNode(localNodeInput('local', o.localSlots, path.resolve('.dispatch', 'runs')));
    }
    const conn = await Connection.connect({ address });
    const applied = await applySchedules(new Client({ connection: conn, namespace: ctx.namespace }), cfg);
    await conn.close();
    console.log(
      [
        '',
        'dispatch dev is up:',
        `  Temporal    ${address}   (state in ${stateDir})`,
        `  Web UI      http://localhost:${o.uiPort}   (search: TaskStatus="running", TaskNode="local")`,
        `  database    ${ctx.dbPath}`,
        `  local node  "local", ${store.getNode('local')?.slots} slots`,
        `  schedules   ${applied.filter((a) => a.outcome !== 'deleted').map((a) => `${a.id} (${a.everyS}s)`).join(', ')}`,
        '',
        'Try, in another terminal:',
        `  npx dispatch --address ${address} submit --id hello --command 'echo hello; sleep 5'`,
        '  npx dispatch tasks',
        `  temporal workflow list --address ${address} --query 'TaskStatus="running"'`,
        '',
      ].join('\n'),
    );
    await runWorker({ address, namespace: ctx.namespace, dbPath: ctx.dbPath, config: cfg, queues: ['dispatch', 'dispatch-db'] });
  } finally {
    stopServer();
  }
}
