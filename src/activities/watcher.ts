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
 * A cancel (the runtime cap, a cancelled task) reaches the watcher as the answer to a heartbeat; an
 * attempt the server no longer knows (timed out, its workflow gone) is dropped at its next heartbeat.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ActivityCancelledError, ActivityNotFoundError, ActivityPausedError, ActivityResetError } from '@temporalio/client';
import type { NodeRow, ProcessIdentity } from '../common/types';
import type { ProbeBatcher } from '../shell/batcher';
import type { ProbeVerdict } from '../shell/status';

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
  private closed = false;

  constructor(
    private readonly deps: {
      batcher: Pick<ProbeBatcher, 'probe'>;
      completion: CompletionPort;
      warn?: Log;
      /** In [0, 1): where in its second half a retried slice ends (Math.random). */
      random?: () => number;
    },
  ) {}

  /** Attempts being watched now, over all nodes. */
  get size(): number {
    let n = 0;
    for (const w of this.nodes.values()) n += w.entries.size;
    return n;
  }

  watch(r: WatchRequest): void {
    if (this.closed) throw ApplicationFailure.retryable('worker is shutting down', 'WorkerShutdown');
    const now = Date.now();
    const id = r.identity;
    const key = `${id.taskId}:${id.attempt}:${id.pid}`;
    // The latest moment the node may have confirmed a lease refresh (ms, this worker's clock): what
    // the reaper counts the fence from. A retry carries on from the previous try's heartbeat, a later
    // slice on this worker from the one before; otherwise every earlier slice ended before this one
    // began, so now is a safe upper bound until the first probe answers.
    const prevAck = r.previous?.leaseAckAt;
    const leaseAckAt = typeof prevAck === 'number' && Number.isFinite(prevAck) ? prevAck : (this.leaseAcks.get(key) ?? now);
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
    };
    let w = this.nodes.get(r.node.name);
    if (!w) {
      const entries = new Set<Entry>();
      const timer = setInterval(() => this.tick(entries), LOOP_MS);
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
        e.done = true;
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
    const now = Date.now();
    const w = this.warned.get(msg);
    if (w && now - w.at < 10_000) {
      w.more++;
      return;
    }
    this.warned.set(msg, { at: now, more: 0 });
    this.deps.warn?.(msg, w?.more ? { ...fields, similar_since_last: w.more } : fields);
  }

  private details(e: Entry) {
    return { identity: e.identity, reattached: e.reattached, unreachableSince: e.unreachableSince, leaseAckAt: e.leaseAckAt };
  }

  private tick(entries: Set<Entry>): void {
    const now = Date.now();
    for (const e of entries) {
      if (e.done) continue;
      if (now >= e.nextBeatAt) this.beat(e);
      if (!e.probing && now >= e.nextProbeAt) this.probe(e);
    }
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
    e.nextBeatAt = Date.now() + e.beatMs;
    if (e.beating || e.done) return;
    e.beating = true;
    this.deps.completion
      .heartbeat(e.token, this.details(e))
      .catch((err: unknown) => {
        if (e.done) return;
        if (err instanceof ActivityCancelledError || err instanceof ActivityPausedError || err instanceof ActivityResetError) {
          // The workflow cancelled this slice (runtime cap, a cancelled task), or an operator paused
          // or reset the activity: stop watching and say so.
          this.drop(e);
          this.deps.completion.reportCancellation(e.token, this.details(e)).catch(() => undefined);
        } else if (err instanceof ActivityNotFoundError) {
          // Timed out (a retry supervises it now) or its workflow is gone.
          this.drop(e);
        } else {
          this.warnRated('heartbeat failed', { task: e.identity.taskId, error: (err as Error).message });
        }
      })
      .finally(() => {
        e.beating = false;
      });
  }

  private probe(e: Entry): void {
    if (e.done) return;
    e.probing = true;
    this.deps.batcher
      .probe(e.node, e.identity)
      .then(
        (v) => {
          if (e.done) return;
          const was = e.unreachableSince;
          e.unreachableSince = null;
          if (v.state !== 'running') return this.settle(e, v);
          if (v.leaseRefreshed) {
            e.leaseAckAt = Date.now();
            this.leaseAcks.set(e.key, e.leaseAckAt);
            this.beat(e);
          } else if (was !== null) this.beat(e);
        },
        (err: unknown) => {
          if (e.done) return;
          // The watcher is alive even when the node is not; the node probe decides about the node.
          if (e.unreachableSince === null) {
            e.unreachableSince = Date.now();
            this.beat(e);
          }
          this.warnRated('probe failed', { node: e.node.name, task: e.identity.taskId, error: (err as Error).message });
        },
      )
      .finally(() => {
        e.probing = false;
        if (e.done) return;
        const now = Date.now();
        if (now >= e.untilMs) return this.settle(e, { state: 'running' });
        // Once past the fast start, probe on ticks aligned to the clock so that every attempt on a
        // node probes at the same moment and the batcher sends one command for all of them.
        const next = e.tickMs < e.maxTickMs ? now + e.tickMs : Math.ceil((now + 1) / e.maxTickMs) * e.maxTickMs;
        e.nextProbeAt = Math.min(next, e.untilMs);
        e.tickMs = Math.min(e.maxTickMs, e.tickMs * 2);
      });
  }

  /** Completes the slice with its verdict; a completion that cannot be delivered is retried by Temporal. */
  private settle(e: Entry, v: ProbeVerdict): void {
    if (e.done) return;
    this.drop(e);
    if (v.state !== 'running') this.leaseAcks.delete(e.key);
    this.deps.completion.complete(e.token, v).catch((err: unknown) => {
      if (err instanceof ActivityNotFoundError) return;
      this.deps.warn?.('completing a supervise slice failed (it times out and is retried)', {
        task: e.identity.taskId,
        error: (err as Error).message,
      });
    });
  }
}
