import { test, describe, beforeEach, afterEach, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Store, localNodeInput, type NodeInput } from '../../src/store/store';
import { rawDb } from '../helpers/raw-db';
import { migrate } from '../../src/store/schema';
import { UserError } from '../../src/common/errors';
import type { Assignment, ProcessIdentity, TaskSpec } from '../../src/common/types';

const root = mkdtempSync(path.join(tmpdir(), 'dispatch-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dbSeq = 0;
const dbPath = (): string => path.join(root, `db${++dbSeq}.sqlite`);

const BOOT = 'e8420e0f-aa2a-415c-b2d3-8584c8e0088d';
const MAX = 3;

function spec(id: string, over: Partial<TaskSpec> = {}): TaskSpec {
  return {
    id,
    project: 'p',
    priority: 50,
    dependsOn: [],
    modifies: [],
    command: `echo ${id}`,
    specBody: null,
    executor: null,
    estimatedMinutes: null,
    maxRuntimeS: 3600,
    node: null,
    ...over,
  };
}

function node(name: string, slots: number): NodeInput {
  return localNodeInput(name, slots, `/tmp/${name}`);
}

function identity(taskId: string, attempt: number, nodeName: string, pid = 4242): ProcessIdentity {
  return { node: nodeName, pid, starttime: '1000', bootId: BOOT, dir: `/tmp/${taskId}/${attempt}`, taskId, attempt };
}

let store: Store;

function submit(id: string, over: Partial<TaskSpec> = {}): void {
  store.registerTask(spec(id, over), `hash-${id}`, `task-${id}`);
}

/** Assignments without their tokens (random), after checking that each carries a well-formed one. */
function plain(assigned: Assignment[]): Omit<Assignment, 'token'>[] {
  return assigned.map(({ token, ...rest }) => {
    assert.match(token ?? '', /^[0-9a-f]{32}$/, `assignment of ${rest.taskId} has no attempt token`);
    return rest;
  });
}

function assignedIds(): string[] {
  return store.allocate().assigned.map((a) => a.taskId);
}

function status(id: string): string | null {
  return store.getTask(id)!.status;
}

function running(name: string): number | null {
  return store.getNode(name)!.running_count;
}

function locks(): { path: string; task_id: string }[] {
  return rawDb(store).prepare('SELECT path, task_id FROM file_locks ORDER BY path').all() as { path: string; task_id: string }[];
}

function complete(id: string): void {
  const row = store.getTask(id)!;
  assert.equal(store.finishAttempt(id, row.attempts!, { kind: 'exited', exitCode: 0 }, MAX).applied, true);
}

function eventKinds(id: string): string[] {
  return store.events(id).map((e) => e.kind);
}

describe('Store', () => {
  beforeEach(() => {
    store = new Store(dbPath());
    // Refused fenced writes also warn on the console; keep test output clean.
    mock.method(console, 'warn', () => undefined);
  });
  afterEach(() => {
    mock.restoreAll();
    store.close();
  });

  test('a new database file is readable by its owner only, also its -wal and -shm files', () => {
    const old = process.umask(0o022);
    try {
      const p = path.join(root, `private-${Date.now()}.db`);
      const s = new Store(p);
      s.registerTask(spec('m'), 'h', 'task-m');
      for (const f of [p, `${p}-wal`, `${p}-shm`]) assert.equal(statSync(f).mode & 0o777, 0o600, f);
      s.close();
      // A file that already exists keeps its mode (an adopted legacy database).
      const legacy = path.join(root, `legacy-mode-${Date.now()}.db`);
      writeFileSync(legacy, '');
      chmodSync(legacy, 0o640);
      new Store(legacy).close();
      assert.equal(statSync(legacy).mode & 0o777, 0o640);
    } finally {
      process.umask(old);
    }
  });

  describe('registerTask', () => {
    test('creates a queued row with the workflow id and a submission event', () => {
      const r = store.registerTask(spec('a', { priority: 7, dependsOn: ['z'], modifies: ['f'] }), 'h1', 'task-a');
      assert.equal(r.created, true);
      assert.equal(r.row.status, 'queued');
      assert.equal(r.row.workflow_id, 'task-a');
      assert.equal(r.row.priority, 7);
      assert.equal(r.row.attempts, 0);
      assert.deepEqual(JSON.parse(r.row.depends_on!), ['z']);
      assert.deepEqual(JSON.parse(r.row.modifies!), ['f']);
      assert.deepEqual(eventKinds('a'), ['submitted']);
    });

    test('is a no-op for the same id and the same hash', () => {
      store.registerTask(spec('a'), 'h1', 'task-a');
      const again = store.registerTask(spec('a'), 'h1', 'task-a');
      assert.equal(again.created, false);
      assert.equal(again.row.id, 'a');
      assert.equal(store.listTasks().length, 1);
      assert.deepEqual(eventKinds('a'), ['submitted']);
    });

    test('refuses the same id with a different hash', () => {
      store.registerTask(spec('a'), 'h1', 'task-a');
      assert.throws(
        () => store.registerTask(spec('a', { command: 'other' }), 'h2', 'task-a'),
        (e: unknown) => e instanceof UserError && /task id a is already used/.test(e.message),
      );
      assert.equal(store.getTask('a')!.command, 'echo a');
    });

    test('numbers submissions in order', () => {
      submit('a');
      submit('b');
      assert.ok(store.getTask('b')!.seq! > store.getTask('a')!.seq!);
    });
  });

  describe('allocate', () => {
    test('orders by priority, lower first, then by submission order', () => {
      store.addNode(node('n1', 2));
      submit('a', { priority: 50 });
      submit('b', { priority: 10 });
      submit('c', { priority: 50 });
      submit('d', { priority: 10 });
      assert.deepEqual(assignedIds(), ['b', 'd']);
      complete('b');
      complete('d');
      assert.deepEqual(assignedIds(), ['a', 'c']);
    });

    test('dispatches no more tasks than a node has slots and counts them', () => {
      store.addNode(node('n1', 2));
      for (const id of ['a', 'b', 'c']) submit(id);
      const r = store.allocate();
      assert.deepEqual(plain(r.assigned), [
        { taskId: 'a', node: 'n1', attempt: 1 },
        { taskId: 'b', node: 'n1', attempt: 1 },
      ]);
      assert.equal(running('n1'), 2);
      assert.equal(status('c'), 'queued');
      assert.deepEqual(store.allocate().assigned, []);
    });

    test('uses the node with the most free slots', () => {
      store.addNode(node('n1', 1));
      store.addNode(node('n2', 3));
      submit('a');
      submit('b');
      submit('c');
      submit('d');
      const byTask = Object.fromEntries(store.allocate().assigned.map((a) => [a.taskId, a.node]));
      assert.deepEqual(byTask, { a: 'n2', b: 'n2', c: 'n1', d: 'n2' });
      assert.equal(running('n1'), 1);
      assert.equal(running('n2'), 3);
    });

    test('skips rows without a workflow id', () => {
      store.addNode(node('n1', 1));
      rawDb(store).prepare(`INSERT INTO tasks (id, status, priority, seq) VALUES ('legacy', 'queued', 0, 0)`).run();
      submit('a');
      assert.deepEqual(assignedIds(), ['a']);
      assert.equal(status('legacy'), 'queued');
    });

    test('sends nothing to drained or offline nodes', () => {
      store.addNode(node('n1', 2));
      submit('a');
      for (const st of ['drained', 'offline']) {
        store.setNodeStatus('n1', st);
        assert.deepEqual(store.allocate().assigned, [], st);
        assert.equal(status('a'), 'queued');
      }
      store.setNodeStatus('n1', 'online');
      assert.deepEqual(assignedIds(), ['a']);
    });

    test('sends a pinned task only to its node', () => {
      store.addNode(node('n1', 3));
      store.addNode(node('n2', 1));
      submit('a', { node: 'n2' });
      assert.deepEqual(plain(store.allocate().assigned), [{ taskId: 'a', node: 'n2', attempt: 1 }]);
    });

    test('keeps a pinned task queued while its node is full, and dispatches others past it', () => {
      store.addNode(node('n1', 2));
      store.addNode(node('n2', 1));
      submit('first', { node: 'n2' });
      submit('pinned', { node: 'n2' });
      submit('free');
      const r = store.allocate().assigned;
      assert.deepEqual(
        r.map((a) => [a.taskId, a.node]),
        [
          ['first', 'n2'],
          ['free', 'n1'],
        ],
      );
      assert.equal(status('pinned'), 'queued');
    });

    test('keeps a task pinned to a drained node queued', () => {
      store.addNode(node('n1', 2));
      store.addNode(node('n2', 2));
      store.setNodeStatus('n2', 'drained');
      submit('a', { node: 'n2' });
      assert.deepEqual(store.allocate().assigned, []);
      assert.equal(status('a'), 'queued');
    });

    test('waits while a dependency is unfinished, then dispatches it', () => {
      store.addNode(node('n1', 2));
      submit('a');
      submit('b', { dependsOn: ['a'], priority: 0 });
      assert.deepEqual(assignedIds(), ['a']);
      assert.equal(status('b'), 'queued');
      assert.deepEqual(assignedIds(), []);
      complete('a');
      assert.deepEqual(assignedIds(), ['b']);
    });

    test('waits on a dependency that has not been submitted yet', () => {
      store.addNode(node('n1', 1));
      submit('b', { dependsOn: ['later'] });
      assert.deepEqual(store.allocate(), { assigned: [], blocked: [] });
      assert.equal(status('b'), 'queued');
    });

    for (const finalStatus of ['failed', 'cancelled'] as const) {
      test(`blocks a task with a reason when its dependency ${finalStatus}`, () => {
        store.addNode(node('n1', 1));
        submit('a');
        assert.deepEqual(assignedIds(), ['a']);
        if (finalStatus === 'failed') store.finishAttempt('a', 1, { kind: 'runtime-exceeded', maxRuntimeS: 60 }, MAX);
        else store.cancel('a', 1, 'user');
        assert.equal(status('a'), finalStatus);
        submit('b', { dependsOn: ['a'] });
        const r = store.allocate();
        assert.deepEqual(r.blocked, [{ taskId: 'b', reason: `blocked: dependency a ${finalStatus}` }]);
        const row = store.getTask('b')!;
        assert.equal(row.status, 'blocked');
        assert.equal(row.error, `blocked: dependency a ${finalStatus}`);
        assert.ok(row.finished_at);
        assert.equal(running('n1'), 0);
      });
    }

    test('blocks a chain of dependants of a failed task', () => {
      store.addNode(node('n1', 1));
      submit('a');
      assignedIds();
      store.finishAttempt('a', 1, { kind: 'runtime-exceeded', maxRuntimeS: 60 }, MAX);
      submit('b', { dependsOn: ['a'] });
      submit('c', { dependsOn: ['b'] });
      store.allocate();
      assert.equal(status('b'), 'blocked');
      assert.equal(status('c'), 'blocked');
    });

    test('does not dispatch a second task that modifies a locked path until the first finishes', () => {
      store.addNode(node('n1', 3));
      submit('a', { modifies: ['src/x.ts', 'src/y.ts'] });
      submit('b', { modifies: ['src/y.ts'] });
      submit('c', { modifies: ['src/z.ts'] });
      assert.deepEqual(assignedIds(), ['a', 'c']);
      assert.deepEqual(locks(), [
        { path: 'src/x.ts', task_id: 'a' },
        { path: 'src/y.ts', task_id: 'a' },
        { path: 'src/z.ts', task_id: 'c' },
      ]);
      assert.equal(status('b'), 'queued');
      assert.deepEqual(assignedIds(), []);
      complete('a');
      assert.deepEqual(assignedIds(), ['b']);
      assert.deepEqual(locks(), [
        { path: 'src/y.ts', task_id: 'b' },
        { path: 'src/z.ts', task_id: 'c' },
      ]);
    });

    test('dispatches every ready task in order when reading the queue one row per page', () => {
      store.addNode(node('n1', 4));
      submit('w', { dependsOn: ['nothing-yet'] });
      submit('a');
      submit('x', { dependsOn: ['nothing-yet'] });
      submit('b');
      submit('c');
      submit('d');
      submit('e');
      assert.deepEqual(
        store.allocate(1).assigned.map((a) => a.taskId),
        ['a', 'b', 'c', 'd'],
      );
      assert.deepEqual([status('w'), status('x'), status('e')], ['queued', 'queued', 'queued']);
    });

    test('records a dispatched event with the node', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      const ev = store.events('a').find((e) => e.kind === 'dispatched')!;
      assert.equal(ev.attempt, 1);
      assert.deepEqual(JSON.parse(ev.detail!), { node: 'n1' });
      const row = store.getTask('a')!;
      assert.equal(row.status, 'dispatched');
      assert.equal(row.node, 'n1');
      assert.ok(row.dispatched_at);
    });
  });

  describe('markRunning and recordHeartbeat', () => {
    test('records the process identity of the current attempt', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      const r = store.markRunning(identity('a', 1, 'n1'));
      assert.equal(r.applied, true);
      const row = store.getTask('a')!;
      assert.equal(row.status, 'running');
      assert.equal(row.pid, 4242);
      assert.equal(row.proc_starttime, '1000');
      assert.equal(row.boot_id, BOOT);
      assert.equal(row.run_dir, '/tmp/a/1');
      assert.ok(row.last_heartbeat);
    });

    test('treats a repeated markRunning with the same process as applied', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      store.markRunning(identity('a', 1, 'n1'));
      assert.equal(store.markRunning(identity('a', 1, 'n1')).applied, true);
      assert.ok(!eventKinds('a').includes('fence_refused'));
    });

    test('refuses markRunning with a different process once running', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      store.markRunning(identity('a', 1, 'n1'));
      assert.equal(store.markRunning(identity('a', 1, 'n1', 5555)).applied, false);
      assert.equal(store.getTask('a')!.pid, 4242);
    });

    test('refuses markRunning for another node', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      assert.equal(store.markRunning(identity('a', 1, 'n2')).applied, false);
      assert.equal(status('a'), 'dispatched');
    });

    test('refreshes the heartbeat of the current attempt', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      store.markRunning(identity('a', 1, 'n1'));
      rawDb(store).prepare(`UPDATE tasks SET last_heartbeat = '2000-01-01T00:00:00.000Z' WHERE id = 'a'`).run();
      assert.equal(store.recordHeartbeat('a', 1).applied, true);
      assert.notEqual(store.getTask('a')!.last_heartbeat, '2000-01-01T00:00:00.000Z');
    });
  });

  describe('finishAttempt', () => {
    function dispatchAndRun(id: string, over: Partial<TaskSpec> = {}): number {
      submit(id, over);
      const a = store.allocate().assigned.find((x) => x.taskId === id)!;
      store.markRunning(identity(id, a.attempt, a.node));
      return a.attempt;
    }

    test('completes on exit 0 and frees the slot and locks in the same call', () => {
      store.addNode(node('n1', 1));
      dispatchAndRun('a', { modifies: ['f1', 'f2'] });
      assert.equal(running('n1'), 1);
      assert.equal(locks().length, 2);
      const r = store.finishAttempt('a', 1, { kind: 'exited', exitCode: 0 }, MAX);
      assert.equal(r.applied, true);
      assert.equal(r.status, 'completed');
      assert.equal(r.row!.status, 'completed');
      assert.equal(r.row!.exit_code, 0);
      assert.ok(r.row!.finished_at);
      assert.equal(running('n1'), 0);
      assert.deepEqual(locks(), []);
      assert.ok(eventKinds('a').includes('completed'));
    });

    test('requeues a non-zero exit while attempts remain and frees the slot', () => {
      store.addNode(node('n1', 1));
      dispatchAndRun('a', { modifies: ['f1'] });
      const r = store.finishAttempt('a', 1, { kind: 'exited', exitCode: 2 }, MAX);
      assert.equal(r.status, 'queued');
      const row = store.getTask('a')!;
      assert.equal(row.status, 'queued');
      assert.equal(row.node, null);
      assert.equal(row.exit_code, 2);
      assert.equal(row.finished_at, null);
      assert.match(row.error!, /exit code 2 \(attempt 1 of 3\)/);
      assert.equal(running('n1'), 0);
      assert.deepEqual(locks(), []);
      assert.ok(eventKinds('a').includes('requeued'));
      assert.deepEqual(plain(store.allocate().assigned), [{ taskId: 'a', node: 'n1', attempt: 2 }]);
    });

    test('fails a non-zero exit at the last attempt', () => {
      store.addNode(node('n1', 1));
      submit('a');
      for (let attempt = 1; attempt <= MAX; attempt++) {
        assert.deepEqual(plain(store.allocate().assigned), [{ taskId: 'a', node: 'n1', attempt }]);
        const r = store.finishAttempt('a', attempt, { kind: 'exited', exitCode: 1 }, MAX);
        assert.equal(r.status, attempt < MAX ? 'queued' : 'failed');
      }
      const row = store.getTask('a')!;
      assert.equal(row.status, 'failed');
      assert.equal(row.attempts, MAX);
      assert.ok(row.finished_at);
      assert.equal(running('n1'), 0);
      assert.deepEqual(store.allocate().assigned, []);
    });

    test('requeues a vanished process while attempts remain', () => {
      store.addNode(node('n1', 1));
      dispatchAndRun('a');
      const r = store.finishAttempt('a', 1, { kind: 'vanished', detail: 'node rebooted' }, MAX);
      assert.equal(r.status, 'queued');
      assert.match(store.getTask('a')!.error!, /process vanished: node rebooted/);
    });

    test('fails a task that exceeded max_runtime without retrying it', () => {
      store.addNode(node('n1', 1));
      dispatchAndRun('a');
      const r = store.finishAttempt('a', 1, { kind: 'runtime-exceeded', maxRuntimeS: 60 }, MAX);
      assert.equal(r.status, 'failed');
      assert.equal(status('a'), 'failed');
      assert.match(store.getTask('a')!.error!, /max_runtime exceeded/);
      assert.equal(running('n1'), 0);
      assert.deepEqual(store.allocate().assigned, []);
    });

    test('refuses a stale attempt, changes nothing and records fence_refused', () => {
      store.addNode(node('n1', 2));
      dispatchAndRun('a');
      store.finishAttempt('a', 1, { kind: 'exited', exitCode: 1 }, MAX);
      store.allocate();
      store.markRunning(identity('a', 2, 'n1'));
      const before = store.getTask('a')!;
      const r = store.finishAttempt('a', 1, { kind: 'exited', exitCode: 0 }, MAX);
      assert.equal(r.applied, false);
      assert.match(r.reason!, /refused finish for a attempt 1: row is running attempt 2/);
      assert.deepEqual(store.getTask('a'), before);
      assert.equal(running('n1'), 1);
      const ev = store.events('a').filter((e) => e.kind === 'fence_refused');
      assert.equal(ev.length, 1);
      assert.equal(ev[0]!.attempt, 1);
    });

    test('refuses finishing the same attempt twice and does not free the slot twice', () => {
      store.addNode(node('n1', 2));
      dispatchAndRun('a');
      dispatchAndRun('b');
      assert.equal(running('n1'), 2);
      assert.equal(store.finishAttempt('a', 1, { kind: 'exited', exitCode: 0 }, MAX).applied, true);
      assert.equal(store.finishAttempt('a', 1, { kind: 'exited', exitCode: 0 }, MAX).applied, false);
      assert.equal(running('n1'), 1);
      assert.ok(eventKinds('a').includes('fence_refused'));
    });

    test('refuses a task that does not exist', () => {
      const r = store.finishAttempt('ghost', 1, { kind: 'exited', exitCode: 0 }, MAX);
      assert.equal(r.applied, false);
      assert.equal(r.row, null);
    });
  });

  describe('fencing of markRunning and recordHeartbeat', () => {
    test('markRunning with a stale attempt returns applied:false and records fence_refused', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      store.finishAttempt('a', 1, { kind: 'vanished', detail: 'x' }, MAX);
      store.allocate();
      const r = store.markRunning(identity('a', 1, 'n1'));
      assert.equal(r.applied, false);
      assert.equal(r.row!.status, 'dispatched');
      assert.equal(r.row!.attempts, 2);
      assert.equal(r.row!.pid, null);
      assert.ok(eventKinds('a').includes('fence_refused'));
    });

    test('recordHeartbeat with a stale attempt returns applied:false and records fence_refused', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      store.markRunning(identity('a', 1, 'n1'));
      store.finishAttempt('a', 1, { kind: 'vanished', detail: 'x' }, MAX);
      store.allocate();
      store.markRunning(identity('a', 2, 'n1', 5555));
      const hb = store.getTask('a')!.last_heartbeat;
      const r = store.recordHeartbeat('a', 1);
      assert.equal(r.applied, false);
      assert.equal(store.getTask('a')!.last_heartbeat, hb);
      const ev = store.events('a').filter((e) => e.kind === 'fence_refused');
      assert.equal(ev.length, 1);
      assert.match(ev[0]!.detail!, /refused heartbeat for a attempt 1/);
    });

    test('recordHeartbeat on a finished task is refused', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      store.markRunning(identity('a', 1, 'n1'));
      complete('a');
      assert.equal(store.recordHeartbeat('a', 1).applied, false);
      assert.equal(status('a'), 'completed');
    });
  });

  describe('cancel', () => {
    test('cancels a queued task without touching slots', () => {
      store.addNode(node('n1', 1));
      submit('a');
      submit('b');
      store.allocate();
      const r = store.cancel('b', null, 'no longer needed');
      assert.equal(r.applied, true);
      assert.equal(r.row!.status, 'cancelled');
      assert.equal(r.row!.error, 'no longer needed');
      assert.equal(running('n1'), 1);
    });

    test('cancels the active attempt and frees its slot and locks', () => {
      store.addNode(node('n1', 1));
      submit('a', { modifies: ['f'] });
      store.allocate();
      store.markRunning(identity('a', 1, 'n1'));
      const r = store.cancel('a', 1, 'user');
      assert.equal(r.applied, true);
      assert.equal(status('a'), 'cancelled');
      assert.equal(running('n1'), 0);
      assert.deepEqual(locks(), []);
      assert.ok(eventKinds('a').includes('cancelled'));
    });

    test('refuses to cancel an active task at a stale attempt', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      const r = store.cancel('a', 7, 'user');
      assert.equal(r.applied, false);
      assert.equal(status('a'), 'dispatched');
      assert.equal(running('n1'), 1);
      assert.ok(eventKinds('a').includes('fence_refused'));
    });

    test('refuses to cancel an active task without an attempt', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      assert.equal(store.cancel('a', null, 'user').applied, false);
      assert.equal(status('a'), 'dispatched');
    });

    test('refuses to cancel a completed task', () => {
      store.addNode(node('n1', 1));
      submit('a');
      store.allocate();
      complete('a');
      assert.equal(store.cancel('a', 1, 'user').applied, false);
      assert.equal(status('a'), 'completed');
    });
  });

  describe('nodes', () => {
    test('re-adding a node keeps its running count and brings a drained node back online', () => {
      store.addNode(node('n1', 2));
      submit('a');
      store.allocate();
      store.setNodeStatus('n1', 'drained');
      const n = store.addNode({ ...node('n1', 4), workDir: '/srv/n1' });
      assert.equal(n.running_count, 1);
      assert.equal(n.slots, 4);
      assert.equal(n.status, 'online');
      assert.equal(n.work_dir, '/srv/n1');
    });

    test('re-adding an offline node leaves it offline', () => {
      store.addNode(node('n1', 2));
      store.setNodeStatus('n1', 'offline');
      assert.equal(store.addNode(node('n1', 2)).status, 'offline');
    });
  });
});

