/**
 * `npm run chaos`: the chaos suite (issue 4). A few hundred tasks of mixed length over real sshd
 * nodes and a real Temporal dev server while a fault injector kills workers, kills the server,
 * partitions nodes and forces one ghost of each reaper rule. At the end the database, the nodes
 * and the wrapper's own per-attempt records are checked; see checks.ts for each figure.
 *
 *   node dist/chaos/run.js [--seed N] [--tasks N] [--quick] [--keep] [--out FILE]
 *
 * Exit code 0 when every must-be-zero figure is zero, 1 otherwise, 2 on bad arguments.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster } from '../test/helpers/cluster';
import { compileConfig } from '../src/config/config';
import { runChecks, DEFINITIONS, type CheckResult } from './checks';
import { abortAll, ChaosCtx, poll, sleep, type ManagedWorker } from './ctx';
import { forceGhost, partition, startManaged, submitTask, temporalKill, triggerReaper, workerKill, type GhostRuleName } from './faults';
import { Rng } from './prng';
import { Sampler, scanTaskProcs } from './sampler';
import { planWorkload, summarizeWorkload } from './workload';

interface Args {
  seed: number;
  tasks: number;
  quick: boolean;
  keep: boolean;
  out: string | null;
}

const REPO = path.resolve(__dirname, '../..');

function parseArgs(argv: string[]): Args {
  const a: Args = { seed: Math.floor(Math.random() * 2 ** 31), tasks: 300, quick: false, keep: false, out: null };
  let tasksGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${k} needs a value`);
      return v!;
    };
    if (k === '--seed') a.seed = int(k, val());
    else if (k === '--tasks') {
      a.tasks = int(k, val());
      tasksGiven = true;
    } else if (k === '--quick') a.quick = true;
    else if (k === '--keep') a.keep = true;
    else if (k === '--out') a.out = val();
    else if (k === '--help' || k === '-h') usage(null);
    else usage(`unknown argument ${k}`);
  }
  if (a.quick && !tasksGiven) a.tasks = 50;
  if (a.tasks < 10) usage('--tasks must be >= 10');
  return a;
}

function int(k: string, v: string): number {
  if (!/^[0-9]+$/.test(v)) usage(`${k} must be a non-negative integer`);
  return Number(v);
}

function usage(err: string | null): never {
  const text = 'usage: node dist/chaos/run.js [--seed N] [--tasks N (default 300)] [--quick] [--keep] [--out FILE]';
  if (err) {
    console.error(`chaos: ${err}\n${text}`);
    process.exit(2);
  }
  console.log(text);
  process.exit(0);
}

/** Fault mix and timing; `--quick` is for development, the full profile is the issue's. */
function profile(a: Args) {
  const perTask = a.tasks / 300;
  if (a.quick) {
    // At most 8 minutes in all: it runs in npm test (test/chaos/quick.test.ts).
    return {
      workerKills: 3,
      temporalKills: 1,
      // Temporal outages longer than fence_after (the last of the Temporal kills).
      longTemporalOutages: 0,
      partitions: 1,
      injectMs: 190_000,
      submitMs: 140_000,
      faultStartMs: 15_000,
      faultGapMs: 8_000,
      settleMs: 170_000,
      cancelShare: 0.06,
    };
  }
  return {
    workerKills: 12,
    temporalKills: 2,
    longTemporalOutages: 1,
    partitions: 2,
    // Faults start while tasks are still being submitted and end about when the last ones finish.
    injectMs: Math.round(480_000 * Math.max(1, perTask * 0.8)),
    submitMs: Math.round(420_000 * Math.max(1, perTask * 0.8)),
    faultStartMs: 25_000,
    faultGapMs: 10_000,
    settleMs: 420_000,
    cancelShare: 0.05,
  };
}

/**
 * ghost_action requeue, with a short fence: a partition that outlasts fence_after proves that the
 * cut-off node stops its own work and that the task runs again elsewhere only afterwards.
 */
