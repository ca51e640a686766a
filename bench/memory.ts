/**
 * The worker's memory profile: real sleeping tasks on real sshd nodes, the worker's VmRSS split into
 * parts that add up to it (src/workers/memory.ts, read through its metrics endpoint), at several
 * running-task counts and workflow cache sizes. Tasks are added in steps (100, then 1,000, then
 * 3,000); at each step the worker is restarted once per cache size, left to settle into its rhythm,
 * then sampled over more than one supervise slice.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startCluster, sleep, type Cluster } from '../test/helpers/cluster';
import { compileConfig } from '../src/config/config';
import { taskWorkflowInput as workflowInput } from '../src/client/tasks';
import { TASK_QUEUE } from '../src/common/constants';
import { MEMORY_PARTS, type WORKER_START } from '../src/workers/memory';
import { freePorts } from '../test/helpers/temporal';

export interface ProfilePoint {
  tasks: number;
  cache: number;
  rss_mb: number;
  /** code, main_heap, workflow_heap, external, native: they add up to rss_mb (of the same sample). */
  parts_mb: Record<(typeof MEMORY_PARTS)[number], number>;
  main_heap_used_mb: number;
  workflow_heap_used_mb: number;
  /** The SDK's own gauges at that sample: workflows in the cache, activity slots in use. */
  cached_workflows: number | null;
  activities_in_flight: number | null;
  samples: number;
  /** The worker's SSH connections to the nodes at that sample (ProfileOptions.connections). */
  ssh_connections?: number;
  /** The worker's CPU (user + system, % of one core) over the sampling window. */
  cpu_pct?: number;
  /** The variant's label (ProfileOptions.variants), when the run compared worker settings. */
  variant?: string;
  /** Seconds from the worker's restart until it had taken over the tasks and filled its cache. */
  settle_s?: number;
  /** Attempts the worker's watcher supervised at that sample. */
  supervised?: number | null;
  /** Tasks requeued (an attempt lost: fenced, vanished) while this point was measured. */
  requeued?: number;
}

/** A worker setting to compare at each count: its cache and the environment it starts with. */
export interface ProfileVariant {
  label: string;
  cache: number;
  env?: Record<string, string>;
  /** How the worker's node starts (default NODE_OWN: V8's and glibc's own settings, as the profile measures). */
  start?: typeof WORKER_START;
}

/** A worker started with no node flags and no allocator settings. */
export const NODE_OWN: typeof WORKER_START = { nodeFlags: [], env: {} };

export interface ProfileOptions {
  counts: number[];
  caches: number[];
  /** Instead of caches: the worker settings to compare at each count (in this order). */
  variants?: ProfileVariant[];
  /** Restart the worker for every point, the first too: no point is the worker that launched the tasks. */
  restartEach?: boolean;
  /**
   * fence_after for the run (default: the product's). Before the watcher held leases between slices
   * (outage_tolerance), a burst of 1,000 launches on this 2-core machine kept the workflow task that
   * starts the next slice waiting 12 minutes (longer than the default 10): live tasks fenced
   * themselves. burst_fenced measures that at the defaults.
   */
  fenceAfterS?: number;
  nodes: number;
  leaseS: number;
  sliceS: number;
  /** How long to sample once the worker has settled (default: a slice and 15 s). */
  sampleS?: number;
  log: (s: string) => void;
  /** Counts a worker process's SSH connections to the given node ports. */
  connections?: (workerPid: number, ports: Set<number>) => number;
  /** Called with every attempt lost over the whole run (fenced, vanished) and those fenced, before the cluster stops. */
  lost?: (attemptsLost: number, fenced: number) => void;
}

const mb = (b: number): number => Math.round((b / 1048576) * 10) / 10;

