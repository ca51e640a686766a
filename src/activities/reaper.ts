/**
 * Activities of the scheduled sweeps. Database ones run on `dispatch-db` (the one writer); node
 * and Temporal ones on `dispatch`.
 */
import { log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { NodeRow, TaskSpec, TaskWorkflowInput } from '../common/types';
import { TASK_QUEUE, taskWorkflowId } from '../common/constants';
import type { DispatchConfig } from '../config/config';
import { findCycles, LONG_RUNNING_S } from '../reaper/guardian';
import { cleanupStaleProcesses, OFFLINE_AFTER_MISSES, probeNodes, pruneAttemptDirs, type CleanupResult, type ProbeResult } from '../reaper/nodes';
import { parseTime } from '../reaper/rules';
import { applySweep, killGhosts, planSweep, summarize, type KillNote, type SweepOptions, type SweepPlan, type SweepReport } from '../reaper/sweep';
import { stopGhostWorkflows, temporalInspector } from '../reaper/temporal';
import { parseSpecText } from '../spec/spec';
import { shq } from '../shell/quote';
import type { ShellPool } from '../shell/pool';
import type { Store } from '../store/store';
import { submitOne } from '../cli/submit';
import type { Kicker } from './db';

/** What `dispatch reap` flags (or a schedule) may override; the rest comes from the config. */
export interface SweepOverrides {
  dryRun?: boolean;
  ids?: string[] | null;
  project?: string | null;
  staleS?: number;
  thresholdHours?: number;
  maxAttempts?: number;
  action?: 'fail' | 'requeue';
}

export function sweepOptions(cfg: DispatchConfig, o: SweepOverrides = {}): SweepOptions {
  return {
    dryRun: o.dryRun ?? false,
    ids: o.ids && o.ids.length ? o.ids : null,
    project: o.project ?? null,
    staleS: o.staleS ?? cfg.stale_s,
    thresholdHours: o.thresholdHours ?? cfg.threshold_hours,
    maxAttempts: o.maxAttempts ?? cfg.max_requeue,
    action: o.action ?? cfg.ghost_action,
    autoKill: cfg.auto_kill,
    batch: cfg.reap_batch,
    leaseS: cfg.lease_s,
    killGraceS: cfg.kill_grace,
    notifyUrl: cfg.notify_on_clean && cfg.webhook_url ? cfg.webhook_url : null,
  };
}

function inputFromRow(store: Store, id: string, cfg: DispatchConfig): TaskWorkflowInput | null {
  const r = store.getTask(id);
  if (!r || !r.command || !r.spec_hash) return null;
  const list = (v: string | null): string[] => {
    try {
      const a: unknown = JSON.parse(v ?? '[]');
      return Array.isArray(a) ? a.filter((x): x is string => typeof x === 'string') : [];
    } catch {
      return [];
    }
  };
  const spec: TaskSpec = {
    id: r.id,
    project: r.project ?? 'default',
    priority: r.priority ?? 50,
    dependsOn: list(r.depends_on),
    modifies: list(r.modifies),
    command: r.command,
    specBody: null,
    executor: r.executor ?? null,
    estimatedMinutes: null,
    maxRuntimeS: r.max_runtime_s ?? cfg.max_runtime,
    node: r.pin_node,
  };
  spec.specBody = store.getSpecBody(id);
  return {
    spec,
    specHash: r.spec_hash,
    options: { leaseS: cfg.lease_s, maxAttempts: cfg.max_requeue, killGraceS: cfg.kill_grace, heartbeatRecordS: cfg.heartbeat_record_interval },
  };
}

/** Webhook URLs often carry a token in the path or query: log only where it goes. */
function redact(url: string): string {
  try {
    return `${new URL(url).origin}/...`;
  } catch {
    return '(invalid URL)';
  }
}

export async function postWebhook(url: string, report: unknown): Promise<void> {
  try {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report), signal: AbortSignal.timeout(10_000) });
    if (!r.ok) console.warn(`[dispatch] webhook ${redact(url)} answered ${r.status}`);
  } catch (e) {
    console.warn(`[dispatch] webhook ${redact(url)} failed: ${(e as Error).message}`);
  }
}

