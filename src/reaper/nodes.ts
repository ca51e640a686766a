/**
 * Node health: the probe (every 15 s by schedule) and the recovery of a node that comes back.
 * A node is trusted again only after every process on it that belongs to a task attempt which is
 * no longer current there has been killed.
 */
import type { NodeRow } from '../common/types';
import { attemptKey, isAttemptToken, isSignallablePid, isStartTime } from '../common/validate';
import type { ShellPool } from '../shell/pool';
import {
  ATTEMPT_DIR_RE,
  fencedListCommand,
  killCommand,
  parseFencedList,
  type FencedAttempt,
  listTaskProcsCommand,
  pingCommand,
  pruneListCommand,
  pruneRemoveCommand,
  workDirOf,
} from '../shell/scripts';
import { parseKillOutput } from '../shell/status';

/** Misses in a row before a node is declared offline. */
export const OFFLINE_AFTER_MISSES = 3;

export interface ProbeResult {
  name: string;
  ok: boolean;
  bootId: string | null;
  error: string | null;
}

export async function probeNodes(pool: ShellPool, nodes: NodeRow[], timeoutMs = 5000): Promise<ProbeResult[]> {
  return Promise.all(
    nodes.map(async (n): Promise<ProbeResult> => {
      try {
        // fresh: a node whose connection is in reconnect backoff (after failed launches or probes
        // while it was down) must not be counted as missing once its sshd answers again.
        const r = await pool.get(n).exec(pingCommand(), { timeoutMs, fresh: true });
        const m = /^pong ([0-9a-f-]{36})$/m.exec(r.stdout);
        if (!m)
          return { name: n.name, ok: false, bootId: null, error: `unexpected answer: ${r.stdout.slice(0, 100)}${r.stderr.slice(0, 100)}` };
        return { name: n.name, ok: true, bootId: m[1]!, error: null };
      } catch (e) {
        return { name: n.name, ok: false, bootId: null, error: (e as Error).message };
      }
    }),
  );
}

export interface TaskProc {
  pid: number;
  state: string;
  pgrp: number;
  starttime: string;
  task: string;
  attempt: number;
  /** DISPATCH_ATTEMPT_TOKEN of the process; null for processes launched before tokens. */
  token: string | null;
}

export function parseTaskProcs(out: string): { procs: TaskProc[]; bootId: string | null } {
  const procs: TaskProc[] = [];
  let bootId: string | null = null;
  for (const line of out.split('\n')) {
    const p = line.trim().split(' ');
    if (p[0] === 'boot' && /^[0-9a-f-]{36}$/.test(p[1] ?? '')) bootId = p[1]!;
    if (p[0] !== 'proc' || (p.length !== 7 && p.length !== 8)) continue;
    const pid = Number(p[1]);
    const pgrp = Number(p[3]);
    if (!isSignallablePid(pid) || !Number.isSafeInteger(pgrp) || !isStartTime(p[4]) || !/^[0-9]+$/.test(p[6]!)) continue;
    procs.push({
      pid,
      state: p[2]!,
      pgrp,
      starttime: p[4]!,
      task: p[5]!,
      attempt: Number(p[6]),
      token: isAttemptToken(p[7]) ? p[7] : null,
    });
  }
  return { procs, bootId };
}

export interface CleanupResult {
  node: string;
  found: number;
  killed: { task: string; attempt: number; pid: number; outcome: string }[];
  /** True when nothing stale is left running. */
  clean: boolean;
  error: string | null;
  /** Attempts whose watchdog fenced them while the node was cut off (read from their directories). */
  fenced?: FencedAttempt[];
}

/**
 * Kills the processes of attempts that are not current on this node. `current` holds the
 * attemptKey of every attempt the database says is current; a process of an earlier life of the
 * same task id carries another token (or none), so it is never taken for the current one. Only processes launched under this node's
 * work dir are considered, so another deployment's tasks on the same host are never touched. Processes are killed one by one with their
 * observed start time as identity (the checked kill signals their process group).
 */
export async function cleanupStaleProcesses(pool: ShellPool, node: NodeRow, current: string[], graceS: number): Promise<CleanupResult> {
  const cur = new Set(current);
  try {
    const shell = pool.get(node);
    const out = await shell.exec(listTaskProcsCommand(workDirOf(node)), { timeoutMs: 30_000 });
    const { procs, bootId } = parseTaskProcs(out.stdout);
    const live = procs.filter((p) => p.state !== 'Z');
    const stale = live.filter((p) => !cur.has(attemptKey(p.task, p.attempt, p.token)));
    const f = await shell.exec(fencedListCommand(workDirOf(node)), { timeoutMs: 30_000 });
    const fenced = parseFencedList(f.stdout, workDirOf(node));
    if (stale.length === 0 || !bootId)
      return { node: node.name, found: stale.length, killed: [], clean: stale.length === 0, error: bootId ? null : 'no boot id', fenced };
    const targets = stale.map((p) => ({ pid: p.pid, starttime: p.starttime }));
    const k = await shell.exec(killCommand(bootId, graceS, targets), { timeoutMs: (graceS + 30) * 1000 });
    const res = new Map(parseKillOutput(k.stdout).map((r) => [r.pid, r.outcome]));
    const killed = stale.map((p) => ({ task: p.task, attempt: p.attempt, pid: p.pid, outcome: res.get(p.pid) ?? 'unknown' }));
    const clean = killed.every((x) => x.outcome !== 'still-alive' && x.outcome !== 'unknown');
    return { node: node.name, found: stale.length, killed, clean, error: null, fenced };
  } catch (e) {
    return { node: node.name, found: 0, killed: [], clean: false, error: (e as Error).message };
  }
}

/**
 * Removes attempt directories older than the retention cutoff, except the attempts the books say
 * are current (by attemptKey: the directory's token file must match the row's token).
 */
export async function pruneAttemptDirs(
  pool: ShellPool,
  node: NodeRow,
  current: string[],
  cutoffEpochS: number,
): Promise<{ node: string; removed: string[]; error: string | null }> {
  const workDir = workDirOf(node);
  const cur = new Set(current);
  try {
    const shell = pool.get(node);
    const out = await shell.exec(pruneListCommand(workDir, cutoffEpochS), { timeoutMs: 60_000 });
    const old: string[] = [];
    for (const line of out.stdout.split('\n')) {
      const sp = line.indexOf(' ');
      if (sp < 0) continue;
      const token = line.slice(0, sp);
      const d = line.slice(sp + 1).trim();
      if (!d.startsWith(`${workDir}/`)) continue;
      const m = ATTEMPT_DIR_RE.exec(d.slice(workDir.length + 1));
      if (m && !cur.has(attemptKey(m[1]!, Number(m[2]), isAttemptToken(token) ? token : null))) old.push(d);
    }
    const removed: string[] = [];
    for (let i = 0; i < old.length; i += 200) {
      const batch = old.slice(i, i + 200);
      const r = await shell.exec(pruneRemoveCommand(workDir, batch), { timeoutMs: 120_000 });
      for (const line of r.stdout.split('\n')) if (line.startsWith('removed ')) removed.push(line.slice(8));
    }
    return { node: node.name, removed, error: null };
  } catch (e) {
    return { node: node.name, removed: [], error: (e as Error).message };
  }
}
