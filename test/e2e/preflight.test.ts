/** A worker refuses to start, with one line, on a namespace without dispatch's search attributes. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startCluster, type Cluster } from '../helpers/cluster';
import { temporalBin } from '../helpers/temporal';

let c: Cluster;

before(async () => {
  c = await startCluster({ nodes: 0 });
});
after(async () => {
  await c?.stop();
});

describe('worker start-up checks', () => {
  test('a namespace without the four search attributes: the worker exits 2 naming them and how to register them', async () => {
    execFileSync(temporalBin(), ['operator', 'namespace', 'create', '--namespace', 'bare', '--address', c.temporal.address]);
    const r = await c.cli(['--namespace', 'bare', 'worker']);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      /namespace bare lacks the search attributes TaskProject \(Keyword\), TaskNode \(Keyword\), TaskStatus \(Keyword\), TaskPriority \(Int\)/,
    );
    assert.match(lines[0]!, /temporal operator search-attribute create --namespace bare --name TaskPriority --type Int/);
  });
});
