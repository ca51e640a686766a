/** dispatch show: one task in detail — its row, every attempt and how it ended, its events, its workflow. */
import type { Command } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { endedBy } from '../../common/outcome';
import { taskWorkflowId } from '../../common/constants';
import { NotFoundError } from '../../common/errors';
import { assertTaskId } from '../../common/validate';
import type { Ctx, Run } from '../context';
import { printJson, table } from '../format';
import { taskJson } from './tasks';

interface WorkflowView {
  workflow_id: string;
  run_id: string | null;
  status: string | null;
  web_ui: string | null;
  /** Why the workflow could not be described (Temporal unreachable, ...); absent when it was. */
  note?: string;
}

async function workflowView(ctx: Ctx, workflowId: string): Promise<WorkflowView> {
  const base = ctx.config().web_ui_url;
  const ns = ctx.temporal().namespace;
  const link = (runId: string | null): string | null =>
    base
      ? `${base.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(ns)}/workflows/${encodeURIComponent(workflowId)}${runId ? `/${encodeURIComponent(runId)}` : ''}/history`
      : null;
  try {
    const client = await ctx.client();
    const d = await client.workflow.getHandle(workflowId).describe();
    return { workflow_id: workflowId, run_id: d.runId, status: d.status.name, web_ui: link(d.runId) };
  } catch (e) {
    const note = e instanceof WorkflowNotFoundError ? 'no such workflow in Temporal' : `Temporal: ${(e as Error).message.split('\n')[0]}`;
    return { workflow_id: workflowId, run_id: null, status: null, web_ui: link(null), note };
  }
}

export function registerShow(program: Command, run: Run): void {
  program
    .command('show <id>')
    .description('one task in detail: its row, every attempt and how it ended, its events, its workflow and Web UI link')
    .option('--json', 'print one JSON object ("attempts" is the count, as in tasks --json; the list is "attempt_history")')
    .action((id: string, o: { json?: boolean }) =>
      run(async (ctx) => {
        assertTaskId(id);
        const s = ctx.readStore();
        const row = s.getTask(id);
        if (!row) throw new NotFoundError(`unknown task ${id}`);
        const history = s.attempts(id).map((a) => ({
          attempt: a.attempt,
          node: a.node,
          pid: a.pid,
          dispatched_at: a.dispatched_at,
          started_at: a.started_at,
          ended_at: a.ended_at,
          exit_code: a.exit_code,
          ended_by: endedBy(a),
          error: a.error,
          fenced_at: a.fenced_at,
          run_dir: a.run_dir,
        }));
        const events = s.events(id);
        const wf = await workflowView(ctx, row.workflow_id ?? taskWorkflowId(id));
        if (o.json) return printJson({ ...taskJson(row), command: row.command, attempt_history: history, events, workflow: wf });
        console.log(`${row.id}  ${row.status ?? 'unknown'}  (project ${row.project ?? '-'}, priority ${row.priority ?? '-'})`);
        console.log(`command:   ${row.command ?? '-'}`);
        if (row.error) console.log(`error:     ${row.error}`);
        console.log(
          `workflow:  ${wf.workflow_id}${wf.run_id ? ` run ${wf.run_id}` : ''}${wf.status ? ` (${wf.status.toLowerCase()})` : ''}${wf.note ? ` — ${wf.note}` : ''}`,
        );
        if (wf.web_ui) console.log(`web ui:    ${wf.web_ui}`);
        console.log('');
        console.log(
          history.length
            ? table(history, ['attempt', 'node', 'pid', 'started_at', 'ended_at', 'exit_code', 'ended_by', 'error'])
            : 'no attempts yet',
        );
        console.log('');
        console.log(events.length ? table(events, ['at', 'attempt', 'kind', 'detail']) : 'no events');
      }),
    );
}
