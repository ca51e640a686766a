/**
 * taskWorkflow: owns one task from submission to a final state. Sandboxed: no I/O, only activities.
 * The row is the book; the workflow is the owner. Each attempt: wait for a slot, launch (idempotent),
 * supervise in slices with a heartbeat timeout (the lease), and a second clock for max_runtime.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DbActivities } from '../activities/db';
import type { NodeActivities, SuperviseResult } from '../activities/node';
import { ACTIVITY_LIVENESS_TIMEOUT, DB_TASK_QUEUE, TASK_QUEUE } from '../common/constants';
import { TaskNodeKey, TaskPriorityKey, TaskProjectKey, TaskStatusKey } from '../common/search-attributes';
import type { Assignment, NodeRow, ProcessIdentity, TaskWorkflowInput } from '../common/types';
import {
  assignedSignal,
  blockedSignal,
  cancelReasonSignal,
  reapSignal,
  stateQuery,
  TaskFailure,
  type TaskResume,
  type TaskState,
} from './definitions';

export type { TaskResume, TaskState } from './definitions';

const db = proxyActivities<DbActivities>({
  taskQueue: DB_TASK_QUEUE,
  startToCloseTimeout: '30s',
  heartbeatTimeout: ACTIVITY_LIVENESS_TIMEOUT,
  retry: { initialInterval: '500ms', maximumInterval: '10s', backoffCoefficient: 2 },
});

/** Waiting for a slot: a signal normally arrives within a second; this is the fallback poll. */
const ASSIGNMENT_POLL = '15s';
/** History length after which a long supervision continues as new. */
const HISTORY_LIMIT = 8000;

