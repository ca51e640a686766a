/**
 * When a worker may still refresh a node's lease: the worker's half of the fence's safety rule
 * (docs/FENCE.md gives the whole argument; src/reaper/fence.ts is the reaper's half). Pure: no I/O,
 * no clock of its own; every time here is this worker's monotonic clock (performance.now()), which
 * never jumps and keeps counting while the process is stopped, and is never compared with another
 * host's.
 *
 * The rule: a worker refreshes an attempt's lease only before `ackSentMs + horizonMs`, where
 * `ackSentMs` is the moment it *sent* the latest request about that attempt that Temporal
 * acknowledged (a heartbeat, or the slice's completion). Temporal recorded that request after it
 * was sent, so on Temporal's own clock every refresh this worker can make comes no later than
 * `(a time Temporal recorded) + horizonMs`; the reaper counts from the latest such time it can see.
 * A worker that has no acknowledgement yet (a slice just handed to it) does not refresh at all.
 *
 * The same deadline is enforced on the node, so that a refresh command that left late (a worker
 * frozen between the check and the write, a command stuck in a socket) cannot extend it: the
 * command carries the node's uptime past which the script refuses to refresh, computed from what
 * the node's earlier answers said its uptime was.
 */

/** The last moment (monotonic ms) this worker may refresh, or null: it may not (no acknowledgement yet). */
export function refreshDeadlineMs(ackSentMs: number | null, horizonMs: number): number | null {
  if (ackSentMs === null || !Number.isFinite(ackSentMs) || !(horizonMs >= 0)) return null;
  return ackSentMs + horizonMs;
}

/** What a probe needs to refresh within the rule: the acknowledged request's send time and its deadline. */
export interface RefreshWindow {
  ackSentMs: number;
  deadlineMs: number;
}

/** The window of the rule, or null: no refresh. */
export function refreshWindow(ackSentMs: number | null, horizonMs: number): RefreshWindow | null {
  const d = refreshDeadlineMs(ackSentMs, horizonMs);
  return d === null ? null : { ackSentMs: ackSentMs!, deadlineMs: d };
}

/**
 * What a request sent at `nowMs` tells Temporal (heartbeat details and slice results carry it as
 * `refreshLeftMs`): until when, counted from that send, this worker may refresh. A request sent
 * while the node answers this worker's probes `extends` the window: once acknowledged, the window
 * runs until its send plus the horizon, so it reports the whole horizon. One sent while the node
 * does not answer leaves the window where it was and reports its end relative to the send, which
 * is negative once it has passed: so a worker cut off from its node stops moving the reaper's bound
 * however long it goes on heartbeating. null: this worker never had a window for the attempt.
 *
 * Why the reaper may add it to Temporal's record time R of the request: the request was sent at a
 * real moment <= R, and the time since the window's acknowledged request was sent is never longer
 * on this worker's clock than in real time (a monotonic clock may fall behind real time while the
 * host is suspended, never run ahead of it). So R + refreshLeftMs >= (that send, in real time) +
 * the horizon, whatever its sign.
 */
export function reportedLeftMs(nowMs: number, ackSentMs: number | null, horizonMs: number, extends_: boolean): number | null {
  if (extends_) return Math.max(0, horizonMs);
  const d = refreshDeadlineMs(ackSentMs, horizonMs);
  return d === null ? null : Math.ceil(d - nowMs);
}

/** Whether a refresh sent at `nowMs` is allowed by the rule above. */
export function mayRefresh(nowMs: number, ackSentMs: number | null, horizonMs: number): boolean {
  const d = refreshDeadlineMs(ackSentMs, horizonMs);
  return d !== null && nowMs < d;
}

export { nodeRefreshLimitS, uptimeOffsetMs, UptimeSamples } from '../shell/uptime';
