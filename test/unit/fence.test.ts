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
  const H = 1800;
  const TH = { ...T, horizonS: H };
  test("counts from the last refresh any worker may still make (Temporal's clock), never before the launch's own lease", () => {
    const falls = fenceFallsAtMs(row({}), TH, base + 1000_000);
    assert.equal(falls, base + 1000_000 + (600 + 10 + FENCE_MARGIN_S) * 1000);
    // No worker ever had a window: the launch's first lease is the last.
    assert.equal(fenceFallsAtMs(row({ started_at: at(70) }), TH, -Infinity), base + (70 + 610 + FENCE_MARGIN_S) * 1000);
    // A refresh bound older than the launch (clock trouble) still counts from the launch.
    assert.equal(fenceFallsAtMs(row({ started_at: at(500) }), TH, base), base + (500 + 610 + FENCE_MARGIN_S) * 1000);
  });

  test('a later bound only moves the fall later; the row says nothing more when Temporal knows the task', () => {
    const a = fenceFallsAtMs(row({ last_heartbeat: at(5000) }), TH, base + 10_000_000)!;
    const b = fenceFallsAtMs(row({ last_heartbeat: at(5000) }), TH, base + 10_001_000)!;
    assert.equal(b - a, 1000);
    assert.equal(a, base + 10_000_000 + 610_000 + FENCE_MARGIN_S * 1000);
  });

  test('without a record in Temporal: one slice and one lease after the last booked heartbeat, plus the horizon, never before the launch', () => {
    assert.equal(
      fenceFallsAtMs(row({ last_heartbeat: at(100) }), TH, null),
      base + (100 + 300 + 30 + H + 600 + 10 + FENCE_MARGIN_S) * 1000,
    );
    // never refreshed: from the launch
    assert.equal(
      fenceFallsAtMs(row({ last_heartbeat: null, started_at: at(50) }), TH, null),
      base + (50 + H + 610 + FENCE_MARGIN_S) * 1000,
    );
  });

  test('an attempt without a watchdog never falls: it must not run again while its node is unreachable', () => {
    assert.equal(fenceFallsAtMs(row({ fence_after_s: null }), T, base), null);
    assert.equal(fenceFallsAtMs(row({ fence_after_s: 0 }), T, base), null);
    // a dispatched row may have launched with the configured fence; with fencing off it has none
    assert.notEqual(fenceFallsAtMs(row({ status: 'dispatched', fence_after_s: null, updated_at: at(0) }), T, null), null);
    assert.equal(fenceFallsAtMs(row({ status: 'dispatched', fence_after_s: null }), { ...T, fenceAfterS: 0 }, null), null);
  });

  test('a dispatched attempt waits out its launch tries, and any supervisor that may have started on it', () => {
    const d = row({
      status: 'dispatched',
      started_at: at(0),
      last_heartbeat: at(10),
      dispatched_at: at(10_000),
      updated_at: at(10_000),
      fence_after_s: null,
    });
    // Temporal's bound is older than the dispatch: the launch bound is the later one.
    assert.equal(fenceFallsAtMs(d, { ...TH, launchTimeoutS: 300 }, base), base + (10_000 + 300 + 30 + 610 + FENCE_MARGIN_S) * 1000);
    // A first slice already heartbeated on it: its window counts too.
    assert.equal(fenceFallsAtMs(d, TH, base + 12_000_000), base + 12_000_000 + 610_000 + FENCE_MARGIN_S * 1000);
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
    assert.equal(compileConfig({}, {}).outage_tolerance, 1800);
    assert.equal(compileConfig({ outage_tolerance: '1h' }, {}).outage_tolerance, 3600);
    assert.throws(() => compileConfig({ outage_tolerance: 50, lease_s: 30 }, {}), /outage_tolerance.*2 x lease_s/);
    assert.equal(compileConfig({ lease_s: 1200, stale_s: 7200 }, {}).outage_tolerance, 2400, 'the default follows a long lease');
  });
});
