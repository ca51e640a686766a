/**
 * The reaper and the sweepers end to end: real Temporal, real sshd nodes, a real SQLite file.
 * Ghosts are forced the way they arise in the field (a terminated workflow, a dead node, a legacy
 * row) or, where only time would make them, by ageing the row's timestamps in the database.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { nodeAddArgs, startCluster, sleep, type Cluster } from '../helpers/cluster';
import { findProcessesWithEnv, isAlive, readProcStat, waitFor } from '../helpers/proc';
import { rawDb } from '../helpers/raw-db';
import { temporalBin } from '../helpers/temporal';
import { Store } from '../../src/store/store';
import { compileConfig } from '../../src/config/config';
import { sweepOptions } from '../../src/reaper/options';
import { applySweep, planSweep } from '../../src/reaper/sweep';

let c: Cluster;
let hook: http.Server;
const posted: unknown[] = [];
let hookUrl = '';
let factoryDir = '';
const spawned: ChildProcess[] = [];

before(async () => {
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (b) => (body += b));
    req.on('end', () => {
      posted.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`;
  factoryDir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-factory-'));
  writeFileSync(
    path.join(factoryDir, 'fac-1.md'),
    '---\ntask_id: fac-made-1\nproject: fac\ncommand: "echo made"\n---\nmade by the factory\n',
  );
  // Prints a spec path for project "fac" only; fails for project "facfail".
  writeFileSync(
    path.join(factoryDir, 'factory.sh'),
    `case "$1" in fac) echo "${factoryDir}/fac-1.md";; facfail) echo boom >&2; exit 4;; esac\n`,
  );
  c = await startCluster({
    nodes: 2,
    slots: 3,
    config: {
      heartbeat_record_interval: 30,
      stale_s: 900,
      notify_on_clean: true,
      webhook_url: hookUrl,
      kill_grace: 1,
      retention: '3s',
      factory: { command: `sh ${factoryDir}/factory.sh {project}`, min_pending: 1, interval: 3600 },
    },
  });
  await c.startWorker();
});
after(async () => {
  for (const p of spawned) p.kill('SIGKILL');
  await c?.stop();
  hook?.close();
});
afterEach(() => {
  c.assertBooks();
});

function tctl(args: string[]): string {
  return execFileSync(temporalBin(), [...args, '--address', c.temporal.address], { encoding: 'utf8' });
}

/** Test-only: age a row's timestamps as hours of real time would. */
function age(id: string, set: Record<string, string | number | null>): void {
  const db = new Database(c.dbPath);
  try {
    const cols = Object.keys(set);
    db.prepare(`UPDATE tasks SET ${cols.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`).run({ ...set, id });
  } finally {
    db.close();
  }
}
/** The real CLI on a database file of its own (a legacy one the test planted), as {code, out, err}. */
async function onDb(
  db: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const r = await c.cli(args, { db, env });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

const hoursAgo = (h: number): string => new Date(Date.now() - h * 3600_000).toISOString();

async function reap(args: string[]): Promise<{
  ghosts_found: number;
  cleaned: string[];
  skipped: { id: string; reason: string }[];
  drift_fixed: unknown[];
  dry_run: boolean;
  timestamp: string;
  ghosts: { id: string; rule: string; kill: string; note?: string }[];
}> {
  const out = await c.cliOk(['reap', '--json', ...args]);
  return JSON.parse(out);
}

async function runningTask(id: string, extra: string[] = [], cmd = 'sleep 300'): Promise<{ pid: number; procs: number[] }> {
  await c.cliOk(['submit', '--id', id, ...extra, '--command', cmd]);
  const row = await c.waitStatus(id, 'running');
  await sleep(200);
  return { pid: row.pid!, procs: findProcessesWithEnv('DISPATCH_TASK', id) };
}

describe('reaper', () => {
  test('orphaned: a workflow terminated with temporal workflow terminate is cleaned on the next sweep', async () => {
    const { procs } = await runningTask('orph-1');
    tctl(['workflow', 'terminate', '-w', 'task-orph-1', '--reason', 'test']);
    // Grace: 2 x heartbeat timeout (lease 3 s) since the row last changed.
    await sleep(7000);
    const r = await reap(['--ids', 'orph-1']);
    assert.deepEqual(r.cleaned, ['orph-1']);
    assert.equal(r.ghosts.find((g) => g.id === 'orph-1')?.rule, 'orphaned');
    const row = c.task('orph-1')!;
    assert.equal(row.status, 'failed');
    assert.equal(row.error, 'Ghost task auto-cleanup: orphaned');
    assert.equal(row.reaped_count, 1);
    for (const p of procs) assert.equal(isAlive(p), false, `pid ${p} survived`);
  });

  test('stale-heartbeat: a running row whose last heartbeat is older than TASK_STALE_S is reaped and its process killed', async () => {
    const { procs } = await runningTask('stale-1');
    age('stale-1', { last_heartbeat: hoursAgo(1) });
    const r = await reap(['--ids', 'stale-1']);
    assert.equal(r.ghosts[0]?.rule, 'stale-heartbeat');
    // The cancelled workflow or the reaper's batch kill stops it, whichever comes first; both are checked kills.
    assert.match(r.ghosts[0]!.kill, /killed-term|killed-kill|already-gone/);
    assert.deepEqual(r.cleaned, ['stale-1']);
    assert.equal(c.task('stale-1')?.error, 'Ghost task auto-cleanup: stale-heartbeat');
    for (const p of procs) assert.equal(isAlive(p), false);
    await assert.rejects(c.client.workflow.getHandle('task-stale-1').result());
  });

  test('overtime: running past threshold_hours without a longer max_runtime is reaped', async () => {
    const { procs } = await runningTask('over-1');
    age('over-1', { started_at: hoursAgo(3), max_runtime_s: 3600 });
    const r = await reap(['--ids', 'over-1']);
    assert.equal(r.ghosts[0]?.rule, 'overtime');
    assert.deepEqual(r.cleaned, ['over-1']);
    for (const p of procs) assert.equal(isAlive(p), false);
  });

  test('a live heartbeating task far past threshold_hours with a longer max_runtime is left alone', async () => {
    const { pid } = await runningTask('long-ok', ['--max-runtime', '10h']);
    age('long-ok', { started_at: hoursAgo(5) });
    const r = await reap(['--ids', 'long-ok']);
    assert.equal(r.ghosts_found, 0);
    assert.equal(c.task('long-ok')?.status, 'running');
    assert.equal(isAlive(pid), true);
    await c.cliOk(['cancel', 'long-ok', '--wait']);
  });

  test('dispatch-timeout: dispatched but not running after 5 minutes is failed, nothing signalled', async () => {
    await c.nodes[1]!.stop();
    try {
      await c.cliOk(['submit', '--id', 'disp-1', '--node', 'n2', '--command', 'sleep 300']);
      await c.waitStatus('disp-1', 'dispatched');
      age('disp-1', { dispatched_at: hoursAgo(0.2), updated_at: hoursAgo(0.2) });
      const r = await reap(['--ids', 'disp-1']);
      assert.equal(r.ghosts[0]?.rule, 'dispatch-timeout');
      assert.equal(r.ghosts[0]?.kill, 'not-signalled');
      assert.deepEqual(r.cleaned, ['disp-1']);
      const d = await c.client.workflow.getHandle('task-disp-1').describe();
      assert.notEqual(d.status.name, 'RUNNING');
    } finally {
      await c.nodes[1]!.start();
    }
    assert.deepEqual(findProcessesWithEnv('DISPATCH_TASK', 'disp-1'), []);
  });

  test('node-offline: a stopped sshd makes its node offline; on its return the leftover process is killed before the node takes work', async () => {
    const { procs } = await runningTask('off-1', ['--node', 'n2']);
    await c.nodes[1]!.stop();
    try {
      for (let i = 0; i < 3; i++)
        await c.client.workflow.execute('nodeProbeWorkflow', {
          taskQueue: 'dispatch',
          workflowId: `probe-${i}-${Date.now()}`,
          args: [{ killGraceS: 1 }],
        });
      assert.equal(c.read((s) => s.getNode('n2'))?.status, 'offline');
      const r = await reap(['--ids', 'off-1']);
      assert.equal(r.ghosts[0]?.rule, 'node-offline');
      assert.equal(r.ghosts[0]?.kill, 'unreachable');
      assert.deepEqual(r.cleaned, ['off-1']);
      assert.equal(c.read((s) => s.getNode('n2'))?.running_count, 0, 'slots freed');
      // The node is gone from our view, but the process still runs there.
      assert.ok(procs.some((p) => isAlive(p)));
      await c.cliOk(['submit', '--id', 'off-wait', '--node', 'n2', '--command', 'true']);
      await sleep(1500);
      assert.equal(c.task('off-wait')?.status, 'queued', 'an offline node takes no work');
    } finally {
      await c.nodes[1]!.start();
    }
    // A live task of another node on the same host must survive n2's recovery (the chaos run found this).
    const neighbour = await runningTask('off-neighbour', ['--node', 'n1']);
    // So must a task of ANOTHER dispatch deployment on the same host, even one with the same task id
    // and attempt as our stale process: it runs under that deployment's work dir, not n2's.
    const otherDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'dispatch-other-deployment-')), 'off-1', 'attempt-1');
    require('node:fs').mkdirSync(otherDir, { recursive: true });
    const foreign = spawn('sleep', ['300'], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, DISPATCH_TASK: 'off-1', DISPATCH_ATTEMPT: '1', DISPATCH_DIR: otherDir },
    });
    spawned.push(foreign);
    // The pooled connection backs off after failures (at most 10 s): probe until the node answers.
    let recovered: string[] = [];
    for (let i = 0; i < 30 && !recovered.includes('n2'); i++) {
      const res = await c.client.workflow.execute('nodeProbeWorkflow', {
        taskQueue: 'dispatch',
        workflowId: `probe-back-${i}-${Date.now()}`,
        args: [{ killGraceS: 1 }],
      });
      recovered = (res as { recovered: string[] }).recovered;
      if (!recovered.includes('n2')) await sleep(1000);
    }
    assert.deepEqual(recovered, ['n2']);
    for (const p of procs) assert.equal(isAlive(p), false, `leftover ${p} still alive`);
    assert.equal(isAlive(neighbour.pid), true, 'the recovery killed a live task of another node on the same host');
    assert.equal(isAlive(foreign.pid!), true, "the recovery killed another deployment's task (outside n2's work dir)");
    const online = c.read(
      (s) => rawDb(s).prepare(`SELECT detail FROM events WHERE kind = 'node_online' ORDER BY id DESC LIMIT 1`).get() as { detail: string },
    );
    const killedPids = (JSON.parse(online.detail) as { killed?: { pid: number }[] }).killed?.map((k) => k.pid) ?? [];
    assert.ok(killedPids.length > 0, `the recovery killed the leftover: ${online.detail}`);
    assert.ok(!killedPids.includes(foreign.pid!), 'the foreign process was listed as killed');
    assert.equal(c.task('off-neighbour')?.status, 'running');
    await c.cliOk(['cancel', 'off-neighbour', '--wait']);
    const back = await c.waitStatus('off-wait', 'completed');
    const events = c.read(
      (s) => rawDb(s).prepare(`SELECT at FROM events WHERE kind = 'node_online' ORDER BY id DESC LIMIT 1`).get() as { at: string },
    );
    assert.ok(Date.parse(back.started_at!) >= Date.parse(events.at), 'took work only after recovery');
  });

  test('a task that completes while a sweep is in flight is not touched', async () => {
    await c.cliOk(['submit', '--id', 'race-1', '--command', 'sleep 2']);
    await c.waitStatus('race-1', 'running');
    age('race-1', { last_heartbeat: hoursAgo(1) });
    const cfg = compileConfig(JSON.parse(require('node:fs').readFileSync(c.configPath, 'utf8')));
    const store = new Store(c.dbPath);
    try {
      const plan = await planSweep(store, sweepOptions(cfg, { ids: ['race-1'] }));
      assert.equal(plan.ghosts.length, 1, 'the sweep saw it as a ghost');
      await c.waitStatus('race-1', 'completed');
      const report = applySweep(store, plan, { 'race-1': { outcome: 'already-gone' } });
      assert.deepEqual(report.cleaned, []);
      assert.equal(report.skipped[0]?.id, 'race-1');
      assert.match(report.skipped[0]!.reason, /changed since the sweep read it/);
      const row = store.getTask('race-1')!;
      assert.equal(row.status, 'completed');
      assert.equal(row.error, null);
      assert.equal(row.reaped_count, 0);
    } finally {
      store.close();
    }
  });

  test('a process whose pid was reused by an unrelated process is not signalled', async () => {
    await c.cliOk(['submit', '--id', 'reuse-1', '--command', 'sleep 300']);
    const row = await c.waitStatus('reuse-1', 'running');
    // The task's process dies; an unrelated process now holds a pid we pretend the row recorded.
    const unrelated = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    spawned.push(unrelated);
    const wrongStart = String(Number(readProcStat(unrelated.pid!)!.starttime) + 1);
    age('reuse-1', { pid: unrelated.pid!, proc_starttime: wrongStart, last_heartbeat: hoursAgo(1) });
    const r = await reap(['--ids', 'reuse-1']);
    assert.equal(r.ghosts[0]?.kill, 'not-ours');
    assert.equal(isAlive(unrelated.pid!), true, 'the unrelated process was signalled');
    assert.equal(c.task('reuse-1')?.status, 'failed');
    // The real task process (recorded before we changed the row) is the workflow's to kill.
    await waitFor(() => !isAlive(row.pid!), 20_000, 'the original process to be killed by its cancelled workflow');
    unrelated.kill('SIGKILL');
  });

  test('--dry-run changes nothing and kills nothing, and lists what it would do', async () => {
    const { pid } = await runningTask('dry-1');
    age('dry-1', { last_heartbeat: hoursAgo(2) });
    const before = c.read((s) => JSON.stringify([s.getTask('dry-1'), s.listNodes(), s.reaperRuns().length]));
    const r = await reap(['--dry-run', '--ids', 'dry-1']);
    assert.equal(r.dry_run, true);
    assert.equal(r.ghosts_found, 1);
    assert.equal(r.ghosts[0]?.kill, 'would-kill');
    assert.deepEqual(r.cleaned, []);
    assert.equal(
      c.read((s) => JSON.stringify([s.getTask('dry-1'), s.listNodes(), s.reaperRuns().length])),
      before,
    );
    assert.equal(isAlive(pid), true);
    const human = await c.cliOk(['reap', '--dry-run', '--ids', 'dry-1']);
    assert.match(human, /DRY RUN: nothing changed/);
    await c.cliOk(['cancel', 'dry-1', '--wait']);
  });

  test('--project leaves other projects alone; auto-clean notifies the webhook and records the run', async () => {
    await runningTask('proj-a', ['--project', 'alpha']);
    const other = await runningTask('proj-b', ['--project', 'beta']);
    age('proj-a', { last_heartbeat: hoursAgo(1) });
    age('proj-b', { last_heartbeat: hoursAgo(1) });
    posted.length = 0;
    const r = await reap(['--project', 'alpha']);
    assert.deepEqual(r.cleaned, ['proj-a']);
    assert.equal(c.task('proj-b')?.status, 'running');
    assert.equal(isAlive(other.pid), true);
    await waitFor(() => posted.length > 0, 10_000, 'the webhook POST');
    assert.deepEqual((posted[0] as { cleaned: string[] }).cleaned, ['proj-a']);
    const runs = c.read((s) => s.reaperRuns(1));
    assert.deepEqual(JSON.parse(runs[0]!.report).cleaned, ['proj-a']);
    await c.cliOk(['cancel', 'proj-b', '--wait']);
  });

  test('ghost_action requeue puts the ghost back in the queue while attempts remain, and it runs again', async () => {
    await runningTask('req-1', [], 'test "$DISPATCH_ATTEMPT" = 2 || sleep 300');
    age('req-1', { last_heartbeat: hoursAgo(1) });
    const r = await reap(['--ids', 'req-1', '--action', 'requeue']);
    assert.deepEqual(r.cleaned, ['req-1']);
    const row = await c.waitStatus('req-1', 'completed', 60_000);
    assert.equal(row.attempts, 2);
    assert.equal(row.reaped_count, 1);
  });

  test('the slot books are recounted and drift is reported', async () => {
    const db = new Database(c.dbPath);
    db.prepare(`UPDATE nodes SET running_count = 7 WHERE name = 'n1'`).run();
    db.close();
    const r = await reap([]);
    const d = r.drift_fixed as { node: string; running_count_was: number; running_count_now: number }[];
    const n1 = d.find((x) => x.node === 'n1');
    assert.ok(n1, 'drift on n1 reported');
    assert.ok(n1.running_count_was >= 6 && n1.running_count_was <= 7, `was ${n1.running_count_was}`);
    assert.equal(
      n1.running_count_now,
      c.read((s) => s.activeCountsByNode().get('n1') ?? 0),
    );
    assert.equal(c.read((s) => s.getNode('n1'))?.running_count, n1.running_count_now);
  });

  test('schedules are applied idempotently and appear in temporal schedule list; trigger runs a sweep', async () => {
    const first = JSON.parse(await c.cliOk(['schedules', 'apply', '--json']));
    assert.deepEqual(first.map((x: { id: string }) => x.id).sort(), [
      'dispatch-factory',
      'dispatch-guardian',
      'dispatch-node-probe',
      'dispatch-reaper',
    ]);
    const again = JSON.parse(await c.cliOk(['schedules', 'apply', '--json']));
    assert.ok(again.every((x: { outcome: string }) => x.outcome === 'updated'));
    const list = tctl(['schedule', 'list']);
    for (const id of ['dispatch-reaper', 'dispatch-node-probe', 'dispatch-guardian']) assert.match(list, new RegExp(id));
    const desc = tctl(['schedule', 'describe', '--schedule-id', 'dispatch-reaper', '--output', 'json']);
    assert.match(desc, /SCHEDULE_OVERLAP_POLICY_SKIP/);
    // A hung run ends at its run timeout, so overlap SKIP cannot hold later runs back for longer.
    for (const id of ['dispatch-reaper', 'dispatch-node-probe', 'dispatch-guardian', 'dispatch-factory']) {
      const action = (await c.client.schedule.getHandle(id).describe()).action as { workflowRunTimeout?: number | string };
      assert.ok(action.workflowRunTimeout !== undefined && Number(action.workflowRunTimeout) > 0, `${id} has no run timeout`);
    }
    await c.cliOk(['schedules', 'pause', 'dispatch-reaper']);
    assert.equal(
      JSON.parse(await c.cliOk(['schedules', 'list', '--json'])).find((s: { id: string }) => s.id === 'dispatch-reaper').paused,
      true,
    );
    await c.cliOk(['schedules', 'unpause', 'dispatch-reaper']);
    const runsBefore = c.read((s) => s.reaperRuns(100).length);
    const n = await c.cli(['schedules', 'trigger', 'dispatch-reaper']);
    assert.equal(n.code, 0, n.stderr);
    await waitFor(
      () => tctl(['workflow', 'list', '--query', 'WorkflowType="reaperWorkflow"']).includes('dispatch-reaper-run'),
      20_000,
      'a scheduled reaper run',
    );
    void runsBefore;
    const bad = await c.cli(['schedules', 'pause', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown schedule "nope"/);
    for (const id of ['dispatch-node-probe', 'dispatch-reaper', 'dispatch-guardian', 'dispatch-factory'])
      await c.cliOk(['schedules', 'pause', id]);
  });

  test('guardian blocks tasks whose dependencies failed for good and reports cycles', async () => {
    await c.cliOk(['submit', '--id', 'g-a', '--depends-on', 'g-b', '--command', 'true']);
    await c.cliOk(['submit', '--id', 'g-b', '--depends-on', 'g-a', '--command', 'true']);
    const res = (await c.client.workflow.execute('guardianWorkflow', { taskQueue: 'dispatch', workflowId: `guardian-${Date.now()}` })) as {
      cycles: string[][];
    };
    assert.ok(res.cycles.some((cy) => cy.includes('g-a') && cy.includes('g-b')));
    await c.cliOk(['cancel', 'g-a', '--wait']);
    await c.waitStatus('g-b', 'blocked');
  });
});

