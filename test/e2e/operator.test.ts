/**
 * The operator's daily tools against a real deployment: logs (read from the node over SSH, also
 * followed and streamed in bounded memory), show, retry, submit refusing an unknown node, node
 * remove, and cancelling by signal with the real `temporal` CLI (one workflow, and a batch).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { nodeAddArgs, startCluster, sleep, type Cluster } from '../helpers/cluster';
import { isAlive } from '../helpers/proc';
import { temporalBin, waitListed } from '../helpers/temporal';

let c: Cluster;
const BIN = path.resolve(__dirname, '../../../bin/dispatch.js');

before(async () => {
  c = await startCluster({ nodes: 2, slots: 2, config: { lease_s: 3, kill_grace: 1, heartbeat_record_interval: 2, max_requeue: 2 } });
  await c.startWorker();
});
after(async () => {
  await c?.stop();
});

const tctl = (args: string[]) => execFileSync(temporalBin(), [...args, '--address', c.temporal.address], { encoding: 'utf8' });

async function showJson(id: string) {
  return JSON.parse(await c.cliOk(['show', id, '--json'])) as {
    status: string;
    attempts: number;
    attempt_history: { attempt: number; node: string; ended_by: string; exit_code: number | null; run_dir: string }[];
    events: { kind: string; attempt: number | null; detail: string | null }[];
    workflow: { workflow_id: string; run_id: string | null; status: string | null; web_ui: string | null };
  };
}

describe('dispatch logs', () => {
  test('prints stdout, stderr, both, the last lines and an earlier attempt, read from the node over SSH', async () => {
    const cmd =
      'if [ "$DISPATCH_ATTEMPT" = 1 ]; then echo first-out; echo first-err >&2; exit 3; fi; for i in 1 2 3 4 5; do echo "line $i"; done; echo oops >&2';
    await c.cliOk(['submit', '--id', 'lg-1', '--node', 'n1', '--command', cmd]);
    await c.waitStatus('lg-1', 'completed');
    assert.equal(await c.cliOk(['logs', 'lg-1']), 'line 1\nline 2\nline 3\nline 4\nline 5\n');
    assert.equal(await c.cliOk(['logs', 'lg-1', '--stderr']), 'oops\n');
    assert.equal(await c.cliOk(['logs', 'lg-1', '--tail', '2']), 'line 4\nline 5\n');
    assert.equal(await c.cliOk(['logs', 'lg-1', '--attempt', '1']), 'first-out\n');
    const both = await c.cli(['logs', 'lg-1', '--attempt', '1', '--both']);
    assert.equal(both.code, 0);
    assert.equal(both.stdout, 'first-out\n');
    assert.equal(both.stderr, 'first-err\n');
  });

  test('--follow streams a running task until it completes, then exits 0', async () => {
    await c.cliOk(['submit', '--id', 'lg-follow', '--command', 'for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 0.5; done']);
    await c.waitStatus('lg-follow', 'running');
    const r = await c.cli(['logs', 'lg-follow', '--follow']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'tick 1\ntick 2\ntick 3\ntick 4\ntick 5\ntick 6\n');
    assert.equal(c.task('lg-follow')!.status, 'completed');
  });

  test('streams 200 MB with bounded memory', async () => {
    const size = 200 * 1024 * 1024;
    await c.cliOk([
      'submit',
      '--id',
      'lg-big',
      '--command',
      `yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -c ${size}`,
    ]);
    await c.waitStatus('lg-big', 'completed', 120_000);
    const file = path.join(c.dir, 'big.out');
    const out = createWriteStream(file);
    const p = spawn(process.execPath, [BIN, ...c.globalArgs(), 'logs', 'lg-big'], {
      env: c.env,
      cwd: c.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stdout.pipe(out);
    let peakKb = 0;
    const timer = setInterval(() => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        /* ended */
      }
    }, 50);
    const code = await new Promise<number | null>((resolve) => p.on('close', resolve));
    clearInterval(timer);
    await new Promise<void>((r) => out.end(r));
    assert.equal(code, 0);
    assert.equal(statSync(file).size, size);
    assert.ok(
      peakKb > 0 && peakKb < 150 * 1024,
      `the CLI peaked at ${Math.round(peakKb / 1024)} MB of resident memory for a 200 MB stream`,
    );
    rmSync(file);
  });

  test('an unknown task, a pruned attempt directory and an unreachable node are one-line errors with their exit codes', async () => {
    const unknown = await c.cli(['logs', 'no-such-task']);
    assert.equal(unknown.code, 4);
    assert.match(unknown.stderr, /^dispatch: unknown task no-such-task\n$/);
    const noAttempt = await c.cli(['logs', 'lg-1', '--attempt', '9']);
    assert.equal(noAttempt.code, 4);
    assert.match(noAttempt.stderr, /has no attempt 9/);
    await c.cliOk(['submit', '--id', 'lg-pruned', '--node', 'n2', '--command', 'echo gone']);
    const row = await c.waitStatus('lg-pruned', 'completed');
    rmSync(row.run_dir!, { recursive: true });
    const pruned = await c.cli(['logs', 'lg-pruned']);
    assert.equal(pruned.code, 4);
    assert.match(pruned.stderr, /no longer on n2 \(pruned/);
    assert.equal(pruned.stderr.trim().split('\n').length, 1);
    const n2 = c.nodes[1]!;
    await n2.stop();
    try {
      const down = await c.cli(['logs', 'lg-pruned']);
      assert.equal(down.code, 3);
      assert.match(down.stderr, /^dispatch: node n2: /);
      assert.equal(down.stderr.trim().split('\n').length, 1, down.stderr);
    } finally {
      await n2.start();
    }
  });
});

