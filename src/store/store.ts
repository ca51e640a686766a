/**
 * The one place that reads and writes dispatch.db. Every statement is named here; every state
 * change is fenced on (id, attempt, status) and checks that exactly one row changed. Slot counts
 * and file locks change in the same transaction as the status.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync } from 'node:fs';
import { UserError } from '../common/errors';
import { attemptKey } from '../common/validate';
import type { Assignment, NodeRow, ProcessIdentity, TaskRow, TaskSpec } from '../common/types';
import { migrate, pendingMigrations } from './schema';

export interface StoreOptions {
  /** Refuse to create the file: for read-only commands. @default false */
  mustExist?: boolean;
  readonly?: boolean;
}

export interface FenceResult {
  applied: boolean;
  /** The row as it is after the attempt (or null if it does not exist). */
  row: TaskRow | null;
  reason?: string;
}

export type AttemptOutcome =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'vanished'; detail: string }
  | { kind: 'runtime-exceeded'; maxRuntimeS: number }
  | { kind: 'launch-failed'; detail: string };

export interface FinishResult extends FenceResult {
  /** Where the task went: completed, failed or queued (retry). */
  status?: string;
}

export interface AllocationResult {
  assigned: Assignment[];
  blocked: { taskId: string; reason: string }[];
}

export interface NodeInput {
  name: string;
  kind: 'ssh' | 'local';
  host: string | null;
  port: number | null;
  user: string | null;
  keyPath: string | null;
  knownHosts: string | null;
  insecureIgnoreHostKey: boolean;
  slots: number;
  workDir: string;
}

type CurrentRow = { id: string; attempts: number; attempt_token: string | null };

const nowIso = (): string => new Date().toISOString();

/** A node that runs tasks on this machine, without SSH. */
export function localNodeInput(name: string, slots: number, workDir: string): NodeInput {
  return { name, kind: 'local', host: null, port: null, user: null, keyPath: null, knownHosts: null, insecureIgnoreHostKey: false, slots, workDir };
}

