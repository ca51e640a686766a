/**
 * The node-side half of the refresh rule (src/activities/refresh.ts): mapping a deadline on this
 * worker's monotonic clock onto the node's uptime, from what the node's own answers said. Pure.
 */

/**
 * What one answer of a node says about its uptime: the command was sent at `sentMs` and answered at
 * `recvMs` (monotonic ms here) and the node read its uptime `uptimeS` (whole seconds, rounded down)
 * in between. Then, at every later moment t of this worker's clock, the node's uptime in ms is at
 * least `t + offset` with offset = uptimeS * 1000 - recvMs: a lower bound of the node's lead.
 */
export function uptimeOffsetMs(uptimeS: number, recvMs: number): number {
  return uptimeS * 1000 - recvMs;
}

/**
 * A node's uptime samples (one boot), by when they were received here. A sample is a lower bound
 * of the node's lead only over stretches in which this worker's clock did not stop: a host that
 * was suspended after a request was acknowledged has a clock that lags real time from then on, and
 * a sample taken after the suspension would map that request's deadline too late. So a deadline
 * counted from a request sent at `ackSentMs` is mapped with the newest sample received no later
 * than that (`before`). Samples are kept one per `spacingMs`, for `retainMs`, so that a request
 * acknowledged long ago (a long outage of Temporal) still finds one.
 */
export class UptimeSamples {
  private readonly samples: { recvMs: number; offsetMs: number }[] = [];
  constructor(
    private readonly retainMs: number,
    private readonly spacingMs = 5000,
  ) {}

  add(uptimeS: number, recvMs: number): void {
    const last = this.samples[this.samples.length - 1];
    // One per window: its first receipt (a later one may not stand in for it, see above).
    if (last && recvMs - last.recvMs < this.spacingMs) return;
    this.samples.push({ recvMs, offsetMs: uptimeOffsetMs(uptimeS, recvMs) });
    while (this.samples.length > 1 && recvMs - this.samples[0]!.recvMs > this.retainMs) this.samples.shift();
  }

  /** The offset of the newest sample received before `tMs` (strictly: a tie says nothing of the order); null: none. */
  before(tMs: number): number | null {
    for (let i = this.samples.length - 1; i >= 0; i--) if (this.samples[i]!.recvMs < tMs) return this.samples[i]!.offsetMs;
    return null;
  }
}

/**
 * The node-side limit for a refresh whose deadline on this worker's clock is `deadlineMs`: the
 * script refreshes only while its uptime (whole seconds, rounded down) is at most this. 0 (refuse)
 * without a deadline or without an offset sample of the node.
 *
 * Why it holds: a refresh at a real moment t past the deadline finds a node uptime of at least
 * t + offset > deadlineMs + offset ms, and its rounded-down reading is more than 1 s less at most,
 * so it reads more than (deadlineMs + offset)/1000 - 1 >= the limit, and refuses.
 */
export function nodeRefreshLimitS(deadlineMs: number | null, offsetMs: number | null): number {
  if (deadlineMs === null || offsetMs === null) return 0;
  const limit = Math.floor((deadlineMs + offsetMs) / 1000) - 1;
  return limit > 0 ? limit : 0;
}
