/**
 * The end-of-run checks, from three independent sources: the database (tasks, nodes, events), the
 * wrapper's own per-attempt records (`<work_dir>/<task>/attempt-<n>/status.json` on each node) and
 * the once-a-second process sampler (every node is 127.0.0.1, so /proc sees every task process).
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TaskRow } from '../src/common/types';
import { cutsNode, type ChaosCtx } from './ctx';
import { scanTaskProcs, type LiveProc } from './sampler';

const FINAL = new Set(['completed', 'failed', 'cancelled', 'blocked']);

export interface AttemptRecord {
  task: string;
  attempt: number;
  node: string;
  dir: string;
  hasStatus: boolean;
  pid: number | null;
  starttime: string | null;
  startedAt: number | null;
  state: string | null;
  exitCode: number | null;
  endedAt: number | null;
  /** When its watchdog fenced it (epoch s, from DIR/fenced), or null. */
  fencedAt: number | null;
}

export function readAttemptRecords(ctx: ChaosCtx): AttemptRecord[] {
  const out: AttemptRecord[] = [];
  for (const n of ctx.c.nodes) {
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(n.workDir);
    } catch {
      continue;
    }
    for (const task of tasks) {
      let attempts: string[] = [];
      try {
        attempts = fs.readdirSync(path.join(n.workDir, task)).filter((d) => /^attempt-[0-9]+(\.[0-9a-f]{12})?$/.test(d));
      } catch {
        continue;
      }
      for (const a of attempts) {
        const dir = path.join(n.workDir, task, a);
        const rec: AttemptRecord = {
          task,
          attempt: parseInt(a.slice(8), 10),
          node: n.name,
          dir,
          hasStatus: false,
          pid: null,
          starttime: null,
          startedAt: null,
          state: null,
          exitCode: null,
          endedAt: null,
          fencedAt: null,
        };
        try {
          const f = JSON.parse(fs.readFileSync(path.join(dir, 'fenced'), 'utf8')) as Record<string, unknown>;
          rec.fencedAt = typeof f.fenced_at === 'number' ? f.fenced_at : null;
        } catch {
          // not fenced
        }
        try {
          const s = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')) as Record<string, unknown>;
          rec.hasStatus = true;
          rec.pid = typeof s.pid === 'number' ? s.pid : null;
          rec.starttime = typeof s.starttime === 'string' ? s.starttime : null;
          rec.startedAt = typeof s.started_at === 'number' ? s.started_at : null;
          rec.state = typeof s.state === 'string' ? s.state : null;
          rec.exitCode = typeof s.exit_code === 'number' ? s.exit_code : null;
          rec.endedAt = typeof s.ended_at === 'number' ? s.ended_at : null;
        } catch {
          // no status.json (launch cut off before the wrapper wrote it)
        }
        out.push(rec);
      }
    }
  }
  return out;
}

export interface CheckResult {
  lost: number;
  leaked_slots: number;
  double_runs: number;
  wrongly_killed: number;
  stray_processes: number;
  /** Attempts that fenced themselves while their node was cut off (expected > 0 with partitions). */
  fenced: number;
  /** Attempts that fenced themselves while their node was reachable: must be 0. */
  wrongly_fenced: number;
  recovery_s: { min: number | null; median: number | null; max: number | null; samples: number[] };
  details: Record<string, unknown>;
  info: Record<string, unknown>;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);

/**
 * Exact definitions, printed with the table. wrongly_killed in detail: an attempt is "killed" when
 * its status.json says state "running" (the wrapper never wrote an exit code) or an exit code >= 128
 * (the command died of a signal; the chaos commands only ever exit 0, 3 or 4), and no live process
 * of it is left. Such an attempt was killed rightly only if one of these held for THAT attempt:
 *  - cancelled: the chaos run sent `dispatch cancel` (exit 0) while the attempt was alive
 *    (last seen alive >= the time the cancel was sent - 1 s);
 *  - forced ghost: the task was made a ghost on purpose and the attempt was alive at that moment;
 *  - partition: its node's sshd was stopped as a partition at some time while the attempt was
 *    alive (the node goes offline, its rows are node-offline ghosts, leftovers are killed on return);
 *  - max_runtime: it lived up to its cap (last seen alive >= started_at + max_runtime_s - 2 s).
 * "Alive" spans [status.json started_at, ended_at or the last /proc sample that saw the attempt].
 * Everything else is a process killed while it was supervised (heartbeating), under its runtime cap
 * and not cancelled. Kills that another dispatch deployment on this machine recorded (its node
 * recovery lists every DISPATCH_TASK process of the host) are reported apart, not in this figure.
 */
