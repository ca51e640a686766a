/**
 * npm run bench [-- --quick] [-- --long] [-- --only NAME,...] [-- --render]: puts figures on dispatch's promises.
 * worker_memory takes --memory-counts N,N --memory-caches N,N --memory-slice S --memory-sample S (a smaller profile).
 * Every goal is a ratio measured in the same run where there is something to compare with. Writes
 * bench/results.json and bench/RESULTS.md. Reports only: nothing here fails on a slow machine.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startCluster, sleep, type Cluster } from '../test/helpers/cluster';
import { startTemporalCluster } from '../test/helpers/temporal-cluster';
import { countRoundTrips, type RoundTrips } from '../test/helpers/round-trips';
import { startSshd, type SshNode } from '../test/helpers/sshd';
import { Store } from '../src/store/store';
import { rawDb } from '../test/helpers/raw-db';
import { compileConfig, CONFIG_DEFAULTS } from '../src/config/config';
import type { WorkflowHandle } from '@temporalio/client';
import { sweepOptions } from '../src/reaper/options';
import { applySweep, killGhosts, planSweep } from '../src/reaper/sweep';
import { ShellPool } from '../src/shell/pool';
import { SshShell } from '../src/shell/ssh';
import { killCommand, launchCommand } from '../src/shell/scripts';
import { parseKv, parseWrapperStatus } from '../src/shell/status';
import type { NodeRow } from '../src/common/types';
import { taskWorkflowInput as workflowInput } from '../src/client/tasks';
import { LAUNCH_EXIT_WAIT_MS, TASK_QUEUE } from '../src/common/constants';
import { HEAP_GROWING_PERCENT_DEFAULT, MEMORY_PARTS, WORKER_START } from '../src/workers/memory';
import { optionalTsToMs } from '@temporalio/common/lib/time';
import { memoryProfile, NODE_OWN, profileCosts, type ProfilePoint } from './memory';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const LONG = args.includes('--long');
const onlyArg = args[args.indexOf('--only') + 1];
const ONLY = args.includes('--only') && onlyArg ? onlyArg.split(',') : null;
const want = (name: string): boolean => !ONLY || ONLY.includes(name);
const argValue = (flag: string): string | undefined => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
/** `--memory-counts 100,1000`: a list of positive integers, or undefined when the flag is absent. */
function listArg(flag: string): number[] | undefined {
  const v = argValue(flag);
  if (v === undefined) return undefined;
  const xs = v.split(',').map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isSafeInteger(x) || x < 1))
    throw new Error(`${flag}: expected positive integers, got ${v}`);
  return xs;
}
const log = (s: string): void => console.log(`[bench] ${s}`);

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

type Row = { figure: string; value: number | string; goal: string; met: boolean | null; note?: string; section?: string };
const results: Record<string, unknown> = {};
/** Rows of the sections run now; each row is tagged with its section so `--only` can merge. */
const table: Row[] = [];
let currentSection = '';
const tablePush = table.push.bind(table);
table.push = (...rows: Row[]): number => tablePush(...rows.map((r) => ({ ...r, section: r.section ?? currentSection })));

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const r2 = (x: number): number => Math.round(x * 100) / 100;

function nodeRow(n: SshNode): NodeRow {
  return {
    name: n.name,
    host: n.host,
    slots: 1000,
    running_count: 0,
    kind: 'ssh',
    port: n.port,
    user: n.user,
    key_path: n.keyPath,
    known_hosts: n.knownHostsPath,
    insecure_ignore_host_key: 0,
    work_dir: n.workDir,
    status: 'online',
    last_seen_at: null,
    missed_probes: 0,
  };
}

// ---------------------------------------------------------------- sweep_scaling
async function sweepScaling(): Promise<void> {
  const sizes = QUICK ? [10_000, 100_000] : [10_000, 1_000_000];
  const times: number[] = [];
  for (const size of sizes) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-bench-sweep-'));
    const store = new Store(path.join(dir, 'dispatch.db'));
    store.addNode({
      name: 'n1',
      kind: 'ssh',
      host: 'h',
      port: 22,
      user: 'u',
      keyPath: '/k',
      knownHosts: '/kh',
      insecureIgnoreHostKey: false,
      slots: 1000,
      workDir: '/w',
    });
    const old = new Date(Date.now() - 3600_000).toISOString();
    rawDb(store).exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${size - 100})
      INSERT INTO tasks (id, project, status, node, attempts, seq, workflow_id, updated_at, finished_at, reaped_count)
      SELECT 'done-' || i, 'p', 'completed', 'n1', 1, i, 'task-done-' || i, '${old}', '${old}', 0 FROM n`);
    rawDb(store).exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
      INSERT INTO tasks (id, project, status, node, attempts, seq, workflow_id, started_at, last_heartbeat, updated_at, reaped_count, command)
      SELECT 'ghost-' || i, 'p', 'running', 'n1', 1, ${size} + i, 'task-ghost-' || i, '${old}', '${old}', '${old}', 0, 'true' FROM n`);
    rawDb(store).exec(`UPDATE nodes SET running_count = 100`);
    rawDb(store).exec('ANALYZE');
    const cfg = compileConfig({ reap_batch: 1000 });
    // Median of 5 sweeps, each over 100 fresh ghosts, so JIT warm-up does not decide the ratio.
    const runs: number[] = [];
    for (let k = 0; k < 5; k++) {
      rawDb(store).exec(
        `UPDATE tasks SET status = 'running', error = NULL, finished_at = NULL, updated_at = '${old}' WHERE id LIKE 'ghost-%'`,
      );
      rawDb(store).exec(`UPDATE nodes SET running_count = 100`);
      const t0 = process.hrtime.bigint();
      const plan = await planSweep(store, sweepOptions(cfg), async (ids) => new Map(ids.map((i) => [i, 'open' as const])));
      const rep = applySweep(store, plan, {});
      runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (rep.cleaned.length !== 100) throw new Error(`sweep cleaned ${rep.cleaned.length} of 100`);
    }
    const ms = pct(runs, 50);
    times.push(ms);
    log(`sweep over ${size} rows: ${r2(ms)} ms (100 ghosts cleaned)`);
    store.close();
  }
  const ratio = times[1]! / times[0]!;
  results.sweep_scaling = { rows: sizes, db_ms: times.map(r2), ratio: r2(ratio) };
  table.push({
    figure: `sweep_scaling (${sizes[1]} / ${sizes[0]} rows)`,
    value: r2(ratio),
    goal: '<= 2',
    met: ratio <= 2,
    note: `${r2(times[0]!)} ms vs ${r2(times[1]!)} ms`,
  });
}

// ---------------------------------------------------------------- sqlite_busy_errors
async function busyErrors(): Promise<void> {
  const seconds = QUICK ? 20 : LONG ? 600 : 120;
  const writers = LONG ? 10 : 5;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-bench-busy-'));
  const dbPath = path.join(dir, 'dispatch.db');
  const s = new Store(dbPath);
  s.addNode({
    name: 'n1',
    kind: 'ssh',
    host: 'h',
    port: 22,
    user: 'u',
    keyPath: '/k',
    knownHosts: '/kh',
    insecureIgnoreHostKey: false,
    slots: 8,
    workDir: '/w',
  });
  s.close();
  const outs = await Promise.all(
    Array.from(
      { length: writers },
      (_, k) =>
        new Promise<{ writes: number; busy: number; other: number }>((resolve, reject) => {
          const p = spawn(process.execPath, [path.join(__dirname, 'writer.js'), dbPath, String(k), String(seconds)]);
          let out = '';
          p.stdout.on('data', (b) => (out += b));
          p.stderr.on('data', (b) => process.stderr.write(b));
          p.on('close', () => {
            try {
              resolve(JSON.parse(out));
            } catch (e) {
              reject(e);
            }
          });
        }),
    ),
  );
  const busy = outs.reduce((a, o) => a + o.busy, 0);
  const writes = outs.reduce((a, o) => a + o.writes, 0);
  const other = outs.reduce((a, o) => a + o.other, 0);
  results.sqlite_busy_errors = { writers, seconds, writes, busy, other_errors: other };
  log(`${writers} writers for ${seconds}s: ${writes} writes, ${busy} busy errors, ${other} other errors`);
  table.push({
    figure: `sqlite_busy_errors (${writers} procs, ${seconds}s)`,
    value: busy,
    goal: '0',
    met: busy === 0,
    note: `${writes} writes, ${other} other errors`,
  });
}

// ---------------------------------------------------------------- recovery_ratio
async function recovery(): Promise<void> {
  const lease = 5;
  const c = await startCluster({ nodes: 1, slots: 4, config: { lease_s: lease, heartbeat_record_interval: 5, kill_grace: 1 } });
  try {
    let w = await c.startWorker();
    const samples: number[] = [];
    for (let k = 0; k < (QUICK ? 1 : 3); k++) {
      const id = `rec-${k}`;
      await c.cliOk(['submit', '--id', id, '--command', 'sleep 120']);
      await c.waitStatus(id, 'running');
      await sleep(1500);
      const h = c.client.workflow.getHandle(`task-${id}`);
      const killedAt = Date.now();
      w.kill9();
      w = await c.startWorker();
      let at: number | null = null;
      while (Date.now() - killedAt < 60_000 && at === null) {
        const d = await h.describe();
        const pa = d.raw.pendingActivities?.find((a) => a.activityType?.name === 'supervise');
        const hb = optionalTsToMs(pa?.lastHeartbeatTime) ?? 0;
        if (pa && Number(pa.attempt) > 1 && hb > killedAt) at = hb;
        else await sleep(100);
      }
      if (at === null) throw new Error('no re-attached heartbeat within 60 s');
      samples.push((at - killedAt) / 1000);
      log(`worker SIGKILL -> re-attached heartbeat: ${r2((at - killedAt) / 1000)} s (heartbeat timeout ${lease} s)`);
      await c.cliOk(['cancel', id, '--wait']);
    }
    const med = pct(samples, 50);
    results.recovery_ratio = {
      heartbeat_timeout_s: lease,
      seconds: samples.map(r2),
      ratio_median: r2(med / lease),
      ratio_max: r2(Math.max(...samples) / lease),
    };
    table.push({
      figure: 'recovery_ratio (median)',
      value: r2(med / lease),
      goal: '<= 1.5',
      met: med / lease <= 1.5,
      note: `${samples.map(r2).join(', ')} s / ${lease} s timeout`,
    });
  } finally {
    await c.stop();
  }
}

