/**
 * Quiet when healthy: the README's tour, run against a real worker, logs no warning and no error
 * from dispatch or the SDK. An operator who sees a warning per task learns to ignore warnings.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type Cluster } from '../helpers/cluster';

let c: Cluster;

before(async () => {
  c = await startCluster({ nodes: 2, slots: 2, env: { TASK_MAX_REQUEUE: '2' } });
  await c.startWorker();
});
after(async () => {
  await c?.stop();
});

/**
 * Lines of a worker log that a person would read as a problem, except the one warning that is
 * one: "Workflow failed" for a task whose row says it failed.
 */
function complaints(log: string, failedTasks: string[]): string[] {
  const lines = log.split('\n');
  return lines.filter((l, i) => {
    if (!(/^\S+ \[(WARN|ERROR)\]/.test(l) || /^\[dispatch\]/.test(l) || /^(Error|TypeError|Unhandled)/.test(l))) return false;
    const entry = lines.slice(i, i + 8).join('\n');
    return !(/\[WARN\] Workflow failed/.test(l) && failedTasks.some((id) => entry.includes(`workflowId: 'task-${id}'`)));
  });
}

describe('a healthy run', () => {
  test("the README's tour logs no warning and no error in the worker", async () => {
    await c.cliOk(['submit', '--id', 'hello', '--command', 'echo "hi from $DISPATCH_TASK"; sleep 1']);
    await c.cliOk(['submit', '--id', 'flaky', '--command', 'exit 3']);
    await c.cliOk(['submit', '--id', 'build', '--command', 'sleep 1']);
    await c.cliOk([
      'submit',
      '--id',
      'deploy',
      '--depends-on',
      'build',
      '--modifies',
      'deploy.lock',
      '--priority',
      '1',
      '--command',
      'echo deploy',
    ]);
    await c.cliOk(['submit', '--id', 'long', '--command', 'sleep 600']);
    await c.waitStatus('long', 'running');
    await c.cliOk(['cancel', 'long', '--reason', 'not needed', '--wait']);
    await c.waitStatus('hello', 'completed');
    await c.waitStatus('flaky', 'failed');
    await c.waitStatus('deploy', 'completed');
    await c.cliOk(['reap', '--dry-run']);
    await c.cliOk(['status', '--json']);
    await c.cliOk(['tasks']);
    const log = c.workerLogs();
    assert.match(log, /dispatch worker polling/);
    assert.match(log, /Workflow failed[\s\S]*workflowId: 'task-flaky'/, 'a failed task is reported');
    assert.deepEqual(complaints(log, ['flaky']), [], 'the worker logged a warning or an error in a healthy run');
  });
});
