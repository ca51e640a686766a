import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decideProbe, parseKillOutput, parseKv, parseWrapperStatus } from '../../src/shell/status';

const BOOT = 'e8420e0f-aa2a-415c-b2d3-8584c8e0088d';

function status(over: Record<string, unknown> = {}, drop: string[] = []): string {
  const o: Record<string, unknown> = {
    pid: 4242,
    starttime: '987654',
    boot_id: BOOT,
    sid: 4242,
    task: 't1',
    attempt: 1,
    started_at: 1_700_000_000,
    state: 'running',
    ...over,
  };
  for (const k of drop) delete o[k];
  return JSON.stringify(o);
}

describe('parseWrapperStatus', () => {
  test('reads a running status as the wrapper writes it', () => {
    assert.deepEqual(parseWrapperStatus(status()), {
      pid: 4242,
      starttime: '987654',
      bootId: BOOT,
      state: 'running',
      exitCode: null,
      startedAt: 1_700_000_000,
      token: null,
      fencedAt: null,
    });
  });

  test('reads the attempt token, and only a well-formed one', () => {
    assert.equal(parseWrapperStatus(status({ token: 'ab'.repeat(16) }))?.token, 'ab'.repeat(16));
    for (const bad of ['', 'xyz', 'AB'.repeat(16), 42, null])
      assert.equal(parseWrapperStatus(status({ token: bad }))?.token, null, JSON.stringify(bad));
  });

  test('reads an exited status with its exit code', () => {
    const st = parseWrapperStatus(status({ state: 'exited', exit_code: 3, ended_at: 1_700_000_100 }));
    assert.equal(st?.state, 'exited');
    assert.equal(st?.exitCode, 3);
  });

  test('accepts exit codes 0 and 255', () => {
    assert.equal(parseWrapperStatus(status({ state: 'exited', exit_code: 0 }))?.exitCode, 0);
    assert.equal(parseWrapperStatus(status({ state: 'exited', exit_code: 255 }))?.exitCode, 255);
  });

  test('returns null for text that is not JSON', () => {
    for (const t of ['', 'not json', '{"pid":', 'status=running', '{pid: 4242}']) assert.equal(parseWrapperStatus(t), null, t);
  });

  test('returns null for JSON that is not an object', () => {
    for (const t of ['null', '42', '"str"', 'true', '[]', '[4242]']) assert.equal(parseWrapperStatus(t), null, t);
  });

  test('returns null when pid, starttime or boot_id is missing', () => {
    for (const k of ['pid', 'starttime', 'boot_id']) assert.equal(parseWrapperStatus(status({}, [k])), null, k);
  });

  test('returns null for pid 1, pid 0, a negative pid and pid "abc"', () => {
    for (const pid of [1, 0, -5, 'abc', 1.5, null]) {
      assert.equal(parseWrapperStatus(status({ pid, sid: pid })), null, JSON.stringify(pid));
    }
  });

  test('returns null for a start time that is a number or not digits', () => {
    for (const starttime of [987654, '', '12a', '-1'])
      assert.equal(parseWrapperStatus(status({ starttime })), null, JSON.stringify(starttime));
  });

  test('returns null for a malformed boot id', () => {
    assert.equal(parseWrapperStatus(status({ boot_id: 'not-a-uuid' })), null);
  });

  test('returns null when the session id differs from the pid', () => {
    assert.equal(parseWrapperStatus(status({ sid: 4241 })), null);
  });

  test('accepts a status without a session id', () => {
    assert.equal(parseWrapperStatus(status({}, ['sid']))?.pid, 4242);
  });

  test('returns null for a state other than running or exited', () => {
    for (const state of ['zombie', 'Running', '', null, undefined]) {
      assert.equal(parseWrapperStatus(status({ state }, state === undefined ? ['state'] : [])), null, String(state));
    }
  });

  test('returns null for an exited status with a negative, too large, fractional, string or missing exit code', () => {
    for (const exit_code of [-1, 256, 1.5, '0', null]) {
      assert.equal(parseWrapperStatus(status({ state: 'exited', exit_code })), null, JSON.stringify(exit_code));
    }
    assert.equal(parseWrapperStatus(status({ state: 'exited' })), null);
  });

  test('leaves startedAt null when started_at is not a number', () => {
    assert.equal(parseWrapperStatus(status({ started_at: 'yesterday' }))?.startedAt, null);
  });
});