/** A process's CPU time so far (user + system), in seconds, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime: fields 14, 15, in clock ticks (100/s)
  } catch {
    return null;
  }
}

type Sample = { name: string; labels: Record<string, string>; value: number };

async function scrape(port: number): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const kv of (m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[kv[1]!] = kv[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}

function pick(s: Sample[], name: string, want: Record<string, string> = {}): number | null {
  const hit = s.filter((x) => x.name === name && Object.entries(want).every(([k, v]) => x.labels[k] === v));
  return hit.length ? hit.reduce((a, x) => a + x.value, 0) : null;
}

async function submit(c: Cluster, from: number, to: number): Promise<void> {
  const cfg = compileConfig(JSON.parse(readFileSync(c.configPath, 'utf8')));
  for (let i = from; i < to; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, to - i) }, (_, k) => {
        const id = `mem-${i + k}`;
        const spec = {
          id,
          project: 'mem',
          priority: 50,
          dependsOn: [],
          modifies: [],
          command: 'sleep 14400',
          specBody: null,
          executor: null,
          estimatedMinutes: null,
          maxRuntimeS: 6 * 3600,
          node: null,
        };
        return c.client.workflow.start('taskWorkflow', {
          taskQueue: TASK_QUEUE,
          workflowId: `task-${id}`,
          args: [workflowInput(spec, cfg)],
        });
      }),
    );
  }
}

async function waitRunning(c: Cluster, n: number, log: (s: string) => void): Promise<number> {
  const until = Date.now() + 30 * 60_000;
  let last = -1;
  for (;;) {
    const running = c.read((s) => s.counts('mem').running ?? 0);
    if (running >= n || Date.now() > until) return running;
    if (Math.floor(running / 500) !== Math.floor(last / 500)) log(`  ${running} of ${n} running`);
    last = running;
    await sleep(2000);
  }
}

/** Attempts lost so far (a sleeping task's attempt beyond its first: fenced, vanished; the profile wants none). */
function requeuedCount(c: Cluster): number {
  return c.read((s) => s.listTasks({ project: 'mem', limit: 1_000_000 }).reduce((a, t) => a + Math.max(0, (t.attempts ?? 1) - 1), 0));
}

/** Attempts that fenced themselves, from their nodes' own records (DIR/fenced), not the books. */
function fencedOnNodes(c: Cluster): number {
  let n = 0;
  for (const node of c.nodes) {
    for (const task of existsSync(node.workDir) ? readdirSync(node.workDir) : []) {
      const dir = path.join(node.workDir, task);
      for (const a of readdirSync(dir)) if (existsSync(path.join(dir, a, 'fenced'))) n++;
    }
  }
  return n;
}

