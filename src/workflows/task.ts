/**
 * taskWorkflow: owns one task from submission to a final state. Sandboxed: no I/O, only activities.
 * The row is the book; the workflow is the owner. Each attempt: wait for a slot, launch (idempotent),
 * supervise in slices with a heartbeat timeout (the lease), and a second clock for max_runtime.
 * On cancel: kill what runs, then book it.
 *
 * Every command this code issues is recorded in the histories of running tasks: a change to the
 * order or the kind of any of them breaks the replay of those tasks.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  setCurrentDetails,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DbActivities } from '../activities/db';
import type { LaunchLostDetails, NodeActivities, SuperviseResult } from '../activities/node';
import {
  ACTIVITY_LIVENESS_TIMEOUT,
  DB_TASK_QUEUE,
  FENCE_AFTER_S_DEFAULT,
  FENCE_MARGIN_S,
  LAUNCH_EXIT_WAIT_MS,
  LAUNCH_TIMEOUT_S_DEFAULT,
  TASK_QUEUE,
  TaskStatus,
} from '../common/constants';
import { ActivityFailure as ActivityFailureType } from '../common/failures';
import { TaskNodeKey, TaskPriorityKey, TaskProjectKey, TaskStatusKey } from '../common/search-attributes';
import type { Assignment, NodeRow, ProcessIdentity, TaskWorkflowInput } from '../common/types';
import {
  assignedSignal,
  blockedSignal,
  cancelReasonSignal,
  cancelSignal,
  Patch,
  reapSignal,
  stateQuery,
  TaskFailure,
  type CarriedSignals,
  type QueuedResume,
  type TaskResume,
  type TaskState,
} from './definitions';

export type { QueuedResume, TaskResume, TaskState } from './definitions';

const db = proxyActivities<DbActivities>({
  taskQueue: DB_TASK_QUEUE,
  startToCloseTimeout: '30s',
  heartbeatTimeout: ACTIVITY_LIVENESS_TIMEOUT,
  retry: { initialInterval: '500ms', maximumInterval: '10s', backoffCoefficient: 2 },
});

/** Waiting for a slot: a signal normally arrives within a second; this is the fallback poll. */
const ASSIGNMENT_POLL = '15s';
/** History length after which a long supervision continues as new (runs without bounded history). */
const HISTORY_LIMIT = 8000;
/** Defaults for inputs submitted before the options existed. */
const QUEUE_POLL_S_DEFAULT = 300;
const HISTORY_LIMIT_DEFAULT = 2000;

const DEFAULT_CANCEL_REASON = 'cancelled by operator (workflow cancel request)';

type Outcome = Parameters<DbActivities['finishAttempt']>[2];
type Verdict = SuperviseResult | 'deadline';
/** The first supervise slice of a fresh launch, started together with mark running. */
type Slice = { scope: CancellationScope; slice: Promise<SuperviseResult> };

function nodeActivities(options: TaskWorkflowInput['options']) {
  // Launch is a local activity: it runs in the worker that runs this workflow (every worker on the
  // `dispatch` queue has the node activities), which saves a server round trip per task. A worker
  // that dies during it loses the workflow task; the next worker replays and launches again, and
  // launch is idempotent per attempt directory, so it finds the same process.
  const launch = proxyLocalActivities<NodeActivities>({
    startToCloseTimeout: '1m',
    // A backstop: the launch input's deadline ends the tries at launch_timeout.
    scheduleToCloseTimeout: `${(options.launchTimeoutS ?? LAUNCH_TIMEOUT_S_DEFAULT) + 60}s`,
    retry: { initialInterval: '1s', maximumInterval: '15s' },
  }).launch;
  const kill = proxyActivities<NodeActivities>({
    taskQueue: TASK_QUEUE,
    startToCloseTimeout: `${options.killGraceS + 60}s`,
    scheduleToCloseTimeout: '10m',
    heartbeatTimeout: ACTIVITY_LIVENESS_TIMEOUT,
    retry: { initialInterval: '1s', maximumInterval: '20s' },
  }).kill;
  const supervise = proxyActivities<NodeActivities>({
    taskQueue: TASK_QUEUE,
    startToCloseTimeout: `${options.heartbeatRecordS + options.leaseS * 4}s`,
    heartbeatTimeout: `${options.leaseS}s`,
    cancellationType: 'TRY_CANCEL',
    retry: { initialInterval: '200ms', maximumInterval: '2s', backoffCoefficient: 2 },
  }).supervise;
  return { launch, kill, supervise };
}