// ---------------------------------------------------------------- burst_fenced
/**
 * 1,000 submissions at once on the bench's 10 nodes with the product's defaults (fence_after,
 * outage_tolerance, lease, slice): how many live attempts fenced themselves while the server worked
 * through the burst (before outage_tolerance, 163 did here). Counted from the nodes' own records.
 */
async function burstFenced(): Promise<void> {
  const n = QUICK ? 100 : 1000;
  let lost = 0;
  let fenced = 0;
  await memoryProfile({
    counts: [n],
    caches: [CONFIG_DEFAULTS.max_cached_workflows],
    variants: [{ label: 'defaults', cache: CONFIG_DEFAULTS.max_cached_workflows, start: WORKER_START }],
    nodes: QUICK ? 2 : 10,
    leaseS: CONFIG_DEFAULTS.lease_s,
    sliceS: CONFIG_DEFAULTS.heartbeat_record_interval,
    sampleS: QUICK ? 30 : 300,
    log,
    lost: (l, f) => {
      lost = l;
      fenced = f;
    },
  });
  results.burst_fenced = { tasks: n, fenced, attempts_lost: lost };
  table.push({
    figure: `burst_fenced (${n} submissions, defaults)`,
    value: fenced,
    goal: '0',
    met: fenced === 0,
    note: `${lost} attempts lost in all (fenced or vanished), counted after the burst ran and 5 more minutes`,
  });
}

// ---------------------------------------------------------------- frozen_takeover_ratio
/**
 * A worker frozen (SIGSTOP) beside a live one: how long until the live one heartbeats the frozen
 * one's slice, over lease_s. The supervise attempt at takeover says why it took that long: each
 * attempt before it is a retry that Temporal handed to one of the frozen worker's open polls.
 */
async function frozenTakeover(): Promise<void> {
  const lease = 5;
  const c = await startCluster({ nodes: 1, slots: 4, config: { lease_s: lease, heartbeat_record_interval: 30, kill_grace: 1 } });
  try {
    await c.startWorker('dispatch-db');
    const a = await c.startWorker('dispatch');
    const b = await c.startWorker('dispatch');
    const samples: number[] = [];
    const attempts: number[] = [];
    for (let k = 0; k < (QUICK ? 1 : 3); k++) {
      const id = `frozen-${k}`;
      await c.cliOk(['submit', '--id', id, '--command', 'sleep 300']);
      await c.waitStatus(id, 'running');
      await sleep(2000);
      const h = c.client.workflow.getHandle(`task-${id}`);
      const slice = async () => (await h.describe()).raw.pendingActivities?.find((x) => x.activityType?.name === 'supervise');
      const who = (await slice())?.lastWorkerIdentity ?? '';
      const frozen = [a, b].find((w) => who.startsWith(`${w.proc.pid}@`));
      if (!frozen) throw new Error(`the supervising worker ${who} is not one of the bench's`);
      frozen.proc.kill('SIGSTOP');
      const frozenAt = Date.now();
      let at: number | null = null;
      let attempt = 0;
      try {
        while (Date.now() - frozenAt < 180_000 && at === null) {
          const pa = await slice();
          const hb = optionalTsToMs(pa?.lastHeartbeatTime) ?? 0;
          if (pa && pa.lastWorkerIdentity !== who && hb > frozenAt) {
            at = hb;
            attempt = Number(pa.attempt);
          } else await sleep(100);
        }
      } finally {
        frozen.proc.kill('SIGCONT');
      }
      if (at === null) throw new Error('no heartbeat from the live worker within 180 s');
      samples.push((at - frozenAt) / 1000);
      attempts.push(attempt);
      log(`worker SIGSTOP -> live worker's heartbeat: ${r2((at - frozenAt) / 1000)} s (lease ${lease} s; supervise attempt ${attempt})`);
      await c.cliOk(['cancel', id, '--wait']);
    }
    const med = pct(samples, 50);
    results.frozen_takeover_ratio = {
      lease_s: lease,
      seconds: samples.map(r2),
      attempts_at_takeover: attempts,
      ratio_median: r2(med / lease),
    };
    table.push({
      figure: 'frozen_takeover_ratio (median)',
      value: r2(med / lease),
      goal: '<= 1.5',
      met: med / lease <= 1.5,
      note: `${samples.map(r2).join(', ')} s / ${lease} s lease; supervise attempt at takeover ${attempts.join(', ')}`,
    });
  } finally {
    await c.stop();
  }
}

// ---------------------------------------------------------------- throughput
function taskSpec(id: string, project: string, command: string) {
  return {
    id,
    project,
    priority: 50,
    dependsOn: [],
    modifies: [],
    command,
    specBody: null,
    executor: null,
    estimatedMinutes: null,
    maxRuntimeS: 600,
    node: null,
  };
}

type Rounds = { ratios: number[]; tasks_per_s: number[]; empty_per_s: number[]; latency: number[]; firstWave: number[] };

/**
 * Interleaved rounds on one cluster: N empty workflows started at once and awaited, then N short
 * tasks started at once and awaited (all completed), then again. The ratio of each round compares
 * the two sides measured moments apart, on the same number of workflows.
 */
async function throughputRounds(c: Cluster, n: number, rounds: number, label: string): Promise<Rounds> {
  const cfg = compileConfig(JSON.parse(readFileSync(c.configPath, 'utf8')));
  const out: Rounds = { ratios: [], tasks_per_s: [], empty_per_s: [], latency: [], firstWave: [] };
  for (let r = 0; r < rounds; r++) {
    const e0 = Date.now();
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        c.client.workflow.execute('emptyWorkflow', { taskQueue: TASK_QUEUE, workflowId: `empty-${label}-${r}-${i}-${e0}` }),
      ),
    );
    const emptyRate = n / ((Date.now() - e0) / 1000);
    const project = `tp${label}${r}`;
    const submitted = new Map<string, number>();
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const id = `${project}-${i}`;
        submitted.set(id, Date.now());
        await c.client.workflow.start('taskWorkflow', {
          taskQueue: TASK_QUEUE,
          workflowId: `task-${id}`,
          args: [workflowInput(taskSpec(id, project, 'true'), cfg)],
        });
      }),
    );
    while (Date.now() - t0 < 30 * 60_000) {
      if ((c.read((s) => s.counts(project).completed ?? 0) ?? 0) >= n) break;
      await sleep(100);
    }
    const rows = c.read((s) => s.listTasks({ project }));
    const end = Math.max(...rows.map((x) => Date.parse(x.finished_at ?? '') || 0));
    const rate = n / ((end - t0) / 1000);
    const lat = rows.filter((x) => x.started_at).map((x) => Date.parse(x.started_at!) - submitted.get(x.id)!);
    out.ratios.push(rate / emptyRate);
    out.tasks_per_s.push(rate);
    out.empty_per_s.push(emptyRate);
    out.latency.push(...lat);
    out.firstWave.push(...[...lat].sort((x, y) => x - y).slice(0, 32));
    log(`${label} round ${r + 1}: ${n} empty workflows ${r2(emptyRate)}/s, ${n} tasks ${r2(rate)}/s, ratio ${r2(rate / emptyRate)}`);
  }
  return out;
}

/** Idle dispatch latency: one task at a time, submit -> row running (started_at); with where it went. */
async function idleLatency(
  c: Cluster,
  samples: number,
  command: string,
  prefix: string,
): Promise<{ ms: number[]; path: Record<string, number> }> {
  const cfg = compileConfig(JSON.parse(readFileSync(c.configPath, 'utf8')));
  const idle: number[] = [];
  const segs: Record<string, number[]> = {};
  for (let i = 0; i < samples; i++) {
    const id = `${prefix}-${i}`;
    const t = Date.now();
    const h = await c.client.workflow.start('taskWorkflow', {
      taskQueue: TASK_QUEUE,
      workflowId: `task-${id}`,
      args: [workflowInput(taskSpec(id, prefix, command), cfg)],
    });
    await h.result();
    const row = c.read((st) => st.getTask(id))!;
    const startedAt = Date.parse(row.started_at!);
    idle.push(startedAt - t);
    const events = (await h.fetchHistory()).events ?? [];
    for (const [k, v] of Object.entries(idleSegments(events, t, startedAt))) (segs[k] ??= []).push(v);
  }
  return { ms: idle, path: Object.fromEntries(Object.entries(segs).map(([k, v]) => [k, median(v)])) };
}

const evMs = (e: HistoryEvent | undefined): number => {
  const t = e?.eventTime;
  return t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : NaN;
};

/**
 * Where an idle task's time to running went, from its history (server clock, this machine): the
 * start and the first workflow task, the register activity, the workflow task that runs the local
 * launch, and the activity that books the row running (mark running, or finishLaunched).
 */
