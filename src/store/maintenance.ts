/**
 * The books the reaper and the guardian keep: the reaper's fenced write on an active row, slot
 * counts recounted from the rows, stale file locks, reaper_runs, and the reads the guardian
 * compares with what Temporal and the nodes say.
 */
import { EventKind, TaskStatus } from '../common/constants';
import type Database from 'better-sqlite3';
import { attemptKey } from '../common/validate';
import type { TaskRow } from '../common/types';
import { nowIso, parseList, type StoreContext } from './context';
import type { FenceResult, Tasks } from './tasks';

/** What the reaper saw of a row; its write applies only if the row still looks like this. */
export interface MetricsSnapshot {
  tasks: { status: string; project: string; n: number }[];
  nodes: { name: string; status: string | null; slots: number | null; running_count: number | null }[];
  events: { kind: string; rule: string | null; n: number }[];
  lastEventId: number;
}

export interface SeenRow {
  status: string;
  attempts: number | null;
  updated_at: string | null;
  last_heartbeat: string | null;
}

/** Nodes whose running_count differs from their active rows, and file locks no active attempt holds. */
export interface SlotDrift {
  drift: { node: string; running_count_was: number; running_count_now: number }[];
  locksReleased: number;
}

export type ReaperRun = { id: number; at: string; kind: string; report: string };

type CurrentRow = { id: string; attempts: number; attempt_token: string | null };

/** An attempt a watchdog fenced, as node recovery found it (see src/shell/scripts.ts FencedAttempt). */
export interface FencedRecord {
  task: string;
  attempt: number;
  token: string | null;
  fencedAt: number;
  leaseAgeS: number | null;
}

export class Maintenance {
  private readonly s;

  constructor(
    private readonly ctx: StoreContext,
    private readonly tasks: Tasks,
  ) {
    const d: Database.Database = ctx.db;
    this.s = {
      metricTasks: d.prepare(`SELECT COALESCE(status, 'unknown') AS status, COALESCE(project, '') AS project, COUNT(*) AS n
        FROM tasks GROUP BY 1, 2`),
      metricEvents: d.prepare(`SELECT kind, CASE WHEN kind IN ('reaped', 'reaped_requeued') AND json_valid(detail)
            THEN json_extract(detail, '$.rule') END AS rule, COUNT(*) AS n
        FROM events WHERE id > ? AND kind IN ('reaped', 'reaped_requeued', 'fence_refused', 'attempt_fenced') GROUP BY 1, 2`),
      maxEventId: d.prepare(`SELECT COALESCE(MAX(id), 0) AS id FROM events`),
      metricNodes: d.prepare(`SELECT name, status, slots, running_count FROM nodes ORDER BY name`),
      activeAll: d.prepare(`SELECT * FROM tasks WHERE status IN ('dispatched', 'running') ORDER BY seq`),
      activeProject: d.prepare(`SELECT * FROM tasks WHERE status IN ('dispatched', 'running') AND project = ? ORDER BY seq`),
      reap: d.prepare(`UPDATE tasks SET status = @to, error = @error, reaped_count = COALESCE(reaped_count, 0) + 1, updated_at = @now,
          finished_at = CASE WHEN @to = 'queued' THEN NULL ELSE @now END,
          node = CASE WHEN @to = 'queued' THEN NULL ELSE node END
        WHERE id = @id AND status = @status AND status IN ('dispatched', 'running') AND attempts IS @attempts
          AND updated_at IS @updated_at AND last_heartbeat IS @last_heartbeat`),
      slotCounts: d.prepare(`SELECT n.name AS name, COALESCE(n.running_count, 0) AS was,
          (SELECT COUNT(*) FROM tasks t WHERE t.node = n.name AND t.status IN ('dispatched', 'running')) AS now FROM nodes n`),
      setRunningCount: d.prepare(`UPDATE nodes SET running_count = ? WHERE name = ?`),
      activeByNode: d.prepare(`SELECT node, COUNT(*) AS n FROM tasks
        WHERE status IN ('dispatched', 'running') AND node IS NOT NULL GROUP BY node`),
      staleLocks: d.prepare(`SELECT COUNT(*) AS n FROM file_locks l WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = l.task_id
          AND t.status IN ('dispatched', 'running') AND t.attempts = l.attempt)`),
      releaseStaleLocks: d.prepare(`DELETE FROM file_locks WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = file_locks.task_id
          AND t.status IN ('dispatched', 'running') AND t.attempts = file_locks.attempt)`),
      fencedEvent: d.prepare(`SELECT 1 FROM events WHERE task_id = ? AND attempt = ? AND kind = 'attempt_fenced' LIMIT 1`),
      markFenced: d.prepare(`UPDATE tasks SET fenced_attempt = @attempt, fenced_at = @at
        WHERE id = @id AND (fenced_attempt IS NULL OR fenced_attempt <= @attempt)`),
      insertReaperRun: d.prepare(`INSERT INTO reaper_runs (at, kind, report) VALUES (?, ?, ?)`),
      reaperRuns: d.prepare(`SELECT * FROM reaper_runs ORDER BY id DESC LIMIT ?`),
      queuedDependencies: d.prepare(`SELECT id, depends_on FROM tasks WHERE status = 'queued'`),
      allCurrentAttempts: d.prepare(`SELECT id, attempts, attempt_token FROM tasks WHERE status IN ('dispatched', 'running')`),
      currentAttempts: d.prepare(`SELECT id, attempts, attempt_token FROM tasks WHERE node = ? AND status IN ('dispatched', 'running')`),
      queuedCountsByProject: d.prepare(`SELECT project, SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS n FROM tasks
        WHERE project IS NOT NULL GROUP BY project`),
    };
  }