/**
 * The details of a launch that could not tell whether it started its process (its node went away
 * mid-launch, or the tries ran out of time): null details when the failure carried none; undefined
 * when the launch failed for a known reason (nothing was started).
 */
function launchLost(e: unknown): LaunchLostDetails | null | undefined {
  // A local activity's failure may reach the workflow wrapped (ActivityFailure) or as it was thrown.
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    if (c instanceof TimeoutFailure) return null;
    if (c instanceof ApplicationFailure && c.type === ActivityFailureType.nodeUnreachable) {
      const d = c.details?.[0] as Partial<LaunchLostDetails> | undefined;
      return typeof d?.fenceAfterS === 'number' ? { fenceAfterS: d.fenceAfterS, killGraceS: Number(d.killGraceS) || 0 } : null;
    }
  }
  return undefined;
}

/** One run of a task workflow: its state, what signals told it, and its named steps. */
class TaskRun {
  readonly state: TaskState;
  private readonly act;
  private assignment: Assignment | null = null;
  private blocked: string | null = null;
  private cancelReason: string | null = null;
  private reapedBy: string | null = null;
  /** Set once per run (see Patch.boundedHistory); false when replaying a run recorded without it. */
  private bounded = false;
  private node: NodeRow | null;
  private launchedAtMs: number;
  private firstSlice: Slice | null = null;
  private lastHeartbeat: string | null = null;
  /** The attempt whose lost launch is being waited out (dispatched, no identity). */
  private pendingAttempt: number | null = null;
  /** The launched process had ended by the time the launch reported it (Patch.launchExit). */
  private endedAtLaunch: Verdict | null = null;

  constructor(
    private readonly input: TaskWorkflowInput,
    resume: TaskResume | QueuedResume | undefined,
  ) {
    const { spec } = input;
    this.act = nodeActivities(input.options);
    const running = resume && !('queued' in resume) ? resume : null;
    this.node = running?.node ?? null;
    this.launchedAtMs = running?.launchedAtMs ?? 0;
    this.state = {
      taskId: spec.id,
      status: TaskStatus.queued,
      attempt: resume?.attempt ?? 0,
      node: running?.node.name ?? null,
      identity: running?.identity ?? null,
      error: null,
      command: spec.command,
      registered: resume !== undefined,
    };
    const carried = resume?.carried;
    if (carried) {
      this.assignment = carried.assignment;
      this.blocked = carried.blocked;
      this.cancelReason = carried.cancelReason;
      this.reapedBy = carried.reapedBy;
    }
  }

  /** Decided once, at the start of each run, so that the run's commands stay the same on replay. */
  decideBoundedHistory(): void {
    this.bounded = patched(Patch.boundedHistory);
  }

  private carry(): CarriedSignals {
    return { assignment: this.assignment, blocked: this.blocked, cancelReason: this.cancelReason, reapedBy: this.reapedBy };
  }

  /** Time to continue as new: the run's history is near its limit, or Temporal suggests it. */
  private historyFull(): boolean {
    const info = workflowInfo();
    const limit = this.bounded ? (this.options.historyLimit ?? HISTORY_LIMIT_DEFAULT) : HISTORY_LIMIT;
    return info.historyLength > limit || (this.bounded && info.continueAsNewSuggested);
  }

  private get spec() {
    return this.input.spec;
  }

  private get options() {
    return this.input.options;
  }

