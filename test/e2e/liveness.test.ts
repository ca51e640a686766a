/**
 * Worker liveness beyond supervise: a worker SIGKILLed in the middle of ANY activity is noticed
 * by the activity's heartbeat timeout (10 s) and the activity runs again on a live worker, instead
 * of waiting out a start-to-close timeout of minutes. The chaos run found the gap: a worker killed
 * during a node-probe activity stalled the probe schedule (overlap SKIP) for minutes, so a node
 * whose sshd was down for a minute was never marked offline.
 * Real Temporal dev server, a real sshd node, real worker processes; the slow activity is a probe of
 * a node whose "sshd" accepts TCP connections and never answers.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startCluster, sleep, type Cluster } from '../helpers/cluster';

let c: Cluster;
let blackhole: net.Server;
const held: net.Socket[] = [];

before(async () => {
  c = await startCluster({ nodes: 1, slots: 2 });
  blackhole = net.createServer((s) => held.push(s));
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
  const port = (blackhole.address() as net.AddressInfo).port;
  await c.cliOk([
    'node',
    'add',
    'silent',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--insecure-ignore-host-key',
    '--key',
    c.nodes[0]!.keyPath,
    '--slots',
    '1',
  ]);
  await c.cliOk(['node', 'drain', 'silent']);
  await c.startWorker();
});
after(async () => {
  for (const s of held) s.destroy();
  blackhole?.close();
  await c?.stop();
});

describe('worker liveness', () => {
  test('a worker killed during a node-probe activity is noticed within seconds and the probe completes on the new worker', async () => {
    const h = await c.client.workflow.start('nodeProbeWorkflow', {
      taskQueue: 'dispatch',
      workflowId: `probe-liveness-${Date.now()}`,
      args: [{ killGraceS: 1 }],
    });
    // Wait until the probe activity runs (it hangs on the silent node for its 5 s timeout).
    let started = false;
    for (let i = 0; i < 100 && !started; i++) {
      const d = await h.describe();
      started = (d.raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'probeNodes' && Number(a.state) === 2); // PENDING_ACTIVITY_STATE_STARTED
      if (!started) await sleep(100);
    }
    assert.ok(started, 'the probe activity started');
    const killedAt = Date.now();
    c.workers[0]!.kill9();
    await sleep(300);
    await c.startWorker();
    const res = (await h.result()) as { probed: number };
    const tookS = (Date.now() - killedAt) / 1000;
    assert.equal(res.probed, 2);
    const hist = await h.fetchHistory();
    const attempts = (hist.events ?? [])
      .filter((e) => e.activityTaskStartedEventAttributes)
      .map((e) => Number(e.activityTaskStartedEventAttributes!.attempt));
    assert.ok(
      attempts.some((a) => a >= 2),
      `the probe activity ran again on the new worker (attempts ${attempts.join(',')})`,
    );
    // Without a heartbeat timeout the dead attempt would hold the workflow for its 5-minute
    // start-to-close timeout; with it, the 10 s liveness timeout plus one more probe.
    assert.ok(tookS < 60, `the probe workflow completed ${tookS.toFixed(1)} s after the kill (a dead worker must be noticed in seconds)`);
  });
});
