/** The `dispatch` command line. User mistakes exit 2 with one line on stderr, no stack. */
import { Command, CommanderError, Option } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { CancelledFailure } from '@temporalio/common';
import { WorkflowNotFoundError } from '@temporalio/client';
import { taskWorkflowId } from '../common/constants';
import { UserError } from '../common/errors';
import { assertNodeName, assertSafePath, assertTaskId } from '../common/validate';
import { parseQueues, runWorker } from '../workers/worker';
import { runDev } from '../workers/dev';
import { makeCtx, type Ctx, type GlobalOptions } from './context';
import { printJson, table } from './format';
import { specsFromArgs, type SubmitFlags } from './submit';
import { signalCancelReason, startTask } from '../client/tasks';
import { Store } from '../store/store';
import type { SweepOverrides } from '../reaper/options';
import { sweepInProcess } from '../reaper/steps';
import type { SweepReport } from '../reaper/sweep';
import { ShellPool } from '../shell/pool';
import { applySchedules, controlSchedule, listSchedules } from '../schedules/schedules';
import { TASK_QUEUE } from '../common/constants';

export const EXIT = { ok: 0, failure: 1, usage: 2, unavailable: 3 } as const;

function positiveInt(name: string, v: string, min = 0): number {
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > 100000) throw new UserError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return Number(v);
}

function positiveNumber(name: string, v: string): number {
  const n = Number(v);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(v) || !(n > 0)) throw new UserError(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

function taskJson(t: ReturnType<Store['listTasks']>[number]) {
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
  };
}

