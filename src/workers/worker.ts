/**
 * The dispatch worker process: workflows and node activities on `dispatch`, database activities
 * (plus the allocator) on `dispatch-db`. Only the machine holding dispatch.db runs `dispatch-db`.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createMetrics, NO_METRICS, startDbMetrics, startMemoryMetrics } from './metrics';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createDbActivities } from '../activities/db';
import { createNodeActivities, probeBatcher } from '../activities/node';
import { SuperviseWatcher } from '../activities/watcher';
import { livenessInterceptor } from '../activities/liveness';
import { createReaperDbActivities, createReaperNodeActivities } from '../activities/reaper';
import { sweepInProcess } from '../reaper/steps';
import { connectOptions, describeConnection, type TemporalConnectionSettings } from '../client/connection';
import { ALL_QUEUES, DB_TASK_QUEUE, TASK_QUEUE } from '../common/constants';
import { TemporalUnavailableError, UserError } from '../common/errors';
import type { DispatchConfig } from '../config/config';
import { ShellPool } from '../shell/pool';
import { Store } from '../store/store';
import { Allocator } from './allocator';
import { installSdkLogger } from './logger';
import { applyHeapGrowing, missingStartFlags, WORKER_START } from './memory';
import { checkSearchAttributes } from './preflight';

export interface WorkerRunOptions {
  /** Where and how to reach Temporal (src/client/connection.ts). */
  temporal: TemporalConnectionSettings;
  dbPath: string;
  config: DispatchConfig;
  queues: string[];
  /** Resolves when the workers are polling. */
  onReady?: () => void;
  /** Run the reconciling sweep before polling. @default true */
  startupSweep?: boolean;
  log?: (line: string) => void;
  /** A workflow bundle to run instead of the built one (dispatch worker --workflow-bundle). */
  workflowBundle?: string;
  /**
   * Worker Versioning: the `dispatch` queue's worker is build `buildId` of the worker deployment
   * `deploymentName`, and workflows auto-upgrade to the deployment's current version. The
   * `dispatch-db` worker stays unversioned (docs/WORKFLOWS.md).
   */
  buildId?: string;
  deploymentName?: string;
  /** HOST:PORT to serve Prometheus metrics on (--metrics, config metrics_address); absent: none. */
  metricsAddress?: string | null;
}

export const DEPLOYMENT_NAME_DEFAULT = 'dispatch';

/** Versioned pollers (auto-upgrade), or unversioned ones when no build id is given. */
function deploymentOptions(opts: WorkerRunOptions): Pick<WorkerOptions, 'workerDeploymentOptions'> {
  if (!opts.buildId) return {};
  return {
    workerDeploymentOptions: {
      useWorkerVersioning: true,
      version: { deploymentName: opts.deploymentName ?? DEPLOYMENT_NAME_DEFAULT, buildId: opts.buildId },
      defaultVersioningBehavior: 'AUTO_UPGRADE',
    },
  };
}

export function parseQueues(value: string | undefined): string[] {
  if (!value) return [...ALL_QUEUES];
  const qs = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const q of qs) {
    if (!(ALL_QUEUES as readonly string[]).includes(q))
      throw new UserError(`unknown queue ${JSON.stringify(q)}: choose from ${ALL_QUEUES.join(', ')}`);
  }
  if (qs.length === 0) throw new UserError('--queues needs at least one queue');
  return [...new Set(qs)];
}

/** The given bundle, else the prebuilt one (npm run build), else the source path as a fallback. */
function workflowSource(given?: string): Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'> {
  if (given) {
    if (!existsSync(given)) throw new UserError(`--workflow-bundle: no such file: ${given}`);
    return { workflowBundle: { codePath: path.resolve(given) } };
  }
  const bundle = path.resolve(__dirname, '../../workflow-bundle.js');
  if (existsSync(bundle)) return { workflowBundle: { codePath: bundle } };
  return { workflowsPath: require.resolve('../workflows') };
}

