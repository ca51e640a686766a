/**
 * The supervise watcher: one per worker, with a loop per node, that watches every supervised attempt
 * this worker holds. A `supervise` activity hands its attempt over and completes asynchronously
 * (CompleteAsyncError): the worker keeps no running activity per task, only a small entry here, so
 * its memory follows the number of nodes and entries rather than one SDK activity per running task.
 *
 * What stays as it was for each task (each is its own activity on the server):
 * - the lease is still the task's own activity heartbeat timeout: the watcher heartbeats every
 *   attempt through its task token, on a timer that does not wait for probes, so a slow node delays
 *   a verdict, never the heartbeat of a live worker; a dead worker stops all its heartbeats and
 *   Temporal retries each activity elsewhere after one lease, re-attaching to the same process;
 * - the heartbeat details (identity, leaseAckAt, unreachableSince) the reaper reads;
 * - probes of all the node's attempts go out in one command per tick (ProbeBatcher), and every
 *   probe refreshes the attempt's lease file, which keeps its watchdog from fencing it;
 * - the slice: after sliceS the activity completes as "running" so the workflow books a heartbeat
 *   (a retried slice ends sooner, at a random point of its second half, so that a restarted worker's
 *   attempts do not all end their slices together).
 *
 * A cancel (the runtime cap, a cancelled task) reaches the watcher as the answer to a heartbeat.
 *
 * Riding through the control plane (docs/FENCE.md): the node's lease is refreshed by whoever watches
 * the attempt, within the refresh rule of ./refresh.ts: until `horizonS` after the latest request
 * about it that Temporal acknowledged (counted from when it was sent, on this worker's monotonic
 * clock). So an entry outlives its slice: a slice that ended (the workflow may book it only minutes
 * later, behind a backlog), a completion that cannot be delivered (Temporal away), or an activity
 * the server no longer knows (timed out during an outage; its retry re-attaches on some worker) all
 * leave the entry `holding`: it keeps probing, and so refreshing, until the horizon passes or a new
 * slice of the same attempt arrives here. A healthy task thus never fences because Temporal is slow
 * or away for less than the horizon, and the reaper, counting from Temporal's own times, knows the
 * latest refresh any worker may still make.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ActivityCancelledError, ActivityNotFoundError, ActivityPausedError, ActivityResetError } from '@temporalio/client';
import type { NodeRow, ProcessIdentity } from '../common/types';
import type { ProbeBatcher } from '../shell/batcher';
import type { ProbeVerdict } from '../shell/status';
import { OUTAGE_TOLERANCE_S_DEFAULT } from '../common/constants';
import { refreshWindow, reportedLeftMs, type RefreshWindow } from './refresh';

/** What the watcher needs of Temporal's async completion client (client.activity). */
export interface CompletionPort {
  heartbeat(taskToken: Uint8Array, details?: unknown): Promise<void>;
  complete(taskToken: Uint8Array, result: unknown): Promise<void>;
  fail(taskToken: Uint8Array, err: unknown): Promise<void>;
  reportCancellation(taskToken: Uint8Array, details?: unknown): Promise<void>;
}

export interface WatchRequest {
  taskToken: Uint8Array;
  node: NodeRow;
  identity: ProcessIdentity;
  /** The heartbeat timeout, seconds: heartbeats go out 4 times per lease. */
  leaseS: number;
  /** Complete as "running" after this many seconds. */
  sliceS: number;
  /** A retry of the activity (an earlier try's worker died or let go). */
  reattached: boolean;
  /** What an earlier try's last heartbeat said, when there was one. */
  previous?: { leaseAckAt?: unknown; unreachableSince?: unknown };
}

interface Entry {
  token: Uint8Array;
  node: NodeRow;
  identity: ProcessIdentity;
  key: string;
  reattached: boolean;
  untilMs: number;
  beatMs: number;
  maxTickMs: number;
  tickMs: number;
  nextBeatAt: number;
  nextProbeAt: number;
  beating: boolean;
  probing: boolean;
  done: boolean;
  unreachableSince: number | null;
  leaseAckAt: number;
  /** When (monotonic ms) the latest request about this attempt that Temporal acknowledged was sent. */
  ackSentMs: number | null;
  /** The activity is finished or lost to this worker: only refreshing until the horizon. */
  holding: boolean;
  /** The latest probe of the node answered (a request sent meanwhile extends the refresh window). */
  reachable: boolean;
  /** The slice's verdict, until its completion is delivered (retried while Temporal is away). */
  verdict: ProbeVerdict | null;
  completing: boolean;
  nextCompleteAt: number;
}