const CONFIG = {
  ghost_action: 'requeue',
  fence_after: 20,
  // Quick: the shortest allowed (2 x lease_s), so a partition's task runs again about a minute after
  // the cut. The full profile sets it past its long Temporal outage (see main).
  outage_tolerance: 10,
  lease_s: 5,
  kill_grace: 2,
  heartbeat_record_interval: 5,
  stale_s: 60,
  probe_interval: 2,
  check_interval: 10,
  guardian_interval: 30,
  max_requeue: 3,
};
const NODES = 3;
const SLOTS = 6;

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const P = profile(args);
  const rng = new Rng(args.seed);
  const T0 = Date.now();
  console.log(
    `[chaos] seed ${args.seed} (repeat with --seed ${args.seed}); ${args.tasks} tasks; ${args.quick ? 'quick' : 'full'} profile: ${JSON.stringify(P)}`,
  );
  console.log(`[chaos] ${NODES} sshd nodes x ${SLOTS} slots; config ${JSON.stringify(CONFIG)}`);
  console.log(
    `[chaos] machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 20)} MiB, node ${process.version}, load ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );

  const plan = planWorkload(rng.fork('workload'), { tasks: args.tasks, submitWindowMs: P.submitMs, cancelShare: P.cancelShare });
  console.log(`[chaos] workload: ${JSON.stringify(summarizeWorkload(plan))}`);

  // ---- set-up
  let c: Cluster | null = null;
  let ctx: ChaosCtx | null = null;
  let sampler: Sampler | null = null;
  let code = 1;
  let shortfall: string[] = [];
  let result: CheckResult | null = null;
  const durations: Record<string, number> = {};
  let interrupted = false;
  const onSig = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    abortAll.abort();
    console.error('[chaos] interrupted: tearing down and reporting what was seen (again to exit at once)');
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  try {
    // A long outage (fence_after + 20 s) must kill nothing: the horizon outlasts it.
    if (P.longTemporalOutages > 0) CONFIG.outage_tolerance = 60;
    c = await startCluster({ nodes: NODES, slots: SLOTS, config: CONFIG });
    const cfg = compileConfig(JSON.parse(fs.readFileSync(c.configPath, 'utf8')), process.env);
    const prefix = fs.realpathSync(c.dir);
    sampler = new Sampler(prefix);
    sampler.start();
    ctx = new ChaosCtx(c, rng.fork('faults'), cfg, sampler, prefix);
    ctx.log(`cluster up in ${c.dir}: Temporal ${c.temporal.address}, nodes ${c.nodes.map((n) => `${n.name}:${n.port}`).join(' ')}`);
    const workers: ManagedWorker[] = [
      { name: 'w-db', queues: undefined, proc: null, identity: null, expectedExit: false, starts: 0, unexpectedExits: [] },
      { name: 'w-node', queues: 'dispatch', proc: null, identity: null, expectedExit: false, starts: 0, unexpectedExits: [] },
    ];
    ctx.workers.push(...workers);
    for (const w of workers) await startManaged(ctx, w);
    ctx.log(`workers: ${workers.map((w) => `${w.name} (${w.queues ?? 'dispatch,dispatch-db'}) ${w.identity}`).join(', ')}`);
    const ap = await ctx.cli(['schedules', 'apply']);
    if (ap.code !== 0) throw new Error(`schedules apply failed: ${ap.stderr}`);
    ctx.log(`schedules: ${ap.stdout.trim().replace(/\n/g, '; ')}`);
    durations.setup_s = (Date.now() - T0) / 1000;

    // ---- inject
    const x = ctx;
    const injectStart = Date.now();
    let stop = false;
    const loops: Promise<unknown>[] = [];

    // Submissions, on the plan's schedule.
    let submittedN = 0;
    const submitting = (async () => {
      for (const t of plan) {
        if (interrupted) return;
        const wait = injectStart + t.submitAtMs - Date.now();
        if (wait > 0) await sleep(wait);
        if (await submitTask(x, t)) submittedN++;
      }
      x.log(`all ${submittedN} planned submissions done`);
    })();
    loops.push(submitting);

    // Cancels with `dispatch cancel`, at their planned moment after submission.
    const cancelling = (async () => {
      const todo = plan.filter((t) => t.cancelAfterMs !== null);
      const pending = new Set(todo.map((t) => t.id));
      while (pending.size && !stop && !interrupted) {
        for (const t of todo) {
          if (!pending.has(t.id)) continue;
          const sub = x.submitted.get(t.id);
          if (!sub || Date.now() < sub.submittedAtMs + t.cancelAfterMs!) continue;
          if (x.temporalDown) continue;
          pending.delete(t.id);
          const st = x.task(t.id)?.status ?? 'missing';
          const sentAt = Date.now();
          const r = await x.cli(['cancel', t.id, '--reason', 'chaos: cancelled at a random moment'], 60_000);
          const outcome = r.code === 0 ? 'requested' : /is not running in Temporal/.test(r.stderr) ? 'too-late' : 'error';
          if (outcome === 'requested') x.cancelled.set(t.id, sentAt);
          if (outcome === 'error' && r.code === 3) pending.add(t.id); // server down: try again
          x.faults.cancels.push({
            atMs: Date.now(),
            task: t.id,
            code: r.code,
            outcome,
            detail: outcome === 'requested' ? `row was ${st}` : r.stderr.trim().split('\n')[0]?.slice(0, 160),
          });
          x.log(
            `dispatch cancel ${t.id} (row ${st}): ${outcome}${outcome === 'requested' ? '' : ` (${r.stderr.trim().split('\n')[0]?.slice(0, 120)})`}`,
          );
        }
        await sleep(500);
      }
    })();
    loops.push(cancelling);

    // Reaper sweeps at random moments, while tasks are finishing.
    const rrng = rng.fork('reaper');
    const reaping = (async () => {
      await sleep(10_000);
      while (!stop && !interrupted) {
        await sleep(rrng.float(6_000, 18_000));
        if (stop || x.temporalDown) continue;
        await triggerReaper(x, rrng.chance(0.5) ? 'schedule' : 'reap');
      }
    })();
    loops.push(reaping);

    // Progress.
    const progress = (async () => {
      while (!stop && !interrupted) {
        await sleep(15_000);
        const n = x
          .nodes()
          .map((n) => `${n.name}:${n.status}:${n.running_count}/${n.slots}`)
          .join(' ');
        x.log(
          `progress: submitted ${[...x.submitted.values()].filter((t) => t.kind !== 'ghost').length}/${plan.length} planned (+${[...x.submitted.values()].filter((t) => t.kind === 'ghost').length} ghost victims); rows ${JSON.stringify(x.counts())}; nodes ${n}; live task procs ${sampler!.attempts.size ? scanCount(x) : 0}; faults: ${x.faults.workerKills.length} worker kills, ${x.faults.temporalKills.length} temporal kills, ${x.faults.partitions.length} partitions, ${x.faults.forcedGhosts.filter((g) => g.ok).length} ghosts`,
        );
      }
    })();
    loops.push(progress);

    // Faults: shuffled, at random moments, one at a time (a fault that runs late delays the next).
    const frng = rng.fork('schedule');
    const faults: string[] = [
      ...Array<string>(P.workerKills).fill('worker-kill'),
      ...Array<string>(P.temporalKills).fill('temporal-kill'),
      ...Array<string>(P.partitions).fill('partition'),
      'ghost:orphaned',
      'ghost:stale-heartbeat',
      'ghost:overtime',
      'ghost:dispatch-timeout',
    ];
    frng.shuffle(faults);
    const at = faults.map(() => frng.float(P.faultStartMs, P.injectMs - 30_000)).sort((a, b) => a - b);
    x.log(`fault schedule (s after start): ${faults.map((f, i) => `${f}@${(at[i]! / 1000).toFixed(0)}`).join(' ')}`);
    let temporalKillsDone = 0;
    let lastFaultEnd = 0;
    const injecting = (async () => {
      for (let i = 0; i < faults.length; i++) {
        if (interrupted) return;
        // At the scheduled moment, but never sooner than faultGapMs after the previous fault ended.
        const wait = Math.max(injectStart + at[i]!, lastFaultEnd + P.faultGapMs) - Date.now();
        if (wait > 0) await sleep(wait);
        const f = faults[i]!;
        try {
          if (f === 'worker-kill') await workerKill(x);
          else if (f === 'temporal-kill') {
            const k = temporalKillsDone++;
            await temporalKill(x, k === 0, k >= P.temporalKills - P.longTemporalOutages);
          } else if (f === 'partition') await partition(x);
          else if (f.startsWith('ghost:')) await forceGhost(x, f.slice(6) as GhostRuleName);
        } catch (e) {
          x.note(`fault ${f} threw: ${(e as Error).stack ?? e}`);
        }
        lastFaultEnd = Date.now();
      }
      x.log('fault injection done');
    })();
    await Promise.all([submitting, injecting]);
    const left = injectStart + P.injectMs - Date.now();
    if (left > 0 && !interrupted) {
      x.log(`waiting ${(left / 1000).toFixed(0)}s more until the end of the injection window`);
      await sleep(left);
    }
    stop = true;
    await Promise.all(loops);
    durations.inject_s = (Date.now() - injectStart) / 1000;

    // ---- settle: no more faults; everything is up; wait until nothing is queued/dispatched/running.
    const settleStart = Date.now();
    for (const n of c.nodes) await n.start();
    await ctx.cli(['schedules', 'unpause', 'dispatch-node-probe']);
    for (const n of ctx.nodes()) if (n.status === 'drained') await ctx.cli(['node', 'resume', n.name]);
    for (const w of ctx.workers) if (!w.proc) await startManaged(ctx, w);
    ctx.log(`settling: waiting up to ${P.settleMs / 1000}s for every task to reach a final state`);
    let lastLog = 0;
    const quiet = await poll(
      () => {
        const counts = x.counts();
        const busy = (counts.queued ?? 0) + (counts.dispatched ?? 0) + (counts.running ?? 0);
        const offline = x.nodes().filter((n) => n.status !== 'online').length;
        if (Date.now() - lastLog > 15_000) {
          lastLog = Date.now();
          x.log(`settle: rows ${JSON.stringify(counts)}; nodes not online: ${offline}`);
        }
        return busy === 0 && offline === 0 && !interrupted ? true : interrupted ? true : null;
      },
      P.settleMs,
      1000,
    );
    durations.settle_s = (Date.now() - settleStart) / 1000;
    ctx.log(
      quiet
        ? `settled after ${durations.settle_s.toFixed(0)}s`
        : `NOT settled after ${durations.settle_s.toFixed(0)}s: ${JSON.stringify(ctx.counts())}`,
    );

    // ---- checks
    const checkStart = Date.now();
    sampler.sample();
    result = await runChecks(ctx, { strayGraceMs: 15_000 });
    sampler.stop();
    durations.check_s = (Date.now() - checkStart) / 1000;
    durations.total_s = (Date.now() - T0) / 1000;
    const mustBeZero = ['lost', 'leaked_slots', 'double_runs', 'wrongly_killed', 'stray_processes', 'wrongly_fenced'] as const;
    shortfall = faultShortfall(ctx, result, args, P);
    code = mustBeZero.every((k) => result![k] === 0) && shortfall.length === 0 && !interrupted ? 0 : 1;
    printTable(result, ctx, args, durations);
    if (shortfall.length) console.log(`the run did not prove what it must (exit 1):\n${shortfall.map((x) => `  ${x}`).join('\n')}`);
    const out =
      args.out ?? (args.quick ? path.join(os.tmpdir(), 'dispatch-chaos-results-quick.json') : path.join(REPO, 'chaos', 'results.json'));
    writeResults(out, result, ctx, args, plan.length, durations, P, code, shortfall);
    ctx.log(`results written to ${out}`);
  } catch (e) {
    console.error(`[chaos] run failed: ${(e as Error).stack ?? e}`);
    code = 1;
  } finally {
    if (ctx) ctx.stopping = true;
    sampler?.stop();
    ctx?.closeDb();
    if (c) {
      await c.stop().catch((e: Error) => console.error(`[chaos] teardown: ${e.message}`));
      // Anything of ours still alive after the checks was reported above; do not leave it behind.
      const prefix = ctx?.runDirPrefix ?? c.dir;
      for (const p of scanTaskProcs(prefix)) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      if (args.keep || code !== 0) console.log(`[chaos] run directory kept: ${c.dir} (worker logs: worker-*.log)`);
      else fs.rmSync(c.dir, { recursive: true, force: true });
    }
  }
  return code;
}

function scanCount(x: ChaosCtx): number {
  return new Set(scanTaskProcs(x.runDirPrefix).map((p) => `${p.task}#${p.attempt}`)).size;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function printTable(r: CheckResult, ctx: ChaosCtx, args: Args, d: Record<string, number>): void {
  const rows: [string, string, string][] = [
    ['lost', String(r.lost), 'yes'],
    ['leaked_slots', String(r.leaked_slots), 'yes'],
    ['double_runs', String(r.double_runs), 'yes'],
    ['wrongly_killed', String(r.wrongly_killed), 'yes'],
    ['stray_processes', String(r.stray_processes), 'yes'],
    ['wrongly_fenced', String(r.wrongly_fenced), 'yes'],
    ['fenced', String(r.fenced), 'no (> 0 expected)'],
    [
      'recovery_s',
      r.recovery_s.samples.length
        ? `min ${r.recovery_s.min} / median ${r.recovery_s.median} / max ${r.recovery_s.max} (n=${r.recovery_s.samples.length})`
        : 'no samples',
      'no',
    ],
  ];
  const f = ctx.faults;
  console.log('');
  console.log(
    `chaos run: seed ${args.seed}, ${ctx.submitted.size} tasks submitted, wall time ${(d.total_s ?? 0).toFixed(0)}s (setup ${(d.setup_s ?? 0).toFixed(0)}s, inject ${(d.inject_s ?? 0).toFixed(0)}s, settle ${(d.settle_s ?? 0).toFixed(0)}s, checks ${(d.check_s ?? 0).toFixed(0)}s)`,
  );
  console.log(
    `faults: ${f.workerKills.length} worker SIGKILLs (+restart), ${f.temporalKills.length} Temporal SIGKILLs (+restart), ${f.partitions.length} partitions, forced ghosts ${f.forcedGhosts
      .filter((g) => g.ok)
      .map((g) => `${g.rule}=${g.task}`)
      .join(
        ' ',
      )} (+ node-offline via partitions: ${(r.info.reaped_by_rule as Record<string, number>)['node-offline'] ?? 0} rows), ${f.reaperTriggers.length} reaper triggers, ${f.cancels.filter((c) => c.outcome === 'requested').length} cancels (${f.cancels.filter((c) => c.outcome === 'too-late').length} too late)`,
  );
  console.log('');
  console.log(`${pad('figure', 28)} ${pad('value', 46)} must be 0`);
  console.log(`${'-'.repeat(28)} ${'-'.repeat(46)} ---------`);
  for (const [k, v, m] of rows) console.log(`${pad(k, 28)} ${pad(v, 46)} ${m}${m === 'yes' && v !== '0' ? '   <-- FAIL' : ''}`);
  console.log('');
  for (const [k, v] of Object.entries(DEFINITIONS)) console.log(`  ${k}: ${v}`);
  console.log('');
  for (const k of ['lost', 'double_runs', 'wrongly_killed', 'stray_processes', 'wrongly_fenced'] as const) {
    const list = r.details[k] as unknown[];
    if (list?.length)
      console.log(
        `${k}:\n${list
          .slice(0, 30)
          .map((x) => `  ${JSON.stringify(x)}`)
          .join('\n')}`,
      );
  }
  if (r.leaked_slots) console.log(`slots: ${JSON.stringify(r.details.slots)}`);
  console.log(`outcomes: ${JSON.stringify(r.info.outcomes)}`);
  console.log(
    `reaped by rule: ${JSON.stringify(r.info.reaped_by_rule)}; unexpected reaps (not forced, not node-offline during a partition): ${JSON.stringify(r.info.unexpected_reaps)}`,
  );
  console.log(`node_offline events: ${JSON.stringify(r.info.node_offline_events)}`);
  console.log(`killed and excused: ${JSON.stringify(r.info.killed_and_excused)}`);
  const ux = r.info.unexplained_outcomes as string[];
  if (ux.length)
    console.log(
      `unexplained outcomes (${ux.length}):\n${ux
        .slice(0, 30)
        .map((u) => `  ${u}`)
        .join('\n')}`,
    );
  const unexpected = ctx.workers.flatMap((w) => w.unexpectedExits.map((e) => `${w.name} code ${e.code} signal ${e.signal}`));
  if (unexpected.length) console.log(`unexpected worker exits: ${unexpected.join('; ')}`);
  if (f.notes.length) console.log(`notes:\n${f.notes.map((n) => `  ${n}`).join('\n')}`);
  console.log('');
}