  installHandlers(): void {
    setHandler(stateQuery, () => this.state);
    setHandler(assignedSignal, (a) => {
      if (a.taskId === this.spec.id && a.attempt > this.state.attempt) this.assignment = a;
    });
    setHandler(blockedSignal, ({ reason }) => {
      this.blocked = reason;
    });
    setHandler(reapSignal, ({ rule }) => {
      this.reapedBy = typeof rule === 'string' ? rule : 'unknown';
    });
    setHandler(cancelReasonSignal, (r) => this.setCancelReason(r));
  }

  /** The reason a cancel is booked with; `fallback` when the sender gave none (and none came before). */
  setCancelReason(r: unknown, fallback?: string): void {
    if (typeof r === 'string' && r.trim()) this.cancelReason = `cancelled: ${r.slice(0, 500)}`;
    else if (fallback && !this.cancelReason) this.cancelReason = fallback;
  }

  /** The Web UI's current details: what runs where now, and how it last went. No command. */
  showDetails(): void {
    const st = this.state;
    const lines = [
      `**status** ${st.status}` + (st.attempt ? ` · **attempt** ${st.attempt} of ${this.options.maxAttempts}` : ''),
      `**node** ${st.node ?? '-'} · **pid** ${st.identity?.pid ?? '-'}`,
      `**last heartbeat** ${this.lastHeartbeat ?? '-'}`,
      `**last error** ${st.error ?? '-'}`,
    ];
    setCurrentDetails(lines.join('\n\n'));
  }

  setStatus(status: string, node?: string | null): void {
    this.state.status = status;
    const pairs: Parameters<typeof upsertSearchAttributes>[0] = [{ key: TaskStatusKey, value: status }];
    if (node !== undefined) {
      this.state.node = node;
      pairs.push({ key: TaskNodeKey, value: node ?? '' });
    }
    upsertSearchAttributes(pairs);
    this.showDetails();
  }

  /** Whoever started this run (CLI, reaper restart, another client), the operator's filters work. */
  tagSearchAttributes(): void {
    upsertSearchAttributes([
      { key: TaskProjectKey, value: this.spec.project },
      { key: TaskPriorityKey, value: this.spec.priority },
    ]);
  }

  /** Writes the row. Returns false when the task is already final (a resubmission): report it as it is. */
  async register(): Promise<boolean> {
    const reg = await db.registerTask(this.spec, this.input.specHash, workflowInfo().workflowId);
    this.state.registered = true;
    if (reg.status === TaskStatus.dispatched && reg.node) {
      // A free slot was handed out in the register activity itself (or, restarted after a
      // requeue, the row was given one before this run asked): take it.
      this.assignment = { taskId: this.spec.id, node: reg.node, attempt: reg.attempt, nodeRow: reg.nodeRow, token: reg.token };
    } else if (reg.status === TaskStatus.blocked) {
      // A dependency already failed: end as blocked, with the reason, as a signalled block does.
      this.blocked = reg.error ?? 'blocked';
    } else if (reg.status !== TaskStatus.queued) {
      this.state.status = reg.status ?? 'unknown';
      this.state.error = reg.error;
      return false;
    }
    return true;
  }

  hasLiveAttempt(): boolean {
    return this.state.identity !== null;
  }

  /** The verdict of a process that ended before its launch reported it, once; else null. */
  takeEndedAtLaunch(): Verdict | null {
    const v = this.endedAtLaunch;
    this.endedAtLaunch = null;
    return v;
  }

