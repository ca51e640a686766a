/**
 * dispatch on a production-style Temporal: two server processes on PostgreSQL with SQL visibility
 * and mTLS on the frontend (scripts/temporal-cluster.sh), real sshd nodes, a real SQLite file.
 * Every dispatch command reaches it through a temporal.toml profile (`--profile cluster`).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, startCluster, sleep, type Cluster, type WorkerProc } from '../helpers/cluster';
import { temporalBin } from '../helpers/temporal';
import { EXIT } from '../../src/cli/exit';
import { startTemporalCluster, type TemporalCluster } from '../helpers/temporal-cluster';
import { findProcessesWithEnv, isAlive } from '../helpers/proc';

let tc: TemporalCluster;
let c: Cluster;
let dbWorker: WorkerProc;
let taskWorker: WorkerProc;

before(async () => {
  tc = await startTemporalCluster();
  c = await startCluster({
    nodes: 2,
    slots: 4,
    temporal: tc.server,
    profile: 'cluster',
    env: tc.env,
    config: { max_requeue: 2, kill_grace: 1, check_interval: 5, probe_interval: 5 },
  });
  // The db worker and a `--queues dispatch` worker: separate processes in separate directories.
  dbWorker = await c.startWorker('dispatch-db');
  taskWorker = await startTaskWorker();
  await c.cliOk(['schedules', 'apply']);
});
after(async () => {
  await c?.stop();
  tc?.stop();
});

/** A `dispatch` queue worker in its own directory, given a database path that does not exist there. */
function startTaskWorker(): Promise<WorkerProc> {
  const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'dispatch-task-worker-'));
  return c.startWorker('dispatch', {}, [], { db: path.join(elsewhere, 'dispatch.db'), cwd: elsewhere });
}

/** Open files of a process (paths its fds point at). */
function openFiles(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** Total actions the reaper Schedule has taken so far. */
function reaperActions(): number {
  const d = JSON.parse(tc.temporal(['schedule', 'describe', '--schedule-id', 'dispatch-reaper', '--output', 'json']));
  return Number(d.info?.actionCount ?? 0);
}

async function waitFor(label: string, pred: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`timed out: ${label}`);
    await sleep(500);
  }
}

