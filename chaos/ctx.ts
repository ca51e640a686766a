/** Shared state of one chaos run: the cluster, the PRNG, the workers, and what the faults did. */
import Database from 'better-sqlite3';
import os from 'node:os';
import { spawn } from 'node:child_process';
import { BIN, type Cluster, type CliResult, type WorkerProc } from '../test/helpers/cluster';
import type { TaskRow, NodeRow } from '../src/common/types';
import type { DispatchConfig } from '../src/config/config';
import type { Rng } from './prng';
import type { Sampler } from './sampler';
import type { PlannedTask } from './workload';

export interface ManagedWorker {
  name: string;
  /** undefined = both queues (the one that holds dispatch.db). */
  queues: string | undefined;
  proc: WorkerProc | null;
  identity: string | null;
  /** Set just before we SIGKILL it, so the watchdog does not count the exit as unexpected. */
  expectedExit: boolean;
  starts: number;
  unexpectedExits: { atMs: number; code: number | null; signal: string | null }[];
}

/** A window during which a node's sshd was down. */
/**
 * Every outage kind stops the node's sshd, so every one is a cut: no supervisor can reach the node
 * while it lasts, and its tasks fencing themselves then is the design working. (Decided this way
 * rather than keeping faults off nodes with live tasks: a cut of a busy node is the case worth testing.)
 */
export function cutsNode(o: Outage): boolean {
  return o.kind === 'partition' || o.kind === 'dispatch-timeout-ghost';
}

export interface Outage {
  node: string;
  kind: 'partition' | 'dispatch-timeout-ghost';
  fromMs: number;
  toMs: number | null;
  offlineAtMs?: number | null;
  onlineAgainAtMs?: number | null;
}

export interface ForcedGhost {
  rule: string;
  task: string;
  atMs: number;
  /** The rule the reaper booked this task under, or null if it was not reaped. */
  reapedAs: string | null;
  ok: boolean;
  note?: string;
}

export interface RecoverySample {
  killAtMs: number;
  worker: string;
  identity: string;
  tracked: string[];
  perTask: { task: string; s: number; how: string }[];
  /** Worst (max) over the tracked tasks: every tracked supervision re-attached after this long. */
  s: number | null;
  note?: string;
}

export interface FaultLog {
  workerKills: { atMs: number; worker: string; restartedAfterS: number | null; error?: string }[];
  temporalKills: { atMs: number; downS: number; restartS: number; directReap?: string }[];
  partitions: Outage[];
  forcedGhosts: ForcedGhost[];
  reaperTriggers: { atMs: number; how: string; code: number | null; summary: string }[];
  cancels: { atMs: number; task: string; code: number | null; outcome: 'requested' | 'too-late' | 'error'; detail?: string }[];
  recovery: RecoverySample[];
  notes: string[];
}

export class ChaosCtx {
  readonly t0 = Date.now();
  readonly workers: ManagedWorker[] = [];
  readonly outages: Outage[] = [];
  readonly faults: FaultLog = {
    workerKills: [],
    temporalKills: [],
    partitions: [],
    forcedGhosts: [],
    reaperTriggers: [],
    cancels: [],
    recovery: [],
    notes: [],
  };
  /** Task ids with an acknowledged `dispatch cancel` (exit 0) -> when it was sent. */
  readonly cancelled = new Map<string, number>();
  /** Task id -> forced ghost rule and when the fault was applied. */
  readonly forced = new Map<string, { rule: string; atMs: number }>();
  /** Every task we submitted (workflow started), by id. */
  readonly submitted = new Map<string, PlannedTask & { submittedAtMs: number }>();
  readonly submitFailures: { task: string; error: string }[] = [];
  temporalDown = false;
  /** Set at teardown: worker exits are expected from then on. */
  stopping = false;
  /** Node names whose sshd is currently stopped by a fault (no second fault picks them). */
  readonly busyNodes = new Set<string>();
  private ro: Database.Database | null = null;

  constructor(
    readonly c: Cluster,
    readonly rng: Rng,
    readonly cfg: DispatchConfig,
    readonly sampler: Sampler,
    readonly runDirPrefix: string,
  ) {}

  elapsed(): string {
    return `${((Date.now() - this.t0) / 1000).toFixed(0).padStart(4)}s`;
  }

