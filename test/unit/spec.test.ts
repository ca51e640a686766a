import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildTaskSpec,
  expandExecutor,
  parseSpecText,
  specHash,
  DEFAULT_PRIORITY,
  DEFAULT_PROJECT,
  type SpecDefaults,
} from '../../src/spec/spec';
import { SpecError } from '../../src/common/errors';

const defaults: SpecDefaults = { maxRuntimeS: 7200, executors: { glm: 'run-glm --spec {spec}' } };

const SEED = `---
task_id: S15-ghost-task-cleaner
project: dispatch-infra
priority: 1
depends_on: []
modifies:
  - dispatch/ghost_cleaner.py
  - dispatch/dispatch.py
executor: glm
estimated_minutes: 90
---

# Ghost Task Cleaner

Body text with --- inside it.
`;

/** A spec text with the given front matter lines. */
function spec(...lines: string[]): string {
  return `---\n${lines.join('\n')}\n---\nbody\n`;
}

function specError(re: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof SpecError && re.test(e.message);
}

describe('parseSpecText', () => {
  test('reads a seed-like spec into a task', () => {
    const t = parseSpecText(SEED, 'seed.md', defaults);
    assert.deepEqual(t, {
      id: 'S15-ghost-task-cleaner',
      project: 'dispatch-infra',
      priority: 1,
      dependsOn: [],
      modifies: ['dispatch/ghost_cleaner.py', 'dispatch/dispatch.py'],
      command: 'run-glm --spec "$DISPATCH_SPEC"',
      specBody: SEED,
      executor: 'glm',
      estimatedMinutes: 90,
      maxRuntimeS: 7200,
      node: null,
    });
  });

  test('accepts flow-style lists and CRLF line endings', () => {
    const t = parseSpecText(
      '---\r\ntask_id: DI09\r\nmodifies: ["dispatch-controller.py"]\r\nexecutor: glm\r\n---\r\nbody',
      's.md',
      defaults,
    );
    assert.deepEqual(t.modifies, ['dispatch-controller.py']);
    assert.equal(t.id, 'DI09');
  });

  test('fills project and priority defaults', () => {
    const t = parseSpecText(spec('task_id: t1', 'command: "true"'), 's.md', defaults);
    assert.equal(t.project, DEFAULT_PROJECT);
    assert.equal(t.priority, DEFAULT_PRIORITY);
    assert.equal(t.command, 'true');
    assert.equal(t.executor, null);
  });

  test('prefers an explicit command over the executor', () => {
    const t = parseSpecText(spec('task_id: t1', 'executor: glm', 'command: make test'), 's.md', defaults);
    assert.equal(t.command, 'make test');
    assert.equal(t.executor, null);
  });

  test('refuses an unknown executor and lists the configured ones', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: t1', 'executor: claude'), 's.md', defaults),
      specError(/^s\.md: executor "claude" is not configured \(configured: glm\)/),
    );
  });

  test('refuses an executor when none are configured and says how to add one', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: t1', 'executor: glm'), 's.md', { maxRuntimeS: 60, executors: {} }),
      specError(/add "executors"/),
    );
  });

  test('refuses a spec with neither command nor executor', () => {
    assert.throws(() => parseSpecText(spec('task_id: t1'), 's.md', defaults), specError(/no command/));
  });

  test('refuses an unknown front matter key and names it', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: t1', 'command: x', 'owner: bob'), 's.md', defaults),
      specError(/unknown front matter key "owner"/),
    );
  });

  test('refuses a file without front matter', () => {
    for (const text of ['# just markdown\n', 'task_id: t1\n', '---\ntask_id: t1\n', ' ---\ntask_id: t1\n---\n', '']) {
      assert.throws(() => parseSpecText(text, 'plain.md', defaults), specError(/^plain\.md: no YAML front matter/), JSON.stringify(text));
    }
  });

  test('refuses invalid YAML', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: [unclosed', 'command: x'), 's.md', defaults),
      specError(/front matter is not valid YAML/),
    );
  });

  test('refuses front matter that is not a mapping', () => {
    assert.throws(() => parseSpecText(spec('- a', '- b'), 's.md', defaults), specError(/must be a YAML mapping/));
    assert.throws(() => parseSpecText(spec('just a string'), 's.md', defaults), specError(/must be a YAML mapping/));
  });

  test('refuses a task that depends on itself', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: t1', 'command: x', 'depends_on: [t0, t1]'), 's.md', defaults),
      specError(/cannot depend on itself/),
    );
  });

  test('refuses a depends_on entry that is not a valid task id', () => {
    for (const dep of ['"../x"', '"a b"', '"-x"', '42', 'null', '""']) {
      assert.throws(() => parseSpecText(spec('task_id: t1', 'command: x', `depends_on: [${dep}]`), 's.md', defaults), SpecError, dep);
    }
  });

  test('refuses depends_on that is a mapping rather than a list', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: t1', 'command: x', 'depends_on: {a: 1}'), 's.md', defaults),
      specError(/depends_on must be a list/),
    );
  });

  test('refuses an invalid task id in the front matter', () => {
    for (const id of ['"../etc"', '-x', '123', "'a/b'"]) {
      assert.throws(
        () => parseSpecText(spec(`task_id: ${id}`, 'command: x'), 's.md', defaults),
        specError(/task id .* is not allowed/),
        id,
      );
    }
  });

  test('refuses a non-integer priority', () => {
    for (const p of ['1.5', 'high', '[1]', '2000000', '"1e3"']) {
      assert.throws(
        () => parseSpecText(spec('task_id: t1', 'command: x', `priority: ${p}`), 's.md', defaults),
        specError(/priority must be an integer/),
        p,
      );
    }
  });

  test('accepts a negative priority and a quoted integer priority', () => {
    assert.equal(parseSpecText(spec('task_id: t1', 'command: x', 'priority: -3'), 's.md', defaults).priority, -3);
    assert.equal(parseSpecText(spec('task_id: t1', 'command: x', 'priority: "7"'), 's.md', defaults).priority, 7);
  });

  test('refuses a boolean command and suggests quoting it', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: t1', 'command: true'), 's.md', defaults),
      specError(/command must be a non-empty string \(quote it/),
    );
  });

  test('refuses an empty command', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: t1', 'command: "  "'), 's.md', defaults),
      specError(/command must be a non-empty string/),
    );
  });

  test('parses max_runtime as a duration', () => {
    assert.equal(parseSpecText(spec('task_id: t1', 'command: x', 'max_runtime: 90m'), 's.md', defaults).maxRuntimeS, 5400);
    assert.equal(parseSpecText(spec('task_id: t1', 'command: x', 'max_runtime: 1h30m'), 's.md', defaults).maxRuntimeS, 5400);
    assert.equal(parseSpecText(spec('task_id: t1', 'command: x', 'max_runtime: 45'), 's.md', defaults).maxRuntimeS, 45);
  });

  test('refuses a bad max_runtime with the key in the message', () => {
    for (const v of ['forever', '0', '-1h']) {
      assert.throws(
        () => parseSpecText(spec('task_id: t1', 'command: x', `max_runtime: ${v}`), 's.md', defaults),
        specError(/^s\.md: invalid max_runtime/),
        v,
      );
    }
  });

  test('refuses a negative estimated_minutes', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: t1', 'command: x', 'estimated_minutes: -5'), 's.md', defaults),
      specError(/estimated_minutes/),
    );
  });

  test('refuses an invalid node name', () => {
    assert.throws(
      () => parseSpecText(spec('task_id: t1', 'command: x', 'node: "bad name"'), 's.md', defaults),
      specError(/not a valid node name/),
    );
  });
});

