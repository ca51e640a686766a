/**
 * Handing free slots to ready queued tasks, and blocking queued tasks whose dependencies ended
 * without success. A dispatch takes its slot and its file locks in the same transaction as the
 * status change.
 */
import { EventKind } from '../common/constants';
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import type { Assignment, TaskRow } from '../common/types';
import { nowIso, parseList, type StoreContext } from './context';
import { dependencyVerdict } from './dependencies';
import type { Tasks } from './tasks';

export interface AllocationResult {
  assigned: Assignment[];
  blocked: { taskId: string; reason: string }[];
}

type QueuedRow = Pick<TaskRow, 'id' | 'depends_on' | 'modifies' | 'pin_node'>;

export class Allocation {
  private readonly s;

  constructor(
    private readonly ctx: StoreContext,
    private readonly tasks: Tasks,
  ) {
    const d: Database.Database = ctx.db;
    this.s = {
      queuedPage: d.prepare(`SELECT id, depends_on, modifies, pin_node FROM tasks
        WHERE status = 'queued' AND workflow_id IS NOT NULL ORDER BY priority, seq LIMIT ? OFFSET ?`),
      queuedWithDependencies: d.prepare(`SELECT id, depends_on FROM tasks
        WHERE status = 'queued' AND depends_on IS NOT NULL AND depends_on != '[]'`),
      statusOf: d.prepare(`SELECT status FROM tasks WHERE id = ?`),
      onlineNodesWithRoom: d.prepare(`SELECT name, COALESCE(slots, 0) - COALESCE(running_count, 0) AS free FROM nodes
        WHERE status = 'online' AND COALESCE(slots, 0) > COALESCE(running_count, 0) ORDER BY name`),
      lockHolder: d.prepare(`SELECT task_id FROM file_locks WHERE path = ?`),
      insertLock: d.prepare(`INSERT INTO file_locks (path, task_id, attempt, acquired_at) VALUES (?, ?, ?, ?)`),
      dispatch: d.prepare(`UPDATE tasks SET status = 'dispatched', node = @node, attempts = COALESCE(attempts, 0) + 1,
          attempt_token = @token, dispatched_at = @now, updated_at = @now, pid = NULL, proc_starttime = NULL, boot_id = NULL,
          run_dir = NULL, exit_code = NULL, started_at = NULL, last_heartbeat = NULL
        WHERE id = @id AND status = 'queued'`),
      block: d.prepare(`UPDATE tasks SET status = 'blocked', error = @reason, updated_at = @now, finished_at = @now
        WHERE id = @id AND status = 'queued'`),
      takeSlot: d.prepare(`UPDATE nodes SET running_count = COALESCE(running_count, 0) + 1 WHERE name = ?`),
    };
  }

  private statusOf = (id: string): string | null | undefined => (this.s.statusOf.get(id) as { status: string | null } | undefined)?.status;

  /**
   * Hands free slots to ready queued tasks: by priority, then submission order. Reads queued rows
   * in pages and stops as soon as no slot is left, so a long queue is not scanned when nodes are full.
   */
  allocate(pageSize = 200): AllocationResult {
    return this.ctx.tx((): AllocationResult => {
      const result: AllocationResult = { assigned: [], blocked: [] };
      const free = new Map<string, number>();
      for (const n of this.s.onlineNodesWithRoom.all() as { name: string; free: number }[]) free.set(n.name, n.free);
      let totalFree = [...free.values()].reduce((a, b) => a + b, 0);
      if (totalFree <= 0) return result;
      const now = nowIso();
      for (let offset = 0; totalFree > 0; offset += pageSize) {
        const page = this.s.queuedPage.all(pageSize, offset) as QueuedRow[];
        if (page.length === 0) break;
        let consumed = 0;
        for (const t of page) {
          if (totalFree <= 0) break;
          const verdict = dependencyVerdict(parseList(t.depends_on), this.statusOf);
          if (verdict.kind === 'blocked') {
            this.s.block.run({ id: t.id, reason: verdict.reason, now });
            this.ctx.event(t.id, null, EventKind.blocked, verdict.by);
            result.blocked.push({ taskId: t.id, reason: verdict.reason });
            consumed++;
            continue;
          }
          if (verdict.kind === 'waiting') continue;
          const files = parseList(t.modifies);
          if (files.some((f) => this.s.lockHolder.get(f) !== undefined)) continue;
          let node: string | null = null;
          if (t.pin_node) {
            if ((free.get(t.pin_node) ?? 0) > 0) node = t.pin_node;
          } else {
            let best = 0;
            for (const [name, n] of free) if (n > best) [node, best] = [name, n];
          }
          if (!node) continue;
          const token = randomBytes(16).toString('hex');
          if (this.s.dispatch.run({ id: t.id, node, now, token }).changes !== 1) continue;
          const attempt = (this.tasks.getTask(t.id)!.attempts ?? 1) as number;
          this.s.takeSlot.run(node);
          for (const f of files) this.s.insertLock.run(f, t.id, attempt, now);
          free.set(node, free.get(node)! - 1);
          totalFree--;
          consumed++;
          this.ctx.event(t.id, attempt, EventKind.dispatched, { node });
          result.assigned.push({ taskId: t.id, node, attempt, token });
        }
        // Rows that left 'queued' shift the following pages down.
        offset -= consumed;
      }
      return result;
    });
  }

  /** Queued tasks whose dependencies failed for good become blocked (with the reason). */
  blockFailedDependencies(): { taskId: string; reason: string }[] {
    return this.ctx.tx(() => {
      const out: { taskId: string; reason: string }[] = [];
      const rows = this.s.queuedWithDependencies.all() as { id: string; depends_on: string }[];
      const now = nowIso();
      for (const r of rows) {
        const verdict = dependencyVerdict(parseList(r.depends_on), this.statusOf);
        if (verdict.kind !== 'blocked') continue;
        if (this.s.block.run({ id: r.id, reason: verdict.reason, now }).changes === 1) {
          this.ctx.event(r.id, null, EventKind.blocked, verdict.reason);
          out.push({ taskId: r.id, reason: verdict.reason });
        }
      }
      return out;
    });
  }
}
