/**
 * Nodes end to end: listing and adding them through the CLI, a local node that runs tasks without
 * SSH, a node whose host key is wrong (nothing may start there), and an operator's batch cancel by
 * search attribute query. Real Temporal dev server, real sshd nodes, a real worker process.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCluster, sleep, type Cluster } from '../helpers/cluster';
import { findProcessesWithEnv, isAlive, waitFor } from '../helpers/proc';
import { temporalBin, waitListed } from '../helpers/temporal';
import { ShellPool } from '../../src/shell/pool';
import { probeNodes } from '../../src/reaper/nodes';

let c: Cluster;

before(async () => {
  // SSH_CONNECTION is set by sshd for every command it runs; cleared here so that a task which
  // sees it can only have come through SSH.
  c = await startCluster({ nodes: 2, slots: 2, env: { SSH_CONNECTION: '' } });
  await c.startWorker();
});
after(async () => {
  await c?.stop();
});
afterEach(() => {
  c.assertBooks();
});

interface NodeJson {
  name: string;
  kind: string;
  host: string | null;
  port: number | null;
  status: string;
  slots: number;
  running_count: number;
  last_seen_at: string | null;
  work_dir: string | null;
}

async function nodeList(): Promise<NodeJson[]> {
  return JSON.parse(await c.cliOk(['node', 'list', '--json'])) as NodeJson[];
}

/** Back to the state every test starts from: n1 and n2 online, every other node drained. */
async function restoreNodes(): Promise<void> {
  for (const n of await nodeList()) {
    const want = n.name === 'n1' || n.name === 'n2' ? 'online' : 'drained';
    if (n.status !== want) await c.cliOk(['node', want === 'online' ? 'resume' : 'drain', n.name]);
  }
}

async function drainAllBut(keep: string): Promise<void> {
  for (const n of await nodeList()) if (n.name !== keep && n.status !== 'drained') await c.cliOk(['node', 'drain', n.name]);
}

function assertNoStack(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at .+[:(]/m, `stack trace on stderr:\n${stderr}`);
}