  /** Active rows for the reaper: an index range on status, optionally one project or some ids. */
  activeRows(f: { project: string | null; ids: string[] | null }): TaskRow[] {
    let rows = (f.project ? this.s.activeProject.all(f.project) : this.s.activeAll.all()) as TaskRow[];
    if (f.ids) {
      const want = new Set(f.ids);
      rows = rows.filter((r) => want.has(r.id));
    }
    return rows;
  }

  /**
   * The reaper's write: only if the row still looks exactly as the sweep saw it. Frees the slot
   * and locks in the same transaction. Never deletes; never touches a final row.
   */
  reapRow(id: string, seen: SeenRow, error: string, to: 'failed' | 'queued', detail: unknown): FenceResult {
    return this.ctx.tx((): FenceResult => {
      const before = this.tasks.getTask(id);
      const r = this.s.reap.run({ id, to, error, now: nowIso(), ...seen });
      if (r.changes !== 1) {
        const row = this.tasks.getTask(id);
        const reason = `row changed since the sweep read it (now ${row?.status ?? 'missing'}, attempt ${row?.attempts ?? '-'})`;
        this.ctx.event(id, seen.attempts, EventKind.reapSkipped, reason);
        return { applied: false, row, reason };
      }
      this.tasks.releaseHolds(id, before?.node);
      this.ctx.event(id, seen.attempts, to === TaskStatus.queued ? EventKind.reapedRequeued : EventKind.reaped, detail);
      return { applied: true, row: this.tasks.getTask(id) };
    });
  }

  /** node -> number of dispatched+running rows; what running_count must equal. */
  activeCountsByNode(): Map<string, number> {
    return new Map((this.s.activeByNode.all() as { node: string; n: number }[]).map((r) => [r.node, r.n]));
  }

  /** Slot drift and stale locks, without changing anything. */
  findSlotDrift(): SlotDrift {
    const drift = (this.s.slotCounts.all() as { name: string; was: number; now: number }[])
      .filter((b) => b.was !== b.now)
      .map((b) => ({ node: b.name, running_count_was: b.was, running_count_now: b.now }));
    return { drift, locksReleased: (this.s.staleLocks.get() as { n: number }).n };
  }

