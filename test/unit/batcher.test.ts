import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalShell } from '../../src/shell/local';
import { ProbeBatcher, parseProbeMany } from '../../src/shell/batcher';
import { launchCommand } from '../../src/shell/scripts';
import { parseKv, parseWrapperStatus } from '../../src/shell/status';
import type { NodeRow, ProcessIdentity } from '../../src/common/types';
import type { ShellPool } from '../../src/shell/pool';

test('parseProbeMany reads one verdict per pid:starttime and ignores junk lines', () => {
  const out = [
    'probe 10 111 boot=same alive=1 status=-',
    'probe 11 222 boot=same alive=0 status={"pid":11,"starttime":"222","boot_id":"00000000-0000-0000-0000-000000000000","state":"exited","exit_code":4}',
    'probe 12 333 boot=changed alive=0 status=-',
    'probe 14 555 boot=same alive=1 lease=1 status=-',
    'garbage probe 13 444',
  ].join('\n');
  const m = parseProbeMany(out);
  assert.deepEqual(m.get('10:111'), { state: 'running' });
  assert.deepEqual(m.get('11:222'), { state: 'exited', exitCode: 4 });
  assert.equal(m.get('12:333')?.state, 'vanished');
  assert.deepEqual(m.get('14:555'), { state: 'running', leaseRefreshed: true });
  assert.equal(m.size, 4);
});

test('probes of many tasks on one node that arrive together cost one shell session', async () => {
  const sh = new LocalShell('local');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-batch-'));
  const ids: ProcessIdentity[] = [];
  for (let i = 0; i < 5; i++) {
    const d = `${dir}/t${i}/attempt-1`;
    const r = await sh.exec(launchCommand(d, `t${i}`, 1, i === 0 ? 'exit 2' : 'sleep 30', false));
    const w = parseWrapperStatus(parseKv(r.stdout).get('status') ?? '')!;
    ids.push({ node: 'local', dir: d, pid: w.pid, starttime: w.starttime, bootId: w.bootId, taskId: `t${i}`, attempt: 1 });
  }
  try {
    await new Promise((r) => setTimeout(r, 300));
    const before = sh.sessionsOpened;
    const batcher = new ProbeBatcher({ get: () => sh } as unknown as ShellPool, 50);
    const node = { name: 'local' } as NodeRow;
    const far = () => ({ ackSentMs: performance.now(), deadlineMs: performance.now() + 60_000 });
    // The first probe of a node knows nothing of its clock yet: it reads, and refreshes no lease.
    const first = await Promise.all(ids.map((id) => batcher.probe(node, id, far)));
    assert.equal(sh.sessionsOpened - before, 1);
    assert.deepEqual(first[0], { state: 'exited', exitCode: 2 });
    for (const v of first.slice(1)) assert.deepEqual(v, { state: 'running', leaseRefreshed: false });
    // From then on a live process's probe renews its lease (the watchdog's, src/shell/scripts/watchdog.sh).
    const verdicts = await Promise.all(ids.map((id) => batcher.probe(node, id, far)));
    assert.equal(sh.sessionsOpened - before, 2);
    for (const v of verdicts.slice(1)) assert.deepEqual(v, { state: 'running', leaseRefreshed: true });
    // Without a deadline, or past it, a probe only reads.
    for (const v of await Promise.all(ids.slice(1).map((id) => batcher.probe(node, id))))
      assert.deepEqual(v, { state: 'running', leaseRefreshed: false });
  } finally {
    for (const id of ids.slice(1)) {
      try {
        process.kill(-id.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
});

test('the node itself refuses a refresh that arrives past the deadline, even when the worker let it go', async () => {
  const sh = new LocalShell('local');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-batch-late-'));
  const d = `${dir}/late/attempt-1`;
  const r = await sh.exec(launchCommand(d, 'late', 1, 'sleep 30', false));
  const w = parseWrapperStatus(parseKv(r.stdout).get('status') ?? '')!;
  const id: ProcessIdentity = { node: 'local', dir: d, pid: w.pid, starttime: w.starttime, bootId: w.bootId, taskId: 'late', attempt: 1 };
  // A worker clock that stands still stands for one that was frozen (or suspended) after its check:
  // it still believes the deadline is ahead, while the node's uptime has moved on.
  let frozen = performance.now();
  const batcher = new ProbeBatcher({ get: () => sh } as unknown as ShellPool, 20, 30_000, () => frozen);
  const node = { name: 'local' } as NodeRow;
  try {
    const win = (ms: number) => () => ({ ackSentMs: frozen + 1, deadlineMs: frozen + ms });
    await batcher.probe(node, id, win(5_000)); // learns the node's uptime
    assert.deepEqual(await batcher.probe(node, id, win(5_000)), { state: 'running', leaseRefreshed: true });
    // The deadline is 2.5 s after the worker's (stopped) clock, but 3.5 s of real time pass first.
    await new Promise((res) => setTimeout(res, 3_500));
    assert.deepEqual(await batcher.probe(node, id, win(2_500)), { state: 'running', leaseRefreshed: false });
    frozen = performance.now();
  } finally {
    try {
      process.kill(-id.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});
