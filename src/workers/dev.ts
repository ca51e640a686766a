/** `dispatch dev`: everything local. Temporal dev server (state in .dispatch/), db, local node, worker. */
import { Client, Connection } from '@temporalio/client';
import path from 'node:path';
import { UserError } from '../common/errors';
import type { DispatchConfig } from '../config/config';
import { applySchedules } from '../schedules/schedules';
import { localNodeInput, type Store } from '../store/store';
import { startDevServer } from './temporal-bin';
import { runWorker } from './worker';

export interface DevOptions {
  dbPath: string;
  namespace: string;
  /** Loaded (and so validated) by the caller before anything starts. */
  config: DispatchConfig;
  /** Opens dispatch.db read-write; the caller owns closing it. */
  openStore: () => Store;
  port: number;
  uiPort: number;
  localSlots: number;
  /** Where the worker serves Prometheus metrics (metrics_address, or 127.0.0.1:9464). */
  metricsAddress?: string;
}

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

/** dispatch dev serves metrics here unless the config says where. */
export const DEV_METRICS_ADDRESS = '127.0.0.1:9464';

export async function runDev(o: DevOptions): Promise<void> {
  const cfg = o.config;
  const metricsAddress = o.metricsAddress ?? cfg.metrics_address ?? DEV_METRICS_ADDRESS;
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
    const store = o.openStore();
    if (!store.getNode('local')) {
      store.addNode(localNodeInput('local', o.localSlots, path.resolve('.dispatch', 'runs')));
    }
    const conn = await Connection.connect({ address });
    const applied = await applySchedules(new Client({ connection: conn, namespace: o.namespace }), cfg);
    await conn.close();
    console.log(
      [
        '',
        'dispatch dev is up:',
        `  Temporal    ${address}   (state in ${stateDir})`,
        `  Web UI      http://localhost:${o.uiPort}   (search: TaskStatus="running", TaskNode="local")`,
        `  metrics     http://${metricsAddress}/metrics`,
        `  database    ${o.dbPath}`,
        `  local node  "local", ${store.getNode('local')?.slots} slots`,
        `  schedules   ${applied
          .filter((a) => a.outcome !== 'deleted')
          .map((a) => `${a.id} (${a.everyS}s)`)
          .join(', ')}`,
        '',
        'Try, in another terminal:',
        `  npx dispatch --address ${address} submit --id hello --command 'echo hello; sleep 5'`,
        '  npx dispatch tasks',
        `  temporal workflow list --address ${address} --query 'TaskStatus="running"'`,
        '',
      ].join('\n'),
    );
    await runWorker({
      temporal: { address, namespace: o.namespace },
      dbPath: o.dbPath,
      config: cfg,
      queues: ['dispatch', 'dispatch-db'],
      metricsAddress,
    });
  } finally {
    stopServer();
  }
}