export const DEFINITIONS: Record<string, string> = {
  lost: 'tasks we submitted that are missing from the DB, not in a final state (completed/failed/cancelled/blocked) after the settle period, or failed/cancelled/blocked with an empty error',
  leaked_slots: 'sum over nodes of |nodes.running_count - number of dispatched+running rows on that node|',
  double_runs:
    'tasks with two different attempts alive at the same moment: seen together in one /proc sample, or whose status.json intervals [started_at, ended_at | last seen alive] certainly overlap (second-resolution stamps: a.start+1 <= b.end and b.start+1 <= a.end)',
  wrongly_killed:
    "attempts (status.json records) that were killed - the wrapper never recorded an exit code, or recorded one >= 128 (a signal), and the process is gone - although none of these excuses holds: (a) the task got an acknowledged `dispatch cancel` while this attempt was alive, (b) the task was a forced ghost and this attempt was alive when the fault was applied, (c) a partition of the attempt's node overlapped the attempt's life, (d) it reached its runtime cap (last seen alive >= started_at + max_runtime_s - 2 s). A kill by another dispatch deployment on the same host counts too (killed_by names it): a deployment must never touch processes outside its own work dir",
  fenced:
    'attempts whose watchdog fenced them (DIR/fenced) at a moment when a partition of their node was in force: proof that a cut-off node stops its own work (expected > 0 when partitions outlast fence_after)',
  wrongly_fenced:
    'attempts whose watchdog fenced them at any other moment, i.e. while their node was reachable by its supervisor (between the start of any outage that stops its sshd, a partition or the dispatch-timeout ghost stopping it, and 10 s after its end counts as cut off; an attempt of a forced ghost, fenced after the fault took its supervisor away, is excused and listed as fenced_after_forced_ghost)',
  stray_processes:
    'live (non-zombie) processes with DISPATCH_TASK in their environment and DISPATCH_DIR under this run, after the settle period (15 s grace)',
  recovery_s:
    'per worker SIGKILL: seconds from the SIGKILL to the first heartbeat (server lastHeartbeatTime in describe().raw.pendingActivities) of the supervise activity of a tracked running task from another worker process; the max over up to 3 tracked tasks',
};