/** Runs every phase in this process: `dispatch reap --direct` and the worker's start-up recovery. */
export async function sweepInProcess(
  deps: { store: Store; pool: ShellPool; client: Client | null; config: DispatchConfig; log?: (line: string) => void },
  o: SweepOptions,
): Promise<SweepReport> {
  const inspect = deps.client ? temporalInspector(deps.client) : undefined;
  const plan = await planSweep(deps.store, o, inspect);
  if (deps.client && !o.dryRun) await stopGhostWorkflows(deps.client, plan);
  const kills = await killGhosts(deps.pool, plan);
  const report = applySweep(deps.store, plan, kills);
  if (deps.client) await restartRequeued(deps.client, deps.store, deps.config, report.requeued);
  const line = summarize(report);
  if (line) (deps.log ?? ((l: string) => console.error(l)))(`[dispatch] ${line}`);
  if (!o.dryRun && o.notifyUrl && report.cleaned.length) await postWebhook(o.notifyUrl, report);
  return report;
}

async function restartRequeued(client: Client, store: Store, cfg: DispatchConfig, ids: string[]): Promise<void> {
  for (const id of ids) {
    const input = inputFromRow(store, id, cfg);
    if (!input) continue;
    try {
      await client.workflow.start('taskWorkflow', {
        workflowId: taskWorkflowId(id),
        taskQueue: TASK_QUEUE,
        args: [input],
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        memo: { command: input.spec.command, spec_hash: input.specHash, project: input.spec.project, executor: input.spec.executor },
      });
    } catch (e) {
      console.warn(`[dispatch] could not restart the workflow of requeued ${id}: ${(e as Error).message}`);
    }
  }
}