  log(msg: string): void {
    console.log(`[chaos ${this.elapsed()}] ${msg}`);
  }

  note(msg: string): void {
    this.faults.notes.push(`${this.elapsed().trim()}: ${msg}`);
    this.log(`NOTE ${msg}`);
  }

  /** A long-lived read-only handle (WAL readers never block the writer). */
  db(): Database.Database {
    if (!this.ro) {
      this.ro = new Database(this.c.dbPath, { readonly: true, fileMustExist: true, timeout: 30_000 });
      this.ro.pragma('busy_timeout = 30000');
    }
    return this.ro;
  }

  closeDb(): void {
    this.ro?.close();
    this.ro = null;
  }

  task(id: string): TaskRow | null {
    return (this.db().prepare('SELECT * FROM tasks WHERE id = ?').get(id) as TaskRow | undefined) ?? null;
  }

  tasks(where = '1=1', ...args: unknown[]): TaskRow[] {
    return this.db()
      .prepare(`SELECT * FROM tasks WHERE ${where} ORDER BY seq`)
      .all(...args) as TaskRow[];
  }

  nodes(): NodeRow[] {
    return this.db().prepare('SELECT * FROM nodes ORDER BY name').all() as NodeRow[];
  }

  counts(): Record<string, number> {
    const rows = this.db().prepare(`SELECT COALESCE(status, 'null') AS s, COUNT(*) AS n FROM tasks GROUP BY 1 ORDER BY 1`).all() as {
      s: string;
      n: number;
    }[];
    return Object.fromEntries(rows.map((r) => [r.s, r.n]));
  }

  /** The rule under which the reaper booked `task`, if it did. */
  reapedRule(task: string): string | null {
    const r = this.db()
      .prepare(`SELECT detail FROM events WHERE task_id = ? AND kind IN ('reaped', 'reaped_requeued') ORDER BY id LIMIT 1`)
      .get(task) as { detail: string } | undefined;
    if (!r) return null;
    try {
      return String((JSON.parse(r.detail) as { rule?: string }).rule ?? 'unknown');
    } catch {
      return 'unknown';
    }
  }

  /** Test-only write, as hours of real time would: ages a row's timestamps. Short transaction, same busy_timeout. */
  age(id: string, set: Record<string, string | number | null>, where = ''): number {
    const db = new Database(this.c.dbPath, { timeout: 30_000 });
    try {
      const cols = Object.keys(set);
      return db.prepare(`UPDATE tasks SET ${cols.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id ${where}`).run({ ...set, id })
        .changes;
    } finally {
      db.close();
    }
  }

  /** Runs the real `dispatch` CLI against this cluster; SIGKILLed after `timeoutMs` (code null). */
  cli(args: string[], timeoutMs = 120_000): Promise<CliResult & { timedOut: boolean }> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, [BIN, ...this.c.globalArgs(), ...args], {
        env: this.c.env,
        cwd: this.c.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      const t = setTimeout(() => {
        timedOut = true;
        p.kill('SIGKILL');
      }, timeoutMs);
      p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      p.on('close', (code) => {
        clearTimeout(t);
        resolve({ code, stdout, stderr, timedOut });
      });
    });
  }

  identityOf(pid: number | undefined): string | null {
    return pid ? `${pid}@${os.hostname()}` : null;
  }
}

/** Aborted on SIGINT/SIGTERM: every wait below returns at once, so the run tears down and reports. */
export const abortAll = new AbortController();

export const sleep = (ms: number): Promise<void> =>
  new Promise((r) => {
    if (abortAll.signal.aborted) return r();
    const done = () => {
      clearTimeout(t);
      abortAll.signal.removeEventListener('abort', done);
      r();
    };
    const t = setTimeout(done, ms);
    abortAll.signal.addEventListener('abort', done);
  });
export const isoAgo = (s: number): string => new Date(Date.now() - s * 1000).toISOString();

/** Polls until `pred` returns a value (not null/false) or the timeout passes; then returns null. */
export async function poll<T>(
  pred: () => T | null | false | Promise<T | null | false>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T | null> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await pred();
      if (v !== null && v !== false) return v;
    } catch {
      // transient (server restarting, database busy): try again
    }
    if (Date.now() >= until || abortAll.signal.aborted) return null;
    await sleep(everyMs);
  }
}
