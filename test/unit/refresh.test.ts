/**
 * The refresh rule (src/activities/refresh.ts, src/shell/uptime.ts) on its own, and attacked: random
 * histories of requests, acknowledgements, late commands and a worker clock that stops (a suspended
 * host) must never let a lease refresh land on the node later than Temporal's last record of the
 * task plus the horizon, which is what the reaper counts from (src/reaper/fence.ts, docs/FENCE.md).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mayRefresh, refreshDeadlineMs } from '../../src/activities/refresh';
import { nodeRefreshLimitS, uptimeOffsetMs, UptimeSamples } from '../../src/shell/uptime';

/** A small deterministic generator (mulberry32), so a failing seed can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('refresh rule', () => {
  test('no acknowledgement, no refresh; then until the horizon after the acknowledged request was sent', () => {
    assert.equal(refreshDeadlineMs(null, 1000), null);
    assert.equal(mayRefresh(5, null, 1000), false);
    assert.equal(refreshDeadlineMs(100, 1000), 1100);
    assert.equal(mayRefresh(1099, 100, 1000), true);
    assert.equal(mayRefresh(1100, 100, 1000), false);
    assert.equal(refreshDeadlineMs(Number.NaN, 1000), null);
    assert.equal(refreshDeadlineMs(100, -1), null);
  });

  test("the node's limit: 0 without a deadline or a sample of its uptime; otherwise a second under the mapped deadline", () => {
    assert.equal(nodeRefreshLimitS(null, 0), 0);
    assert.equal(nodeRefreshLimitS(1000, null), 0);
    // The node read 500 s of uptime in an answer received at 2,000 ms here.
    const off = uptimeOffsetMs(500, 2000);
    assert.equal(off, 498_000);
    assert.equal(nodeRefreshLimitS(12_000, off), 509);
    assert.equal(nodeRefreshLimitS(0, -5000), 0, 'never a negative limit');
  });

  test('a deadline is mapped with the newest uptime sample received no later than its request was sent', () => {
    const u = new UptimeSamples(60_000, 5000);
    assert.equal(u.before(1e12), null);
    u.add(100, 1000); // offset 99,000
    u.add(101, 2000); // same window: ignored
    u.add(200, 7000); // offset 193,000: the host was suspended in between
    assert.equal(u.before(999), null);
    assert.equal(u.before(1000), null, 'a tie says nothing of which came first');
    assert.equal(u.before(7000), 99_000);
    assert.equal(u.before(7001), 193_000);
    u.add(300, 62_000); // the first sample is past retainMs now
    assert.equal(u.before(7000), null);
    assert.equal(u.before(61_999), 193_000);
  });

  test('attack: no refresh ever lands past (the latest time Temporal recorded) + horizon', () => {
    let allowed = 0;
    let savedByNode = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const H = 1000 + Math.floor(r() * 60_000); // horizon, ms
      const lead = Math.floor(r() * 1e9); // the node's uptime minus real time, ms
      // The worker's host is suspended now and then: its clock stops and it does nothing, while the
      // node and Temporal go on (clock(t) <= t); what arrives meanwhile is read on resume.
      const stops: [number, number][] = [];
      for (let t = 1000; t < 600_000;) {
        const len = r() < 0.3 ? r() * 200_000 : 0;
        if (len) stops.push([t, t + len]);
        t += len + 20_000 + r() * 100_000;
      }
      const asleep = (t: number) => stops.some(([a, b]) => t > a && t < b);
      const awake = (t: number) => stops.find(([a, b]) => t > a && t < b)?.[1] ?? t;
      const clock = (t: number) => {
        let lost = 0;
        for (const [a, b] of stops) if (t > a) lost += Math.min(t, b) - a;
        return t - lost;
      };
      let ackSent: number | null = null; // worker clock
      const samples = new UptimeSamples(H + 600_000);
      const arrived: { at: number; up: number; recvW: number }[] = [];
      let lastRecorded = -Infinity; // Temporal's clock = real time here
      const pendingAcks: { sentW: number; at: number }[] = [];
      for (let t = 0; t < 800_000; t += 50 + r() * 5000) {
        // Acknowledgements that have arrived by now move the worker's record.
        for (const p of arrived.splice(0)) {
          if (p.at <= t) samples.add(p.up, p.recvW);
          else arrived.push(p);
        }
        for (const p of pendingAcks.splice(0)) {
          if (p.at <= t) ackSent = ackSent === null ? p.sentW : Math.max(ackSent, p.sentW);
          else pendingAcks.push(p);
        }
        if (asleep(t)) continue;
        const w = clock(t);
        const what = r();
        if (what < 0.3 && t < 500_000) {
          // A heartbeat: recorded after it was sent (or lost), acknowledged after it was recorded (or lost).
          if (r() < 0.8) {
            const recordedAt = t + r() * 3000;
            lastRecorded = Math.max(lastRecorded, recordedAt);
            if (r() < 0.8) pendingAcks.push({ sentW: w, at: awake(recordedAt + r() * 100_000) });
          }
        } else if (what < 0.6) {
          // A probe answer: the node read its uptime somewhere between the send and the receipt.
          const readAt = t + r() * 2000;
          const recvAt = awake(readAt + r() * 2000);
          arrived.push({ at: recvAt, up: Math.floor((readAt + lead) / 1000), recvW: clock(recvAt) });
        } else {
          // A refresh checked now on the worker, arriving at the node after any delay (a freeze).
          const deadline = refreshDeadlineMs(ackSent, H);
          if (deadline === null || !(w < deadline)) continue;
          const limit = nodeRefreshLimitS(deadline, samples.before(ackSent!));
          const arrive = t + (r() < 0.2 ? r() * 300_000 : r() * 100);
          const nodeUp = Math.floor((arrive + lead) / 1000);
          if (!(arrive < lastRecorded + H) && !(limit > 0 && nodeUp <= limit)) savedByNode++;
          if (limit > 0 && nodeUp <= limit) {
            allowed++;
            assert.ok(
              arrive < lastRecorded + H,
              `seed ${seed}: a refresh landed at ${arrive} ms, past the last record ${lastRecorded} + horizon ${H}`,
            );
          }
        }
      }
    }
    // The attack reached both sides: refreshes went through, and late ones that the worker let go were refused by the node.
    assert.ok(allowed > 1000, `refreshes allowed: ${allowed}`);
    assert.ok(savedByNode > 10, `late refreshes refused by the node: ${savedByNode}`);
  });
});
