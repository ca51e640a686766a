/**
 * The one place that reads and writes dispatch.db, as one facade over parts with one job each:
 * open.ts (opening, pragmas, migrations), tasks.ts (a task's life and the CLI's reads),
 * allocation.ts (dispatching and dependency blocking), nodes.ts (nodes and probes) and
 * maintenance.ts (the reaper's and the guardian's books). Each part names and prepares its own
 * statements. The handle stays inside src/store; raw.ts lends it to tests only.
 */
import type { AttemptRecord, NodeRow, ProcessIdentity, TaskRow, TaskSpec } from '../common/types';
import { Allocation, type AllocationResult } from './allocation';
import { StoreContext } from './context';
import { backupDatabase, type BackupReport } from './backup';
import { Maintenance, type FencedRecord, type MetricsSnapshot, type ReaperRun, type SeenRow, type SlotDrift } from './maintenance';
import { Nodes, type NodeInput } from './nodes';
import { openDatabase, type StoreOptions } from './open';
import { registerRawHandle } from './raw';
import { Tasks, type AttemptOutcome, type FenceResult, type FinishResult, type TaskEvent, type TaskFilter } from './tasks';

export type { AllocationResult } from './allocation';
export type { SlotDrift } from './maintenance';
export { localNodeInput, type NodeInput } from './nodes';
export type { StoreOptions } from './open';
export type { BackupReport } from './backup';
export type { AttemptOutcome, FenceResult, FinishResult } from './tasks';

export class Store {
  readonly #ctx: StoreContext;
  readonly #tasks: Tasks;
  readonly #allocation: Allocation;
  readonly #nodes: Nodes;
  readonly #maintenance: Maintenance;

  constructor(
    readonly path: string,
    opts: StoreOptions = {},
  ) {
    const db = openDatabase(path, opts);
    registerRawHandle(this, db);
    this.#ctx = new StoreContext(db);
    this.#tasks = new Tasks(this.#ctx);
    this.#allocation = new Allocation(this.#ctx, this.#tasks);
    this.#nodes = new Nodes(this.#ctx);
    this.#maintenance = new Maintenance(this.#ctx, this.#tasks);
  }

  close(): void {
    this.#ctx.close();
  }

  /** A consistent copy of this database at `dest`, taken while others write (SQLite online backup). */
  backup(dest: string): Promise<BackupReport> {
    return backupDatabase(this.#ctx, dest);
  }

  event(taskId: string | null, attempt: number | null, kind: string, detail: unknown): void {
    this.#ctx.event(taskId, attempt, kind, detail);
  }

  // ---- tasks ----

  getTask(id: string): TaskRow | null {
    return this.#tasks.getTask(id);
  }

  getSpecBody(id: string): string | null {
    return this.#tasks.getSpecBody(id);
  }

  taskCount(): number {
    return this.#tasks.taskCount();
  }

  registerTask(spec: TaskSpec, specHash: string, workflowId: string): { created: boolean; row: TaskRow } {
    return this.#tasks.registerTask(spec, specHash, workflowId);
  }

  markRunning(identity: ProcessIdentity): FenceResult {
    return this.#tasks.markRunning(identity);
  }

  recordHeartbeat(taskId: string, attempt: number): FenceResult {
    return this.#tasks.recordHeartbeat(taskId, attempt);
  }

  finishAttempt(taskId: string, attempt: number, outcome: AttemptOutcome, maxAttempts: number): FinishResult {
    return this.#tasks.finishAttempt(taskId, attempt, outcome, maxAttempts);
  }

  finishLaunched(identity: ProcessIdentity, outcome: AttemptOutcome, maxAttempts: number): FinishResult {
    return this.#tasks.finishLaunched(identity, outcome, maxAttempts);
  }

  cancel(taskId: string, attempt: number | null, reason: string): FenceResult {
    return this.#tasks.cancel(taskId, attempt, reason);
  }

  counts(project?: string): Record<string, number> {
    return this.#tasks.counts(project);
  }

  listTasks(filter: TaskFilter = {}): TaskRow[] {
    return this.#tasks.listTasks(filter);
  }

  events(taskId: string): TaskEvent[] {
    return this.#tasks.events(taskId);
  }

  retryTask(taskId: string, seen: TaskRow, more: number, reason: string): FenceResult {
    return this.#tasks.retryTask(taskId, seen, more, reason);
  }

  undoRetry(prev: TaskRow, why: string): boolean {
    return this.#tasks.undoRetry(prev, why);
  }

  attempts(taskId: string): AttemptRecord[] {
    return this.#tasks.attempts(taskId);
  }

  // ---- allocation ----

  allocate(pageSize = 200): AllocationResult {
    return this.#allocation.allocate(pageSize);
  }

  blockFailedDependencies(): { taskId: string; reason: string }[] {
    return this.#allocation.blockFailedDependencies();
  }

  // ---- nodes ----

  addNode(n: NodeInput): NodeRow {
    return this.#nodes.addNode(n);
  }

  getNode(name: string): NodeRow | null {
    return this.#nodes.getNode(name);
  }

  listNodes(): NodeRow[] {
    return this.#nodes.listNodes();
  }

  removeNode(name: string): ReturnType<Nodes['removeNode']> {
    return this.#nodes.removeNode(name);
  }

  setNodeStatus(name: string, status: string): boolean {
    return this.#nodes.setNodeStatus(name, status);
  }

  recordProbe(name: string, ok: boolean, offlineAfter: number): { wentOffline: boolean; status: string | null } {
    return this.#nodes.recordProbe(name, ok, offlineAfter);
  }

  // ---- the reaper's and the guardian's books ----

  activeRows(f: { project: string | null; ids: string[] | null }): TaskRow[] {
    return this.#maintenance.activeRows(f);
  }

  reapRow(id: string, seen: SeenRow, error: string, to: 'failed' | 'queued', detail: unknown): FenceResult {
    return this.#maintenance.reapRow(id, seen, error, to, detail);
  }

  activeCountsByNode(): Map<string, number> {
    return this.#maintenance.activeCountsByNode();
  }

  findSlotDrift(): SlotDrift {
    return this.#maintenance.findSlotDrift();
  }

  reconcileSlots(): SlotDrift {
    return this.#maintenance.reconcileSlots();
  }

  recordFencedAttempts(node: string, fenced: FencedRecord[]): number {
    return this.#maintenance.recordFencedAttempts(node, fenced);
  }

  metricsSnapshot(sinceEventId: number): MetricsSnapshot {
    return this.#maintenance.metricsSnapshot(sinceEventId);
  }

  recordReaperRun(kind: string, report: unknown): void {
    this.#maintenance.recordReaperRun(kind, report);
  }

  reaperRuns(limit = 20): ReaperRun[] {
    return this.#maintenance.reaperRuns(limit);
  }

  queuedDependencies(): { id: string; dependsOn: string[] }[] {
    return this.#maintenance.queuedDependencies();
  }

  allCurrentAttempts(): string[] {
    return this.#maintenance.allCurrentAttempts();
  }

  currentAttempts(node: string): string[] {
    return this.#maintenance.currentAttempts(node);
  }

  queuedCountsByProject(): Map<string, number> {
    return this.#maintenance.queuedCountsByProject();
  }
}