type Log = (msg: string, fields: Record<string, unknown>) => void;

/** The loop's resolution: the fast start polls at 200 ms, so it wakes every 100 ms. */
const LOOP_MS = 100;
const FIRST_TICK_MS = 200;

/** A Map that forgets its oldest entries past `max` (attempts whose slices moved to other workers). */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }
  override set(k: K, v: V): this {
    if (!this.has(k) && this.size >= this.max) this.delete(this.keys().next().value as K);
    return super.set(k, v);
  }
}

/**
 * How long a slice lasts. A retried slice ends at a random point of its second half: the attempts of
 * a worker that stopped or died come back together, and slices of one length would then keep
 * ending together, every one a workflow task (a replay, for an evicted workflow) at the same moment.
 * A slice shorter than sliceS only books the heartbeat sooner.
 */
function sliceMs(r: WatchRequest, random: () => number): number {
  const full = r.sliceS * 1000;
  return r.reattached ? Math.round(full * (0.5 + 0.5 * random())) : full;
}

export class SuperviseWatcher {
  private readonly nodes = new Map<string, { entries: Set<Entry>; timer: NodeJS.Timeout }>();
  /**
   * Per attempt supervised on this worker: the latest moment its node may have acknowledged a lease
   * refresh, carried from one slice to the next (a retry carries it in its heartbeat details).
   */
  private readonly leaseAcks = new BoundedMap<string, number>(100_000);
  /** Per attempt: when (monotonic ms) this worker sent its latest request about it that Temporal acknowledged. */
  private readonly acksSent = new BoundedMap<string, number>(100_000);
  private closed = false;
  private readonly now: () => number;
  private readonly horizonMs: number;

  constructor(
    private readonly deps: {
      batcher: Pick<ProbeBatcher, 'probe'>;
      completion: CompletionPort;
      warn?: Log;
      /** In [0, 1): where in its second half a retried slice ends (Math.random). */
      random?: () => number;
      /** outage_tolerance, seconds: how long after its latest acknowledged request a worker refreshes. */
      horizonS?: number;
      /** This worker's monotonic clock, ms (performance.now()). */
      now?: () => number;
    },
  ) {
    this.now = deps.now ?? (() => performance.now());
    this.horizonMs = Math.max(0, (deps.horizonS ?? OUTAGE_TOLERANCE_S_DEFAULT) * 1000);
  }

  /** Attempts whose slice this worker holds now, over all nodes. */
  get size(): number {
    let n = 0;
    for (const w of this.nodes.values()) for (const e of w.entries) if (!e.holding) n++;
    return n;
  }

  /** Attempts whose slice ended or was lost here, still refreshed until their horizon. */
  get holding(): number {
    let n = 0;
    for (const w of this.nodes.values()) for (const e of w.entries) if (e.holding) n++;
    return n;
  }

  watch(r: WatchRequest): void {
    if (this.closed) throw ApplicationFailure.retryable('worker is shutting down', 'WorkerShutdown');
    const now = this.now();
    const id = r.identity;
    const key = `${id.taskId}:${id.attempt}:${id.pid}`;
    // A new slice of an attempt watched here replaces the old entry: one that was holding, or one whose
    // activity Temporal has timed out and retried (after an outage) before telling us. Its
    // acknowledgement carries on (acksSent).
    const held = this.nodes.get(r.node.name);
    if (held) for (const x of held.entries) if (x.key === key && x.token !== r.taskToken) this.drop(x);
    // The latest moment the node confirmed a lease refresh (ms, this worker's wall clock), shown in
    // the heartbeat details for operators. The reaper no longer counts from it (a wall clock of
    // another host): it counts from Temporal's records and refreshLeftMs (docs/FENCE.md).
    const prevAck = r.previous?.leaseAckAt;
    const leaseAckAt = typeof prevAck === 'number' && Number.isFinite(prevAck) ? prevAck : (this.leaseAcks.get(key) ?? Date.now());
    this.leaseAcks.set(key, leaseAckAt);
    const prevUnreach = r.previous?.unreachableSince;
    const maxTickMs = Math.max(FIRST_TICK_MS, Math.floor((r.leaseS * 1000) / 4));
    const e: Entry = {
      token: r.taskToken,
      node: r.node,
      identity: id,
      key,
      reattached: r.reattached,
      untilMs: now + sliceMs(r, this.deps.random ?? Math.random),
      beatMs: maxTickMs,
      maxTickMs,
      tickMs: FIRST_TICK_MS,
      nextBeatAt: now + maxTickMs,
      nextProbeAt: now,
      beating: false,
      probing: false,
      done: false,
      unreachableSince: typeof prevUnreach === 'number' ? prevUnreach : null,
      leaseAckAt,
      ackSentMs: this.acksSent.get(key) ?? null,
      holding: false,
      reachable: false,
      verdict: null,
      completing: false,
      nextCompleteAt: 0,
    };
    let w = this.nodes.get(r.node.name);
    if (!w) {
      const entries = new Set<Entry>();
      const timer = setInterval(() => this.tick(entries), LOOP_MS);
      // Holding entries alone do not keep a process alive that is otherwise done.
      timer.unref();
      w = { entries, timer };
      this.nodes.set(r.node.name, w);
    }
    w.entries.add(e);
    this.beat(e);
    this.probe(e);
  }

