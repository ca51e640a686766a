/**
 * A task's life in the books: registered, running, heartbeats, finished or cancelled, and the reads
 * the CLI shows. Every change is fenced on (id, attempt, status) and checks that exactly one row
 * changed; the slot and the file locks are given back in the same transaction as the status.
 */
import { EventKind, TaskStatus } from '../common/constants';
import type Database from 'better-sqlite3';
import { UserError } from '../common/errors';
import type { AttemptRecord, ProcessIdentity, TaskRow, TaskSpec } from '../common/types';
import { nowIso, type StoreContext } from './context';

export interface FenceResult {
  applied: boolean;
  /** The row as it is after the attempt (or null if it does not exist). */
  row: TaskRow | null;
  reason?: string;
}

export type AttemptOutcome =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'vanished'; detail: string }
  | { kind: 'runtime-exceeded'; maxRuntimeS: number }
  | { kind: 'launch-failed'; detail: string }
  /** The launch lost contact and nothing fences what it may have started: failed, never requeued. */
  | { kind: 'launch-lost'; detail: string };

export interface FinishResult extends FenceResult {
  /** Where the task went: completed, failed or queued (retry). */
  status?: string;
}

export interface TaskFilter {
  status?: string;
  project?: string;
  limit?: number;
}

export type TaskEvent = { at: string; attempt: number | null; kind: string; detail: string | null };

export class Tasks {
  private readonly s;

  constructor(private readonly ctx: StoreContext) {
    const d: Database.Database = ctx.db;
    this.s = {
      getTask: d.prepare(`SELECT * FROM tasks WHERE id = ?`),
      nodeExists: d.prepare(`SELECT 1 FROM nodes WHERE name = ?`),
      specBody: d.prepare(`SELECT spec_body FROM tasks WHERE id = ?`),
      taskCount: d.prepare(`SELECT COUNT(*) AS n FROM tasks`),
      nextSeq: d.prepare(`SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM tasks`),
      insertTask: d.prepare(`INSERT INTO tasks (id, project, status, priority, seq, depends_on, modifies, command,
          spec_body, spec_hash, executor, max_runtime_s, pin_node, attempts, reaped_count, workflow_id, created_at, updated_at)
        VALUES (@id, @project, 'queued', @priority, @seq, @depends_on, @modifies, @command, @spec_body, @spec_hash,
          @executor, @max_runtime_s, @pin_node, 0, 0, @workflow_id, @now, @now)`),
      markRunning: d.prepare(`UPDATE tasks SET status = 'running', pid = @pid, proc_starttime = @starttime, boot_id = @boot_id,
          run_dir = @dir, started_at = @now, last_heartbeat = @now, updated_at = @now, fence_after_s = @fence_after_s
        WHERE id = @id AND attempts = @attempt AND status = 'dispatched' AND node = @node`),
      heartbeat: d.prepare(`UPDATE tasks SET last_heartbeat = @now, updated_at = @now
        WHERE id = @id AND attempts = @attempt AND status = 'running'`),
      finish: d.prepare(`UPDATE tasks SET status = @status, exit_code = @exit_code, error = @error, updated_at = @now,
          finished_at = CASE WHEN @status = 'queued' THEN NULL ELSE @now END,
          node = CASE WHEN @status = 'queued' THEN NULL ELSE node END
        WHERE id = @id AND attempts = @attempt AND status IN ('dispatched', 'running')`),
      cancelActive: d.prepare(`UPDATE tasks SET status = 'cancelled', error = @reason, updated_at = @now, finished_at = @now
        WHERE id = @id AND attempts = @attempt AND status IN ('dispatched', 'running')`),
      cancelQueued: d.prepare(`UPDATE tasks SET status = 'cancelled', error = @reason, updated_at = @now, finished_at = @now
        WHERE id = @id AND status = 'queued'`),
      freeSlot: d.prepare(`UPDATE nodes SET running_count = MAX(0, COALESCE(running_count, 0) - 1) WHERE name = ?`),
      releaseLocks: d.prepare(`DELETE FROM file_locks WHERE task_id = ?`),
      countsAll: d.prepare(`SELECT COALESCE(status, 'unknown') AS status, COUNT(*) AS n FROM tasks GROUP BY 1 ORDER BY 1`),
      countsProject: d.prepare(`SELECT COALESCE(status, 'unknown') AS status, COUNT(*) AS n FROM tasks
        WHERE project = ? GROUP BY 1 ORDER BY 1`),
      // listTasks: one fixed statement per combination of filters; values are always bound.
      listAll: d.prepare(`SELECT * FROM tasks ORDER BY seq LIMIT ?`),
      listByStatus: d.prepare(`SELECT * FROM tasks WHERE status = ? ORDER BY seq LIMIT ?`),
      listByProject: d.prepare(`SELECT * FROM tasks WHERE project = ? ORDER BY seq LIMIT ?`),
      listByStatusAndProject: d.prepare(`SELECT * FROM tasks WHERE status = ? AND project = ? ORDER BY seq LIMIT ?`),
      eventsOf: d.prepare(`SELECT at, attempt, kind, detail FROM events WHERE task_id = ? ORDER BY id`),
      attemptsOf: d.prepare(`SELECT * FROM attempts WHERE task_id = ? ORDER BY attempt`),
      retry: d.prepare(`UPDATE tasks SET status = 'queued', error = NULL, exit_code = NULL, finished_at = NULL, node = NULL,
          pid = NULL, proc_starttime = NULL, boot_id = NULL, max_attempts = @max_attempts, updated_at = @now
        WHERE id = @id AND status = @status AND attempts IS @attempts`),
      undoRetry: d.prepare(`UPDATE tasks SET status = @status, error = @error, exit_code = @exit_code, finished_at = @finished_at,
          node = @node, pid = @pid, proc_starttime = @proc_starttime, boot_id = @boot_id, max_attempts = @max_attempts, updated_at = @now
        WHERE id = @id AND status = 'queued' AND attempts IS @attempts`),
    };
  }