  /** Queued until a slot is assigned (by signal, or found by the fallback poll); blocked ends the task. */
  async waitForSlot(): Promise<Assignment> {
    this.setStatus(TaskStatus.queued, null);
    const poll = this.bounded ? (this.options.queuePollS ?? QUEUE_POLL_S_DEFAULT) * 1000 : ASSIGNMENT_POLL;
    while (!this.assignment && !this.blocked) {
      if (await condition(() => this.assignment !== null || this.blocked !== null, poll)) break;
      const v = await db.getAssignment(this.spec.id);
      if (v.status === TaskStatus.dispatched && v.node && v.attempt > this.state.attempt) {
        this.assignment = { taskId: this.spec.id, node: v.node, attempt: v.attempt, nodeRow: v.nodeRow, token: v.token };
      } else if (v.status === TaskStatus.blocked) {
        this.blocked = v.error ?? 'blocked';
      } else if (v.status !== TaskStatus.queued) {
        this.state.status = v.status ?? 'unknown';
        this.state.error = `row changed outside the workflow: ${v.status}`;
        throw ApplicationFailure.nonRetryable(this.state.error, TaskFailure.rowChanged);
      }
      if (this.bounded && !this.assignment && !this.blocked && this.historyFull()) {
        const carry: QueuedResume = { queued: true, attempt: this.state.attempt, carried: this.carry() };
        await continueAsNew<typeof taskWorkflow>(this.input, carry);
      }
    }
    if (this.blocked) {
      this.state.error = this.blocked;
      this.setStatus(TaskStatus.blocked);
      throw ApplicationFailure.nonRetryable(this.blocked, TaskFailure.blocked);
    }
    const a: Assignment = this.assignment!;
    this.assignment = null;
    return a;
  }

  /**
   * Launches the assigned attempt and marks it running, with its first supervise slice already
   * started. Returns false when the launch failed and the task was requeued for another attempt.
   */
  async launch(a: Assignment): Promise<boolean> {
    const { spec, options } = this;
    this.state.attempt = a.attempt;
    this.setStatus(TaskStatus.dispatched, a.node);
    this.node = a.nodeRow && a.nodeRow.name === a.node ? a.nodeRow : await db.getNode(a.node);
    const node: NodeRow = this.node;
    // Asked once per launch, before it: the launch of a run recorded without it does not wait.
    const exitWait = patched(Patch.launchExit);
    // Not cancellable, so a cancel during launch still learns whom to kill.
    let launchedResult: Awaited<ReturnType<typeof this.act.launch>>;
    try {
      launchedResult = await CancellationScope.nonCancellable(() =>
        this.act.launch.executeWithOptions({ summary: `launch attempt ${a.attempt} on ${node.name}` }, [
          {
            node,
            taskId: spec.id,
            attempt: a.attempt,
            command: spec.command,
            specBody: spec.specBody,
            token: a.token,
            deadlineMs: Date.now() + (options.launchTimeoutS ?? LAUNCH_TIMEOUT_S_DEFAULT) * 1000,
            ...(exitWait ? { exitWaitMs: LAUNCH_EXIT_WAIT_MS } : {}),
          },
        ]),
      );
    } catch (e) {
      if (isCancellation(e)) throw e;
      const detail = e instanceof Error ? (e.cause instanceof Error ? e.cause.message : e.message) : String(e);
      let outcome: Outcome = { kind: 'launch-failed', detail };
      const lost = launchLost(e);
      if (lost !== undefined && patched(Patch.launchLostFence)) outcome = await this.waitOutLostLaunch(a, lost, detail);
      const fin = await db.finishAttempt(spec.id, a.attempt, outcome, options.maxAttempts);
      if (fin.status === TaskStatus.queued) return false;
      this.state.error = fin.error ?? detail;
      this.setStatus(fin.status ?? TaskStatus.failed);
      throw ApplicationFailure.nonRetryable(this.state.error, TaskFailure.launchFailed);
    }
    const { exited, ...launchedIdentity } = launchedResult;
    this.state.identity = exitWait ? launchedIdentity : launchedResult;
    this.launchedAtMs = Date.now();
    if (exitWait && exited) {
      // Ended already: finish() books it running and ended in one step; nothing to supervise.
      this.endedAtLaunch = { state: 'exited', exitCode: exited.exitCode };
      return true;
    }
    // Supervision starts in the same workflow task as mark running: one round trip less, and a
    // process that ends at once is seen at once. Its verdict is used only once the row says running.
    const launched: ProcessIdentity = this.state.identity;
    const scope = new CancellationScope();
    const slice = scope.run(() => this.superviseSlice(node, launched));
    slice.catch(() => undefined);
    const mr = await db.markRunning(launched);
    if (!mr.applied) {
      scope.cancel();
      // The row moved on (reaped or cancelled) while we launched: this copy must not run.
      await CancellationScope.nonCancellable(() => this.kill(node, launched));
      this.state.status = mr.status ?? 'unknown';
      this.state.error = 'row changed during launch; the launched process was killed';
      throw ApplicationFailure.nonRetryable(this.state.error, TaskFailure.rowChanged);
    }
    this.firstSlice = { scope, slice };
    this.setStatus(TaskStatus.running, a.node);
    return true;
  }

