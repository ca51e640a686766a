/**
 * The supervise watcher's own logic, with a scripted node and a recording stand-in for Temporal's
 * async completion client (the end-to-end tests run it against real Temporal and sshd).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ActivityCancelledError, ActivityNotFoundError } from '@temporalio/client';
import { SuperviseWatcher, type CompletionPort, type WatchRequest } from '../../src/activities/watcher';
import type { NodeRow, ProcessIdentity } from '../../src/common/types';
import type { ProbeVerdict } from '../../src/shell/status';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const NODE = { name: 'n1', host: '127.0.0.1', slots: 1, kind: 'ssh', work_dir: '/tmp' } as unknown as NodeRow;

function identity(taskId: string, pid: number): ProcessIdentity {
  return { node: 'n1', pid, starttime: '1', bootId: 'b', dir: `/tmp/${taskId}`, taskId, attempt: 1 };
}

class Recorder implements CompletionPort {
  /** Temporal away: every call fails as a network error would. */
  away = false;
  beats: { token: string; details: unknown }[] = [];
  completed: { token: string; result: unknown }[] = [];
  failed: string[] = [];
  cancelled: string[] = [];
  cancelOn = new Set<string>();
  goneOn = new Set<string>();
  async heartbeat(t: Uint8Array, details?: unknown): Promise<void> {
    const token = Buffer.from(t).toString();
    if (this.away) throw new Error('14 UNAVAILABLE: connection refused');
    this.beats.push({ token, details });
    if (this.cancelOn.has(token)) throw new ActivityCancelledError('cancelled');
    if (this.goneOn.has(token)) throw new ActivityNotFoundError('not found');
  }
  gone = new Set<string>();
  async complete(t: Uint8Array, result: unknown): Promise<void> {
    if (this.away) throw new Error('14 UNAVAILABLE: connection refused');
    if (this.gone.has(Buffer.from(t).toString())) throw new ActivityNotFoundError('not found');
    this.completed.push({ token: Buffer.from(t).toString(), result });
  }
  async fail(t: Uint8Array): Promise<void> {
    this.failed.push(Buffer.from(t).toString());
  }
  async reportCancellation(t: Uint8Array): Promise<void> {
    this.cancelled.push(Buffer.from(t).toString());
  }
}

/** A node whose probes answer from `verdicts` (per pid; running otherwise), or hang while `hang` is set. */
function scriptedNode() {
  const verdicts = new Map<number, ProbeVerdict>();
  const calls: { pid: number; at: number; window: { ackSentMs: number; deadlineMs: number } | null }[] = [];
  const state = { hang: false, down: false };
  return {
    verdicts,
    calls,
    state,
    probe(_n: NodeRow, id: ProcessIdentity, w?: () => { ackSentMs: number; deadlineMs: number } | null): Promise<ProbeVerdict> {
      calls.push({ pid: id.pid, at: Date.now(), window: w ? w() : null });
      if (state.hang) return new Promise(() => undefined);
      if (state.down) return Promise.reject(new Error('connect ECONNREFUSED'));
      return Promise.resolve(verdicts.get(id.pid) ?? { state: 'running', leaseRefreshed: true });
    },
  };
}

function req(token: string, pid: number, over: Partial<WatchRequest> = {}): WatchRequest {
  return { taskToken: Buffer.from(token), node: NODE, identity: identity(token, pid), leaseS: 0.8, sliceS: 30, reattached: false, ...over };
}

