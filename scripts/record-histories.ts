/**
 * Records real workflow histories for the replay gate: every path of taskWorkflow and one run of
 * each maintenance workflow, on a real Temporal dev server, real sshd nodes and a real SQLite file.
 * They go into test/histories/<package.json version>/, one JSON file each, as
 * `temporal workflow show --output json` writes them. An existing folder is never overwritten:
 * histories are forever, and every later version must replay them.
 *
 *   npm run build && node dist/scripts/record-histories.js [--force-new-folder NAME]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { nodeAddArgs, startCluster, sleep } from '../test/helpers/cluster';
import { startSshd } from '../test/helpers/sshd';
import { rawDb } from '../test/helpers/raw-db';
import { temporalBin } from '../test/helpers/temporal';
import { Store } from '../src/store/store';

const ROOT = path.resolve(__dirname, '../..');

function folderName(): string {
  const i = process.argv.indexOf('--force-new-folder');
  if (i > 0 && process.argv[i + 1]) return process.argv[i + 1]!;
  return (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

async function main(): Promise<void> {
  const out = path.join(ROOT, 'test', 'histories', folderName());
  if (existsSync(out)) {
    console.error(`${out} exists: histories of a released version are never re-recorded (bump package.json's version first)`);
    process.exit(2);
  }
  // Slices long enough that a stale heartbeat can be planted without the workflow refreshing it.
  const c = await startCluster({
    nodes: 1,
    slots: 2,
    config: { lease_s: 3, kill_grace: 1, heartbeat_record_interval: 20, fence_after: 8 },
    env: { TASK_MAX_REQUEUE: '2' },
  });
  const recorded: string[] = [];
  try {
    await c.startWorker();
    const show = (workflowId: string, name: string, runId?: string): void => {
      const args = ['workflow', 'show', '-w', workflowId, '--output', 'json', '--address', c.temporal.address];
      if (runId) args.push('-r', runId);
      const json = execFileSync(temporalBin(), args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      mkdirSync(out, { recursive: true });
      writeFileSync(path.join(out, `${name}.json`), json);
      recorded.push(name);
    };
    const closed = async (workflowId: string): Promise<void> => {
      await c.client.workflow
        .getHandle(workflowId)
        .result()
        .catch(() => undefined);
    };
    const barrier = (n: string): string => path.join(c.dir, `barrier-${n}`);
    const waitOn = (n: string): string => `while [ ! -e '${barrier(n)}' ]; do sleep 0.1; done`;

    // Launched and completed, with a slot free at once.
    await c.cliOk(['submit', '--id', 'completed', '--command', 'echo hi; sleep 1']);
    await c.waitStatus('completed', 'completed');
    await closed('task-completed');
    show('task-completed', 'task-launched-completed');

    // A command that ends before its launch reports it: booked running and ended in one step.
    await c.cliOk(['submit', '--id', 'instant', '--command', 'true']);
    await c.waitStatus('instant', 'completed');
    await closed('task-instant');
    show('task-instant', 'task-ended-at-launch');

    // Queued behind a full node, then dispatched by signal.
    await c.cliOk(['submit', '--id', 'hold-1', '--command', waitOn('hold')]);
    await c.cliOk(['submit', '--id', 'hold-2', '--command', waitOn('hold')]);
    await c.waitStatus('hold-1', 'running');
    await c.waitStatus('hold-2', 'running');
    await c.cliOk(['submit', '--id', 'queued', '--command', 'true']);
    await c.waitStatus('queued', 'queued');
    await sleep(17_000); // one fallback poll of the queue
    writeFileSync(barrier('hold'), '');
    await c.waitStatus('queued', 'completed');
    await closed('task-queued');
    show('task-queued', 'task-queued-then-dispatched');

    // Retried, then failed for good (two attempts).
    await c.cliOk(['submit', '--id', 'retried', '--command', 'exit 3']);
    await c.waitStatus('retried', 'failed');
    await closed('task-retried');
    show('task-retried', 'task-retried-then-failed');

    // Blocked: by signal (queued behind a dependency that then fails) and at register.
    await c.cliOk(['submit', '--id', 'parent', '--command', `${waitOn('parent')}; exit 1`]);
    await c.cliOk(['submit', '--id', 'child', '--depends-on', 'parent', '--command', 'true']);
    await c.waitStatus('child', 'queued');
    writeFileSync(barrier('parent'), '');
    await c.waitStatus('parent', 'failed');
    await c.waitStatus('child', 'blocked');
    await closed('task-child');
    show('task-child', 'task-blocked-by-signal');
    await c.cliOk(['submit', '--id', 'late-child', '--depends-on', 'parent', '--command', 'true']);
    await c.waitStatus('late-child', 'blocked');
    await closed('task-late-child');
    show('task-late-child', 'task-blocked-at-register');

    // Cancelled while queued (waiting for a dependency that never comes) and while running.
    await c.cliOk(['submit', '--id', 'cancel-queued', '--depends-on', 'never-submitted', '--command', 'true']);
    await c.waitStatus('cancel-queued', 'queued');
    await c.cliOk(['cancel', 'cancel-queued', '--reason', 'not needed', '--wait']);
    show('task-cancel-queued', 'task-cancelled-while-queued');
    await c.cliOk(['submit', '--id', 'cancel-running', '--command', 'sleep 600']);
    await c.waitStatus('cancel-running', 'running');
    await c.cliOk(['cancel', 'cancel-running', '--reason', 'not needed', '--wait']);
    show('task-cancel-running', 'task-cancelled-while-running');

    // Past max_runtime.
    await c.cliOk(['submit', '--id', 'overtime', '--max-runtime', '3s', '--command', 'sleep 600']);
    await c.waitStatus('overtime', 'failed', 60_000);
    await closed('task-overtime');
    show('task-overtime', 'task-past-max-runtime');

    // Reaped: a running row whose heartbeat is planted stale; one reaper run cleans it.
    await c.cliOk(['submit', '--id', 'reaped', '--command', 'sleep 600']);
    await c.waitStatus('reaped', 'running');
    const s = new Store(c.dbPath);
    try {
      rawDb(s).prepare(`UPDATE tasks SET last_heartbeat = '2000-01-01T00:00:00.000Z' WHERE id = 'reaped'`).run();
    } finally {
      s.close();
    }
    const reaper = await c.client.workflow.start('reaperWorkflow', { taskQueue: 'dispatch', workflowId: 'reaper-run', args: [{}] });
    await reaper.result();
    await c.waitStatus('reaped', 'failed');
    await closed('task-reaped');
    show('task-reaped', 'task-reaped');
    show('reaper-run', 'reaper-workflow');

    // Continued as new while queued and while running: small limits, fixed at submit time from the
    // submitter's config.
    const cfgFile = c.configPath;
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, queue_poll_interval: 1, history_limit: 30, heartbeat_record_interval: 1 }));
    await c.cliOk(['submit', '--id', 'can-queued', '--depends-on', 'can-dep', '--command', 'true']);
    await c.waitStatus('can-queued', 'queued');
    await sleep(8_000);
    await c.cliOk(['submit', '--id', 'can-dep', '--command', 'true']);
    await c.waitStatus('can-queued', 'completed', 60_000);
    await closed('task-can-queued');
    show('task-can-queued', 'task-continued-while-queued');
    await c.cliOk(['submit', '--id', 'can-running', '--command', 'sleep 8']);
    await c.waitStatus('can-running', 'completed', 60_000);
    await closed('task-can-running');
    show('task-can-running', 'task-continued-while-running');
    for (const [name, id] of [
      ['task-continued-while-queued-first-run', 'task-can-queued'],
      ['task-continued-while-running-first-run', 'task-can-running'],
    ] as const) {
      const first = (await c.client.workflow.getHandle(id).describe()).raw.workflowExecutionInfo?.firstRunId;
      if (first) show(id, name, first);
    }
    writeFileSync(cfgFile, JSON.stringify(cfg));

    // A launch that cannot reach its node: its outcome is unknown, so the attempt is given up only
    // once the fence of what it may have started has fallen; then it runs on the other node.
    const dead = await startSshd('dead', { baseDir: c.dir });
    c.nodes.push(dead);
    await c.cliOk(nodeAddArgs(dead, 1));
    await dead.stop();
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, launch_timeout: 30 }));
    await c.cliOk(['node', 'drain', 'n1']);
    await c.cliOk(['submit', '--id', 'launch-lost', '--command', 'true']);
    await c.waitTask('launch-lost', (t) => t.status === 'dispatched' && t.node === 'dead', 'dispatched to the dead node');
    await c.cliOk(['node', 'drain', 'dead']);
    await c.cliOk(['node', 'resume', 'n1']);
    await c.waitStatus('launch-lost', 'completed', 240_000);
    await closed('task-launch-lost');
    show('task-launch-lost', 'task-launch-lost-then-run-again');
    writeFileSync(cfgFile, JSON.stringify(cfg));

    for (const [type, id] of [
      ['nodeProbeWorkflow', 'node-probe-run'],
      ['guardianWorkflow', 'guardian-run'],
      ['factoryWorkflow', 'factory-run'],
    ] as const) {
      await c.client.workflow.execute(type, {
        taskQueue: 'dispatch',
        workflowId: id,
        args: type === 'nodeProbeWorkflow' ? [{ killGraceS: 1 }] : [],
      });
      show(id, id.replace(/-run$/, '-workflow'));
    }
    console.log(`recorded ${recorded.length} histories into ${path.relative(ROOT, out)}: ${recorded.join(', ')}`);
  } finally {
    await c.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
