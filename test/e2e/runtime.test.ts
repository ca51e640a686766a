/**
 * The runtime end to end: real Temporal dev server, two real sshd nodes, a real SQLite file, and
 * workers started as separate processes through the CLI.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { nodeAddArgs, startCluster, sleep, type Cluster } from '../helpers/cluster';
import { findProcessesWithEnv, isAlive, readProcStat } from '../helpers/proc';
import { rawDb } from '../helpers/raw-db';
import { temporalBin } from '../helpers/temporal';
import { Store } from '../../src/store/store';
import type { TaskRow } from '../../src/common/types';

let c: Cluster;

before(async () => {
  c = await startCluster({ nodes: 2, slots: 2, env: { TASK_MAX_REQUEUE: '2' } });
  await c.startWorker();
});
after(async () => {
  await c?.stop();
});
afterEach(() => {
  c.assertBooks();
});

function tctl(args: string[]): string {
  return execFileSync(temporalBin(), [...args, '--address', c.temporal.address], { encoding: 'utf8' });
}

/** `temporal workflow list` output once it names `want` (or the last output after 20 s). */
async function visible(query: string, want: string, extra: string[] = []): Promise<string> {
  const until = Date.now() + 20_000;
  for (;;) {
    const out = tctl(['workflow', 'list', '--query', query, ...extra]);
    if (out.includes(want) || Date.now() > until) return out;
    await sleep(250);
  }
}

async function waitQuiet(): Promise<void> {
  // Tests share nodes: wait until nothing is dispatched or running before the next one starts.
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const active = c.read((s) => s.listTasks().filter((t) => t.status === 'dispatched' || t.status === 'running' || t.status === 'queued'));
    if (active.length === 0) return;
    await sleep(200);
  }
  throw new Error('nodes did not become idle');
}

