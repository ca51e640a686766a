/** When a task on an unreachable node may run again (src/reaper/fence.ts): pure, no server. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fenceFallsAtMs } from '../../src/reaper/fence';
import { FENCE_MARGIN_S } from '../../src/common/constants';
import { compileConfig } from '../../src/config/config';
import type { TaskRow } from '../../src/common/types';

const T = { killGraceS: 10, leaseS: 30, heartbeatRecordS: 300, fenceAfterS: 600 };
const at = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();
const base = Date.UTC(2026, 0, 1);
const row = (o: Partial<TaskRow>): TaskRow =>
  ({ status: 'running', started_at: at(0), last_heartbeat: at(0), fence_after_s: 600, ...o }) as TaskRow;

describe('fence', () => {
  test("counts from the supervisor's last acknowledged lease refresh, plus one lease for the heartbeat that carries it", () => {
    const falls = fenceFallsAtMs(row({}), T, base + 1000_000);
    assert.equal(falls, base + 1000_000 + (30 + 600 + 10 + FENCE_MARGIN_S) * 1000);
  });

  test('without that record: one slice and one lease after the last recorded heartbeat, never before the launch', () => {
    assert.equal(fenceFallsAtMs(row({ last_heartbeat: at(100) }), T, null), base + (100 + 300 + 30 + 600 + 10 + FENCE_MARGIN_S) * 1000);
    // never refreshed: from the launch
    assert.equal(fenceFallsAtMs(row({ last_heartbeat: null, started_at: at(50) }), T, null), base + (50 + 610 + FENCE_MARGIN_S) * 1000);
    // an ack older than the launch (clock trouble) still counts from the launch
    assert.equal(fenceFallsAtMs(row({ started_at: at(500) }), T, base), base + (500 + 610 + FENCE_MARGIN_S) * 1000);
  });

  test('an attempt without a watchdog never falls: it must not run again while its node is unreachable', () => {
    assert.equal(fenceFallsAtMs(row({ fence_after_s: null }), T, base), null);
    assert.equal(fenceFallsAtMs(row({ fence_after_s: 0 }), T, base), null);
    // a dispatched row may have launched with the configured fence; with fencing off it has none
    assert.notEqual(fenceFallsAtMs(row({ status: 'dispatched', fence_after_s: null, updated_at: at(0) }), T, null), null);
    assert.equal(fenceFallsAtMs(row({ status: 'dispatched', fence_after_s: null }), { ...T, fenceAfterS: 0 }, null), null);
  });

  test('a dispatched attempt counts from its dispatch plus launch_timeout, not from an earlier attempt', () => {
    const d = row({
      status: 'dispatched',
      started_at: at(0),
      last_heartbeat: at(10),
      dispatched_at: at(1000),
      updated_at: at(1000),
      fence_after_s: null,
    });
    assert.equal(fenceFallsAtMs(d, { ...T, launchTimeoutS: 300 }, null), base + (1000 + 300 + 30 + 610 + FENCE_MARGIN_S) * 1000);
    assert.equal(fenceFallsAtMs(d, T, null), base + (1000 + 300 + 30 + 610 + FENCE_MARGIN_S) * 1000);
    assert.equal(fenceFallsAtMs({ ...d, dispatched_at: null, updated_at: null }, T, null), null);
  });

  test('fence_after: 0 turns it off; otherwise it must be longer than 2 x lease_s', () => {
    assert.equal(compileConfig({ fence_after: 0 }, {}).fence_after, 0);
    assert.equal(compileConfig({}, {}).fence_after, 600);
    assert.equal(compileConfig({ fence_after: '15m' }, {}).fence_after, 900);
    assert.throws(() => compileConfig({ fence_after: 50, lease_s: 30 }, {}), /fence_after.*2 x lease_s/);
    assert.throws(() => compileConfig({ fence_after: -1 }, {}), /fence_after/);
    assert.equal(compileConfig({}, {}).launch_timeout, 300);
    assert.throws(() => compileConfig({ launch_timeout: 10 }, {}), /launch_timeout.*at least 30s/);
  });
});