export async function runChecks(ctx: ChaosCtx, opts: { strayGraceMs: number }): Promise<CheckResult> {
  const rows = ctx.tasks();
  const byId = new Map(rows.map((r) => [r.id, r]));
  const details: Record<string, unknown> = {};
  const info: Record<string, unknown> = {};

  // ---- lost
  const lost: { id: string; why: string }[] = [];
  for (const id of ctx.submitted.keys()) {
    const r = byId.get(id);
    if (!r) lost.push({ id, why: 'missing from the database' });
    else if (!FINAL.has(r.status ?? '')) lost.push({ id, why: `status ${r.status} (attempt ${r.attempts}, node ${r.node})` });
    else if (r.status !== 'completed' && !(r.error ?? '').trim()) lost.push({ id, why: `${r.status} without a reason` });
  }
  details.lost = lost;

  // ---- leaked slots
  const active = new Map<string, number>();
  for (const r of rows)
    if ((r.status === 'dispatched' || r.status === 'running') && r.node) active.set(r.node, (active.get(r.node) ?? 0) + 1);
  const slots = ctx
    .nodes()
    .map((n) => ({ node: n.name, running_count: n.running_count ?? 0, active_rows: active.get(n.name) ?? 0, status: n.status }));
  const leaked = slots.reduce((a, s) => a + Math.abs(s.running_count - s.active_rows), 0);
  details.slots = slots;

  // ---- status.json records
  const recs = readAttemptRecords(ctx);
  const mine = recs.filter((r) => ctx.submitted.has(r.task));
  info.attempt_dirs = mine.length;
  info.attempt_dirs_without_status = mine.filter((r) => !r.hasStatus).map((r) => `${r.task}#${r.attempt}@${r.node}`);

  // ---- stray processes (with a grace for kills in flight)
  let strays: LiveProc[] = scanTaskProcs(ctx.runDirPrefix);
  const until = Date.now() + opts.strayGraceMs;
  while (strays.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 500));
    strays = scanTaskProcs(ctx.runDirPrefix);
  }
  details.stray_processes = strays.map((p) => ({ pid: p.pid, task: p.task, attempt: p.attempt, row: byId.get(p.task)?.status ?? null }));
  const strayKeys = new Set(strays.map((p) => `${p.task}#${p.attempt}`));

  // End of an attempt's life as far as we can prove it: ended_at, else the last sample that saw it alive.
  const endLB = (r: AttemptRecord): number | null => {
    if (r.endedAt !== null) return r.endedAt;
    const seen = ctx.sampler.seen(r.task, r.attempt);
    if (seen) return seen.lastSeenMs / 1000;
    return r.startedAt;
  };

  const killers = killAttribution(ctx);

  // ---- double runs
  const dbl = new Map<string, string>();
  for (const d of ctx.sampler.doubleRuns)
    if (!dbl.has(d.task))
      dbl.set(d.task, `sampler at ${new Date(d.atMs).toISOString()}: attempts ${d.attempts.join(',')} alive (pids ${d.pids.join(',')})`);
  const byTask = new Map<string, AttemptRecord[]>();
  for (const r of mine) if (r.hasStatus && r.startedAt !== null) byTask.set(r.task, [...(byTask.get(r.task) ?? []), r]);
  let possibleOverlaps = 0;
  for (const [task, list] of byTask) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        if (a.attempt === b.attempt) continue;
        const ae = endLB(a)!;
        const be = endLB(b)!;
        if (a.startedAt! + 1 <= be && b.startedAt! + 1 <= ae) {
          if (!dbl.has(task))
            dbl.set(
              task,
              `status.json: attempt ${a.attempt} [${a.startedAt}, ${ae.toFixed(1)}] on ${a.node} overlaps attempt ${b.attempt} [${b.startedAt}, ${be.toFixed(1)}] on ${b.node}`,
            );
        } else if (a.startedAt! < be + 1 && b.startedAt! < ae + 1) possibleOverlaps++;
      }
    }
  }
  details.double_runs = [...dbl.entries()].map(([task, why]) => ({
    task,
    why,
    kills_recorded: [...killers.entries()]
      .filter(([k]) => k.startsWith(`${task}#`))
      .map(([k, ks]) => `${k}: ${[...new Set(ks.map((x) => x.by))].join('; ')}`),
  }));
  info.overlaps_within_timestamp_resolution = possibleOverlaps;

  // ---- wrongly killed
  // Who killed what, where the system says so: node-recovery cleanups (ours and, on a shared
  // machine, other dispatch deployments' that also list this host's processes) and the reaper.
  const wrong: Record<string, unknown>[] = [];
  const killedExcused: Record<string, number> = { cancelled: 0, forced_ghost: 0, partition: 0, max_runtime: 0 };
  for (const r of mine) {
    if (!r.hasStatus || r.startedAt === null) continue;
    const signalled = r.exitCode === null || r.exitCode >= 128;
    if (!signalled) continue;
    if (strayKeys.has(`${r.task}#${r.attempt}`)) continue; // not killed: it is counted as a stray
    const row = byId.get(r.task);
    const end = endLB(r)!;
    const endMs = end * 1000;
    const why: string[] = [];
    // A cancel or a forced ghost excuses only the attempts still alive when it was applied.
    const cancelAt = ctx.cancelled.get(r.task);
    if (cancelAt !== undefined && endMs >= cancelAt - 1000) why.push('cancelled');
    const forcedAt = ctx.forced.get(r.task);
    if (forcedAt && endMs >= forcedAt.atMs - 1000) why.push('forced_ghost');
    const part = ctx.outages.some(
      (o) => cutsNode(o) && o.node === r.node && r.startedAt! * 1000 <= (o.toMs ?? Date.now()) && endMs >= o.fromMs - 2000,
    );
    if (part) why.push('partition');
    const cap = row?.max_runtime_s ?? null;
    if (cap !== null && end >= r.startedAt! + cap - 2) why.push('max_runtime');
    if (why.length) {
      killedExcused[why[0]!]!++;
      continue;
    }
    const pids = ctx.sampler.seen(r.task, r.attempt)?.pids ?? new Set<number>(r.pid ? [r.pid] : []);
    const by = (killers.get(`${r.task}#${r.attempt}`) ?? []).filter((k) => k.pid === null || pids.size === 0 || pids.has(k.pid));
    const entry = {
      task: r.task,
      attempt: r.attempt,
      node: r.node,
      started_at: new Date(r.startedAt! * 1000).toISOString(),
      last_seen_alive: new Date(endMs).toISOString(),
      exit_code: r.exitCode,
      row_status: row?.status ?? null,
      row_error: row?.error ?? null,
      killed_by: [...new Set(by.map((k) => k.by))].join('; ') || 'unknown (nothing in the books names this kill)',
    };
    wrong.push(entry);
  }
  details.wrongly_killed = wrong;

  // ---- fenced, and wrongly fenced
  const fencedOk: string[] = [];
  const fencedWrong: Record<string, unknown>[] = [];
  const fencedForced: string[] = [];
  for (const r of mine) {
    if (r.fencedAt === null) continue;
    const ms = r.fencedAt * 1000;
    // Every outage the harness makes stops the node's sshd (a partition, or the dispatch-timeout
    // ghost's stopped sshd): no supervisor reaches the node, so its tasks fencing is the design.
    const cut = ctx.outages.some((o) => cutsNode(o) && o.node === r.node && ms >= o.fromMs - 1000 && ms <= (o.toMs ?? Date.now()) + 10_000);
    // A forced ghost has lost its supervisor on purpose (an orphan's workflow is terminated; the
    // other rules age its row until the reaper takes it): its lease is no longer refreshed, so its
    // watchdog fencing it before the reaper's kill lands is the design working, not a wrong fence.
    // Only the attempt alive at the fault is excused: one started afterwards has a supervisor again.
    const forcedAt = ctx.forced.get(r.task);
    if (cut) fencedOk.push(`${r.task}#${r.attempt}`);
    else if (forcedAt && r.startedAt !== null && r.startedAt * 1000 <= forcedAt.atMs + 1000 && ms >= forcedAt.atMs - 1000)
      fencedForced.push(`${r.task}#${r.attempt}`);
    else fencedWrong.push({ task: r.task, attempt: r.attempt, node: r.node, fenced_at: new Date(ms).toISOString() });
  }
  details.fenced = fencedOk;
  details.wrongly_fenced = fencedWrong;
  info.fenced_after_forced_ghost = fencedForced;
  info.killed_and_excused = killedExcused;

  // ---- recovery
  const samples = ctx.faults.recovery.filter((x) => x.s !== null).map((x) => r1(x.s)!);
  const recovery = {
    min: r1(samples.length ? Math.min(...samples) : null),
    median: r1(median(samples)),
    max: r1(samples.length ? Math.max(...samples) : null),
    samples,
  };

  // ---- informational: outcomes, unbooked attempts, events
  const outcome: Record<string, number> = {};
  for (const id of ctx.submitted.keys()) {
    const r = byId.get(id);
    const k = `${r?.status ?? 'missing'}`;
    outcome[k] = (outcome[k] ?? 0) + 1;
  }
  info.outcomes = outcome;
  info.errors_by_kind = errorKinds(rows.filter((r) => ctx.submitted.has(r.id)));
  const unbooked = mine.filter((r) => {
    const row = byId.get(r.task);
    return row && (row.attempts ?? 0) < r.attempt;
  });
  info.attempt_dirs_beyond_row_attempts = unbooked.map((r) => `${r.task}#${r.attempt}`);
  info.unexplained_outcomes = unexplained(ctx, byId);
  const ev = ctx.db().prepare(`SELECT kind, COUNT(*) AS n FROM events GROUP BY kind ORDER BY kind`).all() as { kind: string; n: number }[];
  info.events = Object.fromEntries(ev.map((e) => [e.kind, e.n]));
  const reaped = ctx
    .db()
    .prepare(`SELECT at, task_id, attempt, detail FROM events WHERE kind IN ('reaped', 'reaped_requeued') ORDER BY id`)
    .all() as { at: string; task_id: string; attempt: number; detail: string }[];
  const byRule: Record<string, number> = {};
  const unexpectedReaps: string[] = [];
  for (const e of reaped) {
    let rule = 'unknown';
    try {
      rule = String((JSON.parse(e.detail) as { rule?: string }).rule);
    } catch {
      // keep unknown
    }
    byRule[rule] = (byRule[rule] ?? 0) + 1;
    const partitioned = rule === 'node-offline' && duringPartition(ctx, e.task_id, e.attempt, e.at);
    if (!ctx.forced.has(e.task_id) && !partitioned) unexpectedReaps.push(`${e.task_id}#${e.attempt}:${rule}`);
  }
  // A node declared offline when no fault had stopped its sshd: a false offline.
  const offl = ctx.db().prepare(`SELECT at, detail FROM events WHERE kind = 'node_offline' ORDER BY id`).all() as {
    at: string;
    detail: string;
  }[];
  info.node_offline_events = offl.map((e) => {
    const node = (JSON.parse(e.detail) as { node?: string }).node ?? '?';
    const t = Date.parse(e.at);
    const fault = ctx.outages.find((o) => o.node === node && t >= o.fromMs && t <= (o.toMs ?? Date.now()) + 5000);
    return { at: e.at, node, during: fault ? fault.kind : 'NO FAULT (false offline: sshd was up)' };
  });
  info.reaped_by_rule = byRule;
  info.unexpected_reaps = unexpectedReaps;
  info.reaper_runs = (ctx.db().prepare(`SELECT COUNT(*) AS n FROM reaper_runs WHERE kind = 'reaper'`).get() as { n: number }).n;
  info.sampler = {
    samples: ctx.sampler.samples,
    max_live_tasks: ctx.sampler.maxLive,
    mean_scan_ms: r1(ctx.sampler.totalScanMs / Math.max(1, ctx.sampler.samples)),
    max_scan_ms: ctx.sampler.maxScanMs,
  };

  return {
    lost: lost.length,
    leaked_slots: leaked,
    double_runs: dbl.size,
    wrongly_killed: wrong.length,
    stray_processes: strays.length,
    fenced: fencedOk.length,
    wrongly_fenced: fencedWrong.length,
    recovery_s: recovery,
    details,
    info,
  };
}

