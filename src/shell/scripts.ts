/**
 * The fixed shell scripts that run on nodes, one file each in ./scripts/ (its header names the
 * arguments and the output lines). They take only positional arguments; see buildCommand.
 * POSIX sh (dash) compatible. Field numbers refer to /proc/<pid>/stat after stripping "pid (comm) ":
 * $1=state, $3=pgrp, $4=session, $20=starttime (field 22).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildCommand, shq } from './quote';
import type { NodeRow, ProcessIdentity } from '../common/types';
import { isAttemptToken, isBootId, isSignallablePid, isStartTime, isValidTaskId } from '../common/validate';

/** The build copies src/shell/scripts/*.sh next to the compiled module (scripts/copy-assets.js). */
export const SCRIPTS_DIR = path.join(__dirname, 'scripts');

/**
 * The text sent for a script file: without its header and its shellcheck directives, which are for
 * readers and the linter. Every command stays short, and so does the runner's command line, which
 * identify reads on the node.
 */
export function scriptBody(text: string): string {
  return text.replace(/^(?:#.*\n)*/, '').replace(/^[ \t]*# shellcheck .*\n/gm, '');
}

function load(name: string): string {
  const file = path.join(SCRIPTS_DIR, name);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file} (the build copies src/shell/scripts/*.sh there): ${(e as Error).message}`, { cause: e });
  }
  const body = scriptBody(text);
  if (body.trim() === '') throw new Error(`${name} in ${SCRIPTS_DIR} holds no script`);
  return body;
}

const RUNNER = load('runner.sh');
const WATCHDOG = load('watchdog.sh');
const LAUNCH = load('launch.sh');
const PROBE = load('probe.sh');
const PROBE_MANY = load('probe-many.sh');
const KILL = load('kill.sh');
const IDENTIFY = load('identify.sh');
const LIST_TASK_PROCS = load('list-task-procs.sh');
const PRUNE_LIST = load('prune-list.sh');
const FENCED_LIST = load('fenced-list.sh');
const PRUNE_RM = load('prune-rm.sh');
const PING = load('ping.sh');
const LOGS = load('logs.sh');
const BOOT_SUFFIX = load('boot-suffix.sh').trimEnd();
if (BOOT_SUFFIX.includes('\n')) throw new Error('boot-suffix.sh must be one line: it is appended to a command');

/**
 * probe-many.sh: one line per identity. `refreshUntilS` is the node uptime (whole seconds) past which
 * that probe must not refresh the attempt's lease; 0 or absent: read only.
 */
export function probeManyCommand(
  ids: readonly (Pick<ProcessIdentity, 'dir' | 'pid' | 'starttime' | 'bootId'> & { refreshUntilS?: number })[],
): string {
  const args: (string | number)[] = [];
  for (const id of ids) {
    assertIdentity(id);
    const until = id.refreshUntilS ?? 0;
    if (!Number.isSafeInteger(until) || until < 0) throw new Error(`invalid refresh limit ${String(until)}`);
    args.push(id.dir, id.pid, id.starttime, id.bootId, until);
  }
  return buildCommand(PROBE_MANY, 'dispatch-probe-many', args);
}

/** The node's work dir without trailing slashes (relative paths are relative to the login's home). */
export function workDirOf(node: Pick<NodeRow, 'work_dir'>): string {
  return (node.work_dir ?? '.dispatch/runs').replace(/\/+$/, '') || '/';
}

/** prune-list.sh: attempt directories under workDir not modified since the cutoff. */
export function pruneListCommand(workDir: string, cutoffEpochS: number): string {
  return buildCommand(PRUNE_LIST, 'dispatch-prune-list', [workDir, Math.floor(cutoffEpochS)]);
}

/** Removes attempt directories; each must be <workDir>/<valid task id>/attempt-<n>. */
export function pruneRemoveCommand(workDir: string, dirs: readonly string[]): string {
  const base = workDir.replace(/\/+$/, '');
  for (const d of dirs) {
    const rest = d.startsWith(`${base}/`) ? d.slice(base.length + 1) : null;
    const m = rest ? ATTEMPT_DIR_RE.exec(rest) : null;
    if (!m || !isValidTaskId(m[1])) throw new Error(`refusing to remove ${JSON.stringify(d)}: not an attempt directory under ${base}`);
  }
  return buildCommand(PRUNE_RM, 'dispatch-prune', [...dirs]);
}

/** identify.sh: what each legacy row's pid is now. */
export function identifyCommand(pids: readonly number[]): string {
  for (const p of pids) if (!isSignallablePid(p)) throw new Error(`refusing pid ${JSON.stringify(p)}`);
  return buildCommand(IDENTIFY, 'dispatch-identify', [...pids]);
}

/** fenced-list.sh: the attempt directories under workDir whose watchdog fenced them. */
export function fencedListCommand(workDir: string): string {
  return buildCommand(FENCED_LIST, 'dispatch-fenced-list', [workDir]);
}

/** An attempt a watchdog fenced, as fenced-list.sh reports it. */
export interface FencedAttempt {
  task: string;
  attempt: number;
  token: string | null;
  /** Epoch seconds, the node's clock. */
  fencedAt: number;
  leaseAgeS: number | null;
}

/** Parses fenced-list.sh output; lines that are not attempt directories under workDir are ignored. */
export function parseFencedList(out: string, workDir: string): FencedAttempt[] {
  const res: FencedAttempt[] = [];
  for (const line of out.split('\n')) {
    const m = /^fenced (-|[0-9a-f]{32}) (\S+) (\{.*\})$/.exec(line.trim());
    if (!m || !m[2]!.startsWith(`${workDir}/`)) continue;
    const d = ATTEMPT_DIR_RE.exec(m[2]!.slice(workDir.length + 1));
    if (!d || !isValidTaskId(d[1])) continue;
    let j: { fenced_at?: unknown; lease_age_s?: unknown };
    try {
      j = JSON.parse(m[3]!);
    } catch {
      continue;
    }
    if (typeof j.fenced_at !== 'number' || !Number.isSafeInteger(j.fenced_at)) continue;
    res.push({
      task: d[1]!,
      attempt: Number(d[2]),
      token: m[1] === '-' ? null : m[1]!,
      fencedAt: j.fenced_at,
      leaseAgeS: typeof j.lease_age_s === 'number' ? j.lease_age_s : null,
    });
  }
  return res;
}

/** identifyCommand, then "boot <boot id>" from the same login shell (boot-suffix.sh). */
export function identifyWithBootCommand(pids: readonly number[]): string {
  return `${identifyCommand(pids)}; ${BOOT_SUFFIX}`;
}

/** list-task-procs.sh: the processes dispatch launched under workDir, then the boot id. */
export function listTaskProcsCommand(workDir: string): string {
  return buildCommand(LIST_TASK_PROCS, 'dispatch-procs', [workDir]);
}

/** Node probe (ping.sh): answers with the boot id. */
/** logs.sh: an attempt's output; `follow` with the runner's identity keeps printing until it ends. */
export function logsCommand(
  dir: string,
  which: 'stdout' | 'stderr' | 'both',
  tail: number,
  follow: { pid: number; starttime: string } | null,
): string {
  assertAttemptDir(dir);
  if (!Number.isSafeInteger(tail) || tail < 0) throw new Error(`invalid line count ${tail}`);
  if (follow && (!isSignallablePid(follow.pid) || !isStartTime(follow.starttime))) throw new Error('invalid runner identity');
  return buildCommand(LOGS, 'dispatch-logs', [dir, which, tail, follow ? 1 : 0, follow?.pid ?? 0, follow?.starttime ?? 0]);
}

export function pingCommand(): string {
  return buildCommand(PING, 'dispatch-ping', []);
}

/** "<task>/attempt-<n>" or, for a later life that found the name taken, "<task>/attempt-<n>.<12 hex>". */
export const ATTEMPT_DIR_RE = /^([^/]+)\/attempt-([0-9]+)(?:\.([0-9a-f]{12}))?$/;

/**
 * launch.sh, with runner.sh as its $RUNNER. `token` is the attempt's token; '' only for an attempt
 * dispatched before tokens existed.
 */
export function launchCommand(
  dir: string,
  taskId: string,
  attempt: number,
  command: string,
  hasSpec: boolean,
  token = '',
  fence: FenceSettings = NO_FENCE,
  exitWaitMs = 0,
): string {
  if (!isValidTaskId(taskId)) throw new Error(`unsafe task id ${JSON.stringify(taskId)}`);
  if (token !== '' && !isAttemptToken(token)) throw new Error(`invalid attempt token ${JSON.stringify(token)}`);
  const fenceS = Math.ceil(fence.afterS);
  const graceS = Math.ceil(fence.graceS);
  if (!Number.isSafeInteger(fenceS) || fenceS < 0 || !Number.isSafeInteger(graceS) || graceS < 0)
    throw new Error(`invalid fence settings ${JSON.stringify(fence)}`);
  if (!Number.isSafeInteger(exitWaitMs) || exitWaitMs < 0 || exitWaitMs > 60_000) throw new Error(`invalid exit wait ${exitWaitMs}`);
  const script = `RUNNER=${shq(RUNNER)}\nWATCHDOG=${shq(WATCHDOG)}\n${LAUNCH}`;
  return buildCommand(script, 'dispatch-launch', [dir, taskId, attempt, command, hasSpec ? 1 : 0, token, fenceS, graceS, exitWaitMs]);
}

/** The self-fence of each attempt launched: fence_after (0 = no watchdog) and kill_grace, seconds. */
export interface FenceSettings {
  afterS: number;
  graceS: number;
}
export const NO_FENCE: FenceSettings = { afterS: 0, graceS: 10 };

/** probe.sh: is the recorded process still the one we launched? */
export function probeCommand(id: Pick<ProcessIdentity, 'dir' | 'pid' | 'starttime' | 'bootId'>): string {
  assertIdentity(id);
  return buildCommand(PROBE, 'dispatch-probe', [id.dir, id.pid, id.starttime, id.bootId]);
}

export interface KillTarget {
  pid: number;
  starttime: string;
}

/** kill.sh: TERM, then KILL after graceS, each target's identity checked again before each signal. */
export function killCommand(bootId: string, graceS: number, targets: readonly KillTarget[]): string {
  if (!isBootId(bootId)) throw new Error(`invalid boot id ${JSON.stringify(bootId)}`);
  const grace = Math.max(0, Math.round(graceS));
  const args: (string | number)[] = [bootId, grace];
  for (const t of targets) {
    if (!isSignallablePid(t.pid)) throw new Error(`refusing to signal pid ${JSON.stringify(t.pid)}`);
    if (!isStartTime(t.starttime)) throw new Error(`invalid start time ${JSON.stringify(t.starttime)}`);
    args.push(t.pid, t.starttime);
  }
  return buildCommand(KILL, 'dispatch-kill', args);
}

/** An attempt directory: <work dir>/<valid task id>/attempt-<n>[.<12 hex>], no control characters. */
export function assertAttemptDir(dir: string): void {
  const i = dir.lastIndexOf('/', dir.lastIndexOf('/') - 1);
  const rest = i >= 0 ? dir.slice(i + 1) : '';
  const m = ATTEMPT_DIR_RE.exec(rest);
  // eslint-disable-next-line no-control-regex
  if (!m || !isValidTaskId(m[1]) || /[\x00-\x1f]/.test(dir)) throw new Error(`not an attempt directory: ${JSON.stringify(dir)}`);
}

export function assertIdentity(id: Pick<ProcessIdentity, 'pid' | 'starttime' | 'bootId'>): void {
  if (!isSignallablePid(id.pid)) throw new Error(`invalid pid ${JSON.stringify(id.pid)}`);
  if (!isStartTime(id.starttime)) throw new Error(`invalid start time ${JSON.stringify(id.starttime)}`);
  if (!isBootId(id.bootId)) throw new Error(`invalid boot id ${JSON.stringify(id.bootId)}`);
}