describe('guardian long-running report', () => {
  test('the guardian reports a task running for more than 4 h that still heartbeats, and leaves it running', async () => {
    const { pid } = await runningTask('g-long', ['--max-runtime', '10h']);
    age('g-long', { started_at: hoursAgo(5) });
    const res = (await c.client.workflow.execute('guardianWorkflow', {
      taskQueue: 'dispatch',
      workflowId: `guardian-long-${Date.now()}`,
    })) as {
      long_running: { id: string; hours: number }[];
    };
    const entry = res.long_running.find((x) => x.id === 'g-long');
    assert.ok(entry, `reported: ${JSON.stringify(res.long_running)}`);
    assert.ok(entry.hours >= 4.9 && entry.hours <= 5.1, `hours ${entry.hours}`);
    const run = c.read(
      (s) =>
        rawDb(s).prepare(`SELECT report FROM reaper_runs WHERE kind = 'guardian' ORDER BY id DESC LIMIT 1`).get() as { report: string },
    );
    assert.match(run.report, /g-long/, 'the report is recorded');
    assert.equal(isAlive(pid), true, 'reported, not killed');
    assert.equal(c.task('g-long')?.status, 'running');
    // A row whose heartbeat is stale is the reaper's business, not a long-running report.
    age('g-long', { last_heartbeat: hoursAgo(1) });
    const again = (await c.client.workflow.execute('guardianWorkflow', {
      taskQueue: 'dispatch',
      workflowId: `guardian-long2-${Date.now()}`,
    })) as { long_running: { id: string }[] };
    assert.ok(!again.long_running.some((x) => x.id === 'g-long'));
    await c.cliOk(['cancel', 'g-long', '--wait']);
  });
});

