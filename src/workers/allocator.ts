/**
 * Runs allocation passes in the process that owns dispatch.db, when asked (kick) and on a slow
 * safety tick, and tells each chosen workflow by signal. A lost signal is covered by the
 * workflow's own fallback poll.
 */
import type { Client } from '@temporalio/client';
import { taskWorkflowId } from '../common/constants';
import type { Assignment } from '../common/types';
import { signalAssigned, signalBlocked } from '../client/tasks';
import type { AllocationResult, Store } from '../store/store';

export class Allocator {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly client: Client,
    private readonly tickMs = 5000,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.tickMs);
    this.timer.unref();
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    setImmediate(() => void this.pass());
  }

  /**
   * One allocation pass now, in the caller's turn (the register activity uses it so that a task
   * which finds a free slot gets it in the activity's answer, without a signal round trip). Every
   * assignment carries its node row; the others are told by signal, `except` is left to the caller.
   */
  allocateNow(except?: string): AllocationResult {
    const res = this.withNodeRows(this.store.allocate());
    void this.deliver(res, except);
    return res;
  }

  private withNodeRows(res: AllocationResult): AllocationResult {
    const rows = new Map<string, Assignment['nodeRow']>();
    for (const a of res.assigned) {
      if (!rows.has(a.node)) rows.set(a.node, this.store.getNode(a.node) ?? undefined);
      a.nodeRow = rows.get(a.node);
    }
    return res;
  }

  private async deliver(res: AllocationResult, except?: string): Promise<void> {
    await Promise.all([
      ...res.assigned.filter((a) => a.taskId !== except).map((a) => this.tell(a.taskId, 'assigned', () => signalAssigned(this.client, a))),
      ...res.blocked
        .filter((b) => b.taskId !== except)
        .map((b) => this.tell(b.taskId, 'blocked', () => signalBlocked(this.client, b.taskId, b.reason))),
    ]);
  }

  private async pass(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.deliver(this.withNodeRows(this.store.allocate()));
      } while (this.again && !this.stopped);
    } catch (e) {
      console.error(`[dispatch] allocation pass failed: ${(e as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async tell(taskId: string, name: string, send: () => Promise<void>): Promise<void> {
    try {
      await send();
    } catch (e) {
      console.warn(`[dispatch] could not signal ${taskWorkflowId(taskId)} (${name}): ${(e as Error).message}; the workflow will poll`);
    }
  }
}
