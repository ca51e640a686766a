import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { searchAttributeError, searchAttributeProblems } from '../../src/workers/preflight';

describe('search attribute check', () => {
  const all = { TaskProject: 2, TaskNode: 2, TaskStatus: 2, TaskPriority: 3, WorkflowId: 2 };

  test('passes when all four are registered with their types', () => {
    assert.deepEqual(searchAttributeProblems(all), []);
  });

  test('names each missing one with its type, and a wrong type with what it is', () => {
    const { TaskNode: _n, ...noNode } = all;
    assert.deepEqual(searchAttributeProblems({ ...noNode, TaskPriority: 2 }), [
      'TaskNode (Keyword)',
      'TaskPriority (Int, registered as Keyword)',
    ]);
  });

  test('the error is one line and says how to register what is missing', () => {
    const e = searchAttributeError('prod', ['TaskNode (Keyword)']);
    assert.ok(!e.message.includes('\n'));
    assert.match(e.message, /namespace prod lacks the search attributes TaskNode \(Keyword\)/);
    assert.match(e.message, /temporal operator search-attribute create --namespace prod --name TaskNode --type Keyword/);
    assert.match(e.message, /Temporal Cloud/);
  });
});
