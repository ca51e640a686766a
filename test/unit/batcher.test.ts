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
    const verdicts = await Promise.all(ids.map((id) => batcher.probe(node, id)));
    assert.equal(sh.sessionsOpened - before, 1);
    assert.deepEqual(verdicts[0], { state: 'exited', exitCode: 2 });
    // A live process's probe also renewed its lease (the watchdog's, src/shell/scripts/watchdog.sh).
    for (const v of verdicts.slice(1)) assert.deepEqual(v, { state: 'running', leaseRefreshed: true });
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