  /** Hands every watched attempt back to Temporal at once (retried on a live worker), and stops. */
  async shutdown(): Promise<void> {
    this.closed = true;
    const all: Entry[] = [];
    for (const [name, w] of this.nodes) {
      clearInterval(w.timer);
      all.push(...w.entries);
      this.nodes.delete(name);
    }
    await Promise.all(
      all.map((e) => {
        const was = e.done || e.holding;
        e.done = true;
        if (was) return undefined;
        return this.deps.completion
          .fail(e.token, ApplicationFailure.retryable('the supervising worker shut down', 'WorkerShutdown'))
          .catch(() => undefined);
      }),
    );
  }

  /** One line per kind of trouble per 10 s, with how many more there were: a node down or Temporal away
   *  fails every attempt's probe or heartbeat at once. */
  private readonly warned = new Map<string, { at: number; more: number }>();
  private warnRated(msg: string, fields: Record<string, unknown>): void {
    const now = this.now();
    const w = this.warned.get(msg);
    if (w && now - w.at < 10_000) {
      w.more++;
      return;
    }
    this.warned.set(msg, { at: now, more: 0 });
    this.deps.warn?.(msg, w?.more ? { ...fields, similar_since_last: w.more } : fields);
  }

  /** Heartbeat details; `refreshLeftMs` is what the reaper adds to Temporal's record of them (refresh.ts). */
  private details(e: Entry, refreshLeftMs: number | null) {
    return {
      identity: e.identity,
      reattached: e.reattached,
      unreachableSince: e.unreachableSince,
      leaseAckAt: e.leaseAckAt,
      refreshLeftMs,
    };
  }

  private tick(entries: Set<Entry>): void {
    const now = this.now();
    for (const e of entries) {
      if (e.done) continue;
      if (!e.holding && now >= e.nextBeatAt) this.beat(e);
      if (e.verdict && !e.completing && now >= e.nextCompleteAt) this.deliver(e);
      if (!e.probing && now >= e.nextProbeAt && (e.verdict === null || e.verdict.state === 'running')) this.probe(e);
    }
  }

  /** Until when (monotonic ms) this worker may refresh the attempt's lease, and from which request; null: not now. */
  private refreshWindow(e: Entry): RefreshWindow | null {
    return refreshWindow(e.ackSentMs, this.horizonMs);
  }

  /** Temporal acknowledged a request about the attempt that was sent at `sentMs`. */
  private acked(e: Entry, sentMs: number): void {
    if (e.ackSentMs === null || sentMs > e.ackSentMs) e.ackSentMs = sentMs;
    this.acksSent.set(e.key, e.ackSentMs);
  }

  /** The activity is no longer this worker's: refresh only, until the horizon. */
  private hold(e: Entry): void {
    e.holding = true;
    e.verdict = null;
    e.completing = false;
    if (this.refreshWindow(e) === null) this.drop(e);
  }

  private drop(e: Entry): void {
    e.done = true;
    const w = this.nodes.get(e.node.name);
    if (!w) return;
    w.entries.delete(e);
    if (w.entries.size === 0) {
      clearInterval(w.timer);
      this.nodes.delete(e.node.name);
    }
  }

  /** The lease: one heartbeat in flight at a time per attempt, on its own clock. */
  private beat(e: Entry): void {
    const sent = this.now();
    e.nextBeatAt = sent + e.beatMs;
    if (e.beating || e.done || e.holding) return;
    e.beating = true;
    const ext = e.reachable;
    this.deps.completion
      .heartbeat(e.token, this.details(e, reportedLeftMs(sent, e.ackSentMs, this.horizonMs, ext)))
      .then(
        () => {
          if (!e.done && !e.holding && ext) this.acked(e, sent);
        },
        (err: unknown) => {
          if (e.done || e.holding) return;
          if (err instanceof ActivityCancelledError || err instanceof ActivityPausedError || err instanceof ActivityResetError) {
            // The workflow cancelled this slice (runtime cap, a cancelled task), or an operator paused
            // or reset the activity: stop watching and say so.
            this.drop(e);
            this.deps.completion.reportCancellation(e.token, this.details(e, 0)).catch(() => undefined);
          } else if (err instanceof ActivityNotFoundError) {
            // Timed out (after an outage of Temporal, every overdue slice at once; its retry re-attaches
            // on some worker) or its workflow is gone: keep the lease until the horizon.
            this.hold(e);
          } else {
            this.warnRated('heartbeat failed', { task: e.identity.taskId, error: (err as Error).message });
          }
        },
      )
      .finally(() => {
        e.beating = false;
      });
  }

