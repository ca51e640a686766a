/** Bugs the property tests found, each pinned by the input that showed it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpecText } from '../../src/spec/spec';
import { SpecError, ConfigError } from '../../src/common/errors';
import { parseDurationSeconds } from '../../src/common/duration';
import { compileConfig } from '../../src/config/config';
import { processNamesTask } from '../../src/reaper/identify';
import { parseKillOutput } from '../../src/shell/status';

const defaults = { maxRuntimeS: 7200, executors: { glm: 'run-glm {spec}' } };

test('an executor named after an Object.prototype member is refused as not configured', () => {
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    assert.throws(
      () => parseSpecText(`---\ntask_id: a\nexecutor: ${name}\n---\n`, 'x.md', defaults),
      (e: Error) => e instanceof SpecError && /is not configured/.test(e.message),
    );
  }
});

test('a self-referencing YAML alias gives a SpecError, not a TypeError', () => {
  for (const fm of [
    'task_id: &a [*a]',
    'task_id: ok\ncommand: "true"\nproject: &p [*p]',
    'task_id: ok\ncommand: "true"\ndepends_on: &d [*d]',
  ]) {
    assert.throws(
      () => parseSpecText(`---\n${fm}\n---\n`, 'x.md', defaults),
      (e: Error) => e instanceof SpecError,
    );
  }
});

test('durations that overflow to Infinity or exceed ten years are refused', () => {
  assert.throws(() => parseDurationSeconds(`${'9'.repeat(400)}h`));
  assert.throws(() => parseDurationSeconds(Infinity));
  assert.throws(() => parseDurationSeconds('4000d'));
  assert.throws(() => compileConfig({ kill_grace: `${'9'.repeat(400)}s` }), ConfigError);
  assert.throws(() => compileConfig({}, { TASK_LEASE_S: '9'.repeat(400) }), ConfigError);
});

test('stale_s is checked against the heartbeat record interval after it is raised to lease_s / 3', () => {
  assert.throws(() => compileConfig({ heartbeat_record_interval: 1, stale_s: 11, lease_s: 9 }), /stale_s/);
  assert.equal(compileConfig({ heartbeat_record_interval: 1, stale_s: 13, lease_s: 9 }).heartbeat_record_interval, 3);
});

test('a process never names an invalid task id, and "S1" is not named by "S1.retry"', () => {
  const kthread = { pid: 2, gone: false, state: 'S', starttime: '1002', cmdline: '', envTask: null };
  assert.equal(processNamesTask(kthread, ''), false);
  assert.equal(processNamesTask({ ...kthread, cmdline: '/usr/bin/sleep\u0000600' }, ''), false);
  const retry = { ...kthread, cmdline: 'agent\u0000--task\u0000S1.retry', envTask: 'S1.retry' };
  assert.equal(processNamesTask(retry, 'S1'), false);
  assert.equal(processNamesTask({ ...kthread, cmdline: 'agent\u0000/specs/S1.md' }, 'S1'), true);
  assert.equal(processNamesTask({ ...kthread, cmdline: 'sh\u0000-c\u0000sleep 600; : S12-x' }, 'S1'), false);
});

test('parseKillOutput returns only pids greater than 1 within range', () => {
  assert.deepEqual(
    parseKillOutput(`result 0 killed-term\nresult 1 killed-term\nresult ${'9'.repeat(21)} killed-kill\nresult 42 already-gone`),
    [{ pid: 42, outcome: 'already-gone' }],
  );
});
