/**
 * Versioned migrations. Version 1 adopts a legacy dispatch.db in place: it creates the two legacy
 * tables if they are missing and adds every column the legacy shape may lack, keeping every row.
 */
import type Database from 'better-sqlite3';

const TASK_COLUMNS: [string, string][] = [
  ['project', 'TEXT'],
  ['status', 'TEXT'],
  ['node', 'TEXT'],
  ['pid', 'INTEGER'],
  ['started_at', 'TEXT'],
  ['updated_at', 'TEXT'],
  ['attempts', 'INTEGER'],
  ['error', 'TEXT'],
  ['priority', 'INTEGER'],
  ['seq', 'INTEGER'],
  ['depends_on', 'TEXT'],
  ['modifies', 'TEXT'],
  ['command', 'TEXT'],
  ['spec_body', 'TEXT'],
  ['spec_hash', 'TEXT'],
  ['executor', 'TEXT'],
  ['max_runtime_s', 'INTEGER'],
  ['pin_node', 'TEXT'],
  ['proc_starttime', 'TEXT'],
  ['boot_id', 'TEXT'],
  ['run_dir', 'TEXT'],
  ['last_heartbeat', 'TEXT'],
  ['dispatched_at', 'TEXT'],
  ['finished_at', 'TEXT'],
  ['exit_code', 'INTEGER'],
  ['reaped_count', 'INTEGER NOT NULL DEFAULT 0'],
  ['workflow_id', 'TEXT'],
  ['created_at', 'TEXT'],
];

const NODE_COLUMNS: [string, string][] = [
  ['host', 'TEXT'],
  ['slots', 'INTEGER'],
  ['running_count', 'INTEGER'],
  ['kind', 'TEXT'],
  ['port', 'INTEGER'],
  ['user', 'TEXT'],
  ['key_path', 'TEXT'],
  ['known_hosts', 'TEXT'],
  ['insecure_ignore_host_key', 'INTEGER NOT NULL DEFAULT 0'],
  ['work_dir', 'TEXT'],
  ['status', "TEXT NOT NULL DEFAULT 'online'"],
  ['last_seen_at', 'TEXT'],
  ['missed_probes', 'INTEGER NOT NULL DEFAULT 0'],
  ['created_at', 'TEXT'],
];

function addMissingColumns(db: Database.Database, table: string, columns: [string, string][]): void {
  const have = new Set((db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name));
  for (const [name, type] of columns) {
    if (!have.has(name)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
  }
}

export interface Migration {
  version: number;
  name: string;
  up(db: Database.Database): void;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'adopt legacy tasks/nodes and add dispatch columns',
    up(db) {
      db.exec(`CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY)`);
      db.exec(`CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY)`);
      addMissingColumns(db, 'tasks', TASK_COLUMNS);
      addMissingColumns(db, 'nodes', NODE_COLUMNS);
      // Legacy rows keep their order of arrival as submission order.
      db.exec(`UPDATE tasks SET seq = rowid WHERE seq IS NULL`);
      db.exec(`UPDATE nodes SET kind = 'ssh' WHERE kind IS NULL`);
      db.exec(`
        CREATE TABLE IF NOT EXISTS file_locks (
          path TEXT PRIMARY KEY, task_id TEXT NOT NULL, attempt INTEGER NOT NULL, acquired_at TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS file_locks_task ON file_locks(task_id);
        CREATE TABLE IF NOT EXISTS events (
          id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, task_id TEXT, attempt INTEGER,
          kind TEXT NOT NULL, detail TEXT);
        CREATE INDEX IF NOT EXISTS events_task ON events(task_id);
        CREATE TABLE IF NOT EXISTS reaper_runs (
          id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, kind TEXT NOT NULL, report TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS tasks_queue ON tasks(status, priority, seq);
        CREATE INDEX IF NOT EXISTS tasks_project ON tasks(project, status);
        CREATE INDEX IF NOT EXISTS tasks_node ON tasks(node, status);
      `);
    },
  },
  {
    version: 2,
    name: 'attempt tokens: an attempt directory proves it belongs to this attempt of this database',
    up(db) {
      addMissingColumns(db, 'tasks', [['attempt_token', 'TEXT']]);
    },
  },
  {
    version: 3,
    name: 'self-fencing: the fence each attempt enforces, and the last attempt that fenced itself',
    up(db) {
      addMissingColumns(db, 'tasks', [
        ['fence_after_s', 'INTEGER'],
        ['fenced_attempt', 'INTEGER'],
        ['fenced_at', 'TEXT'],
      ]);
    },
  },
];

export function migrate(db: Database.Database): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT NOT NULL)`);
  const done = new Set((db.prepare(`SELECT version FROM schema_migrations`).all() as { version: number }[]).map((r) => r.version));
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    db.transaction(() => {
      // Another process may have applied it while we waited for the write lock.
      if (db.prepare(`SELECT 1 FROM schema_migrations WHERE version = ?`).get(m.version)) return;
      m.up(db);
      db.prepare(`INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`).run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
    }).immediate();
    applied.push(m.version);
  }
  return applied;
}

/** Versions not yet applied; reads it without writing (for read-only opens). */
export function pendingMigrations(db: Database.Database): number[] {
  const has = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).get();
  const done = has
    ? new Set((db.prepare(`SELECT version FROM schema_migrations`).all() as { version: number }[]).map((r) => r.version))
    : new Set<number>();
  return MIGRATIONS.map((m) => m.version).filter((v) => !done.has(v));
}
