/**
 * Ghost rules: pure decisions over a row snapshot, given `now`. A rule names why a row is a ghost;
 * null means leave it alone. No I/O here, so every rule is testable without a server.
 */
import { TaskStatus } from '../common/constants';
import type { TaskRow } from '../common/types';

export const GhostRule = {
  orphaned: 'orphaned',
  staleHeartbeat: 'stale-heartbeat',
  overtime: 'overtime',
  dispatchTimeout: 'dispatch-timeout',
  nodeOffline: 'node-offline',
} as const;
export type GhostRule = (typeof GhostRule)[keyof typeof GhostRule];

/** Dispatched but not running after this long is a ghost. */
export const DISPATCH_TIMEOUT_S = 300;

/** What Temporal says about the row's workflow; `unknown` when it could not be asked (--direct). */
export type WorkflowState = 'open' | 'closed' | 'missing' | 'unknown';

export interface RuleContext {
  nowMs: number;
  thresholdHours: number;
  staleS: number;
  leaseS: number;
  workflow: WorkflowState;
  nodeStatus: string | null;
}

/** Parses ISO-8601 or SQLite datetime() text (UTC); null for junk. */
export function parseTime(v: unknown): number | null {
  if (typeof v !== 'string' || v.length < 10 || v.length > 40) return null;
  let s = v.trim();
  if (/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) s = `${s.replace(' ', 'T')}Z`;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(s)) return null;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : null;
}

export function isLegacyRow(row: TaskRow): boolean {
  return !row.workflow_id;
}

/** Age of the current state: started_at for running, dispatched_at for dispatched, then updated_at. */
function since(row: TaskRow): number | null {
  return (
    parseTime(row.status === TaskStatus.running ? row.started_at : row.dispatched_at) ??
    parseTime(row.updated_at) ??
    parseTime(row.started_at)
  );
}

export function decideGhost(row: TaskRow, ctx: RuleContext): GhostRule | null {
  if (row.status !== TaskStatus.running && row.status !== TaskStatus.dispatched) return null;
  const startedMs = since(row);
  const ageS = startedMs === null ? null : (ctx.nowMs - startedMs) / 1000;
  const thresholdS = ctx.thresholdHours * 3600;

  if (isLegacyRow(row)) {
    // Nobody drives a legacy row; with no identity recorded, only age can tell (S15).
    if (ageS !== null && ageS > thresholdS) return GhostRule.orphaned;
    if (ctx.nodeStatus === 'offline') return GhostRule.nodeOffline;
    return null;
  }
  const graceS = 2 * ctx.leaseS;
  const updatedMs = parseTime(row.updated_at) ?? startedMs;
  const quietS = updatedMs === null ? Infinity : (ctx.nowMs - updatedMs) / 1000;
  if ((ctx.workflow === 'closed' || ctx.workflow === 'missing') && quietS > graceS) return GhostRule.orphaned;
  if (ctx.nodeStatus === 'offline') return GhostRule.nodeOffline;
  if (row.status === TaskStatus.running) {
    const hb = parseTime(row.last_heartbeat) ?? startedMs;
    if (hb !== null && (ctx.nowMs - hb) / 1000 > ctx.staleS) return GhostRule.staleHeartbeat;
    const cap = row.max_runtime_s ?? 0;
    const covered = cap > thresholdS && ageS !== null && ageS < cap;
    if (ageS !== null && ageS > thresholdS && !covered) return GhostRule.overtime;
  }
  if (row.status === TaskStatus.dispatched && ageS !== null && ageS > DISPATCH_TIMEOUT_S) return GhostRule.dispatchTimeout;
  return null;
}