  getTask(id: string): TaskRow | null {
    return (this.s.getTask.get(id) as TaskRow | undefined) ?? null;
  }

  /** The spec file's text as submitted; null when there was none (or the task does not exist). */
  getSpecBody(id: string): string | null {
    return (this.s.specBody.get(id) as { spec_body: string | null } | undefined)?.spec_body ?? null;
  }

  /** Every task row, whatever its status. */
  taskCount(): number {
    return (this.s.taskCount.get() as { n: number }).n;
  }

  /**
   * Creates the row for a submission. Same id and same spec hash: a no-op that returns the row.
   * A used id with anything else is refused.
   */
  registerTask(spec: TaskSpec, specHash: string, workflowId: string): { created: boolean; row: TaskRow } {
    return this.ctx.tx(() => {
      const existing = this.getTask(spec.id);
      if (existing) {
        if (existing.spec_hash === specHash) return { created: false, row: existing };
        throw new UserError(`task id ${spec.id} is already used by a different task (status ${existing.status ?? 'unknown'})`);
      }
      if (spec.node !== null && !this.s.nodeExists.get(spec.node)) {
        throw new UserError(`unknown node ${spec.node}: \`dispatch node list\` shows the nodes, \`dispatch node add\` adds one`);
      }
      const now = nowIso();
      this.s.insertTask.run({
        id: spec.id,
        project: spec.project,
        priority: spec.priority,
        seq: (this.s.nextSeq.get() as { n: number }).n,
        depends_on: JSON.stringify(spec.dependsOn),
        modifies: JSON.stringify(spec.modifies),
        command: spec.command,
        spec_body: spec.specBody,
        spec_hash: specHash,
        executor: spec.executor,
        max_runtime_s: Math.round(spec.maxRuntimeS),
        pin_node: spec.node,
        workflow_id: workflowId,
        now,
      });
      this.ctx.event(spec.id, 0, EventKind.submitted, { priority: spec.priority, project: spec.project });
      return { created: true, row: this.getTask(spec.id)! };
    });
  }

  private refuse(kind: string, id: string, attempt: number | null, want: string): FenceResult {
    const row = this.getTask(id);
    const seen = row ? `${row.status} attempt ${row.attempts}` : 'missing';
    const reason = `refused ${kind} for ${id} attempt ${attempt ?? '-'}: row is ${seen} (${want})`;
    this.ctx.event(id, attempt, EventKind.fenceRefused, reason);
    console.warn(`[dispatch] ${reason}`);
    return { applied: false, row, reason };
  }