describe('nodes', () => {
  test('node list --json shows the nodes with their slots and status', async () => {
    const [n1, n2] = c.nodes;
    const rows = await nodeList();
    assert.deepEqual(
      rows.map((r) => r.name),
      ['n1', 'n2'],
    );
    for (const [r, n] of [
      [rows[0]!, n1!],
      [rows[1]!, n2!],
    ] as const) {
      assert.equal(r.kind, 'ssh');
      assert.equal(r.host, '127.0.0.1');
      assert.equal(r.port, n.port);
      assert.equal(r.status, 'online');
      assert.equal(r.slots, 2);
      assert.equal(r.running_count, 0);
      assert.equal(r.work_dir, n.workDir);
    }
    try {
      assert.match(await c.cliOk(['node', 'drain', 'n2']), /node n2: drained/);
      const drained = await nodeList();
      assert.deepEqual(
        drained.map((r) => [r.name, r.status, r.slots]),
        [
          ['n1', 'online', 2],
          ['n2', 'drained', 2],
        ],
      );
      // Re-adding a node with other slots updates it in place (and brings it back online).
      await c.cliOk([
        'node',
        'add',
        'n2',
        '--host',
        n2!.host,
        '--port',
        String(n2!.port),
        '--user',
        n2!.user,
        '--key',
        n2!.keyPath,
        '--known-hosts',
        n2!.knownHostsPath,
        '--work-dir',
        n2!.workDir,
        '--slots',
        '5',
      ]);
      assert.deepEqual(
        (await nodeList()).map((r) => [r.name, r.status, r.slots]),
        [
          ['n1', 'online', 2],
          ['n2', 'online', 5],
        ],
      );
      // The human table shows the same.
      const table = await c.cliOk(['node', 'list']);
      assert.match(table, /n2\s+ssh\s+127\.0\.0\.1\s+\d+\s+online\s+5\s+0/);
    } finally {
      await c.cliOk([
        'node',
        'add',
        'n2',
        '--host',
        n2!.host,
        '--port',
        String(n2!.port),
        '--user',
        n2!.user,
        '--key',
        n2!.keyPath,
        '--known-hosts',
        n2!.knownHostsPath,
        '--work-dir',
        n2!.workDir,
        '--slots',
        '2',
      ]);
      await restoreNodes();
    }
    assert.deepEqual(
      (await nodeList()).map((r) => [r.name, r.status, r.slots]),
      [
        ['n1', 'online', 2],
        ['n2', 'online', 2],
      ],
    );
  });

  test('node add refuses a missing key file, a bad name and giving both --host and --local', async () => {
    const n1 = c.nodes[0]!;
    const shape = async () => (await nodeList()).map((n) => [n.name, n.kind, n.host, n.port, n.status, n.slots, n.work_dir]);
    const before = await shape();
    const missingKey = path.join(c.dir, 'no-such-key');
    const cases: [string, string[], RegExp][] = [
      [
        'missing key file',
        [
          'node',
          'add',
          'nokey',
          '--host',
          '127.0.0.1',
          '--port',
          String(n1.port),
          '--key',
          missingKey,
          '--known-hosts',
          n1.knownHostsPath,
          '--slots',
          '1',
        ],
        /key file .*no-such-key does not exist/,
      ],
      [
        'bad name',
        ['node', 'add', 'bad name;rm', '--host', '127.0.0.1', '--key', n1.keyPath, '--known-hosts', n1.knownHostsPath, '--slots', '1'],
        /invalid node name/,
      ],
      ['name with a leading dash', ['node', 'add', '--local', '--slots', '1', '--', '-n3'], /invalid node name/],
      [
        'both --host and --local',
        ['node', 'add', 'both', '--host', '127.0.0.1', '--local', '--key', n1.keyPath, '--known-hosts', n1.knownHostsPath, '--slots', '1'],
        /exactly one of --host HOST or --local/,
      ],
      ['neither --host nor --local', ['node', 'add', 'neither', '--slots', '1'], /exactly one of --host HOST or --local/],
    ];
    for (const [what, args, msg] of cases) {
      const r = await c.cli(args);
      assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, msg, what);
      assert.match(r.stderr, /^dispatch: /, what);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: expected one line:\n${r.stderr}`);
      assertNoStack(r.stderr);
    }
    assert.deepEqual(await shape(), before, 'a refused node add changed the nodes');
  });

  test('a local node runs tasks on this machine without SSH', async () => {
    const workDir = path.join(c.dir, 'local-work');
    mkdirSync(workDir);
    try {
      assert.match(
        await c.cliOk(['node', 'add', 'here', '--local', '--slots', '1', '--work-dir', workDir]),
        /node here: local, 1 slots, online/,
      );
      await c.cliOk(['node', 'drain', 'n1']);
      await c.cliOk(['node', 'drain', 'n2']);
      const here = (await nodeList()).find((n) => n.name === 'here')!;
      assert.deepEqual(
        [here.kind, here.host, here.port, here.slots, here.status, here.work_dir],
        ['local', null, null, 1, 'online', workDir],
      );

      await c.cliOk(['submit', '--id', 'local-1', '--command', 'echo "ssh=[${SSH_CONNECTION:-}] task=$DISPATCH_TASK"']);
      const row = await c.waitStatus('local-1', 'completed');
      assert.equal(row.node, 'here');
      assert.equal(row.exit_code, 0);
      assert.ok(row.run_dir, 'run_dir recorded');
      assert.ok(path.resolve(row.run_dir!).startsWith(workDir + path.sep), `run dir ${row.run_dir} is not under ${workDir}`);
      const statusFile = path.join(row.run_dir!, 'status.json');
      assert.ok(existsSync(statusFile), `${statusFile} missing`);
      const st = JSON.parse(readFileSync(statusFile, 'utf8'));
      assert.equal(st.pid, row.pid);
      assert.equal(st.exit_code, 0);
      assert.equal(readFileSync(path.join(row.run_dir!, 'stdout'), 'utf8').trim(), 'ssh=[] task=local-1', 'the task ran through SSH');
    } finally {
      await restoreNodes();
    }
  });

  test('the node probe sees a node as up as soon as its sshd answers, even while task commands are in reconnect backoff', async () => {
    // The chaos run found it: failed launches put the pooled connection into backoff, the probe
    // replayed that failure three times and declared a node offline whose sshd was up again.
    const n = c.nodes[1]!;
    const row = c.read((s) => s.getNode(n.name))!;
    const pool = new ShellPool();
    try {
      await n.stop();
      // Four failed connects in a row: the next reconnect is 4 s away.
      for (const wait of [600, 1100, 2100, 0]) {
        await assert.rejects(pool.get(row).exec('true', { timeoutMs: 5000 }));
        await sleep(wait);
      }
      await n.start();
      await assert.rejects(pool.get(row).exec('true', { timeoutMs: 5000 }), /next reconnect attempt/, 'a task command still backs off');
      const [r] = await probeNodes(pool, [row]);
      assert.equal(r!.ok, true, `probe: ${r!.error}`);
      const after = await pool.get(row).exec('echo up', { timeoutMs: 5000 });
      assert.equal(after.stdout.trim(), 'up', 'the probe left a working connection for the tasks');
    } finally {
      pool.closeAll();
    }
  });

  test('an operator batch-cancels by search attribute query', async () => {
    const ids = ['batch-1', 'batch-2'];
    for (const id of ids) await c.cliOk(['submit', '--id', id, '--node', 'n1', '--command', 'sleep 300']);
    const rows = [];
    for (const id of ids) rows.push(await c.waitStatus(id, 'running'));
    for (const r of rows) assert.equal(r.node, 'n1');
    const procs = ids.flatMap((id) => findProcessesWithEnv('DISPATCH_TASK', id));
    assert.ok(procs.length >= 2, `expected the task processes, got ${procs}`);
    const query = 'TaskNode="n1" AND ExecutionStatus="Running"';
    const tctl = (args: string[]) => execFileSync(temporalBin(), [...args, '--address', c.temporal.address], { encoding: 'utf8' });
    // Visibility is eventually consistent: the batch must see both before it is started.
    await waitListed(
      c.temporal.address,
      query,
      ids.map((id) => `task-${id}`),
    );

    tctl(['workflow', 'cancel', '--query', query, '--yes', '--reason', 'batch test']);

    for (const id of ids) {
      const done = await c.waitStatus(id, 'cancelled', 60_000);
      assert.match(done.error ?? '', /cancelled/);
    }
    for (const r of rows) assert.equal(isAlive(r.pid!), false, `pid ${r.pid} still alive`);
    await waitFor(() => procs.every((p) => !isAlive(p)), 5_000, 'every task process gone');
    for (const id of ids) assert.deepEqual(findProcessesWithEnv('DISPATCH_TASK', id), []);
    assert.equal((await nodeList()).find((n) => n.name === 'n1')!.running_count, 0);
  });

  test('a node whose host key does not match known_hosts gets no process started, and the task fails naming the cause', async () => {
    const n1 = c.nodes[0]!;
    const work = path.join(c.dir, 'badkey-work');
    const marker = path.join(c.dir, 'badkey-marker');
    // A freshly generated host key the real sshd does not have, recorded for its [host]:port.
    const fakeKey = path.join(c.dir, 'fake_host_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'not-the-server', '-f', fakeKey], { stdio: 'ignore' });
    const fakePub = readFileSync(`${fakeKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const realPub = readFileSync(n1.knownHostsPath, 'utf8').trim().split(/\s+/).slice(1, 3).join(' ');
    assert.notEqual(fakePub, realPub);
    const knownHosts = path.join(c.dir, 'wrong_known_hosts');
    writeFileSync(knownHosts, `[127.0.0.1]:${n1.port} ${fakePub}\n`);
    const id = 'hostkey-1';
    try {
      await c.cliOk([
        'node',
        'add',
        'badkey',
        '--host',
        '127.0.0.1',
        '--port',
        String(n1.port),
        '--user',
        n1.user,
        '--key',
        n1.keyPath,
        '--known-hosts',
        knownHosts,
        '--work-dir',
        work,
        '--slots',
        '1',
      ]);
      await drainAllBut('badkey');
      await c.cliOk(['submit', '--id', id, '--node', 'badkey', '--command', `touch ${marker}; sleep 300`]);

      // A wrong host key is not retried for minutes: each attempt fails at once, and after
      // TASK_MAX_REQUEUE attempts the task fails for good, naming the cause. Nothing ever starts.
      const until = Date.now() + 60_000;
      let row = c.task(id);
      while (Date.now() < until && row?.status !== 'failed') {
        if (row) {
          assert.notEqual(row.status, 'running', `task became running on a node with a wrong host key: ${JSON.stringify(row)}`);
          assert.equal(row.pid, null);
        }
        assert.deepEqual(findProcessesWithEnv('DISPATCH_TASK', id), [], 'a task process exists');
        await sleep(250);
        row = c.task(id);
      }
      assert.equal(row?.status, 'failed');
      assert.match(row!.error ?? '', /launch failed: .*host key does not match/);
      assert.ok((row!.attempts ?? 0) >= 1);
      assert.equal(row!.pid, null);
      assert.equal(existsSync(marker), false, 'the command ran');
      assert.equal(existsSync(work), false, 'something was written on the node');
      assert.match(c.workerLogs(), /host key does not match/);
      assert.deepEqual(findProcessesWithEnv('DISPATCH_TASK', id), []);
      c.assertBooks();
      assert.equal((await nodeList()).find((n) => n.name === 'badkey')!.running_count, 0);
    } finally {
      await restoreNodes();
    }
  });
});