describe('dispatch show and retry', () => {
  test('show lists every attempt, how it ended, the events, the workflow and its Web UI link', async () => {
    const s = await showJson('lg-1');
    assert.equal(s.status, 'completed');
    assert.equal(s.attempts, 2, 'attempts stays the integer it is in tasks --json');
    assert.deepEqual(
      s.attempt_history.map((a) => [a.attempt, a.node, a.ended_by, a.exit_code]),
      [
        [1, 'n1', 'exited', 3],
        [2, 'n1', 'exited', 0],
      ],
    );
    assert.ok(s.events.some((e) => e.kind === 'requeued' && e.attempt === 1));
    assert.equal(s.workflow.workflow_id, 'task-lg-1');
    assert.ok(s.workflow.run_id);
    assert.equal(s.workflow.web_ui, `http://localhost:8233/namespaces/default/workflows/task-lg-1/${s.workflow.run_id}/history`);
    const text = await c.cliOk(['show', 'lg-1']);
    assert.match(text, /exited/);
    const unknown = await c.cli(['show', 'nope']);
    assert.equal(unknown.code, 4);
  });

  test('retry runs a failed task again as a new run, numbering attempts on and keeping the earlier ones', async () => {
    const flag = path.join(c.dir, 'retry-ok');
    await c.cliOk(['submit', '--id', 'rt-1', '--command', `[ -e '${flag}' ] || exit 7`]);
    const failed = await c.waitStatus('rt-1', 'failed');
    assert.equal(failed.attempts, 2);
    const firstRun = (await showJson('rt-1')).workflow.run_id;
    const refusedDone = await c.cli(['retry', 'lg-1']);
    assert.equal(refusedDone.code, 2);
    assert.match(refusedDone.stderr, /it completed/);
    execFileSync('touch', [flag]);
    const out = JSON.parse(await c.cliOk(['retry', 'rt-1', '--reason', 'fixed the flag', '--json']));
    assert.equal(out.max_attempts, 4);
    const done = await c.waitStatus('rt-1', 'completed');
    assert.equal(done.attempts, 3);
    const s = await showJson('rt-1');
    assert.notEqual(s.workflow.run_id, firstRun, 'a new run of task-rt-1');
    assert.deepEqual(
      s.attempt_history.map((a) => [a.attempt, a.exit_code]),
      [
        [1, 7],
        [2, 7],
        [3, 0],
      ],
    );
    const retried = s.events.find((e) => e.kind === 'retried');
    assert.match(retried?.detail ?? '', /fixed the flag/);
  });

  test('retry refuses a running task, with the reason', async () => {
    await c.cliOk(['submit', '--id', 'rt-run', '--command', 'sleep 60']);
    await c.waitStatus('rt-run', 'running');
    const r = await c.cli(['retry', 'rt-run']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /it is running/);
    await c.cliOk(['cancel', 'rt-run', '--wait']);
  });
});