  private probe(e: Entry): void {
    if (e.done) return;
    e.probing = true;
    this.deps.batcher
      .probe(e.node, e.identity, () => this.refreshWindow(e))
      .then(
        (v) => {
          if (e.done) return;
          const was = e.unreachableSince;
          const wasReachable = e.reachable;
          e.unreachableSince = null;
          e.reachable = true;
          if (v.state !== 'running') {
            // A holding entry leaves the verdict to whoever holds the slice now.
            if (e.holding) return this.drop(e);
            if (e.verdict === null) this.settle(e, v);
            return;
          }
          if (v.leaseRefreshed) {
            e.leaseAckAt = Date.now();
            this.leaseAcks.set(e.key, e.leaseAckAt);
            this.beat(e);
          } else if (was !== null || !wasReachable) this.beat(e); // a heartbeat now opens (or reopens) the window
        },
        (err: unknown) => {
          if (e.done) return;
          // The watcher is alive even when the node is not; the node probe decides about the node.
          e.reachable = false;
          if (e.unreachableSince === null) {
            e.unreachableSince = Date.now();
            this.beat(e);
          }
          if (e.holding) return;
          this.warnRated('probe failed', { node: e.node.name, task: e.identity.taskId, error: (err as Error).message });
        },
      )
      .finally(() => {
        e.probing = false;
        if (e.done) return;
        const now = this.now();
        if (e.holding) {
          const d = this.refreshWindow(e);
          if (d === null || now >= d.deadlineMs) {
            this.warnRated('refresh horizon passed: the attempt fences itself unless a supervisor takes it up', {
              task: e.identity.taskId,
              attempt: e.identity.attempt,
              node: e.node.name,
            });
            return this.drop(e);
          }
        } else if (now >= e.untilMs && e.verdict === null) this.settle(e, { state: 'running' });
        // Once past the fast start, probe on ticks aligned to the clock so that every attempt on a
        // node probes at the same moment and the batcher sends one command for all of them.
        const wall = Date.now();
        const next = e.tickMs < e.maxTickMs ? now + e.tickMs : now + (Math.ceil((wall + 1) / e.maxTickMs) * e.maxTickMs - wall);
        e.nextProbeAt = e.holding || e.verdict ? next : Math.min(next, e.untilMs);
        e.tickMs = Math.min(e.maxTickMs, e.tickMs * 2);
      });
  }

  /**
   * Completes the slice with its verdict. A completion that cannot be delivered (Temporal away) is
   * tried again every heartbeat interval, with the heartbeats and probes going on meanwhile; once
   * delivered (or once Temporal no longer knows the slice), a running attempt is held until the horizon.
   */
  private settle(e: Entry, v: ProbeVerdict): void {
    if (e.done || e.holding) return;
    e.verdict = v;
    if (v.state !== 'running') this.leaseAcks.delete(e.key);
    this.deliver(e);
  }

  private deliver(e: Entry): void {
    const v = e.verdict;
    if (!v || e.completing || e.done) return;
    e.completing = true;
    const sent = this.now();
    const ext = e.reachable;
    const result = v.state === 'running' ? { ...v, refreshLeftMs: reportedLeftMs(sent, e.ackSentMs, this.horizonMs, ext) } : v;
    const after = () => {
      e.completing = false;
      if (e.done) return;
      if (v.state === 'running') this.hold(e);
      else {
        this.acksSent.delete(e.key);
        this.drop(e);
      }
    };
    this.deps.completion.complete(e.token, result).then(
      () => {
        if (!e.done && ext) this.acked(e, sent);
        after();
      },
      (err: unknown) => {
        if (err instanceof ActivityNotFoundError) return after();
        e.completing = false;
        e.nextCompleteAt = this.now() + e.beatMs;
        this.warnRated('completing a supervise slice failed (tried again while the lease holds)', {
          task: e.identity.taskId,
          error: (err as Error).message,
        });
      },
    );
  }
}
