/**
 * The layers of src/ hold. Workflow code runs in Temporal's deterministic sandbox and may import
 * only pure code at run time; the lower layers never import the CLI or the worker process; SQL
 * lives in the store; node commands are built only in src/shell.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
const SRC = path.join(ROOT, 'src');

function walk(dir: string, ext = '.ts'): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p, ext) : p.endsWith(ext) ? [p] : [];
  });
}

interface Import {
  spec: string;
  typeOnly: boolean;
}

/** Every import and re-export of a file, with whether it is erased at compile time. */
function importsOf(file: string): Import[] {
  const src = readFileSync(file, 'utf8');
  const out: Import[] = [];
  for (const m of src.matchAll(/^(?:import|export)\s+(type\s+)?([^;]*?)\s+from\s+'([^']+)';/gms)) {
    const names = m[2]!;
    // `import { type A, type B }` is erased as a whole too.
    const allTypes =
      /^\{[^}]*\}$/s.test(names.trim()) &&
      names
        .replace(/[{}\s]/g, '')
        .split(',')
        .filter(Boolean)
        .every((n) => n.startsWith('type'));
    out.push({ spec: m[3]!, typeOnly: Boolean(m[1]) || allTypes });
  }
  for (const m of src.matchAll(/^import\s+'([^']+)';/gm)) out.push({ spec: m[1]!, typeOnly: false });
  for (const m of src.matchAll(/\brequire\(\s*'([^']+)'\s*\)/g)) out.push({ spec: m[1]!, typeOnly: false });
  return out;
}

function resolveLocal(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [`${base}.ts`, path.join(base, 'index.ts')]) if (existsSync(c)) return c;
  return null;
}

const rel = (p: string): string => path.relative(SRC, p);
const layerOf = (p: string): string => rel(p).split(path.sep)[0]!;

const SANDBOX_BANNED =
  /^(node:|fs$|child_process$|net$|http$|os$|path$|crypto$|ssh2$|better-sqlite3$|@temporalio\/(client|worker|activity)$)/;

describe('layers', () => {
  test('the workflow bundle reaches no Node built-in, ssh2, better-sqlite3 or I/O module at run time', () => {
    const seen = new Set<string>();
    const queue = [path.join(SRC, 'workflows', 'index.ts')];
    while (queue.length) {
      const f = queue.pop()!;
      if (seen.has(f)) continue;
      seen.add(f);
      for (const i of importsOf(f)) {
        if (i.typeOnly) continue;
        assert.ok(!SANDBOX_BANNED.test(i.spec), `${rel(f)} imports ${i.spec}, and the workflow bundle includes ${rel(f)}`);
        const local = resolveLocal(f, i.spec);
        if (local) queue.push(local);
      }
    }
    // What the sandbox may reach: workflow code and pure helpers.
    for (const f of seen) {
      assert.ok(
        ['workflows', 'common'].includes(layerOf(f)) || rel(f) === path.join('reaper', 'driver.ts'),
        `the workflow bundle includes ${rel(f)}`,
      );
    }
  });

  test('nothing under activities, client, reaper, store, shell, workflows, common, config, spec or schedules imports cli or workers', () => {
    const lower = ['activities', 'client', 'reaper', 'store', 'shell', 'workflows', 'common', 'config', 'spec', 'schedules'];
    for (const f of walk(SRC).filter((p) => lower.includes(layerOf(p)))) {
      for (const i of importsOf(f)) {
        const local = resolveLocal(f, i.spec);
        if (!local) continue;
        assert.ok(
          !['cli', 'workers'].includes(layerOf(local)),
          `${rel(f)} imports ${rel(local)}${i.typeOnly ? ' (type-only counts too)' : ''}`,
        );
      }
    }
  });

  test('the store, the shell and the pure layers import nothing from activities, reaper, client or workflows at run time', () => {
    for (const f of walk(SRC).filter((p) => ['store', 'shell', 'common', 'config', 'spec'].includes(layerOf(p)))) {
      for (const i of importsOf(f)) {
        const local = resolveLocal(f, i.spec);
        if (!local || i.typeOnly) continue;
        assert.ok(
          !['activities', 'reaper', 'client', 'workflows', 'schedules'].includes(layerOf(local)),
          `${rel(f)} imports ${rel(local)}`,
        );
      }
    }
  });

  test('SQL and better-sqlite3 live only in src/store', () => {
    const SQL = /['`"]\s*(SELECT\s[^'`"]*\sFROM\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|CREATE\s+(TABLE|INDEX)\s|PRAGMA\s)/i;
    for (const f of walk(SRC).filter((p) => layerOf(p) !== 'store')) {
      const src = readFileSync(f, 'utf8');
      assert.ok(!SQL.test(src), `${rel(f)} holds SQL`);
      assert.ok(!importsOf(f).some((i) => i.spec === 'better-sqlite3'), `${rel(f)} imports better-sqlite3`);
    }
  });

  test('the store hands its database handle only to the one test helper', () => {
    const users = [...walk(SRC), ...walk(path.join(ROOT, 'test')), ...walk(path.join(ROOT, 'bench')), ...walk(path.join(ROOT, 'chaos'))]
      .filter((f) => !rel(f).startsWith(`store${path.sep}`))
      .filter((f) => readFileSync(f, 'utf8').includes('rawHandleForTests'))
      .map((f) => path.relative(ROOT, f));
    assert.deepEqual(
      users.filter((u) => u !== path.join('test', 'unit', 'workflow-imports.test.ts')),
      [path.join('test', 'helpers', 'raw-db.ts')],
    );
  });

  test('node commands are built only in src/shell: no shell text is sent from anywhere else', () => {
    // The store's exec() runs SQL on SQLite, not a command on a node.
    for (const f of walk(SRC).filter((p) => !['shell', 'store'].includes(layerOf(p)))) {
      const src = readFileSync(f, 'utf8');
      assert.ok(!/\.exec\(\s*[`'"]/.test(src), `${rel(f)} sends a literal command to a node`);
      assert.ok(!/\bbuildCommand\(/.test(src), `${rel(f)} builds a node command`);
    }
  });
});
