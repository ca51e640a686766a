/**
 * Adopting a legacy dispatch.db with the real CLI (`dispatch init` as a child process): every row
 * and every value survives, the new columns appear, a second init is a no-op, and the report
 * commands read the adopted file. Plus the CLI's refusals of a bad --db and a bad --config.
 * No Temporal server needed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../src/store/schema';

const BIN = path.resolve(__dirname, '../../../bin/dispatch.js');

const LEGACY_TASK_COLUMNS = ['id', 'project', 'status', 'node', 'pid', 'started_at', 'updated_at', 'attempts', 'error'];
const LEGACY_NODE_COLUMNS = ['name', 'host', 'slots', 'running_count'];
const GHOSTS = ['S02-agent-self-evolve', 'S50-strategy-api', 'S51-content-review', 'S11-predictive-scheduling', 'S12-code-self-audit'];

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;

function cli(args: string[]): Promise<CliResult> {
  const env = { ...process.env };
  delete env.DISPATCH_DB;
  delete env.TEMPORAL_ADDRESS;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function cliOk(args: string[]): Promise<string> {
  const r = await cli(args);
  assert.equal(r.code, 0, `dispatch ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function assertNoStack(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at .+[:(]/m, `stack trace on stderr:\n${stderr}`);
  assert.doesNotMatch(stderr, /TypeError|SqliteError|ReferenceError/, `internal error on stderr:\n${stderr}`);
}

/** The exact legacy shape, with the S15 ghosts, finished rows, another project, NULLs and junk. */
function buildLegacy(file: string): void {
  const db = new Database(file);
  db.exec(`
    CREATE TABLE tasks (id TEXT PRIMARY KEY, project TEXT, status TEXT, node TEXT, pid INTEGER, started_at TEXT, updated_at TEXT, attempts INTEGER, error TEXT);
    CREATE TABLE nodes (name TEXT PRIMARY KEY, host TEXT, slots INTEGER, running_count INTEGER);
  `);
  // Seed S15's five ghosts: "running" for 8-11 hours, in both timestamp spellings the seeds used.
  db.exec(`
    INSERT INTO tasks VALUES ('S02-agent-self-evolve', 'dispatch-infra', 'running', 'gpu-1', 41234, datetime('now','-10 hours'), datetime('now','-10 hours'), 1, NULL);
    INSERT INTO tasks VALUES ('S50-strategy-api', 'dispatch-infra', 'running', 'gpu-1', 41877, datetime('now','-8 hours'), datetime('now','-8 hours'), 1, NULL);
    INSERT INTO tasks VALUES ('S51-content-review', 'dispatch-infra', 'running', 'gpu-1', 42001, strftime('%Y-%m-%dT%H:%M:%SZ','now','-11 hours'), strftime('%Y-%m-%dT%H:%M:%SZ','now','-11 hours'), 2, NULL);
    INSERT INTO tasks VALUES ('S11-predictive-scheduling', 'dispatch-infra', 'running', 'cpu-2', 9001, strftime('%Y-%m-%dT%H:%M:%fZ','now','-9 hours'), NULL, 1, NULL);
    INSERT INTO tasks VALUES ('S12-code-self-audit', 'dispatch-infra', 'running', 'cpu-2', 9002, datetime('now','-11 hours'), datetime('now','-9 hours'), 3, 'lease renewed by hand');
  `);
  const ins = db.prepare(
    `INSERT INTO tasks (id, project, status, node, pid, started_at, updated_at, attempts, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  ins.run('S01-bootstrap', 'dispatch-infra', 'completed', 'gpu-1', 30000, '2024-05-01 08:00:00', '2024-05-01 09:12:44', 1, null);
  ins.run('web-101', 'web-frontend', 'queued', null, null, null, '2024-05-02T10:00:00Z', 0, null);
  ins.run(
    'web-102',
    'web-frontend',
    'failed',
    'cpu-2',
    777,
    '2024-05-02T10:00:00Z',
    '2024-05-02T10:05:00Z',
    3,
    'exit code 1: Traceback (most recent call last) — “quotes” ünïcode',
  );
  ins.run('web-103', 'web-frontend', 'completed', 'gpu-1', 31337, '2024-05-03 11:00:00', '2024-05-03 11:30:00', 1, '');
  ins.run('all-nulls', null, null, null, null, null, null, null, null);
  // Junk the old code let in: a non-numeric pid (SQLite keeps it as TEXT), an unknown status, a word for a date.
  ins.run('junk-1', 'dispatch-infra', 'weird', 'gpu-9', 'abc', 'yesterday', 'soon', 'many', 'pid was never numeric');
  ins.run('junk-2', '', 'running', '', -1, '', '0', -5, null);
  ins.run('junk-3', 'other', 'RUNNING', 'gpu-1', 3.5, '2024-13-45 99:99:99', null, 1, null);
  const node = db.prepare(`INSERT INTO nodes (name, host, slots, running_count) VALUES (?, ?, ?, ?)`);
  node.run('gpu-1', '10.0.0.5', 4, 5); // the legacy counter believed the ghosts
  node.run('cpu-2', 'cpu-2.internal', 8, 2);
  node.run('old-box', null, null, null);
  db.close();
}

/** Variant B: an older legacy file whose tasks table has only id, status, pid, and no nodes table. */
function buildLegacyMinimal(file: string): void {
  const db = new Database(file);
  db.exec(`CREATE TABLE tasks (id TEXT PRIMARY KEY, status TEXT, pid INTEGER)`);
  const ins = db.prepare(`INSERT INTO tasks (id, status, pid) VALUES (?, ?, ?)`);
  ins.run('S02-agent-self-evolve', 'running', 41234);
  ins.run('min-done', 'completed', null);
  ins.run('min-junk', 'weird', 'abc');
  ins.run('min-null', null, null);
  db.close();
}

/** Every value of the given columns, with its SQLite storage class: a lossless picture. */
function snapshot(file: string, table: string, columns: string[], key: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    const cols = columns.map((c) => `${c}, typeof(${c}) AS ${c}__type`).join(', ');
    return db.prepare(`SELECT ${cols} FROM ${table} ORDER BY ${key}`).all();
  } finally {
    db.close();
  }
}

/** Schema and content of every table, for "a second init changes nothing". */
function fullDump(file: string): unknown {
  const db = new Database(file, { readonly: true });
  try {
    const schema = db.prepare(`SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name`).all() as {
      type: string;
      name: string;
    }[];
    const tables: Record<string, unknown[]> = {};
    for (const t of schema.filter((s) => s.type === 'table' && !s.name.startsWith('sqlite_'))) {
      tables[t.name] = db.prepare(`SELECT * FROM "${t.name}" ORDER BY rowid`).all();
    }
    return { schema, tables };
  } finally {
    db.close();
  }
}

function columnsOf(file: string, table: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
  } finally {
    db.close();
  }
}

function migrations(file: string): { version: number; name: string | null; applied_at: string }[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT version, name, applied_at FROM schema_migrations ORDER BY version`).all() as never;
  } finally {
    db.close();
  }
}

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dispatch-legacy-'));
});
after(() => {
  if (!process.env.DISPATCH_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
});

describe('adopting a legacy dispatch.db', () => {
  test('init keeps every legacy row and value, adds the new columns and records every migration', async () => {
    const file = path.join(dir, 'full.db');
    buildLegacy(file);
    const tasksBefore = snapshot(file, 'tasks', LEGACY_TASK_COLUMNS, 'id');
    const nodesBefore = snapshot(file, 'nodes', LEGACY_NODE_COLUMNS, 'name');
    assert.equal(tasksBefore.length, 13);
    // The fixture really has what it claims: ghosts 8-11 h old in both spellings, and junk.
    const ghosts = tasksBefore.filter((r) => GHOSTS.includes((r as { id: string }).id)) as {
      started_at: string;
      status: string;
      project: string;
    }[];
    assert.equal(ghosts.length, 5);
    for (const g of ghosts) {
      assert.equal(g.status, 'running');
      assert.equal(g.project, 'dispatch-infra');
      const ageH = (Date.now() - Date.parse(g.started_at.includes('T') ? g.started_at : `${g.started_at.replace(' ', 'T')}Z`)) / 3.6e6;
      assert.ok(ageH > 7.9 && ageH < 11.1, `${g.started_at} is ${ageH} h old`);
    }
    assert.ok(
      ghosts.some((g) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(g.started_at)),
      'a datetime() spelling',
    );
    assert.ok(
      ghosts.some((g) => /^\d{4}-\d\d-\d\dT.*Z$/.test(g.started_at)),
      'an ISO-8601 Z spelling',
    );
    assert.ok(tasksBefore.some((r) => (r as Record<string, unknown>).pid === 'abc' && (r as Record<string, unknown>).pid__type === 'text'));

    const out = await cliOk(['--db', file, 'init']);
    assert.match(out, /adopted .*full\.db \(13 task rows, 3 nodes\)/);

    assert.deepEqual(snapshot(file, 'tasks', LEGACY_TASK_COLUMNS, 'id'), tasksBefore, 'legacy task values changed');
    assert.deepEqual(snapshot(file, 'nodes', LEGACY_NODE_COLUMNS, 'name'), nodesBefore, 'legacy node values changed');

    const taskCols = columnsOf(file, 'tasks');
    for (const c of [
      ...LEGACY_TASK_COLUMNS,
      'last_heartbeat',
      'reaped_count',
      'run_dir',
      'proc_starttime',
      'boot_id',
      'workflow_id',
      'priority',
      'seq',
      'finished_at',
      'exit_code',
    ]) {
      assert.ok(taskCols.includes(c), `tasks has no column ${c}: ${taskCols.join(', ')}`);
    }
    const nodeCols = columnsOf(file, 'nodes');
    for (const c of [...LEGACY_NODE_COLUMNS, 'kind', 'port', 'user', 'key_path', 'known_hosts', 'work_dir', 'status']) {
      assert.ok(nodeCols.includes(c), `nodes has no column ${c}: ${nodeCols.join(', ')}`);
    }
    const m = migrations(file);
    assert.deepEqual(
      m.map((r) => r.version),
      MIGRATIONS.map((x) => x.version),
    );
    assert.ok(!Number.isNaN(Date.parse(m[0]!.applied_at)));

    // New columns on old rows hold neutral values, not invented history.
    const db = new Database(file, { readonly: true });
    try {
      const r = db.prepare(`SELECT reaped_count, last_heartbeat, run_dir, workflow_id FROM tasks WHERE id = 'S02-agent-self-evolve'`).get();
      assert.deepEqual(r, { reaped_count: 0, last_heartbeat: null, run_dir: null, workflow_id: null });
    } finally {
      db.close();
    }
  });

  test('a second init changes nothing', async () => {
    const file = path.join(dir, 'twice.db');
    buildLegacy(file);
    await cliOk(['--db', file, 'init']);
    const first = fullDump(file);
    const out = await cliOk(['--db', file, 'init']);
    assert.match(out, /adopted .*twice\.db \(13 task rows, 3 nodes\)/);
    assert.deepEqual(fullDump(file), first);
    assert.deepEqual(
      migrations(file).map((r) => r.version),
      MIGRATIONS.map((x) => x.version),
    );
  });

  test('tasks --json lists every adopted row with its legacy values', async () => {
    const file = path.join(dir, 'tasks.db');
    buildLegacy(file);
    const before = snapshot(file, 'tasks', LEGACY_TASK_COLUMNS, 'id') as Record<string, unknown>[];
    await cliOk(['--db', file, 'init']);
    const rows = JSON.parse(await cliOk(['--db', file, 'tasks', '--json'])) as Record<string, unknown>[];
    assert.ok(Array.isArray(rows));
    assert.deepEqual(rows.map((r) => r.id).sort(), before.map((r) => r.id).sort());
    for (const b of before) {
      const r = rows.find((x) => x.id === b.id)!;
      for (const c of LEGACY_TASK_COLUMNS) assert.deepEqual(r[c], b[c], `${b.id}.${c}`);
    }
    // Filters still see legacy rows.
    const infra = JSON.parse(await cliOk(['--db', file, 'tasks', '--json', '--project', 'dispatch-infra', '--status', 'running'])) as {
      id: string;
    }[];
    assert.deepEqual(infra.map((r) => r.id).sort(), [...GHOSTS].sort());
  });

  test('status --json reports {"counts": {STATUS: N}, "nodes": [{name, status, slots, running_count}]}', async () => {
    const file = path.join(dir, 'status.db');
    buildLegacy(file);
    await cliOk(['--db', file, 'init']);
    const st = JSON.parse(await cliOk(['--db', file, 'status', '--json'])) as {
      counts: Record<string, number>;
      nodes: Record<string, unknown>[];
    };
    assert.deepEqual(Object.keys(st).sort(), ['counts', 'nodes']);
    assert.deepEqual(st.counts, { RUNNING: 1, completed: 2, failed: 1, queued: 1, running: 6, unknown: 1, weird: 1 });
    for (const n of Object.values(st.counts)) assert.ok(Number.isInteger(n));
    assert.deepEqual(
      [...st.nodes].sort((a, b) => String(a.name).localeCompare(String(b.name))),
      [
        { name: 'cpu-2', status: 'online', slots: 8, running_count: 2 },
        { name: 'gpu-1', status: 'online', slots: 4, running_count: 5 },
        { name: 'old-box', status: 'online', slots: null, running_count: null },
      ],
    );
    for (const n of st.nodes) assert.deepEqual(Object.keys(n).sort(), ['name', 'running_count', 'slots', 'status']);
    const infra = JSON.parse(await cliOk(['--db', file, 'status', '--json', '--project', 'dispatch-infra']));
    assert.deepEqual(infra.counts, { completed: 1, running: 5, weird: 1 });
  });

  test('a legacy tasks table with only id, status and pid (and no nodes table) is adopted too', async () => {
    const file = path.join(dir, 'minimal.db');
    buildLegacyMinimal(file);
    const before = snapshot(file, 'tasks', ['id', 'status', 'pid'], 'id');
    const out = await cliOk(['--db', file, 'init']);
    assert.match(out, /adopted .*minimal\.db \(4 task rows, 0 nodes\)/);
    assert.deepEqual(snapshot(file, 'tasks', ['id', 'status', 'pid'], 'id'), before);
    const cols = columnsOf(file, 'tasks');
    for (const c of [...LEGACY_TASK_COLUMNS, 'last_heartbeat', 'reaped_count', 'run_dir'])
      assert.ok(cols.includes(c), `tasks has no column ${c}`);
    assert.ok(columnsOf(file, 'nodes').includes('running_count'));
    assert.deepEqual(
      migrations(file).map((r) => r.version),
      MIGRATIONS.map((x) => x.version),
    );
    const dump = fullDump(file);
    await cliOk(['--db', file, 'init']);
    assert.deepEqual(fullDump(file), dump, 'second init changed the minimal file');
    const rows = JSON.parse(await cliOk(['--db', file, 'tasks', '--json'])) as Record<string, unknown>[];
    assert.deepEqual(rows.map((r) => [r.id, r.status, r.pid]).sort(), [
      ['S02-agent-self-evolve', 'running', 41234],
      ['min-done', 'completed', null],
      ['min-junk', 'weird', 'abc'],
      ['min-null', null, null],
    ]);
    const st = JSON.parse(await cliOk(['--db', file, 'status', '--json']));
    assert.deepEqual(st, { counts: { completed: 1, running: 1, unknown: 1, weird: 1 }, nodes: [] });
  });
});

describe('the CLI refuses bad --db and --config clearly', () => {
  test('tasks and status on a legacy file that was never adopted point to `dispatch init`, change nothing, no stack', async () => {
    const file = path.join(dir, 'not-adopted.db');
    buildLegacy(file);
    const before = fullDump(file);
    for (const cmd of [['tasks'], ['status', '--json']]) {
      const r = await cli(['--db', file, ...cmd]);
      assert.equal(r.code, 2, `${cmd[0]}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, /dispatch init/, cmd[0]);
      assertNoStack(r.stderr);
    }
    assert.deepEqual(fullDump(file), before, 'a read-only command changed the legacy file');
  });

  test('--db in a directory that does not exist: tasks fails with a clear message, non-zero, no stack', async () => {
    const r = await cli(['--db', '/nonexistent/dir/x.db', 'tasks']);
    assert.notEqual(r.code, 0);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\/nonexistent\/dir\/x\.db/);
    assert.match(r.stderr, /does not exist/);
    assertNoStack(r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, `expected one line:\n${r.stderr}`);
    assert.equal(existsSync('/nonexistent/dir'), false);
  });

  test('--db in a directory that does not exist: init fails with a clear message, non-zero, no stack', async () => {
    const r = await cli(['--db', '/nonexistent/dir/x.db', 'init']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\/nonexistent\/dir/);
    assertNoStack(r.stderr);
    assert.equal(existsSync('/nonexistent/dir'), false);
  });

  test('a config with "threshold_hours": "two" makes `tasks` fail naming threshold_hours', async () => {
    const file = path.join(dir, 'cfg1.db');
    await cliOk(['--db', file, 'init']);
    const cfg = path.join(dir, 'threshold.json');
    writeFileSync(cfg, JSON.stringify({ threshold_hours: 'two' }));
    const r = await cli(['--db', file, '--config', cfg, 'tasks']);
    assert.equal(r.code, 2, `exit ${r.code}; stdout: ${r.stdout}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /threshold_hours/);
    assertNoStack(r.stderr);
    assert.equal(r.stdout, '', 'nothing is listed with a broken config');
  });

  test('a config with an unknown key "bogus" makes `status` fail naming bogus', async () => {
    const file = path.join(dir, 'cfg2.db');
    await cliOk(['--db', file, 'init']);
    const cfg = path.join(dir, 'bogus.json');
    writeFileSync(cfg, JSON.stringify({ bogus: 1 }));
    const r = await cli(['--db', file, '--config', cfg, 'status']);
    assert.equal(r.code, 2, `exit ${r.code}; stdout: ${r.stdout}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /bogus/);
    assertNoStack(r.stderr);
    assert.equal(r.stdout, '');
  });
});