export async function taskWorkflow(input: TaskWorkflowInput, resume?: TaskResume): Promise<TaskState> {
  const { spec, options } = input;
  // Launch is a local activity: it runs in the worker that runs this workflow (every worker on the
  // `dispatch` queue has the node activities), which saves a server round trip per task. A worker
  // that dies during it loses the workflow task; the next worker replays and launches again, and
  // launch is idempotent per attempt directory, so it finds the same process.
  const launchAct = proxyLocalActivities<NodeActivities>({
    startToCloseTimeout: '1m',
    scheduleToCloseTimeout: '5m',
    retry: { initialInterval: '1s', maximumInterval: '15s' },
  }).launch;
  const killAct = proxyActivities<NodeActivities>({
    taskQueue: TASK_QUEUE,
    startToCloseTimeout: `${options.killGraceS + 60}s`,
    scheduleToCloseTimeout: '10m',
    heartbeatTimeout: ACTIVITY_LIVENESS_TIMEOUT,
    retry: { initialInterval: '1s', maximumInterval: '20s' },
  }).kill;
  const superviseAct = proxyActivities<NodeActivities>({
    taskQueue: TASK_QUEUE,
    startToCloseTimeout: `${options.heartbeatRecordS + options.leaseS * 4}s`,
    heartbeatTimeout: `${options.leaseS}s`,
    cancellationType: 'TRY_CANCEL',
    retry: { initialInterval: '200ms', maximumInterval: '2s', backoffCoefficient: 2 },
  }).supervise;

  const state: TaskState = {
    taskId: spec.id,
    status: 'queued',
    attempt: resume?.attempt ?? 0,
    node: resume?.node.name ?? null,
    identity: resume?.identity ?? null,
    error: null,
    command: spec.command,
  };
  let assignment: Assignment | null = null;
  let blocked: string | null = null;
  let cancelReason = 'cancelled by operator (workflow cancel request)';
  setHandler(stateQuery, () => state);
  setHandler(assignedSignal, (a) => {
    if (a.taskId === spec.id && a.attempt > state.attempt) assignment = a;
  });
  setHandler(blockedSignal, ({ reason }) => {
    blocked = reason;
  });
  let reapedBy: string | null = null;
  setHandler(reapSignal, ({ rule }) => {
    reapedBy = typeof rule === 'string' ? rule : 'unknown';
  });
  setHandler(cancelReasonSignal, (r) => {
    if (typeof r === 'string' && r.trim()) cancelReason = `cancelled: ${r.slice(0, 500)}`;
  });

  const setStatus = (status: string, node?: string | null): void => {
    state.status = status;
    const pairs: Parameters<typeof upsertSearchAttributes>[0] = [{ key: TaskStatusKey, value: status }];
    if (node !== undefined) {
      state.node = node;
      pairs.push({ key: TaskNodeKey, value: node ?? '' });
    }
    upsertSearchAttributes(pairs);
  };

  // Whoever started this run (CLI, reaper restart, another client), the operator's filters work.
  upsertSearchAttributes([
    { key: TaskProjectKey, value: spec.project },
    { key: TaskPriorityKey, value: spec.priority },
  ]);
  let node: NodeRow | null = resume?.node ?? null;
  let launchedAtMs = resume?.launchedAtMs ?? 0;
  /** The first supervise slice of a fresh launch, started together with mark running. */
  let firstSlice: { scope: CancellationScope; slice: Promise<SuperviseResult> } | null = null;

  try {
    if (!resume) {
      const reg = await db.registerTask(spec, input.specHash, workflowInfo().workflowId);
      if (reg.status === 'dispatched' && reg.node) {
        // A free slot was handed out in the register activity itself (or, restarted after a
        // requeue, the row was given one before this run asked): take it.
        assignment = { taskId: spec.id, node: reg.node, attempt: reg.attempt, nodeRow: reg.nodeRow, token: reg.token };
      } else if (reg.status === 'blocked') {
        // A dependency already failed (found by the register activity's own allocation pass, or
        // earlier): end as blocked, with the reason, as a signalled block does.
        blocked = reg.error ?? 'blocked';
      } else if (reg.status !== 'queued') {
        // Resubmission of a finished task: report the row as it is.
        state.status = reg.status ?? 'unknown';
        state.error = reg.error;
        return state;
      }
    }
    for (;;) {
      if (!state.identity) {
        // ---- wait for a slot ----
        setStatus('queued', null);
        while (!assignment && !blocked) {
          if (await condition(() => assignment !== null || blocked !== null, ASSIGNMENT_POLL)) break;
          const v = await db.getAssignment(spec.id);
          if (v.status === 'dispatched' && v.node && v.attempt > state.attempt) {
            assignment = { taskId: spec.id, node: v.node, attempt: v.attempt, nodeRow: v.nodeRow, token: v.token };
          } else if (v.status === 'blocked') {
            blocked = v.error ?? 'blocked';
          } else if (v.status !== 'queued') {
            state.status = v.status ?? 'unknown';
            state.error = `row changed outside the workflow: ${v.status}`;
            throw ApplicationFailure.nonRetryable(state.error, TaskFailure.rowChanged);
          }
        }
        if (blocked) {
          state.error = blocked;
          setStatus('blocked');
          throw ApplicationFailure.nonRetryable(blocked, TaskFailure.blocked);
        }
        const a: Assignment = assignment!;
        assignment = null;
        state.attempt = a.attempt;
        setStatus('dispatched', a.node);
        node = a.nodeRow && a.nodeRow.name === a.node ? a.nodeRow : await db.getNode(a.node);

        // ---- launch: not cancellable, so a cancel during launch still learns whom to kill ----
        const theNode: NodeRow = node;
        try {
          state.identity = await CancellationScope.nonCancellable(() =>
            launchAct({ node: theNode, taskId: spec.id, attempt: a.attempt, command: spec.command, specBody: spec.specBody, token: a.token }),
          );
        } catch (e) {
          if (isCancellation(e)) throw e;
          const detail = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
          const fin = await db.finishAttempt(spec.id, a.attempt, { kind: 'launch-failed', detail }, options.maxAttempts);
          if (fin.status === 'queued') continue;
          state.error = fin.error ?? detail;
          setStatus(fin.status ?? 'failed');
          throw ApplicationFailure.nonRetryable(state.error, TaskFailure.launchFailed);
        }
        launchedAtMs = Date.now();
        // Supervision starts in the same workflow task as mark running: one round trip less, and
        // a process that ends at once is seen at once. Its verdict is used only once the row says
        // running.
        const launched: ProcessIdentity = state.identity;
        const scope0 = new CancellationScope();
        const slice0 = scope0.run(() => superviseAct({ node: theNode, identity: launched, leaseS: options.leaseS, sliceS: options.heartbeatRecordS }));
        slice0.catch(() => undefined);
        const mr = await db.markRunning(launched);
        if (!mr.applied) {
          scope0.cancel();
          // The row moved on (reaped or cancelled) while we launched: this copy must not run.
          await CancellationScope.nonCancellable(() => killAct({ node: theNode, identity: state.identity!, graceS: options.killGraceS }));
          state.status = mr.status ?? 'unknown';
          state.error = 'row changed during launch; the launched process was killed';
          throw ApplicationFailure.nonRetryable(state.error, TaskFailure.rowChanged);
        }
        firstSlice = { scope: scope0, slice: slice0 };
        setStatus('running', a.node);
      }

      // ---- supervise in slices, racing the runtime cap ----
      const identity: ProcessIdentity = state.identity!;
      const theNode: NodeRow = node!;
      let verdict: SuperviseResult | 'deadline' = { state: 'running' };
      while (verdict !== 'deadline' && verdict.state === 'running') {
        if (!firstSlice && workflowInfo().historyLength > HISTORY_LIMIT) {
          await continueAsNew<typeof taskWorkflow>(input, { attempt: state.attempt, node: theNode, identity, launchedAtMs });
        }
        const remainingMs = launchedAtMs + spec.maxRuntimeS * 1000 - Date.now();
        if (remainingMs <= 0) {
          verdict = 'deadline';
          break;
        }
        const sliceScope = firstSlice?.scope ?? new CancellationScope();
        const timerScope = new CancellationScope();
        const slice = firstSlice?.slice ?? sliceScope.run(() => superviseAct({ node: theNode, identity, leaseS: options.leaseS, sliceS: options.heartbeatRecordS }));
        firstSlice = null;
        const timer = timerScope.run(() => sleep(remainingMs));
        slice.catch(() => undefined);
        timer.catch(() => undefined);
        const first = await Promise.race([slice.then((r) => ({ r })), timer.then(() => 'deadline' as const)]);
        if (first === 'deadline') {
          sliceScope.cancel();
          verdict = 'deadline';
        } else {
          timerScope.cancel();
          verdict = first.r;
          if (verdict.state === 'running') await db.recordHeartbeat(spec.id, state.attempt);
        }
      }

      let outcome;
      if (verdict === 'deadline') {
        await CancellationScope.nonCancellable(() => killAct({ node: theNode, identity, graceS: options.killGraceS }));
        outcome = { kind: 'runtime-exceeded' as const, maxRuntimeS: spec.maxRuntimeS };
      } else if (verdict.state === 'exited') {
        outcome = { kind: 'exited' as const, exitCode: verdict.exitCode };
      } else {
        outcome = { kind: 'vanished' as const, detail: verdict.detail };
      }
      const fin = await db.finishAttempt(spec.id, state.attempt, outcome, options.maxAttempts);
      state.identity = null;
      if (!fin.applied) {
        state.status = fin.status ?? 'unknown';
        state.error = `attempt ${state.attempt} result refused: row is ${fin.status}`;
        throw ApplicationFailure.nonRetryable(state.error, TaskFailure.rowChanged);
      }
      if (fin.status === 'queued') continue;
      state.error = fin.error;
      setStatus(fin.status ?? 'unknown');
      if (fin.status === 'completed') return state;
      throw ApplicationFailure.nonRetryable(fin.error ?? 'task failed', TaskFailure.failed);
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // ---- cancelled: kill what runs, then book it; neither step may itself be cancelled ----
    await CancellationScope.nonCancellable(async () => {
      const id = state.identity;
      if (id && node) {
        const rep = await killAct({ node, identity: id, graceS: options.killGraceS });
        state.error = `${cancelReason} (kill: ${rep.outcome})`;
      } else {
        state.error = cancelReason;
      }
      if (reapedBy) {
        // The reaper books the row (failed or requeued) fenced on what it saw; writing here would race it.
        state.error = `reaped: ${reapedBy}`;
        setStatus('reaped');
        return;
      }
      const r = await db.cancelTask(spec.id, id ? state.attempt : null, state.error);
      state.identity = null;
      setStatus(r.applied ? 'cancelled' : r.status ?? 'unknown');
    });
    throw err;
  }
}