export async function runWorker(opts: WorkerRunOptions): Promise<void> {
  applyHeapGrowing();
  const metricsAddress = opts.metricsAddress ?? opts.config.metrics_address;
  installSdkLogger(metricsAddress);
  const log = opts.log ?? ((l: string) => console.log(l));
  const meter = Runtime.instance().metricMeter;
  const metrics = metricsAddress ? createMetrics(meter) : NO_METRICS;
  let dbMetrics: { stop(): void } | null = null;
  const t = opts.temporal;
  const namespace = t.namespace;
  const connection = await NativeConnection.connect(connectOptions(t)).catch((e: Error) => {
    throw new TemporalUnavailableError(describeConnection(t), `: ${e.message.split('\n')[0]}`);
  });
  const clientConnection = await Connection.connect(connectOptions(t));
  const client = new Client({ connection: clientConnection, namespace });
  const pool = new ShellPool();
  const watcher = new SuperviseWatcher({
    batcher: probeBatcher(pool, opts.config.outage_tolerance),
    completion: client.activity,
    horizonS: opts.config.outage_tolerance,
    warn: (msg, fields) => log(`[dispatch] ${msg} ${JSON.stringify(fields)}`),
  });
  const memMetrics = metricsAddress ? startMemoryMetrics(meter, undefined, () => watcher.size) : null;
  const workers: Worker[] = [];
  let store: Store | null = null;
  let allocator: Allocator | null = null;
  // ms: 4 heartbeats per lease, and at least one every 2 s for the 10 s liveness timeout of other activities.
  const throttle = Math.min(2000, Math.max(200, Math.floor(opts.config.lease_s * 250)));
  try {
    await checkSearchAttributes(clientConnection, namespace, log);
    if (opts.queues.includes(TASK_QUEUE)) {
      workers.push(
        await Worker.create({
          connection,
          namespace,
          taskQueue: TASK_QUEUE,
          ...deploymentOptions(opts),
          ...workflowSource(opts.workflowBundle),
          activities: {
            ...createNodeActivities({ pool, watcher, fence: { afterS: opts.config.fence_after, graceS: opts.config.kill_grace }, metrics }),
            ...createReaperNodeActivities({ pool, client }),
          },
          // Supervise hands its attempt to the watcher and completes asynchronously, so no slot is
          // held per running task: these are launches' kills, probes and sweeps in flight.
          maxConcurrentActivityTaskExecutions: 1000,
          maxHeartbeatThrottleInterval: throttle,
          defaultHeartbeatThrottleInterval: throttle,
          interceptors: { activity: [livenessInterceptor] },
          // Bounded memory with many running tasks: an evicted workflow replays on its next slice.
          maxCachedWorkflows: opts.config.max_cached_workflows,
          maxConcurrentWorkflowTaskExecutions: Math.min(40, opts.config.max_cached_workflows),
          shutdownGraceTime: '3s',
        }),
      );
    }
    if (opts.queues.includes(DB_TASK_QUEUE)) {
      store = new Store(opts.dbPath);
      allocator = new Allocator(store, client);
      // Start-up recovery: one reconciling sweep before anything polls, so the books are right first.
      if (opts.startupSweep !== false && opts.config.enabled) {
        try {
          const r = await sweepInProcess({ store, pool, client, config: opts.config, log: (l) => log(`[dispatch] ${l}`) });
          log(
            `start-up sweep: ${r.ghosts_found} ghosts, ${r.cleaned.length} cleaned, ${r.skipped.length} skipped, ${r.drift_fixed.length} drift fixed`,
          );
        } catch (e) {
          log(`start-up sweep failed (the scheduled reaper will retry): ${(e as Error).message}`);
        }
      }
      workers.push(
        await Worker.create({
          connection,
          namespace,
          // Never versioned: it runs no workflow code, and there is one of it per dispatch.db, which a
          // new build's version would otherwise have to poll alongside the old one before a switch.
          taskQueue: DB_TASK_QUEUE,
          activities: {
            ...createDbActivities({ store, allocator }),
            ...createReaperDbActivities({ store, client, config: opts.config, allocator, metrics }),
          },
          maxConcurrentActivityTaskExecutions: 64,
          maxHeartbeatThrottleInterval: 2000,
          interceptors: { activity: [livenessInterceptor] },
          shutdownGraceTime: '3s',
        }),
      );
      allocator.start();
      if (metricsAddress) dbMetrics = startDbMetrics(store, meter);
    }
    const build = opts.buildId ? `; build ${opts.deploymentName ?? DEPLOYMENT_NAME_DEFAULT}/${opts.buildId}` : '';
    log(`dispatch worker polling ${opts.queues.join(', ')} on ${describeConnection(t)}${store ? `; db ${opts.dbPath}` : ''}${build}`);
    if (metricsAddress) log(`metrics: http://${metricsAddress}/metrics`);
    const missing = missingStartFlags();
    if (missing.length)
      log(
        `memory: node was started without ${missing.join(' ')}: V8's own heap settings keep more of its memory committed ` +
          `(the service units start it as node ${WORKER_START.nodeFlags.join(' ')} bin/dispatch.js worker; docs/SERVICE.md, "Memory")`,
      );
    opts.onReady?.();
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    // Supervised attempts go back to Temporal now, to be retried on a live worker within a second.
    await watcher.shutdown();
    dbMetrics?.stop();
    memMetrics?.stop();
    allocator?.stop();
    pool.closeAll();
    store?.close();
    await clientConnection.close().catch(() => undefined);
    await connection.close().catch(() => undefined);
  }
}
