/**
 * Runs allocation passes in the process that owns dispatch.db, when asked (kick) and on a slow
 * safety tick, and tells each chosen workflow by signal. A lost signal is covered by the
 * workflow's own fallback poll.
 */
import type { Client } from '@temporalio/client';
import { taskWorkflowId } from '../common/constants';
import type { Store } from '../store/store';

export class Allocator {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly store: Store, private readonly client: Client, private readonly tickMs = 5000) {}

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

  private async pass(): Promise<void> {
    try {
      do {
        this.again = false;
        const res = this.store.allocate();
        await Promise.all([
          ...res.assigned.map((a) => this.signal(a.taskId, 'assigned', a)),
          ...res.blocked.map((b) => this.signal(b.taskId, 'blocked', { reason: b.reason })),
        ]);
      } while (this.again && !this.stopped);
    } catch (e) {
      console.error(`[dispatch] allocation pass failed: ${(e as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async signal(taskId: string, name: string, arg: unknown): Promise<void> {
    try {
      await this.client.workflow.getHandle(taskWorkflowId(taskId)).signal(name, arg);
    } catch (e) {
      console.warn(`[dispatch] could not signal ${taskWorkflowId(taskId)} (${name}): ${(e as Error).message}; the workflow will poll`);
    }
  }
}
