/**
 * Online backup of dispatch.db: SQLite's backup API copies a consistent snapshot page by page
 * while the worker goes on writing (WAL mode), then the copy is checked on its own.
 */
import Database from 'better-sqlite3';
import { existsSync, renameSync, rmSync } from 'node:fs';
import type { StoreContext } from './context';

export interface BackupReport {
  path: string;
  bytes: number;
  tasks: number;
  events: number;
  nodes: number;
  integrity: 'ok';
}

/** Copies the open database to `dest` (which must not exist), via a temporary file renamed at the end. */
export async function backupDatabase(ctx: StoreContext, dest: string): Promise<BackupReport> {
  if (existsSync(dest)) throw new Error(`${dest} exists: choose a new path (a backup never overwrites)`);
  const tmp = `${dest}.partial-${process.pid}`;
  try {
    // Every page in one step, under one read snapshot: in WAL mode writers go on meanwhile, and
    // the copy cannot be restarted by them over and over (as small steps would be under a busy writer).
    await ctx.db.backup(tmp, { progress: () => 0x7fffffff });
    const report = checkCopy(tmp);
    renameSync(tmp, dest);
    return { ...report, path: dest };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Opens a copy read-only: integrity_check must say ok; returns what it holds. */
export function checkCopy(file: string): BackupReport {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
    if (integrity.length !== 1 || integrity[0] !== 'ok')
      throw new Error(`the copy failed integrity_check: ${integrity.slice(0, 3).join('; ')}`);
    const n = (table: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    const pages = db.pragma('page_count', { simple: true }) as number;
    const size = db.pragma('page_size', { simple: true }) as number;
    return { path: file, bytes: pages * size, tasks: n('tasks'), events: n('events'), nodes: n('nodes'), integrity: 'ok' };
  } finally {
    db.close();
  }
}