function idleSegments(events: HistoryEvent[], submitMs: number, startedAtMs: number): Record<string, number> {
  const wftStarted = events.filter((e) => e.workflowTaskStartedEventAttributes);
  const wftDone = events.filter((e) => e.workflowTaskCompletedEventAttributes);
  const sched = events.filter((e) => e.activityTaskScheduledEventAttributes);
  const nameOf = (e: HistoryEvent) => e.activityTaskScheduledEventAttributes!.activityType!.name;
  const reg = sched.find((e) => nameOf(e) === 'registerTask');
  const book = sched.find((e) => nameOf(e) === 'finishLaunched' || nameOf(e) === 'markRunning');
  const regDone = events.find(
    (e) =>
      e.activityTaskCompletedEventAttributes && String(e.activityTaskCompletedEventAttributes.scheduledEventId) === String(reg?.eventId),
  );
  const bookStarted = events.find(
    (e) => e.activityTaskStartedEventAttributes && String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(book?.eventId),
  );
  const out = {
    'submit -> first workflow task started': evMs(wftStarted[0]) - submitMs,
    'first workflow task': evMs(wftDone[0]) - evMs(wftStarted[0]),
    'register activity (scheduled -> completed)': evMs(regDone) - evMs(reg),
    'workflow task with the local launch (register completed -> launch done)': evMs(book) - evMs(regDone),
    'booking activity dispatch (scheduled -> started)': evMs(bookStarted) - evMs(book),
    'booking activity until started_at': startedAtMs - evMs(bookStarted),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => Number.isFinite(v)));
}

/** Workflow and activity tasks of the first short task of a project, from its history. */
async function roundTripsOf(c: Cluster, id: string): Promise<RoundTrips> {
  // Once the run has closed: its row is booked by an activity, before the last workflow task.
  const handle = c.client.workflow.getHandle(`task-${id}`);
  await handle.result().catch(() => undefined);
  const h = await handle.fetchHistory();
  return countRoundTrips(h.events ?? []);
}

const median = (xs: number[]): number => pct(xs, 50);
const spread = (xs: number[]): [number, number] => [r2(Math.min(...xs)), r2(Math.max(...xs))];

/**
 * Idle dispatch latency by how node starts the worker: node's own settings against WORKER_START, in
 * interleaved rounds, each a fresh worker (warmed up) on the same server and nodes. Says whether the
 * memory flags cost latency.
 */
async function idleLatencyByStart(): Promise<void> {
  const rounds = QUICK ? 2 : 3;
  const samples = QUICK ? 8 : 15;
  const starts: [string, typeof WORKER_START][] = [
    ["node's own", NODE_OWN],
    ['WORKER_START', WORKER_START],
  ];
  const c = await startCluster({ nodes: 2, slots: 16, config: { lease_s: 10, heartbeat_record_interval: 10 } });
  const p50s: Record<string, number[]> = Object.fromEntries(starts.map(([k]) => [k, []]));
  const all: Record<string, number[]> = Object.fromEntries(starts.map(([k]) => [k, []]));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const [k, start] of starts) {
        const w = await c.startWorker(undefined, {}, [], { start });
        try {
          const tag = `ls${r}${k === 'WORKER_START' ? 'w' : 'n'}`;
          await idleLatency(c, 3, 'true', `${tag}warm`);
          const run = await idleLatency(c, samples, 'true', tag);
          p50s[k]!.push(median(run.ms));
          all[k]!.push(...run.ms);
          log(`idle latency, round ${r + 1}, ${k}: p50 ${median(run.ms)} ms`);
        } finally {
          await w.stop();
        }
      }
    }
  } finally {
    await c.stop();
  }
  results.idle_latency_by_start = {
    rounds,
    samples_per_round: samples,
    round_p50_ms: p50s,
    p50_ms: Object.fromEntries(starts.map(([k]) => [k, median(all[k]!)])),
    worker_start: WORKER_START,
  };
  const [own, ws] = [median(all["node's own"]!), median(all.WORKER_START!)];
  table.push({
    figure: `dispatch latency p50, idle, by worker start (${rounds} interleaved rounds of ${samples})`,
    value: `${ws} ms`,
    goal: '-',
    met: null,
    note: `started as the units start it (WORKER_START) ${ws} ms, rounds ${p50s.WORKER_START!.join(', ')}; node's own settings ${own} ms, rounds ${p50s["node's own"]!.join(', ')}`,
  });
}

async function throughput(): Promise<void> {
  const n = QUICK ? 100 : 200;
  const rounds = QUICK ? 3 : 5;
  const c = await startCluster({ nodes: 2, slots: 16, config: { lease_s: 10, heartbeat_record_interval: 10 } });
  try {
    await c.startWorker();
    // Warm-up: the first workflows pay for connections and the code cache on both sides.
    await throughputRounds(c, 20, 1, 'warm');
    const idleRun = await idleLatency(c, QUICK ? 10 : 20, 'true', 'idle');
    const idleLongRun = await idleLatency(c, QUICK ? 5 : 10, 'sleep 1', 'idlelong');
    const idle = idleRun.ms;
    const idleLong = idleLongRun.ms;
    log(`idle path (medians, ms): ${JSON.stringify(idleRun.path)}; a 1 s task: ${JSON.stringify(idleLongRun.path)}`);
    log(`idle dispatch latency (submit -> running, one at a time): p50 ${median(idle)} ms; a 1 s task: p50 ${median(idleLong)} ms`);
    const tp = await throughputRounds(c, n, rounds, 'dev');
    const short = await roundTripsOf(c, 'idle-0');
    const long = await roundTripsOf(c, 'idlelong-0');
    const ratio = median(tp.ratios);
    const p50 = pct(tp.latency, 50);
    results.throughput = {
      max_cached_workflows: CONFIG_DEFAULTS.max_cached_workflows,
      tasks_per_round: n,
      rounds,
      slots: 32,
      tasks_per_s: tp.tasks_per_s.map(r2),
      empty_workflows_per_s: tp.empty_per_s.map(r2),
      throughput_ratio: r2(ratio),
      throughput_ratio_rounds: tp.ratios.map(r2),
      throughput_ratio_spread: spread(tp.ratios),
      dispatch_latency_ms: {
        p50,
        p99: pct(tp.latency, 99),
        first_32_median: median(tp.firstWave),
        idle_p50: median(idle),
        idle_samples: idle,
        idle_1s_task_p50: median(idleLong),
        idle_1s_task_samples: idleLong,
        idle_path_medians_ms: idleRun.path,
        idle_1s_task_path_medians_ms: idleLongRun.path,
      },
    };
    results.round_trips_per_task = {
      short: short,
      one_second: long,
      // The design's floor: a task is registered and booked on the dispatch-db queue (the one writer
      // of dispatch.db) and launched on a node, so a task that ends at once needs the register and
      // one booking activity, and the three workflow tasks around them.
      floor_short: { workflow_tasks: 3, activity_tasks: 2, local_activities: 1 },
    };
    table.push({
      figure: `throughput (${rounds} rounds of ${n} tasks, 2x16 slots)`,
      value: `${r2(median(tp.tasks_per_s))} tasks/s`,
      goal: '-',
      met: null,
      note: `empty workflows ${r2(median(tp.empty_per_s))}/s (medians)`,
    });
    table.push({
      figure: 'throughput_ratio (median of interleaved rounds)',
      value: r2(ratio),
      goal: '>= 0.25',
      met: ratio >= 0.25,
      note: `rounds ${tp.ratios.map(r2).join(', ')}; spread ${spread(tp.ratios).join('-')}`,
    });
    table.push({
      figure: 'dispatch latency p50, idle (one task at a time)',
      value: `${median(idle)} ms`,
      goal: '<= 150 ms',
      met: median(idle) <= 150,
      note: `${idle.length} tasks; max ${Math.max(...idle)} ms; a 1 s task (marked running by its own step): p50 ${median(idleLong)} ms`,
    });
    table.push({
      figure: 'dispatch latency p50 under load (submit -> running)',
      value: `${p50} ms`,
      goal: '-',
      met: null,
      note: `${n} tasks at once on 32 slots: queueing by construction; first 32 median ${median(tp.firstWave)} ms`,
    });
    const rt = (x: RoundTrips): string =>
      `${x.workflow_tasks} workflow + ${x.activity_tasks} activity tasks (+${x.local_activities} local)`;
    table.push({
      figure: 'round_trips_per_task (a task that ends at once)',
      value: short.workflow_tasks + short.activity_tasks,
      goal: '= floor 5',
      met: short.workflow_tasks + short.activity_tasks <= 5,
      note: `${rt(short)}; a 1 s task: ${rt(long)}`,
    });
  } finally {
    await c.stop();
  }
}

/** The same interleaved rounds on the PostgreSQL-backed, mTLS cluster (scripts/temporal-cluster.sh). */
async function throughputCluster(): Promise<void> {
  const n = QUICK ? 100 : 200;
  const rounds = QUICK ? 3 : 5;
  const tc = await startTemporalCluster();
  try {
    const c = await startCluster({
      nodes: 2,
      slots: 16,
      temporal: tc.server,
      profile: 'cluster',
      env: tc.env,
      config: { lease_s: 10, heartbeat_record_interval: 10 },
    });
    try {
      await c.startWorker();
      await throughputRounds(c, 20, 1, 'warm');
      const tp = await throughputRounds(c, n, rounds, 'pg');
      const ratio = median(tp.ratios);
      results.throughput_cluster = {
        max_cached_workflows: CONFIG_DEFAULTS.max_cached_workflows,
        tasks_per_round: n,
        rounds,
        tasks_per_s: tp.tasks_per_s.map(r2),
        empty_workflows_per_s: tp.empty_per_s.map(r2),
        throughput_ratio_cluster: r2(ratio),
        throughput_ratio_rounds: tp.ratios.map(r2),
        throughput_ratio_spread: spread(tp.ratios),
      };
      table.push({
        figure: 'throughput_ratio_cluster (PostgreSQL, 2 servers, mTLS)',
        value: r2(ratio),
        goal: '>= 0.25',
        met: ratio >= 0.25,
        note: `rounds ${tp.ratios.map(r2).join(', ')}; tasks ${r2(median(tp.tasks_per_s))}/s, empty ${r2(median(tp.empty_per_s))}/s (medians)`,
      });
    } finally {
      await c.stop();
    }
  } finally {
    tc.stop();
  }
}

