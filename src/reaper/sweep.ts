/**
 * The reaper's sweep in four phases, each a plain function so the scheduled workflow can run them
 * as activities and `dispatch reap --direct` / worker start-up can run them in-process:
 *   plan (db, read only) -> stop workflows (Temporal) -> kill (nodes, batched) -> apply (db, fenced).
 */
import { TaskStatus } from '../common/constants';
import type { NodeRow } from '../common/types';
import { isBootId, isStartTime, parsePid } from '../common/validate';
import type { ShellPool } from '../shell/pool';
import { identifyWithBootCommand, killCommand } from '../shell/scripts';
import { parseKillOutput } from '../shell/status';
import type { Store } from '../store/store';
import { parseIdentify, processNamesTask } from './identify';
import { fenceFallsAtMs } from './fence';
import { decideGhost, isLegacyRow, type GhostRule, type WorkflowState } from './rules';

export interface SweepOptions {
  dryRun: boolean;
  ids: string[] | null;
  project: string | null;
  staleS: number;
  thresholdHours: number;
  maxAttempts: number;
  action: 'fail' | 'requeue';
  autoKill: boolean;
  batch: number;
  leaseS: number;
  killGraceS: number;
  /** POST the report here after a sweep that cleaned something; null = off. */
  notifyUrl: string | null;
  /** The configured fence_after (0 = off) and the slice length, for tasks on unreachable nodes. */
  fenceAfterS: number;
  heartbeatRecordS: number;
  /** The configured launch_timeout (absent in inputs from before it existed: the default). */
  launchTimeoutS?: number;
  /** The configured outage_tolerance (absent in inputs from before it existed: the default). */
  outageToleranceS?: number;
}

/** A ghost on an unreachable node left alone until its attempt has certainly fenced itself. */
export interface FenceWait {
  id: string;
  node: string | null;
  /** When a new attempt may start (ISO, Temporal's clock), or why that is not known yet. */
  falls_at: string;
}

export interface GhostPlan {
  id: string;
  rule: GhostRule;
  /** What the sweep saw; the apply step changes the row only if it still looks like this. */
  seen: { status: string; attempts: number | null; updated_at: string | null; last_heartbeat: string | null };
  node: NodeRow | null;
  pid: number | null;
  identity: { pid: number; starttime: string; bootId: string } | null;
  legacy: boolean;
  workflow: WorkflowState;
  canRequeue: boolean;
}

export interface SweepPlan {
  timestamp: string;
  options: SweepOptions;
  ghosts: GhostPlan[];
  /** Not in `ghosts`: their batch would only plan them again. */
  fenceWaiting?: FenceWait[];
}

export interface GhostKill {
  /** killed-term, killed-kill, already-gone, not-ours, rebooted, still-alive, not-signalled, unreachable */
  outcome: string;
  note?: string;
}

export interface SweepReport {
  ghosts_found: number;
  cleaned: string[];
  skipped: { id: string; reason: string }[];
  drift_fixed: { node: string; running_count_was: number; running_count_now: number }[];
  dry_run: boolean;
  timestamp: string;
  ghosts: { id: string; rule: string; node: string | null; pid: number | null; kill: string; note?: string; action: string }[];
  requeued: string[];
  locks_released: number;
  /** Ghosts on unreachable nodes waiting for their fence before they may run again (ghost_action requeue). */
  fence_waiting?: FenceWait[];
}

export type Inspect = (workflowIds: string[]) => Promise<Map<string, WorkflowState>>;

const noInspect: Inspect = async (ids) => new Map(ids.map((i) => [i, 'unknown' as WorkflowState]));

/**
 * Per workflow id: the latest moment (ms, Temporal's clock) any worker may still refresh its task's
 * lease (-Infinity: none ever could in this run); `missing` when Temporal does not know the
 * workflow, `unknown` when it could not be asked (temporalRefreshEnd).
 */
export type RefreshEnd = (workflowIds: string[]) => Promise<Map<string, number | 'missing' | 'unknown'>>;

