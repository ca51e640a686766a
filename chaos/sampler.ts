/**
 * Once a second, the set of live task processes on this machine (every chaos node is 127.0.0.1):
 * processes whose environment has DISPATCH_TASK / DISPATCH_ATTEMPT and a DISPATCH_DIR under this
 * run's directory (other test runs on a shared machine are ignored). A task with two different
 * attempts alive in the same sample is a double run.
 */
import fs from 'node:fs';
import { listPids, readProcStat } from '../test/helpers/proc';

export interface LiveProc {
  pid: number;
  task: string;
  attempt: number;
  dir: string;
  starttime: string;
}

export interface AttemptSeen {
  task: string;
  attempt: number;
  firstSeenMs: number;
  lastSeenMs: number;
  pids: Set<number>;
}

export interface DoubleRunSample {
  task: string;
  atMs: number;
  attempts: number[];
  pids: number[];
}

function envOf(pid: number): Map<string, string> | null {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(`/proc/${pid}/environ`);
  } catch {
    return null;
  }
  // Cheap filter before splitting: most processes are not ours.
  if (buf.indexOf('DISPATCH_TASK=') < 0) return null;
  const m = new Map<string, string>();
  for (const kv of buf.toString('utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0 && kv.startsWith('DISPATCH_')) m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

/** Live (non-zombie) task processes whose DISPATCH_DIR starts with `dirPrefix`. */
export function scanTaskProcs(dirPrefix: string): LiveProc[] {
  const out: LiveProc[] = [];
  for (const pid of listPids()) {
    if (pid === process.pid) continue;
    const env = envOf(pid);
    if (!env) continue;
    const task = env.get('DISPATCH_TASK');
    const dir = env.get('DISPATCH_DIR') ?? '';
    if (!task || !dir.startsWith(dirPrefix)) continue;
    const st = readProcStat(pid);
    if (!st || st.state === 'Z') continue;
    out.push({ pid, task, attempt: Number(env.get('DISPATCH_ATTEMPT') ?? '0'), dir, starttime: st.starttime });
  }
  return out;
}

export class Sampler {
  readonly attempts = new Map<string, AttemptSeen>();
  readonly doubleRuns: DoubleRunSample[] = [];
  samples = 0;
  maxScanMs = 0;
  totalScanMs = 0;
  maxLive = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly dirPrefix: string,
    private readonly everyMs = 1000,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  sample(): LiveProc[] {
    const t0 = Date.now();
    const procs = scanTaskProcs(this.dirPrefix);
    const now = Date.now();
    const ms = now - t0;
    this.samples++;
    this.totalScanMs += ms;
    this.maxScanMs = Math.max(this.maxScanMs, ms);
    const byTask = new Map<string, Map<number, number[]>>();
    for (const p of procs) {
      const key = `${p.task}#${p.attempt}`;
      let a = this.attempts.get(key);
      if (!a) {
        a = { task: p.task, attempt: p.attempt, firstSeenMs: now, lastSeenMs: now, pids: new Set() };
        this.attempts.set(key, a);
      }
      a.lastSeenMs = now;
      a.pids.add(p.pid);
      const m = byTask.get(p.task) ?? new Map<number, number[]>();
      m.set(p.attempt, [...(m.get(p.attempt) ?? []), p.pid]);
      byTask.set(p.task, m);
    }
    this.maxLive = Math.max(this.maxLive, byTask.size);
    for (const [task, m] of byTask) {
      if (m.size > 1)
        this.doubleRuns.push({ task, atMs: now, attempts: [...m.keys()].sort((a, b) => a - b), pids: [...m.values()].flat() });
    }
    return procs;
  }

  seen(task: string, attempt: number): AttemptSeen | undefined {
    return this.attempts.get(`${task}#${attempt}`);
  }
}
