/**
 * When a task whose node cannot be reached may run again: only once its attempt has certainly
 * stopped itself. The attempt's watchdog fences it fence_after seconds after the last lease refresh
 * the node saw; TERM, kill_grace, KILL follow, and FENCE_MARGIN_S covers the watchdog's tick, the
 * heartbeat throttle and the clocks of the dispatch machines (the node's clock is never compared
 * with ours: the watchdog measures on the node, and we count on ours from our record of the ack).
 * Pure: no I/O.
 */
import { FENCE_MARGIN_S, LAUNCH_TIMEOUT_S_DEFAULT, LAUNCH_TRY_S, TaskStatus } from '../common/constants';
import type { TaskRow } from '../common/types';
import { parseTime } from './rules';

export interface FenceTimes {
  killGraceS: number;
  leaseS: number;
  heartbeatRecordS: number;
  /** The configured fence_after, for a dispatched row whose launch may have started a watchdog. */
  fenceAfterS: number;
  /** The configured launch_timeout: no launch try starts a process later than this after dispatch. */
  launchTimeoutS?: number;
}

/**
 * The time (ms) after which the row's attempt is certainly gone, or null when it has no fence
 * (launched with fencing off, or before fencing existed): such a task must not be run again while
 * its node is unreachable. `leaseAckAtMs` is the supervise activity's record of the last lease
 * refresh the node acknowledged (its heartbeat details), null when Temporal could not tell.
 */
export function fenceFallsAtMs(row: TaskRow, t: FenceTimes, leaseAckAtMs: number | null): number | null {
  const dispatched = row.status === TaskStatus.dispatched;
  const fence = row.fence_after_s ?? (dispatched ? t.fenceAfterS : 0);
  if (!fence || fence <= 0) return null;
  const launched = parseTime(row.started_at) ?? parseTime(row.updated_at);
  let base: number | null;
  if (leaseAckAtMs !== null) {
    // The ack reaches Temporal with the next heartbeat: one lease later at the latest.
    base = leaseAckAtMs + t.leaseS * 1000;
  } else {
    // No record from the supervisor: the latest the node can have heard from it is one slice and
    // one lease after the last recorded heartbeat (the slice records it at its end).
    const hb = parseTime(row.last_heartbeat);
    base = hb === null ? null : hb + (t.heartbeatRecordS + t.leaseS) * 1000;
  }
  if (dispatched) {
    // Not yet running: a try of its launch may still start the process (and write its first lease)
    // until launch_timeout (plus one try) after the dispatch; an earlier attempt's times say nothing.
    const at = Math.max(parseTime(row.dispatched_at) ?? -Infinity, parseTime(row.updated_at) ?? -Infinity);
    return Number.isFinite(at)
      ? at + ((t.launchTimeoutS ?? LAUNCH_TIMEOUT_S_DEFAULT) + LAUNCH_TRY_S + fence + t.killGraceS + FENCE_MARGIN_S) * 1000
      : null;
  }
  if (launched !== null) base = Math.max(base ?? launched, launched);
  if (base === null) return null;
  return base + (fence + t.killGraceS + FENCE_MARGIN_S) * 1000;
}