  /**
   * The launch lost contact before its node answered: a try may have started the process there, and
   * its watchdog stops it fence_after after the lease that launch wrote, which was no later than now.
   * Waits that out (cancellable: a cancel books the dispatched attempt) and gives up the attempt; with
   * no fence nothing bounds that process, so the task fails rather than run a second copy.
   */
  private async waitOutLostLaunch(a: Assignment, lost: LaunchLostDetails | null, detail: string): Promise<Outcome> {
    const fenceS = lost?.fenceAfterS ?? this.options.fenceAfterS ?? FENCE_AFTER_S_DEFAULT;
    const graceS = Math.max(lost?.killGraceS ?? 0, this.options.killGraceS);
    if (!(fenceS > 0)) {
      await db.recordLaunchLost(this.spec.id, a.attempt, { node: a.node, error: detail, fence_after_s: 0 });
      return { kind: 'launch-lost', detail };
    }
    const waitS = fenceS + graceS + FENCE_MARGIN_S;
    await db.recordLaunchLost(this.spec.id, a.attempt, {
      node: a.node,
      error: detail,
      fence_after_s: fenceS,
      falls_at: new Date(Date.now() + waitS * 1000).toISOString(),
    });
    this.pendingAttempt = a.attempt;
    await sleep(waitS * 1000);
    this.pendingAttempt = null;
    return { kind: 'launch-failed', detail: `${detail}; given up once its fence had fallen (${waitS}s)` };
  }

  private kill(node: NodeRow, identity: ProcessIdentity) {
    return this.act.kill.executeWithOptions({ summary: `kill pid ${identity.pid} of attempt ${identity.attempt} on ${node.name}` }, [
      { node, identity, graceS: this.options.killGraceS },
    ]);
  }

  private superviseSlice(node: NodeRow, identity: ProcessIdentity): Promise<SuperviseResult> {
    return this.act.supervise.executeWithOptions(
      { summary: `supervise attempt ${identity.attempt} (pid ${identity.pid} on ${node.name})` },
      [{ node, identity, leaseS: this.options.leaseS, sliceS: this.options.heartbeatRecordS }],
    );
  }

