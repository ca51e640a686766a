/**
 * Activities on the `dispatch` queue: they talk to nodes and never touch the database, so any
 * number of workers on any machine can run them.
 */
import { Context, log } from '@temporalio/activity';
import { LAUNCH_TRY_S } from '../common/constants';
import { ActivityFailure } from '../common/failures';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { NodeConfigError, NodeUnreachableError } from '../common/errors';
import type { NodeRow, ProcessIdentity } from '../common/types';
import { isValidTaskId } from '../common/validate';
import type { ShellPool } from '../shell/pool';
import { ProbeBatcher } from '../shell/batcher';
import { killCommand, launchCommand, NO_FENCE, workDirOf, type FenceSettings } from '../shell/scripts';
import { parseKillOutput, parseKv, parseWrapperStatus, type KillReport, type ProbeVerdict } from '../shell/status';
import type { NodeShell } from '../shell/types';
import { NO_METRICS, type DispatchMetrics } from '../common/metrics';

export interface LaunchInput {
  node: NodeRow;
  taskId: string;
  attempt: number;
  command: string;
  specBody: string | null;
  /** The attempt's token from the row; absent only for attempts dispatched before tokens. */
  token?: string;
  /**
   * Epoch ms after which a try that cannot reach the node gives up for good (the workflow's clock
   * when it scheduled the launch, plus launch_timeout). Absent: Temporal's own timeout ends the tries.
   */
  deadlineMs?: number;
}

export interface SuperviseInput {
  node: NodeRow;
  identity: ProcessIdentity;
  /** Heartbeat timeout in seconds; the activity heartbeats at least 4 times per timeout. */
  leaseS: number;
  /** Return "running" after this many seconds so the workflow can record last_heartbeat. */
  sliceS: number;
}

export type SuperviseResult = ProbeVerdict;

/** Details of a launch try that could not reach its node (failure type NodeUnreachable). */
export interface LaunchLostDetails {
  /** fence_after of the watchdog such a try would have started, seconds; 0: none. */
  fenceAfterS: number;
  /** The grace between that watchdog's TERM and KILL, seconds. */
  killGraceS: number;
}

export interface KillInput {
  node: NodeRow;
  identity: ProcessIdentity;
  graceS: number;
}

const PROBE_TIMEOUT_MS = 30_000;

export function attemptDir(node: NodeRow, taskId: string, attempt: number): string {
  if (!isValidTaskId(taskId) || !Number.isSafeInteger(attempt) || attempt < 1) throw new Error('invalid task id or attempt');
  return `${workDirOf(node)}/${taskId}/attempt-${attempt}`;
}

function nodeFailure(e: unknown): never {
  // A wrong host key or unreadable key file will not fix itself: fail now, do not retry for minutes.
  if (e instanceof NodeConfigError) throw ApplicationFailure.nonRetryable(e.message, ActivityFailure.nodeConfig);
  if (e instanceof NodeUnreachableError) throw ApplicationFailure.retryable(e.message, ActivityFailure.nodeUnreachable);
  throw e;
}

/** A Map that forgets its oldest entries past `max` (attempts whose slices moved to other workers). */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(k: K, v: V): this {
    if (!this.has(k) && this.size >= this.max) this.delete(this.keys().next().value as K);
    return super.set(k, v);
  }
}