export function buildProgram(run: (fn: (ctx: Ctx) => Promise<number | void>) => Promise<void>): Command {
  const program = new Command('dispatch')
    .description('Run tasks on SSH nodes as Temporal workflows; heartbeats instead of leases, and no ghosts.')
    .option('--db <path>', 'SQLite database (env DISPATCH_DB)', undefined)
    .option('--config <path>', 'config file (default ./dispatch.config.json if present)')
    .option('--address <host:port>', 'Temporal frontend (env TEMPORAL_ADDRESS, default localhost:7233)')
    .option('--namespace <name>', 'Temporal namespace (default "default")')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('init')
    .description('create dispatch.db, or adopt a legacy one in place (every row kept)')
    .action(() =>
      run(async (ctx) => {
        const existed = existsSync(ctx.dbPath);
        const s = ctx.store();
        const n = s.taskCount();
        console.log(`${existed ? 'adopted' : 'created'} ${ctx.dbPath} (${n} task rows, ${s.listNodes().length} nodes)`);
      }),
    );

  const node = program.command('node').description('manage nodes');
  node
    .command('add <name>')
    .description('add or update a node: --host for SSH, --local for this machine')
    .option('--host <host>', 'SSH host')
    .option('--port <n>', 'SSH port', '22')
    .option('--user <user>', 'SSH user (default: current user)')
    .option('--key <path>', 'private key (default ~/.ssh/id_ed25519)')
    .option('--known-hosts <path>', 'known_hosts file the host key is checked against (default ~/.ssh/known_hosts)')
    .option('--insecure-ignore-host-key', 'do not check the host key (explicit opt-out; off by default)')
    .option('--local', 'run tasks on this machine without SSH')
    .option('--work-dir <path>', 'where attempt directories live on the node')
    .requiredOption('--slots <n>', 'tasks this node runs at once')
    .action((name: string, o: Record<string, string | boolean | undefined>) =>
      run(async (ctx) => {
        assertNodeName(name);
        const slots = positiveInt('--slots', String(o.slots), 0);
        const local = o.local === true;
        if (local === Boolean(o.host)) throw new UserError('give exactly one of --host HOST or --local');
        const home = os.homedir();
        const workDir = assertSafePath(o.workDir ?? (local ? path.resolve('.dispatch/runs') : '.dispatch/runs'), '--work-dir');
        const keyPath = local ? null : path.resolve(String(o.key ?? path.join(home, '.ssh/id_ed25519')));
        const knownHosts = local ? null : path.resolve(String(o.knownHosts ?? path.join(home, '.ssh/known_hosts')));
        if (keyPath && !existsSync(keyPath)) throw new UserError(`key file ${keyPath} does not exist (--key PATH)`);
        if (knownHosts && !o.insecureIgnoreHostKey && !existsSync(knownHosts)) {
          throw new UserError(`known_hosts file ${knownHosts} does not exist (--known-hosts PATH, or --insecure-ignore-host-key)`);
        }
        if (o.host && !/^[A-Za-z0-9.:_-]{1,253}$/.test(String(o.host))) throw new UserError(`invalid --host ${JSON.stringify(o.host)}`);
        const row = ctx.store().addNode({
          name,
          kind: local ? 'local' : 'ssh',
          host: local ? null : String(o.host),
          port: local ? null : positiveInt('--port', String(o.port), 1),
          user: local ? null : String(o.user ?? os.userInfo().username),
          keyPath,
          knownHosts,
          insecureIgnoreHostKey: o.insecureIgnoreHostKey === true,
          slots,
          workDir,
        });
        console.log(`node ${row.name}: ${row.kind}${row.host ? ` ${row.user}@${row.host}:${row.port}` : ''}, ${row.slots} slots, ${row.status}`);
      }),
    );
  node
    .command('list')
    .description('list nodes')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      run(async (ctx) => {
        const rows = ctx.readStore().listNodes().map((n) => ({
          name: n.name,
          kind: n.kind,
          host: n.host,
          port: n.port,
          status: n.status,
          slots: n.slots,
          running_count: n.running_count,
          last_seen_at: n.last_seen_at,
          work_dir: n.work_dir,
        }));
        if (o.json) printJson(rows);
        else console.log(rows.length ? table(rows, ['name', 'kind', 'host', 'port', 'status', 'slots', 'running_count', 'last_seen_at']) : 'no nodes: add one with `dispatch node add`');
      }),
    );
  for (const [cmd, status, what] of [
    ['drain', 'drained', 'stop giving the node new tasks (running ones finish)'],
    ['resume', 'online', 'give a drained node tasks again'],
  ] as const) {
    node
      .command(`${cmd} <name>`)
      .description(what)
      .action((name: string) =>
        run(async (ctx) => {
          assertNodeName(name);
          if (!ctx.store().setNodeStatus(name, status)) throw new UserError(`no node named ${name}`);
          console.log(`node ${name}: ${status}`);
        }),
      );
  }

  program
    .command('submit [files...]')
    .description('submit tasks by flags, or from markdown spec files with YAML front matter')
    .option('--id <id>', 'task id: ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$')
    .option('--command <cmd>', 'shell command to run on the node')
    .option('--project <p>', 'project name', undefined)
    .option('--priority <n>', 'lower runs first (default 50)')
    .option('--depends-on <ids>', 'comma-separated task ids that must complete first')
    .option('--modifies <files>', 'comma-separated files; tasks sharing one never run at once')
    .option('--max-runtime <duration>', 'runtime cap, e.g. 30m or 2h (default from config, 2h)')
    .option('--node <name>', 'run only on this node')
    .option('--json', 'print one JSON object per task')
    .action((files: string[], o: SubmitFlags & { json?: boolean }) =>
      run(async (ctx) => {
        const cfg = ctx.config();
        const specs = specsFromArgs(files, o, cfg);
        const client = await ctx.client();
        const store = existsSync(ctx.dbPath) ? ctx.readStore() : null;
        let failed = 0;
        for (const spec of specs) {
          try {
            const outcome = await startTask(client, spec, cfg, store?.getTask(spec.id) ?? null);
            if (o.json) console.log(JSON.stringify({ id: spec.id, workflow_id: taskWorkflowId(spec.id), outcome }));
            else console.log(outcome === 'submitted' ? `submitted ${spec.id} (workflow ${taskWorkflowId(spec.id)})` : `${spec.id}: already submitted, unchanged`);
          } catch (e) {
            if (!(e instanceof UserError)) throw e;
            failed++;
            console.error(`dispatch: ${e.message}`);
          }
        }
        return failed ? EXIT.usage : EXIT.ok;
      }),
    );

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
        console.log(Object.keys(counts).length ? table(Object.entries(counts).map(([status, n]) => ({ status, tasks: n })), ['status', 'tasks']) : 'no tasks');
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
        console.log(rows.length ? table(rows, ['id', 'project', 'status', 'node', 'pid', 'attempts', 'started_at', 'last_heartbeat', 'error']) : 'no tasks');
      }),
    );

  program
    .command('cancel <id>')
    .description('cancel a task: kills its process group (TERM, grace, KILL) and frees its slot')
    .option('--reason <text>', 'recorded on the row')
    .option('--wait', 'wait until the workflow has finished cancelling')
    .action((id: string, o: { reason?: string; wait?: boolean }) =>
      run(async (ctx) => {
        assertTaskId(id);
        const client = await ctx.client();
        const h = client.workflow.getHandle(taskWorkflowId(id));
        try {
          const d = await h.describe();
          if (d.status.name !== 'RUNNING') throw new UserError(`task ${id} is not running in Temporal (workflow ${d.status.name.toLowerCase()})`);
          if (o.reason) await signalCancelReason(client, id, o.reason);
          await h.cancel();
        } catch (e) {
          if (e instanceof WorkflowNotFoundError) throw new UserError(`no workflow ${taskWorkflowId(id)}: unknown task, or a legacy row (the reaper handles those)`);
          throw e;
        }
        console.log(`cancel requested for ${id}`);
        if (o.wait) {
          await h.result().catch((e: unknown) => {
            if (!(e instanceof Error && (e.cause instanceof CancelledFailure || e.message.includes('cancel')))) throw e;
          });
          console.log(`${id} cancelled`);
        }
      }),
    );

  program
    .command('worker')
    .description('run the workflows and activities (both task queues unless --queues)')
    .option('--queues <list>', 'comma-separated: dispatch,dispatch-db')
    .action((o: { queues?: string }) =>
      run(async (ctx) => {
        const queues = parseQueues(o.queues);
        await runWorker({ address: ctx.address, namespace: ctx.namespace, dbPath: ctx.dbPath, config: ctx.config(), queues });
      }),
    );

  program
    .command('dev')
    .description('the main job: Temporal dev server (UI :8233), a worker and a local node, all on this machine')
    .option('--port <n>', 'Temporal frontend port', '7233')
    .option('--ui-port <n>', 'Web UI port', '8233')
    .option('--local-slots <n>', 'slots of the local node (default: CPU count)')
    .action((o: { port: string; uiPort: string; localSlots?: string }) =>
      run(async (ctx) => {
        await runDev(ctx, {
          port: positiveInt('--port', o.port, 1),
          uiPort: positiveInt('--ui-port', o.uiPort, 1),
          localSlots: o.localSlots ? positiveInt('--local-slots', o.localSlots, 1) : os.cpus().length,
        });
      }),
    );
  program
    .command('reap')
    .description('run one ghost sweep now (through Temporal, or --direct in this process) and print the report')
    .option('--dry-run', 'change nothing, kill nothing; list what would be done')
    .option('--ids <ids>', 'only these task ids (comma-separated)')
    .option('--project <p>', 'only this project')
    .option('--stale-minutes <n>', 'heartbeat age that makes a running task stale (default TASK_STALE_S)')
    .option('--threshold-hours <h>', 'running longer than this is overtime (default threshold_hours)')
    .option('--max-attempts <n>', 'requeue only while attempts are below this (default TASK_MAX_REQUEUE)')
    .option('--action <a>', 'fail or requeue (default ghost_action)')
    .option('--direct', 'run the sweep in this process without Temporal (when the server is down)')
    .option('--json', 'print exactly the report object')
    .action((o: { dryRun?: boolean; ids?: string; project?: string; staleMinutes?: string; thresholdHours?: string; maxAttempts?: string; action?: string; direct?: boolean; json?: boolean }) =>
      run(async (ctx) => {
        const ov: SweepOverrides = { dryRun: o.dryRun === true };
        if (o.ids) ov.ids = o.ids.split(',').map((x) => assertTaskId(x.trim()));
        if (o.project) ov.project = o.project;
        if (o.staleMinutes !== undefined) {
          ov.staleS = positiveNumber('--stale-minutes', o.staleMinutes) * 60;
          const floor = ctx.config().heartbeat_record_interval + ctx.config().lease_s;
          if (ov.staleS <= floor) throw new UserError(`--stale-minutes must be longer than heartbeat_record_interval + lease_s (${floor}s): live tasks refresh their heartbeat only that often`);
        }
        if (o.thresholdHours !== undefined) ov.thresholdHours = positiveNumber('--threshold-hours', o.thresholdHours);
        if (o.maxAttempts !== undefined) ov.maxAttempts = positiveInt('--max-attempts', o.maxAttempts, 1);
        if (o.action !== undefined) {
          if (o.action !== 'fail' && o.action !== 'requeue') throw new UserError('--action must be fail or requeue');
          ov.action = o.action;
        }
        const cfg = ctx.config();
        let report: SweepReport;
        if (o.direct) {
          const store = ctx.store();
          const pool = new ShellPool();
          try {
            report = await sweepInProcess({ store, pool, client: null, config: cfg, log: (l) => console.error(`[dispatch] ${l}`) }, ov);
          } finally {
            pool.closeAll();
          }
        } else {
          const client = await ctx.client();
          report = await client.workflow.execute('reaperWorkflow', {
            taskQueue: TASK_QUEUE,
            workflowId: `dispatch-reap-${new Date().toISOString().replace(/[:.]/g, '-')}`,
            args: [{ overrides: ov }],
            workflowExecutionTimeout: '30m',
          });
        }
        if (o.json) {
          const { ghosts_found, cleaned, skipped, drift_fixed, dry_run, timestamp } = report;
          return printJson({ ghosts_found, cleaned, skipped, drift_fixed, dry_run, timestamp, ghosts: report.ghosts, requeued: report.requeued, locks_released: report.locks_released });
        }
        console.log(`${report.dry_run ? 'DRY RUN: nothing changed. ' : ''}${report.ghosts_found} ghosts, ${report.cleaned.length} cleaned, ${report.skipped.length} skipped, ${report.drift_fixed.length} slot counts fixed, ${report.locks_released} locks released`);
        if (report.ghosts.length) console.log(table(report.ghosts.map((g) => ({ ...g, kill: report.dry_run ? `would: ${g.kill}` : g.kill })), ['id', 'rule', 'node', 'pid', 'kill', 'action', 'note']));
        for (const s of report.skipped) console.log(`skipped ${s.id}: ${s.reason}`);
        for (const d of report.drift_fixed) console.log(`${report.dry_run ? 'would fix' : 'fixed'} ${d.node}: running_count ${d.running_count_was} -> ${d.running_count_now}`);
      }),
    );

  const sched = program.command('schedules').description('the periodic sweeps as Temporal Schedules');
  sched
    .command('apply')
    .description('create or update the schedules from the config (idempotent)')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      run(async (ctx) => {
        const res = await applySchedules(await ctx.client(), ctx.config());
        if (o.json) return printJson(res);
        for (const r of res) console.log(`${r.id}: ${r.outcome}${r.everyS ? ` (every ${r.everyS}s)` : ''}`);
      }),
    );
  sched
    .command('list')
    .description('list the dispatch schedules')
    .option('--json', 'machine-readable output')
    .action((o: { json?: boolean }) =>
      run(async (ctx) => {
        const rows = await listSchedules(await ctx.client());
        if (o.json) return printJson(rows);
        console.log(rows.length ? table(rows, ['id', 'every', 'paused', 'recent', 'next']) : 'no schedules: run `dispatch schedules apply`');
      }),
    );
  for (const op of ['pause', 'unpause', 'trigger'] as const) {
    sched
      .command(`${op} <name>`)
      .description(`${op} a schedule (dispatch-reaper, dispatch-node-probe, dispatch-guardian, dispatch-factory)`)
      .action((name: string) =>
        run(async (ctx) => {
          await controlSchedule(await ctx.client(), name, op);
          console.log(`${name}: ${op}${op === 'trigger' ? 'ed' : 'd'}`);
        }),
      );
  }
  void Option;
  return program;
}

/** Entry point: returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  let ctx: Ctx | null = null;
  const program = buildProgram(async (fn) => {
    ctx = makeCtx(program.opts<GlobalOptions>());
    ctx.config(); // a broken config is refused at start, whatever the command
    const r = await fn(ctx);
    if (typeof r === 'number') code = r;
  });
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof UserError) {
      console.error(`dispatch: ${e.message}`);
      code = e.message.startsWith('cannot reach Temporal') ? EXIT.unavailable : EXIT.usage;
    } else {
      console.error(`dispatch: ${(e as Error).stack ?? String(e)}`);
      code = EXIT.failure;
    }
  } finally {
    await (ctx as Ctx | null)?.close();
  }
  return code;
}
