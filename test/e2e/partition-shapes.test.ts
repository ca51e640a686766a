/**
 * Safety under a partition that is not a clean cut, with ghost_action requeue: worker W1 keeps its
 * open SSH connection to n1 but loses Temporal (a TCP proxy cut), while W2 reaches Temporal but
 * cannot open a connection to n1 (its sshd refuses new connections; open ones flow). W1's wall clock
 * is five minutes behind, as a host's may be. The task must not run twice: its first copy, kept
 * alive by W1 for the refresh horizon, has stopped itself before the reaper runs it on n2. Asserted
 * from the marks both copies write themselves.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { MARKER, marks } from '../helpers/marks';
import { startCluster, sleep, type Cluster } from '../helpers/cluster';
import { startProxy, type Proxy } from '../helpers/proxy';
import { WORKER_START } from '../../src/workers/memory';

const FENCE_S = 12;
const HORIZON_S = 10;
let c: Cluster;
let proxy: Proxy;

before(async () => {
  c = await startCluster({
    nodes: 2,
    slots: 1,
    config: {
      lease_s: 3,
      // Long slices: a worker that lost Temporal goes on probing (and once refreshed) for the rest of
      // its slice; the bound must hold whatever the slice (the run had 120 s).
      heartbeat_record_interval: 60,
      stale_s: 120,
      kill_grace: 1,
      fence_after: FENCE_S,
      outage_tolerance: HORIZON_S,
      ghost_action: 'requeue',
      probe_interval: 2,
      check_interval: 3,
    },
  });
  proxy = await startProxy(c.temporal.address);
  // The books' worker reaches Temporal directly throughout.
  await c.startWorker('dispatch-db');
  await c.cliOk(['schedules', 'apply']);
});
after(async () => {
  await proxy?.close();
  await c?.stop();
});

describe('partition shapes', () => {
  test('asymmetric: W1 keeps the node but loses Temporal, W2 keeps Temporal but not the node, W1 five minutes slow: no double run', async () => {
    const preload = path.resolve(__dirname, '../helpers/clock-offset.js');
    const w1 = await c.startWorker('dispatch', { DISPATCH_TEST_CLOCK_OFFSET_MS: String(-5 * 60_000) }, [], {
      address: proxy.address,
      start: { nodeFlags: [...WORKER_START.nodeFlags, '--require', preload], env: WORKER_START.env },
    });
    // n2 takes no work until the cut, so the task runs on n1 (not pinned: a requeue may use n2).
    await c.cliOk(['node', 'drain', 'n2']);
    await c.cliOk(['submit', '--id', 'asym-1', '--command', MARKER]);
    const first = await c.waitStatus('asym-1', 'running');
    assert.equal(first.node, 'n1');
    await c.cliOk(['node', 'resume', 'n2']);
    await sleep(3000); // W1 supervises it over its open connection to n1
    const n1 = c.nodes[0]!;
    await n1.stop({ keepSessions: true }); // new connections refused, W1's open one flows
    proxy.cut(); // W1 loses Temporal
    const cutAt = Date.now();
    try {
      // W2: Temporal, but no way to n1. It takes over the workflows, the probes and the reaper.
      await c.startWorker('dispatch');
      const second = await c.waitTask('asym-1', (t) => t.attempts === 2 && t.status === 'running', 'running again', 240_000);
      const until = Date.now() + 30_000;
      while (!existsSync(path.join(second.run_dir!, 'marks')) && Date.now() < until) await sleep(100);
      const lastOfFirst = Math.max(...marks(first.run_dir!));
      const firstOfSecond = Math.min(...marks(second.run_dir!));
      assert.ok(lastOfFirst < firstOfSecond, `the first copy wrote until ${lastOfFirst}, the second began at ${firstOfSecond}`);
      assert.ok(existsSync(path.join(first.run_dir!, 'fenced')), 'the first copy fenced itself');
      // W1 kept it alive through its open connection for up to the horizon, then it fenced.
      assert.ok(lastOfFirst - cutAt >= (FENCE_S - 4) * 1000, `the first copy stopped ${lastOfFirst - cutAt} ms after the cut`);
    } finally {
      proxy.heal();
      await n1.start();
    }
    await c.cli(['cancel', 'asym-1']);
    assert.equal(w1.proc.exitCode, null, 'W1 rode through losing Temporal');
  });
});