/**
 * What the run was meant to do and did not: too few faults, a partition the system did not notice
 * (the node never went offline, or never came back), a forced ghost its rule did not reap. A run
 * with a shortfall proves less than it claims, so it fails even when every must-be-zero figure is 0.
 */
function faultShortfall(ctx: ChaosCtx, r: CheckResult, args: Args, P: ReturnType<typeof profile>): string[] {
  const f = ctx.faults;
  const out: string[] = [];
  const planned = [...ctx.submitted.values()].filter((t) => t.kind !== 'ghost').length;
  if (planned < args.tasks) out.push(`${planned} tasks submitted, ${args.tasks} planned`);
  if (f.workerKills.filter((k) => k.restartedAfterS !== null).length < P.workerKills)
    out.push(`${f.workerKills.length} worker SIGKILLs with restart, ${P.workerKills} planned`);
  if (f.temporalKills.length < P.temporalKills) out.push(`${f.temporalKills.length} Temporal SIGKILLs, ${P.temporalKills} planned`);
  if (f.partitions.length < P.partitions) out.push(`${f.partitions.length} partitions, ${P.partitions} planned`);
  for (const o of f.partitions) {
    if (o.offlineAtMs === null) out.push(`partition of ${o.node}: the node was never marked offline`);
    if (o.onlineAgainAtMs === null) out.push(`partition of ${o.node}: the node never came back online`);
  }
  for (const rule of ['orphaned', 'stale-heartbeat', 'overtime', 'dispatch-timeout']) {
    if (!f.forcedGhosts.some((g) => g.rule === rule && g.ok)) out.push(`no forced ${rule} ghost was reaped by its rule`);
  }
  if (!((r.info.reaped_by_rule as Record<string, number>)['node-offline'] ?? 0)) out.push('no node-offline ghost was reaped');
  if (f.partitions.some((o) => o.offlineAtMs !== null) && r.fenced === 0) out.push('no attempt fenced itself during a partition');
  // A node declared offline while its sshd was up could have its live tasks reaped: a flaw.
  for (const e of r.info.node_offline_events as { at: string; node: string; during: string }[]) {
    if (e.during.startsWith('NO FAULT')) out.push(`node ${e.node} was declared offline at ${e.at} while its sshd was up`);
  }
  return out;
}