  markRunning(identity: ProcessIdentity): FenceResult {
    return this.ctx.tx((): FenceResult => {
      const r = this.s.markRunning.run({
        id: identity.taskId,
        attempt: identity.attempt,
        node: identity.node,
        pid: identity.pid,
        starttime: identity.starttime,
        boot_id: identity.bootId,
        dir: identity.dir,
        fence_after_s: identity.fenceAfterS ?? null,
        now: nowIso(),
      });
      if (r.changes === 1) {
        this.ctx.event(identity.taskId, identity.attempt, EventKind.running, { node: identity.node, pid: identity.pid });
        return { applied: true, row: this.getTask(identity.taskId) };
      }
      const row = this.getTask(identity.taskId);
      // A retried activity that already recorded this very process: nothing to do.
      const same =
        row !== null &&
        row.status === TaskStatus.running &&
        row.attempts === identity.attempt &&
        row.pid === identity.pid &&
        row.proc_starttime === identity.starttime;
      if (same) return { applied: true, row };
      return this.refuse('markRunning', identity.taskId, identity.attempt, 'expected dispatched');
    });
  }

  recordHeartbeat(taskId: string, attempt: number): FenceResult {
    const r = this.s.heartbeat.run({ id: taskId, attempt, now: nowIso() });
    if (r.changes === 1) return { applied: true, row: null };
    return this.refuse('heartbeat', taskId, attempt, 'expected running');
  }

  /**
   * A launch whose process had already ended when the launch reported it: marks the attempt running
   * and ends it, in one transaction (the attempts history records both). A retry after that
   * transaction committed finds its own process booked and reports what was booked.
   */
  finishLaunched(identity: ProcessIdentity, outcome: AttemptOutcome, maxAttempts: number): FinishResult {
    return this.ctx.tx((): FinishResult => {
      const row = this.getTask(identity.taskId);
      if (
        row !== null &&
        row.attempts === identity.attempt &&
        row.pid === identity.pid &&
        row.proc_starttime === identity.starttime &&
        row.status !== TaskStatus.dispatched &&
        row.status !== TaskStatus.running
      )
        return { applied: true, row, status: row.status ?? 'unknown' };
      const m = this.markRunning(identity);
      if (!m.applied) return { applied: false, row: m.row, status: m.row?.status ?? 'unknown' };
      return this.finishAttempt(identity.taskId, identity.attempt, outcome, maxAttempts);
    });
  }

  /** Ends an attempt: completed, retried (back to queued) while attempts remain, or failed. */
  finishAttempt(taskId: string, attempt: number, outcome: AttemptOutcome, maxAttempts: number): FinishResult {
    return this.ctx.tx((): FinishResult => {
      const before = this.getTask(taskId);
      let status: string;
      let error: string | null = null;
      let exitCode: number | null = null;
      if (outcome.kind === 'exited' && outcome.exitCode === 0) {
        status = TaskStatus.completed;
        exitCode = 0;
      } else {
        const of = `(attempt ${attempt} of ${maxAttempts})`;
        if (outcome.kind === 'exited') {
          exitCode = outcome.exitCode;
          error = `exit code ${outcome.exitCode} ${of}`;
        } else if (outcome.kind === 'vanished') error = `process vanished: ${outcome.detail} ${of}`;
        else if (outcome.kind === 'launch-failed') error = `launch failed: ${outcome.detail} ${of}`;
        else if (outcome.kind === 'launch-lost')
          error = `launch lost contact with its node: ${outcome.detail}; fencing is off, so it is not run again (its process may still run there) ${of}`;
        else error = `max_runtime exceeded: killed after ${outcome.maxRuntimeS}s`;
        const retryable = outcome.kind !== 'runtime-exceeded' && outcome.kind !== 'launch-lost';
        status = retryable && attempt < maxAttempts ? TaskStatus.queued : TaskStatus.failed;
      }
      const r = this.s.finish.run({ id: taskId, attempt, status, exit_code: exitCode, error, now: nowIso() });
      if (r.changes !== 1) return this.refuse('finish', taskId, attempt, 'expected dispatched or running');
      this.releaseHolds(taskId, before?.node);
      this.ctx.event(taskId, attempt, status === TaskStatus.queued ? EventKind.requeued : status, { exitCode, error });
      return { applied: true, row: this.getTask(taskId), status };
    });
  }