// ---------------------------------------------------------------- mass_cleanup
async function launchGhosts(
  nodes: SshNode[],
  pool: ShellPool,
  count: number,
  tag: string,
): Promise<{ node: SshNode; id: string; pid: number; starttime: string; bootId: string; dir: string }[]> {
  const out: { node: SshNode; id: string; pid: number; starttime: string; bootId: string; dir: string }[] = [];
  await Promise.all(
    nodes.map(async (n, k) => {
      const shell = pool.get(nodeRow(n));
      const mine = Array.from({ length: Math.ceil(count / nodes.length) }, (_, i) => `${tag}-${k}-${i}`).slice(
        0,
        Math.max(0, count - k * Math.ceil(count / nodes.length)),
      );
      await Promise.all(
        mine.map(async (id) => {
          const dir = `${n.workDir}/${id}/attempt-1`;
          const r = await shell.exec(launchCommand(dir, id, 1, 'exec sleep 600', false));
          const st = parseWrapperStatus(parseKv(r.stdout).get('status') ?? '');
          if (!st) throw new Error(`launch failed: ${r.stdout} ${r.stderr}`);
          out.push({ node: n, id, pid: st.pid, starttime: st.starttime, bootId: st.bootId, dir });
        }),
      );
    }),
  );
  return out;
}

async function massCleanup(): Promise<void> {
  const nNodes = QUICK ? 3 : 10;
  const nGhosts = QUICK ? 100 : 1000;
  const base = mkdtempSync(path.join(os.tmpdir(), 'dispatch-bench-mass-'));
  const nodes: SshNode[] = [];
  for (let i = 1; i <= nNodes; i++) nodes.push(await startSshd(`m${i}`, { baseDir: base, clientKeyDir: base }));
  const launcher = new ShellPool();
  try {
    // Batched: the reaper's own sweep over rows pointing at real processes.
    const ghosts = await launchGhosts(nodes, launcher, nGhosts, 'g');
    log(`launched ${ghosts.length} ghost processes on ${nNodes} nodes`);
    const store = new Store(path.join(base, 'dispatch.db'));
    for (const n of nodes)
      store.addNode({
        name: n.name,
        kind: 'ssh',
        host: n.host,
        port: n.port,
        user: n.user,
        keyPath: n.keyPath,
        knownHosts: n.knownHostsPath,
        insecureIgnoreHostKey: false,
        slots: 1000,
        workDir: n.workDir,
      });
    const old = new Date(Date.now() - 3600_000).toISOString();
    const ins = rawDb(store)
      .prepare(`INSERT INTO tasks (id, project, status, node, pid, proc_starttime, boot_id, run_dir, attempts, seq, workflow_id, started_at, last_heartbeat, updated_at, reaped_count, command)
      VALUES (?, 'mass', 'running', ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, 0, 'sleep')`);
    rawDb(store).transaction(() =>
      ghosts.forEach((g, i) => ins.run(g.id, g.node.name, g.pid, g.starttime, g.bootId, g.dir, i + 1, `task-${g.id}`, old, old, old)),
    )();
    store.reconcileSlots();
    const cfg = compileConfig({ reap_batch: nGhosts, kill_grace: 5 });
    const pool = new ShellPool();
    const t0 = Date.now();
    const plan = await planSweep(store, sweepOptions(cfg));
    const kills = await killGhosts(pool, plan);
    const rep = applySweep(store, plan, kills);
    const batchedS = (Date.now() - t0) / 1000;
    const sessions = pool.stats().sessions;
    const connections = pool.stats().connections;
    const killed = Object.values(kills).filter((k) => /^killed-/.test(k.outcome)).length;
    log(
      `batched: ${rep.cleaned.length} cleaned, ${killed} killed in ${r2(batchedS)} s with ${sessions} SSH sessions over ${connections} connections`,
    );
    pool.closeAll();
    store.close();

    // Naive (the seeds' way): one SSH connection and one kill per ghost.
    const naiveGhosts = await launchGhosts(nodes, launcher, nGhosts, 'h');
    const t1 = Date.now();
    let naiveSessions = 0;
    const queue = [...naiveGhosts];
    await Promise.all(
      Array.from({ length: nNodes * 2 }, async () => {
        for (let g = queue.shift(); g; g = queue.shift()) {
          const sh = new SshShell({
            name: g.node.name,
            host: g.node.host,
            port: g.node.port,
            user: g.node.user,
            keyPath: g.node.keyPath,
            knownHostsPath: g.node.knownHostsPath,
            insecureIgnoreHostKey: false,
          });
          await sh.exec(killCommand(g.bootId, 5, [{ pid: g.pid, starttime: g.starttime }]));
          naiveSessions += sh.sessionsOpened;
          sh.close();
        }
      }),
    );
    const naiveS = (Date.now() - t1) / 1000;
    log(`naive: ${naiveGhosts.length} kills in ${r2(naiveS)} s with ${naiveSessions} SSH connections`);
    const speedup = naiveS / batchedS;
    results.mass_cleanup = {
      ghosts: nGhosts,
      nodes: nNodes,
      batched_s: r2(batchedS),
      sessions,
      connections,
      naive_s: r2(naiveS),
      naive_sessions: naiveSessions,
      mass_cleanup_speedup: r2(speedup),
      reap_batch: nGhosts,
    };
    table.push({
      figure: `mass_cleanup sessions (${nGhosts} ghosts, ${nNodes} nodes)`,
      value: sessions,
      goal: '<= 10',
      met: sessions <= 10,
      note: `${r2(batchedS)} s; TASK_REAP_BATCH=${nGhosts}`,
    });
    table.push({
      figure: 'mass_cleanup_speedup (naive / batched)',
      value: r2(speedup),
      goal: '>= 20',
      met: speedup >= 20,
      note: `naive ${r2(naiveS)} s, ${naiveSessions} connections`,
    });
  } finally {
    launcher.closeAll();
    for (const n of nodes) await n.stop();
  }
}

// ---------------------------------------------------------------- worker_rss_mb_1000
function sshConnectionsOf(pid: number, ports: Set<number>): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* fd closed meanwhile */
    }
  }
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const port = parseInt(f[2]!.split(':')[1]!, 16);
    if (f[3] === '01' && ports.has(port) && inodes.has(f[9]!)) n++;
  }
  return n;
}

/**
 * The memory profile (bench/memory.ts), whose default-cache points are the worker_rss_mb goals: 1,000
 * running tasks over 10 nodes, and 3,000 (worker_rss_mb_3000). Quick: 50 and 100 over 2 nodes.
 */
async function workerMemory(): Promise<void> {
  const cacheDefault = CONFIG_DEFAULTS.max_cached_workflows;
  const points = await memoryProfile({
    counts: listArg('--memory-counts') ?? (QUICK ? [50, 100] : [100, 1000, 3000]),
    caches: listArg('--memory-caches') ?? [...new Set(QUICK ? [10, 250, cacheDefault] : [10, 50, 250, cacheDefault])],
    nodes: QUICK ? 2 : 10,
    leaseS: QUICK ? 10 : 30,
    // Each slice end is two workflow tasks, a full replay for an evicted workflow: 1,000 tasks at
    // 60 s slices, or 3,000 at 30 s, overran this 2-core machine (tasks waited minutes for their
    // next workflow task, and their fences fell). The full profile runs at the default slice.
    sliceS: Number(argValue('--memory-slice')) || (QUICK ? 20 : CONFIG_DEFAULTS.heartbeat_record_interval),
    sampleS: Number(argValue('--memory-sample')) || (QUICK ? 30 : 60),
    fenceAfterS: QUICK ? undefined : PROFILE_FENCE_AFTER_S,
    log,
    connections: sshConnectionsOf,
  });
  const costs = profileCosts(points);
  results.memory_profile = {
    points,
    ...costs,
    heap_growing_percent: Number(process.env.DISPATCH_HEAP_GROWING_PERCENT || HEAP_GROWING_PERCENT_DEFAULT),
  };
  for (const p of points) {
    table.push({
      figure: `memory: ${p.tasks} running, cache ${p.cache}`,
      value: `${p.rss_mb} MB`,
      goal: '-',
      met: null,
      note:
        `${MEMORY_PARTS.map((k) => `${k} ${p.parts_mb[k]}`).join(', ')}; cached ${p.cached_workflows ?? '?'}, ` +
        `supervised ${p.supervised ?? '?'}, activities ${p.activities_in_flight ?? '?'}; worker cpu ${p.cpu_pct ?? '?'}%` +
        (p.requeued ? `; ${p.requeued} attempts lost meanwhile` : ''),
    });
  }
  const at = (n: number) => points.find((p) => p.cache === cacheDefault && p.tasks >= n * 0.98 && p.tasks <= n);
  const goals: [number, number, string][] = QUICK
    ? [[100, 300, 'worker_rss_mb_1000']]
    : [
        [1000, 300, 'worker_rss_mb_1000'],
        [3000, 700, 'worker_rss_mb_3000'],
      ];
  for (const [n, goal, key] of goals) {
    const p = at(n);
    if (!p) {
      const figure = `${key === 'worker_rss_mb_3000' ? 'worker_rss_mb_3000' : 'worker_rss_mb'} (${n} running tasks)`;
      table.push({ figure, value: 'not measured', goal: `<= ${goal}`, met: false, note: 'not in this run (--memory-counts)' });
      continue;
    }
    results[key] = { tasks: p.tasks, rss_mb_max: p.rss_mb, cache: p.cache, nodes: QUICK ? 2 : 10 };
    table.push({
      figure: `${key === 'worker_rss_mb_3000' ? 'worker_rss_mb_3000' : 'worker_rss_mb'} (${p.tasks} running tasks)`,
      value: p.rss_mb,
      goal: `<= ${goal}`,
      met: p.rss_mb <= goal,
    });
  }
  const last = points[points.length - 1];
  if (last?.ssh_connections !== undefined) {
    const nodes = QUICK ? 2 : 10;
    table.push({
      figure: 'worker SSH connections',
      value: last.ssh_connections,
      goal: `= ${nodes} nodes`,
      met: last.ssh_connections === nodes,
    });
  }
}