describe('dispatch runtime', () => {
  test('a task completes on an sshd node, with its identity, env and exit code recorded', async () => {
    await c.cliOk([
      'submit',
      '--id',
      'hello-1',
      '--project',
      'p1',
      '--command',
      'echo "task=$DISPATCH_TASK attempt=$DISPATCH_ATTEMPT"; sleep 1',
    ]);
    const row = await c.waitStatus('hello-1', 'completed');
    assert.equal(row.exit_code, 0);
    assert.equal(row.attempts, 1);
    assert.ok(row.node === 'n1' || row.node === 'n2');
    assert.ok(row.pid && row.pid > 1);
    assert.match(row.proc_starttime ?? '', /^[0-9]+$/);
    assert.ok(row.started_at && row.last_heartbeat);
    const status = JSON.parse(readFileSync(path.join(row.run_dir!, 'status.json'), 'utf8'));
    assert.equal(status.pid, row.pid);
    assert.equal(status.exit_code, 0);
    assert.equal(status.starttime, row.proc_starttime);
    assert.equal(readFileSync(path.join(row.run_dir!, 'stdout'), 'utf8').trim(), 'task=hello-1 attempt=1');
    // Inspection: search attributes and memo are current.
    // Visibility is eventually consistent: a loaded server may list the closed run a moment later.
    const list = await visible('TaskProject="p1" AND TaskStatus="completed"', 'task-hello-1', ['--output', 'json']);
    assert.match(list, /task-hello-1/);
    const desc = await c.client.workflow.getHandle('task-hello-1').describe();
    assert.equal(desc.memo?.command, 'echo "task=$DISPATCH_TASK attempt=$DISPATCH_ATTEMPT"; sleep 1');
    const json = JSON.parse(await c.cliOk(['tasks', '--json', '--project', 'p1']));
    assert.deepEqual(
      Object.keys(json[0]).filter((k) =>
        ['id', 'project', 'status', 'node', 'pid', 'attempts', 'started_at', 'last_heartbeat', 'error'].includes(k),
      ).length,
      9,
    );
    const st = JSON.parse(await c.cliOk(['status', '--json', '--project', 'p1']));
    assert.deepEqual(st.counts, { completed: 1 });
    assert.deepEqual(
      st.nodes.map((n: { name: string }) => n.name),
      ['n1', 'n2'],
    );
    assert.deepEqual(Object.keys(st.nodes[0]).sort(), ['name', 'running_count', 'slots', 'status']);
  });

  test('a task that finds a free slot is dispatched by its register activity: no signal, no node lookup, launch local, supervision with mark running', async () => {
    // Long enough to be supervised (a command that ends at once is booked in one step: round-trips.test.ts).
    await c.cliOk(['submit', '--id', 'fast-path', '--command', 'sleep 1']);
    await c.waitStatus('fast-path', 'completed');
    const hist = await c.client.workflow.getHandle('task-fast-path').fetchHistory();
    const events = hist.events ?? [];
    const activities = events
      .filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
    assert.equal(activities[0], 'registerTask', `activities: ${activities.join(', ')}`);
    assert.deepEqual(activities.slice(1, 3).sort(), ['markRunning', 'supervise'], `activities: ${activities.join(', ')}`);
    const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes).slice(1, 3);
    assert.equal(
      String(scheduled[0]!.activityTaskScheduledEventAttributes!.workflowTaskCompletedEventId),
      String(scheduled[1]!.activityTaskScheduledEventAttributes!.workflowTaskCompletedEventId),
      'mark running and the first supervise slice are scheduled by one workflow task',
    );
    const markers = events.filter((e) => e.markerRecordedEventAttributes).map((e) => e.markerRecordedEventAttributes!.markerName);
    // Besides the launch, the only marker is the patch marker of bounded history (docs/WORKFLOWS.md).
    assert.deepEqual(
      markers.filter((m) => m !== 'core_patch'),
      ['core_local_activity'],
      'launch ran as a local activity',
    );
    assert.ok(!activities.includes('getNode'), 'the node row came with the assignment');
    assert.ok(!activities.includes('getAssignment'), 'no poll was needed');
    const signals = events
      .filter((e) => e.workflowExecutionSignaledEventAttributes)
      .map((e) => e.workflowExecutionSignaledEventAttributes!.signalName);
    assert.deepEqual(signals, [], 'no assignment signal was needed');
  });

  test('a failing task is retried up to TASK_MAX_REQUEUE attempts, then fails for good', async () => {
    await c.cliOk(['submit', '--id', 'fails-1', '--command', 'echo try >> "$DISPATCH_DIR/../tries"; exit 3']);
    const row = await c.waitStatus('fails-1', 'failed');
    assert.equal(row.attempts, 2);
    assert.equal(row.exit_code, 3);
    assert.match(row.error ?? '', /exit code 3 \(attempt 2 of 2\)/);
    const kinds = c.read((s) => s.events('fails-1').map((e) => e.kind));
    assert.deepEqual(kinds.filter((k) => k === 'requeued').length, 1);
    await assert.rejects(c.client.workflow.getHandle('task-fails-1').result(), (e: Error) =>
      /exit code 3/.test(String((e.cause as Error)?.message)),
    );
  });

  test('the same task resubmitted is a no-op; a different task under a used id is refused', async () => {
    await c.cliOk(['submit', '--id', 'same-1', '--command', 'true']);
    const again = await c.cli(['submit', '--id', 'same-1', '--command', 'true']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already submitted, unchanged/);
    await c.waitStatus('same-1', 'completed');
    const other = await c.cli(['submit', '--id', 'same-1', '--command', 'false']);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /already used by a different task/);
    assert.doesNotMatch(other.stderr, /at .*\.js/); // no stack trace
  });

  test('unsafe ids and bad specs get clear errors and start nothing', async () => {
    for (const id of ['../etc', '-rf', 'a b', 'x;rm -rf /', '', 'é']) {
      const r = await c.cli(['submit', '--id', id, '--command', 'true']);
      assert.equal(r.code, 2, `id ${JSON.stringify(id)}`);
      assert.match(r.stderr, /must match|needs --id/);
    }
    const bad = path.join(c.dir, 'bad.md');
    const cases: [string, RegExp][] = [
      ['no front matter here\n', /no YAML front matter/],
      ['---\ntask_id: [unclosed\n---\n', /not valid YAML/],
      ['---\ntask_id: ok-id\nexecutor: nope\n---\nbody\n', /executor "nope" is not configured/],
      ['---\ntask_id: ok-id\ncommand: "true"\ndepends_on: [../x]\n---\n', /not a valid task id/],
      ['---\ntask_id: ok-id\ncommand: "true"\npriority: high\n---\n', /priority must be an integer/],
      ['---\ntask_id: ok-id\ncommand: "true"\ndepend_on: [a]\n---\n', /unknown front matter key "depend_on"/],
    ];
    for (const [text, re] of cases) {
      writeFileSync(bad, text);
      const r = await c.cli(['submit', bad]);
      assert.equal(r.code, 2, text);
      assert.match(r.stderr, re);
    }
    const missing = await c.cli(['submit', path.join(c.dir, 'nope.md')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read: ENOENT/);
    const list = tctl(['workflow', 'list', '--query', 'WorkflowId="task-ok-id"']);
    assert.doesNotMatch(list, /task-ok-id/);
  });

  test('a spec file with an executor runs the mapped command with the copied spec path', async () => {
    const spec = path.join(c.dir, 'S1.md');
    writeFileSync(
      spec,
      "---\ntask_id: S1-spec\nproject: dispatch-infra\npriority: 1\ndepends_on: []\nmodifies:\n  - a.py\nexecutor: catter\nestimated_minutes: 1\n---\n# Title with 'quotes' and $(not run)\n",
    );
    const cfg = JSON.parse(readFileSync(c.configPath, 'utf8'));
    writeFileSync(c.configPath, JSON.stringify({ ...cfg, executors: { catter: 'wc -c < {spec} && cat {spec}' } }));
    try {
      await c.cliOk(['submit', spec]);
    } finally {
      writeFileSync(c.configPath, JSON.stringify(cfg));
    }
    const row = await c.waitStatus('S1-spec', 'completed');
    const out = readFileSync(path.join(row.run_dir!, 'stdout'), 'utf8');
    assert.match(out, /^[0-9]+\n---\ntask_id: S1-spec/);
    assert.match(out, /Title with 'quotes' and \$\(not run\)/);
    assert.equal(readFileSync(path.join(row.run_dir!, 'spec.md'), 'utf8'), readFileSync(spec, 'utf8'));
  });

  test('priority (lower first), then submission order, decides who gets a free slot', async () => {
    await waitQuiet();
    await c.cliOk(['node', 'drain', 'n2']);
    await c.cliOk(nodeAddArgs(c.nodes[0]!, 1));
    try {
      // The blocker holds the only slot until the test releases it, once all three wait in the queue.
      const release = path.join(c.dir, 'barrier-prio');
      await c.cliOk(['submit', '--id', 'prio-blocker', '--command', `while [ ! -e '${release}' ]; do sleep 0.1; done`]);
      await c.waitStatus('prio-blocker', 'running');
      await c.cliOk(['submit', '--id', 'prio-low', '--priority', '10', '--command', 'sleep 0.3']);
      await c.cliOk(['submit', '--id', 'prio-high-a', '--priority', '1', '--command', 'sleep 0.3']);
      await c.cliOk(['submit', '--id', 'prio-high-b', '--priority', '1', '--command', 'sleep 0.3']);
      for (const id of ['prio-low', 'prio-high-a', 'prio-high-b']) await c.waitStatus(id, 'queued');
      writeFileSync(release, '');
      const rows = await Promise.all(['prio-high-a', 'prio-high-b', 'prio-low'].map((id) => c.waitStatus(id, 'completed')));
      const starts = rows.map((r) => Date.parse(r.started_at!));
      assert.ok(starts[0]! < starts[1]! && starts[1]! < starts[2]!, `start order ${rows.map((r) => `${r.id}@${r.started_at}`).join(', ')}`);
      for (const r of rows) assert.equal(r.node, 'n1');
    } finally {
      await c.cliOk(nodeAddArgs(c.nodes[0]!, 2));
      await c.cliOk(['node', 'resume', 'n2']);
    }
  });

  test('depends_on waits for completion; a dependency that failed for good blocks with the reason', async () => {
    await c.cliOk(['submit', '--id', 'dep-child', '--depends-on', 'dep-parent', '--command', 'true']);
    await sleep(1500);
    assert.equal(c.task('dep-child')?.status, 'queued');
    await c.cliOk(['submit', '--id', 'dep-parent', '--command', 'sleep 1']);
    const parent = await c.waitStatus('dep-parent', 'completed');
    const child = await c.waitStatus('dep-child', 'completed');
    assert.ok(Date.parse(child.started_at!) >= Date.parse(parent.finished_at!));

    await c.cliOk(['submit', '--id', 'dep-bad-parent', '--command', 'exit 1']);
    await c.cliOk(['submit', '--id', 'dep-blocked', '--depends-on', 'dep-bad-parent', '--command', 'true']);
    const blocked = await c.waitStatus('dep-blocked', 'blocked');
    assert.match(blocked.error ?? '', /dependency dep-bad-parent failed/);
    assert.equal(blocked.pid, null);
    await assert.rejects(c.client.workflow.getHandle('task-dep-blocked').result(), (e: Error) =>
      /dependency dep-bad-parent failed/.test(String((e.cause as Error)?.message)),
    );
    // Submitted after the dependency failed: blocked by the register activity's own allocation pass.
    await c.cliOk(['submit', '--id', 'dep-blocked-late', '--depends-on', 'dep-bad-parent', '--command', 'true']);
    const late = await c.waitStatus('dep-blocked-late', 'blocked');
    assert.match(late.error ?? '', /dependency dep-bad-parent failed/);
    const h = c.client.workflow.getHandle('task-dep-blocked-late');
    await assert.rejects(h.result(), (e: Error) => /dependency dep-bad-parent failed/.test(String((e.cause as Error)?.message)));
    assert.deepEqual((await h.describe()).searchAttributes.TaskStatus, ['blocked']);
  });

  test('two tasks that modify the same file never run at once; slot limits hold', async () => {
    await waitQuiet();
    // Every task waits on a barrier file the test creates, so what overlaps depends on the test,
    // not on how fast the CLI submits.
    const barrier = (name: string): string => path.join(c.dir, `barrier-${name}`);
    const waitFor = (name: string): string => `while [ ! -e '${barrier(name)}' ]; do sleep 0.1; done`;
    await c.cliOk(['submit', '--id', 'mod-a', '--modifies', 'src/x.py', '--command', waitFor('mod')]);
    await c.cliOk(['submit', '--id', 'mod-b', '--modifies', 'src/y.py,src/x.py', '--command', waitFor('mod')]);
    const slots = Array.from({ length: 6 }, (_, i) => `slot-${i}`);
    for (const id of slots) await c.cliOk(['submit', '--id', id, '--command', waitFor('slots')]);
    const ids = ['mod-a', 'mod-b', ...slots];
    // A row exists once the workflow's register activity ran; until then count it as queued.
    const rows = () => c.read((s) => ids.map((id) => s.getTask(id) ?? ({ id, status: 'queued', node: null } as TaskRow)));
    const active = (r: TaskRow) => r.status === 'running' || r.status === 'dispatched';
    let maxPerNode = 0;
    const sample = (): TaskRow[] => {
      const rs = rows();
      for (const n of ['n1', 'n2']) maxPerNode = Math.max(maxPerNode, rs.filter((r) => r.node === n && active(r)).length);
      return rs;
    };
    const until = async (pred: (rs: TaskRow[]) => boolean, label: string): Promise<TaskRow[]> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const rs = sample();
        if (pred(rs)) return rs;
        if (Date.now() > deadline)
          throw new Error(`timed out waiting until ${label}: ${JSON.stringify(rs.map((r) => [r.id, r.status, r.node]))}`);
        await sleep(100);
      }
    };
    // Whatever fails, release the barriers so that no task is left holding a slot for later tests.
    try {
      // Saturated: all four slots taken, two per node, and only one of the two tasks on src/x.py.
      let rs = await until((r) => r.filter((x) => x.status === 'running').length === 4, 'four tasks run');
      await sleep(1000);
      rs = sample();
      assert.equal(rs.filter(active).length, 4, 'no fifth task while every slot is taken');
      for (const n of ['n1', 'n2']) assert.equal(rs.filter((r) => r.node === n && active(r)).length, 2, `node ${n} holds its 2 slots`);
      const mods = rs.filter((r) => r.id.startsWith('mod-'));
      assert.equal(mods.filter(active).length, 1, 'exactly one task that modifies src/x.py runs');
      // The slot tasks end; slots free up, but the second src/x.py task waits for the lock.
      writeFileSync(barrier('slots'), '');
      rs = await until((r) => r.filter((x) => x.id.startsWith('slot-')).every((x) => x.status === 'completed'), 'the slot tasks complete');
      await sleep(1000);
      rs = sample();
      const waiting = rs.filter((r) => r.id.startsWith('mod-') && r.status === 'queued');
      assert.equal(waiting.length, 1, 'the second task on src/x.py stays queued while the first holds the lock, with slots free');
      writeFileSync(barrier('mod'), '');
      await until((r) => r.every((x) => x.status === 'completed'), 'every task completes');
      assert.equal(maxPerNode, 2, 'a node should reach but never exceed its 2 slots');
      const a = c.task('mod-a')!;
      const b = c.task('mod-b')!;
      const [first, second] = Date.parse(a.started_at!) < Date.parse(b.started_at!) ? [a, b] : [b, a];
      assert.ok(Date.parse(second.started_at!) >= Date.parse(first.finished_at!), 'modifies overlap');
      assert.equal(c.read((s) => rawDb(s).prepare('SELECT COUNT(*) AS n FROM file_locks').get() as { n: number }).n, 0);
    } finally {
      writeFileSync(barrier('slots'), '');
      writeFileSync(barrier('mod'), '');
    }
  });

  test('temporal workflow cancel kills the remote process group and frees the slot', async () => {
    await c.cliOk(['submit', '--id', 'cancel-me', '--command', 'sleep 300 & sleep 300; wait']);
    const row = await c.waitStatus('cancel-me', 'running');
    const procs = findProcessesWithEnv('DISPATCH_TASK', 'cancel-me');
    assert.ok(procs.length >= 3, `expected runner + shell + sleeps, got ${procs}`);
    tctl(['workflow', 'cancel', '-w', 'task-cancel-me']);
    const done = await c.waitStatus('cancel-me', 'cancelled');
    assert.match(done.error ?? '', /cancelled by operator/);
    for (const p of procs) assert.equal(isAlive(p), false, `pid ${p} still alive`);
    assert.equal(isAlive(row.pid!), false);
  });

  test('dispatch cancel records the reason; a queued task is cancelled without a launch', async () => {
    await c.cliOk(['submit', '--id', 'q-cancel', '--depends-on', 'never-submitted', '--command', 'touch /tmp/should-not-exist-q-cancel']);
    await sleep(500);
    const r = await c.cliOk(['cancel', 'q-cancel', '--reason', 'not needed', '--wait']);
    assert.match(r, /cancelled/);
    const row = await c.waitStatus('q-cancel', 'cancelled');
    assert.match(row.error ?? '', /not needed/);
    assert.equal(row.attempts, 0);
    assert.equal(existsSync('/tmp/should-not-exist-q-cancel'), false);
  });

  test('a task past max_runtime is killed and fails with that reason, heartbeats or not', async () => {
    await c.cliOk(['submit', '--id', 'too-long', '--max-runtime', '3s', '--command', 'trap "" TERM; sleep 120']);
    const running = await c.waitStatus('too-long', 'running');
    const row = await c.waitStatus('too-long', 'failed', 30_000);
    assert.match(row.error ?? '', /max_runtime exceeded/);
    assert.equal(row.attempts, 1, 'a runtime-cap kill is not retried');
    assert.equal(isAlive(running.pid!), false);
    assert.deepEqual(findProcessesWithEnv('DISPATCH_TASK', 'too-long'), []);
  });

  test('a worker killed with SIGKILL mid-task is replaced and the new one re-attaches to the same pid', async () => {
    const [w] = c.workers;
    await c.cliOk(['submit', '--id', 'survivor', '--command', 'echo started >> "$DISPATCH_DIR/starts"; sleep 8']);
    const before = await c.waitStatus('survivor', 'running');
    w!.kill9();
    await sleep(500);
    await c.startWorker();
    const row = await c.waitStatus('survivor', 'completed', 60_000);
    assert.equal(row.pid, before.pid, 're-attached to the same process');
    assert.equal(row.attempts, 1);
    assert.equal(readFileSync(path.join(row.run_dir!, 'starts'), 'utf8'), 'started\n', 'exactly one process ran');
    const hist = await c.client.workflow.getHandle('task-survivor').fetchHistory();
    const retried = hist.events?.some(
      (e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.attempt) > 1,
    );
    assert.ok(retried, 'the supervising activity was retried on the new worker');
  });

  test('a late write from an old attempt is refused and logged', async () => {
    await c.cliOk(['submit', '--id', 'fenced', '--command', 'test "$DISPATCH_ATTEMPT" = 2 || exit 9; sleep 1']);
    const row = await c.waitStatus('fenced', 'completed');
    assert.equal(row.attempts, 2);
    const store = new Store(c.dbPath);
    try {
      const late = store.finishAttempt('fenced', 1, { kind: 'exited', exitCode: 1 }, 2);
      assert.equal(late.applied, false);
      assert.match(late.reason ?? '', /refused finish for fenced attempt 1/);
      const hb = store.recordHeartbeat('fenced', 1);
      assert.equal(hb.applied, false);
      assert.equal(store.getTask('fenced')?.status, 'completed');
      assert.ok(store.events('fenced').some((e) => e.kind === 'fence_refused'));
    } finally {
      store.close();
    }
  });

  test('the state query reports the live attempt and identity', async () => {
    await c.cliOk(['submit', '--id', 'queried', '--command', 'sleep 3']);
    const row = await c.waitStatus('queried', 'running');
    await sleep(300);
    const st = await c.client.workflow
      .getHandle('task-queried')
      .query<{ status: string; identity: { pid: number } | null; attempt: number }>('state');
    assert.equal(st.status, 'running');
    assert.equal(st.attempt, 1);
    assert.equal(st.identity?.pid, row.pid);
    assert.ok(readProcStat(row.pid!));
    const list = await visible(`TaskNode="${row.node}" AND ExecutionStatus="Running"`, 'task-queried');
    assert.match(list, /task-queried/);
    await c.waitStatus('queried', 'completed');
  });
});
