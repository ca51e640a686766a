/**
 * Activities of the scheduled sweeps. Database ones run on `dispatch-db` (the one writer); node
 * and Temporal ones on `dispatch`.
 */
import { EventKind, TaskStatus } from '../common/constants';
import { Context, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { signalBlocked, startTask } from '../client/tasks';
import type { NodeRow } from '../common/types';
import type { DispatchConfig } from '../config/config';
import { findCycles, LONG_RUNNING_S } from '../reaper/guardian';
import {
  cleanupStaleProcesses,
  OFFLINE_AFTER_MISSES,
  probeNodes,
  pruneAttemptDirs,
  type CleanupResult,
  type ProbeResult,
} from '../reaper/nodes';
import { parseTime } from '../reaper/rules';
import type { SweepOverrides } from '../reaper/options';
import { applyStep, planStep, postWebhook, type SweepDbDeps } from '../reaper/steps';
import { killGhosts, type GhostKill, type SweepPlan, type SweepReport } from '../reaper/sweep';
import { stopGhostWorkflows } from '../reaper/temporal';
import { parseSpecText } from '../spec/spec';
import { shq } from '../shell/quote';
import type { ShellPool } from '../shell/pool';
import type { Store } from '../store/store';
import type { AllocationTrigger } from './db';
import { NO_METRICS, type DispatchMetrics } from '../common/metrics';

export function createReaperDbActivities(deps: {
  store: Store;
  client: Client;
  config: DispatchConfig;
  allocator: AllocationTrigger;
  metrics?: DispatchMetrics;
}) {
  const { store, client, config } = deps;
  const metrics = deps.metrics ?? NO_METRICS;
  const sweepDeps: SweepDbDeps = { store, client, config, log: (line) => log.info(line), afterApply: () => deps.allocator.kick() };
  return {
    async reaperPlan(o: SweepOverrides): Promise<SweepPlan> {
      // Now on Temporal's clock: when the server scheduled this try (never later than now).
      return planStep(sweepDeps, o, Context.current().info.currentAttemptScheduledTimestampMs);
    },
    async reaperApply(plan: SweepPlan, kills: Record<string, GhostKill>): Promise<SweepReport> {
      const report = await applyStep(sweepDeps, plan, kills);
      for (const k of Object.values(kills)) metrics.kill(k.outcome, 'reaper');
      const began = Date.parse(plan.timestamp);
      if (Number.isFinite(began)) metrics.sweepDone(Math.max(0, (Date.now() - began) / 1000));
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
        if (!r.ok) metrics.probeFailure(r.name);
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
      const fenced = cleanup.fenced?.length ? store.recordFencedAttempts(name, cleanup.fenced) : 0;
      if (n?.status !== 'offline' || !cleanup.clean) return false;
      store.setNodeStatus(name, 'online');
      store.event(null, null, EventKind.nodeOnline, { ...cleanup, ...(cleanup.found === 0 ? { note: 'nothing left to kill' } : {}) });
      log.info(
        cleanup.found === 0
          ? `node ${name} is back online: nothing left to kill${fenced ? ` (${fenced} attempts had fenced themselves)` : ''}`
          : `node ${name} is back online after killing ${cleanup.killed.length} leftover processes`,
      );
      deps.allocator.kick();
      return true;
    },
    async guardianScan(): Promise<{
      blocked: { taskId: string; reason: string }[];
      cycles: string[][];
      long_running: { id: string; node: string | null; hours: number }[];
      timestamp: string;
    }> {
      const blocked = store.blockFailedDependencies();
      for (const b of blocked) {
        await signalBlocked(client, b.taskId, b.reason).catch(() => undefined);
      }
      const cycles = findCycles(store.queuedDependencies());
      const now = Date.now();
      const long_running = store
        .listTasks({ status: TaskStatus.running })
        .filter((t) => {
          const started = parseTime(t.started_at);
          const hb = parseTime(t.last_heartbeat);
          return started !== null && (now - started) / 1000 > LONG_RUNNING_S && hb !== null && (now - hb) / 1000 < config.stale_s;
        })
        .map((t) => ({ id: t.id, node: t.node, hours: Math.round(((now - parseTime(t.started_at)!) / 3600_000) * 10) / 10 }));
      const report = { blocked, cycles, long_running, timestamp: new Date(now).toISOString() };
      if (blocked.length || cycles.length || long_running.length) {
        store.recordReaperRun('guardian', report);
        log.info(
          `guardian: ${blocked.length} blocked, ${cycles.length} dependency cycles, ${long_running.length} running > 4h (still heartbeating; not killed)`,
        );
      }
      return report;
    },
    /** Online nodes with their current attempts, and the cutoff before which attempt dirs are removed. */
    async retentionTargets(): Promise<{ nodes: { node: NodeRow; current: string[] }[]; cutoffEpochS: number }> {
      const current = store.allCurrentAttempts();
      const nodes = store
        .listNodes()
        .filter((n) => n.status === 'online')
        .map((n) => ({ node: n, current }));
      return { nodes, cutoffEpochS: Math.floor(Date.now() / 1000 - config.retention) };
    },
    async recordPrune(results: { node: string; removed: string[]; error: string | null }[]): Promise<void> {
      const removed = results.reduce((a, r) => a + r.removed.length, 0);
      if (removed) {
        store.event(
          null,
          null,
          EventKind.attemptDirsPruned,
          results.map((r) => ({ node: r.node, removed: r.removed.length, error: r.error })),
        );
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
        for (const line of r.stdout
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)) {
          if (!existsSync(line)) continue;
          try {
            const spec = parseSpecText(readFileSync(line, 'utf8'), line, { maxRuntimeS: config.max_runtime, executors: config.executors });
            const res = await startTask(client, spec, config, store.getTask(spec.id));
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
    async reaperKill(plan: SweepPlan): Promise<Record<string, GhostKill>> {
      return killGhosts(deps.pool, plan);
    },
    async notify(url: string, report: SweepReport): Promise<void> {
      await postWebhook(url, report, (line) => log.warn(line));
    },
    async probeNodes(nodes: NodeRow[]): Promise<ProbeResult[]> {
      return probeNodes(deps.pool, nodes);
    },
    async pruneRuns(
      node: NodeRow,
      current: string[],
      cutoffEpochS: number,
    ): Promise<{ node: string; removed: string[]; error: string | null }> {
      return pruneAttemptDirs(deps.pool, node, current, cutoffEpochS);
    },
    async cleanupNode(node: NodeRow, current: string[], graceS: number): Promise<CleanupResult> {
      return cleanupStaleProcesses(deps.pool, node, current, graceS);
    },
  };
}

export type ReaperDbActivities = ReturnType<typeof createReaperDbActivities>;
export type ReaperNodeActivities = ReturnType<typeof createReaperNodeActivities>;
