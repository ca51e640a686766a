/**
 * dispatch.config.json: the seeds' keys plus dispatch's own. compileConfig() fills defaults and
 * validates once; any unknown key, wrong type or bad value is refused with the key's name.
 * Environment variables TASK_LEASE_S, TASK_STALE_S, TASK_MAX_REQUEUE and TASK_REAP_BATCH override.
 */
import { existsSync, readFileSync } from 'node:fs';
import {
  HEARTBEAT_RECORD_S_DEFAULT,
  KILL_GRACE_S_DEFAULT,
  LEASE_S_DEFAULT,
  MAX_REQUEUE_DEFAULT,
  MAX_RUNTIME_S_DEFAULT,
  REAP_BATCH_DEFAULT,
  STALE_S_DEFAULT,
  FENCE_AFTER_S_DEFAULT,
  OUTAGE_TOLERANCE_S_DEFAULT,
  LAUNCH_TIMEOUT_S_DEFAULT,
} from '../common/constants';
import { parseDurationSeconds } from '../common/duration';
import { ConfigError, UserError } from '../common/errors';
import { isMetricsAddress } from '../common/validate';

export interface DispatchConfig {
  /** Reaper on/off. @default true */
  enabled: boolean;
  /** Running longer than this (and not covered by a longer max_runtime) is `overtime`. @default 2 */
  threshold_hours: number;
  /** Reaper schedule interval, seconds. @default 60 */
  check_interval: number;
  /** Kill ghost processes; when false the reaper only marks and reports. @default true */
  auto_kill: boolean;
  /** POST each sweep report that cleaned something to webhook_url. @default false */
  notify_on_clean: boolean;
  /** @default null */
  webhook_url: string | null;
  /** What the reaper does with a ghost row. @default "fail" */
  ghost_action: 'fail' | 'requeue';
  /** Heartbeat timeout of the supervising activity, seconds (TASK_LEASE_S). @default 30 */
  lease_s: number;
  /** Heartbeat age that makes a running row stale, seconds (TASK_STALE_S). @default 900 */
  stale_s: number;
  /** Attempts in total before a task fails for good (TASK_MAX_REQUEUE). @default 3 */
  max_requeue: number;
  /** Rows per reaper batch (TASK_REAP_BATCH). @default 200 */
  reap_batch: number;
  /** Default per-task runtime cap, seconds (config accepts "2h"). @default 7200 */
  max_runtime: number;
  /** Seconds between SIGTERM and SIGKILL. @default 10 */
  kill_grace: number;
  /** How often a running row's last_heartbeat is refreshed, seconds. @default 60 */
  heartbeat_record_interval: number;
  /** Executor name -> command template; `{spec}` becomes the quoted path of the spec on the node. */
  executors: Record<string, string>;
  /** Optional spec factory. @default null */
  factory: { command: string; min_pending: number; interval: number } | null;
  /** Node-probe interval, seconds. @default 15 */
  probe_interval: number;
  /** Guardian interval, seconds. @default 300 */
  guardian_interval: number;
  /** Attempt directories older than this are removed by the guardian, seconds. @default 7 days */
  retention: number;
  /**
   * Workflows the worker keeps in memory between activations. Above it, a workflow woken by its next
   * supervise slice is rebuilt from history (CPU) instead of held (memory). @default 250. Each cached
   * workflow costs about 1 MB, and with many more running tasks than cached workflows a slice end
   * finds its workflow cached only about cache/running of the time; but a cache near its floor evicts
   * workflows whose launch (a local activity) is still running, under a burst of launches: the SDK
   * then drops the launch's result and the workflow task times out (bench/RESULTS.md).
   */
  max_cached_workflows: number;
  /**
   * How often a queued task checks the books itself, seconds. Slots normally arrive by signal
   * within a second; this covers a lost signal, at a few events per check. @default 300
   */
  queue_poll_interval: number;
  /**
   * A task workflow continues as new before its run's history passes this many events (or when
   * Temporal suggests it), while queued as well as while running. @default 2000
   */
  history_limit: number;
  /**
   * Self-fencing: an attempt whose node has not heard from its supervisor for this long stops
   * itself (its watchdog kills the process group), and a task on an unreachable node is requeued
   * only after fence_after + kill_grace + a margin since the last refresh any worker may still make
   * (outage_tolerance after Temporal last heard of it; docs/FENCE.md).
   * 0 turns fencing off (node-offline ghosts are then failed, never requeued). @default 600
   */
  fence_after: number;
  /**
   * How long a worker that supervises a task goes on refreshing its node's lease after the latest
   * heartbeat Temporal acknowledged: a Temporal outage, a slow server or a backlog shorter than this
   * (plus fence_after) kills no healthy task, and a task on a node that no supervisor reaches is
   * requeued only outage_tolerance + fence_after + kill_grace + a margin after Temporal last heard
   * of it (docs/FENCE.md). At least 2 x lease_s. @default 1800
   */
  outage_tolerance: number;
  /**
   * How long a launch keeps retrying a node it cannot reach before the attempt is given up. A
   * launch that lost contact may have started its process: the attempt is requeued only once that
   * process has certainly fenced itself. At least 30 s (one try's own timeout). @default 300
   */
  launch_timeout: number;
  /** The Temporal Web UI, for the links `dispatch show` prints; null: none. @default http://localhost:8233 */
  web_ui_url: string | null;
  /** HOST:PORT where `dispatch worker` serves Prometheus metrics (same as --metrics); null: off. */
  metrics_address: string | null;
}