describe('parseKv', () => {
  test('keeps everything after the first = of a status line', () => {
    const kv = parseKv('boot=same\nstatus={"a":"b=c"}\n=junk\nnoequals\n');
    assert.equal(kv.get('boot'), 'same');
    assert.equal(kv.get('status'), '{"a":"b=c"}');
    assert.equal(kv.size, 2);
  });
});

describe('decideProbe', () => {
  const exited = (code: number): string => status({ state: 'exited', exit_code: code });

  test('reports running when the process is alive on the same boot', () => {
    assert.deepEqual(decideProbe(`boot=same\nalive=1\nstatus=${status()}\n`), { state: 'running' });
  });

  test('lets a recorded exit code win over a dead process', () => {
    assert.deepEqual(decideProbe(`boot=same\nalive=0\nstatus=${exited(7)}\n`), { state: 'exited', exitCode: 7 });
  });

  test('lets a recorded exit code win over a changed boot id', () => {
    assert.deepEqual(decideProbe(`boot=changed\nalive=0\nstatus=${exited(0)}\n`), { state: 'exited', exitCode: 0 });
  });

  test('reports vanished when the process is gone without an exit code', () => {
    const v = decideProbe(`boot=same\nalive=0\nstatus=${status()}\n`);
    assert.equal(v.state, 'vanished');
  });

  test('reports vanished when alive=0 and there is no status at all', () => {
    assert.equal(decideProbe('boot=same\nalive=0\n').state, 'vanished');
  });

  test('reports vanished with a reboot detail when the boot id changed', () => {
    assert.deepEqual(decideProbe('boot=changed\nalive=0\n'), { state: 'vanished', detail: 'node rebooted' });
    assert.deepEqual(decideProbe('boot=changed\nalive=1\n'), { state: 'vanished', detail: 'node rebooted' });
  });

  test('ignores a junk status line and decides from alive', () => {
    assert.deepEqual(decideProbe('boot=same\nalive=1\nstatus={"pid":1}\n'), { state: 'running' });
  });

  test('throws on garbage output', () => {
    for (const out of ['', 'hello', 'alive=maybe', 'boot=same\n', 'Alive=1']) {
      assert.throws(() => decideProbe(out), /unexpected probe output/, JSON.stringify(out));
    }
  });
});

describe('parseKillOutput', () => {
  test('reads every outcome', () => {
    const out = ['not-ours', 'not-ours-at-kill', 'already-gone', 'killed-term', 'killed-kill', 'still-alive']
      .map((o, i) => `result ${100 + i} ${o}`)
      .join('\n');
    assert.deepEqual(
      parseKillOutput(out).map((r) => r.outcome),
      ['not-ours', 'not-ours-at-kill', 'already-gone', 'killed-term', 'killed-kill', 'still-alive'],
    );
    assert.deepEqual(
      parseKillOutput(out).map((r) => r.pid),
      [100, 101, 102, 103, 104, 105],
    );
  });

  test('ignores junk lines', () => {
    const out = [
      'sh: 1: kill: No such process',
      'result 12 killed-term',
      'result abc killed-term',
      'result -5 killed-term',
      'result 13 exploded',
      'result 14 not-ours extra',
      'xresult 15 not-ours',
      'result 16',
      '',
      '  result 17 already-gone  ',
    ].join('\n');
    assert.deepEqual(parseKillOutput(out), [
      { pid: 12, outcome: 'killed-term' },
      { pid: 17, outcome: 'already-gone' },
    ]);
  });

  test('returns nothing for empty output', () => {
    assert.deepEqual(parseKillOutput(''), []);
  });
});