describe('expandExecutor', () => {
  test('replaces {spec} and {task_id} with quoted variables', () => {
    assert.equal(expandExecutor('run --spec {spec} --id {task_id}'), 'run --spec "$DISPATCH_SPEC" --id "$DISPATCH_TASK"');
  });

  test('appends the spec path when the template has no {spec}', () => {
    assert.equal(expandExecutor('run-glm'), 'run-glm "$DISPATCH_SPEC"');
  });
});

describe('specHash', () => {
  test('is stable for the same spec', () => {
    const a = parseSpecText(SEED, 'a.md', defaults);
    const b = parseSpecText(SEED, 'b.md', defaults);
    assert.match(specHash(a), /^[0-9a-f]{64}$/);
    assert.equal(specHash(a), specHash(b));
  });

  test('changes when the command changes', () => {
    const a = parseSpecText(SEED, 'a.md', defaults);
    const b = parseSpecText(SEED, 'a.md', { ...defaults, executors: { glm: 'run-glm-v2 --spec {spec}' } });
    assert.notEqual(specHash(a), specHash(b));
    assert.notEqual(specHash(a), specHash({ ...a, command: a.command + ' ' }));
  });

  test('changes when the priority or a dependency changes', () => {
    const a = parseSpecText(SEED, 'a.md', defaults);
    assert.notEqual(specHash(a), specHash({ ...a, priority: 2 }));
    assert.notEqual(specHash(a), specHash({ ...a, dependsOn: ['x'] }));
  });
});

describe('buildTaskSpec from flags', () => {
  test('splits comma lists, trims them and drops duplicates and empties', () => {
    const t = buildTaskSpec(
      {
        task_id: 't9',
        command: 'make',
        priority: '5',
        depends_on: 'a, b,,a ',
        modifies: 'src/x.ts, src/y.ts ,src/x.ts',
        max_runtime: '15m',
        node: 'n1',
        project: 'p',
      },
      null,
      defaults,
      '--id t9',
    );
    assert.deepEqual(t, {
      id: 't9',
      project: 'p',
      priority: 5,
      dependsOn: ['a', 'b'],
      modifies: ['src/x.ts', 'src/y.ts'],
      command: 'make',
      specBody: null,
      executor: null,
      estimatedMinutes: null,
      maxRuntimeS: 900,
      node: 'n1',
    });
  });

  test('refuses a comma list with an invalid task id', () => {
    assert.throws(
      () => buildTaskSpec({ task_id: 't9', command: 'make', depends_on: 'a,b/c' }, null, defaults, '--id t9'),
      specError(/^--id t9: depends_on entry "b\/c" is not a valid task id/),
    );
  });

  test('refuses a self-dependency given as a comma list', () => {
    assert.throws(
      () => buildTaskSpec({ task_id: 't9', command: 'make', depends_on: 'a,t9' }, null, defaults, '--id t9'),
      specError(/cannot depend on itself/),
    );
  });

  test('refuses a string priority that is not an integer', () => {
    for (const p of ['5x', '1.0', '']) {
      assert.throws(
        () => buildTaskSpec({ task_id: 't9', command: 'make', priority: p }, null, defaults, '--id t9'),
        specError(/priority must be an integer/),
        JSON.stringify(p),
      );
    }
  });

  test('refuses a command with a NUL byte', () => {
    assert.throws(() => buildTaskSpec({ task_id: 't9', command: 'echo \0' }, null, defaults, '--id t9'), specError(/NUL/));
  });

  test('refuses a project that does not match the id pattern', () => {
    assert.throws(
      () => buildTaskSpec({ task_id: 't9', command: 'make', project: '../p' }, null, defaults, '--id t9'),
      specError(/project "\.\.\/p"/),
    );
  });
});
