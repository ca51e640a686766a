/**
 * Opening dispatch.db: refuse a missing file when asked to, give a new file mode 0600, set the
 * pragmas, and apply the migrations (or, read-only, refuse a file that still needs them).
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync } from 'node:fs';
import { UserError } from '../common/errors';
import { migrate, pendingMigrations } from './schema';

export interface StoreOptions {
  /** Refuse to create the file: for read-only commands. @default false */
  mustExist?: boolean;
  readonly?: boolean;
}

export function openDatabase(path: string, opts: StoreOptions): Database.Database {
  if ((opts.mustExist || opts.readonly) && !existsSync(path)) {
    throw new UserError(`database ${path} does not exist: run \`dispatch init\` first (or pass --db PATH)`);
  }
  const isNew = !opts.readonly && path !== ':memory:' && !existsSync(path);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: opts.readonly ?? false, timeout: 30_000 });
  } catch (e) {
    throw new UserError(`cannot open database ${path}: ${(e as Error).message}`);
  }
  // Commands, specs and node settings live here (writing it is as good as the SSH keys): a new
  // file is readable by its owner only. SQLite gives the -wal and -shm files the same mode.
  if (isNew) chmodSync(path, 0o600);
  db.pragma('busy_timeout = 30000');
  if (!opts.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrate(db);
  } else if (pendingMigrations(db).length > 0) {
    db.close();
    const why = 'has not been adopted by this version of dispatch yet: run `dispatch init` (it keeps every row)';
    throw new UserError(`database ${path} ${why}`);
  }
  return db;
}
