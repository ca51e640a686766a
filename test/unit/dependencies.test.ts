import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dependencyVerdict } from '../../src/store/dependencies';
import { Store, localNodeInput } from '../../src/store/store';
import type { TaskSpec } from '../../src/common/types';

const lookup =
  (statuses: Record<string, string | null>) =>
  (id: string): string | null | undefined =>
    statuses[id];

describe('dependencyVerdict', () => {
  test('no dependencies: ready', () => {
    assert.deepEqual(dependencyVerdict([], lookup({})), { kind: 'ready' });
  });

  test('every dependency completed: ready', () => {
    assert.deepEqual(dependencyVerdict(['a', 'b'], lookup({ a: 'completed', b: 'completed' })), { kind: 'ready' });
  });

  test('a dependency still on its way, not submitted yet, or with no status: waiting', () => {
    for (const st of ['queued', 'dispatched', 'running', null]) {
      assert.deepEqual(dependencyVerdict(['a', 'b'], lookup({ a: 'completed', b: st })), { kind: 'waiting' }, String(st));
    }
    assert.deepEqual(dependencyVerdict(['later'], lookup({})), { kind: 'waiting' });
  });

  for (const st of ['failed', 'cancelled', 'blocked']) {
    test(`a dependency ${st}: blocked, with the reason the row and the event carry`, () => {
      assert.deepEqual(dependencyVerdict(['a'], lookup({ a: st })), {
        kind: 'blocked',
        dep: 'a',
        status: st,
        by: `dependency a ${st}`,
        reason: `blocked: dependency a ${st}`,
      });
    });
  }

  test('blocked wins over waiting, whatever the order; the first such dependency is named', () => {
    const statuses = lookup({ w: 'running', c: 'completed', x: 'cancelled', y: 'failed' });
    const v = dependencyVerdict(['w', 'later', 'c', 'x', 'y'], statuses);
    assert.equal(v.kind, 'blocked');
    assert.equal(v.kind === 'blocked' && v.reason, 'blocked: dependency x cancelled');
  });

  test('stops looking once blocked', () => {
    const asked: string[] = [];
    dependencyVerdict(['a', 'b', 'c'], (id) => (asked.push(id), id === 'b' ? 'failed' : 'queued'));
    assert.deepEqual(asked, ['a', 'b']);
  });
});

describe('both paths that block on a dependency', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'dispatch-deps-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const spec = (id: string, dependsOn: string[] = []): TaskSpec => ({
    id,
    project: 'p',
    priority: 50,
    dependsOn,
    modifies: [],
    command: 'true',
    specBody: null,
    executor: null,
    estimatedMinutes: null,
    maxRuntimeS: 60,
    node: null,
  });

  test('allocate and blockFailedDependencies write the same reason; their events say it as before', () => {
    const store = new Store(path.join(root, 'paths.db'));
    try {
      store.addNode(localNodeInput('n1', 1, '/w'));
      store.registerTask(spec('a'), 'ha', 'wf-a');
      assert.equal(store.allocate().assigned.length, 1);
      store.cancel('a', 1, 'user');
      store.registerTask(spec('b', ['a']), 'hb', 'wf-b');
      assert.deepEqual(store.blockFailedDependencies(), [{ taskId: 'b', reason: 'blocked: dependency a cancelled' }]);
      store.registerTask(spec('c', ['later', 'a']), 'hc', 'wf-c');
      store.registerTask(spec('d', ['later', 'b']), 'hd', 'wf-d');
      const r = store.allocate();
      assert.deepEqual(r.blocked, [
        { taskId: 'c', reason: 'blocked: dependency a cancelled' },
        { taskId: 'd', reason: 'blocked: dependency b blocked' },
      ]);
      for (const id of ['b', 'c', 'd']) assert.equal(store.getTask(id)!.status, 'blocked');
      assert.equal(store.getTask('b')!.error, 'blocked: dependency a cancelled');
      assert.equal(store.getTask('d')!.error, 'blocked: dependency b blocked');
      const detail = (id: string): string | null | undefined => store.events(id).find((e) => e.kind === 'blocked')?.detail;
      assert.equal(detail('b'), 'blocked: dependency a cancelled');
      assert.equal(detail('c'), 'dependency a cancelled');
      assert.equal(detail('d'), 'dependency b blocked');
    } finally {
      store.close();
    }
  });
});