function writeResults(
  file: string,
  r: CheckResult,
  ctx: ChaosCtx,
  args: Args,
  planned: number,
  d: Record<string, number>,
  P: ReturnType<typeof profile>,
  code: number,
  shortfall: string[],
): void {
  const f = ctx.faults;
  const rel = (ms: number) => Math.round((ms - ctx.t0) / 100) / 10;
  const doc = {
    lost: r.lost,
    leaked_slots: r.leaked_slots,
    double_runs: r.double_runs,
    wrongly_killed: r.wrongly_killed,
    stray_processes: r.stray_processes,
    recovery_s: r.recovery_s,
    passed: code === 0,
    shortfall,
    seed: args.seed,
    profile: args.quick ? 'quick' : 'full',
    tasks: { planned, submitted: ctx.submitted.size, submit_failures: ctx.submitFailures.length, outcomes: r.info.outcomes },
    faults: {
      worker_kills: f.workerKills.length,
      temporal_kills: f.temporalKills.length,
      partitions: f.partitions.length,
      forced_ghosts: Object.fromEntries(
        ['orphaned', 'stale-heartbeat', 'overtime', 'dispatch-timeout'].map((rule) => [
          rule,
          f.forcedGhosts.filter((g) => g.rule === rule && g.ok).length,
        ]),
      ),
      node_offline_ghosts: (r.info.reaped_by_rule as Record<string, number>)['node-offline'] ?? 0,
      reaper_triggers: f.reaperTriggers.length,
      cancels_requested: f.cancels.filter((c) => c.outcome === 'requested').length,
      cancels_too_late: f.cancels.filter((c) => c.outcome === 'too-late').length,
    },
    durations_s: Object.fromEntries(Object.entries(d).map(([k, v]) => [k, Math.round(v * 10) / 10])),
    machine: {
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? null,
      memory_mib: Math.round(os.totalmem() / 2 ** 20),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadavg_at_end: os.loadavg().map((x) => Math.round(x * 100) / 100),
    },
    setup: { nodes: NODES, slots_per_node: SLOTS, config: CONFIG, profile: P },
    definitions: DEFINITIONS,
    details: r.details,
    info: r.info,
    fault_log: {
      worker_kills: f.workerKills.map((k) => ({
        at_s: rel(k.atMs),
        worker: k.worker,
        restarted_after_s: k.restartedAfterS === null ? null : Math.round(k.restartedAfterS * 10) / 10,
        error: k.error,
      })),
      recovery: f.recovery.map((x) => ({
        at_s: rel(x.killAtMs),
        worker: x.worker,
        s: x.s === null ? null : Math.round(x.s * 10) / 10,
        per_task: x.perTask.map((p) => ({ ...p, s: Math.round(p.s * 10) / 10 })),
        note: x.note,
      })),
      temporal_kills: f.temporalKills.map((k) => ({
        at_s: rel(k.atMs),
        down_s: Math.round(k.downS * 10) / 10,
        restart_s: Math.round(k.restartS * 10) / 10,
        direct_reap: k.directReap,
      })),
      partitions: f.partitions.map((o) => ({
        node: o.node,
        from_s: rel(o.fromMs),
        to_s: o.toMs ? rel(o.toMs) : null,
        offline_at_s: o.offlineAtMs ? rel(o.offlineAtMs) : null,
        online_again_at_s: o.onlineAgainAtMs ? rel(o.onlineAgainAtMs) : null,
      })),
      forced_ghosts: f.forcedGhosts.map((g) => ({
        rule: g.rule,
        task: g.task,
        at_s: rel(g.atMs),
        reaped_as: g.reapedAs,
        ok: g.ok,
        note: g.note,
      })),
      reaper_triggers: f.reaperTriggers.map((t) => ({ at_s: rel(t.atMs), how: t.how, code: t.code, summary: t.summary.slice(0, 300) })),
      cancels: f.cancels.map((c) => ({ at_s: rel(c.atMs), task: c.task, outcome: c.outcome, detail: c.detail })),
      unexpected_worker_exits: ctx.workers.flatMap((w) =>
        w.unexpectedExits.map((e) => ({ worker: w.name, at_s: rel(e.atMs), code: e.code, signal: e.signal })),
      ),
      notes: f.notes,
    },
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
