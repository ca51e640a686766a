/**
 * A node that answers slowly delays a probe but never expires the lease of a live worker: the
 * supervise activity heartbeats on its own timer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { nodeAddArgs, startCluster, sleep, type Cluster } from '../helpers/cluster';
import { startSshd, type SshNode } from '../helpers/sshd';

let c: Cluster;
let slow: SshNode;
let flag: string;

before(async () => {
  c = await startCluster({ nodes: 0 });
  flag = path.join(c.dir, 'slow-probes');
  const wrapper = path.join(c.dir, 'slow-wrapper.sh');
  // Every batched probe waits 4 leases (12 s, lease_s is 3) while the flag file exists.
  writeFileSync(
    wrapper,
    `#!/bin/sh\ncase "$SSH_ORIGINAL_COMMAND" in *dispatch-probe-many*) if [ -e '${flag}' ]; then sleep 12; fi ;; esac\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n`,
  );
  chmodSync(wrapper, 0o755);
  slow = await startSshd('slow', { baseDir: c.dir, forceCommand: wrapper });
  c.nodes.push(slow);
  await c.cliOk(nodeAddArgs(slow, 2));
  await c.startWorker();
});
after(async () => {
  await c?.stop();
});

describe('a slow node', () => {
  test('probes that take four leases to answer expire no lease: one supervise attempt, no timeout, the task completes', async () => {
    const done = path.join(c.dir, 'release');
    await c.cliOk(['submit', '--id', 'patient', '--command', `while [ ! -e '${done}' ]; do sleep 0.2; done`]);
    await c.waitStatus('patient', 'running');
    writeFileSync(flag, '');
    await sleep(30_000);
    rmSync(flag);
    writeFileSync(done, '');
    const row = await c.waitStatus('patient', 'completed', 60_000);
    assert.equal(row.attempts, 1);
    const events = (await c.client.workflow.getHandle('task-patient').fetchHistory()).events ?? [];
    const timedOut = events.filter((e) => e.activityTaskTimedOutEventAttributes);
    assert.equal(timedOut.length, 0, 'a supervise activity timed out: its heartbeat waited for the slow probe');
    const started = events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.ok(
      started.every((a) => a === 1),
      `a supervise activity was retried: attempts ${started.join(',')}`,
    );
  });
});