function errorKinds(rows: TaskRow[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const r of rows) {
    if (!r.error) continue;
    const k = r.error
      .replace(/\(attempt [0-9]+ of [0-9]+\)/, '(attempt n of m)')
      .replace(/killed after [0-9]+s/, 'killed after Ns')
      .replace(/dependency \S+/, 'dependency X')
      .replace(/exit code [0-9]+/, (s) => s)
      .replace(/\(kill: [^)]*\)/, '(kill: ...)')
      .slice(0, 90);
    m[k] = (m[k] ?? 0) + 1;
  }
  return m;
}

/** Tasks whose end differs from what their command implies, with no fault to explain it. */
function unexplained(ctx: ChaosCtx, byId: Map<string, TaskRow>): string[] {
  const out: string[] = [];
  for (const [id, p] of ctx.submitted) {
    const r = byId.get(id);
    if (!r || ctx.cancelled.has(id) || ctx.forced.has(id)) continue;
    const ev = ctx
      .db()
      .prepare(`SELECT at, attempt, detail FROM events WHERE task_id = ? AND kind IN ('reaped', 'reaped_requeued') ORDER BY id LIMIT 1`)
      .get(id) as { at: string; attempt: number; detail: string } | undefined;
    if (ev && ev.detail.includes('"node-offline"') && duringPartition(ctx, id, ev.attempt, ev.at)) continue;
    const st = r.status;
    let ok = true;
    switch (p.kind) {
      case 'short':
      case 'long':
      case 'flaky':
        ok = st === 'completed';
        break;
      case 'fail':
        ok = st === 'failed' && /exit code 3/.test(r.error ?? '');
        break;
      case 'capped':
        ok = st === 'failed' && /max_runtime exceeded/.test(r.error ?? '');
        break;
      case 'child':
        ok = st === 'completed' || st === 'blocked';
        break;
      default:
        ok = true;
    }
    if (!ok) out.push(`${id}: ${st} (${(r.error ?? '').slice(0, 140)})`);
  }
  return out;
}