describe('nodes that do not exist', () => {
  test('submit refuses an unknown --node, with dispatch.db here and without it', async () => {
    const here = await c.cli(['submit', '--id', 'nn-1', '--command', 'true', '--node', 'nosuch']);
    assert.equal(here.code, 2);
    assert.match(here.stderr, /unknown node nosuch/);
    const elsewhere = await c.cli(['submit', '--id', 'nn-2', '--command', 'true', '--node', 'nosuch'], {
      db: path.join(c.dir, 'absent', 'dispatch.db'),
    });
    assert.equal(elsewhere.code, 2, elsewhere.stdout + elsewhere.stderr);
    assert.match(elsewhere.stderr, /unknown node nosuch/);
    assert.equal(c.task('nn-1'), null);
    assert.equal(c.task('nn-2'), null);
    // Once the node exists, the refused submission goes through (its refused run wrote no row).
    const n1 = c.nodes[0]!;
    await c.cliOk(nodeAddArgs(n1, 1, 'nosuch', path.join(c.dir, 'nosuch-work')));
    const again = await c.cli(['submit', '--id', 'nn-2', '--command', 'true', '--node', 'nosuch'], {
      db: path.join(c.dir, 'absent', 'dispatch.db'),
    });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /submitted nn-2/);
    await c.waitStatus('nn-2', 'completed');
    await c.cliOk(['node', 'drain', 'nosuch']);
    assert.deepEqual(JSON.parse(await c.cliOk(['node', 'remove', 'nosuch', '--json'])), { node: 'nosuch', removed: true, blocked: [] });
  });

  test('node remove refuses a node with running tasks, and blocks the queued tasks pinned to it', async () => {
    const spare = c.nodes[1]!;
    await c.cliOk(nodeAddArgs(spare, 1, 'spare', path.join(c.dir, 'spare-work')));
    await c.cliOk(['submit', '--id', 'rm-run', '--node', 'spare', '--command', 'sleep 60']);
    await c.waitStatus('rm-run', 'running');
    await c.cliOk(['submit', '--id', 'rm-queued', '--node', 'spare', '--command', 'true']);
    await c.waitStatus('rm-queued', 'queued');
    const busy = await c.cli(['node', 'remove', 'spare']);
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, /still has dispatched or running tasks: rm-run/);
    await c.cliOk(['node', 'drain', 'spare']);
    await c.cliOk(['cancel', 'rm-run', '--wait']);
    const removed = JSON.parse(await c.cliOk(['node', 'remove', 'spare', '--json']));
    assert.deepEqual(removed, { node: 'spare', removed: true, blocked: ['rm-queued'] });
    const row = await c.waitStatus('rm-queued', 'blocked');
    assert.match(row.error ?? '', /its node spare was removed/);
    const nodes = JSON.parse(await c.cliOk(['node', 'list', '--json'])) as { name: string }[];
    assert.ok(!nodes.some((n) => n.name === 'spare'));
    const again = await c.cli(['node', 'remove', 'spare']);
    assert.equal(again.code, 4);
    c.assertBooks();
  });
});

describe('cancel by signal', () => {
  test('temporal workflow signal --name cancel kills the task and books it cancelled with the reason', async () => {
    await c.cliOk(['submit', '--id', 'sig-1', '--command', 'sleep 300']);
    const running = await c.waitStatus('sig-1', 'running');
    tctl(['workflow', 'signal', '-w', 'task-sig-1', '--name', 'cancel', '--input', '"stuck agent"']);
    const done = await c.waitStatus('sig-1', 'cancelled', 60_000);
    assert.match(done.error ?? '', /^cancelled: stuck agent/);
    assert.equal(isAlive(running.pid!), false);
    c.assertBooks();
  });

  test('the batch form with --query cancels every task it matches', async () => {
    const ids = ['sig-b1', 'sig-b2'];
    for (const id of ids) await c.cliOk(['submit', '--id', id, '--project', 'sigbatch', '--command', 'sleep 300']);
    const rows = [];
    for (const id of ids) rows.push(await c.waitStatus(id, 'running'));
    const query = 'TaskProject="sigbatch" AND ExecutionStatus="Running"';
    // Visibility is eventually consistent: the batch must see both before it is started.
    await waitListed(
      c.temporal.address,
      query,
      ids.map((id) => `task-${id}`),
    );
    tctl(['workflow', 'signal', '--query', query, '--name', 'cancel', '--input', '"batch"', '--yes']);
    for (const id of ids) {
      const done = await c.waitStatus(id, 'cancelled', 60_000);
      assert.match(done.error ?? '', /^cancelled: batch/);
    }
    for (const r of rows) assert.equal(isAlive(r.pid!), false);
    await sleep(500);
    assert.ok(!existsSync(path.join(c.dir, 'never')));
    c.assertBooks();
  });
});