export function createNodeActivities(deps: { pool: ShellPool; batcher?: ProbeBatcher; fence?: FenceSettings; metrics?: DispatchMetrics }) {
  const metrics = deps.metrics ?? NO_METRICS;
  const fence = deps.fence ?? NO_FENCE;
  /** Per supervised attempt on this worker: the latest moment its node may have acknowledged a lease refresh. */
  const leaseAcks = new BoundedMap<string, number>(100_000);
  const shellOf = (node: NodeRow): NodeShell => deps.pool.get(node);
  const batcher = deps.batcher ?? new ProbeBatcher(deps.pool, 100, PROBE_TIMEOUT_MS);

  function probe(node: NodeRow, id: ProcessIdentity): Promise<ProbeVerdict> {
    return batcher.probe(node, id);
  }

  return {
    /** Starts the attempt's wrapper, or reports the copy an earlier try of this activity started. */
    async launch(input: LaunchInput): Promise<ProcessIdentity> {
      const planned = attemptDir(input.node, input.taskId, input.attempt);
      const token = input.token ?? '';
      const cmd = launchCommand(planned, input.taskId, input.attempt, input.command, input.specBody !== null, token, fence);
      let out;
      try {
        out = await shellOf(input.node).exec(cmd, { stdin: input.specBody ?? '', timeoutMs: LAUNCH_TRY_S * 1000 });
      } catch (e) {
        if (e instanceof NodeUnreachableError && !(e instanceof NodeConfigError)) {
          // The try may have reached the node and started the process before contact was lost: the
          // workflow needs this worker's fence to know when such a process has certainly stopped.
          const lost: LaunchLostDetails = { fenceAfterS: fence.afterS, killGraceS: fence.graceS };
          const last = input.deadlineMs !== undefined && Date.now() >= input.deadlineMs;
          throw ApplicationFailure.create({
            message: last ? `${e.message} (gave up: launch_timeout reached)` : e.message,
            type: ActivityFailure.nodeUnreachable,
            details: [lost],
            nonRetryable: last,
          });
        }
        nodeFailure(e);
      }
      const kv = parseKv(out.stdout);
      if (kv.has('error') || out.code !== 0) {
        throw ApplicationFailure.nonRetryable(
          `launch on ${input.node.name} failed: ${kv.get('error') ?? out.stderr.trim().slice(0, 500)}`,
          ActivityFailure.launchFailed,
        );
      }
      const st = parseWrapperStatus(kv.get('status') ?? '');
      if (!st) throw ApplicationFailure.nonRetryable(`launch on ${input.node.name}: unreadable status.json`, ActivityFailure.launchFailed);
      // The directory the wrapper really used: the planned one, or its token-named sibling when the
      // planned name holds an earlier life's attempt.
      const dir = kv.get('dir') ?? planned;
      if (dir !== planned && !dir.startsWith(`${planned}.`)) {
        throw ApplicationFailure.nonRetryable(
          `launch on ${input.node.name}: unexpected attempt directory ${JSON.stringify(dir)}`,
          ActivityFailure.launchFailed,
        );
      }
      if (token && st.token !== token) {
        throw ApplicationFailure.nonRetryable(
          `launch on ${input.node.name}: ${dir}/status.json does not hold this attempt's token`,
          ActivityFailure.launchFailed,
        );
      }
      if (kv.has('untrusted')) {
        log.info('attempt directory of an earlier life left in place', {
          task: input.taskId,
          attempt: input.attempt,
          node: input.node.name,
          dir: kv.get('untrusted'),
        });
      }
      const reused = /^existing$/m.test(out.stdout);
      log.info('launched', { task: input.taskId, attempt: input.attempt, node: input.node.name, pid: st.pid, reused });
      const identity: ProcessIdentity = {
        node: input.node.name,
        pid: st.pid,
        starttime: st.starttime,
        bootId: st.bootId,
        dir,
        taskId: input.taskId,
        attempt: input.attempt,
      };
      if (token) identity.token = token;
      // The fence this attempt's watchdog enforces, as its first launch set it (0 or absent: none).
      const fa = Number(kv.get('fence_after'));
      if (Number.isSafeInteger(fa) && fa > 0) identity.fenceAfterS = fa;
      return identity;
    },

    /**
     * Watches one process for up to sliceS seconds. Heartbeats early and often with the identity as
     * details; a retry after a worker died re-attaches to the same process (it is in the input).
     */
    async supervise(input: SuperviseInput): Promise<SuperviseResult> {
      const ctx = Context.current();
      // Poll fast at first (short tasks end quickly), then every lease/4: never slower than the heartbeat needs.
      const maxTickMs = Math.max(200, Math.floor((input.leaseS * 1000) / 4));
      let tickMs = 200;
      const until = Date.now() + input.sliceS * 1000;
      const details = { identity: input.identity, reattached: ctx.info.attempt > 1 };
      let unreachableSince: number | null = null;
      // The latest moment the node may have confirmed a lease refresh (ms, this worker's clock):
      // what the reaper counts the fence from. A retry carries on from the previous try's heartbeat,
      // a later slice on this worker from the one before; otherwise every earlier slice ended before
      // this one began, so now is a safe upper bound until the first probe answers.
      const key = `${input.identity.taskId}:${input.identity.attempt}:${input.identity.pid}`;
      const prev = ctx.info.heartbeatDetails as { leaseAckAt?: unknown } | undefined;
      let leaseAckAt: number = typeof prev?.leaseAckAt === 'number' ? prev.leaseAckAt : (leaseAcks.get(key) ?? Date.now());
      leaseAcks.set(key, leaseAckAt);
      // The heartbeat (the lease) runs on its own timer: a probe that waits behind a slow node or a
      // full channel queue delays the verdict, never the heartbeat of a live worker.
      const beat = (): void => ctx.heartbeat({ ...details, unreachableSince, leaseAckAt });
      beat();
      const timer = setInterval(beat, maxTickMs);
      try {
        for (;;) {
          try {
            // A cancel (the runtime cap, a cancelled task) does not wait for a slow probe.
            const v = await Promise.race([probe(input.node, input.identity), ctx.cancelled]);
            unreachableSince = null;
            if (v.state !== 'running') {
              leaseAcks.delete(key);
              return v;
            }
            if (v.leaseRefreshed) {
              leaseAckAt = Date.now();
              leaseAcks.set(key, leaseAckAt);
            }
          } catch (e) {
            if (e instanceof CancelledFailure) throw e;
            // The watcher is alive even when the node is not; the node probe decides about the node.
            unreachableSince ??= Date.now();
            log.warn('probe failed', { task: input.identity.taskId, error: (e as Error).message });
          }
          beat();
          if (Date.now() >= until) return { state: 'running' };
          // Once past the fast start, wake on ticks aligned to the clock so that every task on a
          // node probes at the same moment and the batcher sends one command for all of them.
          const wait = tickMs < maxTickMs ? tickMs : Math.ceil((Date.now() + 1) / maxTickMs) * maxTickMs - Date.now();
          await ctx.sleep(Math.min(wait, Math.max(0, until - Date.now())));
          tickMs = Math.min(maxTickMs, tickMs * 2);
        }
      } finally {
        clearInterval(timer);
      }
    },

    /** The checked kill: TERM, grace, KILL, verify; the identity is re-checked before each signal. */
    async kill(input: KillInput): Promise<KillReport> {
      const id = input.identity;
      let out;
      try {
        out = await shellOf(input.node).exec(killCommand(id.bootId, input.graceS, [{ pid: id.pid, starttime: id.starttime }]), {
          timeoutMs: (input.graceS + 20) * 1000,
        });
      } catch (e) {
        nodeFailure(e);
      }
      const rep = parseKillOutput(out.stdout).find((r) => r.pid === id.pid);
      if (rep) metrics.kill(rep.outcome, 'task');
      if (!rep)
        throw ApplicationFailure.retryable(
          `kill on ${input.node.name} printed no result: ${out.stderr.slice(0, 300)}`,
          ActivityFailure.killFailed,
        );
      if (rep.outcome === 'still-alive')
        throw ApplicationFailure.retryable(`pid ${id.pid} on ${input.node.name} survived SIGKILL`, ActivityFailure.killFailed);
      log.info('kill', { task: id.taskId, attempt: id.attempt, node: input.node.name, pid: id.pid, outcome: rep.outcome });
      return rep;
    },
  };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
