/**
 * `dispatch worker --metrics HOST:PORT`: one Prometheus endpoint with the SDK's worker metrics and
 * dispatch's own. Scraped during a run: the numbers move as tasks run and complete, and as a ghost is
 * reaped (by rule, with the reaper's kill and the sweep's duration).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, sleep, type Cluster } from '../helpers/cluster';
import { rawDb } from '../helpers/raw-db';
import { freePorts } from '../helpers/temporal';
import { Store } from '../../src/store/store';
import { WORKER_START } from '../../src/workers/memory';
import { readFileSync } from 'node:fs';

let c: Cluster;
let url: string;

before(async () => {
  // Slices long enough that a planted stale heartbeat is not refreshed before the reaper sees it.
  c = await startCluster({ nodes: 1, slots: 3, config: { lease_s: 3, kill_grace: 1, heartbeat_record_interval: 20 } });
  const [port] = await freePorts(1);
  url = `http://127.0.0.1:${port}/metrics`;
  await c.startWorker(undefined, {}, ['--metrics', `127.0.0.1:${port}`]);
});
after(async () => {
  await c?.stop();
});

type Sample = { name: string; labels: Record<string, string>; value: number };

async function scrape(): Promise<Sample[]> {
  const text = await (await fetch(url)).text();
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of a metric's samples whose labels include `match` (the name may carry the SDK's prefix). */
function value(samples: Sample[], name: string, match: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name || s.name.endsWith(`_${name}`))
    .filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

async function until(what: string, pred: (s: Sample[]) => boolean, timeoutMs = 60_000): Promise<Sample[]> {
  const end = Date.now() + timeoutMs;
  let last: Sample[] = [];
  while (Date.now() < end) {
    last = await scrape();
    if (pred(last)) return last;
    await sleep(500);
  }
  const ours = last.filter((s) => s.name.includes('dispatch')).map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`);
  throw new Error(`metrics: ${what} not seen; dispatch series:\n${ours.join('\n')}`);
}

describe('metrics', () => {
  test("one endpoint serves the SDK's worker metrics and dispatch's, and they move as tasks run and ghosts are reaped", async () => {
    const first = await scrape();
    assert.ok(
      first.some((s) => s.name.startsWith('temporal_')),
      'the SDK metrics are on the endpoint',
    );
    await until('the node slots', (s) => value(s, 'dispatch_node_slots', { node: 'n1', status: 'online' }) === 3);

    for (const id of ['m-1', 'm-2']) await c.cliOk(['submit', '--id', id, '--project', 'met', '--command', 'sleep 300']);
    await c.waitStatus('m-1', 'running');
    await c.waitStatus('m-2', 'running');
    await until('two running tasks, two slots used, two attempts supervised', (s) => {
      return (
        value(s, 'dispatch_tasks', { status: 'running', project: 'met' }) === 2 &&
        value(s, 'dispatch_node_slots_used', { node: 'n1' }) === 2 &&
        value(s, 'dispatch_worker_supervised_attempts') === 2
      );
    });

    // A ghost: m-1's heartbeat planted stale; one reaper run reaps it (stale-heartbeat) and kills it.
    const s = new Store(c.dbPath);
    try {
      rawDb(s).prepare(`UPDATE tasks SET last_heartbeat = '2000-01-01T00:00:00.000Z' WHERE id = 'm-1'`).run();
    } finally {
      s.close();
    }
    await c.cliOk(['reap']);
    await c.waitStatus('m-1', 'failed');
    const after = await until('the reaped ghost, its kill and the sweep', (x) => {
      return (
        value(x, 'dispatch_ghosts_reaped_total', { rule: 'stale-heartbeat' }) >= 1 &&
        value(x, 'dispatch_kills_total', { by: 'reaper' }) >= 1 &&
        value(x, 'dispatch_sweep_duration_count') >= 1 &&
        value(x, 'dispatch_tasks', { status: 'running', project: 'met' }) === 1 &&
        value(x, 'dispatch_tasks', { status: 'failed', project: 'met' }) === 1
      );
    });
    assert.equal(value(after, 'dispatch_node_slots_used', { node: 'n1' }), 1);

    await c.cliOk(['cancel', 'm-2', '--wait']);
    await until('the cancelled task and its kill', (x) => {
      return (
        value(x, 'dispatch_tasks', { status: 'cancelled', project: 'met' }) === 1 &&
        value(x, 'dispatch_tasks', { status: 'running', project: 'met' }) === 0 &&
        value(x, 'dispatch_kills_total', { by: 'task' }) >= 1
      );
    });
  });

  test("the worker's resident memory is served in parts that add up to its VmRSS", async () => {
    const parts = ['code', 'main_heap', 'workflow_heap', 'external', 'native'];
    const s = await until('the memory gauges', (x) => value(x, 'dispatch_worker_memory_bytes', { part: 'rss' }) > 0);
    const rss = value(s, 'dispatch_worker_memory_bytes', { part: 'rss' });
    const sum = parts.reduce((a, p) => a + value(s, 'dispatch_worker_memory_bytes', { part: p }), 0);
    for (const p of parts.slice(0, 4)) assert.ok(value(s, 'dispatch_worker_memory_bytes', { part: p }) > 0, `part ${p} is measured`);
    // native is the remainder, shown as 0 if the committed heaps are not all resident: never below.
    assert.ok(sum >= rss && sum - rss < rss * 0.1, `parts ${sum} add up to rss ${rss}`);
    assert.ok(value(s, 'dispatch_worker_heap_used_bytes', { heap: 'workflow' }) > 0, 'the workflow thread heap is read');
  });

  test('a bad --metrics address is refused with exit 2', async () => {
    const r = await c.cli(['worker', '--metrics', 'not an address']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--metrics: expected HOST:PORT/);
  });

  test('a bad DISPATCH_HEAP_GROWING_PERCENT is refused with exit 2 before the worker polls', async () => {
    const r = await c.cli(['worker'], { env: { DISPATCH_HEAP_GROWING_PERCENT: 'lots' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /DISPATCH_HEAP_GROWING_PERCENT: expected a whole number from 0/);
    assert.doesNotMatch(r.stdout, /dispatch worker polling/);
  });

  test('a worker started as the service units start it runs with their V8 flags; one started without them says what it lacks', async () => {
    const first = c.workers[0]!;
    const cmdline = readFileSync(`/proc/${first.proc.pid}/cmdline`, 'utf8').split('\0');
    for (const f of WORKER_START.nodeFlags) assert.ok(cmdline.includes(f), `the worker's node runs with ${f}: ${cmdline.join(' ')}`);
    assert.doesNotMatch(readFileSync(first.logFile, 'utf8'), /memory: node was started without/);
    // A second worker, on the task queue only (dispatch-db keeps its one writer), with node's own flags.
    const bare = await c.startWorker('dispatch', {}, [], { start: { nodeFlags: [], env: {} } });
    try {
      // Printed right after the polling line, which the helper waits for.
      let log = '';
      for (let i = 0; i < 100 && !/memory: node was started without/.test(log); i++) {
        await sleep(100);
        log = readFileSync(bare.logFile, 'utf8');
      }
      assert.match(log, new RegExp(`memory: node was started without ${WORKER_START.nodeFlags.join(' ')}`));
      assert.match(log, /docs\/SERVICE\.md, "Memory"/);
    } finally {
      await bare.stop();
    }
  });
});