export const CONFIG_DEFAULTS: DispatchConfig = {
  enabled: true,
  threshold_hours: 2,
  check_interval: 60,
  auto_kill: true,
  notify_on_clean: false,
  webhook_url: null,
  ghost_action: 'fail',
  lease_s: LEASE_S_DEFAULT,
  stale_s: STALE_S_DEFAULT,
  max_requeue: MAX_REQUEUE_DEFAULT,
  reap_batch: REAP_BATCH_DEFAULT,
  max_runtime: MAX_RUNTIME_S_DEFAULT,
  kill_grace: KILL_GRACE_S_DEFAULT,
  heartbeat_record_interval: HEARTBEAT_RECORD_S_DEFAULT,
  executors: {},
  factory: null,
  probe_interval: 15,
  guardian_interval: 300,
  retention: 7 * 86400,
  max_cached_workflows: 250,
  queue_poll_interval: 300,
  history_limit: 2000,
  fence_after: FENCE_AFTER_S_DEFAULT,
  outage_tolerance: OUTAGE_TOLERANCE_S_DEFAULT,
  launch_timeout: LAUNCH_TIMEOUT_S_DEFAULT,
  web_ui_url: 'http://localhost:8233',
  metrics_address: null,
};

type Kind = 'bool' | 'posnum' | 'posint' | 'duration' | 'duration0' | 'url' | 'hostport' | 'action' | 'executors' | 'factory';
const KEYS: Record<keyof DispatchConfig, Kind> = {
  enabled: 'bool',
  threshold_hours: 'posnum',
  check_interval: 'duration',
  auto_kill: 'bool',
  notify_on_clean: 'bool',
  webhook_url: 'url',
  ghost_action: 'action',
  lease_s: 'duration',
  stale_s: 'duration',
  max_requeue: 'posint',
  reap_batch: 'posint',
  max_runtime: 'duration',
  kill_grace: 'duration',
  heartbeat_record_interval: 'duration',
  executors: 'executors',
  factory: 'factory',
  probe_interval: 'duration',
  guardian_interval: 'duration',
  retention: 'duration',
  max_cached_workflows: 'posint',
  queue_poll_interval: 'duration',
  history_limit: 'posint',
  fence_after: 'duration0',
  outage_tolerance: 'duration',
  launch_timeout: 'duration',
  web_ui_url: 'url',
  metrics_address: 'hostport',
};
/** Seed spellings accepted as aliases. */
const ALIASES: Record<string, keyof DispatchConfig> = { check_interval_cycles: 'check_interval' };

const ENV: [string, keyof DispatchConfig][] = [
  ['TASK_LEASE_S', 'lease_s'],
  ['TASK_STALE_S', 'stale_s'],
  ['TASK_MAX_REQUEUE', 'max_requeue'],
  ['TASK_REAP_BATCH', 'reap_batch'],
];

function check(key: string, kind: Kind, v: unknown): unknown {
  switch (kind) {
    case 'bool':
      if (typeof v !== 'boolean') throw new ConfigError(key, `expected true or false, got ${JSON.stringify(v)}`);
      return v;
    case 'posnum':
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
        throw new ConfigError(key, `expected a positive number, got ${JSON.stringify(v)}`);
      return v;
    case 'posint':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
        throw new ConfigError(key, `expected a positive integer, got ${JSON.stringify(v)}`);
      return v;
    case 'duration0':
      // A duration, or 0 (off).
      if (v === 0 || v === '0') return 0;
      try {
        return parseDurationSeconds(v, key);
      } catch (e) {
        throw new ConfigError(key, (e as Error).message);
      }
    case 'duration':
      try {
        return parseDurationSeconds(v, key);
      } catch (e) {
        throw new ConfigError(key, (e as Error).message);
      }
    case 'url':
      if (v === null) return null;
      if (typeof v !== 'string' || !/^https?:\/\/[^\s]+$/.test(v)) throw new ConfigError(key, `expected an http(s) URL or null`);
      return v;
    case 'hostport':
      if (v === null) return null;
      if (typeof v !== 'string' || !isMetricsAddress(v)) throw new ConfigError(key, `expected HOST:PORT (e.g. 127.0.0.1:9464) or null`);
      return v;
    case 'action':
      if (v !== 'fail' && v !== 'requeue') throw new ConfigError(key, `expected "fail" or "requeue", got ${JSON.stringify(v)}`);
      return v;
    case 'executors': {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw new ConfigError(key, 'expected an object of name -> command template');
      for (const [name, tpl] of Object.entries(v)) {
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new ConfigError(`${key}.${name}`, 'invalid executor name');
        if (typeof tpl !== 'string' || tpl.trim() === '' || tpl.includes('\0'))
          throw new ConfigError(`${key}.${name}`, 'expected a non-empty command template string');
      }
      return { ...(v as Record<string, string>) };
    }
    case 'factory': {
      if (v === null) return null;
      if (typeof v !== 'object' || Array.isArray(v))
        throw new ConfigError(key, 'expected an object {command, min_pending, interval} or null');
      const f = v as Record<string, unknown>;
      for (const k of Object.keys(f))
        if (!['command', 'min_pending', 'interval'].includes(k)) throw new ConfigError(`${key}.${k}`, 'unknown key');
      if (typeof f.command !== 'string' || f.command.trim() === '') throw new ConfigError(`${key}.command`, 'expected a command string');
      const min = f.min_pending ?? 1;
      if (typeof min !== 'number' || !Number.isSafeInteger(min) || min < 0)
        throw new ConfigError(`${key}.min_pending`, 'expected an integer >= 0');
      const interval = check(`${key}.interval`, 'duration', f.interval ?? 60) as number;
      return { command: f.command, min_pending: min, interval };
    }
  }
}