/** Runs the profile; returns one point per (tasks, cache), in the order measured. */
export async function memoryProfile(o: ProfileOptions): Promise<ProfilePoint[]> {
  const max = Math.max(...o.counts);
  const c = await startCluster({
    nodes: o.nodes,
    slots: Math.ceil(max / o.nodes),
    reapOrphans: true,
    config: {
      lease_s: o.leaseS,
      heartbeat_record_interval: o.sliceS,
      ...(o.fenceAfterS === undefined ? {} : { fence_after: o.fenceAfterS }),
    },
  });
  const points: ProfilePoint[] = [];
  const cur: { worker: Awaited<ReturnType<Cluster['startWorker']>> | null } = { worker: null };
  let port = 0;
  let current: ProfileVariant | null = null;
  const restart = async (v: ProfileVariant): Promise<void> => {
    await cur.worker?.stop();
    const cfg = JSON.parse(readFileSync(c.configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(c.configPath, JSON.stringify({ ...cfg, max_cached_workflows: v.cache }, null, 2));
    [port] = await freePorts(1);
    // A restarted worker runs its start-up sweep before it polls: at 1,000 running tasks one printed
    // nothing for a minute here, and the helper gave up (2026-12-02).
    cur.worker = await c.startWorker(undefined, v.env ?? {}, ['--metrics', `127.0.0.1:${port}`], {
      startTimeoutMs: 600_000,
      start: v.start ?? NODE_OWN,
    });
    current = v;
  };
  try {
    let submitted = 0;
    let variants: ProfileVariant[] = o.variants ?? o.caches.map((cache) => ({ label: `cache ${cache}`, cache }));
    for (const n of o.counts) {
      if (!cur.worker) await restart(variants[0]!);
      await submit(c, submitted, n);
      submitted = n;
      const running = await waitRunning(c, n, o.log);
      for (const v of variants) {
        const cache = v.cache;
        const requeued0 = requeuedCount(c);
        if (current !== v || o.restartEach) await restart(v);
        // A restarted worker takes over every supervise activity (retried at once after the old
        // worker's shutdown, or after one lease); its retried slices end over the second half of a
        // slice, each one a workflow task that replays into the cache. Settled: it supervises nearly
        // every running task and its cache is as full as it gets (at most a lease and a slice).
        const t0Settle = Date.now();
        const settleBy = t0Settle + (o.leaseS + o.sliceS + 15) * 1000;
        const wantCached = Math.min(cache, running);
        for (;;) {
          await sleep(5000);
          const s = await scrape(port).catch(() => null);
          const supervised = s ? (pick(s, 'dispatch_worker_supervised_attempts') ?? 0) : 0;
          const cachedNow = s ? (pick(s, 'temporal_sticky_cache_size') ?? 0) : 0;
          if (supervised >= running * 0.9 && cachedNow >= wantCached * 0.9) break;
          if (Date.now() > settleBy) break;
        }
        const settleS = Math.round((Date.now() - t0Settle) / 1000);
        let best: Sample[] | null = null;
        let samples = 0;
        const wpid0 = cur.worker?.proc.pid;
        const cpu0 = wpid0 ? cpuSeconds(wpid0) : null;
        const t0 = Date.now();
        const until = Date.now() + (o.sampleS ?? o.sliceS + 15) * 1000;
        while (Date.now() < until) {
          await sleep(10_000); // the worker refreshes its memory gauges every 10 s
          const s = await scrape(port).catch(() => null);
          if (!s || pick(s, 'dispatch_worker_memory_bytes', { part: 'rss' }) === null) continue;
          samples++;
          if (
            !best ||
            pick(s, 'dispatch_worker_memory_bytes', { part: 'rss' })! > pick(best, 'dispatch_worker_memory_bytes', { part: 'rss' })!
          )
            best = s;
        }
        if (!best) throw new Error(`no memory samples from the worker's metrics at ${n} tasks, cache ${cache}`);
        const part = (p: string): number => pick(best!, 'dispatch_worker_memory_bytes', { part: p }) ?? 0;
        const point: ProfilePoint = {
          tasks: running,
          cache,
          rss_mb: mb(part('rss')),
          parts_mb: Object.fromEntries(MEMORY_PARTS.map((p) => [p, mb(part(p))])) as ProfilePoint['parts_mb'],
          main_heap_used_mb: mb(pick(best, 'dispatch_worker_heap_used_bytes', { heap: 'main' }) ?? 0),
          workflow_heap_used_mb: mb(pick(best, 'dispatch_worker_heap_used_bytes', { heap: 'workflow' }) ?? 0),
          cached_workflows: pick(best, 'temporal_sticky_cache_size'),
          activities_in_flight: pick(best, 'temporal_worker_task_slots_used', { worker_type: 'ActivityWorker', task_queue: TASK_QUEUE }),
          supervised: pick(best, 'dispatch_worker_supervised_attempts'),
          samples,
          settle_s: settleS,
          requeued: requeuedCount(c) - requeued0,
        };
        const wpid = cur.worker?.proc.pid;
        const cpu1 = wpid ? cpuSeconds(wpid) : null;
        if (cpu0 !== null && cpu1 !== null) point.cpu_pct = Math.round(((cpu1 - cpu0) / ((Date.now() - t0) / 1000)) * 1000) / 10;
        if (o.variants) point.variant = v.label;
        if (o.connections && wpid) point.ssh_connections = o.connections(wpid, new Set(c.nodes.map((x) => x.port)));
        points.push(point);
        o.log(
          `  ${running} running, ${v.label}: rss ${point.rss_mb} MB = ` +
            MEMORY_PARTS.map((p) => `${p} ${point.parts_mb[p]}`).join(' + ') +
            `; cached ${point.cached_workflows}, supervised ${point.supervised}, activities ${point.activities_in_flight}, ` +
            `cpu ${point.cpu_pct ?? '?'}%, settled in ${settleS} s, requeued ${point.requeued}`,
        );
      }
      variants = variants.reverse(); // the next step starts with the setting this one ended on
    }
    if (o.lost) o.lost(requeuedCount(c), fencedOnNodes(c));
    return points;
  } finally {
    await c.stop();
  }
}

/** Per-task and per-cached-workflow costs read off the profile (MB), by part. */
export function profileCosts(points: ProfilePoint[]): {
  per_running_task: Record<string, number> | null;
  per_cached_workflow: Record<string, number> | null;
} {
  const at = (tasks: number, cache: number) => points.find((p) => p.tasks === tasks && p.cache === cache);
  const counts = [...new Set(points.map((p) => p.tasks))].sort((a, b) => a - b);
  const caches = [...new Set(points.map((p) => p.cache))].sort((a, b) => a - b);
  const lo = counts[0]!;
  const hi = counts[counts.length - 1]!;
  const cLo = caches[0]!;
  const cHi = caches[caches.length - 1]!;
  const diff = (a: ProfilePoint | undefined, b: ProfilePoint | undefined, per: number): Record<string, number> | null => {
    if (!a || !b || per <= 0) return null;
    const out: Record<string, number> = { rss: Math.round(((b.rss_mb - a.rss_mb) / per) * 1000) / 1000 };
    for (const p of MEMORY_PARTS) out[p] = Math.round(((b.parts_mb[p] - a.parts_mb[p]) / per) * 1000) / 1000;
    return out;
  };
  // With the smallest cache, more running tasks add no cached workflows: what grows is per task.
  const perTask = diff(at(lo, cLo), at(hi, cLo), hi - lo);
  // At the largest count, the cache difference is that many more cached workflows.
  const big = at(hi, cHi);
  const small = at(hi, cLo);
  const cachedDelta = big && small ? (big.cached_workflows ?? cHi) - (small.cached_workflows ?? cLo) : 0;
  return { per_running_task: perTask, per_cached_workflow: diff(small, big, cachedDelta) };
}