describe('on a two-process Temporal cluster over mTLS', () => {
  test('a task completes, and a failing task is retried, then fails for good', async () => {
    await c.cliOk(['submit', '--id', 'ok-1', '--command', 'echo hello']);
    await c.cliOk(['submit', '--id', 'bad-1', '--command', 'exit 3']);
    const ok = await c.waitStatus('ok-1', 'completed', 120_000);
    assert.equal(ok.attempts, 1);
    assert.equal(readFileSync(path.join(ok.run_dir!, 'stdout'), 'utf8'), 'hello\n');
    const bad = await c.waitStatus('bad-1', 'failed', 120_000);
    assert.equal(bad.attempts, 2);
    assert.match(bad.error ?? '', /exit code 3 \(attempt 2 of 2\)/);
    c.assertBooks();
  });

  test('the worker without dispatch-db never opens dispatch.db', () => {
    const files = openFiles(taskWorker.proc.pid!);
    assert.ok(!files.some((f) => f.endsWith('.db') || f.endsWith('.db-wal')), `open files: ${files.join(', ')}`);
    assert.ok(openFiles(dbWorker.proc.pid!).includes(c.dbPath), 'the db worker holds the database');
    const args = readFileSync(`/proc/${taskWorker.proc.pid}/cmdline`, 'utf8').split('\0');
    const db = args[args.indexOf('--db') + 1]!;
    assert.notEqual(db, c.dbPath);
    assert.equal(existsSync(db), false, 'no database was created where the task worker runs');
  });

  test('the schedules are in temporal schedule list, and a client without a certificate is refused', async () => {
    const list = tc.temporal(['schedule', 'list']);
    for (const s of ['dispatch-reaper', 'dispatch-node-probe', 'dispatch-guardian']) assert.match(list, new RegExp(s));
    // dispatch in plaintext (no profile): refused, with the address and how it tried in the error.
    const plain = spawnSync(process.execPath, [BIN, '--address', tc.frontend[0], 'schedules', 'list'], {
      encoding: 'utf8',
      env: { ...process.env, TEMPORAL_CONFIG_FILE: path.join(tc.dir, 'none.toml') },
    });
    assert.equal(plain.status, EXIT.unavailable, plain.stderr);
    assert.match(plain.stderr, /cannot reach Temporal at 127\.0\.0\.1:\d+ \(namespace default, plaintext\)/);
    // TLS with the CA but no client certificate: the frontend requires one.
    const noCert = spawnSync(
      temporalBin(),
      ['operator', 'cluster', 'health', '--address', tc.frontend[0], '--tls-ca-path', tc.certs.ca, '--tls-server-name', 'localhost'],
      { encoding: 'utf8' },
    );
    assert.notEqual(noCert.status, 0);
    // The server's "certificate required" alert may race the client's first write (broken pipe).
    assert.match(noCert.stderr, /failed reaching server: .*(certificate required|broken pipe|connection reset|EOF)/);
    // The same call with the client certificate answers.
    tc.temporal(['operator', 'cluster', 'health']); // throws on a non-zero exit
  });

  test("a profile's address and TLS settings are used, and --address overrides the address", async () => {
    // The `second` profile points at server 2, with the same certificates.
    const viaProfile = spawnSync(process.execPath, [BIN, '--profile', 'second', 'schedules', 'list'], {
      encoding: 'utf8',
      env: { ...process.env, ...tc.env },
    });
    assert.equal(viaProfile.status, 0, viaProfile.stderr);
    assert.match(viaProfile.stdout, /dispatch-reaper/);
    // --address wins over the profile's address; the profile's TLS settings stay.
    const over = spawnSync(process.execPath, [BIN, '--profile', 'cluster', '--address', '127.0.0.1:1', 'schedules', 'list'], {
      encoding: 'utf8',
      env: { ...process.env, ...tc.env },
    });
    assert.equal(over.status, EXIT.unavailable, over.stderr);
    assert.match(over.stderr, /cannot reach Temporal at 127\.0\.0\.1:1 \(namespace default, mTLS, profile cluster\)/);
    assert.doesNotMatch(over.stderr, /BEGIN|PRIVATE/);
    const overOk = spawnSync(process.execPath, [BIN, '--profile', 'cluster', '--address', tc.frontend[1], 'schedules', 'list'], {
      encoding: 'utf8',
      env: { ...process.env, ...tc.env },
    });
    assert.equal(overOk.status, 0, overOk.stderr);
  });

  test('temporal workflow cancel (with the client certificate) kills the remote process', async () => {
    await c.cliOk(['submit', '--id', 'cancel-1', '--command', 'sleep 300']);
    const row = await c.waitStatus('cancel-1', 'running', 120_000);
    const procs = findProcessesWithEnv('DISPATCH_TASK', 'cancel-1');
    assert.ok(procs.length > 0);
    tc.temporal(['workflow', 'cancel', '--workflow-id', 'task-cancel-1']);
    await c.waitStatus('cancel-1', 'cancelled', 120_000);
    assert.equal(isAlive(row.pid!), false);
    for (const p of procs) assert.equal(isAlive(p), false, `pid ${p} survived`);
  });

  test('a worker SIGKILLed mid-task is replaced and the new one re-attaches to the same pid', async () => {
    await c.cliOk(['submit', '--id', 'survivor', '--command', 'echo started >> "$DISPATCH_DIR/starts"; sleep 10']);
    const before = await c.waitStatus('survivor', 'running', 120_000);
    taskWorker.kill9();
    await sleep(500);
    taskWorker = await startTaskWorker();
    const row = await c.waitStatus('survivor', 'completed', 120_000);
    assert.equal(row.pid, before.pid);
    assert.equal(row.attempts, 1);
    assert.equal(readFileSync(path.join(row.run_dir!, 'starts'), 'utf8'), 'started\n');
  });

  test("the scheduled reaper cleans a terminated workflow's ghost", async () => {
    await c.cliOk(['submit', '--id', 'orph-1', '--command', 'sleep 300']);
    await c.waitStatus('orph-1', 'running', 120_000);
    const procs = findProcessesWithEnv('DISPATCH_TASK', 'orph-1');
    tc.temporal(['workflow', 'terminate', '--workflow-id', 'task-orph-1', '--reason', 'test']);
    // The reaper Schedule (every check_interval, 5 s here) sweeps it once the orphan rule's grace
    // (2 x the heartbeat timeout since the row changed) has passed.
    const row = await c.waitStatus('orph-1', 'failed', 120_000);
    assert.equal(row.error, 'Ghost task auto-cleanup: orphaned');
    assert.equal(row.reaped_count, 1);
    for (const p of procs) assert.equal(isAlive(p), false, `pid ${p} survived`);
    c.assertBooks();
  });

  for (const [which, label] of [
    [2, 'the server process whose frontend the clients do not use (its shards move to the survivor)'],
    [1, 'the server process whose frontend the clients use, then restarted (workers and CLI reconnect)'],
  ] as const) {
    test(`killing ${label} loses nothing`, async () => {
      const ids = [1, 2, 3].map((k) => `kill${which}-${k}`);
      for (const id of ids) await c.cliOk(['submit', '--id', id, '--command', 'sleep 40']);
      // Running when the server is killed (long enough that none ends while the others start).
      for (const id of ids) await c.waitTask(id, (t) => t.status === 'running' || t.status === 'completed', 'running', 120_000);
      assert.ok(
        ids.some((id) => c.task(id)?.status === 'running'),
        'tasks are running when the server is killed',
      );
      const actions = reaperActions();
      tc.kill9(which);
      if (which === 1) {
        await sleep(3000);
        tc.startServer(1);
      }
      for (const id of ids) {
        const row = await c.waitStatus(id, 'completed', 240_000);
        assert.equal(row.attempts, 1, `${id}: one attempt`);
      }
      await waitFor('the reaper schedule fires again', () => reaperActions() > actions + 1, 180_000);
      // After a kill, tasks submitted now run too.
      await c.cliOk(['submit', '--id', `after-kill${which}`, '--command', 'true']);
      await c.waitStatus(`after-kill${which}`, 'completed', 180_000);
      c.assertBooks();
      if (which === 2) tc.startServer(2);
    });
  }
});