interface Kill {
  pid: number | null;
  by: string;
  foreign: boolean;
}

interface CleanupEvent {
  node?: string;
  killed?: { task: string; attempt: number; pid: number; outcome: string }[];
}

/**
 * task#attempt -> the recorded kills that name it: our node_online events (the node-recovery
 * cleanup lists what it killed), our reaper events, and the node_online events of other dispatch
 * databases under the temp dir (other test runs on a shared machine: every node is 127.0.0.1).
 */
export function killAttribution(ctx: ChaosCtx): Map<string, Kill[]> {
  const out = new Map<string, Kill[]>();
  const add = (task: string, attempt: number, k: Kill) => out.set(`${task}#${attempt}`, [...(out.get(`${task}#${attempt}`) ?? []), k]);
  const sinceIso = new Date(ctx.t0 - 60_000).toISOString();
  const fromCleanups = (db: Database.Database, foreign: string | null) => {
    const rows = db.prepare(`SELECT at, detail FROM events WHERE kind = 'node_online' AND at >= ?`).all(sinceIso) as {
      at: string;
      detail: string;
    }[];
    for (const e of rows) {
      let d: CleanupEvent;
      try {
        d = JSON.parse(e.detail) as CleanupEvent;
      } catch {
        continue;
      }
      for (const k of d.killed ?? []) {
        if (!ctx.submitted.has(k.task)) continue;
        add(k.task, k.attempt, {
          pid: k.pid,
          foreign: foreign !== null,
          by: foreign
            ? `node-recovery cleanup of another dispatch deployment (${foreign}, node ${d.node}, ${e.at})`
            : `node-recovery cleanup of ${d.node} in this run (${e.at})`,
        });
      }
    }
  };
  fromCleanups(ctx.db(), null);
  const reaped = ctx.db().prepare(`SELECT at, task_id, attempt, detail FROM events WHERE kind IN ('reaped', 'reaped_requeued')`).all() as {
    at: string;
    task_id: string;
    attempt: number;
    detail: string;
  }[];
  for (const e of reaped) add(e.task_id, e.attempt, { pid: null, foreign: false, by: `reaper (${e.detail.slice(0, 80)}, ${e.at})` });
  const mine = fs.realpathSync(ctx.c.dbPath);
  let dirs: string[] = [];
  try {
    dirs = fs
      .readdirSync(os.tmpdir())
      .filter((d) => d.startsWith('dispatch-'))
      .map((d) => path.join(os.tmpdir(), d, 'dispatch.db'));
  } catch {
    // no temp dir listing: nothing foreign to attribute
  }
  for (const f of dirs) {
    try {
      if (!fs.existsSync(f) || fs.realpathSync(f) === mine || fs.statSync(path.dirname(f)).mtimeMs < ctx.t0 - 3600_000) continue;
      const db = new Database(f, { readonly: true, fileMustExist: true, timeout: 2000 });
      try {
        fromCleanups(db, path.dirname(f));
      } finally {
        db.close();
      }
    } catch {
      // not a dispatch database, or busy: skip
    }
  }
  return out;
}

/** Was this node-offline reap of task#attempt done while (or just after) its node was partitioned? */
function duringPartition(ctx: ChaosCtx, task: string, attempt: number, atIso: string): boolean {
  const d = ctx
    .db()
    .prepare(`SELECT detail FROM events WHERE task_id = ? AND attempt = ? AND kind = 'dispatched' ORDER BY id DESC LIMIT 1`)
    .get(task, attempt) as { detail: string } | undefined;
  let node: string | null = null;
  try {
    node = d ? ((JSON.parse(d.detail) as { node?: string }).node ?? null) : null;
  } catch {
    node = null;
  }
  const t = Date.parse(atIso);
  return ctx.outages.some((o) => o.kind === 'partition' && o.node === node && t >= o.fromMs && t <= (o.toMs ?? Date.now()) + 60_000);
}