describe('guardian retention and factory', () => {
  test('the guardian removes attempt directories past retention but never a current attempt', async () => {
    await c.cliOk(['submit', '--id', 'old-run', '--command', 'true']);
    const old = await c.waitStatus('old-run', 'completed');
    const { pid } = await runningTask('cur-run', ['--node', old.node!]);
    const cur = c.task('cur-run')!;
    await sleep(4500); // both directories are now older than the 3 s retention
    const res = (await c.client.workflow.execute('guardianWorkflow', {
      taskQueue: 'dispatch',
      workflowId: `guardian-prune-${Date.now()}`,
    })) as { pruned: number };
    assert.ok(res.pruned >= 1);
    assert.equal(existsSync(old.run_dir!), false, 'the finished attempt directory was removed');
    assert.equal(existsSync(cur.run_dir!), true, 'the current attempt directory was kept');
    assert.equal(isAlive(pid), true);
    await c.cliOk(['cancel', 'cur-run', '--wait']);
  });

  test('the factory runs for a project under min_pending and submits every spec path it prints; failures are logged', async () => {
    await c.cliOk(['submit', '--id', 'fac-seed', '--project', 'fac', '--command', 'true']);
    await c.cliOk(['submit', '--id', 'facfail-seed', '--project', 'facfail', '--command', 'true']);
    await c.waitStatus('fac-seed', 'completed');
    await c.waitStatus('facfail-seed', 'completed');
    const res = (await c.client.workflow.execute('factoryWorkflow', { taskQueue: 'dispatch', workflowId: `factory-${Date.now()}` })) as {
      ran: string[];
      submitted: string[];
      errors: string[];
    };
    assert.ok(res.ran.includes('fac') && res.ran.includes('facfail'));
    assert.deepEqual(res.submitted, ['fac-made-1']);
    assert.ok(res.errors.some((e) => /facfail: factory command exited 4: boom/.test(e)));
    const row = await c.waitStatus('fac-made-1', 'completed');
    assert.equal(row.project, 'fac');
    assert.match(c.workerLogs(), /factory: facfail: factory command exited 4/);
  });
});

