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
  {
    version: 4,
    name: 'attempts: one row per attempt of a task, kept by triggers on every change of a task status',
    up(db) {
      // The attempt budget of a retried task (attempts before the retry + max_requeue); null: the config's.
      addMissingColumns(db, 'tasks', [['max_attempts', 'INTEGER']]);
      db.exec(`
        CREATE TABLE IF NOT EXISTS attempts (
          task_id TEXT NOT NULL, attempt INTEGER NOT NULL, node TEXT, dispatched_at TEXT, started_at TEXT,
          ended_at TEXT, pid INTEGER, proc_starttime TEXT, run_dir TEXT, exit_code INTEGER, status TEXT, error TEXT, fenced_at TEXT,
          PRIMARY KEY (task_id, attempt));
        CREATE TRIGGER IF NOT EXISTS attempts_dispatched AFTER UPDATE OF status ON tasks
          WHEN NEW.status = 'dispatched' AND NEW.attempts >= 1 BEGIN
            INSERT OR IGNORE INTO attempts (task_id, attempt, node, dispatched_at)
              VALUES (NEW.id, NEW.attempts, NEW.node, NEW.dispatched_at);
          END;
        CREATE TRIGGER IF NOT EXISTS attempts_running AFTER UPDATE OF status ON tasks
          WHEN NEW.status = 'running' BEGIN
            UPDATE attempts SET node = NEW.node, started_at = NEW.started_at, pid = NEW.pid, proc_starttime = NEW.proc_starttime, run_dir = NEW.run_dir
              WHERE task_id = NEW.id AND attempt = NEW.attempts;
          END;
        CREATE TRIGGER IF NOT EXISTS attempts_ended AFTER UPDATE OF status ON tasks
          WHEN OLD.status IN ('dispatched', 'running') AND NEW.status NOT IN ('dispatched', 'running') BEGIN
            UPDATE attempts SET ended_at = NEW.updated_at, exit_code = NEW.exit_code, status = NEW.status, error = NEW.error
              WHERE task_id = NEW.id AND attempt = OLD.attempts AND ended_at IS NULL;
          END;
        CREATE TRIGGER IF NOT EXISTS attempts_fenced AFTER UPDATE OF fenced_at ON tasks
          WHEN NEW.fenced_attempt IS NOT NULL BEGIN
            UPDATE attempts SET fenced_at = NEW.fenced_at WHERE task_id = NEW.id AND attempt = NEW.fenced_attempt;
          END;
      `);
      // What the rows know of their current attempt; earlier attempts of existing tasks are not known.
      db.exec(`
        INSERT OR IGNORE INTO attempts (task_id, attempt, node, dispatched_at, started_at, ended_at, pid, proc_starttime, run_dir,
            exit_code, status, error, fenced_at)
          SELECT id, attempts, node, dispatched_at, started_at,
              CASE WHEN status IN ('dispatched', 'running') THEN NULL ELSE COALESCE(finished_at, updated_at) END,
              pid, proc_starttime, run_dir, exit_code,
              CASE WHEN status IN ('dispatched', 'running') THEN NULL ELSE status END,
              CASE WHEN status IN ('dispatched', 'running') THEN NULL ELSE error END,
              CASE WHEN fenced_attempt = attempts THEN fenced_at END
            FROM tasks WHERE attempts >= 1 AND workflow_id IS NOT NULL
      `);
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