// ---- migrations on legacy databases ----

const LEGACY_TASKS = `CREATE TABLE tasks(id TEXT PRIMARY KEY, project TEXT, status TEXT, node TEXT, pid INTEGER,
  started_at TEXT, updated_at TEXT, attempts INTEGER, error TEXT)`;
const LEGACY_NODES = `CREATE TABLE nodes(name TEXT PRIMARY KEY, host TEXT, slots INTEGER, running_count INTEGER)`;

function legacyDb(setup: (db: Database.Database) => void): string {
  const p = dbPath();
  const db = new Database(p);
  setup(db);
  db.close();
  return p;
}

/** Every row of a table, with the storage class of every column, restricted to `cols`. */
function dump(db: Database.Database, table: string, cols: string[], key: string): unknown[] {
  const sel = cols.map((c) => `${c}, typeof(${c}) AS ${c}__type`).join(', ');
  return db.prepare(`SELECT ${sel} FROM ${table} ORDER BY ${key}`).all();
}

function columns(db: Database.Database, table: string): string[] {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
}

describe('migrate on a legacy database', () => {
  const taskCols = ['id', 'project', 'status', 'node', 'pid', 'started_at', 'updated_at', 'attempts', 'error'];
  const nodeCols = ['name', 'host', 'slots', 'running_count'];

  function fullLegacy(): string {
    return legacyDb((db) => {
      db.exec(LEGACY_TASKS);
      db.exec(LEGACY_NODES);
      const ins = db.prepare('INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
      ins.run('t-run', 'infra', 'running', 'gpu1', 31337, '2024-05-01 10:00:00', '2024-05-01 10:05:00', 1, null);
      ins.run('t-junk', null, 'weird', null, 'abc', null, null, null, 'boom');
      ins.run('t-float', 'p', 'failed', 'gpu2', 12.5, 'yesterday', '', -3, '');
      ins.run('t-null', null, null, null, null, null, null, null, null);
      db.exec(
        `INSERT INTO tasks (id, status, started_at, updated_at) VALUES ('t-dt', 'queued', datetime('now', '-3 hours'), datetime('now'))`,
      );
      const nins = db.prepare('INSERT INTO nodes VALUES (?, ?, ?, ?)');
      nins.run('gpu1', '10.0.0.1', 4, 1);
      nins.run('gpu2', null, null, null);
      nins.run('gpu3', 'h', 'many', -2);
    });
  }

  test('keeps every legacy task and node row with the same values and storage types', () => {
    const p = fullLegacy();
    const raw = new Database(p);
    const tasksBefore = dump(raw, 'tasks', taskCols, 'id');
    const nodesBefore = dump(raw, 'nodes', nodeCols, 'name');
    assert.equal(tasksBefore.length, 5);
    assert.deepEqual(migrate(raw), [1, 2, 3, 4]);
    assert.deepEqual(dump(raw, 'tasks', taskCols, 'id'), tasksBefore);
    assert.deepEqual(dump(raw, 'nodes', nodeCols, 'name'), nodesBefore);
    const junk = raw.prepare(`SELECT pid, typeof(pid) AS t FROM tasks WHERE id = 't-junk'`).get() as { pid: unknown; t: string };
    assert.deepEqual(junk, { pid: 'abc', t: 'text' });
    raw.close();
  });

  test('adds the dispatch columns and tables', () => {
    const p = fullLegacy();
    const raw = new Database(p);
    migrate(raw);
    for (const c of ['priority', 'seq', 'workflow_id', 'spec_hash', 'proc_starttime', 'boot_id', 'reaped_count'])
      assert.ok(columns(raw, 'tasks').includes(c), c);
    for (const c of ['kind', 'status', 'work_dir', 'missed_probes']) assert.ok(columns(raw, 'nodes').includes(c), c);
    const tables = (raw.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[]).map((r) => r.name);
    for (const t of ['file_locks', 'events', 'reaper_runs', 'schema_migrations']) assert.ok(tables.includes(t), t);
    raw.close();
  });

  test('gives legacy rows their arrival order as seq and fills node defaults', () => {
    const p = fullLegacy();
    const raw = new Database(p);
    migrate(raw);
    const seqs = raw.prepare('SELECT id, seq FROM tasks ORDER BY rowid').all() as { id: string; seq: number }[];
    assert.deepEqual(
      seqs.map((r) => r.id),
      ['t-run', 't-junk', 't-float', 't-null', 't-dt'],
    );
    assert.deepEqual(
      seqs.map((r) => r.seq),
      [1, 2, 3, 4, 5],
    );
    const n = raw.prepare(`SELECT kind, status, missed_probes, insecure_ignore_host_key FROM nodes WHERE name = 'gpu2'`).get();
    assert.deepEqual(n, { kind: 'ssh', status: 'online', missed_probes: 0, insecure_ignore_host_key: 0 });
    assert.deepEqual(raw.prepare(`SELECT DISTINCT reaped_count FROM tasks`).all(), [{ reaped_count: 0 }]);
    raw.close();
  });

  test('is idempotent when run twice', () => {
    const p = fullLegacy();
    const raw = new Database(p);
    migrate(raw);
    const tasks = raw.prepare('SELECT * FROM tasks ORDER BY id').all();
    const nodes = raw.prepare('SELECT * FROM nodes ORDER BY name').all();
    const cols = columns(raw, 'tasks');
    assert.deepEqual(migrate(raw), []);
    assert.deepEqual(raw.prepare('SELECT * FROM tasks ORDER BY id').all(), tasks);
    assert.deepEqual(raw.prepare('SELECT * FROM nodes ORDER BY name').all(), nodes);
    assert.deepEqual(columns(raw, 'tasks'), cols);
    assert.deepEqual(raw.prepare('SELECT version FROM schema_migrations').all(), [
      { version: 1 },
      { version: 2 },
      { version: 3 },
      { version: 4 },
    ]);
    raw.close();
  });

  test('re-running the migration body on an adopted database changes nothing', () => {
    const p = fullLegacy();
    const raw = new Database(p);
    migrate(raw);
    const tasks = raw.prepare('SELECT * FROM tasks ORDER BY id').all();
    raw.exec('DELETE FROM schema_migrations');
    assert.deepEqual(migrate(raw), [1, 2, 3, 4]);
    assert.deepEqual(raw.prepare('SELECT * FROM tasks ORDER BY id').all(), tasks);
    raw.close();
  });

  test('adopts a legacy tasks table that has only id, status and pid, and no nodes table', () => {
    const p = legacyDb((db) => {
      db.exec('CREATE TABLE tasks(id TEXT PRIMARY KEY, status TEXT, pid INTEGER)');
      const ins = db.prepare('INSERT INTO tasks VALUES (?, ?, ?)');
      ins.run('a', 'running', 123);
      ins.run('b', 'weird', 'abc');
      ins.run('c', null, null);
    });
    const raw = new Database(p);
    const before = dump(raw, 'tasks', ['id', 'status', 'pid'], 'id');
    migrate(raw);
    assert.deepEqual(dump(raw, 'tasks', ['id', 'status', 'pid'], 'id'), before);
    for (const c of ['project', 'node', 'attempts', 'error', 'workflow_id']) assert.ok(columns(raw, 'tasks').includes(c), c);
    assert.deepEqual(columns(raw, 'nodes').slice(0, 1), ['name']);
    assert.deepEqual(migrate(raw), []);
    assert.deepEqual(dump(raw, 'tasks', ['id', 'status', 'pid'], 'id'), before);
    raw.close();
  });

  test('opens a legacy database through Store and leaves its rows out of allocation', () => {
    const p = fullLegacy();
    const s = new Store(p);
    try {
      assert.equal(s.listTasks().length, 5);
      assert.equal(s.getTask('t-junk')!.pid as unknown, 'abc');
      assert.equal(s.getTask('t-dt')!.status, 'queued');
      s.addNode(node('n-new', 4));
      assert.deepEqual(s.allocate().assigned, []);
      assert.equal(s.getTask('t-dt')!.status, 'queued');
      assert.deepEqual(s.counts(), { failed: 1, queued: 1, running: 1, unknown: 1, weird: 1 });
    } finally {
      s.close();
    }
    const again = new Store(p);
    assert.equal(again.listTasks().length, 5);
    again.close();
  });
});