describe('legacy database: the five ghosts of seed S15', () => {
  test('are cleaned exactly as S15 asks, and nothing else is touched', async () => {
    const dir = path.join(c.dir, 'legacy');
    require('node:fs').mkdirSync(dir);
    const db = path.join(dir, 'dispatch.db');
    const raw = new Database(db);
    raw.exec(`CREATE TABLE tasks (id TEXT PRIMARY KEY, project TEXT, status TEXT, node TEXT, pid INTEGER, started_at TEXT, updated_at TEXT, attempts INTEGER, error TEXT);
              CREATE TABLE nodes (name TEXT PRIMARY KEY, host TEXT, slots INTEGER, running_count INTEGER);`);
    const ghosts = ['S02-agent-self-evolve', 'S50-strategy-api', 'S51-content-review', 'S11-predictive-scheduling', 'S12-code-self-audit'];
    const hours = [10.6, 8.5, 8.5, 8.1, 8.1];
    const procs: ChildProcess[] = ghosts.slice(0, 3).map((id) => {
      const p = spawn('sh', ['-c', `sleep 600; : ${id}`], { detached: true, stdio: 'ignore' });
      spawned.push(p);
      return p;
    });
    const unrelated = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    spawned.push(unrelated);
    const ins = raw.prepare(`INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    ghosts.forEach((id, i) => {
      const pid = i < 3 ? procs[i]!.pid! : i === 3 ? unrelated.pid! : 'abc';
      const started = i % 2 ? `datetime('now', '-${hours[i]} hours')` : null;
      ins.run(id, 'dispatch-infra', 'running', 'n1', pid, started ? null : hoursAgo(hours[i]!), null, 1, null);
      if (started) raw.prepare(`UPDATE tasks SET started_at = datetime('now', ?) WHERE id = ?`).run(`-${hours[i]} hours`, id);
    });
    ins.run('S03-done', 'dispatch-infra', 'completed', 'n1', 4242, hoursAgo(9), hoursAgo(8), 1, null);
    ins.run('X01-other', 'other-project', 'running', 'n1', unrelated.pid!, hoursAgo(9), null, 1, null);
    ins.run('S04-fresh', 'dispatch-infra', 'running', 'n1', null, hoursAgo(0.5), null, 1, null);
    raw.prepare(`INSERT INTO nodes VALUES ('n1', '127.0.0.1', 4, 7)`).run();
    raw.close();
    const n1 = c.nodes[0]!;
    const run = (args: string[]) => onDb(db, args);
    assert.equal((await run(['init'])).code, 0);
    assert.equal((await run(nodeAddArgs(n1, 4))).code, 0);
    const r = await run(['reap', '--direct', '--project', 'dispatch-infra', '--json']);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.deepEqual(report.cleaned.sort(), [...ghosts].sort());
    const s = new Store(db, { readonly: true });
    try {
      for (const id of ghosts) {
        const row = s.getTask(id)!;
        assert.equal(row.status, 'failed', id);
        assert.equal(row.error, 'Ghost task auto-cleanup: orphaned');
      }
      const byId = Object.fromEntries(report.ghosts.map((g: { id: string; kill: string }) => [g.id, g.kill]));
      for (const id of ghosts.slice(0, 3)) assert.match(byId[id], /killed-term|killed-kill/);
      assert.equal(byId['S11-predictive-scheduling'], 'not-signalled', 'the pid does not name the task');
      assert.equal(byId['S12-code-self-audit'], 'not-signalled', 'junk pid');
      assert.equal(s.getTask('S03-done')!.status, 'completed');
      assert.equal(s.getTask('S03-done')!.error, null);
      assert.equal(s.getTask('X01-other')!.status, 'running');
      assert.equal(s.getTask('S04-fresh')!.status, 'running');
      assert.equal((rawDb(s).prepare('SELECT COUNT(*) AS n FROM tasks').get() as { n: number }).n, 8, 'no row deleted');
      assert.equal(s.getNode('n1')!.running_count, 2, 'slots freed: only X01-other and S04-fresh still hold n1');
    } finally {
      s.close();
    }
    await waitFor(() => procs.every((p) => !isAlive(p.pid!)), 10_000, 'the ghost processes to be gone');
    assert.equal(isAlive(unrelated.pid!), true, 'an unrelated process was signalled');
  });
});

describe('reap --direct batches like the reaper workflow', () => {
  test('with more ghosts than reap_batch it cleans them all, in several batches, and reports them once', async () => {
    const dir = path.join(c.dir, 'legacy-batches');
    require('node:fs').mkdirSync(dir);
    const db = path.join(dir, 'dispatch.db');
    const raw = new Database(db);
    raw.exec(`CREATE TABLE tasks (id TEXT PRIMARY KEY, project TEXT, status TEXT, node TEXT, pid INTEGER, started_at TEXT, updated_at TEXT,
              attempts INTEGER, error TEXT)`);
    const ids = Array.from({ length: 7 }, (_, i) => `B${i}-legacy-ghost`);
    // Legacy rows with a junk pid: orphaned by age, never signalled.
    const ins = raw.prepare(`INSERT INTO tasks VALUES (?, 'batches', 'running', NULL, 'junk', ?, NULL, 1, NULL)`);
    for (const id of ids) ins.run(id, hoursAgo(9));
    raw.close();
    const run = (args: string[]) => onDb(db, args, { TASK_REAP_BATCH: '3' });
    assert.equal((await run(['init'])).code, 0);
    const dry = JSON.parse((await run(['reap', '--direct', '--dry-run', '--json'])).out);
    assert.equal(dry.ghosts_found, 3, 'a dry run plans one batch of reap_batch ghosts');
    const r = await run(['reap', '--direct', '--json']);
    assert.equal(r.code, 0, r.err);
    const report = JSON.parse(r.out);
    assert.equal(report.ghosts_found, 7);
    assert.deepEqual([...report.cleaned].sort(), [...ids].sort());
    assert.equal(new Set(report.ghosts.map((g: { id: string }) => g.id)).size, 7, 'each ghost reported once');
    const s = new Store(db, { readonly: true });
    try {
      for (const id of ids) assert.equal(s.getTask(id)!.status, 'failed', id);
    } finally {
      s.close();
    }
  });
});