describe('supervise watcher', () => {
  test('a process that exits completes its activity with the verdict and is no longer watched', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    const w = new SuperviseWatcher({ batcher: b, completion: rec });
    b.verdicts.set(11, { state: 'exited', exitCode: 4 });
    w.watch(req('t1', 11));
    await sleep(100);
    assert.deepEqual(rec.completed, [{ token: 't1', result: { state: 'exited', exitCode: 4 } }]);
    assert.equal(w.size, 0);
    await w.shutdown();
  });

  test('heartbeats keep their rhythm while a probe hangs, with the earlier try’s leaseAckAt as details', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    b.state.hang = true;
    const w = new SuperviseWatcher({ batcher: b, completion: rec });
    w.watch(req('t2', 12, { previous: { leaseAckAt: 1234 } }));
    await sleep(1100);
    const beats = rec.beats.filter((x) => x.token === 't2');
    // One at once, then one every lease/4 (200 ms): at least 4 in 1.1 s, although no probe answered.
    assert.ok(beats.length >= 4, `heartbeats: ${beats.length}`);
    const last = beats[beats.length - 1]!.details as { leaseAckAt: number; identity: ProcessIdentity };
    assert.equal(last.leaseAckAt, 1234, 'an earlier try carries its leaseAckAt over');
    assert.equal(last.identity.pid, 12);
    assert.equal(b.calls.length, 1, 'a hung probe is not stacked with more');
    await w.shutdown();
    assert.deepEqual(rec.failed, ['t2'], 'shutdown hands the attempt back for a retry elsewhere');
    assert.throws(() => w.watch(req('t9', 19)), /shutting down/);
  });

  test('the slice ends as running after sliceS, and a lease refresh moves leaseAckAt', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    const w = new SuperviseWatcher({ batcher: b, completion: rec });
    const before = Date.now();
    w.watch(req('t3', 13, { sliceS: 0.6 }));
    await sleep(1000);
    assert.equal(rec.completed.length, 1);
    assert.equal(rec.completed[0]!.token, 't3');
    assert.equal((rec.completed[0]!.result as { state: string }).state, 'running');
    const d = rec.beats[rec.beats.length - 1]!.details as { leaseAckAt: number };
    assert.ok(d.leaseAckAt >= before, 'the probes refreshed the lease');
    await w.shutdown();
    assert.deepEqual(rec.failed, [], 'nothing left to hand back');
  });

  test('a retried slice ends at a random point of its second half; a first try lasts the whole slice', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    const w = new SuperviseWatcher({ batcher: b, completion: rec, random: () => 0 });
    w.watch(req('t6', 16, { sliceS: 1.6, reattached: true }));
    w.watch(req('t7', 17, { sliceS: 1.6 }));
    await sleep(1200);
    assert.deepEqual(
      rec.completed.map((c) => c.token),
      ['t6'],
      'the retried slice ended at half of sliceS, the first try is still running',
    );
    await sleep(1000);
    assert.deepEqual(
      rec.completed.map((c) => c.token),
      ['t6', 't7'],
    );
    await w.shutdown();
  });

  test('a cancel answered to a heartbeat stops the watch and reports it; an activity Temporal no longer knows is dropped', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    const w = new SuperviseWatcher({ batcher: b, completion: rec });
    w.watch(req('t4', 14));
    w.watch(req('t5', 15));
    assert.equal(w.size, 2);
    rec.cancelOn.add('t4');
    rec.goneOn.add('t5');
    await sleep(500);
    assert.equal(w.size, 0);
    assert.deepEqual(rec.cancelled, ['t4']);
    assert.deepEqual(rec.completed, []);
    await w.shutdown();
  });

  test('past the fast start, the attempts on one node probe on the same aligned tick', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    const w = new SuperviseWatcher({ batcher: b, completion: rec });
    w.watch(req('a', 21, { leaseS: 2 }));
    await sleep(230);
    w.watch(req('b', 22, { leaseS: 2 }));
    await sleep(2800);
    const last = b.calls.slice(-2);
    assert.deepEqual(last.map((c) => c.pid).sort(), [21, 22]);
    assert.ok(Math.abs(last[0]!.at - last[1]!.at) < 150, `probed ${Math.abs(last[0]!.at - last[1]!.at)} ms apart`);
    await w.shutdown();
  });

  test('Temporal away: the slice end is delivered once it is back, and the node keeps its lease meanwhile', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    const w = new SuperviseWatcher({ batcher: b, completion: rec, horizonS: 60 });
    w.watch(req('away', 31, { sliceS: 0.8 }));
    await sleep(500); // acknowledged heartbeats open the refresh window
    assert.ok(
      b.calls.some((c) => c.window !== null),
      'a probe went out with a refresh window',
    );
    rec.away = true;
    await sleep(1500); // the slice ended while Temporal was away
    assert.deepEqual(rec.completed, []);
    const during = b.calls.filter((c) => c.at > Date.now() - 800);
    assert.ok(during.length > 0 && during.every((c) => c.window !== null), 'probes go on, each allowed to refresh');
    rec.away = false;
    await sleep(1200);
    assert.equal(rec.completed.length, 1, 'delivered once Temporal was back');
    assert.equal(w.size, 0);
    assert.equal(w.holding, 1, 'and held until the horizon');
    await w.shutdown();
  });

  test('an activity Temporal timed out is held (refreshing) until the horizon after the last acknowledgement, then dropped', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    const w = new SuperviseWatcher({ batcher: b, completion: rec, horizonS: 1.5 });
    w.watch(req('to', 32));
    await sleep(600);
    rec.goneOn.add('to');
    await sleep(400);
    assert.equal(w.size, 0);
    assert.equal(w.holding, 1);
    const last = b.calls[b.calls.length - 1]!;
    assert.ok(last.window && last.window.deadlineMs - last.window.ackSentMs === 1500);
    await sleep(1500);
    assert.equal(w.holding, 0, 'dropped once the horizon passed');
    const after = b.calls.length;
    await sleep(600);
    assert.equal(b.calls.length, after, 'no more probes');
    await w.shutdown();
  });

  test('a node that does not answer freezes the window: heartbeats go on, report what is left, and extend nothing', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    const w = new SuperviseWatcher({ batcher: b, completion: rec, horizonS: 30 });
    w.watch(req('cut', 33, { leaseS: 0.4 }));
    await sleep(500);
    const opened = b.calls.filter((c) => c.window).pop()!.window!;
    b.state.down = true;
    await sleep(1500);
    const lefts = rec.beats
      .filter((x) => x.token === 'cut')
      .slice(-3)
      .map((x) => (x.details as { refreshLeftMs: number }).refreshLeftMs);
    assert.ok(
      lefts.every((l) => l < 30_000),
      `left reported while cut: ${lefts.join(', ')}`,
    );
    assert.ok(lefts[2]! < lefts[0]!, 'shrinking');
    const latest = b.calls[b.calls.length - 1]!.window!;
    assert.ok(latest.ackSentMs - opened.ackSentMs < 500, 'no acknowledgement while cut moved the window');
    b.state.down = false;
    await sleep(700);
    const back = rec.beats.filter((x) => x.token === 'cut').pop()!.details as { refreshLeftMs: number };
    assert.equal(back.refreshLeftMs, 30_000, 'answering again: a heartbeat extends the window again');
    await w.shutdown();
  });

  test('a new slice of an attempt held here takes over the holding entry and its window', async () => {
    const rec = new Recorder();
    const b = scriptedNode();
    const w = new SuperviseWatcher({ batcher: b, completion: rec, horizonS: 60 });
    w.watch(req('n1', 34, { sliceS: 0.6 }));
    await sleep(1000);
    assert.equal(w.holding, 1);
    w.watch(req('n1', 34, { taskToken: Buffer.from('n1-next') }));
    assert.equal(w.holding, 0);
    assert.equal(w.size, 1);
    await sleep(50);
    assert.ok(b.calls[b.calls.length - 1]!.window, 'the new slice may refresh at once');
    await w.shutdown();
  });
});
