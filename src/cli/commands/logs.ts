/** dispatch logs: an attempt's output, read from its node (SSH or local), streamed with bounded memory. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { TaskStatus } from '../../common/constants';
import { NotFoundError, UserError } from '../../common/errors';
import type { AttemptRecord, TaskRow } from '../../common/types';
import { assertTaskId } from '../../common/validate';
import { ShellPool } from '../../shell/pool';
import { logsCommand } from '../../shell/scripts';
import type { Store } from '../../store/store';
import { positiveInt } from '../args';
import type { Run } from '../context';

const FINAL: string[] = [TaskStatus.completed, TaskStatus.failed, TaskStatus.cancelled, TaskStatus.blocked];
const POLL_MS = 1000;
/** logs.sh exits 3 when the attempt directory is not on the node. */
const NO_DIR_EXIT = 3;

type Which = 'stdout' | 'stderr' | 'both';

/** The attempts the books know; a task from before the attempts table has only its current one. */
function attemptsOf(store: Store, row: TaskRow): AttemptRecord[] {
  const list = store.attempts(row.id);
  const cur = row.attempts ?? 0;
  if (cur >= 1 && !list.some((a) => a.attempt === cur) && row.run_dir) {
    list.push({
      task_id: row.id,
      attempt: cur,
      node: row.node,
      dispatched_at: row.dispatched_at,
      started_at: row.started_at,
      ended_at: row.finished_at,
      pid: row.pid,
      proc_starttime: row.proc_starttime,
      run_dir: row.run_dir,
      exit_code: row.exit_code,
      status: null,
      error: null,
      fenced_at: null,
    });
  }
  return list;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function registerLogs(program: Command, run: Run): void {
  program
    .command('logs <id>')
    .description("print a task's output from the node that ran it (default: the latest attempt's stdout)")
    .option('--attempt <n>', 'this attempt instead of the latest')
    .option('--stderr', 'stderr instead of stdout')
    .option('--both', 'stdout and stderr (each to its own stream)')
    .option('--tail <n>', 'only the last N lines')
    .option('--follow', 'keep printing until the task reaches a final state (then exit 0), following new attempts')
    .action((id: string, o: { attempt?: string; stderr?: boolean; both?: boolean; tail?: string; follow?: boolean }) =>
      run(async (ctx) => {
        assertTaskId(id);
        if (o.stderr && o.both) throw new UserError('give one of --stderr or --both');
        const which: Which = o.both ? 'both' : o.stderr ? 'stderr' : 'stdout';
        const tail = o.tail === undefined ? 0 : positiveInt('--tail', o.tail, 1);
        const wanted = o.attempt === undefined ? null : positiveInt('--attempt', o.attempt, 1);
        if (!existsSync(ctx.dbPath)) {
          throw new UserError(
            `dispatch logs reads ${ctx.dbPath} to find the node of each attempt: run it where dispatch.db is, or pass --db`,
          );
        }
        const store = ctx.readStore();
        const pool = new ShellPool();
        const abort = new AbortController();
        const onSignal = (): void => abort.abort();
        process.once('SIGINT', onSignal);
        try {
          let shown = 0; // the attempt whose output has been printed
          for (;;) {
            const row = store.getTask(id);
            if (!row) throw new NotFoundError(`unknown task ${id}`);
            const list = attemptsOf(store, row);
            let a: AttemptRecord | undefined;
            if (wanted !== null) {
              a = list.find((x) => x.attempt === wanted);
              if (!a && wanted > (row.attempts ?? 0))
                throw new NotFoundError(`task ${id} has no attempt ${wanted} (it has ${row.attempts ?? 0})`);
              if (!a)
                throw new NotFoundError(`task ${id}: attempt ${wanted} is not in the books (from before dispatch kept every attempt)`);
            } else {
              a = [...list].reverse().find((x) => x.run_dir);
            }
            const final = FINAL.includes(row.status ?? '');
            if (a && a.attempt > shown && a.run_dir) {
              if (!a.node) throw new NotFoundError(`task ${id} attempt ${a.attempt}: no node recorded`);
              const node = store.getNode(a.node);
              if (!node) throw new NotFoundError(`task ${id} attempt ${a.attempt} ran on ${a.node}, which has been removed`);
              if (o.follow && shown > 0) process.stderr.write(`--- attempt ${a.attempt} on ${a.node} ---\n`);
              const live =
                o.follow && !a.ended_at && a.pid !== null && a.proc_starttime ? { pid: a.pid, starttime: a.proc_starttime } : null;
              const cmd = logsCommand(a.run_dir, which, shown > 0 ? 0 : tail, live);
              const r = await pool.get(node).stream(cmd, { stdout: process.stdout, stderr: process.stderr }, { signal: abort.signal });
              if (r.code === NO_DIR_EXIT) {
                throw new NotFoundError(
                  `task ${id} attempt ${a.attempt}: its directory ${a.run_dir} is no longer on ${a.node} (pruned after retention)`,
                );
              }
              if (abort.signal.aborted) return;
              // Printed to its end: a followed stream ends only once the runner has.
              shown = a.attempt;
            } else if (!a && !o.follow) {
              throw new NotFoundError(`task ${id} has no output yet (${row.status ?? 'unknown'}: no attempt has started)`);
            }
            if (!o.follow || wanted !== null) return;
            if (final && (!a || a.attempt <= shown)) return;
            await sleep(POLL_MS);
            if (abort.signal.aborted) return;
          }
        } finally {
          process.removeListener('SIGINT', onSignal);
          pool.closeAll();
        }
      }),
    );
}
