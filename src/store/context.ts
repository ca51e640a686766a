/**
 * What every part of the store shares: the open handle (to prepare its own statements on), write
 * transactions, and the event log that every state change appends to.
 */
import type Database from 'better-sqlite3';

export const nowIso = (): string => new Date().toISOString();

/** A JSON list of strings as stored in depends_on and modifies; anything else reads as empty. */
export function parseList(v: string | null): string[] {
  if (!v) return [];
  try {
    const a: unknown = JSON.parse(v);
    return Array.isArray(a) ? a.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export class StoreContext {
  private readonly insertEvent: Database.Statement;

  constructor(readonly db: Database.Database) {
    this.insertEvent = db.prepare(`INSERT INTO events (at, task_id, attempt, kind, detail) VALUES (?, ?, ?, ?, ?)`);
  }

  /**
   * A write transaction that takes the write lock when it begins (BEGIN IMMEDIATE). A deferred
   * transaction that reads first and then writes cannot wait for the lock in WAL mode: SQLite
   * answers SQLITE_BUSY at once, whatever busy_timeout says.
   */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  event(taskId: string | null, attempt: number | null, kind: string, detail: unknown): void {
    this.insertEvent.run(nowIso(), taskId, attempt, kind, typeof detail === 'string' ? detail : JSON.stringify(detail));
  }

  close(): void {
    this.db.close();
  }
}