/** Phase 1: find ghosts. Reads only dispatched/running rows (an index range), never the whole table. */
export async function planSweep(
  store: Store,
  o: SweepOptions,
  inspect: Inspect = noInspect,
  nowMs = Date.now(),
  refreshEnd?: RefreshEnd,
  /**
   * Now on Temporal's clock (the plan activity's scheduled time, which is never later than now):
   * what a fence is compared with. null (an in-process sweep): no task on an unreachable node is
   * requeued, the scheduled reaper does that.
   */
  temporalNowMs: number | null = null,
): Promise<SweepPlan> {
  const rows = store.activeRows({ project: o.project, ids: o.ids });
  const nodes = new Map(store.listNodes().map((n) => [n.name, n]));
  const wfIds = rows.filter((r) => r.workflow_id).map((r) => r.workflow_id!);
  const states = wfIds.length ? await inspect(wfIds) : new Map<string, WorkflowState>();
  const ghosts: GhostPlan[] = [];
  const fenceWaiting: FenceWait[] = [];
  const fenceTimes = {
    killGraceS: o.killGraceS,
    leaseS: o.leaseS,
    heartbeatRecordS: o.heartbeatRecordS,
    fenceAfterS: o.fenceAfterS,
    launchTimeoutS: o.launchTimeoutS,
    horizonS: o.outageToleranceS,
  };
  // Temporal's record of each, asked only for the rows that may need it (requeue on an unreachable node).
  const needContact = o.action === 'requeue' ? rows.filter((r) => r.workflow_id && r.node && nodes.get(r.node)?.status === 'offline') : [];
  const contacts =
    needContact.length && refreshEnd
      ? await refreshEnd(needContact.map((r) => r.workflow_id!))
      : new Map<string, number | 'missing' | 'unknown'>();
  for (const row of rows) {
    if (ghosts.length >= o.batch) break;
    const node = row.node ? (nodes.get(row.node) ?? null) : null;
    const workflow: WorkflowState = row.workflow_id ? (states.get(row.workflow_id) ?? 'unknown') : 'missing';
    const rule = decideGhost(row, {
      nowMs,
      thresholdHours: o.thresholdHours,
      staleS: o.staleS,
      leaseS: o.leaseS,
      workflow,
      nodeStatus: node?.status ?? null,
    });
    if (!rule) continue;
    const pid = parsePid(row.pid);
    const identity =
      pid !== null && isStartTime(row.proc_starttime) && isBootId(row.boot_id)
        ? { pid, starttime: row.proc_starttime, bootId: row.boot_id }
        : null;
    let canRequeue = !isLegacyRow(row) && !!row.command && (row.attempts ?? 0) < (row.max_attempts ?? o.maxAttempts);
    if (canRequeue && o.action === 'requeue' && node?.status === 'offline') {
      // Its process may still run on the cut-off node: a new attempt waits until it has fenced itself,
      // counted on Temporal's clock from the last refresh any worker may still make (fence.ts).
      const c: number | 'missing' | 'unknown' = row.workflow_id ? (contacts.get(row.workflow_id) ?? 'unknown') : 'missing';
      const falls = c === 'unknown' ? undefined : fenceFallsAtMs(row, fenceTimes, typeof c === 'number' ? c : null);
      if (falls === null) canRequeue = false;
      else if (falls === undefined || temporalNowMs === null || temporalNowMs < falls) {
        const why = falls === undefined ? 'unknown: Temporal could not say when it last heard of the task' : new Date(falls).toISOString();
        fenceWaiting.push({
          id: row.id,
          node: row.node,
          falls_at: temporalNowMs === null && falls !== undefined ? `${why} (decided by the scheduled reaper)` : why,
        });
        continue;
      }
    }
    ghosts.push({
      id: row.id,
      rule,
      seen: { status: row.status!, attempts: row.attempts, updated_at: row.updated_at, last_heartbeat: row.last_heartbeat },
      node,
      pid,
      identity,
      legacy: isLegacyRow(row),
      workflow,
      canRequeue,
    });
  }
  return { timestamp: new Date(nowMs).toISOString(), options: o, ghosts, ...(fenceWaiting.length ? { fenceWaiting } : {}) };
}

/**
 * Phase 3: kill, batched per node: at most one identify and one kill command per node, whatever
 * the number of ghosts on it. Only proven processes are signalled.
 */