function parseList(v: string | null): string[] {
  if (!v) return [];
  try {
    const a: unknown = JSON.parse(v);
    return Array.isArray(a) ? a.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export class Store {
  readonly db: Database.Database;
  private readonly s;

  constructor(readonly path: string, opts: StoreOptions = {}) {
    if ((opts.mustExist || opts.readonly) && !existsSync(path)) {
      throw new UserError(`database ${path} does not exist: run \`dispatch init\` first (or pass --db PATH)`);
    }
    const isNew = !opts.readonly && path !== ':memory:' && !existsSync(path);
    try {
      this.db = new Database(path, { readonly: opts.readonly ?? false, timeout: 30_000 });
    } catch (e) {
      throw new UserError(`cannot open database ${path}: ${(e as Error).message}`);
    }
    // Commands, specs and node settings live here (writing it is as good as the SSH keys): a new
    // file is readable by its owner only. SQLite gives the -wal and -shm files the same mode.
    if (isNew) chmodSync(path, 0o600);
    this.db.pragma('busy_timeout = 30000');
    if (!opts.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      migrate(this.db);
    } else if (pendingMigrations(this.db).length > 0) {
      this.db.close();
      throw new UserError(`database ${path} has not been adopted by this version of dispatch yet: run \`dispatch init\` (it keeps every row)`);
    }
    const d = this.db;
    this.s = {
      getTask: d.prepare(`SELECT * FROM tasks WHERE id = ?`),
      nextSeq: d.prepare(`SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM tasks`),
      insertTask: d.prepare(`INSERT INTO tasks (id, project, status, priority, seq, depends_on, modifies, command,
          spec_body, spec_hash, executor, max_runtime_s, pin_node, attempts, reaped_count, workflow_id, created_at, updated_at)
        VALUES (@id, @project, 'queued', @priority, @seq, @depends_on, @modifies, @command, @spec_body, @spec_hash,
          @executor, @max_runtime_s, @pin_node, 0, 0, @workflow_id, @now, @now)`),
      queuedPage: d.prepare(`SELECT id, depends_on, modifies, pin_node FROM tasks
        WHERE status = 'queued' AND workflow_id IS NOT NULL ORDER BY priority, seq LIMIT ? OFFSET ?`),
      onlineNodesWithRoom: d.prepare(`SELECT name, COALESCE(slots, 0) - COALESCE(running_count, 0) AS free FROM nodes
        WHERE status = 'online' AND COALESCE(slots, 0) > COALESCE(running_count, 0) ORDER BY name`),
      lockHolder: d.prepare(`SELECT task_id FROM file_locks WHERE path = ?`),
      insertLock: d.prepare(`INSERT INTO file_locks (path, task_id, attempt, acquired_at) VALUES (?, ?, ?, ?)`),
      releaseLocks: d.prepare(`DELETE FROM file_locks WHERE task_id = ?`),
      dispatch: d.prepare(`UPDATE tasks SET status = 'dispatched', node = @node, attempts = COALESCE(attempts, 0) + 1,
          attempt_token = @token, dispatched_at = @now, updated_at = @now, pid = NULL, proc_starttime = NULL, boot_id = NULL, run_dir = NULL,
          exit_code = NULL, started_at = NULL, last_heartbeat = NULL
        WHERE id = @id AND status = 'queued'`),
      block: d.prepare(`UPDATE tasks SET status = 'blocked', error = @reason, updated_at = @now, finished_at = @now
        WHERE id = @id AND status = 'queued'`),
      takeSlot: d.prepare(`UPDATE nodes SET running_count = COALESCE(running_count, 0) + 1 WHERE name = ?`),
      freeSlot: d.prepare(`UPDATE nodes SET running_count = MAX(0, COALESCE(running_count, 0) - 1) WHERE name = ?`),
      markRunning: d.prepare(`UPDATE tasks SET status = 'running', pid = @pid, proc_starttime = @starttime, boot_id = @boot_id,
          run_dir = @dir, started_at = @now, last_heartbeat = @now, updated_at = @now
        WHERE id = @id AND attempts = @attempt AND status = 'dispatched' AND node = @node`),
      heartbeat: d.prepare(`UPDATE tasks SET last_heartbeat = @now, updated_at = @now
        WHERE id = @id AND attempts = @attempt AND status = 'running'`),
      finish: d.prepare(`UPDATE tasks SET status = @status, exit_code = @exit_code, error = @error, updated_at = @now,
          finished_at = CASE WHEN @status = 'queued' THEN NULL ELSE @now END,
          node = CASE WHEN @status = 'queued' THEN NULL ELSE node END
        WHERE id = @id AND attempts = @attempt AND status IN ('dispatched', 'running')`),
      cancelActive: d.prepare(`UPDATE tasks SET status = 'cancelled', error = @reason, updated_at = @now, finished_at = @now
        WHERE id = @id AND attempts = @attempt AND status IN ('dispatched', 'running')`),
      cancelQueued: d.prepare(`UPDATE tasks SET status = 'cancelled', error = @reason, updated_at = @now, finished_at = @now
        WHERE id = @id AND status = 'queued'`),
      event: d.prepare(`INSERT INTO events (at, task_id, attempt, kind, detail) VALUES (?, ?, ?, ?, ?)`),
      statusOf: d.prepare(`SELECT status FROM tasks WHERE id = ?`),
      getNode: d.prepare(`SELECT * FROM nodes WHERE name = ?`),
      listNodes: d.prepare(`SELECT * FROM nodes ORDER BY name`),
      upsertNode: d.prepare(`INSERT INTO nodes (name, host, slots, running_count, kind, port, user, key_path, known_hosts,
          insecure_ignore_host_key, work_dir, status, missed_probes, created_at)
        VALUES (@name, @host, @slots, 0, @kind, @port, @user, @key_path, @known_hosts, @insecure, @work_dir, 'online', 0, @now)
        ON CONFLICT(name) DO UPDATE SET host = excluded.host, slots = excluded.slots, kind = excluded.kind,
          port = excluded.port, user = excluded.user, key_path = excluded.key_path, known_hosts = excluded.known_hosts,
          insecure_ignore_host_key = excluded.insecure_ignore_host_key, work_dir = excluded.work_dir,
          running_count = COALESCE(nodes.running_count, 0),
          status = CASE WHEN nodes.status = 'drained' THEN 'online' ELSE COALESCE(nodes.status, 'online') END`),
      setNodeStatus: d.prepare(`UPDATE nodes SET status = ? WHERE name = ?`),
      countsAll: d.prepare(`SELECT COALESCE(status, 'unknown') AS status, COUNT(*) AS n FROM tasks GROUP BY 1 ORDER BY 1`),
      countsProject: d.prepare(`SELECT COALESCE(status, 'unknown') AS status, COUNT(*) AS n FROM tasks WHERE project = ? GROUP BY 1 ORDER BY 1`),
      reap: d.prepare(`UPDATE tasks SET status = @to, error = @error, reaped_count = COALESCE(reaped_count, 0) + 1, updated_at = @now,
          finished_at = CASE WHEN @to = 'queued' THEN NULL ELSE @now END,
          node = CASE WHEN @to = 'queued' THEN NULL ELSE node END
        WHERE id = @id AND status = @status AND status IN ('dispatched', 'running') AND attempts IS @attempts
          AND updated_at IS @updated_at AND last_heartbeat IS @last_heartbeat`),
      books: d.prepare(`SELECT n.name AS name, COALESCE(n.running_count, 0) AS was,
          (SELECT COUNT(*) FROM tasks t WHERE t.node = n.name AND t.status IN ('dispatched', 'running')) AS now FROM nodes n`),
      setRunningCount: d.prepare(`UPDATE nodes SET running_count = ? WHERE name = ?`),
      staleLocks: d.prepare(`SELECT COUNT(*) AS n FROM file_locks l WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = l.task_id
          AND t.status IN ('dispatched', 'running') AND t.attempts = l.attempt)`),
      releaseStaleLocks: d.prepare(`DELETE FROM file_locks WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = file_locks.task_id
          AND t.status IN ('dispatched', 'running') AND t.attempts = file_locks.attempt)`),
      reaperRun: d.prepare(`INSERT INTO reaper_runs (at, kind, report) VALUES (?, ?, ?)`),
      activeAll: d.prepare(`SELECT * FROM tasks WHERE status IN ('dispatched', 'running') ORDER BY seq`),
      activeProject: d.prepare(`SELECT * FROM tasks WHERE status IN ('dispatched', 'running') AND project = ? ORDER BY seq`),
      probeOk: d.prepare(`UPDATE nodes SET last_seen_at = ?, missed_probes = 0 WHERE name = ?`),
      probeMiss: d.prepare(`UPDATE nodes SET missed_probes = COALESCE(missed_probes, 0) + 1 WHERE name = ?`),
      activeByNode: d.prepare(`SELECT node, COUNT(*) AS n FROM tasks WHERE status IN ('dispatched', 'running') AND node IS NOT NULL GROUP BY node`),
    };
  }

  close(): void {
    this.db.close();
  }

  /**
   * A write transaction that takes the write lock when it begins (BEGIN IMMEDIATE). A deferred
   * transaction that reads first and then writes cannot wait for the lock in WAL mode: SQLite
   * answers SQLITE_BUSY at once, whatever busy_timeout says (the benchmark found this).
   */
  private tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  getTask(id: string): TaskRow | null {
    return (this.s.getTask.get(id) as TaskRow | undefined) ?? null;
  }

  event(taskId: string | null, attempt: number | null, kind: string, detail: unknown): void {
    this.s.event.run(nowIso(), taskId, attempt, kind, typeof detail === 'string' ? detail : JSON.stringify(detail));
  }

  /**
   * Creates the row for a submission. Same id and same spec hash: a no-op that returns the row.
   * A used id with anything else is refused.
   */
  registerTask(spec: TaskSpec, specHash: string, workflowId: string): { created: boolean; row: TaskRow } {
    return this.tx(() => {
      const existing = this.getTask(spec.id);
      if (existing) {
        if (existing.spec_hash === specHash) return { created: false, row: existing };
        throw new UserError(`task id ${spec.id} is already used by a different task (status ${existing.status ?? 'unknown'})`);
      }
      const now = nowIso();
      this.s.insertTask.run({
        id: spec.id,
        project: spec.project,
        priority: spec.priority,
        seq: (this.s.nextSeq.get() as { n: number }).n,
        depends_on: JSON.stringify(spec.dependsOn),
        modifies: JSON.stringify(spec.modifies),
        command: spec.command,
        spec_body: spec.specBody,
        spec_hash: specHash,
        executor: spec.executor,
        max_runtime_s: Math.round(spec.maxRuntimeS),
        pin_node: spec.node,
        workflow_id: workflowId,
        now,
      });
      this.event(spec.id, 0, 'submitted', { priority: spec.priority, project: spec.project });
      return { created: true, row: this.getTask(spec.id)! };
    });
  }

  /**
   * Hands free slots to ready queued tasks: by priority, then submission order. Reads queued rows
   * in pages and stops as soon as no slot is left, so a long queue is not scanned when nodes are full.
   */
  allocate(pageSize = 200): AllocationResult {
    return this.tx((): AllocationResult => {
      const result: AllocationResult = { assigned: [], blocked: [] };
      const free = new Map<string, number>();
      for (const n of this.s.onlineNodesWithRoom.all() as { name: string; free: number }[]) free.set(n.name, n.free);
      let totalFree = [...free.values()].reduce((a, b) => a + b, 0);
      if (totalFree <= 0) return result;
      const now = nowIso();
      for (let offset = 0; totalFree > 0; offset += pageSize) {
        const page = this.s.queuedPage.all(pageSize, offset) as Pick<TaskRow, 'id' | 'depends_on' | 'modifies' | 'pin_node'>[];
        if (page.length === 0) break;
        let consumed = 0;
        for (const t of page) {
          if (totalFree <= 0) break;
          const deps = parseList(t.depends_on);
          let waiting = false;
          let blockedBy: string | null = null;
          for (const dep of deps) {
            const st = (this.s.statusOf.get(dep) as { status: string | null } | undefined)?.status;
            if (st === 'completed') continue;
            if (st === 'failed' || st === 'cancelled' || st === 'blocked') {
              blockedBy = `dependency ${dep} ${st}`;
              break;
            }
            waiting = true;
          }
          if (blockedBy) {
            this.s.block.run({ id: t.id, reason: `blocked: ${blockedBy}`, now });
            this.event(t.id, null, 'blocked', blockedBy);
            result.blocked.push({ taskId: t.id, reason: `blocked: ${blockedBy}` });
            consumed++;
            continue;
          }
          if (waiting) continue;
          const files = parseList(t.modifies);
          if (files.some((f) => this.s.lockHolder.get(f) !== undefined)) continue;
          let node: string | null = null;
          if (t.pin_node) {
            if ((free.get(t.pin_node) ?? 0) > 0) node = t.pin_node;
          } else {
            let best = 0;
            for (const [name, n] of free) if (n > best) [node, best] = [name, n];
          }
          if (!node) continue;
          const token = randomBytes(16).toString('hex');
          if (this.s.dispatch.run({ id: t.id, node, now, token }).changes !== 1) continue;
          const attempt = (this.getTask(t.id)!.attempts ?? 1) as number;
          this.s.takeSlot.run(node);
          for (const f of files) this.s.insertLock.run(f, t.id, attempt, now);
          free.set(node, free.get(node)! - 1);
          totalFree--;
          consumed++;
          this.event(t.id, attempt, 'dispatched', { node });
          result.assigned.push({ taskId: t.id, node, attempt, token });
        }
        // Rows that left 'queued' shift the following pages down.
        offset -= consumed;
      }
      return result;
    });
  }

  private refuse(kind: string, id: string, attempt: number | null, want: string): FenceResult {
    const row = this.getTask(id);
    const reason = `refused ${kind} for ${id} attempt ${attempt ?? '-'}: row is ${row ? `${row.status} attempt ${row.attempts}` : 'missing'} (${want})`;
    this.event(id, attempt, 'fence_refused', reason);
    console.warn(`[dispatch] ${reason}`);
    return { applied: false, row, reason };
  }

  markRunning(identity: ProcessIdentity): FenceResult {
    return this.tx((): FenceResult => {
      const r = this.s.markRunning.run({
        id: identity.taskId,
        attempt: identity.attempt,
        node: identity.node,
        pid: identity.pid,
        starttime: identity.starttime,
        boot_id: identity.bootId,
        dir: identity.dir,
        now: nowIso(),
      });
      if (r.changes === 1) {
        this.event(identity.taskId, identity.attempt, 'running', { node: identity.node, pid: identity.pid });
        return { applied: true, row: this.getTask(identity.taskId) };
      }
      const row = this.getTask(identity.taskId);
      // A retried activity that already recorded this very process: nothing to do.
      if (row && row.status === 'running' && row.attempts === identity.attempt && row.pid === identity.pid && row.proc_starttime === identity.starttime) {
        return { applied: true, row };
      }
      return this.refuse('markRunning', identity.taskId, identity.attempt, 'expected dispatched');
    });
  }

  recordHeartbeat(taskId: string, attempt: number): FenceResult {
    const r = this.s.heartbeat.run({ id: taskId, attempt, now: nowIso() });
    if (r.changes === 1) return { applied: true, row: null };
    return this.refuse('heartbeat', taskId, attempt, 'expected running');
  }

  /** Ends an attempt: completed, retried (back to queued) while attempts remain, or failed. */
  finishAttempt(taskId: string, attempt: number, outcome: AttemptOutcome, maxAttempts: number): FinishResult {
    return this.tx((): FinishResult => {
      const before = this.getTask(taskId);
      let status: string;
      let error: string | null = null;
      let exitCode: number | null = null;
      if (outcome.kind === 'exited' && outcome.exitCode === 0) {
        status = 'completed';
        exitCode = 0;
      } else {
        if (outcome.kind === 'exited') {
          exitCode = outcome.exitCode;
          error = `exit code ${outcome.exitCode} (attempt ${attempt} of ${maxAttempts})`;
        } else if (outcome.kind === 'vanished') error = `process vanished: ${outcome.detail} (attempt ${attempt} of ${maxAttempts})`;
        else if (outcome.kind === 'launch-failed') error = `launch failed: ${outcome.detail} (attempt ${attempt} of ${maxAttempts})`;
        else error = `max_runtime exceeded: killed after ${outcome.maxRuntimeS}s`;
        const retryable = outcome.kind !== 'runtime-exceeded';
        status = retryable && attempt < maxAttempts ? 'queued' : 'failed';
      }
      const r = this.s.finish.run({ id: taskId, attempt, status, exit_code: exitCode, error, now: nowIso() });
      if (r.changes !== 1) return this.refuse('finish', taskId, attempt, 'expected dispatched or running');
      if (before?.node) this.s.freeSlot.run(before.node);
      this.s.releaseLocks.run(taskId);
      this.event(taskId, attempt, status === 'queued' ? 'requeued' : status, { exitCode, error });
      return { applied: true, row: this.getTask(taskId), status };
    });
  }

  /** Cancels a queued task (attempt null) or the given active attempt; frees its slot and locks. */
  cancel(taskId: string, attempt: number | null, reason: string): FenceResult {
    return this.tx((): FenceResult => {
      const before = this.getTask(taskId);
      const now = nowIso();
      let changed = 0;
      if (before?.status === 'queued') changed = this.s.cancelQueued.run({ id: taskId, reason, now }).changes;
      else if (attempt !== null) changed = this.s.cancelActive.run({ id: taskId, attempt, reason, now }).changes;
      if (changed !== 1) return this.refuse('cancel', taskId, attempt, 'expected queued, or dispatched/running at this attempt');
      if (before?.status !== 'queued' && before?.node) this.s.freeSlot.run(before.node);
      this.s.releaseLocks.run(taskId);
      this.event(taskId, attempt, 'cancelled', reason);
      return { applied: true, row: this.getTask(taskId) };
    });
  }

  // ---- nodes ----

  addNode(n: NodeInput): NodeRow {
    this.s.upsertNode.run({
      name: n.name,
      host: n.host,
      slots: n.slots,
      kind: n.kind,
      port: n.port,
      user: n.user,
      key_path: n.keyPath,
      known_hosts: n.knownHosts,
      insecure: n.insecureIgnoreHostKey ? 1 : 0,
      work_dir: n.workDir,
      now: nowIso(),
    });
    return this.getNode(n.name)!;
  }

  getNode(name: string): NodeRow | null {
    return (this.s.getNode.get(name) as NodeRow | undefined) ?? null;
  }

  listNodes(): NodeRow[] {
    return this.s.listNodes.all() as NodeRow[];
  }

  setNodeStatus(name: string, status: string): boolean {
    return this.s.setNodeStatus.run(status, name).changes === 1;
  }

  // ---- reads for the CLI ----

  counts(project?: string): Record<string, number> {
    const rows = (project ? this.s.countsProject.all(project) : this.s.countsAll.all()) as { status: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  listTasks(filter: { status?: string; project?: string; limit?: number } = {}): TaskRow[] {
    // Fixed statement shapes chosen by which filters are set: values are always bound, never spliced.
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (filter.status) {
      where.push('status = ?');
      args.push(filter.status);
    }
    if (filter.project) {
      where.push('project = ?');
      args.push(filter.project);
    }
    const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
    args.push(filter.limit ?? 1_000_000);
    return this.db.prepare(sql).all(...args) as TaskRow[];
  }

  /** node -> number of dispatched+running rows; what running_count must equal. */
  activeCountsByNode(): Map<string, number> {
    return new Map((this.s.activeByNode.all() as { node: string; n: number }[]).map((r) => [r.node, r.n]));
  }

  /** Active rows for the reaper: an index range on status, optionally one project or some ids. */
  activeRows(f: { project: string | null; ids: string[] | null }): TaskRow[] {
    let rows = (f.project ? this.s.activeProject.all(f.project) : this.s.activeAll.all()) as TaskRow[];
    if (f.ids) {
      const want = new Set(f.ids);
      rows = rows.filter((r) => want.has(r.id));
    }
    return rows;
  }

  /**
   * The reaper's write: only if the row still looks exactly as the sweep saw it. Frees the slot
   * and locks in the same transaction. Never deletes; never touches a final row.
   */
  reapRow(
    id: string,
    seen: { status: string; attempts: number | null; updated_at: string | null; last_heartbeat: string | null },
    error: string,
    to: 'failed' | 'queued',
    detail: unknown,
  ): FenceResult {
    return this.tx((): FenceResult => {
      const before = this.getTask(id);
      const r = this.s.reap.run({ id, to, error, now: nowIso(), ...seen });
      if (r.changes !== 1) {
        const row = this.getTask(id);
        const reason = `row changed since the sweep read it (now ${row?.status ?? 'missing'}, attempt ${row?.attempts ?? '-'})`;
        this.event(id, seen.attempts, 'reap_skipped', reason);
        return { applied: false, row, reason };
      }
      if (before?.node) this.s.freeSlot.run(before.node);
      this.s.releaseLocks.run(id);
      this.event(id, seen.attempts, to === 'queued' ? 'reaped_requeued' : 'reaped', detail);
      return { applied: true, row: this.getTask(id) };
    });
  }

  /** Slot drift and stale locks, without changing anything. */
  checkBooks(): { drift: { node: string; running_count_was: number; running_count_now: number }[]; locksReleased: number } {
    const drift = (this.s.books.all() as { name: string; was: number; now: number }[])
      .filter((b) => b.was !== b.now)
      .map((b) => ({ node: b.name, running_count_was: b.was, running_count_now: b.now }));
    return { drift, locksReleased: (this.s.staleLocks.get() as { n: number }).n };
  }

  /** Recounts each node's running_count from its rows and releases locks of tasks that no longer hold them. */
  fixBooks(): { drift: { node: string; running_count_was: number; running_count_now: number }[]; locksReleased: number } {
    return this.tx(() => {
      const b = this.checkBooks();
      for (const d of b.drift) {
        this.s.setRunningCount.run(d.running_count_now, d.node);
        this.event(null, null, 'slot_drift_fixed', d);
      }
      const locksReleased = this.s.releaseStaleLocks.run().changes;
      return { drift: b.drift, locksReleased };
    });
  }

  recordReaperRun(kind: string, report: unknown): void {
    this.s.reaperRun.run(nowIso(), kind, JSON.stringify(report));
  }

  reaperRuns(limit = 20): { id: number; at: string; kind: string; report: string }[] {
    return this.db.prepare(`SELECT * FROM reaper_runs ORDER BY id DESC LIMIT ?`).all(limit) as never;
  }

  /**
   * A probe round: answered nodes reset their miss count; a node that misses `offlineAfter`
   * probes in a row goes offline. Returns the nodes that just went offline.
   */
  recordProbe(name: string, ok: boolean, offlineAfter: number): { wentOffline: boolean; status: string | null } {
    return this.tx(() => {
      if (ok) this.s.probeOk.run(nowIso(), name);
      else this.s.probeMiss.run(name);
      const n = this.getNode(name);
      if (!ok && n && n.status === 'online' && (n.missed_probes ?? 0) >= offlineAfter) {
        this.s.setNodeStatus.run('offline', name);
        this.event(null, null, 'node_offline', { node: name, missed: n.missed_probes });
        return { wentOffline: true, status: 'offline' };
      }
      return { wentOffline: false, status: n?.status ?? null };
    });
  }

  /** Queued tasks whose dependencies failed for good become blocked (with the reason). */
  blockFailedDependencies(): { taskId: string; reason: string }[] {
    return this.tx(() => {
      const out: { taskId: string; reason: string }[] = [];
      const rows = this.db.prepare(`SELECT id, depends_on FROM tasks WHERE status = 'queued' AND depends_on IS NOT NULL AND depends_on != '[]'`).all() as { id: string; depends_on: string }[];
      const now = nowIso();
      for (const r of rows) {
        for (const dep of parseList(r.depends_on)) {
          const st = (this.s.statusOf.get(dep) as { status: string | null } | undefined)?.status;
          if (st === 'failed' || st === 'cancelled' || st === 'blocked') {
            const reason = `blocked: dependency ${dep} ${st}`;
            if (this.s.block.run({ id: r.id, reason, now }).changes === 1) {
              this.event(r.id, null, 'blocked', reason);
              out.push({ taskId: r.id, reason });
            }
            break;
          }
        }
      }
      return out;
    });
  }

  queuedDependencies(): { id: string; dependsOn: string[] }[] {
    return (this.db.prepare(`SELECT id, depends_on FROM tasks WHERE status = 'queued'`).all() as { id: string; depends_on: string | null }[]).map((r) => ({
      id: r.id,
      dependsOn: parseList(r.depends_on),
    }));
  }

  /**
   * The attemptKey of every attempt the books say is current, on any node. Leftover-process cleanup
   * spares all of them: several node entries can share one host.
   */
  allCurrentAttempts(): string[] {
    const rows = this.db.prepare(`SELECT id, attempts, attempt_token FROM tasks WHERE status IN ('dispatched', 'running')`).all() as CurrentRow[];
    return rows.map((r) => attemptKey(r.id, r.attempts, r.attempt_token));
  }

  /** The attemptKey of every attempt the books say is current on a node. */
  currentAttempts(node: string): string[] {
    const rows = this.db.prepare(`SELECT id, attempts, attempt_token FROM tasks WHERE node = ? AND status IN ('dispatched', 'running')`).all(node) as CurrentRow[];
    return rows.map((r) => attemptKey(r.id, r.attempts, r.attempt_token));
  }

  queuedCountsByProject(): Map<string, number> {
    const rows = this.db.prepare(`SELECT project, SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS n FROM tasks WHERE project IS NOT NULL GROUP BY project`).all() as { project: string; n: number }[];
    return new Map(rows.map((r) => [r.project, r.n]));
  }

  events(taskId: string): { at: string; attempt: number | null; kind: string; detail: string | null }[] {
    return this.db.prepare(`SELECT at, attempt, kind, detail FROM events WHERE task_id = ? ORDER BY id`).all(taskId) as never;
  }
}
