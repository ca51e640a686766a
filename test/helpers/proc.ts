// Helpers for tests that inspect processes on this machine (every test "node" is 127.0.0.1).
import fs from 'node:fs';

export interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  /** Clock ticks since boot; a string so (pid, starttime) can be compared as an identity. */
  starttime: string;
}

/** Parses /proc/<pid>/stat; null if the process does not exist. */
export function readProcStat(pid: number): ProcStat | null {
  let raw: string;
  try {
    raw = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm (field 2) may contain spaces and ')' itself, so split after the LAST ')'.
  const close = raw.lastIndexOf(')');
  if (close < 0) return null;
  const f = raw
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // f[0] is field 3 (state), so field N is f[N - 3].
  if (f.length < 20) return null;
  return {
    state: f[0],
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    session: Number(f[3]),
    starttime: f[19],
  };
}

/** True if the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const st = readProcStat(pid);
  return st !== null && st.state !== 'Z';
}

/** Polls `pred` every 100 ms until it returns true; throws `timed out waiting for <label>`. */
export async function waitFor(pred: () => boolean | Promise<boolean>, timeoutMs: number, label: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() >= deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every pid in /proc (empty if /proc cannot be read). */
export function listPids(): number[] {
  try {
    return fs
      .readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number);
  } catch {
    return [];
  }
}

/** Pids of live (non-zombie) processes whose environment contains `name=value`. */
export function findProcessesWithEnv(name: string, value: string): number[] {
  const needle = Buffer.from(`${name}=${value}`);
  const out: number[] = [];
  for (const pid of listPids()) {
    let env: Buffer;
    try {
      env = fs.readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue; // gone, or not ours to read
    }
    // environ is NUL-separated; match whole entries only (DISPATCH_TASK=a must not match a1).
    let start = 0;
    let found = false;
    while (start < env.length) {
      let end = env.indexOf(0, start);
      if (end < 0) end = env.length;
      if (end - start === needle.length && env.subarray(start, end).equals(needle)) {
        found = true;
        break;
      }
      start = end + 1;
    }
    if (found && isAlive(pid)) out.push(pid);
  }
  return out;
}
