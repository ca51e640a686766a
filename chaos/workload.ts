/**
 * The task mix of a chaos run: mostly short tasks, a few long ones, some that fail (and are
 * retried), some flaky ones that fail once, some past a short runtime cap, some dependent ones and
 * some sharing a `modifies` file. Everything is decided up front from the seeded PRNG.
 */
import type { Rng } from './prng';

export type TaskKind = 'short' | 'long' | 'fail' | 'flaky' | 'capped' | 'child' | 'ghost';

export interface PlannedTask {
  id: string;
  kind: TaskKind;
  /** Seconds the command sleeps (for `capped`, longer than its cap). */
  sleepS: number;
  command: string;
  /** Offset from the start of the injection window at which it is submitted, ms. */
  submitAtMs: number;
  priority: number;
  dependsOn: string[];
  modifies: string[];
  /** Runtime cap in seconds given at submission, or null for the config's default. */
  maxRuntimeS: number | null;
  pinNode: string | null;
  /** Ms after submission at which `dispatch cancel` is sent; null = never. */
  cancelAfterMs: number | null;
  /** What the task should end as if no fault touches it. */
  expect: 'completed' | 'failed' | 'blocked-or-completed';
}

export interface WorkloadOptions {
  tasks: number;
  /** Submissions are spread over [0, submitWindowMs). */
  submitWindowMs: number;
  cancelShare: number;
}

const fmt = (s: number): string => s.toFixed(1);

export function planWorkload(rng: Rng, o: WorkloadOptions): PlannedTask[] {
  const out: PlannedTask[] = [];
  // Long tasks are submitted in the first two thirds, so some run during most of the fault window.
  const times = Array.from({ length: o.tasks }, () => rng.float(0, o.submitWindowMs)).sort((a, b) => a - b);
  for (let i = 0; i < o.tasks; i++) {
    const r = rng.next();
    let kind: TaskKind;
    if (r < 0.05) kind = 'long';
    else if (r < 0.13) kind = 'fail';
    else if (r < 0.19) kind = 'flaky';
    else if (r < 0.22) kind = 'capped';
    else if (r < 0.28 && out.length > 5) kind = 'child';
    else kind = 'short';
    const submitAtMs = kind === 'long' ? rng.float(0, (o.submitWindowMs * 2) / 3) : times[i]!;
    const id = `t${String(i).padStart(3, '0')}-${kind}`;
    const echo = `echo "chaos $DISPATCH_TASK attempt $DISPATCH_ATTEMPT on $(hostname) at $(date +%s)"`;
    let sleepS = 0;
    let command = '';
    let maxRuntimeS: number | null = null;
    let expect: PlannedTask['expect'] = 'completed';
    const dependsOn: string[] = [];
    switch (kind) {
      case 'short':
        sleepS = rng.float(2, 20);
        command = `${echo}; sleep ${fmt(sleepS)}; echo done`;
        break;
      case 'long':
        sleepS = rng.float(60, 150);
        command = `${echo}; sleep ${fmt(sleepS)}; echo done`;
        break;
      case 'fail':
        sleepS = rng.float(1, 6);
        command = `${echo}; sleep ${fmt(sleepS)}; echo failing >&2; exit 3`;
        expect = 'failed';
        break;
      case 'flaky':
        sleepS = rng.float(2, 8);
        command = `${echo}; sleep ${fmt(sleepS)}; test "$DISPATCH_ATTEMPT" -ge 2 || exit 4`;
        break;
      case 'capped': {
        maxRuntimeS = rng.int(8, 16);
        sleepS = 90;
        // Half of them ignore SIGTERM (inherited by sleep), so the cap needs the SIGKILL after the grace.
        const trap = rng.chance(0.5) ? 'trap "" TERM; ' : '';
        command = `${trap}${echo}; sleep ${sleepS}`;
        expect = 'failed';
        break;
      }
      case 'child': {
        const candidates = out.filter((t) => t.kind !== 'long' && t.submitAtMs <= submitAtMs);
        const parent = candidates.length ? rng.pick(candidates) : rng.pick(out);
        dependsOn.push(parent.id);
        sleepS = rng.float(2, 10);
        command = `${echo}; sleep ${fmt(sleepS)}`;
        expect = 'blocked-or-completed';
        break;
      }
      default:
        break;
    }
    const modifies = kind === 'short' && rng.chance(0.12) ? [`shared/file-${rng.int(0, 2)}.txt`] : [];
    const cancelAfterMs = rng.chance(o.cancelShare * 0.6) ? rng.float(500, 40_000) : null;
    out.push({
      id,
      kind,
      sleepS,
      command,
      submitAtMs,
      priority: rng.int(10, 90),
      dependsOn,
      modifies,
      maxRuntimeS,
      pinNode: null,
      cancelAfterMs,
      expect,
    });
  }
  // At least a few cancels, whatever the dice said.
  const want = Math.max(3, Math.round(o.tasks * o.cancelShare));
  const pool = out.filter((t) => t.cancelAfterMs === null && t.kind !== 'capped');
  while (out.filter((t) => t.cancelAfterMs !== null).length < want && pool.length) {
    const t = pool.splice(Math.floor(rng.next() * pool.length), 1)[0]!;
    t.cancelAfterMs = rng.float(500, 40_000);
  }
  return out.sort((a, b) => a.submitAtMs - b.submitAtMs);
}

export function summarizeWorkload(ts: PlannedTask[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const t of ts) m[t.kind] = (m[t.kind] ?? 0) + 1;
  m.cancel_planned = ts.filter((t) => t.cancelAfterMs !== null).length;
  m.with_modifies = ts.filter((t) => t.modifies.length > 0).length;
  return m;
}
