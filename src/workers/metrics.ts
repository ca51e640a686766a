/**
 * Metrics: one Prometheus endpoint per worker, served by the Temporal SDK's exporter, which carries
 * the SDK's own worker metrics and dispatch's, made through the SDK's metric meter. What comes from
 * dispatch.db (tasks, slots, ghosts reaped, refused stale writes, self-fenced attempts, node probe
 * failures, sweep durations) is measured by the worker that holds the file; a `--queues dispatch`
 * worker serves its SDK metrics and the kills it made. The list, with alerts: docs/METRICS.md.
 */
import type { MetricCounter, MetricGauge, MetricHistogram, MetricMeter } from '@temporalio/common';
import type { DispatchMetrics } from '../common/metrics';
import type { Store } from '../store/store';
import { MEMORY_PARTS, MemoryProbe } from './memory';

export { NO_METRICS, type DispatchMetrics } from '../common/metrics';

export function createMetrics(meter: MetricMeter): DispatchMetrics {
  const kills: MetricCounter = meter.createCounter('dispatch_kills', 'kills', 'checked kills, by outcome and by whom');
  const probes: MetricCounter = meter.createCounter('dispatch_probe_failures', 'probes', 'node probes that got no answer, by node');
  const sweeps: MetricHistogram = meter.createHistogram('dispatch_sweep_duration', 'float', 's', 'one reaper sweep, plan to books');
  return {
    kill: (outcome, by) => kills.add(1, { outcome, by }),
    probeFailure: (node) => probes.add(1, { node }),
    sweepDone: (seconds) => sweeps.record(seconds),
  };
}

/**
 * Gauges and counters read from dispatch.db every `intervalMs`. A series that disappears (a status
 * no task has any more, a removed node) is set to 0 rather than left at its last value.
 */
export function startDbMetrics(store: Store, meter: MetricMeter, intervalMs = 5000): { stop(): void; refresh(): void } {
  const tasks: MetricGauge = meter.createGauge('dispatch_tasks', 'int', 'tasks', 'tasks by status and project');
  const slots: MetricGauge = meter.createGauge('dispatch_node_slots', 'int', 'slots', 'slots of each node, with its status');
  const used: MetricGauge = meter.createGauge('dispatch_node_slots_used', 'int', 'slots', 'slots held by dispatched or running tasks');
  const reaped: MetricCounter = meter.createCounter('dispatch_ghosts_reaped', 'tasks', 'ghosts the reaper booked, by rule');
  const refused: MetricCounter = meter.createCounter(
    'dispatch_stale_writes_refused',
    'writes',
    'late writes of old attempts refused (fence_refused)',
  );
  const fenced: MetricCounter = meter.createCounter(
    'dispatch_attempts_fenced',
    'attempts',
    'attempts that stopped themselves (attempt_fenced)',
  );
  let lastEventId = 0;
  let seenTasks = new Map<string, Record<string, string>>();
  let seenNodes = new Map<string, Record<string, string>>();
  const refresh = (): void => {
    const snap = store.metricsSnapshot(lastEventId);
    const nowTasks = new Map<string, Record<string, string>>();
    for (const t of snap.tasks) {
      const tags = { status: t.status, project: t.project };
      nowTasks.set(JSON.stringify(tags), tags);
      tasks.set(t.n, tags);
    }
    for (const [k, tags] of seenTasks) if (!nowTasks.has(k)) tasks.set(0, tags);
    seenTasks = nowTasks;
    const nowNodes = new Map<string, Record<string, string>>();
    for (const n of snap.nodes) {
      const tags = { node: n.name, status: n.status ?? 'unknown' };
      nowNodes.set(JSON.stringify(tags), tags);
      slots.set(n.slots ?? 0, tags);
      used.set(n.running_count ?? 0, tags);
    }
    for (const [k, tags] of seenNodes) {
      if (nowNodes.has(k)) continue;
      slots.set(0, tags);
      used.set(0, tags);
    }
    seenNodes = nowNodes;
    for (const e of snap.events) {
      if (e.kind === 'fence_refused') refused.add(e.n);
      else if (e.kind === 'attempt_fenced') fenced.add(e.n);
      else reaped.add(e.n, { rule: e.rule ?? 'unknown', requeued: String(e.kind === 'reaped_requeued') });
    }
    lastEventId = snap.lastEventId;
  };
  refresh();
  const timer = setInterval(() => {
    try {
      refresh();
    } catch {
      /* a busy database: the next round reads it */
    }
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), refresh };
}

/**
 * `dispatch_worker_memory_bytes{part}`: the worker's resident memory in parts that add up to its
 * VmRSS (src/workers/memory.ts), plus `part="rss"` itself, read every `intervalMs`; with
 * `supervised`, `dispatch_worker_supervised_attempts` (the watcher's attempts) at the same moments.
 */
export function startMemoryMetrics(meter: MetricMeter, intervalMs = 10_000, supervised?: () => number): { stop(): void } {
  const gauge: MetricGauge = meter.createGauge('dispatch_worker_memory_bytes', 'int', 'bytes', 'worker VmRSS and its parts, by part');
  const used: MetricGauge = meter.createGauge('dispatch_worker_heap_used_bytes', 'int', 'bytes', 'used bytes of the V8 heaps, by heap');
  const attempts: MetricGauge | null = supervised
    ? meter.createGauge('dispatch_worker_supervised_attempts', 'int', 'attempts', 'attempts this worker supervises now (its watcher)')
    : null;
  const probe = new MemoryProbe();
  let busy = false;
  const refresh = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const m = await probe.read();
      gauge.set(m.rss, { part: 'rss' });
      for (const p of MEMORY_PARTS) gauge.set(Math.max(0, m[p]), { part: p });
      used.set(m.main_heap_used, { heap: 'main' });
      used.set(m.workflow_heap_used, { heap: 'workflow' });
      if (attempts && supervised) attempts.set(supervised(), {});
    } catch {
      /* the next round reads it */
    } finally {
      busy = false;
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), intervalMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      probe.close();
    },
  };
}
