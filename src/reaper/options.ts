/** The options of one sweep: what `dispatch reap` flags (or a schedule) override, the rest from the config. */
import type { DispatchConfig } from '../config/config';
import type { SweepOptions } from './sweep';

/** What `dispatch reap` flags (or a schedule) may override; the rest comes from the config. */
export interface SweepOverrides {
  dryRun?: boolean;
  ids?: string[] | null;
  project?: string | null;
  staleS?: number;
  thresholdHours?: number;
  maxAttempts?: number;
  action?: 'fail' | 'requeue';
}

export function sweepOptions(cfg: DispatchConfig, o: SweepOverrides = {}): SweepOptions {
  return {
    dryRun: o.dryRun ?? false,
    ids: o.ids && o.ids.length ? o.ids : null,
    project: o.project ?? null,
    staleS: o.staleS ?? cfg.stale_s,
    thresholdHours: o.thresholdHours ?? cfg.threshold_hours,
    maxAttempts: o.maxAttempts ?? cfg.max_requeue,
    action: o.action ?? cfg.ghost_action,
    autoKill: cfg.auto_kill,
    batch: cfg.reap_batch,
    leaseS: cfg.lease_s,
    killGraceS: cfg.kill_grace,
    notifyUrl: cfg.notify_on_clean && cfg.webhook_url ? cfg.webhook_url : null,
    fenceAfterS: cfg.fence_after,
    heartbeatRecordS: cfg.heartbeat_record_interval,
    launchTimeoutS: cfg.launch_timeout,
    outageToleranceS: cfg.outage_tolerance,
  };
}