/**
 * fence_after of the full memory runs (30 minutes): a burst of 1,000 launches here delays the workflow
 * task between two supervise slices past the default 10 minutes, which fences live tasks (bench/memory.ts).
 */
const PROFILE_FENCE_AFTER_S = 1800;

/** A worker setting compared by worker_memory_heap: its cache, heap growing factor and glibc arenas. */
interface HeapVariant {
  label: string;
  cache: number;
  heap_growing_percent: number;
  /** MALLOC_ARENA_MAX in the worker's environment (null: glibc's own, 8 per core). */
  malloc_arena_max: number | null;
  /** V8's largest young-generation semi-space in MB (--max-semi-space-size; null: V8's own, 16 on 64-bit). */
  semi_space_mb: number | null;
  /** How the service units, `npm run dev` and the tests start the worker (WORKER_START), at the default cache. */
  default: boolean;
}

/** The node flags and environment that start a worker with these settings. */
function startOf(x: Pick<HeapVariant, 'heap_growing_percent' | 'malloc_arena_max' | 'semi_space_mb'>): typeof WORKER_START {
  return {
    nodeFlags: [
      ...(x.semi_space_mb === null ? [] : [`--max-semi-space-size=${x.semi_space_mb}`]),
      ...(x.heap_growing_percent === 0 ? [] : [`--heap-growing-percent=${x.heap_growing_percent}`]),
    ],
    env: x.malloc_arena_max === null ? {} : { MALLOC_ARENA_MAX: String(x.malloc_arena_max) },
  };
}

function heapVariants(): HeapVariant[] {
  const d = CONFIG_DEFAULTS.max_cached_workflows;
  const v = (cache: number, pct: number, arenas: number | null, semi: number | null = null): HeapVariant => ({
    label:
      `cache ${cache}, heap growing ${pct === 0 ? "V8's own" : `${pct}%`}` +
      (arenas === null ? '' : `, MALLOC_ARENA_MAX=${arenas}`) +
      (semi === null ? '' : `, semi-space ${semi} MB`),
    cache,
    heap_growing_percent: pct,
    malloc_arena_max: arenas,
    semi_space_mb: semi,
    default: false,
  });
  // The first launches the tasks (the default cache takes a burst of launches) with node's and
  // glibc's own settings, then each one is a fresh worker: node's own again, and as the service units
  // start it (WORKER_START, docs/SERVICE.md "Memory"), both at the default cache (the earlier run,
  // kept beside this one, measured the levers at the lowest).
  const list = [v(d, 0, null), v(d, 50, 2, 1)].map((x) => ({ ...x, default: isDefaultNow(x) }));
  if (!list.some((x) => x.default)) throw new Error('worker_memory_heap: no variant is WORKER_START at the default cache');
  return list;
}

/** Whether a compared setting is how the worker is started today (WORKER_START at the default cache). */
function isDefaultNow(x: HeapVariant | undefined): boolean {
  if (!x || x.cache !== CONFIG_DEFAULTS.max_cached_workflows) return false;
  const s = startOf({ ...x, semi_space_mb: x.semi_space_mb ?? null });
  return (
    JSON.stringify([...s.nodeFlags].sort()) === JSON.stringify([...WORKER_START.nodeFlags].sort()) &&
    JSON.stringify(s.env) === JSON.stringify(WORKER_START.env)
  );
}

/**
 * The worker's memory levers at 1,000 running tasks, in the same run: the heap growing factor
 * (DISPATCH_HEAP_GROWING_PERCENT), glibc's malloc arenas (MALLOC_ARENA_MAX) and the cache. The default
 * setting's point is the worker_rss_mb goal (it replaces the profile's row).
 */
async function workerMemoryHeap(): Promise<void> {
  const n = QUICK ? 100 : 1000;
  const variants = heapVariants();
  const points = await memoryProfile({
    counts: [n],
    caches: [],
    variants: variants.map((x) => ({
      label: x.label,
      cache: x.cache,
      // Node's start flags reach both of the worker's threads.
      start: startOf(x),
    })),
    restartEach: true,
    fenceAfterS: QUICK ? undefined : PROFILE_FENCE_AFTER_S,
    nodes: QUICK ? 2 : 10,
    leaseS: QUICK ? 10 : 30,
    sliceS: QUICK ? 20 : CONFIG_DEFAULTS.heartbeat_record_interval,
    sampleS: QUICK ? 30 : 60,
    log,
  });
  // A run of other settings stays beside this one (the file's earlier run), unless it compared the same ones.
  const file = previousResults();
  const prev = file.results?.memory_heap_growing as { variants?: HeapVariant[] } | undefined;
  const same = (a?: HeapVariant[]): boolean => JSON.stringify(a?.map((x) => x.label)) === JSON.stringify(variants.map((x) => x.label));
  if (prev && !same(prev.variants)) results.memory_heap_growing_earlier = { ...prev, measured_at: file.measured_at?.worker_memory_heap };
  results.memory_heap_growing = {
    points,
    variants,
    default_percent: HEAP_GROWING_PERCENT_DEFAULT,
  };
  for (const p of points) {
    table.push({
      figure: `memory: ${p.tasks} running, ${p.variant}`,
      value: `${p.rss_mb} MB`,
      goal: '-',
      met: null,
      note:
        `${MEMORY_PARTS.map((k) => `${k} ${p.parts_mb[k]}`).join(', ')}; heaps used: main ${p.main_heap_used_mb}, workflow ${p.workflow_heap_used_mb}; ` +
        `worker cpu ${p.cpu_pct ?? '?'}%` +
        (p.requeued ? `; ${p.requeued} attempts lost meanwhile` : ''),
    });
  }
  const defLabel = variants.find((x) => x.default)?.label;
  const def = points.find((p) => p.variant === defLabel);
  if (def && def.tasks >= n * 0.98) {
    results.worker_rss_mb_1000 = {
      tasks: def.tasks,
      rss_mb_max: def.rss_mb,
      cache: def.cache,
      nodes: QUICK ? 2 : 10,
      node_flags: WORKER_START.nodeFlags,
      env: WORKER_START.env,
    };
    const own = points.find((p) => p.variant !== defLabel && p.variant?.includes("V8's own"));
    table.push({
      figure: `worker_rss_mb (${def.tasks} running tasks)`,
      value: def.rss_mb,
      goal: '<= 300',
      met: def.rss_mb <= 300,
      note:
        `the worker as the service units, npm run dev and the tests start it: ${Object.entries(WORKER_START.env)
          .map(([k, v]) => `${k}=${v} `)
          .join('')}node ${WORKER_START.nodeFlags.join(' ')}, cache ${def.cache}; worker cpu ${def.cpu_pct ?? '?'}%` +
        (own ? `; node's own settings in the same run: ${own.rss_mb} MB, worker cpu ${own.cpu_pct ?? '?'}%` : ''),
    });
  }
}

// ---------------------------------------------------------------- history_events_per_hour
/** One run's events as [time ms, anchor?] pairs; an anchor starts one period of the task's rhythm. */
type Timeline = { times: number[]; anchors: number[] };