/** Validates a parsed config object plus environment overrides; throws ConfigError naming the key. */
export function compileConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): DispatchConfig {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('(top level)', 'expected a JSON object');
  const out: DispatchConfig = { ...CONFIG_DEFAULTS, executors: {} };
  const explicit = new Set(Object.keys(raw as Record<string, unknown>));
  for (const [k0, v] of Object.entries(raw as Record<string, unknown>)) {
    if (k0.startsWith('$') || k0 === '//' || k0 === 'comment') continue; // $schema and comments
    const k = (ALIASES[k0] ?? k0) as keyof DispatchConfig;
    const kind = KEYS[k];
    if (!kind) throw new ConfigError(k0, `unknown key (known keys: ${Object.keys(KEYS).join(', ')})`);
    (out as unknown as Record<string, unknown>)[k] = check(k0, kind, v);
  }
  for (const [name, key] of ENV) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const kind = KEYS[key];
    const parsed = kind === 'posint' ? (/^[0-9]+$/.test(v.trim()) ? Number(v.trim()) : NaN) : v;
    (out as unknown as Record<string, unknown>)[key] = check(name, kind, parsed);
  }
  if (out.heartbeat_record_interval < out.lease_s / 3) {
    // Recording more often than the heartbeat itself is pointless DB load.
    out.heartbeat_record_interval = out.lease_s / 3;
  }
  if (out.stale_s <= out.heartbeat_record_interval + out.lease_s) {
    // A live task refreshes last_heartbeat only every heartbeat_record_interval: a shorter stale
    // limit would make every live task look stale.
    throw new ConfigError(
      'stale_s',
      `must be longer than heartbeat_record_interval + lease_s (${out.heartbeat_record_interval + out.lease_s}s), got ${out.stale_s}s`,
    );
  }
  if (out.history_limit < 30 || out.history_limit > 10_000) {
    // Below 30 a run cannot finish one wait; above 10,000 Temporal warns about the history size.
    throw new ConfigError('history_limit', `must be between 30 and 10000 events, got ${out.history_limit}`);
  }
  if (out.fence_after !== 0 && out.fence_after <= 2 * out.lease_s) {
    // A worker that dies is replaced and re-attaches within lease_s: that must never fence. The
    // default follows a long lease; a fence_after given explicitly is refused.
    if (!explicit.has('fence_after')) out.fence_after = 4 * out.lease_s;
    else throw new ConfigError('fence_after', `must be 0 (off) or longer than 2 x lease_s (${2 * out.lease_s}s), got ${out.fence_after}s`);
  }
  if (out.outage_tolerance < 2 * out.lease_s) {
    // Heartbeats renew the horizon every lease_s / 4; a shorter one would let a healthy task fence.
    if (!explicit.has('outage_tolerance')) out.outage_tolerance = 2 * out.lease_s;
    else throw new ConfigError('outage_tolerance', `must be at least 2 x lease_s (${2 * out.lease_s}s), got ${out.outage_tolerance}s`);
  }
  if (out.launch_timeout < 30)
    throw new ConfigError('launch_timeout', `must be at least 30s (one try's own timeout), got ${out.launch_timeout}s`);
  if (out.max_cached_workflows < 10) throw new ConfigError('max_cached_workflows', `must be at least 10, got ${out.max_cached_workflows}`);
  return out;
}

/** Reads the config file: an explicit path must exist; the default path is optional. */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): DispatchConfig {
  const file = path ?? 'dispatch.config.json';
  if (!existsSync(file)) {
    if (path) throw new UserError(`config file ${path} not found`);
    return compileConfig({}, env);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`config file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return compileConfig(raw, env);
}