  /** Cancels a queued task (attempt null) or the given active attempt; frees its slot and locks. */
  cancel(taskId: string, attempt: number | null, reason: string): FenceResult {
    return this.ctx.tx((): FenceResult => {
      const before = this.getTask(taskId);
      const now = nowIso();
      let changed = 0;
      if (before?.status === TaskStatus.queued) changed = this.s.cancelQueued.run({ id: taskId, reason, now }).changes;
      else if (attempt !== null) changed = this.s.cancelActive.run({ id: taskId, attempt, reason, now }).changes;
      if (changed !== 1) return this.refuse('cancel', taskId, attempt, 'expected queued, or dispatched/running at this attempt');
      // A queued task holds no slot, whatever its node column says.
      this.releaseHolds(taskId, before?.status !== TaskStatus.queued ? before?.node : null);
      this.ctx.event(taskId, attempt, EventKind.cancelled, reason);
      return { applied: true, row: this.getTask(taskId) };
    });
  }

  /**
   * Gives back what an active attempt holds: one slot on its node (if it has one) and its file
   * locks. Only inside the transaction that moved the row out of dispatched/running.
   */
  releaseHolds(taskId: string, node: string | null | undefined): void {
    if (node) this.s.freeSlot.run(node);
    this.s.releaseLocks.run(taskId);
  }

  counts(project?: string): Record<string, number> {
    const rows = (project ? this.s.countsProject.all(project) : this.s.countsAll.all()) as { status: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  listTasks(filter: TaskFilter = {}): TaskRow[] {
    const limit = filter.limit ?? 1_000_000;
    const { status, project } = filter;
    if (status && project) return this.s.listByStatusAndProject.all(status, project, limit) as TaskRow[];
    if (status) return this.s.listByStatus.all(status, limit) as TaskRow[];
    if (project) return this.s.listByProject.all(project, limit) as TaskRow[];
    return this.s.listAll.all(limit) as TaskRow[];
  }

  events(taskId: string): TaskEvent[] {
    return this.s.eventsOf.all(taskId) as TaskEvent[];
  }

  /**
   * Puts a failed, cancelled or blocked task back in the queue, keeping its attempts and their
   * records; its budget becomes its attempts so far plus `more`. The caller has checked the rest
   * (its workflow has ended, its last attempt's fence has fallen).
   */
  retryTask(taskId: string, seen: TaskRow, more: number, reason: string): FenceResult {
    return this.ctx.tx((): FenceResult => {
      const budget = (seen.attempts ?? 0) + more;
      const r = this.s.retry.run({ id: taskId, status: seen.status, attempts: seen.attempts, max_attempts: budget, now: nowIso() });
      if (r.changes !== 1) return this.refuse('retry', taskId, seen.attempts, `expected ${seen.status}`);
      this.ctx.event(taskId, seen.attempts, EventKind.retried, { reason, from: seen.status, error: seen.error, max_attempts: budget });
      return { applied: true, row: this.getTask(taskId) };
    });
  }

  /** Undoes retryTask when the new workflow could not be started: the row is as it was. */
  undoRetry(prev: TaskRow, why: string): boolean {
    return this.ctx.tx(() => {
      const r = this.s.undoRetry.run({
        id: prev.id,
        status: prev.status,
        error: prev.error,
        exit_code: prev.exit_code,
        finished_at: prev.finished_at,
        node: prev.node,
        pid: prev.pid,
        proc_starttime: prev.proc_starttime,
        boot_id: prev.boot_id,
        max_attempts: prev.max_attempts ?? null,
        attempts: prev.attempts,
        now: nowIso(),
      });
      if (r.changes === 1) this.ctx.event(prev.id, prev.attempts, EventKind.retryUndone, why);
      return r.changes === 1;
    });
  }

  /** Every recorded attempt of a task, oldest first. */
  attempts(taskId: string): AttemptRecord[] {
    return this.s.attemptsOf.all(taskId) as AttemptRecord[];
  }
}