/** Every run of task-<id>, oldest first: its history length and the periodic anchor events. */
async function taskRuns(c: Awaited<ReturnType<typeof startCluster>>, id: string, anchor: (e: HistoryEvent) => boolean) {
  const runs: { runId: string; length: number; timeline: Timeline }[] = [];
  let runId: string | undefined = (await c.client.workflow.getHandle(`task-${id}`).describe()).runId;
  // Walk back from the current run through continuedExecutionRunId.
  while (runId) {
    const h: { events?: HistoryEvent[] | null } = await c.client.workflow.getHandle(`task-${id}`, runId).fetchHistory();
    const events: HistoryEvent[] = h.events ?? [];
    const timeline: Timeline = { times: [], anchors: [] };
    events.forEach((e, i) => {
      const t = e.eventTime;
      timeline.times.push(t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0);
      if (anchor(e)) timeline.anchors.push(i);
    });
    runs.unshift({ runId, length: events.length, timeline });
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  return runs;
}

/**
 * Events per hour between the second and the last anchor of the latest run: whole periods only,
 * and not the first, which also holds the start (register, mark running).
 */
function perHour(t: Timeline): { events: number; spanS: number; periods: number; rate: number } | null {
  if (t.anchors.length < 3) return null;
  const a = t.anchors[1]!;
  const b = t.anchors[t.anchors.length - 1]!;
  const spanS = (t.times[b]! - t.times[a]!) / 1000;
  return { events: b - a, spanS, periods: t.anchors.length - 2, rate: ((b - a) / spanS) * 3600 };
}

/**
 * A running task and a queued one (waiting on the running one), on the shipped defaults, for at
 * least 10 minutes of real time each. The rate is counted between periodic anchors (a supervise
 * slice being scheduled; a fallback poll's timer), so partial periods do not skew it. --quick runs
 * 30 s periods and scales the events of one period to the default period length.
 */
async function historyEvents(): Promise<void> {
  const d = CONFIG_DEFAULTS;
  const minSpanS = QUICK ? 55 : 600;
  const config = {
    lease_s: d.lease_s,
    kill_grace: d.kill_grace,
    heartbeat_record_interval: QUICK ? 30 : d.heartbeat_record_interval,
    queue_poll_interval: QUICK ? 30 : d.queue_poll_interval,
    history_limit: d.history_limit,
  };
  const c = await startCluster({ nodes: 1, slots: 1, config });
  try {
    await c.startWorker();
    await c.cliOk(['submit', '--id', 'h-running', '--command', 'sleep 7200']);
    await c.waitStatus('h-running', 'running', 120_000);
    await c.cliOk(['submit', '--id', 'h-queued', '--depends-on', 'h-running', '--command', 'true']);
    await c.waitStatus('h-queued', 'queued');
    const supervise = (e: HistoryEvent) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'supervise';
    const poll = (e: HistoryEvent) => Boolean(e.timerStartedEventAttributes);
    const until = Date.now() + minSpanS * 1000 + 3 * Math.max(config.heartbeat_record_interval, config.queue_poll_interval) * 1000;
    let running: Awaited<ReturnType<typeof taskRuns>> = [];
    let queued: Awaited<ReturnType<typeof taskRuns>> = [];
    for (;;) {
      await sleep(15_000);
      running = await taskRuns(c, 'h-running', supervise);
      queued = await taskRuns(c, 'h-queued', poll);
      const r = perHour(running[running.length - 1]!.timeline);
      const q = perHour(queued[queued.length - 1]!.timeline);
      if ((r && q && r.spanS >= minSpanS && q.spanS >= minSpanS) || Date.now() > until) break;
    }
    const measuredR = perHour(running[running.length - 1]!.timeline);
    const measuredQ = perHour(queued[queued.length - 1]!.timeline);
    if (!measuredR || !measuredQ) throw new Error('not enough periods observed');
    // At the default period length: measured as is in a full run, scaled from 30 s periods in --quick.
    const atDefault = (m: NonNullable<typeof measuredR>, defaultS: number) =>
      QUICK ? { ...m, rate: (m.events / m.periods) * (3600 / defaultS) } : m;
    const r = atDefault(measuredR, d.heartbeat_record_interval);
    const q = atDefault(measuredQ, d.queue_poll_interval);
    const maxRun = Math.max(...running.map((x) => x.length), ...queued.map((x) => x.length));
    log(`running: ${r.events} events over ${r2(r.spanS)} s (${r.periods} slices) = ${r2(r.rate)}/h`);
    log(`queued: ${q.events} events over ${r2(q.spanS)} s (${q.periods} polls) = ${r2(q.rate)}/h`);
    results.history_events_per_hour = {
      queued: Math.round(q.rate),
      running: Math.round(r.rate),
      span_s: { queued: Math.round(q.spanS), running: Math.round(r.spanS) },
      events_per_period: { queued: r2(q.events / q.periods), running: r2(r.events / r.periods) },
      scaled_from_short_periods: QUICK,
      max_run_events: maxRun,
      history_limit: config.history_limit,
      config,
    };
    const note = (x: { spanS: number; periods: number }) =>
      QUICK
        ? `quick: ${x.periods} periods of 30 s, scaled to the default period`
        : `over ${Math.round(x.spanS)} s of real time (${x.periods} periods)`;
    table.push({ figure: 'history_events_per_hour.queued', value: Math.round(q.rate), goal: '<= 150', met: q.rate <= 150, note: note(q) });
    table.push({ figure: 'history_events_per_hour.running', value: Math.round(r.rate), goal: '<= 200', met: r.rate <= 200, note: note(r) });
    table.push({
      figure: 'largest task run (events)',
      value: maxRun,
      goal: '<= 10240',
      met: maxRun <= 10_240,
      note: `every run continues as new before history_limit (${config.history_limit})`,
    });
    await c.client.workflow.getHandle('task-h-queued').cancel();
    await c.client.workflow.getHandle('task-h-running').cancel();
    await c.waitStatus('h-running', 'cancelled', 120_000);
  } finally {
    await c.stop();
  }
}

function machine(): Record<string, unknown> {
  let temporal = 'unknown';
  try {
    const { temporalBin } = require('../test/helpers/temporal') as typeof import('../test/helpers/temporal');
    temporal = execFileSync(temporalBin(), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    /* reported as unknown */
  }
  const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8'));
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memory_gib: r2(os.totalmem() / 2 ** 30),
    node: process.version,
    temporal,
    temporal_sdk: pkg.dependencies['@temporalio/worker'],
    sqlite: new Database(':memory:').prepare('select sqlite_version() v').get() as unknown,
    // sshd -V prints its version on stderr (and may exit non-zero).
    openssh:
      (require('node:child_process') as typeof import('node:child_process'))
        .spawnSync('/usr/sbin/sshd', ['-V'], { encoding: 'utf8' })
        .stderr.trim()
        .split('\n')[0] ?? 'unknown',
  };
}

/** Why a goal is missed and what would close it, for every figure that missed its goal (from the run's figures). */
type Gap = (res: Record<string, unknown>) => string;

const fmtPath = (p: Record<string, number> | undefined): string =>
  p
    ? Object.entries(p)
        .map(([k, v]) => `${k} ${v}`)
        .join('; ')
    : 'not measured';

/** The paired idle latency by worker start (idle_latency_start), as a sentence; empty when not measured. */
function byStart(res: Record<string, unknown>): string {
  const b = res.idle_latency_by_start as
    { rounds: number; p50_ms: Record<string, number>; round_p50_ms: Record<string, number[]> } | undefined;
  if (!b) return '';
  return (
    `How node starts the worker, in ${b.rounds} interleaved rounds of fresh workers (idle_latency_start): p50 ${b.p50_ms.WORKER_START} ms as the units start it (rounds ${b.round_p50_ms.WORKER_START?.join(', ')}), ` +
    `${b.p50_ms["node's own"]} ms with node's own settings (rounds ${b.round_p50_ms["node's own"]?.join(', ')}). `
  );
}

const GAPS: [RegExp, Gap][] = [
  [
    /dispatch latency p50, idle/,
    (res) => {
      const d = (res.throughput as { dispatch_latency_ms?: Record<string, unknown> } | undefined)?.dispatch_latency_ms ?? {};
      return (
        `Where an idle task's time to running goes, from each one's history (medians, ms): ${fmtPath(d.idle_path_medians_ms as Record<string, number>)}. ` +
        `For a 1 s task, booked running by mark running after a launch that waited the full ${LAUNCH_EXIT_WAIT_MS} ms for an exit: ${fmtPath(d.idle_1s_task_path_medians_ms as Record<string, number>)}. ` +
        'Every step is a round trip to the Temporal dev server or one SSH exec, on 2 cores that the server, the worker and the sshd nodes share. ' +
        byStart(res) +
        'The start, the first workflow task, the register activity on dispatch-db (which hands out the slot and the node row), the workflow task that runs the launch as a local activity, and the activity that books the row are each needed while dispatch.db has its one writer on its own task queue. ' +
        'Done in this round: a command that ends at once is booked in one step (no mark running, no supervise slice, no separate finish), and the launch and probe scripts fork less. ' +
        'What would meet it: register and book the row in local activities of a worker that holds dispatch.db (submit to running in one workflow task, for single-machine fleets), or a machine where server, worker and nodes do not share 2 cores.'
      );
    },
  ],
  [
    /throughput_ratio/,
    () =>
      'A short task needs 3 workflow tasks and 2 activity tasks (round_trips_per_task), an empty workflow 1 workflow task; with Temporal, the worker, the sshd nodes and the launched processes sharing 2 cores, the server is the limit. See the rounds in the note for the spread.',
  ],
  [/worker_rss_mb_3000/, (res) => rssGap(res, 3000)],
  [/worker_rss/, (res) => rssGap(res, 1000)],
  [
    /recovery_ratio/,
    () =>
      "Recovery is the heartbeat timeout plus the retry interval and a restarted worker's start-up; a shorter lease shortens it proportionally.",
  ],
  [
    /frozen_takeover_ratio/,
    (res) => {
      const f = res.frozen_takeover_ratio as { attempts_at_takeover?: number[] } | undefined;
      return (
        `The supervise attempt that the live worker got was ${f?.attempts_at_takeover?.join(', ') ?? '?'}: every attempt before it timed out after a lease in one of the frozen worker's open polls, to which Temporal handed the retried slice (a frozen process keeps its long polls open until they time out on the server). ` +
        'What would meet it: fewer activity polls per worker on the dispatch queue (at most one lease lost per frozen worker), or a takeover that does not go through the activity retry (another worker watching the attempt before the timeout). With the defaults (lease 30 s, fence_after 10 minutes) a frozen worker fences nothing.'
      );
    },
  ],
  [
    /mass_cleanup/,
    () => 'The batched kill sends one command per node; time is dominated by the grace period of processes that ignore SIGTERM.',
  ],
  [
    /sweep_scaling/,
    () =>
      'The sweep reads only dispatched/running rows through the (status, priority, seq) index; a regression here means a query lost its index.',
  ],
  [
    /sqlite_busy/,
    () => 'Every store write transaction is BEGIN IMMEDIATE under busy_timeout 30000; a busy error means a write path bypasses Store.',
  ],
];

/** Why worker_rss_mb misses at n running tasks, from the profile's own points. */
function rssGap(res: Record<string, unknown>, n: number): string {
  const p = res.memory_profile as ProfileResult | undefined;
  const pts = (p?.points ?? []).filter((x) => x.tasks >= n * 0.98 && x.tasks <= n).sort((a, b) => a.cache - b.cache);
  const stopped = (p as { stopped_3000?: string } | undefined)?.stopped_3000;
  if (!pts.length && n === 3000 && stopped) {
    // An estimate, not a measurement: the measured 1,000-task point plus the profile's cost per running task.
    const at1000 = res.worker_rss_mb_1000 as { rss_mb_max?: number; node_flags?: string[] } | undefined;
    const perTask = p?.per_running_task?.rss;
    const estimate =
      at1000?.rss_mb_max !== undefined && perTask !== undefined && at1000.node_flags
        ? ` Estimated, not measured: the worker as the units start it held ${at1000.rss_mb_max} MB at 1,000 running tasks; with ${perTask} MB per running task beyond the cache (the profile below, measured with node's own settings), 3,000 would hold about ${Math.round(at1000.rss_mb_max + 2000 * perTask)} MB. What would measure it: nodes that are other machines (or a machine with more cores), since the 12,000 task processes, not the worker, are what saturated this one.`
        : '';
    return stopped + estimate;
  }
  if (!pts.length)
    return `Not measured in this run (\`npm run bench -- --only worker_memory\` measures ${n.toLocaleString('en')} running tasks).`;
  const def = pts.find((x) => x.cache === CONFIG_DEFAULTS.max_cached_workflows);
  const heapRes = res.memory_heap_growing as { points?: ProfilePoint[]; variants?: HeapVariant[] } | undefined;
  const heapPts = (heapRes?.points ?? []).filter((x) => x.tasks >= n * 0.98 && x.tasks <= n);
  const defLabel = heapRes?.variants?.find(isDefaultNow)?.label;
  const heapDefault = heapPts.find((x) => (defLabel ? x.variant === defLabel : x.variant?.endsWith('the default)')));
  const levers = heapPts.filter((x) => x !== heapDefault);
  const slackOf = def && def.main_heap_used_mb !== null ? def : (heapDefault ?? null);
  const t = p?.per_running_task;
  const c = p?.per_cached_workflow;
  const floor = (p?.points ?? []).filter((x) => x.cache === CONFIG_DEFAULTS.max_cached_workflows).sort((a, b) => a.tasks - b.tasks)[0];
  return (
    `At ${n.toLocaleString('en')} running tasks: ${pts.map((x) => `${x.rss_mb} MB at a cache of ${x.cache} (worker CPU ${x.cpu_pct ?? '?'}%)`).join(', ')}. ` +
    (def
      ? `At the default cache (${def.cache}) the parts are ${MEMORY_PARTS.map((k) => `${k} ${def.parts_mb[k]}`).join(', ')} MB${def.main_heap_used_mb === null ? '' : `; the V8 heaps are committed at ${def.parts_mb.main_heap} and ${def.parts_mb.workflow_heap} MB with ${def.main_heap_used_mb} and ${def.workflow_heap_used_mb} MB in use`}. `
      : '') +
    `Beyond the cache each running task adds ${t?.rss ?? '?'} MB and each cached workflow ${c?.rss ?? '?'} MB` +
    (floor
      ? `; the same worker with ${floor.tasks} running tasks holds ${floor.rss_mb} MB, most of it the fixed cost of node, the SDK's native core and two V8 heaps`
      : '') +
    '. ' +
    (slackOf
      ? `The largest slack is in the V8 heaps: committed ${Math.round(slackOf.parts_mb.main_heap + slackOf.parts_mb.workflow_heap)} MB for ${Math.round(slackOf.main_heap_used_mb + slackOf.workflow_heap_used_mb)} MB in use${slackOf === def ? '' : ` (${slackOf.tasks} tasks, ${slackOf.variant ?? `cache ${slackOf.cache}`})`}, because ${(slackOf.variant ?? '').includes("V8's own") || (slackOf === def && !(p as { heap_growing_percent?: number } | undefined)?.heap_growing_percent) ? 'V8 lets a heap grow to up to 4 times its live size' : 'even at this heap growing factor a heap grows past its live size'} between full collections under a steady churn of activations and heartbeats. `
      : '') +
    (levers.length
      ? `Measured in the same run, each a fresh worker over the same tasks (see "The worker's memory levers" below): ` +
        [heapDefault, ...levers]
          .filter((x): x is ProfilePoint => !!x)
          .map((x) => `${x.variant} ${x.rss_mb} MB (worker CPU ${x.cpu_pct ?? '?'}%)`)
          .join('; ') +
        '.'
      : 'What would meet it: a lower heap growing factor (DISPATCH_HEAP_GROWING_PERCENT=50: a heap at most 1.5 times its live size), fewer malloc arenas and a smaller cache, to be measured in the worker with `npm run bench -- --only worker_memory_heap` before any becomes the default.')
  );
}

function gapNotes(rows: Row[], res: Record<string, unknown>): string[] {
  // Figures measured with another default cache than today's say so (the cache changes replays, so CPU and latency).
  const stale = ['throughput', 'throughput_cluster'].filter((k) => {
    const r = res[k] as { max_cached_workflows?: number } | undefined;
    return r && (r.max_cached_workflows ?? 250) !== CONFIG_DEFAULTS.max_cached_workflows;
  });
  const pre = stale.length
    ? [
        `Measured with an earlier default cache: ${stale.join(', ')} (max_cached_workflows ${(res[stale[0]!] as { max_cached_workflows?: number }).max_cached_workflows ?? 250}; the default is now ${CONFIG_DEFAULTS.max_cached_workflows}). \`npm run bench -- --only ${stale.join(',')}\` measures them again.`,
        '',
      ]
    : [];
  const missed = rows.filter((r) => r.met === false);
  if (missed.length === 0) return [...pre, 'Every goal above is met.', ''];
  const out = [...pre, '## Goals not met, why, and what would close them', ''];
  for (const r of missed) {
    const g = GAPS.find(([re]) => re.test(r.figure));
    out.push(`- **${r.figure}** (${r.value}, goal ${r.goal}): ${g ? g[1](res) : 'see the note in the table.'}`);
  }
  out.push('');
  return out;
}

async function run(): Promise<void> {
  const started = Date.now();
  const sections: [string, () => Promise<void>][] = [
    ['sweep_scaling', sweepScaling],
    ['sqlite_busy_errors', busyErrors],
    ['recovery_ratio', recovery],
    ['frozen_takeover_ratio', frozenTakeover],
    ['burst_fenced', burstFenced],
    ['throughput', throughput],
    ['idle_latency_start', idleLatencyByStart],
    ['throughput_cluster', throughputCluster],
    ['mass_cleanup', massCleanup],
    ['worker_memory', workerMemory],
    ['worker_memory_heap', workerMemoryHeap],
    ['history_events_per_hour', historyEvents],
  ];
  // A section missing from SECTION_ORDER would lose its rows and its measured_at on the next --only run.
  const unordered = sections.filter(([name]) => !SECTION_ORDER.includes(name));
  if (unordered.length) throw new Error(`bench sections missing from SECTION_ORDER: ${unordered.map(([n]) => n).join(', ')}`);
  const failures: string[] = [];
  const m = machine();
  for (const [name, fn] of sections) {
    if (!want(name)) continue;
    currentSection = name;
    log(`--- ${name}${QUICK ? ' (quick)' : ''}`);
    try {
      await fn();
    } catch (e) {
      failures.push(`${name}: ${(e as Error).message}`);
      table.push({ figure: name, value: 'error', goal: '-', met: false, note: (e as Error).message.slice(0, 200) });
      console.error(e);
    }
    write(m, started, failures, false); // a long run that is stopped still leaves its figures
  }
  write(m, started, failures, true);
  if (failures.length) process.exitCode = 1;
}

const SECTION_ORDER = [
  'sweep_scaling',
  'sqlite_busy_errors',
  'recovery_ratio',
  'frozen_takeover_ratio',
  'burst_fenced',
  'throughput',
  'idle_latency_start',
  'throughput_cluster',
  'mass_cleanup',
  'worker_memory',
  'worker_memory_heap',
  'history_events_per_hour',
];

type ProfileResult = {
  points: ProfilePoint[];
  per_running_task: Record<string, number> | null;
  per_cached_workflow: Record<string, number> | null;
};

function profileTable(p: ProfileResult): string[] {
  const parts = MEMORY_PARTS as readonly string[];
  const rows = [...p.points].sort((a, b) => a.tasks - b.tasks || a.cache - b.cache);
  // Older runs did not measure the worker's CPU or lost attempts: those columns only when some point has them.
  const cpu = rows.some((x) => x.cpu_pct !== undefined);
  const extra = (x: ProfilePoint | null): string => (cpu ? ` ${x ? (x.cpu_pct ?? '?') : ''} | ${x ? (x.requeued ?? '?') : ''} |` : '');
  const per = (label: string, c: Record<string, number> | null): string =>
    c
      ? `| ${label} | ${c.rss} | ${parts.map((k) => c[k]).join(' | ')} | | |${extra(null)}`
      : `| ${label} | ? | ${parts.map(() => '?').join(' | ')} | | |${extra(null)}`;
  return [
    `| running tasks, cache | VmRSS MB | ${parts.join(' MB | ')} MB | cached workflows | activities in flight |${cpu ? ' worker CPU % | attempts lost |' : ''}`,
    `|---|---|${parts.map(() => '---|').join('')}---|---|${cpu ? '---|---|' : ''}`,
    ...rows.map(
      (x) =>
        `| ${x.tasks}, ${x.cache} | ${x.rss_mb} | ${parts.map((k) => x.parts_mb[k as keyof ProfilePoint['parts_mb']]).join(' | ')} | ${x.cached_workflows ?? '?'} | ${x.activities_in_flight ?? '?'} |${extra(x)}`,
    ),
    per('per running task (smallest cache, fewest to most tasks)', p.per_running_task),
    per('per cached workflow (most tasks, smallest to largest cache)', p.per_cached_workflow),
  ];
}

/** The memory profile: the measured points, and the per-task and per-cached-workflow costs. */
function profileSection(res: Record<string, unknown>): string[] {
  const now = res.memory_profile as ProfileResult | undefined;
  const before = res.memory_profile_before as (ProfileResult & { commit?: string; note?: string }) | undefined;
  if (!now && !before) return [];
  const out = [
    '## Worker memory profile',
    '',
    "The worker's VmRSS (/proc/<pid>/status), split into parts that add up to it, from the worker's own",
    '`dispatch_worker_memory_bytes` gauges (src/workers/memory.ts, docs/METRICS.md): `code` is RssFile + RssShmem',
    "(node, the SDK's native module, libraries); `main_heap` the main thread's V8 heap (committed); `workflow_heap`",
    "the SDK's workflow thread's V8 heap, read through the in-process inspector (where the workflow cache lives);",
    '`external` Buffers and ArrayBuffers; `native` the rest of the anonymous memory (the Rust core, gRPC, allocator',
    'arenas, thread stacks). Real sleeping tasks on real sshd nodes, one worker process running both queues.',
    `For each point the worker runs with that cache (max_cached_workflows: 10 is the lowest allowed, ${CONFIG_DEFAULTS.max_cached_workflows} the default):`,
    "the first point of each step is the worker that launched the step's new tasks (a step starts with the cache the",
    'one before ended on), every other point a worker restarted with its cache. It is waited for until it supervises',
    'nearly every running task and its cache is as full as it gets (at most a lease and a slice), then sampled every',
    '10 s for a minute: the point is the largest sample. Worker CPU',
    'is its user + system time over that minute, in % of one core; attempts lost are requeues meanwhile (none wanted).',
    '',
    'Reproduce: `npm run bench -- --only worker_memory` (100, 1,000 and 3,000 tasks over 10 nodes, caches 10, 50',
    'and 250, the default slice of 300 s: about 50 minutes here; `--memory-counts`, `--memory-caches`, `--memory-slice`',
    'and `--memory-sample` make it smaller), or `npm run bench -- --quick --only worker_memory` (50 and 100 tasks over',
    '2 nodes).',
    '',
  ];
  if (before) {
    out.push(`### Before: one supervise activity per running task${before.commit ? ` (${before.commit})` : ''}`, '');
    if (before.note) out.push(before.note, '');
    out.push(...profileTable(before), '');
  }
  if (now) {
    const hp = (now as { heap_growing_percent?: number }).heap_growing_percent;
    out.push(
      '### Now: supervise slices complete asynchronously through the per-node watcher',
      '',
      hp
        ? `With the heap growing factor at ${hp}% (DISPATCH_HEAP_GROWING_PERCENT) and otherwise node's own settings.`
        : "With node's and glibc's own settings (no start flags): how the service units start the worker is compared with them in \"The worker's memory levers\" below.",
      '',
      ...profileTable(now),
      '',
    );
  }
  type HeapRun = { points: ProfilePoint[]; variants?: HeapVariant[] };
  const heapTable = (h: HeapRun): string[] => [
    '| setting | running tasks | VmRSS MB | main heap committed / used MB | workflow heap committed / used MB | external MB | native MB | worker CPU % | attempts lost |',
    '|---|---|---|---|---|---|---|---|---|',
    ...h.points.map(
      (x) =>
        `| ${x.variant}${isDefaultNow(h.variants?.find((v) => v.label === x.variant)) ? ' (how dispatch starts it)' : ''} | ${x.tasks} | ${x.rss_mb} | ${x.parts_mb.main_heap} / ${x.main_heap_used_mb} | ${x.parts_mb.workflow_heap} / ${x.workflow_heap_used_mb} | ${x.parts_mb.external} | ${x.parts_mb.native} | ${x.cpu_pct ?? '?'} | ${x.requeued ?? '?'} |`,
    ),
  ];
  const heap = res.memory_heap_growing as HeapRun | undefined;
  const earlier = res.memory_heap_growing_earlier as (HeapRun & { measured_at?: string }) | undefined;
  if (heap) {
    out.push(
      "### The worker's memory levers",
      '',
      'The heap growing factor: V8 lets a heap grow to up to 4 times what it kept alive before its next full collection',
      "(V8's own); --heap-growing-percent=50 lets it grow to 1.5 times. Malloc arenas: glibc gives each thread",
      "that contends for the allocator an arena of its own, up to 8 per core (the SDK's Rust core runs a thread pool);",
      'MALLOC_ARENA_MAX=2 caps them. The young generation: V8 keeps up to two semi-spaces of 16 MB per heap committed',
      "(--max-semi-space-size=1 caps them at 1 MB). The cache: max_cached_workflows. Both flags are given on node's",
      "command line, so they reach the SDK's workflow thread too; the service units, `npm run dev` and the tests start",
      'the worker with both and the two arenas (WORKER_START in src/workers/memory.ts). Same run, same running tasks,',
      'each point a worker restarted with that setting (the first one launched the tasks), settled and sampled as in',
      'the profile above; `npm run bench -- --only worker_memory_heap`.',
      '',
      ...heapTable(heap),
      '',
      ...(earlier
        ? [
            `An earlier run of the same comparison${earlier.measured_at ? ` (${earlier.measured_at})` : ''}, with other settings (then given as DISPATCH_HEAP_GROWING_PERCENT, set at runtime, and NODE_OPTIONS=--max-semi-space-size):`,
            '',
            ...heapTable(earlier),
            '',
          ]
        : []),
    );
  }
  return out;
}

type EarlierResults = { results?: Record<string, unknown>; table?: Row[]; measured_at?: Record<string, string>; duration_s?: number };

/** The results file this run writes, as an earlier run left it (empty when there is none). */
function previousResults(): EarlierResults {
  try {
    return JSON.parse(
      readFileSync(path.resolve(__dirname, '../../bench', `results${QUICK ? '.quick' : ''}.json`), 'utf8'),
    ) as EarlierResults;
  } catch {
    return {};
  }
}

function write(m: Record<string, unknown>, started: number, failures: string[], final: boolean): void {
  const dir = path.resolve(__dirname, '../../bench');
  const suffix = QUICK ? '.quick' : '';
  const file = path.join(dir, `results${suffix}.json`);
  const now = new Date().toISOString();
  const ran = SECTION_ORDER.filter(want);
  // `--only`: keep the figures of the sections not re-run from the previous results file.
  const prev: EarlierResults = ONLY ? previousResults() : {};
  // Rows of sections that no longer exist (renamed) are dropped, not kept forever.
  // A figure measured by this run replaces the same figure kept from an earlier one.
  const fresh = new Set(table.map((r) => r.figure));
  const keep = (prev.table ?? []).filter(
    (r) => r.section && !ran.includes(r.section) && SECTION_ORDER.includes(r.section) && !fresh.has(r.figure),
  );
  const rows = [...keep, ...table.filter((r, i) => !table.slice(i + 1).some((later) => later.figure === r.figure))].sort(
    (a, b) => SECTION_ORDER.indexOf(a.section ?? '') - SECTION_ORDER.indexOf(b.section ?? ''),
  );
  const measuredAt = { ...(prev.measured_at ?? {}), ...Object.fromEntries(ran.map((s) => [s, now])) };
  const out = {
    mode: QUICK ? 'quick' : LONG ? 'long' : 'full',
    date: now,
    duration_s: Math.round((Date.now() - started) / 1000),
    machine: m,
    measured_at: measuredAt,
    results: { ...(prev.results ?? {}), ...results },
    table: rows,
    failures,
    ...(ONLY ? { only: ran } : {}),
  };
  const w = Math.max(...rows.map((t) => t.figure.length), 6);
  const lines = [
    `${'figure'.padEnd(w)}  ${'value'.padEnd(18)}  ${'goal'.padEnd(14)}  met`,
    ...rows.map(
      (t) =>
        `${t.figure.padEnd(w)}  ${String(t.value).padEnd(18)}  ${t.goal.padEnd(14)}  ${t.met === null ? '-' : t.met ? 'yes' : 'NO'}${t.note ? `   ${t.note}` : ''}`,
    ),
  ];
  if (final) console.log(`\n${lines.join('\n')}\n`);
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  writeFileSync(path.join(dir, `RESULTS${suffix}.md`), renderMarkdown(out, suffix));
  if (final) log(`wrote bench/results${suffix}.json and bench/RESULTS${suffix}.md`);
}

type ResultsFile = {
  mode: string;
  date: string;
  duration_s: number;
  machine: Record<string, unknown>;
  results: Record<string, unknown>;
  table: Row[];
  only?: string[];
};

function renderMarkdown(out: ResultsFile, suffix: string): string {
  const m = out.machine;
  const rows = out.table;
  return [
    `# dispatch benchmark results (${out.mode})`,
    '',
    `Run ${out.date}, ${out.duration_s} s${out.only ? ` (only ${out.only.join(', ')}; the other figures are from earlier runs, see measured_at in results${suffix}.json)` : ''}. Machine: ${m.cores} cores (${m.cpu}), ${m.memory_gib} GiB, Node ${m.node}, ${m.temporal}, SDK ${m.temporal_sdk}, ${m.openssh}.`,
    '',
    '| figure | value | goal | met | note |',
    '|---|---|---|---|---|',
    ...rows.map((t) => `| ${t.figure} | ${t.value} | ${t.goal} | ${t.met === null ? '-' : t.met ? 'yes' : '**no**'} | ${t.note ?? ''} |`),
    '',
    'Reproduce with `npm run bench` (`-- --quick` for the small version, `-- --only NAME` for one figure;',
    '`-- --render` writes this file again from results.json without measuring).',
    '',
    ...gapNotes(rows, out.results),
    ...profileSection(out.results),
  ].join('\n');
}

if (args.includes('--render')) {
  // Only the text: the notes of this code over the figures of the last run.
  const dir = path.resolve(__dirname, '../../bench');
  const suffix = QUICK ? '.quick' : '';
  const out = JSON.parse(readFileSync(path.join(dir, `results${suffix}.json`), 'utf8')) as ResultsFile;
  writeFileSync(path.join(dir, `RESULTS${suffix}.md`), renderMarkdown(out, suffix));
  log(`wrote bench/RESULTS${suffix}.md from bench/results${suffix}.json`);
} else
  run().catch((e) => {
    console.error(e);
    process.exit(1);
  });
