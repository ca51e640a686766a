/** dispatch status | tasks: reports read from dispatch.db (read-only; never creates it). */
import type { Command } from 'commander';
import type { Store } from '../../store/store';
import type { Run } from '../context';
import { printJson, table } from '../format';

/** The `tasks --json` shape: a stable subset of the row, whatever columns the store grows. */
export function taskJson(t: ReturnType<Store['listTasks']>[number]) {
  return {
    id: t.id,
    project: t.project,
    status: t.status,
    node: t.node,
    pid: t.pid,
    attempts: t.attempts,
    started_at: t.started_at,
    last_heartbeat: t.last_heartbeat,
    error: t.error,
    priority: t.priority,
    exit_code: t.exit_code,
    reaped_count: t.reaped_count,
    updated_at: t.updated_at,
    finished_at: t.finished_at,
    /** The fence this attempt's watchdog enforces (null: none), and the last attempt that fenced itself. */
    fence_after_s: t.fence_after_s ?? null,
    fenced_attempt: t.fenced_attempt ?? null,
    fenced_at: t.fenced_at ?? null,
  };
}

export function registerTasks(program: Command, run: Run): void {
  program
    .command('status')
    .description('task counts by status, and the nodes')
    .option('--project <p>', 'only this project')
    .option('--json', 'print {"counts": {...}, "nodes": [...]}')
    .action((o: { project?: string; json?: boolean }) =>
      run(async (ctx) => {
        const s = ctx.readStore();
        const counts = s.counts(o.project);
        const nodes = s.listNodes().map((n) => ({ name: n.name, status: n.status, slots: n.slots, running_count: n.running_count }));
        if (o.json) return printJson({ counts, nodes });
        const byStatus = Object.entries(counts).map(([status, n]) => ({ status, tasks: n }));
        console.log(byStatus.length ? table(byStatus, ['status', 'tasks']) : 'no tasks');
        console.log('');
        console.log(nodes.length ? table(nodes, ['name', 'status', 'slots', 'running_count']) : 'no nodes');
      }),
    );

  program
    .command('tasks')
    .description('list tasks')
    .option('--status <s>', 'only this status')
    .option('--project <p>', 'only this project')
    .option('--json', 'print a JSON array, one object per task')
    .action((o: { status?: string; project?: string; json?: boolean }) =>
      run(async (ctx) => {
        const rows = ctx.readStore().listTasks({ status: o.status, project: o.project }).map(taskJson);
        if (o.json) return printJson(rows);
        const columns = ['id', 'project', 'status', 'node', 'pid', 'attempts', 'started_at', 'last_heartbeat', 'error'];
        console.log(rows.length ? table(rows, columns) : 'no tasks');
      }),
    );
}
