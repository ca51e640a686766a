/**
 * When a task whose node cannot be reached may run again: the reaper's half of the fence's safety
 * rule (docs/FENCE.md; src/activities/refresh.ts is the workers' half). Pure: no I/O.
 *
 * The invariant: a requeue comes no earlier than the latest lease refresh any worker may still
 * make, plus fence_after (the node's watchdog), kill_grace (TERM to KILL) and FENCE_MARGIN_S (the
 * watchdog's tick, whole-second readings, clock rates).
 *
 * The latest refresh any worker may still make, `refreshEndMs`, is read off Temporal's own records
 * (temporalRefreshEnd in ./temporal.ts: each record of a worker's request carries what was left of
 * its refresh window), on Temporal's clock; the reaper compares the result with Temporal's clock
 * too (its plan activity's scheduled time). No wall clock of a worker or the node enters the bound;
 * the database host's clock does only through the launch's own first lease (started_at) and the
 * launch tries of a dispatched row, where FENCE_MARGIN_S covers its skew from Temporal's.
 */
import { FENCE_MARGIN_S, LAUNCH_TIMEOUT_S_DEFAULT, LAUNCH_TRY_S, OUTAGE_TOLERANCE_S_DEFAULT, TaskStatus } from '../common/constants';
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
  /** The configured outage_tolerance: how long after its last acknowledged request a worker refreshes. */
  horizonS?: number;
}

/**
 * The time (ms) after which the row's attempt is certainly gone, or null when it has no fence
 * (launched with fencing off, or before fencing existed): such a task must not be run again while
 * its node is unreachable.
 *
 * `refreshEndMs` is the latest moment any worker may still refresh (Temporal's clock; -Infinity when
 * none ever could); null when Temporal does not know the workflow: then the row's own times stand in,
 * with the whole horizon.
 */
export function fenceFallsAtMs(row: TaskRow, t: FenceTimes, refreshEndMs: number | null): number | null {
  const dispatched = row.status === TaskStatus.dispatched;
  const fence = row.fence_after_s ?? (dispatched ? t.fenceAfterS : 0);
  if (!fence || fence <= 0) return null;
  const horizonMs = (t.horizonS ?? OUTAGE_TOLERANCE_S_DEFAULT) * 1000;
  const tailMs = (fence + t.killGraceS + FENCE_MARGIN_S) * 1000;
  const bounds: number[] = [];
  const launched = parseTime(row.started_at) ?? parseTime(row.updated_at);
  if (refreshEndMs !== null) {
    // The launch wrote the first lease itself; every later one is a refresh within refreshEndMs.
    if (launched !== null) bounds.push(launched + tailMs);
    if (Number.isFinite(refreshEndMs)) bounds.push(refreshEndMs + tailMs);
  } else {
    // Without Temporal's record: the last booked heartbeat (a slice books it when it ends; the next
    // slice's requests come within one slice and one lease of it), never before the launch.
    const hb = parseTime(row.last_heartbeat);
    const base = Math.max(hb === null ? -Infinity : hb + (t.heartbeatRecordS + t.leaseS) * 1000, launched ?? -Infinity);
    if (Number.isFinite(base)) bounds.push(base + horizonMs + tailMs);
  }
  if (dispatched) {
    // Not yet running: a try of its launch may still start the process (and write its first lease)
    // until launch_timeout (plus one try) after the dispatch; an earlier attempt's times say nothing.
    const at = Math.max(parseTime(row.dispatched_at) ?? -Infinity, parseTime(row.updated_at) ?? -Infinity);
    if (!Number.isFinite(at)) return null;
    bounds.push(at + ((t.launchTimeoutS ?? LAUNCH_TIMEOUT_S_DEFAULT) + LAUNCH_TRY_S) * 1000 + tailMs);
  }
  return bounds.length ? Math.max(...bounds) : null;
}