  /** Supervises in slices, racing the runtime cap, until the process ends or the cap is reached. */
  async supervise(): Promise<Verdict> {
    const identity: ProcessIdentity = this.state.identity!;
    const node: NodeRow = this.node!;
    let verdict: Verdict = { state: 'running' };
    while (verdict !== 'deadline' && verdict.state === 'running') {
      if (!this.firstSlice && this.historyFull()) {
        const carry: TaskResume = { attempt: this.state.attempt, node, identity, launchedAtMs: this.launchedAtMs, carried: this.carry() };
        await continueAsNew<typeof taskWorkflow>(this.input, carry);
      }
      const remainingMs = this.launchedAtMs + this.spec.maxRuntimeS * 1000 - Date.now();
      if (remainingMs <= 0) {
        verdict = 'deadline';
        break;
      }
      const sliceScope = this.firstSlice?.scope ?? new CancellationScope();
      const timerScope = new CancellationScope();
      const slice = this.firstSlice?.slice ?? sliceScope.run(() => this.superviseSlice(node, identity));
      this.firstSlice = null;
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
        if (verdict.state === 'running') {
          await db.recordHeartbeat(this.spec.id, this.state.attempt);
          this.lastHeartbeat = new Date().toISOString();
          this.showDetails();
        }
      }
    }
    return verdict;
  }

  /**
   * Books how the attempt ended (killing it first past the runtime cap). Returns false when the
   * task was requeued for another attempt; otherwise the task is final (completed returns, the rest throw).
   */
  async finish(verdict: Verdict, atLaunch = false): Promise<boolean> {
    const identity: ProcessIdentity = this.state.identity!;
    const node: NodeRow = this.node!;
    let outcome: Outcome;
    if (verdict === 'deadline') {
      await CancellationScope.nonCancellable(() => this.kill(node, identity));
      outcome = { kind: 'runtime-exceeded', maxRuntimeS: this.spec.maxRuntimeS };
    } else if (verdict.state === 'exited') {
      outcome = { kind: 'exited', exitCode: verdict.exitCode };
    } else {
      outcome = { kind: 'vanished', detail: verdict.state === 'vanished' ? verdict.detail : 'unknown' };
    }
    const fin = atLaunch
      ? await db.finishLaunched(identity, outcome, this.options.maxAttempts)
      : await db.finishAttempt(this.spec.id, this.state.attempt, outcome, this.options.maxAttempts);
    this.state.identity = null;
    if (!fin.applied) {
      this.state.status = fin.status ?? 'unknown';
      this.state.error = `attempt ${this.state.attempt} result refused: row is ${fin.status}`;
      throw ApplicationFailure.nonRetryable(this.state.error, TaskFailure.rowChanged);
    }
    if (fin.status === TaskStatus.queued) return false;
    this.state.error = fin.error;
    this.setStatus(fin.status ?? 'unknown');
    if (fin.status === TaskStatus.completed) return true;
    throw ApplicationFailure.nonRetryable(fin.error ?? 'task failed', TaskFailure.failed);
  }

  /** Cancelled: kill what runs, then book it; neither step may itself be cancelled. */
  async onCancel(): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      const id = this.state.identity;
      const node = this.node;
      if (id && node) {
        const rep = await this.kill(node, id);
        this.state.error = `${this.cancelReason ?? DEFAULT_CANCEL_REASON} (kill: ${rep.outcome})`;
      } else {
        this.state.error = this.cancelReason ?? DEFAULT_CANCEL_REASON;
      }
      if (this.reapedBy) {
        // The reaper books the row (failed or requeued) fenced on what it saw; writing here would race it.
        this.state.error = `reaped: ${this.reapedBy}`;
        this.setStatus('reaped');
        return;
      }
      if (!id && this.pendingAttempt !== null) this.state.error += ' (its lost launch fences itself on the node)';
      const r = await db.cancelTask(this.spec.id, id ? this.state.attempt : null, this.state.error);
      this.state.identity = null;
      this.setStatus(r.applied ? TaskStatus.cancelled : (r.status ?? 'unknown'));
    });
  }
}

export async function taskWorkflow(input: TaskWorkflowInput, resume?: TaskResume | QueuedResume): Promise<TaskState> {
  const run = new TaskRun(input, resume);
  run.decideBoundedHistory();
  run.installHandlers();
  run.tagSearchAttributes();
  // The task's life runs in a scope of its own, so that the cancel signal can cancel it as a cancel
  // request cancels the whole run. No command is issued for the scope itself.
  const life = new CancellationScope();
  let signalled = false;
  setHandler(cancelSignal, (reason) => {
    run.setCancelReason(reason, 'cancelled by operator (cancel signal)');
    signalled = true;
    life.cancel();
  });
  try {
    return await life.run(async () => {
      if (!resume && !(await run.register())) return run.state;
      for (;;) {
        if (!run.hasLiveAttempt()) {
          const a = await run.waitForSlot();
          if (!(await run.launch(a))) continue;
        }
        const atLaunch = run.takeEndedAtLaunch();
        const verdict = atLaunch ?? (await run.supervise());
        if (await run.finish(verdict, atLaunch !== null)) return run.state;
      }
    });
  } catch (err) {
    if (!isCancellation(err)) throw err;
    await run.onCancel();
    // Cancelled by the signal alone: the task is booked cancelled and the run completes.
    if (signalled && !CancellationScope.current().consideredCancelled) return run.state;
    throw err;
  }
}
