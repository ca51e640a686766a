/**
 * Activities on the `dispatch` queue: they talk to nodes and never touch the database, so any
 * number of workers on any machine can run them.
 */
import { CompleteAsyncError, Context, log } from '@temporalio/activity';
import { LAUNCH_TRY_S, OUTAGE_TOLERANCE_S_DEFAULT } from '../common/constants';
import { ActivityFailure } from '../common/failures';
import { ApplicationFailure } from '@temporalio/common';
import { NodeConfigError, NodeUnreachableError } from '../common/errors';
import type { NodeRow, ProcessIdentity } from '../common/types';
import { isValidTaskId } from '../common/validate';
import type { ShellPool } from '../shell/pool';
import { ProbeBatcher } from '../shell/batcher';
import { killCommand, launchCommand, NO_FENCE, workDirOf, type FenceSettings } from '../shell/scripts';
import { parseKillOutput, parseKv, parseWrapperStatus, type KillReport, type ProbeVerdict } from '../shell/status';
import type { SuperviseWatcher, WatchRequest } from './watcher';
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
  /**
   * Wait up to this long (ms) on the node for the process to end (LAUNCH_EXIT_WAIT_MS); absent or 0:
   * report it as soon as it runs. Launches of workflows without Patch.launchExit pass none.
   */
  exitWaitMs?: number;
}

/** The launched process, and its exit when it ended within the launch's exit wait. */
export type LaunchResult = ProcessIdentity & { exited?: { exitCode: number } };

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

/**
 * The probe batcher a worker's watcher uses: one command per node per 100 ms window; nodes' uptime
 * samples are kept 10 minutes longer than outage_tolerance (`horizonS`).
 */
export function probeBatcher(pool: ShellPool, horizonS = OUTAGE_TOLERANCE_S_DEFAULT): ProbeBatcher {
  return new ProbeBatcher(pool, 100, PROBE_TIMEOUT_MS, () => performance.now(), (horizonS + 600) * 1000);
}

export function createNodeActivities(deps: {
  pool: ShellPool;
  watcher: SuperviseWatcher;
  fence?: FenceSettings;
  metrics?: DispatchMetrics;
}) {
  const metrics = deps.metrics ?? NO_METRICS;
  const fence = deps.fence ?? NO_FENCE;
  const shellOf = (node: NodeRow): NodeShell => deps.pool.get(node);

  return {
    /** Starts the attempt's wrapper, or reports the copy an earlier try of this activity started. */
    async launch(input: LaunchInput): Promise<LaunchResult> {
      const planned = attemptDir(input.node, input.taskId, input.attempt);
      const token = input.token ?? '';
      const exitWaitMs = Math.max(0, Math.min(10_000, Math.floor(input.exitWaitMs ?? 0)));
      const cmd = launchCommand(planned, input.taskId, input.attempt, input.command, input.specBody !== null, token, fence, exitWaitMs);
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
      const identity: LaunchResult = {
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
      // Only a launch asked to wait reports an exit: an older workflow supervises as it always did.
      if (exitWaitMs > 0 && st.state === 'exited' && st.exitCode !== null && st.fencedAt === null)
        identity.exited = { exitCode: st.exitCode };
      return identity;
    },

    /**
     * Watches one process for up to sliceS seconds: hands the attempt to the worker's watcher, which
     * heartbeats with the identity as details, probes it with the rest of its node, and completes
     * this activity through its task token. A retry after a worker died re-attaches to the same
     * process (it is in the input).
     */
    async supervise(input: SuperviseInput): Promise<SuperviseResult> {
      const ctx = Context.current();
      deps.watcher.watch({
        taskToken: ctx.info.taskToken,
        node: input.node,
        identity: input.identity,
        leaseS: input.leaseS,
        sliceS: input.sliceS,
        reattached: ctx.info.attempt > 1,
        previous: ctx.info.heartbeatDetails as WatchRequest['previous'],
      });
      throw new CompleteAsyncError();
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
