/**
 * The fault injector: worker SIGKILLs (with restart and a measured re-attach time), Temporal dev
 * server SIGKILLs and restarts on the same database file, node partitions (sshd stopped past the
 * offline threshold), one forced ghost of each reaper rule, and reaper sweeps on demand.
 */
import { execFile } from 'node:child_process';
import type { SshNode } from '../test/helpers/sshd';
import { temporalBin } from '../test/helpers/temporal';
import { specsFromArgs } from '../src/cli/submit';
import { startTask } from '../src/client/tasks';
import { UserError } from '../src/common/errors';
import { abortAll, ChaosCtx, isoAgo, poll, sleep, type ManagedWorker, type Outage, type RecoverySample } from './ctx';
import type { PlannedTask } from './workload';

// ---------------------------------------------------------------- workers

/** Starts (or restarts) a managed worker; a watchdog restarts it if it ever exits on its own. */
export async function startManaged(ctx: ChaosCtx, w: ManagedWorker): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      const p = await ctx.c.startWorker(w.queues);
      w.proc = p;
      w.identity = ctx.identityOf(p.proc.pid);
      w.expectedExit = false;
      w.starts++;
      p.proc.once('exit', (code, signal) => {
        if (w.proc !== p) return;
        w.proc = null;
        if (w.expectedExit || ctx.stopping) return;
        w.unexpectedExits.push({ atMs: Date.now(), code, signal });
        ctx.note(`worker ${w.name} (${w.identity}) exited on its own (code ${code}, signal ${signal}); log ${p.logFile}; restarting it`);
        void sleep(1000).then(() =>
          ctx.stopping || w.proc
            ? undefined
            : startManaged(ctx, w).catch((e: Error) => ctx.note(`restart of ${w.name} failed: ${e.message}`)),
        );
      });
      return;
    } catch (e) {
      if (i >= 30 || abortAll.signal.aborted) throw e;
      ctx.log(`worker ${w.name} did not start (${(e as Error).message.split('\n')[0]!.slice(0, 200)}); retrying`);
      await sleep(2000);
    }
  }
}

function tsMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number | null {
  if (!t || t.seconds === undefined || t.seconds === null) return null;
  const s = t.seconds as number | { toNumber(): number };
  const sec = typeof s === 'object' ? s.toNumber() : Number(s);
  return sec * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

interface SuperviseSeen {
  task: string;
  activityId: string;
  attempt: number;
  identity: string;
}

/** The supervise activities of (a sample of) running tasks, with the worker that runs each. */
async function superviseMap(ctx: ChaosCtx, limit = 24): Promise<SuperviseSeen[]> {
  const now = Date.now();
  const rows = ctx.tasks(`status = 'running'`);
  // Prefer tasks with the most planned time left: they are still running when we look again.
  const left = (id: string, started: string | null): number => {
    const p = ctx.submitted.get(id);
    return p && started ? Date.parse(started) + p.sleepS * 1000 - now : 0;
  };
  const pick = rows
    .filter((r) => !ctx.forced.has(r.id) && !ctx.cancelled.has(r.id) && left(r.id, r.started_at) > 6000)
    .sort((a, b) => left(b.id, b.started_at) - left(a.id, a.started_at))
    .slice(0, limit);
  const out: SuperviseSeen[] = [];
  await Promise.all(
    pick.map(async (r) => {
      try {
        const d = await ctx.c.client.workflow.getHandle(`task-${r.id}`).describe();
        for (const pa of d.raw.pendingActivities ?? []) {
          if (pa.activityType?.name !== 'supervise' || !pa.lastWorkerIdentity) continue;
          out.push({ task: r.id, activityId: pa.activityId ?? '', attempt: pa.attempt ?? 1, identity: pa.lastWorkerIdentity });
        }
      } catch {
        // closed or server busy: skip
      }
    }),
  );
  return out;
}

/**
 * Polls the tracked tasks' workflows until each one's supervise activity heartbeats from another
 * worker process: recovery = that heartbeat's server time - the SIGKILL time.
 */
async function measureRecovery(
  ctx: ChaosCtx,
  killAtMs: number,
  identity: string,
  tracked: SuperviseSeen[],
): Promise<RecoverySample['perTask']> {
  const per: RecoverySample['perTask'] = [];
  const pending = new Map(tracked.map((t) => [t.task, t]));
  const until = killAtMs + 90_000;
  while (pending.size && Date.now() < until && !abortAll.signal.aborted) {
    await Promise.all(
      [...pending.values()].map(async (t) => {
        try {
          const d = await ctx.c.client.workflow.getHandle(`task-${t.task}`).describe();
          if (d.status.name !== 'RUNNING') {
            pending.delete(t.task);
            return;
          }
          for (const pa of d.raw.pendingActivities ?? []) {
            if (pa.activityType?.name !== 'supervise') continue;
            const hb = tsMs(pa.lastHeartbeatTime);
            const started = tsMs(pa.lastStartedTime);
            const other = !!pa.lastWorkerIdentity && pa.lastWorkerIdentity !== identity;
            if (pa.activityId === t.activityId) {
              if (other && hb !== null && hb > killAtMs) {
                per.push({
                  task: t.task,
                  s: (hb - killAtMs) / 1000,
                  how: `heartbeat of attempt ${pa.attempt} on ${pa.lastWorkerIdentity}`,
                });
                pending.delete(t.task);
              } else if (other && started !== null && started > killAtMs && (pa.attempt ?? 1) > t.attempt) {
                // Started on the new worker but no heartbeat seen yet: wait for it (next poll).
              }
            } else {
              // The watched slice already finished on another worker and a new slice runs: an upper bound.
              per.push({ task: t.task, s: (Date.now() - killAtMs) / 1000, how: 'later slice seen (upper bound)' });
              pending.delete(t.task);
            }
          }
        } catch {
          // server busy: poll again
        }
      }),
    );
    await sleep(200);
  }
  return per;
}

export async function workerKill(ctx: ChaosCtx): Promise<void> {
  const alive = ctx.workers.filter((w) => w.proc && w.identity);
  if (alive.length === 0) {
    ctx.note('worker kill skipped: no live worker');
    return;
  }
  const sup = await superviseMap(ctx);
  const on = (w: ManagedWorker) => sup.filter((s) => s.identity === w.identity);
  let target = ctx.rng.pick(alive);
  if (on(target).length === 0) target = alive.find((w) => on(w).length > 0) ?? target;
  const tracked = on(target).slice(0, 3);
  const identity = target.identity!;
  const proc = target.proc!;
  target.expectedExit = true;
  const killAtMs = Date.now();
  proc.kill9();
  const restartAfterMs = ctx.rng.float(500, 4000);
  ctx.log(
    `FAULT worker SIGKILL #${ctx.faults.workerKills.length + 1}: ${target.name} (${identity}), supervising ${on(target).length} of the ${sup.length} sampled tasks; restart in ${(restartAfterMs / 1000).toFixed(1)}s`,
  );
  const entry: (typeof ctx.faults.workerKills)[number] = { atMs: killAtMs, worker: target.name, restartedAfterS: null };
  ctx.faults.workerKills.push(entry);
  const restart = (async () => {
    await sleep(restartAfterMs);
    try {
      await startManaged(ctx, target);
      entry.restartedAfterS = (Date.now() - killAtMs) / 1000;
    } catch (e) {
      entry.error = (e as Error).message;
      ctx.note(`worker ${target.name} could not be restarted: ${entry.error}`);
    }
  })();
  const per = tracked.length ? await measureRecovery(ctx, killAtMs, identity, tracked) : [];
  await restart;
  const s = per.length ? Math.max(...per.map((p) => p.s)) : null;
  ctx.faults.recovery.push({
    killAtMs,
    worker: target.name,
    identity,
    tracked: tracked.map((t) => t.task),
    perTask: per,
    s,
    note:
      tracked.length === 0
        ? 'the killed worker supervised none of the sampled running tasks'
        : per.length < tracked.length
          ? 'some tracked tasks ended before re-attaching'
          : undefined,
  });
  ctx.log(
    `  recovery after the kill of ${target.name}: ${s === null ? 'n/a' : `${s.toFixed(1)}s`} (${per.map((p) => `${p.task} ${p.s.toFixed(1)}s`).join(', ') || 'nothing tracked'}); restarted after ${entry.restartedAfterS?.toFixed(1) ?? '?'}s`,
  );
}

// ---------------------------------------------------------------- Temporal

/**
 * SIGKILLs the Temporal dev server and restarts it on the same database. `long`: down for longer
 * than fence_after (an upgrade, a database failover), which must fence no task (wrongly_fenced).
 */
export async function temporalKill(ctx: ChaosCtx, directReap: boolean, long = false): Promise<void> {
  const atMs = Date.now();
  const downMs = long ? ((ctx.cfg.fence_after || 0) + ctx.rng.float(15, 25)) * 1000 : ctx.rng.float(2000, 8000);
  ctx.log(
    `FAULT Temporal dev server SIGKILL #${ctx.faults.temporalKills.length + 1}${long ? ' (a long outage, past fence_after)' : ''}; restart on the same db file in ${(downMs / 1000).toFixed(1)}s${directReap ? ' (and one `dispatch reap --direct` while it is down)' : ''}`,
  );
  ctx.temporalDown = true;
  ctx.c.temporal.kill9();
  let direct: string | undefined;
  const during = (async () => {
    if (!directReap) return;
    await sleep(500);
    // What an operator does while the server is down: a sweep in-process, without Temporal.
    const r = await ctx.cli(['reap', '--direct', '--json'], 60_000);
    direct = r.code === 0 ? summarizeReport(r.stdout) : `exit ${r.code}: ${r.stderr.trim().split('\n')[0]?.slice(0, 200)}`;
    ctx.log(`  reap --direct during the outage: ${direct}`);
  })();
  await sleep(downMs);
  const r0 = Date.now();
  for (let i = 1; ; i++) {
    try {
      await ctx.c.temporal.restart();
      break;
    } catch (e) {
      ctx.note(`Temporal restart attempt ${i} failed: ${(e as Error).message.split('\n')[0]}`);
      if (i >= 5) throw e;
      await sleep(2000);
    }
  }
  ctx.temporalDown = false;
  await during;
  const e = { atMs, downS: (Date.now() - atMs) / 1000, restartS: (Date.now() - r0) / 1000, directReap: direct };
  ctx.faults.temporalKills.push(e);
  ctx.log(`  Temporal back after ${e.downS.toFixed(1)}s (restart took ${e.restartS.toFixed(1)}s)`);
}

export function summarizeReport(stdout: string): string {
  try {
    const r = JSON.parse(stdout) as {
      ghosts_found: number;
      cleaned: string[];
      skipped: unknown[];
      drift_fixed: unknown[];
      ghosts: { id: string; rule: string; kill: string }[];
    };
    const g = r.ghosts.map((x) => `${x.id}:${x.rule}:${x.kill}`).join(' ');
    return `${r.ghosts_found} ghosts, ${r.cleaned.length} cleaned, ${r.skipped.length} skipped, ${r.drift_fixed.length} drift${g ? ` [${g}]` : ''}`;
  } catch {
    return stdout.trim().slice(0, 200);
  }
}

// ---------------------------------------------------------------- nodes

function runningOn(ctx: ChaosCtx, node: string): string[] {
  return ctx.tasks(`node = ? AND status IN ('dispatched', 'running')`, node).map((r) => r.id);
}

/** What the node-probe schedule is doing: its running workflow and that workflow's pending activities. */
export async function probeScheduleState(ctx: ChaosCtx): Promise<string> {
  try {
    const d = await ctx.c.client.schedule.getHandle('dispatch-node-probe').describe();
    const running = d.info.runningActions.map((a) => a.workflow.workflowId);
    const parts: string[] = [
      `paused=${d.state.paused}`,
      `last action ${d.info.recentActions.at(-1)?.takenAt.toISOString() ?? '-'}`,
      `running ${running.join(',') || '-'}`,
    ];
    for (const id of running) {
      const w = await ctx.c.client.workflow.getHandle(id).describe();
      for (const pa of w.raw.pendingActivities ?? []) {
        parts.push(
          `${id}: pending ${pa.activityType?.name} attempt ${pa.attempt} state ${pa.state} started ${tsMs(pa.lastStartedTime) ? new Date(tsMs(pa.lastStartedTime)!).toISOString() : '-'} on ${pa.lastWorkerIdentity || '-'}`,
        );
      }
    }
    return parts.join('; ');
  } catch (e) {
    return `cannot describe: ${(e as Error).message}`;
  }
}

export async function partition(ctx: ChaosCtx): Promise<void> {
  const free = ctx.c.nodes.filter((n) => !ctx.busyNodes.has(n.name));
  if (free.length === 0) {
    ctx.note('partition skipped: every node is busy with another fault');
    return;
  }
  // The node with the most active tasks, so the node-offline rule has something to find.
  const load = (n: SshNode) => runningOn(ctx, n.name).length;
  const node = free.sort((a, b) => load(b) - load(a) || a.name.localeCompare(b.name))[0]!;
  // A task that ends on its own before fence_after proves no fence either (a seed of the quick run
  // cut off a node whose one task was 1 s from its end).
  const outlastsFence = (id: string): boolean => {
    const t = ctx.submitted.get(id);
    const started = Date.parse(ctx.task(id)?.started_at ?? '') || Date.now();
    return t !== undefined && started + t.sleepS * 1000 - Date.now() > ((ctx.cfg.fence_after || 0) + 15) * 1000;
  };
  if (!runningOn(ctx, node.name).some(outlastsFence)) {
    // Nothing there will still run when the fence falls: a task pinned to it, whose later
    // attempts end at once.
    const t: PlannedTask = {
      id: `gh-partition-${++ghostSeq}`,
      kind: 'ghost',
      sleepS: 300,
      command: 'echo "partition victim $DISPATCH_TASK"; [ "$DISPATCH_ATTEMPT" -ge 2 ] && exit 0; sleep 300',
      submitAtMs: Date.now() - ctx.t0,
      priority: 1,
      dependsOn: [],
      modifies: [],
      maxRuntimeS: null,
      pinNode: node.name,
      cancelAfterMs: null,
      expect: 'completed',
    };
    ctx.log(`  no task on ${node.name} outlasts fence_after: submitting ${t.id} pinned to it`);
    if (await submitTask(ctx, t)) await poll(() => ctx.task(t.id)?.status === 'running', 60_000, 300);
  }
  // Longer than outage_tolerance + fence_after + kill_grace + the reaper's margin: the cut-off tasks
  // fence themselves, and the reaper requeues them while the node is still away.
  const fenceS = (ctx.cfg.outage_tolerance || 0) + (ctx.cfg.fence_after || 0) + ctx.cfg.kill_grace + 30;
  // (+ one slice on a worker that had not supervised the task: its record starts at that slice.)
  const minMs = ctx.rng.float(Math.max(25_000, (fenceS + 35) * 1000), Math.max(40_000, (fenceS + 50) * 1000));
  ctx.busyNodes.add(node.name);
  const before = runningOn(ctx, node.name);
  const o: Outage = { node: node.name, kind: 'partition', fromMs: Date.now(), toMs: null, offlineAtMs: null, onlineAgainAtMs: null };
  ctx.outages.push(o);
  ctx.faults.partitions.push(o);
  ctx.log(
    `FAULT partition #${ctx.faults.partitions.length}: sshd of ${node.name} stopped (sessions dropped) for >= ${(minMs / 1000).toFixed(0)}s; ${before.length} active tasks on it`,
  );
  try {
    await node.stop();
    const off = await poll(() => ctx.nodes().find((n) => n.name === node.name)?.status === 'offline', 60_000, 300);
    o.offlineAtMs = off ? Date.now() : null;
    if (off) ctx.log(`  ${node.name} offline after ${((Date.now() - o.fromMs) / 1000).toFixed(1)}s`);
    else
      ctx.note(
        `partition of ${node.name}: sshd down for 60s but the node was NOT marked offline; probe schedule: ${await probeScheduleState(ctx)}`,
      );
    if (off) {
      // A sweep while it is away: its active rows are node-offline ghosts.
      await triggerReaper(ctx, 'schedule');
      // With requeue they wait for their fence first.
      const bookMs = Math.max(30_000, minMs - (Date.now() - o.fromMs) - 2000);
      const reaped = await poll(
        () => {
          const left = runningOn(ctx, node.name);
          return left.length === 0 ? true : null;
        },
        bookMs,
        500,
      );
      const rules = before.map((id) => `${id}:${ctx.reapedRule(id) ?? ctx.task(id)?.status}`);
      ctx.log(
        `  active rows on ${node.name} ${reaped ? 'all booked' : `NOT all booked after ${(bookMs / 1000).toFixed(0)}s`}: ${rules.join(' ') || '(none)'}`,
      );
    }
    const left = o.fromMs + minMs - Date.now();
    if (left > 0) await sleep(left);
  } finally {
    await node.start();
    o.toMs = Date.now();
    ctx.log(`  sshd of ${node.name} started again after ${((o.toMs - o.fromMs) / 1000).toFixed(1)}s`);
  }
  const back = await poll(() => ctx.nodes().find((n) => n.name === node.name)?.status === 'online', 120_000, 500);
  o.onlineAgainAtMs = back ? Date.now() : null;
  ctx.busyNodes.delete(node.name);
  ctx.log(
    `  ${node.name} ${back ? `online again ${((Date.now() - o.toMs) / 1000).toFixed(1)}s after sshd came back` : 'NOT online again after 120s'}`,
  );
}

// ---------------------------------------------------------------- reaper

export async function triggerReaper(ctx: ChaosCtx, how: 'schedule' | 'reap'): Promise<void> {
  const atMs = Date.now();
  const r =
    how === 'schedule' ? await ctx.cli(['schedules', 'trigger', 'dispatch-reaper'], 60_000) : await ctx.cli(['reap', '--json'], 120_000);
  const summary =
    r.code === 0
      ? how === 'reap'
        ? summarizeReport(r.stdout)
        : r.stdout.trim()
      : `exit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr.trim().split('\n')[0]?.slice(0, 200)}`;
  ctx.faults.reaperTriggers.push({ atMs, how, code: r.code, summary });
  ctx.log(`reaper ${how === 'schedule' ? 'schedules trigger dispatch-reaper' : 'dispatch reap --json'}: ${summary}`);
}

// ---------------------------------------------------------------- submissions

export async function submitTask(ctx: ChaosCtx, t: PlannedTask, deadlineMs = 120_000): Promise<boolean> {
  const client = ctx.c.client;
  const flags = {
    id: t.id,
    command: t.command,
    project: 'chaos',
    priority: String(t.priority),
    dependsOn: t.dependsOn.length ? t.dependsOn.join(',') : undefined,
    modifies: t.modifies.length ? t.modifies.join(',') : undefined,
    maxRuntime: t.maxRuntimeS !== null ? `${t.maxRuntimeS}s` : undefined,
    node: t.pinNode ?? undefined,
  };
  const until = Date.now() + deadlineMs;
  let last = '';
  for (;;) {
    try {
      const [spec] = specsFromArgs([], flags, ctx.cfg);
      await startTask(client, spec!, ctx.cfg, null);
      ctx.submitted.set(t.id, { ...t, submittedAtMs: Date.now() });
      return true;
    } catch (e) {
      if (e instanceof UserError) {
        ctx.submitFailures.push({ task: t.id, error: e.message });
        ctx.note(`submit of ${t.id} refused: ${e.message}`);
        return false;
      }
      last = (e as Error).message;
    }
    if (Date.now() > until || abortAll.signal.aborted) {
      ctx.submitFailures.push({ task: t.id, error: last });
      ctx.note(`submit of ${t.id} failed for ${deadlineMs / 1000}s: ${last.slice(0, 200)}`);
      return false;
    }
    await sleep(1000);
  }
}

// ---------------------------------------------------------------- forced ghosts

let ghostSeq = 0;

/** A running task with time left (so the fault hits a live process), or a dedicated one. */
async function victim(ctx: ChaosCtx, rule: string): Promise<string | null> {
  const now = Date.now();
  const cands = ctx.tasks(`status = 'running'`).filter((r) => {
    const p = ctx.submitted.get(r.id);
    if (!p || ctx.forced.has(r.id) || p.cancelAfterMs !== null || ctx.cancelled.has(r.id)) return false;
    if (r.node && ctx.busyNodes.has(r.node)) return false;
    if (p.kind !== 'long' && p.kind !== 'short') return false;
    return r.started_at !== null && Date.parse(r.started_at) + p.sleepS * 1000 - now > 25_000;
  });
  if (cands.length) return ctx.rng.pick(cands).id;
  const t: PlannedTask = {
    id: `gh-${rule}-${++ghostSeq}`,
    kind: 'ghost',
    sleepS: 240,
    // ghost_action requeue runs a reaped ghost again: a later attempt ends at once.
    command: 'echo "ghost victim $DISPATCH_TASK"; [ "$DISPATCH_ATTEMPT" -ge 2 ] && exit 0; sleep 240',
    submitAtMs: now - ctx.t0,
    priority: 1,
    dependsOn: [],
    modifies: [],
    maxRuntimeS: null,
    pinNode: null,
    cancelAfterMs: null,
    expect: 'failed',
  };
  ctx.log(`  no running task with time left for ${rule}: submitting ${t.id}`);
  if (!(await submitTask(ctx, t))) return null;
  const ok = await poll(() => ctx.task(t.id)?.status === 'running', 120_000, 300);
  return ok ? t.id : null;
}

async function awaitReaped(ctx: ChaosCtx, id: string, timeoutMs: number, nudgeAfterMs: number | null): Promise<string | null> {
  const start = Date.now();
  let nudged = false;
  return poll(
    async () => {
      const rule = ctx.reapedRule(id);
      if (rule) return rule;
      if (nudgeAfterMs !== null && !nudged && Date.now() - start > nudgeAfterMs) {
        nudged = true;
        await triggerReaper(ctx, 'schedule');
      }
      return null;
    },
    timeoutMs,
    500,
  );
}

function recordGhost(ctx: ChaosCtx, rule: string, id: string, atMs: number, reapedAs: string | null, note?: string): boolean {
  const ok = reapedAs === rule;
  ctx.faults.forcedGhosts.push({ rule, task: id, atMs, reapedAs, ok, note });
  ctx.log(
    `  forced ${rule} ghost ${id}: reaped as ${reapedAs ?? 'NOT reaped'}${ok ? '' : ' (will retry with another task)'}${note ? ` (${note})` : ''}`,
  );
  return ok;
}

export async function forceOrphaned(ctx: ChaosCtx): Promise<boolean> {
  const id = await victim(ctx, 'orphaned');
  if (!id) return recordGhost(ctx, 'orphaned', '-', Date.now(), null, 'no victim');
  const atMs = Date.now();
  ctx.forced.set(id, { rule: 'orphaned', atMs });
  ctx.log(`FAULT forced ghost orphaned: temporal workflow terminate -w task-${id}`);
  const err = await new Promise<string | null>((resolve) =>
    execFile(
      temporalBin(),
      ['workflow', 'terminate', '-w', `task-${id}`, '--reason', 'chaos: forced orphan', '--address', ctx.c.temporal.address],
      (e, _o, se) => resolve(e ? `${e.message} ${se}` : null),
    ),
  );
  if (err) return recordGhost(ctx, 'orphaned', id, atMs, null, `terminate failed: ${err.slice(0, 200)}`);
  // The rule waits 2 x lease of quiet on the row; the 10 s schedule finds it, a trigger nudges.
  const rule = await awaitReaped(ctx, id, 90_000, 15_000);
  return recordGhost(ctx, 'orphaned', id, atMs, rule);
}

/** Ages a live row right after the workflow refreshed it, then sweeps only that id. */
async function ageAndReap(ctx: ChaosCtx, rule: string, set: (id: string) => Record<string, string | number>): Promise<boolean> {
  const id = await victim(ctx, rule);
  if (!id) return recordGhost(ctx, rule, '-', Date.now(), null, 'no victim');
  ctx.forced.set(id, { rule, atMs: Date.now() });
  const hb0 = ctx.task(id)?.last_heartbeat;
  await poll(() => ctx.task(id)?.last_heartbeat !== hb0, 10_000, 100);
  const atMs = Date.now();
  ctx.forced.set(id, { rule, atMs });
  const changed = ctx.age(id, set(id), `AND status = 'running'`);
  ctx.log(`FAULT forced ghost ${rule}: aged ${Object.keys(set(id)).join(', ')} of ${id} (${changed} row)`);
  const r = await ctx.cli(['reap', '--json', '--ids', id], 120_000);
  const rep = r.code === 0 ? summarizeReport(r.stdout) : `exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`;
  const reapedAs = await awaitReaped(ctx, id, 60_000, 20_000);
  return recordGhost(ctx, rule, id, atMs, reapedAs, `reap --ids: ${rep}`);
}

export function forceStale(ctx: ChaosCtx): Promise<boolean> {
  return ageAndReap(ctx, 'stale-heartbeat', () => ({ last_heartbeat: isoAgo(600) }));
}

export function forceOvertime(ctx: ChaosCtx): Promise<boolean> {
  return ageAndReap(ctx, 'overtime', () => ({ started_at: isoAgo(3 * 3600), max_runtime_s: 3600 }));
}

/**
 * A task pinned to a node whose sshd is stopped stays `dispatched` (its launch cannot connect).
 * The node probe schedule is paused meanwhile, or the node would go offline first (and the row
 * would be a node-offline ghost). The node is drained until it has a free slot, so the pinned
 * task (priority 0) is the first to get it.
 */
export async function forceDispatchTimeout(ctx: ChaosCtx): Promise<boolean> {
  const rule = 'dispatch-timeout';
  const free = ctx.c.nodes.filter((n) => !ctx.busyNodes.has(n.name));
  if (free.length === 0) return recordGhost(ctx, rule, '-', Date.now(), null, 'every node busy');
  const node = ctx.rng.pick(free);
  ctx.busyNodes.add(node.name);
  const id = `gh-${rule}-${++ghostSeq}`;
  let o: Outage | null = null;
  let paused = false;
  let drained = false;
  ctx.log(`FAULT forced ghost ${rule}: drain ${node.name} until a slot is free, pause the probe, stop its sshd, pin ${id} to it`);
  try {
    drained = (await ctx.cli(['node', 'drain', node.name])).code === 0;
    const slot = await poll(
      () => {
        const n = ctx.nodes().find((x) => x.name === node.name);
        return n && (n.running_count ?? 0) < (n.slots ?? 0);
      },
      180_000,
      500,
    );
    if (!slot) return recordGhost(ctx, rule, id, Date.now(), null, `${node.name} had no free slot within 180s`);
    paused = (await ctx.cli(['schedules', 'pause', 'dispatch-node-probe'])).code === 0;
    o = { node: node.name, kind: 'dispatch-timeout-ghost', fromMs: Date.now(), toMs: null };
    ctx.outages.push(o);
    await node.stop();
    const t: PlannedTask = {
      id,
      kind: 'ghost',
      sleepS: 20,
      command: 'echo "never launched: $DISPATCH_TASK"; sleep 20',
      submitAtMs: Date.now() - ctx.t0,
      priority: 0,
      dependsOn: [],
      modifies: [],
      maxRuntimeS: null,
      pinNode: node.name,
      cancelAfterMs: null,
      expect: 'failed',
    };
    if (!(await submitTask(ctx, t))) return recordGhost(ctx, rule, id, Date.now(), null, 'submit failed');
    ctx.forced.set(id, { rule, atMs: Date.now() });
    await ctx.cli(['node', 'resume', node.name]);
    drained = false;
    const disp = await poll(() => ctx.task(id)?.status === 'dispatched', 60_000, 250);
    if (!disp) return recordGhost(ctx, rule, id, Date.now(), null, `not dispatched within 60s (row ${ctx.task(id)?.status})`);
    const atMs = Date.now();
    ctx.age(id, { dispatched_at: isoAgo(600), updated_at: isoAgo(600) }, `AND status = 'dispatched'`);
    const r = await ctx.cli(['reap', '--json', '--ids', id], 120_000);
    const rep = r.code === 0 ? summarizeReport(r.stdout) : `exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`;
    const reapedAs = await awaitReaped(ctx, id, 60_000, 20_000);
    return recordGhost(ctx, rule, id, atMs, reapedAs, `reap --ids: ${rep}`);
  } finally {
    await node.start();
    if (o) o.toMs = Date.now();
    if (drained) await ctx.cli(['node', 'resume', node.name]);
    if (paused) await ctx.cli(['schedules', 'unpause', 'dispatch-node-probe']);
    ctx.busyNodes.delete(node.name);
    ctx.log(`  sshd of ${node.name} started again; probe schedule unpaused`);
  }
}

export type GhostRuleName = 'orphaned' | 'stale-heartbeat' | 'overtime' | 'dispatch-timeout';

export async function forceGhost(ctx: ChaosCtx, rule: GhostRuleName): Promise<void> {
  const fn = { orphaned: forceOrphaned, 'stale-heartbeat': forceStale, overtime: forceOvertime, 'dispatch-timeout': forceDispatchTimeout }[
    rule
  ];
  for (let i = 0; i < 3; i++) {
    if (await fn(ctx)) return;
  }
  ctx.note(`could not force a ${rule} ghost in 3 tries`);
}