export function createReaperDbActivities(deps: { store: Store; client: Client; config: DispatchConfig; allocator: Kicker }) {
  const { store, client, config } = deps;
  return {
    async reaperPlan(o: SweepOverrides): Promise<SweepPlan> {
      return planSweep(store, sweepOptions(config, o), temporalInspector(client));
    },
    async reaperApply(plan: SweepPlan, kills: Record<string, KillNote>): Promise<SweepReport> {
      const report = applySweep(store, plan, kills);
      await restartRequeued(client, store, config, report.requeued);
      deps.allocator.kick();
      const line = summarize(report);
      if (line) log.info(line);
      return report;
    },
    async listNodes(): Promise<NodeRow[]> {
      return store.listNodes();
    },
    /** Books a probe round; returns offline nodes that answered (to recover) with their current attempts. */
    async recordProbes(results: ProbeResult[]): Promise<{ recover: { node: NodeRow; current: string[] }[]; wentOffline: string[] }> {
      const wentOffline: string[] = [];
      const recover: { node: NodeRow; current: string[] }[] = [];
      for (const r of results) {
        const res = store.recordProbe(r.name, r.ok, OFFLINE_AFTER_MISSES);
        if (res.wentOffline) {
          wentOffline.push(r.name);
          log.warn(`node ${r.name} is offline after ${OFFLINE_AFTER_MISSES} missed probes: ${r.error}`);
        }
        const n = store.getNode(r.name);
        if (r.ok && n?.status === 'offline') recover.push({ node: n, current: store.allCurrentAttempts() });
      }
      return { recover, wentOffline };
    },
    async markNodeOnline(name: string, cleanup: CleanupResult): Promise<boolean> {
      const n = store.getNode(name);
      if (n?.status !== 'offline' || !cleanup.clean) return false;
      store.setNodeStatus(name, 'online');
      store.event(null, null, 'node_online', cleanup);
      log.info(`node ${name} is back online after killing ${cleanup.killed.length} leftover processes`);
      deps.allocator.kick();
      return true;
    },
    async guardianScan(): Promise<{ blocked: { taskId: string; reason: string }[]; cycles: string[][]; long_running: { id: string; node: string | null; hours: number }[]; timestamp: string }> {
      const blocked = store.blockFailedDependencies();
      for (const b of blocked) {
        await client.workflow.getHandle(taskWorkflowId(b.taskId)).signal('blocked', { reason: b.reason }).catch(() => undefined);
      }
      const cycles = findCycles(store.queuedDependencies());
      const now = Date.now();
      const long_running = store
        .listTasks({ status: 'running' })
        .filter((t) => {
          const started = parseTime(t.started_at);
          const hb = parseTime(t.last_heartbeat);
          return started !== null && (now - started) / 1000 > LONG_RUNNING_S && hb !== null && (now - hb) / 1000 < config.stale_s;
        })
        .map((t) => ({ id: t.id, node: t.node, hours: Math.round(((now - parseTime(t.started_at)!) / 3600_000) * 10) / 10 }));
      const report = { blocked, cycles, long_running, timestamp: new Date(now).toISOString() };
      if (blocked.length || cycles.length || long_running.length) {
        store.recordReaperRun('guardian', report);
        log.info(`guardian: ${blocked.length} blocked, ${cycles.length} dependency cycles, ${long_running.length} running > 4h (still heartbeating; not killed)`);
      }
      return report;
    },
    /** Online nodes with their current attempts, and the cutoff before which attempt dirs are removed. */
    async retentionTargets(): Promise<{ nodes: { node: NodeRow; current: string[] }[]; cutoffEpochS: number }> {
      const current = store.allCurrentAttempts();
      const nodes = store.listNodes().filter((n) => n.status === 'online').map((n) => ({ node: n, current }));
      return { nodes, cutoffEpochS: Math.floor(Date.now() / 1000 - config.retention) };
    },
    async recordPrune(results: { node: string; removed: string[]; error: string | null }[]): Promise<void> {
      const removed = results.reduce((a, r) => a + r.removed.length, 0);
      if (removed) {
        store.event(null, null, 'attempt_dirs_pruned', results.map((r) => ({ node: r.node, removed: r.removed.length, error: r.error })));
        log.info(`guardian: removed ${removed} attempt directories past retention`);
      }
      for (const r of results) if (r.error) log.warn(`guardian: pruning on ${r.node} failed: ${r.error}`);
    },
    /** Factory: for projects under min_pending queued tasks, run the command and submit what it prints. */
    async factoryRun(): Promise<{ ran: string[]; submitted: string[]; errors: string[] }> {
      const f = config.factory;
      const out = { ran: [] as string[], submitted: [] as string[], errors: [] as string[] };
      if (!f) return out;
      for (const [project, n] of store.queuedCountsByProject()) {
        if (n >= f.min_pending) continue;
        out.ran.push(project);
        const cmd = f.command.split('{project}').join(shq(project));
        const r = await runLocal(cmd, { DISPATCH_PROJECT: project });
        log.info(`factory for ${project}: exit ${r.code}; ${r.stdout.trim().split('\n').length} lines`);
        if (r.code !== 0) {
          out.errors.push(`${project}: factory command exited ${r.code}: ${r.stderr.trim().slice(0, 300)}`);
          continue;
        }
        for (const line of r.stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
          if (!existsSync(line)) continue;
          try {
            const spec = parseSpecText(readFileSync(line, 'utf8'), line, { maxRuntimeS: config.max_runtime, executors: config.executors });
            const res = await submitOne(client, spec, config, store);
            if (res === 'submitted') out.submitted.push(spec.id);
          } catch (e) {
            out.errors.push(`${line}: ${(e as Error).message}`);
          }
        }
      }
      for (const e of out.errors) log.warn(`factory: ${e}`);
      if (out.ran.length) store.recordReaperRun('factory', out);
      return out;
    },
  };
}

function runLocal(cmd: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('/bin/sh', ['-c', cmd], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 10 * 60_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    p.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: null, stdout, stderr: e.message });
    });
  });
}

export function createReaperNodeActivities(deps: { pool: ShellPool; client: Client }) {
  return {
    async reaperStopWorkflows(plan: SweepPlan): Promise<Record<string, string>> {
      return stopGhostWorkflows(deps.client, plan);
    },
    async reaperKill(plan: SweepPlan): Promise<Record<string, KillNote>> {
      return killGhosts(deps.pool, plan);
    },
    async notify(url: string, report: unknown): Promise<void> {
      await postWebhook(url, report);
    },
    async probeNodes(nodes: NodeRow[]): Promise<ProbeResult[]> {
      return probeNodes(deps.pool, nodes);
    },
    async pruneRuns(node: NodeRow, current: string[], cutoffEpochS: number): Promise<{ node: string; removed: string[]; error: string | null }> {
      return pruneAttemptDirs(deps.pool, node, current, cutoffEpochS);
    },
    async cleanupNode(node: NodeRow, current: string[], graceS: number): Promise<CleanupResult> {
      return cleanupStaleProcesses(deps.pool, node, current, graceS);
    },
  };
}

export type ReaperDbActivities = ReturnType<typeof createReaperDbActivities>;
export type ReaperNodeActivities = ReturnType<typeof createReaperNodeActivities>;