  /** Recounts each node's running_count from its rows and releases locks of tasks that no longer hold them. */
  reconcileSlots(): SlotDrift {
    return this.ctx.tx(() => {
      const b = this.findSlotDrift();
      for (const d of b.drift) {
        this.s.setRunningCount.run(d.running_count_now, d.node);
        this.ctx.event(null, null, EventKind.slotDriftFixed, d);
      }
      const locksReleased = this.s.releaseStaleLocks.run().changes;
      return { drift: b.drift, locksReleased };
    });
  }

  /**
   * Books attempts that fenced themselves on `node`: one attempt_fenced event each (once), and the
   * row's fenced_attempt / fenced_at. A directory whose token is not the row's, for its current
   * attempt, is an earlier life of the task id and is not booked. Returns how many were new.
   */
  recordFencedAttempts(node: string, fenced: FencedRecord[]): number {
    let n = 0;
    this.ctx.tx(() => {
      for (const f of fenced) {
        const row = this.tasks.getTask(f.task);
        if (!row || f.attempt > (row.attempts ?? 0)) continue;
        if (f.attempt === row.attempts && row.attempt_token && f.token !== row.attempt_token) continue;
        if (this.s.fencedEvent.get(f.task, f.attempt)) continue;
        const at = new Date(f.fencedAt * 1000).toISOString();
        this.ctx.event(f.task, f.attempt, EventKind.attemptFenced, { node, fenced_at: at, lease_age_s: f.leaseAgeS });
        this.s.markFenced.run({ id: f.task, attempt: f.attempt, at });
        n++;
      }
    });
    return n;
  }

  /** What the metrics read: tasks by status and project, the nodes, and events after `sinceEventId`. */
  metricsSnapshot(sinceEventId: number): MetricsSnapshot {
    return this.ctx.db.transaction(() => {
      const lastEventId = (this.s.maxEventId.get() as { id: number }).id;
      return {
        tasks: this.s.metricTasks.all() as MetricsSnapshot['tasks'],
        nodes: this.s.metricNodes.all() as MetricsSnapshot['nodes'],
        events: this.s.metricEvents.all(sinceEventId) as MetricsSnapshot['events'],
        lastEventId,
      };
    })();
  }

  recordReaperRun(kind: string, report: unknown): void {
    this.s.insertReaperRun.run(nowIso(), kind, JSON.stringify(report));
  }

  reaperRuns(limit = 20): ReaperRun[] {
    return this.s.reaperRuns.all(limit) as ReaperRun[];
  }

  queuedDependencies(): { id: string; dependsOn: string[] }[] {
    const rows = this.s.queuedDependencies.all() as { id: string; depends_on: string | null }[];
    return rows.map((r) => ({ id: r.id, dependsOn: parseList(r.depends_on) }));
  }

  /**
   * The attemptKey of every attempt the books say is current, on any node. Leftover-process cleanup
   * spares all of them: several node entries can share one host.
   */
  allCurrentAttempts(): string[] {
    const rows = this.s.allCurrentAttempts.all() as CurrentRow[];
    return rows.map((r) => attemptKey(r.id, r.attempts, r.attempt_token));
  }

  /** The attemptKey of every attempt the books say is current on a node. */
  currentAttempts(node: string): string[] {
    const rows = this.s.currentAttempts.all(node) as CurrentRow[];
    return rows.map((r) => attemptKey(r.id, r.attempts, r.attempt_token));
  }

  /** project -> number of queued tasks, for every project that has a row (0 included). */
  queuedCountsByProject(): Map<string, number> {
    const rows = this.s.queuedCountsByProject.all() as { project: string; n: number }[];
    return new Map(rows.map((r) => [r.project, r.n]));
  }
}