export async function killGhosts(pool: ShellPool, plan: SweepPlan): Promise<Record<string, GhostKill>> {
  const notes: Record<string, GhostKill> = {};
  const o = plan.options;
  const byNode = new Map<string, GhostPlan[]>();
  for (const g of plan.ghosts) {
    if (!g.node || g.pid === null) {
      notes[g.id] = {
        outcome: 'not-signalled',
        note: g.pid === null ? 'no valid pid recorded (a pid must be an integer > 1)' : 'no node recorded',
      };
      continue;
    }
    if (!o.autoKill) {
      notes[g.id] = { outcome: 'not-signalled', note: 'auto_kill is false' };
      continue;
    }
    if (g.node.status === 'offline') {
      notes[g.id] = { outcome: 'unreachable', note: 'node offline: leftover processes are killed when it comes back' };
      continue;
    }
    const list = byNode.get(g.node.name) ?? [];
    list.push(g);
    byNode.set(g.node.name, list);
  }
  await Promise.all(
    [...byNode.values()].map(async (ghosts) => {
      const node = ghosts[0]!.node!;
      const shell = pool.get(node);
      try {
        // Legacy rows: prove the pid names the task before using its start time as identity.
        const legacy = ghosts.filter((g) => !g.identity);
        const targets = new Map<string, { id: string; pid: number; starttime: string }[]>();
        const add = (boot: string, t: { id: string; pid: number; starttime: string }) =>
          targets.set(boot, [...(targets.get(boot) ?? []), t]);
        let boot: string | null = null;
        if (legacy.length) {
          const out = await shell.exec(identifyWithBootCommand(legacy.map((g) => g.pid!)), { timeoutMs: 30_000 });
          boot = /^boot ([0-9a-f-]{36})$/m.exec(out.stdout)?.[1] ?? null;
          const idents = new Map(parseIdentify(out.stdout).map((i) => [i.pid, i]));
          for (const g of legacy) {
            const id = idents.get(g.pid!);
            if (!id) notes[g.id] = { outcome: 'unknown', note: `the node gave no identify answer for pid ${g.pid}` };
            else if (id.gone) notes[g.id] = { outcome: 'already-gone' };
            else if (!processNamesTask(id, g.id))
              notes[g.id] = {
                outcome: 'not-signalled',
                note: `pid ${g.pid} is alive but neither its command line nor its environment names ${g.id}`,
              };
            else if (boot && id.starttime) add(boot, { id: g.id, pid: g.pid!, starttime: id.starttime });
          }
        }
        for (const g of ghosts) if (g.identity) add(g.identity.bootId, { id: g.id, pid: g.identity.pid, starttime: g.identity.starttime });
        for (const [bootId, ts] of targets) {
          if (o.dryRun) {
            for (const t of ts) notes[t.id] = { outcome: 'would-kill' };
            continue;
          }
          const out = await shell.exec(killCommand(bootId, o.killGraceS, ts), { timeoutMs: (o.killGraceS + 30) * 1000 });
          const res = new Map(parseKillOutput(out.stdout).map((r) => [r.pid, r.outcome]));
          for (const t of ts)
            notes[t.id] = { outcome: res.get(t.pid) ?? 'unknown', note: res.has(t.pid) ? undefined : out.stderr.slice(0, 200) };
        }
      } catch (e) {
        for (const g of ghosts) notes[g.id] ??= { outcome: 'unreachable', note: (e as Error).message };
      }
    }),
  );
  return notes;
}

/** Kill outcomes after which the process is known not to run any more. */
const GONE = new Set(['killed-term', 'killed-kill', 'already-gone', 'not-ours', 'not-ours-at-kill', 'rebooted']);

/** Phase 4: book it, fenced on what the plan saw. Also fixes slot drift and stale file locks. */
export function applySweep(store: Store, plan: SweepPlan, kills: Record<string, GhostKill>): SweepReport {
  const o = plan.options;
  const report: SweepReport = {
    ghosts_found: plan.ghosts.length,
    cleaned: [],
    skipped: [],
    drift_fixed: [],
    dry_run: o.dryRun,
    timestamp: plan.timestamp,
    ghosts: [],
    requeued: [],
    locks_released: 0,
    ...(plan.fenceWaiting?.length ? { fence_waiting: plan.fenceWaiting } : {}),
  };
  for (const g of plan.ghosts) {
    const k = kills[g.id] ?? { outcome: 'not-signalled' };
    // Run it again only when its process is proven gone, or cut off behind a fence that has fallen
    // (planSweep let an unreachable one through only then): a process nobody signalled may still
    // run (a launch without a recorded pid), and a second copy must never start beside it.
    const requeue = o.action === 'requeue' && g.canRequeue && (GONE.has(k.outcome) || k.outcome === 'unreachable');
    const entry = {
      id: g.id,
      rule: g.rule,
      node: g.node?.name ?? null,
      pid: g.pid,
      kill: k.outcome,
      note: k.note,
      action: requeue ? 'requeue' : 'fail',
    };
    report.ghosts.push(entry);
    if (o.dryRun) continue;
    // A process we tried and failed to stop still holds its slot: do not pretend otherwise.
    const slotIsFree =
      GONE.has(k.outcome) || k.outcome === 'not-signalled' || (k.outcome === 'unreachable' && g.node?.status === 'offline');
    if (!slotIsFree) {
      report.skipped.push({ id: g.id, reason: `process not confirmed gone (${k.outcome}${k.note ? `: ${k.note}` : ''})` });
      continue;
    }
    const r = store.reapRow(g.id, g.seen, `Ghost task auto-cleanup: ${g.rule}`, requeue ? TaskStatus.queued : TaskStatus.failed, {
      rule: g.rule,
      kill: k,
    });
    if (!r.applied) {
      report.skipped.push({ id: g.id, reason: r.reason ?? 'row changed since the sweep read it' });
      continue;
    }
    report.cleaned.push(g.id);
    if (requeue) report.requeued.push(g.id);
  }
  const books = o.dryRun ? store.findSlotDrift() : store.reconcileSlots();
  report.drift_fixed = books.drift;
  report.locks_released = books.locksReleased;
  if (!o.dryRun) store.recordReaperRun('reaper', report);
  return report;
}

export { summarize } from './driver';
